-- The real-time import workflow (`aep run`) against the emulator: the whole flow end to end with
-- every sample person checked against Profile, a second run that creates nothing, teardown that
-- leaves the sandbox as it was, the JWT path, the legacy inlet, a token expiring mid-run, a 400
-- validation report surfaced, a run under injected faults, and the README's main command on a
-- fresh machine (no --env: aep starts and stops an emulator itself).
local runcmd = require "aep.cmd.run"
local log = require "aep.log"
local json = require "aep.json"
local http = require "aep.http"
local host = require "aep.host"
local config = require "aep.config"
local platform = require "aep.platform"
local profile = require "aep.profile"
local emulator = require "tests.lua.support.emulator"
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"

local emu, tmp

local function read(path) return assert(files.read(path)) end

-- `aep run ARGS` in this process; returns exit status and everything it printed.
local function aep_run(args)
  local out = {}
  local po, pe = log.set_sinks(function(s) out[#out + 1] = s end, function(s) out[#out + 1] = s end)
  local ok, code = pcall(runcmd.run, args)
  log.set_sinks(po, pe)
  log.set_quiet(false)
  log.set_verbose(false)
  if not ok then error(code, 0) end
  return code, table.concat(out)
end

local function faults(spec, seed) emu.faults(spec, seed or 1) end

-- Resource counts of a sandbox (records left out: data, not resources).
local function resources(sandbox)
  local state = json.decode(assert(http.request({ url = emu.url .. "/emulator/state" })).body)
  local counts = {}
  for kind, n in pairs(state.sandboxes[sandbox] or {}) do
    if kind ~= "records" and n > 0 then counts[kind] = n end
  end
  return counts
end

local function requests(prefix)
  local doc = json.decode(assert(http.request({ url = emu.url .. "/emulator/requests?since=0&path=" .. prefix })).body)
  return doc.requests
end

-- The source truth: per person, the sample profile's loyalty values and their number of events.
local function source_truth()
  local people, order = {}, {}
  for _, r in ipairs(files.json("data/AEP_loyalty_profiles.json")) do
    local l = r._exchangeinternal
    people[l.loyaltyID] = { level = l.loyaltyLevel, points = math.tointeger(l.totalLoyaltyPoints),
                            first = r.person.name.firstName, last = r.person.name.lastName, events = 0 }
    order[#order + 1] = l.loyaltyID
  end
  for _, e in ipairs(files.json("data/AEP_loyalty_events.json")) do
    local p = people[e._exchangeinternal.loyaltyID]
    p.events = p.events + 1
  end
  return people, order
end

local function client_for(sandbox)
  local cfg = config.load({ env_file = emu.env_file, flags = { sandbox = sandbox }, getenv = function() return nil end })
  return platform.new(cfg, { sleep = function() end })
end

local function base_args(sandbox, manifest, extra)
  emu.sandbox(sandbox) -- sandboxes other than prod exist once created
  local args = { "--env", emu.env_file, "--sandbox", sandbox, "--manifest", tmp .. "/" .. manifest, "--wait", "30" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return args
end

setup(function()
  emu = emulator.start()
  tmp = run.tmpdir()
end)
teardown(function()
  emu.cleanup()
  os.execute("rm -rf " .. run.quote(tmp))
end)
after_each(function() faults("") end)

describe("aep run realtime-import", function()
  local first_output, first_resources

  it("runs the whole flow and every sample person reads back with their loyalty values and events", function()
    assert.are.same({}, resources("wf1"))
    local args = base_args("wf1", "wf1.json")
    table.insert(args, 1, "realtime-import")
    local code, out = aep_run(args)
    first_output = out
    assert.are.equal(0, code, out)
    assert.truthy(out:find("verified%s+25 profiles and 20 events read back match the source data"), out)
    assert.truthy(out:find("streamed%s+25 profiles: 25 accepted, 0 rejected"), out)
    assert.truthy(out:find("streamed%s+20 events: 20 accepted, 0 rejected"), out)
    assert.truthy(out:find("ok%s+ingested%s+25 of 25 accepted profiles ingested, 0 failed after acceptance, 0 unknown\n"), out)
    assert.truthy(out:find("ok%s+ingested%s+20 of 20 accepted events ingested, 0 failed after acceptance, 0 unknown\n"), out)
    -- the sample person shown at the end: the first sample profile that has events
    assert.truthy(out:find("ok%s+profile%s+aodowling1@examiner.com"), out)
    assert.truthy(out:find("  name%s+Alexia O'Dowling\n"), out)
    assert.truthy(out:find("  loyalty level%s+Diamond\n"), out)
    assert.truthy(out:find("  loyalty points%s+480650\n"), out)
    assert.truthy(out:find("  events%s+1\n"), out)
    assert.truthy(out:find("2020%-03%-03T06:53:53Z  loyaltyLevelUpdate  %+900 points, total 416450, Diamond  %(_id 10867499%)"), out)

    -- independent check: for every person of the source data, Profile as read back
    local c = client_for("wf1")
    local people, order = source_truth()
    local tkey = "_" .. emu.env.TENANT_ID
    for _, id in ipairs(order) do
      local want = people[id]
      local rec = profile.get(c, { id = id, ns = "email" })
      assert.is_not_nil(rec, id)
      local l = rec.entity[tkey]
      assert.are.equal(want.level, l.loyaltyLevel, id)
      assert.are.equal(want.points, math.tointeger(l.totalLoyaltyPoints), id)
      assert.are.equal(want.first, rec.entity.person.name.firstName, id)
      assert.are.equal(want.last, rec.entity.person.name.lastName, id)
      assert.are.equal(want.events, #profile.events(c, { id = id, ns = "email" }), id)
    end

    first_resources = resources("wf1")
    assert.are.same({ fieldgroup = 2, schema = 2, descriptor = 2, dataset = 2, connection = 1,
                      inlet = 1, sourceConnection = 1, targetConnection = 2, flow = 2 }, first_resources)
  end)

  it("lookup of a person whose record failed validation after acceptance says so and why, without waiting", function()
    local m = json.decode(read(tmp .. "/wf1.json"))
    local input = files.write(tmp .. "/bronze.jsonl", json.encode({
      _exchangeinternal = { loyaltyID = "bronze@example.com", loyaltyLevel = "Bronze", totalLoyaltyPoints = 1 },
      person = { name = { firstName = "B", lastName = "Z" } }, personalEmail = { address = "bronze@example.com" },
    }) .. "\n")
    local r = run.aep({ "stream", "--env", emu.env_file, "--sandbox", "wf1", "--dataset", m.variables.DATASET_ID_PROFILE,
                        "--inlet", m.variables.INLET_URL, "--flow-id", m.variables.FLOW_ID_PROFILE,
                        "--input", input, "--mapping", "mappings/loyalty_profile.lua", "--wait", "30s" })
    assert.are.equal(2, r.status, r.stderr)
    local code, out = aep_run({ "lookup", "--env", emu.env_file, "--sandbox", "wf1", "--manifest", tmp .. "/wf1.json",
                                "--person", "bronze@example.com", "--wait", "20" })
    assert.are_not.equal(0, code)
    assert.truthy(out:find("the profile record of bronze@example.com was accepted but failed AEP's validation (batch ", 1, true), out)
    assert.truthy(out:find("): INGEST-1201-400 Bronze is not a valid enum value; it never reaches Profile", 1, true), out)
  end)

  it("keeps a run manifest with the ids and no secret, mode 0600", function()
    local path = tmp .. "/wf1.json"
    local text = read(path)
    local m = json.decode(text)
    assert.are.equal("aep-run-manifest/1", m.format)
    assert.are.equal(emu.env.TENANT_ID, m.variables.TENANT_ID)
    for _, var in ipairs({ "FIELD_GROUP_ID_PROFILE", "SCHEMA_ID_PROFILE", "DESCRIPTOR_ID_PROFILE", "DATASET_ID_PROFILE",
      "FIELD_GROUP_ID_EVENT", "SCHEMA_ID_EVENT", "DESCRIPTOR_ID_EVENT", "DATASET_ID_EVENT", "CONNECTION_ID",
      "SOURCE_CONNECTION_ID", "TARGET_CONNECTION_ID_PROFILE", "FLOW_ID_PROFILE", "TARGET_CONNECTION_ID_EVENT",
      "FLOW_ID_EVENT", "INLET_ID", "INLET_URL" }) do
      assert.are.equal("string", type(m.variables[var]), var)
    end
    assert.are.equal(14, #m.resources)
    for _, r in ipairs(m.resources) do assert.is_true(r.created, r.var) end
    assert.is_nil(text:find(emu.env.CLIENT_SECRET, 1, true))
    for line in emu.env.PRIVATE_KEY:gmatch("[^\n]+") do
      if #line > 20 and not line:find("-----", 1, true) then assert.is_nil(text:find(line, 1, true)) end
    end
    assert.are.equal(tonumber("600", 8), host.stat(path).mode)
    assert.is_nil(first_output:find(emu.env.CLIENT_SECRET, 1, true))
  end)

  it("creates nothing new on a second run", function()
    local args = base_args("wf1", "wf1.json")
    table.insert(args, 1, "realtime-import")
    local code, out = aep_run(args)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("done: 0 created, 17 found\n", 1, true), out)
    assert.is_nil(out:find("\ncreated ", 1, true))
    assert.are.same(first_resources, resources("wf1"))
    assert.truthy(out:find("verified%s+25 profiles and 20 events"), out)
  end)

  it("creates nothing new when the manifest is lost, and marks what it only found", function()
    local args = base_args("wf1", "wf1-lost.json")
    table.insert(args, 1, "streaming")
    table.insert(args, 1, "datasets")
    table.insert(args, 1, "schemas")
    local code, out = aep_run(args)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("done: 0 created, 15 found\n", 1, true), out)
    local m = json.decode(read(tmp .. "/wf1-lost.json"))
    for _, r in ipairs(m.resources) do assert.is_false(r.created, r.var) end
    assert.are.same(first_resources, resources("wf1"))
  end)

  it("tears down exactly what it created, leaving the sandbox as it was", function()
    local code, out = aep_run(base_args("wf1", "wf1.json", { "teardown" }))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("done: 0 created, 0 found, 14 deleted", 1, true), out)
    assert.are.same({}, resources("wf1"))
    -- the data went with the datasets, as in AEP: no record, no profile left in the sandbox
    local state = json.decode(assert(http.request { url = emu.url .. "/emulator/state" }).body)
    assert.are.equal(0, state.sandboxes.wf1.records)
    assert.is_nil(profile.get(client_for("wf1"), { id = "aodowling1@examiner.com", ns = "email" }))
    local m = json.decode(read(tmp .. "/wf1.json"))
    assert.are.equal(0, #m.resources)
    -- a teardown from the manifest that only found things deletes nothing
    local code2, out2 = aep_run(base_args("wf1", "wf1-lost.json", { "teardown" }))
    assert.are.equal(0, code2, out2)
    assert.truthy(out2:find("kept%s+dataset"), out2)
    assert.truthy(out2:find("done: 0 created, 0 found, 14 kept\n", 1, true), out2)
    assert.is_nil(out2:find("\ndeleted ", 1, true), out2)
  end)
end)

describe("aep run (other paths)", function()
  it("runs with the legacy JWT exchange", function()
    local code, out = aep_run(base_args("wf2", "wf2.json", { "auth", "schemas", "--jwt" }))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("IMS token%s+JWT exchange"), out)
    assert.truthy(out:find("created%s+schema%s+aep Loyalty Events"), out)
    local jwt_calls = requests("/ims/exchange/jwt")
    assert.is_true(#jwt_calls >= 1)
    assert.are.equal(200, jwt_calls[#jwt_calls].status)
  end)

  it("runs with the legacy JWT exchange and the key in PKCS#1 form (--private-key FILE)", function()
    local k8, k1 = tmp .. "/jwt-k8.pem", tmp .. "/jwt-k1.pem"
    local f = assert(io.open(k8, "wb"))
    f:write(emu.env.PRIVATE_KEY)
    f:close()
    assert.is_true(os.execute("openssl rsa -in " .. k8 .. " -traditional -out " .. k1 .. " 2>/dev/null") == true)
    assert.truthy(read(k1):find("-----BEGIN RSA PRIVATE KEY-----", 1, true))
    local code, out = aep_run(base_args("wf2", "wf2.json", { "auth", "schemas", "--jwt", "--private-key", k1 }))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("IMS token%s+JWT exchange"), out)
    assert.truthy(out:find("found%s+schema%s+aep Loyalty Events"), out)
  end)

  it("streams through the legacy edge inlet with --legacy-inlet", function()
    local args = base_args("wf3", "wf3.json", { "--legacy-inlet", "--run-name", "legacy" })
    table.insert(args, 1, "realtime-import")
    local code, out = aep_run(args)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("created%s+inlet%s+legacy Streaming Loyalty data"), out)
    assert.truthy(out:find("created%s+event type%s+loyaltyBalanceUpdate"), out)
    assert.truthy(out:find("verified%s+25 profiles and 20 events"), out)
    local code2, out2 = aep_run(base_args("wf3", "wf3.json", { "teardown", "--run-name", "legacy" }))
    assert.are.equal(0, code2, out2)
    -- the two Profile event types stay: the API has no DELETE for them (nor does Adobe document one)
    assert.truthy(out2:find("kept%s+event type%s+loyaltyLevelUpdate %(the API offers no way to delete it%)"), out2)
    assert.are.same({ eventType = 2 }, resources("wf3"))
  end)

  it("imports the samples by batch ingestion and reads them back", function()
    local code, out = aep_run(base_args("wf7", "wf7.json", { "auth", "schemas", "datasets", "batch-import", "lookup", "--verify" }))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("created%s+batch%s+loyalty%-profiles%.json %(25 profiles%)"), out)
    assert.truthy(out:find("created%s+batch%s+loyalty%-events%.json %(20 events%)"), out)
    local _, n = out:gsub("ok%s+batch status%s+success", "")
    assert.are.equal(2, n, out)
    assert.truthy(out:find("verified%s+25 profiles and 20 events"), out)
    local m = json.decode(read(tmp .. "/wf7.json"))
    assert.are.equal("string", type(m.variables.BATCH_ID_PROFILE))
    assert.are.equal("string", type(m.variables.BATCH_ID_EVENT))
  end)

  it("renews a token that expires in the middle of a run", function()
    local ims = require "aep.ims"
    local new = ims.new
    ims.new = function(...)
      local s = new(...)
      local invalidate = s.invalidate
      s.invalidate = function(self)
        faults("") -- the fault is for one request
        return invalidate(self)
      end
      return s
    end
    local before = #requests("/ims/token/v3")
    faults("schemas:expire_token=1")
    local ok, code, out = pcall(aep_run, base_args("wf4", "wf4.json", { "auth", "schemas" }))
    ims.new = new
    assert.is_true(ok, code)
    assert.are.equal(0, code, out)
    -- one token for the run, one more after the expired one was refused
    assert.are.equal(2, #requests("/ims/token/v3") - before)
  end)

  it("surfaces a 400 validation report, the failing step and how to resume", function()
    local mapping = tmp .. "/as_is.lua"
    local f = assert(io.open(mapping, "wb"))
    f:write("return function(record) return record end\n")
    f:close()
    local code, out = aep_run(base_args("wf5", "wf5.json", { "schemas", "datasets", "streaming", "--profile-mapping", mapping }))
    assert.are.equal(1, code, out)
    assert.truthy(out:find("aep: step 'streaming: " .. mapping:gsub("%p", "%%%0") .. " %-> PROFILE dataset' failed:"), out)
    assert.truthy(out:find("POST " .. emu.url:gsub("%p", "%%%0") .. "/collection/%x+%?syncValidation=true: 400"), out)
    assert.truthy(out:find("_exchangeinternal", 1, true), out)
    assert.truthy(out:find("profile record 1 %(data/AEP_loyalty_profiles.json%) failed synchronous validation"), out)
    assert.truthy(out:find("aep: to resume, run `aep run schemas datasets streaming", 1, true), out)
  end)

  it("completes under injected 429, 503 and lost answers without duplicates", function()
    faults("*:429=0.1,503=0.1,retry_after=0;/data:drop_after=0.05", 42)
    local args = base_args("wf6", "wf6.json", { "--retries", "8" })
    table.insert(args, 1, "realtime-import")
    local code, out = aep_run(args)
    faults("")
    assert.are.equal(0, code, out)
    assert.truthy(out:find("verified%s+25 profiles and 20 events"), out)
    assert.are.same({ fieldgroup = 2, schema = 2, descriptor = 2, dataset = 2, connection = 1,
                      inlet = 1, sourceConnection = 1, targetConnection = 2, flow = 2 }, resources("wf6"))
    local injected = 0
    for _, r in ipairs(requests("/")) do
      if r.status == 429 or r.status == 503 or r.fault then injected = injected + 1 end
    end
    assert.is_true(injected > 0)
  end)

  -- a 500 is retried on a GET; on a create it is an unknown outcome: the step looks the resource
  -- up, then creates it only if it is still absent (never "Title not unique", never twice)
  it("completes under injected 500s and 429s, creating each resource once", function()
    local before = json.decode(assert(http.request({ url = emu.url .. "/emulator/requests?since=0&limit=1&path=/nothing" })).body).total
    faults("*:500=0.05,429=0.05,retry_after=0", 7)
    local args = base_args("wf7", "wf7.json", { "--retries", "8" })
    table.insert(args, 1, "realtime-import")
    local code, out = aep_run(args)
    faults("")
    assert.are.equal(0, code, out)
    assert.truthy(out:find("verified%s+25 profiles and 20 events"), out)
    assert.are.same({ fieldgroup = 2, schema = 2, descriptor = 2, dataset = 2, connection = 1,
                      inlet = 1, sourceConnection = 1, targetConnection = 2, flow = 2 }, resources("wf7"))
    local injected = {}
    local log_doc = json.decode(assert(http.request({ url = emu.url .. "/emulator/requests?limit=100000&since=" .. before })).body)
    for _, r in ipairs(log_doc.requests) do
      if r.fault == "500" or r.fault == "429" then
        local k = r.fault .. " " .. r.method
        injected[k] = (injected[k] or 0) + 1
      end
    end
    -- the seed gives a 500 to a create and 429s (GETs retried on 500: client_platform_spec)
    assert.is_true((injected["500 POST"] or 0) > 0, json.encode(injected))
    assert.is_true((injected["429 GET"] or 0) + (injected["429 POST"] or 0) > 0, json.encode(injected))
  end)
end)

describe("aep run with Profile's delay", function()
  it("polls for the profile with a bounded wait until it shows", function()
    local lagged = emulator.start({ "--profile-lag", "2" })
    local ok, code, out = pcall(aep_run, { "realtime-import", "--env", lagged.env_file, "--manifest", tmp .. "/lag.json",
      "--wait", "60" })
    lagged.cleanup()
    assert.is_true(ok, code)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("verified%s+25 profiles and 20 events"), out)
  end)

  it("gives up after --wait seconds, saying what it waited for", function()
    local lagged = emulator.start({ "--profile-lag", "3600" })
    local ok, code, out = pcall(aep_run, { "realtime-import", "--env", lagged.env_file, "--manifest", tmp .. "/lag2.json",
      "--wait", "0" })
    lagged.cleanup()
    assert.is_true(ok, code)
    assert.are.equal(1, code, out)
    assert.truthy(out:find("aep: step 'lookup: profile of aodowling1@examiner.com' failed:\n  TIMEOUT: the profile of aodowling1@examiner.com not visible after 0 s", 1, true), out)
  end)
end)

describe("aep run and a running emulator", function()
  it("uses the emulator already serving its data directory, and leaves it running", function()
    local running = emulator.start()
    local state = tmp .. "/reuse-state"
    local r = run.aep({ "run", "auth", "--emulator-dir", running.data_dir }, { env = { XDG_STATE_HOME = state, HOME = tmp } })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.truthy(r.stdout:find("== emulator: using the one already running on " .. running.url, 1, true), r.stdout)
    assert.is_nil(r.stdout:find("stopped", 1, true))
    assert.is_true(require("aep.run.emulator").alive(running.pid))
    running.cleanup()
  end)
end)

describe("aep run realtime-import on a fresh machine", function()
  it("starts an emulator itself, runs the flow, shows a profile and stops the emulator", function()
    local state = tmp .. "/state"
    local r = run.aep({ "run", "realtime-import" }, { env = { XDG_STATE_HOME = state, HOME = tmp } })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.truthy(r.stdout:find("== emulator: starting `aep emulator`", 1, true), r.stdout)
    assert.truthy(r.stdout:find("verified%s+25 profiles and 20 events"), r.stdout)
    assert.truthy(r.stdout:find("  loyalty level%s+%a+"), r.stdout)
    assert.truthy(r.stdout:find("emulator%s+stopped"), r.stdout)
    local pid = tonumber(r.stdout:match("emulator%s+http://%S+%s+pid (%d+)"))
    assert.is_number(pid)
    assert.is_false(require("aep.run.emulator").alive(pid))
    local env = emulator.read_env(state .. "/aep/emulator/environment.json")
    assert.is_nil((r.stdout .. r.stderr):find(env.CLIENT_SECRET, 1, true))
    -- the same command again: the emulator's state persisted, so nothing new is created
    local r2 = run.aep({ "run", "realtime-import" }, { env = { XDG_STATE_HOME = state, HOME = tmp } })
    assert.are.equal(0, r2.status, r2.stdout .. r2.stderr)
    assert.truthy(r2.stdout:find("done: 0 created, 17 found\n", 1, true), r2.stdout)
  end)

end)
