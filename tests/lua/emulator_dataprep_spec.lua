-- The emulator's Data Prep: the mapping set API at /data/foundation/conversion (create validated
-- against the target schema, list, get with ?version=, PUT as a new version, mappings), preview
-- equal to the engine's output, expression validation, raw data on an HTTP API dataflow with a
-- mapping set (same Profile as the XDM stream of the Lua mapping; mapping failures in failed
-- batches with Data Prep's errors) and upserts (only the fields sent change).
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"
local cjson = require "cjson"
local dataprep = require "aep.dataprep"

local DP = "/data/foundation/conversion"
local ENTITIES = "/data/core/ups/access/entities"

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function poll(fn, what) return fixtures.poll(fn, what) end

describe("emulator Data Prep", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--batch-window", "0.2" })
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  local function loyalty_set()
    local set = cjson.decode(read("mappings/loyalty_profile.mapping-set.json"))
    set.xdmSchema = ids.profile_schema
    return set
  end

  -- a raw-data HTTP API dataflow to the profile dataset with the mapping set id/version
  local function raw_flow(mapping_id, version, raw)
    local name = "raw " .. mapping_id .. " " .. version .. tostring(raw)
    local spec = { id = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", version = "1.0" }
    local s, b = api:post("/data/foundation/flowservice/connections", { name = name, connectionSpec = spec,
      auth = { specName = "Streaming Connection", params = { dataType = raw == false and "xdm" or "raw", name = name } } })
    fixtures.expect(s, 201, b, "connection")
    local s2, c = api:get("/data/foundation/flowservice/connections/" .. b.id)
    local inlet = fixtures.expect(s2, 200, c, "get connection").items[1].auth.params.inletId
    local s3, src = api:post("/data/foundation/flowservice/sourceConnections",
      { name = name .. " source", baseConnectionId = b.id, connectionSpec = spec })
    fixtures.expect(s3, 201, src, "source")
    local s4, tgt = api:post("/data/foundation/flowservice/targetConnections", { name = name .. " target",
      data = { schema = { id = ids.profile_schema } }, params = { dataSetId = ids.profile_dataset },
      connectionSpec = { id = "c604ff05-7f1a-43c0-8e18-33bf874cb11c", version = "1.0" } })
    fixtures.expect(s4, 201, tgt, "target")
    local s5, flow = api:post("/data/foundation/flowservice/flows", { name = name .. " flow",
      flowSpec = { id = "c1a19761-d2c7-4702-b9fa-fe91f0613e81", version = "1.0" },
      sourceConnectionIds = { src.id }, targetConnectionIds = { tgt.id },
      transformations = { { name = "Mapping", params = { mappingId = mapping_id, mappingVersion = version } } } })
    fixtures.expect(s5, 201, flow, "flow")
    return inlet, flow.id
  end

  local function profile_of(id)
    return poll(function()
      local s, b = api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=" .. fixtures.url_encode(id) ..
        "&entityIdNS=Email")
      if s == 200 then
        local _, p = next(b)
        return p
      end
    end, "profile " .. id)
  end

  describe("mapping sets", function()
    it("creates, lists, gets, updates as a new version and lists the mappings", function()
      local set = loyalty_set()
      set.name = "crud set"
      local s, b = api:post(DP .. "/mappingSets", set)
      fixtures.expect(s, 200, b, "create")
      assert.equal(0, b.version)
      assert.equal(32, #b.id)
      assert.equal(b.createdDate, b.modifiedDate)
      local id = b.id

      s, b = api:get(DP .. "/mappingSets/" .. id)
      fixtures.expect(s, 200, b, "get")
      assert.equal(12, #b.mappings)
      assert.equal("_exchangeinternal.loyaltyID", b.mappings[1].destination)
      assert.equal("_exchangeinternal.loyaltyID", b.mappings[1].destinationXdmPath)
      assert.equal(ids.profile_schema, b.xdmSchema)
      local first_mapping = b.mappings[1].id

      s, b = api:get(DP .. "/mappingSets?limit=10&start=0&name=" .. fixtures.url_encode("crud set"))
      fixtures.expect(s, 200, b, "list")
      assert.equal(1, #b.data)
      assert.equal(id, b.data[1].id)
      assert.same({ count = 1, limit = 10 }, b._page)

      set.mappings = { { sourceType = "ATTRIBUTE", source = "_exchangeinternal.loyaltyID", destination = "_exchangeinternal.loyaltyID" } }
      s, b = api:put(DP .. "/mappingSets/" .. id, set)
      fixtures.expect(s, 200, b, "put")
      assert.equal(1, b.version)
      assert.equal(1, #b.mappings)

      s, b = api:get(DP .. "/mappingSets/" .. id)
      assert.equal(1, fixtures.expect(s, 200, b, "get v1").version)
      s, b = api:get(DP .. "/mappingSets/" .. id .. "?version=0")
      fixtures.expect(s, 200, b, "get v0")
      assert.equal(0, b.version)
      assert.equal(12, #b.mappings)
      s, b = api:get(DP .. "/mappingSets/" .. id .. "?version=7")
      assert.equal(404, s)

      s, b = api:get(DP .. "/mappingSets/" .. id .. "/mappings")
      fixtures.expect(s, 200, b, "mappings")
      assert.equal(1, #b)
      s, b = api:get(DP .. "/mappingSets/" .. id .. "/mappings/" .. b[1].id)
      assert.equal("_exchangeinternal.loyaltyID", fixtures.expect(s, 200, b, "mapping").source)
      s, b = api:get(DP .. "/mappingSets/" .. id .. "/mappings/" .. first_mapping)
      assert.equal(404, s) -- a mapping of version 0 only
      s, b = api:get(DP .. "/mappingSets/nope")
      assert.equal(404, s)
      -- the streaming tutorial's path serves the same mapping sets
      s, b = api:get("/data/foundation/mappingSets/" .. id)
      assert.equal(1, fixtures.expect(s, 200, b, "tutorial path").version)
    end)

    it("refuses a mapping set that does not validate against its target schema, with the engine's words", function()
      local set = { xdmSchema = ids.profile_schema, mappings = {
        { sourceType = "ATTRIBUTE", source = "a", destination = "person.name.firstName" },
        { sourceType = "ATTRIBUTE", source = "b", destination = "person.name.nickname" },
        { sourceType = "STATIC", source = "lots", destination = "_exchangeinternal.totalLoyaltyPoints" },
        { sourceType = "EXPRESSION", source = "upper(", destination = "person.name.lastName" },
      } }
      local s, b = api:post(DP .. "/mappingSets", set)
      assert.equal(400, s)
      assert.equal("Invalid mapping set", b.title)
      local r = b.report.validationResponse
      assert.equal(4, #r)
      assert.equal("SUCCESS", r[1].status)
      assert.same({ "FAILED", "destination 'person.name.nickname' is not a field of the target schema" },
        { r[2].status, r[2].errors[1].exception })
      assert.same({ "FAILED", "type mismatch: cannot convert string 'lots' to an integer" },
        { r[3].status, r[3].errors[1].exception })
      assert.equal("FAILED", r[4].status)

      s, b = api:post(DP .. "/mappingSets/validate", set)
      fixtures.expect(s, 200, b, "validate")
      assert.same(r, b.validationResponse)

      s, b = api:post(DP .. "/mappingSets", { xdmSchema = "https://ns.adobe.com/exchangeinternal/schemas/none", mappings = {} })
      assert.equal(400, s)
      assert.equal("The target schema https://ns.adobe.com/exchangeinternal/schemas/none was not found in sandbox prod", b.detail)
    end)

    it("previews exactly what the engine's compiled:map gives on the same records", function()
      local set = loyalty_set()
      set.mappings[#set.mappings + 1] = { sourceType = "EXPRESSION", source = "to_integer(points)",
        destination = "_exchangeinternal.totalLoyaltyPoints" }
      local records = cjson.decode(read("data/AEP_loyalty_profiles.json"))
      records[2].points = "lots" -- one record with a transformation error
      local s, b = api:post(DP .. "/mappingSets/preview", { data = records, mappingSet = set })
      fixtures.expect(s, 200, b, "preview")
      -- the engine here, on the schema the emulator resolves
      local s2, schema = api:get("/data/foundation/schemaregistry/tenant/schemas/" .. fixtures.url_encode(ids.profile_schema),
        { headers = { Accept = "application/vnd.adobe.xed-full+json;version=1" } })
      fixtures.expect(s2, 200, schema, "schema")
      local compiled = assert(dataprep.compile(set, { schema = schema }))
      assert.equal(#records, #b)
      for i, rec in ipairs(records) do
        local entity, errors = compiled:map(rec)
        assert.same(cjson.decode(cjson.encode(entity)), b[i].data, "record " .. i)
        if errors then assert.same(cjson.decode(cjson.encode(errors)), b[i].errors, "record " .. i)
        else assert.equal(json.null, b[i].errors) end
      end
      assert.equal("to_integer: 'lots' is not a number", b[2].errors[1].exception)
    end)

    it("validates expressions and lists the functions and operators", function()
      local s, b = api:post(DP .. "/languages/el/validate", { expression = 'concat("Hi", ",", "there", "!")' })
      assert.same({ 200, true }, { s, b })
      s, b = api:post(DP .. "/languages/el/validate", { expression = "upper(" })
      assert.equal(400, s)
      assert.equal("unexpected end of expression at offset 6", b.detail)
      s, b = api:get(DP .. "/languages/el/functions")
      assert.equal(200, s)
      assert.equal(#dataprep.function_catalog(), #b)
      s, b = api:get(DP .. "/languages/el/operators")
      assert.equal(200, s)
      assert.equal(#dataprep.operator_catalog(), #b)
    end)

    it("stores sample data", function()
      local s, b = api:post(DP .. "/samples", { sampleData = { { id = 1 } } })
      fixtures.expect(s, 200, b, "sample")
      local s2, g = api:get(DP .. "/samples/" .. b.id)
      assert.equal('[{"id":1}]', fixtures.expect(s2, 200, g, "get sample").sampleData)
    end)
  end)

  describe("raw data on an HTTP API dataflow with a mapping set", function()
    it("ends in the same Profile as the XDM stream of the Lua mapping", function()
      local s, b = api:post(DP .. "/mappingSets", loyalty_set())
      fixtures.expect(s, 200, b, "create")
      local inlet, flow = raw_flow(b.id, 0)
      local records = cjson.decode(read("data/AEP_loyalty_profiles.json"))
      local lua_mapping = dofile("mappings/loyalty_profile.lua")
      -- records 1-3 raw with the flow id as a header, 4-6 as a query parameter; the same records'
      -- XDM (Lua mapping) go to a second, XDM connection under other ids to compare
      local raw_ids, xdm_ids = {}, {}
      local xdm_conn = fixtures.streaming_connection(api, { dataflow = true, dataset_id = ids.profile_dataset,
        schema_id = ids.profile_schema })
      for i = 1, 6 do
        local rec = records[i]
        local s1, r1
        if i <= 3 then
          s1, r1 = api:post("/collection/" .. inlet, rec, { auth = false, headers = { ["x-adobe-flow-id"] = flow } })
        else
          s1, r1 = api:post("/collection/" .. inlet .. "?x-adobe-flow-id=" .. flow, rec, { auth = false })
        end
        fixtures.expect(s1, 200, r1, "raw post")
        assert.same({ "inletId", "receivedTimeMs", "xactionId" }, (function()
          local k = {}
          for key in pairs(r1) do k[#k + 1] = key end
          table.sort(k)
          return k
        end)())
        raw_ids[i] = rec._exchangeinternal.loyaltyID
        local twin = cjson.decode(cjson.encode(rec))
        local xid = "xdm-" .. raw_ids[i]
        twin._exchangeinternal.loyaltyID, twin.personalEmail.address = xid, xid
        local entity = lua_mapping(twin, { tenant = "exchangeinternal" })
        local msg = fixtures.envelope({ org = ids.org, flow_id = xdm_conn.flow_id, source_id = "x" },
          ids.profile_schema, ids.profile_dataset, entity)
        local s2, r2 = api:post("/collection/" .. xdm_conn.inlet_id, msg, { auth = false })
        fixtures.expect(s2, 200, r2, "xdm post")
        xdm_ids[i] = xid
      end
      for i = 1, 6 do
        local a, x = profile_of(raw_ids[i]), profile_of(xdm_ids[i])
        local ea, ex = a.entity, x.entity
        ea.identities, ex.identities = nil, nil
        ex._exchangeinternal.loyaltyID, ex.personalEmail.address = raw_ids[i], raw_ids[i]
        assert.same(ex, ea, "record " .. i)
      end
    end)

    it("fails records whose mapping fails, with Data Prep's errors in the failed batch", function()
      local set = { xdmSchema = ids.profile_schema, mappings = {
        { sourceType = "ATTRIBUTE", source = "email", destination = "_exchangeinternal.loyaltyID" },
        { sourceType = "EXPRESSION", source = "to_integer(points)", destination = "_exchangeinternal.totalLoyaltyPoints" },
      } }
      local s, b = api:post(DP .. "/mappingSets", set)
      fixtures.expect(s, 200, b, "create")
      local inlet, flow = raw_flow(b.id, 0)
      local s1, r1 = api:post("/collection/batch/" .. inlet, { messages = {
        { email = "ok-map@example.com", points = "12" },
        { email = "bad-map@example.com", points = "lots" } } }, { auth = false, headers = { ["x-adobe-flow-id"] = flow } })
      fixtures.expect(s1, 207, r1, "batch")
      local failed = poll(function()
        local page = fixtures.records(api, ids.profile_dataset, "?status=failed&limit=1000")
        for _, rec in ipairs(page.records) do
          if rec.entity and rec.entity.email == "bad-map@example.com" then return rec end
        end
      end, "the failed record")
      assert.same({ { sourceType = "EXPRESSION", source = "to_integer(points)",
        destination = "_exchangeinternal.totalLoyaltyPoints", exception = "to_integer: 'lots' is not a number",
        message = "Data Prep: mapping to_integer(points) -> _exchangeinternal.totalLoyaltyPoints failed: to_integer: 'lots' is not a number" } },
        failed.errors)
      local batch = fixtures.final_batch(api, failed.batchId)
      assert.equal("failed", batch.status)
      local s2, lines = api:get("/data/foundation/export/batches/" .. failed.batchId .. "/meta?path=row_errors%2Fconversion_errors_0.json")
      assert.equal(200, s2)
      local text = type(lines) == "string" and lines or json.encode(lines)
      assert.truthy(text:find("to_integer: 'lots' is not a number", 1, true), text)
      assert.equal(12, profile_of("ok-map@example.com").entity._exchangeinternal.totalLoyaltyPoints)
      -- the record stored server-side is the engine's compiled:map of the record sent (one engine)
      local ok_rec = poll(function()
        local page = fixtures.records(api, ids.profile_dataset, "?status=success&limit=1000")
        for _, rec in ipairs(page.records) do
          if rec.entity._exchangeinternal and rec.entity._exchangeinternal.loyaltyID == "ok-map@example.com" then return rec end
        end
      end, "the stored record")
      local s3, schema = api:get("/data/foundation/schemaregistry/tenant/schemas/" .. fixtures.url_encode(ids.profile_schema),
        { headers = { Accept = "application/vnd.adobe.xed-full+json;version=1" } })
      fixtures.expect(s3, 200, schema, "schema")
      local engine = assert(dataprep.compile(set, { schema = schema })):map({ email = "ok-map@example.com", points = "12" })
      assert.same(cjson.decode(cjson.encode(engine)), ok_rec.entity)
    end)

    it("refuses a raw message without a flow id", function()
      local s, b = api:post(DP .. "/mappingSets", loyalty_set())
      fixtures.expect(s, 200, b, "create")
      local inlet = raw_flow(b.id, 0)
      local s1, r1 = api:post("/collection/" .. inlet, { a = 1 }, { auth = false })
      assert.equal(400, s1)
      assert.truthy(r1.report.message:find("absent flow id", 1, true))
    end)
  end)

  describe("upserts", function()
    it("change only the fields sent and stay out of the data lake", function()
      local s, b = api:post(DP .. "/mappingSets", loyalty_set())
      fixtures.expect(s, 200, b, "create")
      local inlet, flow = raw_flow(b.id, 0)
      local rec = cjson.decode(read("data/AEP_loyalty_profiles.json"))[7]
      local id = rec._exchangeinternal.loyaltyID
      local s0, r0 = api:post("/collection/" .. inlet, rec, { auth = false, headers = { ["x-adobe-flow-id"] = flow } })
      fixtures.expect(s0, 200, r0, "raw post")
      local before = profile_of(id).entity
      local lake_before = fixtures.records(api, ids.profile_dataset).count
      local s1, r1 = api:post("/collection/" .. inlet, {
        header = { flowId = flow, imsOrgId = ids.org, datasetId = ids.profile_dataset, operations = { data = "merge" } },
        body = { _exchangeinternal = { loyaltyID = id, loyaltyLevel = "Gold" } } }, { auth = false, headers = { ["x-adobe-flow-id"] = flow } })
      fixtures.expect(s1, 200, r1, "upsert")
      local after = poll(function()
        local p = profile_of(id).entity
        if p._exchangeinternal.loyaltyLevel == "Gold" then return p end
      end, "the upsert")
      before._exchangeinternal.loyaltyLevel = "Gold"
      assert.same(before, after)
      assert.equal(lake_before, fixtures.records(api, ids.profile_dataset).count)
    end)

    it("identity create writes the record to the identity dataset; delete removes the Profile data", function()
      local s, b = api:post(DP .. "/mappingSets", loyalty_set())
      fixtures.expect(s, 200, b, "create")
      local inlet, flow = raw_flow(b.id, 0)
      local identity_ds = fixtures.dataset(api, "identity dataset", ids.profile_schema, false)
      local id = "upsert-identity@example.com"
      local function upsert(ops, body)
        local s1, r1 = api:post("/collection/" .. inlet, { header = { flowId = flow, imsOrgId = ids.org,
          datasetId = ids.profile_dataset, operations = ops }, body = body }, { auth = false })
        fixtures.expect(s1, 200, r1, "upsert")
      end
      upsert({ data = "merge", identity = "create", identityDatasetId = identity_ds },
        { _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = 5 } })
      assert.same({ _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = 5 } }, (function()
        local e = profile_of(id).entity
        e.identities = nil
        return e
      end)())
      local lake = poll(function()
        local page = fixtures.records(api, identity_ds)
        if page.count == 1 then return page end
      end, "the identity dataset's record")
      assert.same({ _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = 5 } }, lake.records[1].entity)
      upsert({ data = "delete" }, { _exchangeinternal = { loyaltyID = id } })
      poll(function()
        local e = profile_of(id).entity
        return e._exchangeinternal == nil
      end, "the delete")
      upsert({ data = "merge" }, { _exchangeinternal = { loyaltyID = id, loyaltyLevel = "Silver" } })
      local after = poll(function()
        local e = profile_of(id).entity
        if e._exchangeinternal then return e end
      end, "the merge after the delete")
      assert.same({ loyaltyID = id, loyaltyLevel = "Silver" }, after._exchangeinternal)
    end)

    it("refuses unknown operations on the wire", function()
      local s, b = api:post(DP .. "/mappingSets", loyalty_set())
      local inlet, flow = raw_flow(b.id, 0)
      local s1, r1 = api:post("/collection/" .. inlet, { header = { flowId = flow, datasetId = ids.profile_dataset,
        operations = { data = "replace" } }, body = {} }, { auth = false })
      assert.equal(400, s1)
      assert.truthy(r1.report.message:find("operations.data must be create, merge or delete, not [replace]", 1, true))
    end)
  end)
end)
