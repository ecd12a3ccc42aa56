-- The emulator's DCS inlets: /collection/:inletId and /collection/batch/:inletId, against a
-- started emulator (support.emulator), set up over HTTP (support.fixtures).
package.path = "tests/lua/?.lua;" .. package.path
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"
local json = require "aep.json"

local DCS = "http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet"

describe("emulator streaming", function()
  local emu, api, ids

  setup(function()
    emu = emulator.start()
    api = fixtures.client(emu)
    ids = fixtures.loyalty(api)
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
