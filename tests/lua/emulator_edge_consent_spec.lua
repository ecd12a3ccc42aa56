-- setConsent on the emulator's Edge Network (lua/aep/emulator/edge.lua) writes the Adobe 2.0
-- consent value to the datastream's profile dataset (help/landing/governance-privacy-security/
-- consent/adobe/sdk.md, dataset.md), through the same asynchronous pipeline as events: a schema
-- with the standard "Consent and Preference Details" field group takes it into the dataset and
-- Real-Time Customer Profile; a schema without the consent fields sends it to a failed batch.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"
local http = require "aep.http"

local SCHEMAS = "/data/foundation/schemaregistry/tenant"
local CONSENTS = "https://ns.adobe.com/xdm/mixins/profile-consents"
local MEMBER = "consent.member@example.com"

describe("emulator: setConsent writes to the datastream's profile dataset", function()
  local emu, api, ids, consent_dataset, ds

  local function post(path, body)
    local resp = assert(http.request { method = "POST", url = emu.url .. path,
      headers = { ["Content-Type"] = "text/plain;charset=UTF-8" }, body = json.encode(body) })
    return resp.status, resp.body ~= "" and json.decode(resp.body) or nil
  end

  local function set_consent(datastream, consent, identity_map)
    return post("/ee/v1/privacy/set-consent?configId=" .. datastream, { consent = consent, identityMap = identity_map })
  end

  local function records(dataset, want, status)
    return fixtures.poll(function()
      local got = fixtures.records(api, dataset, status and ("?status=" .. status) or "")
      return got.count >= want and got
    end, want .. " records in " .. dataset)
  end

  local function adobe2(value) return { standard = "Adobe", version = "2.0", value = value } end

  local VALUE = {
    collect = { val = "y" }, share = { val = "n" }, personalize = { content = { val = "y" } },
    marketing = { preferred = "email", email = { val = "y", subscriptions = { weekly = { val = "y", type = "free" } } } },
    metadata = { time = "2024-03-01T10:00:00+00:00" },
  }
  local EMAIL_MAP = { Email = { { id = MEMBER, authenticatedState = "authenticated", primary = true } } }

  setup(function()
    emu, api, ids = fixtures.start()
    local accept = { headers = { Accept = "application/vnd.adobe.xed+json" } }
    -- help/landing/governance-privacy-security/consent/adobe/dataset.md: a Profile-enabled schema of
    -- the Individual Profile class with Consent and Preference Details (identityMap: the class's)
    local s, schema = api:post(SCHEMAS .. "/schemas/", {
      type = "object", title = "Consent Profiles", description = "Consents and preferences",
      allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" }, { ["$ref"] = CONSENTS } },
      ["meta:immutableTags"] = { "union" } }, accept)
    fixtures.expect(s, 201, schema, "consent schema")
    consent_dataset = fixtures.dataset(api, "Consent Profiles", schema["$id"])
    local b
    s, b = api:post("/emulator/datastreams", { name = "Consent web", eventDataset = ids.event_dataset,
                                               profileDataset = consent_dataset }, { auth = false })
    ds = fixtures.expect(s, 201, b, "datastream")
  end)

  teardown(function() if emu then emu.cleanup() end end)

  it("lists the standard field group and data type in the Schema Registry", function()
    local s, fg = api:get("/data/foundation/schemaregistry/global/fieldgroups/" .. fixtures.url_encode(CONSENTS),
      { headers = { Accept = "application/vnd.adobe.xed+json; version=1" } })
    assert.are.equal(200, s, json.encode(fg))
    assert.are.equal("Consent and Preference Details", fg.title)
    assert.are.same({ "https://ns.adobe.com/xdm/context/profile" }, fg["meta:intendedToExtend"])
    local consents = fg.definitions["profile-consents"].properties.consents.properties
    assert.are.same({ "y", "n", "p", "u", "dy", "dn", "LI", "CT", "CP", "VI", "PI" }, consents.collect.properties.val.enum)
    assert.are.equal("map", consents.idSpecific["meta:xdmType"])
    local dt
    s, dt = api:get("/data/foundation/schemaregistry/global/datatypes/" ..
      fixtures.url_encode("https://ns.adobe.com/xdm/datatypes/consents-and-preferences"),
      { headers = { Accept = "application/vnd.adobe.xed+json; version=1" } })
    assert.are.equal(200, s, json.encode(dt))
    assert.is_table(dt.definitions["consent-preferences"].properties.consents.properties.adID)
  end)

  it("an Adobe 2.0 value becomes the profile record {identityMap + ECID, consents}; Profile shows it", function()
    local s, b = set_consent(ds.id, { adobe2(VALUE) }, EMAIL_MAP)
    assert.are.equal(200, s, json.encode(b))
    local ecid = b.handle[1].payload[1].id
    local got = records(consent_dataset, 1)
    assert.are.equal(1, got.count)
    assert.are.equal("success", got.records[1].status)
    assert.are.same({
      identityMap = {
        Email = { { id = MEMBER, authenticatedState = "authenticated", primary = true } },
        ECID = { { id = ecid, authenticatedState = "ambiguous", primary = false } },
      },
      consents = VALUE,
    }, got.records[1].entity)
    -- Real-Time Customer Profile: the member's profile, by Email and by the device's ECID
    local sp, prof = api:get("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=" ..
      fixtures.url_encode(MEMBER) .. "&entityIdNS=Email")
    assert.are.equal(200, sp, json.encode(prof))
    local _, p = next(prof)
    assert.are.same(VALUE, p.entity.consents)
    assert.are.same({ consent_dataset }, p.sources)
    local se, by_ecid = api:get("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=" ..
      ecid .. "&entityIdNS=ECID")
    assert.are.equal(200, se)
    assert.are.same(prof, by_ecid)
  end)

  it("Adobe 1.0 and IAB TCF entries write nothing to the profile dataset", function()
    local before = fixtures.records(api, consent_dataset).count
    local s, b = set_consent(ds.id, {
      { standard = "Adobe", version = "1.0", value = { general = "in" } },
      { standard = "IAB TCF", version = "2.0", value = "CO1Z4yuO1Z4yuAcABBENArCsAP_AAH_AACiQGCNX_T5eb2vj-3Zd", gdprApplies = true },
    }, EMAIL_MAP)
    assert.are.equal(200, s, json.encode(b))
    -- the pipeline keeps order: once a later 2.0 record is in, the 1.0/IAB request would have been too
    s = set_consent(ds.id, { adobe2 { collect = { val = "n" } } }, EMAIL_MAP)
    assert.are.equal(200, s)
    local got = records(consent_dataset, before + 1)
    assert.are.equal(before + 1, got.count)
    assert.are.same({ collect = { val = "n" } }, got.records[#got.records].entity.consents)
  end)

  it("a profile dataset without the consent fields: the record goes to the window's failed batch", function()
    local s, loyalty = api:post("/emulator/datastreams", { eventDataset = ids.event_dataset,
                                                           profileDataset = ids.profile_dataset }, { auth = false })
    assert.are.equal(201, s, json.encode(loyalty))
    local before = fixtures.records(api, ids.profile_dataset).count
    s = set_consent(loyalty.id, { adobe2 { collect = { val = "y" } } }, EMAIL_MAP)
    assert.are.equal(200, s)
    local failed = records(ids.profile_dataset, 1, "failed")
    assert.are.equal(1, failed.count)
    assert.are.same({ collect = { val = "y" } }, failed.records[1].entity.consents)
    assert.matches("extraneous key %[consents%] is not permitted", json.encode(failed.records[1].errors))
    local batch = fixtures.final_batch(api, failed.records[1].batchId)
    assert.are.equal("failed", batch.status)
    assert.are.equal(1, batch.failedRecordCount)
    assert.are.equal(before, fixtures.records(api, ids.profile_dataset, "?status=success").count)
  end)

  it("answers a datastream whose profile dataset is gone with EXEG-0104-422, as events", function()
    local schema_s, schema = api:post(SCHEMAS .. "/schemas/", {
      type = "object", title = "Short-lived consents", description = "Deleted below",
      allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" }, { ["$ref"] = CONSENTS } } },
      { headers = { Accept = "application/vnd.adobe.xed+json" } })
    fixtures.expect(schema_s, 201, schema, "schema")
    local gone = fixtures.dataset(api, "Short-lived consents", schema["$id"], false)
    local s, doomed = api:post("/emulator/datastreams", { eventDataset = ids.event_dataset, profileDataset = gone },
      { auth = false })
    assert.are.equal(201, s, json.encode(doomed))
    local sd = api:request("DELETE", "/data/foundation/catalog/dataSets/" .. gone)
    assert.are.equal(200, sd)
    local b
    s, b = post("/ee/v1/privacy/set-consent?configId=" .. doomed.id .. "&requestId=r-gone",
      { consent = { adobe2 { collect = { val = "y" } } } })
    assert.are.equal(422, s)
    assert.are.same({ type = "https://ns.adobe.com/aep/errors/EXEG-0104-422", status = 422,
      title = "Unprocessable entity",
      detail = "profile dataset " .. gone .. " of datastream " .. doomed.id .. " no longer exists in sandbox prod",
      report = { requestId = "r-gone", orgId = ids.org } }, b)
  end)
end)
