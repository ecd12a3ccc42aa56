-- The emulator's web side in a real browser: starts an emulator, creates the collection's loyalty
-- schemas, datasets and streaming inlet (support.fixtures), streams the sample member's profile
-- record, then runs `node tests/browser/run.mjs` (playwright-core driving Debian's chromium; the
-- demo page is served from a second origin by run.mjs). Screenshots go to tests/artifacts/.
-- Skipped, with a message, only when chromium is not installed; `./dev test` installs chromium,
-- Node.js and the npm packages (npm ci --prefix tests/browser).
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local files = require "support.files"
local json = require "aep.json"

local CHROMIUM = os.getenv("AEP_CHROMIUM") or "/usr/bin/chromium"
local MEMBER = "tscrowby0@chicagotribune.com"

local exists = files.exists

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

describe("browser: tag, demo page and console in chromium", function()
  if not exists(CHROMIUM) then
    io.write("browser_spec: SKIPPED: chromium is not installed (" .. CHROMIUM .. "); " ..
      "install it with `apt-get install chromium` or `./dev deps`\n")
    pending("chromium is not installed (" .. CHROMIUM .. ")")
    return
  end

  local emu, api, ids

  setup(function()
    assert(os.execute("command -v node >/dev/null 2>&1"), "node is not installed (./dev deps installs it)")
    assert(exists("tests/browser/node_modules/playwright-core/package.json"),
      "tests/browser/node_modules is missing: run `npm ci --prefix tests/browser` (./dev test does)")
    emu, api, ids = fixtures.start()
    -- The member's profile record (the first of the collection's sample profiles), so the console
    -- shows a profile with its attributes and the events the page sends.
    local s, b = api:post("/collection/" .. ids.inlet_id .. "?syncValidation=true",
      fixtures.profile_message(ids, { loyaltyID = MEMBER, first = "Timi", last = "Scrowby",
                                      level = "Platinum", points = 241450 }), { auth = false })
    fixtures.expect(s, 200, b, "member profile")
    -- The collection's 25 sample profiles as an import batch (R17-R20), for the console's batches.
    local data = assert(files.read("data/AEP_loyalty_profiles.json")):gsub('"_exchangeinternal"', '"_' .. ids.tenant .. '"')
    local IMPORT = "/data/foundation/import/batches"
    s, b = api:post(IMPORT, { datasetId = ids.profile_dataset, inputFormat = { format = "json", isMultiLineJson = true } })
    local batch = fixtures.expect(s, 201, b, "create batch").id
    s, b = api:put(IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset .. "/files/profiles.json", data,
      { content_type = "application/octet-stream" })
    fixtures.expect(s, 200, b, "upload")
    s, b = api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
    fixtures.expect(s, 200, b, "complete")
    ids.batch_id = batch
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  it("passes tests/browser/run.mjs", function()
    local env = {
      AEP_EMU_URL = emu.url, AEP_ENV_FILE = emu.env_file, AEP_CHROMIUM = CHROMIUM,
      AEP_ARTIFACTS = os.getenv("AEP_ARTIFACTS") or "tests/artifacts",
      AEP_IDS = json.encode { event_dataset = ids.event_dataset, profile_dataset = ids.profile_dataset,
                              inlet_id = ids.inlet_id, tenant = ids.tenant, org = ids.org, member = MEMBER,
                              batch_id = ids.batch_id },
    }
    local parts = { "env" }
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. sh_quote(v) end
    parts[#parts + 1] = "node tests/browser/run.mjs 2>&1"
    local p = assert(io.popen(table.concat(parts, " ")))
    local out = p:read("a")
    local ok, _, code = p:close()
    io.write(out)
    assert(ok, "node tests/browser/run.mjs failed (exit " .. tostring(code) .. "):\n" .. out ..
      "\nemulator stderr:\n" .. emu.stderr())
  end)
end)

-- Adobe's Web SDK against the emulator's Edge Network: an emulator over HTTPS (alloy only speaks
-- https), a Web SDK event schema (the loyalty field group and the standard field groups alloy
-- fills), a consent profile dataset, a datastream, the member's profile record; then
-- `node tests/browser/websdk.mjs`.
describe("browser: Adobe's Web SDK against the Edge Network in chromium", function()
  if not exists(CHROMIUM) then
    pending("chromium is not installed (" .. CHROMIUM .. ")")
    return
  end
  local emulator = require "support.emulator"
  local run = require "support.run"
  local crypto = require "aep.crypto"
  local host = require "aep.host"
  local emu, api, ids, dir
  local ACCEPT = { headers = { Accept = "application/vnd.adobe.xed+json" } }
  local SCHEMAS = "/data/foundation/schemaregistry/tenant"

  setup(function()
    assert(exists("tests/browser/node_modules/@adobe/alloy/dist/alloy.min.js"),
      "@adobe/alloy is missing: run `npm ci --prefix tests/browser` (./dev test does)")
    dir = run.tmpdir()
    local keys = assert(crypto.generate_rsa { bits = 2048, cn = "localhost" })
    assert(host.write_file(dir .. "/cert.pem", keys.certificate))
    assert(host.write_file(dir .. "/key.pem", keys.private_key, tonumber("600", 8)))
    emu = emulator.start { "--tls-cert", dir .. "/cert.pem", "--tls-key", dir .. "/key.pem" }
    emu.cainfo = dir .. "/cert.pem"
    api = fixtures.client(emu)
    ids = fixtures.loyalty(api)
    local s, b = api:post(SCHEMAS .. "/schemas/", {
      type = "object", title = "Loyalty Web SDK Events", description = "What the Web SDK demo sends",
      allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/experienceevent" },
                { ["$ref"] = "https://ns.adobe.com/xdm/context/experienceevent-environment-details" },
                { ["$ref"] = "https://ns.adobe.com/xdm/context/experienceevent-web" },
                { ["$ref"] = "https://ns.adobe.com/xdm/context/experienceevent-implementationdetails" },
                { ["$ref"] = ids.event_mixin } },
      ["meta:immutableTags"] = { "union" } }, ACCEPT)
    local schema = fixtures.expect(s, 201, b, "web sdk schema")["$id"]
    s, b = api:post(SCHEMAS .. "/descriptors", {
      ["@type"] = "xdm:descriptorIdentity", ["xdm:sourceProperty"] = "/_" .. ids.tenant .. "/loyaltyID",
      ["xdm:property"] = "xdm:code", ["xdm:isPrimary"] = true, ["xdm:namespace"] = "Email",
      ["xdm:sourceSchema"] = schema, ["xdm:sourceVersion"] = 1 }, ACCEPT)
    fixtures.expect(s, 201, b, "descriptor")
    ids.web_dataset = fixtures.dataset(api, "Loyalty Web SDK Events", schema)
    -- the datastream's profile dataset: what setConsent (Adobe 2.0) writes (consent/adobe/dataset.md)
    s, b = api:post(SCHEMAS .. "/schemas/", {
      type = "object", title = "Loyalty Web SDK Consents", description = "What setConsent sends",
      allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" },
                { ["$ref"] = "https://ns.adobe.com/xdm/mixins/profile-consents" } },
      ["meta:immutableTags"] = { "union" } }, ACCEPT)
    ids.consent_dataset = fixtures.dataset(api, "Loyalty Web SDK Consents", fixtures.expect(s, 201, b, "consent schema")["$id"])
    s, b = api:post("/emulator/datastreams", { name = "Loyalty website", eventDataset = ids.web_dataset,
                                               profileDataset = ids.consent_dataset }, { auth = false })
    ids.datastream = fixtures.expect(s, 201, b, "datastream").id
    s, b = api:post("/collection/" .. ids.inlet_id .. "?syncValidation=true",
      fixtures.profile_message(ids, { loyaltyID = MEMBER, first = "Timi", last = "Scrowby",
                                      level = "Platinum", points = 241450 }), { auth = false })
    fixtures.expect(s, 200, b, "member profile")
  end)

  teardown(function()
    if emu then emu.cleanup() end
    if dir then os.execute("rm -rf " .. sh_quote(dir)) end
  end)

  it("passes tests/browser/websdk.mjs", function()
    local env = {
      AEP_EMU_URL = emu.url, AEP_ENV_FILE = emu.env_file, AEP_CHROMIUM = CHROMIUM,
      AEP_ARTIFACTS = os.getenv("AEP_ARTIFACTS") or "tests/artifacts",
      NODE_EXTRA_CA_CERTS = emu.cainfo,
      AEP_IDS = json.encode { web_dataset = ids.web_dataset, consent_dataset = ids.consent_dataset,
                              datastream = ids.datastream, tenant = ids.tenant, org = ids.org, member = MEMBER },
    }
    local parts = { "env" }
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. sh_quote(v) end
    parts[#parts + 1] = "node tests/browser/websdk.mjs 2>&1"
    local p = assert(io.popen(table.concat(parts, " ")))
    local out = p:read("a")
    local ok, _, code = p:close()
    io.write(out)
    assert(ok, "node tests/browser/websdk.mjs failed (exit " .. tostring(code) .. "):\n" .. out ..
      "\nemulator stderr:\n" .. emu.stderr())
  end)
end)
