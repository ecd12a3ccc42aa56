-- The emulator's DCS inlets: /collection/:inletId and /collection/batch/:inletId, against a
-- started emulator (support.emulator), set up over HTTP (support.fixtures).
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"

local DCS = "http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet"

describe("emulator streaming", function()
  local emu, api, ids

  setup(function()
    -- a fixed tenant: where violations come in HashMap order, the order depends on the keys
    emu, api, ids = fixtures.start { "--tenant", "exchangeinternal" }
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  local function collect(msg, query, opts)
    return api:post("/collection/" .. ids.inlet_id .. (query or ""), msg,
      { auth = false, headers = opts and opts.headers })
  end

  local function pre(inlet)
    return "inletId: [" .. (inlet or ids.inlet_id) .. "] imsOrgId: [" .. ids.org .. "] "
  end

  local function envelope_error(message)
    return { type = DCS, status = 400, title = "Invalid XDM Message Format",
             report = { message = pre() .. message } }
  end

  describe("single message", function()
    it("answers the collection's synchronousValidation=true with a synchronousValidation pass", function()
      local s, b = collect(fixtures.profile_message(ids, { loyaltyID = "sync1@example.com" }),
        "?synchronousValidation=true")
      assert.are.equal(200, s)
      assert.are.equal(ids.inlet_id, b.inletId)
      assert.matches("^%d+:%d+:%d+$", b.xactionId)
      assert.are.equal("number", type(b.receivedTimeMs))
      assert.are.same({ status = "pass" }, b.synchronousValidation)
      assert.is_nil(b.syncValidation)
    end)

    it("answers syncValidation=true with a syncValidation pass", function()
      local s, b = collect(fixtures.profile_message(ids, { loyaltyID = "sync2@example.com" }), "?syncValidation=true")
      assert.are.equal(200, s)
      assert.are.same({ status = "pass" }, b.syncValidation)
      assert.is_nil(b.synchronousValidation)
    end)

    it("answers without the flag {syncValidation: {skipped: true}}", function()
      local s, b = collect(fixtures.profile_message(ids, { loyaltyID = "async1@example.com" }))
      assert.are.equal(200, s)
      assert.are.same({ skipped = true }, b.syncValidation)
    end)

    it("stores what it acknowledged, in the dataset's records", function()
      local msg = fixtures.profile_message(ids, { loyaltyID = "stored@example.com", points = 4242 })
      local s, b = collect(msg)
      assert.are.equal(200, s)
      local recs = fixtures.records(api, ids.profile_dataset, "?status=success&limit=1000")
      local found
      for _, r in ipairs(recs.records) do
        if r.xactionId == b.xactionId then found = r end
      end
      assert.is_truthy(found)
      assert.are.equal("success", found.status)
      assert.are.equal(b.receivedTimeMs, found.receivedTimeMs)
      assert.are.same(json.integerize(msg.body.xdmEntity), json.integerize(found.entity))
    end)

    it("serves the Data Ingestion collection's path too", function()
      local s, b = api:post("/data/foundation/import/collection/" .. ids.inlet_id,
        fixtures.profile_message(ids, { loyaltyID = "alias@example.com" }), { auth = false })
      assert.are.equal(200, s)
      assert.are.same({ skipped = true }, b.syncValidation)
    end)
  end)

  describe("synchronous validation", function()
    local T

    -- One violation as AEP reports it (ValidationException.toJSON()).
    local function v(location, pointer, keyword, message, causes)
      return { schemaLocation = location, pointerToViolation = pointer, keyword = keyword, message = message,
               causingExceptions = json.array(causes or {}) }
    end

    -- The whole 400, compared as decoded JSON and, for the array/object distinction cjson
    -- loses, as text: every causingExceptions is a JSON array.
    local function rejects(msg, cause)
      local s, b, resp = collect(msg, "?syncValidation=true")
      assert.are.equal(400, s)
      assert.are.same({
        type = DCS, status = 400, title = "Invalid XDM Message Format",
        report = { message = pre() .. "Message is invalid", cause = { _streamingValidation = { cause } } },
      }, b)
      assert.is_nil(resp.body:find('"causingExceptions":{}', 1, true))
      return b
    end

    local function nothing_stored(before)
      assert.are.equal(before, fixtures.records(api, ids.profile_dataset, "?limit=0").count)
    end

    setup(function() T = "_" .. ids.tenant end)

    it("reports an unknown field (additionalProperties)", function()
      local before = fixtures.records(api, ids.profile_dataset, "?limit=0").count
      local msg = fixtures.profile_message(ids)
      msg.body.xdmEntity.workEmail = { address = "x@example.com" }
      rejects(msg, v("#", "#", "additionalProperties", "extraneous key [workEmail] is not permitted"))
      nothing_stored(before)
    end)

    it("reports a wrong type", function()
      local msg = fixtures.profile_message(ids)
      msg.body.xdmEntity[T].totalLoyaltyPoints = "12000"
      rejects(msg, v("#/properties/" .. T .. "/properties/totalLoyaltyPoints", "#/" .. T .. "/totalLoyaltyPoints",
        "type", "expected type: Number, found: String"))
    end)

    it("reports a value outside the enum", function()
      local msg = fixtures.profile_message(ids)
      msg.body.xdmEntity[T].loyaltyLevel = "Bronze"
      local cause = v("#/properties/" .. T .. "/properties/loyaltyLevel", "#/" .. T .. "/loyaltyLevel", "allOf",
        "#: only 1 subschema matches out of 2",
        { { keyword = "enum", message = "Bronze is not a valid enum value", pointerToViolation = "#/" .. T .. "/loyaltyLevel",
            causingExceptions = json.array {} } })
      rejects(msg, cause)
    end)

    it("reports bad formats (email, date, date-time)", function()
      local msg = fixtures.profile_message(ids, { loyaltyID = "not-an-email" })
      rejects(msg, {
        schemaLocation = "#", pointerToViolation = "#", message = "2 schema violations found",
        causingExceptions = {
          v("#/properties/personalEmail/properties/address", "#/personalEmail/address", "format",
            "[not-an-email] is not a valid email address"),
          v("#/properties/" .. T .. "/properties/loyaltyID", "#/" .. T .. "/loyaltyID", "format",
            "[not-an-email] is not a valid email address"),
        } })
      msg = fixtures.profile_message(ids)
      msg.body.xdmEntity.person.birthDate = "1980-13-45"
      rejects(msg, v("#/properties/person/properties/birthDate", "#/person/birthDate", "format",
        "[1980-13-45] is not a valid date. Expected [yyyy-MM-dd]"))
      msg = fixtures.event_message(ids)
      msg.body.xdmEntity.timestamp = "2018-00-10T22:07:56Z"
      rejects(msg, v("#/properties/timestamp", "#/timestamp", "format",
        "[2018-00-10T22:07:56Z] is not a valid date-time. Expected [yyyy-MM-dd'T'HH:mm:ssZ, " ..
        "yyyy-MM-dd'T'HH:mm:ss.[0-9]{1-9}Z, yyyy-MM-dd'T'HH:mm:ss[+-]HH:mm, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,9}[+-]HH:mm]"))
    end)

    it("requires the primary identity (descriptor)", function()
      local msg = fixtures.profile_message(ids)
      msg.body.xdmEntity[T].loyaltyID = nil
      rejects(msg, v("#/properties/" .. T, "#/" .. T, "required", "required key [loyaltyID] not found"))
    end)

    it("requires _id and timestamp of an event, _id a string", function()
      local msg = fixtures.event_message(ids)
      msg.body.xdmEntity._id, msg.body.xdmEntity.timestamp = nil, nil
      rejects(msg, { schemaLocation = "#", pointerToViolation = "#", message = "2 schema violations found",
        causingExceptions = { v("#", "#", "required", "required key [_id] not found"),
                              v("#", "#", "required", "required key [timestamp] not found") } })
      msg = fixtures.event_message(ids)
      msg.body.xdmEntity._id = 1056110
      rejects(msg, v("#/properties/_id", "#/_id", "type", "expected type: String, found: Integer"))
    end)

    it("stops after 5 violations", function()
      local msg = fixtures.profile_message(ids)
      for i = 1, 7 do msg.body.xdmEntity["extra" .. i] = i end
      local s, b = collect(msg, "?syncValidation=true")
      assert.are.equal(400, s)
      local top = b.report.cause._streamingValidation[1]
      assert.are.equal("5 schema violations found", top.message)
      assert.are.equal(5, #top.causingExceptions)
    end)

    it("reports a message without xdmEntity", function()
      local msg = fixtures.profile_message(ids)
      msg.body.xdmEntity = nil
      local s, b = collect(msg, "?syncValidation=true")
      assert.are.equal(400, s)
      assert.are.same({ { message = "Payload body is missing xdmEntity", causingExceptions = {} } },
        b.report.cause._streamingValidation)
    end)

    it("accepts an invalid message without sync validation, into a failed batch", function()
      local msg = fixtures.profile_message(ids, { loyaltyID = "async-bad@example.com" })
      msg.body.xdmEntity.workEmail = { address = "x@example.com" }
      local s, b = collect(msg)
      assert.are.equal(200, s)
      assert.are.same({ skipped = true }, b.syncValidation)
      local recs = fixtures.records(api, ids.profile_dataset, "?status=failed&limit=1000")
      local found
      for _, r in ipairs(recs.records) do
        if r.xactionId == b.xactionId then found = r end
      end
      assert.are.equal("failed", found.status)
      assert.are.same({ { schemaLocation = "#", pointerToViolation = "#", keyword = "additionalProperties",
                          message = "extraneous key [workEmail] is not permitted", causingExceptions = {} } },
                      found.errors)
      -- validated after the answer; the batch is final once its window has closed
      local view = fixtures.final_batch(api, found.batchId)
      assert.are.equal("failed", view.status)
      assert.are.same({ inputRecordCount = 1, outputRecordCount = 0, failedRecordCount = 1,
                        inputByteSize = #json.encode(msg.body.xdmEntity) }, view.metrics)
      assert.are.same({ { type = "dataSet", id = ids.profile_dataset } }, view.relatedObjects)
      assert.are.same({
        { code = "INGEST-1212-400", description = "Encountered 1 errors in the data. Successfully ingested 0 rows. " ..
          "Please review the associated diagnostic files for more details." },
        { code = "INGEST-1201-400", recordCount = 1,
          description = "The row has a value that does not conform to the schema. Fix the value and try again." },
      }, view.errors)
    end)
  end)

  describe("schema changes", function()
    local SR = "/data/foundation/schemaregistry/tenant"
    local XED = { headers = { Accept = "application/vnd.adobe.xed+json" } }

    it("validates against the schema as it is now, descriptors included", function()
      local T = "_" .. ids.tenant
      local stamp = tostring(os.time()) .. tostring(math.random(1000, 9999))
      local s, schema = api:post(SR .. "/schemas", {
        type = "object", title = "Changing " .. stamp,
        allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" },
                  { ["$ref"] = "https://ns.adobe.com/xdm/context/profile-personal-details" } },
        ["meta:immutableTags"] = { "union" } }, XED)
      fixtures.expect(s, 201, schema, "schema")
      local ds = fixtures.dataset(api, "Changing " .. stamp, schema["$id"])
      local entity = { person = nil, identityMap = { ECID = { { id = "42" } } } }
      local function send(e)
        return collect(fixtures.envelope(ids, schema["$id"], ds, e), "?syncValidation=true")
      end
      assert.are.equal(200, (send(entity)))

      -- a primary identity descriptor makes its field mandatory at once
      local s2, d = api:post(SR .. "/descriptors", {
        ["@type"] = "xdm:descriptorIdentity", ["xdm:sourceSchema"] = schema["$id"], ["xdm:sourceVersion"] = 1,
        ["xdm:sourceProperty"] = "/personalEmail/address", ["xdm:namespace"] = "Email",
        ["xdm:property"] = "xdm:code", ["xdm:isPrimary"] = true }, XED)
      fixtures.expect(s2, 201, d, "descriptor")
      local s3, b = send(entity)
      assert.are.equal(400, s3)
      assert.are.same({ schemaLocation = "#", pointerToViolation = "#", keyword = "required",
                        message = "required key [personalEmail] not found", causingExceptions = {} },
                      b.report.cause._streamingValidation[1])
      local s4 = api:request("DELETE", SR .. "/descriptors/" .. d["@id"])
      assert.are.equal(204, s4)
      assert.are.equal(200, (send(entity)))

      -- a field group added to the schema makes its fields known
      local extra = fixtures.profile_mixin(ids.tenant, "Changing extra " .. stamp)
      local s5, fg = api:post(SR .. "/fieldgroups", extra, XED)
      fixtures.expect(s5, 201, fg, "field group")
      entity[T] = { loyaltyID = "changing@example.com" }
      local s6, b6 = send(entity)
      assert.are.equal(400, s6)
      assert.are.equal("extraneous key [" .. T .. "] is not permitted", b6.report.cause._streamingValidation[1].message)
      local s7 = api:patch(SR .. "/schemas/" .. fixtures.url_encode(schema["$id"]),
        { { op = "add", path = "/allOf/-", value = { ["$ref"] = fg["$id"] } } }, XED)
      assert.are.equal(200, s7)
      assert.are.equal(200, (send(entity)))
    end)
  end)

  describe("request errors", function()
    it("answers invalid JSON with 400", function()
      local s, b = collect('{"header": {', nil)
      assert.are.equal(400, s)
      assert.are.equal(DCS, b.type)
      assert.are.equal(400, b.status)
      assert.are.equal("Invalid XDM Message Format", b.title)
      assert.matches("^" .. pre():gsub("%p", "%%%0") .. "Message is not valid JSON", b.report.message)
    end)

    it("answers an unknown inlet with DCS's 400", function()
      local bogus = string.rep("ab", 32)
      local s, b = api:post("/collection/" .. bogus, fixtures.profile_message(ids), { auth = false })
      assert.are.equal(400, s)
      assert.are.same({ type = DCS, status = 400, title = "Invalid inlet",
                        report = { message = "inletId: [" .. bogus .. "] Inlet not found" } }, b)
      s, b = api:post("/collection/batch/" .. bogus, { messages = { fixtures.profile_message(ids) } }, { auth = false })
      assert.are.equal(400, s)
      assert.are.equal("Invalid inlet", b.title)
    end)

    it("answers a payload over 1 MB with 413", function()
      local entity = fixtures.profile_entity(ids, { loyaltyID = "big@example.com" })
      entity.person.name.lastName = string.rep("x", 1048576)
      local s, b = collect(fixtures.envelope(ids, ids.profile_schema, ids.profile_dataset, entity))
      assert.are.equal(413, s)
      assert.are.equal(DCS, b.type)
      assert.are.equal(413, b.status)
      assert.are.equal("Payload Too Large", b.title)
      assert.matches("exceeds the limit of 1048576 bytes", b.report.message, 1, true)
    end)

    it("accepts a payload of exactly 1 MB", function()
      local msg = fixtures.profile_message(ids, { loyaltyID = "edge@example.com" })
      local text = json.encode(msg)
      msg.header.source.name = string.rep("s", 1048576 - #text + #msg.header.source.name)
      local s = api:post("/collection/" .. ids.inlet_id, json.encode(msg), { auth = false })
      assert.are.equal(200, s)
    end)
  end)

  describe("envelope", function()
    it("rejects a wrong imsOrgId and accepts an absent one", function()
      local msg = fixtures.profile_message(ids)
      msg.header.imsOrgId = "0000000000000000@AdobeOrg"
      local s, b = collect(msg)
      assert.are.equal(400, s)
      assert.are.same(envelope_error("Message has an absent or wrong ims org in the header"), b)
      msg.header.imsOrgId = nil
      s = collect(msg)
      assert.are.equal(200, s)
    end)

    it("rejects a message without schemaRef as unknown xdm format", function()
      local msg = fixtures.profile_message(ids)
      msg.body.xdmMeta = nil
      local s, b = collect(msg)
      assert.are.equal(400, s)
      assert.are.same(envelope_error("Message has unknown xdm format"), b)
      msg = fixtures.profile_message(ids)
      msg.header.schemaRef = nil
      s, b = collect(msg)
      assert.are.same(envelope_error("Message has unknown xdm format"), b)
    end)

    it("rejects header and xdmMeta schemaRefs that disagree", function()
      local msg = fixtures.profile_message(ids)
      msg.body.xdmMeta.schemaRef.id = ids.event_schema
      local s, b = collect(msg)
      assert.are.equal(400, s)
      assert.are.same(envelope_error(
        "Message has unknown xdm format: header schemaRef does not match xdmMeta schemaRef"), b)
    end)

    it("rejects a schema that is not the dataset's", function()
      local msg = fixtures.envelope(ids, ids.event_schema, ids.profile_dataset, fixtures.event_entity(ids))
      local s, b = collect(msg)
      assert.are.equal(400, s)
      assert.are.same(envelope_error(string.format("Message schema [%s] does not match the schema [%s] of dataset [%s]",
        ids.event_schema, ids.profile_schema, ids.profile_dataset)), b)
    end)

    it("rejects an absent or unknown datasetId", function()
      local msg = fixtures.profile_message(ids)
      msg.header.datasetId = nil
      local s, b = collect(msg)
      assert.are.equal(400, s)
      assert.are.same(envelope_error("Message has an absent dataset id in the header"), b)
      msg.header.datasetId = "5c8c3c555033b814b69f947f"
      s, b = collect(msg)
      assert.are.same(envelope_error("Message has an unknown dataset id [5c8c3c555033b814b69f947f]"), b)
    end)
  end)

  describe("flows and inlets", function()
    it("requires flowId on a connection with a dataflow, and checks it", function()
      local conn = fixtures.streaming_connection(api, { dataflow = true, dataset_id = ids.profile_dataset,
                                                        schema_id = ids.profile_schema })
      local fids = setmetatable({ inlet_id = conn.inlet_id, source_id = conn.source_id }, { __index = ids })
      local msg = fixtures.profile_message(fids, { loyaltyID = "flow@example.com" })
      local url = "/collection/" .. conn.inlet_id
      local s, b = api:post(url, msg, { auth = false })
      assert.are.equal(400, s)
      assert.are.equal(pre(conn.inlet_id) .. "Message has an absent flow id in the header", b.report.message)
      msg.header.flowId = "not-a-flow"
      s, b = api:post(url, msg, { auth = false })
      assert.are.equal(pre(conn.inlet_id) .. "Message has an unknown flow id [not-a-flow]", b.report.message)
      msg.header.flowId = conn.flow_id
      s = api:post(url, msg, { auth = false })
      assert.are.equal(200, s)
      msg.header.flowId = nil
      s = api:post(url, msg, { auth = false, headers = { ["x-adobe-flow-id"] = conn.flow_id } })
      assert.are.equal(200, s)
      local ev = fixtures.envelope(fids, ids.event_schema, ids.event_dataset, fixtures.event_entity(ids),
        { flowId = conn.flow_id })
      s, b = api:post(url, ev, { auth = false })
      assert.are.equal(400, s)
      assert.are.equal(pre(conn.inlet_id) .. string.format("Message dataset [%s] is not the target of flow [%s]",
        ids.event_dataset, conn.flow_id), b.report.message)
    end)

    it("accepts messages without flowId on a legacy edge inlet (R4)", function()
      local conn = fixtures.streaming_connection(api, { legacy = true })
      local s, b = api:post("/collection/" .. conn.inlet_id .. "?synchronousValidation=true",
        fixtures.profile_message(ids, { loyaltyID = "legacy@example.com" }), { auth = false })
      assert.are.equal(200, s)
      assert.are.same({ status = "pass" }, b.synchronousValidation)
    end)

    it("answers 401 on an authenticated inlet without a valid token", function()
      local conn = fixtures.streaming_connection(api, { authenticated = true })
      local url = "/collection/" .. conn.inlet_id
      local msg = fixtures.profile_message(ids, { loyaltyID = "auth@example.com" })
      local s, b = api:post(url, msg, { auth = false })
      assert.are.equal(401, s)
      assert.are.same({ type = "https://ns.adobe.com/adobecloud/problem/data-collection-service-authorization",
                        status = "401", title = "Authorization",
                        report = { message = "[" .. conn.inlet_id .. "] Ims service token is empty" } }, b)
      s, b = api:post(url, msg, { auth = false, headers = { Authorization = "Bearer nope" } })
      assert.are.equal(401, s)
      assert.are.equal("[" .. conn.inlet_id .. "] Ims service token is invalid", b.report.message)
      s = api:post(url, msg, { auth = false, headers = { Authorization = "Bearer " .. api.token } })
      assert.are.equal(200, s)
      s = api:post("/collection/batch/" .. conn.inlet_id, { messages = { msg } }, { auth = false })
      assert.are.equal(401, s)
    end)
  end)

  describe("batch", function()
    it("answers 207 with one result per message, accepted and rejected", function()
      local good = fixtures.profile_message(ids, { loyaltyID = "batch1@example.com" })
      local wrong_org = fixtures.profile_message(ids, { loyaltyID = "batch2@example.com" })
      wrong_org.header.imsOrgId = "1111111111111111@AdobeOrg"
      local event = fixtures.event_message(ids, { loyaltyID = "batch1@example.com", id = "b-evt-1" })
      local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = { good, wrong_org, event, "junk" } },
        { auth = false })
      assert.are.equal(207, s)
      assert.are.equal(ids.inlet_id, b.inletId)
      assert.matches("^%d+:%d+:%d+$", b.batchId)
      assert.are.equal("number", type(b.receivedTimeMs))
      assert.are.same({
        { xactionId = b.batchId .. ":0" },
        { statusCode = 400, message = pre() .. "Message has an absent or wrong ims org in the header" },
        { xactionId = b.batchId .. ":2" },
        { statusCode = 400, message = pre() .. "Message has unknown xdm format" },
      }, b.responses)
      local recs = fixtures.records(api, ids.event_dataset, "?limit=1000")
      local found
      for _, r in ipairs(recs.records) do
        if r.xactionId == b.batchId .. ":2" then found = r end
      end
      assert.are.equal("success", found.status)
    end)

    it("answers invalid JSON and a body without messages with 400", function()
      local s, b = api:post("/collection/batch/" .. ids.inlet_id, "[1,", { auth = false })
      assert.are.equal(400, s)
      assert.are.equal(DCS, b.type)
      s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = json.array {} }, { auth = false })
      assert.are.equal(400, s)
      assert.are.same(envelope_error("Batch has no messages"), b)
    end)
  end)
end)
