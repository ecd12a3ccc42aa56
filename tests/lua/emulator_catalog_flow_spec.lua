-- aep emulator: Catalog datasets, Flow Service connections/dataflows, the legacy inlet API and
-- UPS event types, as the collection calls them (postman-collection.md R4-R6, R13-R14, R31-R33).
package.path = "tests/lua/?.lua;" .. package.path
local http = require "aep.http"
local json = require "aep.json"
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"

local REG = "/data/foundation/schemaregistry"
local CAT = "/data/foundation/catalog"
local FLOW = "/data/foundation/flowservice"
local XED = { Accept = "application/vnd.adobe.xed+json" }
local STREAMING_SPEC = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"

describe("aep emulator catalog and flow service", function()
  local emu, api, schema_id, plain_schema_id

  setup(function()
    emu = emulator.start()
    api = fixtures.client(emu)
    local s, fg = api:post(REG .. "/tenant/mixins/", fixtures.profile_mixin(api.tenant, "Loyalty Profile Details"), { headers = XED })
    assert.equals(201, s)
    local allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" }, { ["$ref"] = fg["$id"] } }
    local sc
    s, sc = api:post(REG .. "/tenant/schemas/", { type = "object", title = "Loyalty Profiles", allOf = allOf,
      ["meta:immutableTags"] = { "union" } }, { headers = XED })
    assert.equals(201, s, sc)
    schema_id = sc["$id"]
    s, sc = api:post(REG .. "/tenant/schemas/", { type = "object", title = "Plain Profiles", allOf = allOf }, { headers = XED })
    assert.equals(201, s, sc)
    plain_schema_id = sc["$id"]
  end)
  teardown(function() emu.cleanup() end)

  local function dataset(name, schema, tags, path)
    return api:post(CAT .. (path or "/datasets"), {
      name = name, description = "Profile data plus Loyalty data",
      schemaRef = { id = schema or schema_id, contentType = "application/vnd.adobe.xed-full+json;version=1" },
      fileDescription = { persisted = true, containerFormat = "parquet", format = "parquet" },
      tags = tags or { unifiedIdentity = { "enabled:true" }, unifiedProfile = { "enabled:true" } } })
  end

  describe("datasets", function()
    it("creates one answering 201 [\"@/dataSets/ID\"] with a Location", function()
      local s, b, resp = dataset("Loyalty Profiles")
      assert.equals(201, s)
      assert.equals(1, #b)
      local id = b[1]:match("^@/dataSets/(%x+)$")
      assert.is_string(id)
      assert.equals(emu.url .. CAT .. "/dataSets/" .. id, resp.headers.location)
      -- get (an object keyed by id), through both spellings
      for _, p in ipairs { "/dataSets/", "/datasets/" } do
        local st, got = api:get(CAT .. p .. id)
        assert.equals(200, st)
        assert.equals("Loyalty Profiles", got[id].name)
        assert.equals(schema_id, got[id].schemaRef.id)
        assert.same({ "enabled:true" }, got[id].tags.unifiedProfile)
      end
    end)

    it("lists datasets as an object keyed by id, with name filters", function()
      local _, b = dataset("Listed One")
      local id = b[1]:sub(12)
      local s, list = api:get(CAT .. "/dataSets")
      assert.equals(200, s)
      assert.equals("Listed One", list[id].name)
      s, list = api:get(CAT .. "/dataSets?name=" .. fixtures.url_encode("Listed One"))
      assert.equals(200, s)
      local n = 0
      for k in pairs(list) do n = n + 1; assert.equals(id, k) end
      assert.equals(1, n)
    end)

    it("refuses Profile tags on a schema without the union tag, and unknown schemas", function()
      local s, b = dataset("Not a union", plain_schema_id)
      assert.equals(400, s)
      assert.equals("To enable profile datasets the schema should be valid", b.detail)
      s = dataset("Nowhere", "https://ns.adobe.com/" .. api.tenant .. "/schemas/nope")
      assert.equals(400, s)
    end)

    it("PATCHes tags (JSON Patch) and deletes", function()
      local s, b = dataset("Patched", plain_schema_id, {})
      assert.equals(201, s)
      local id = b[1]:sub(12)
      s, b = api:request("PATCH", CAT .. "/dataSets/" .. id,
        { { op = "add", path = "/tags/unifiedIdentity", value = { "enabled:true" } } },
        { content_type = "application/json-patch+json" })
      assert.equals(200, s, b)
      assert.same({ "@/dataSets/" .. id }, b)
      local _, got = api:get(CAT .. "/dataSets/" .. id)
      assert.same({ "enabled:true" }, got[id].tags.unifiedIdentity)
      s = api:request("PATCH", CAT .. "/dataSets/" .. id,
        { { op = "add", path = "/tags/unifiedProfile", value = { "enabled:true" } } })
      assert.equals(400, s)
      s, b = api:request("DELETE", CAT .. "/dataSets/" .. id)
      assert.equals(200, s)
      s = api:get(CAT .. "/dataSets/" .. id)
      assert.equals(404, s)
    end)
  end)

  describe("flow service", function()
    local conn_id, inlet_id, dataset_id

    it("creates an HTTP API streaming connection whose GET gives inletId and inletUrl", function()
      local s, b = api:post(FLOW .. "/connections", { name = "First Postman Test",
        providerId = "521eee4d-8cbe-4906-bb48-fb6bd4450033", description = "Testing Postman",
        connectionSpec = { id = STREAMING_SPEC, version = "1.0" },
        auth = { specName = "Streaming Connection",
                 params = { sourceId = "Sample connection", dataType = "xdm", name = "Sample connection" } } })
      assert.equals(201, s, b)
      assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", b.id)
      assert.is_string(b.etag)
      conn_id = b.id
      s, b = api:get(FLOW .. "/connections/" .. conn_id)
      assert.equals(200, s)
      local p = b.items[1].auth.params
      assert.matches("^" .. ("%x"):rep(64) .. "$", p.inletId)
      assert.equals(emu.url .. "/collection/" .. p.inletId, p.inletUrl)
      assert.is_false(p.authenticationRequired)
      inlet_id = p.inletId
      s, b = api:get(FLOW .. "/connections")
      assert.equals(200, s)
      assert.equals(conn_id, b.items[#b.items].id)
    end)

    it("creates source and target connections and a dataflow; checks references", function()
      local _, ds = dataset("Flow target")
      dataset_id = ds[1]:sub(12)
      local s, src = api:post(FLOW .. "/sourceConnections", { name = "src", baseConnectionId = conn_id,
        connectionSpec = { id = STREAMING_SPEC, version = "1.0" } })
      assert.equals(201, s, src)
      local tgt
      s, tgt = api:post(FLOW .. "/targetConnections", { name = "tgt",
        data = { schema = { id = schema_id, version = "application/vnd.adobe.xed-full+json;version=1.0" } },
        params = { dataSetId = dataset_id }, connectionSpec = { id = "c604ff05-7f1a-43c0-8e18-33bf874cb11c", version = "1.0" } })
      assert.equals(201, s, tgt)
      local flow
      s, flow = api:post(FLOW .. "/flows", { name = "flow", flowSpec = { id = "d8a6f005-7eaf-4153-983e-e8574508b877", version = "1.0" },
        sourceConnectionIds = { src.id }, targetConnectionIds = { tgt.id } })
      assert.equals(201, s, flow)
      s, flow = api:get(FLOW .. "/flows/" .. flow.id)
      assert.equals(200, s)
      assert.same({ src.id }, flow.items[1].sourceConnectionIds)
      s = api:post(FLOW .. "/flows", { name = "bad", flowSpec = { id = "x" }, sourceConnectionIds = { "nope" },
        targetConnectionIds = { tgt.id } })
      assert.equals(400, s)
      s = api:post(FLOW .. "/sourceConnections", { name = "bad", baseConnectionId = "nope" })
      assert.equals(400, s)
      s = api:post(FLOW .. "/targetConnections", { name = "bad", params = { dataSetId = "nope" } })
      assert.equals(400, s)
    end)

    it("deletes a connection (204), then its GET answers 404", function()
      local s, b = api:post(FLOW .. "/connections", { name = "temp", connectionSpec = { id = STREAMING_SPEC, version = "1.0" },
        auth = { specName = "Streaming Connection", params = { dataType = "xdm", name = "temp" } } })
      assert.equals(201, s)
      s = api:request("DELETE", FLOW .. "/connections/" .. b.id)
      assert.equals(204, s)
      s = api:get(FLOW .. "/connections/" .. b.id)
      assert.equals(404, s)
    end)
  end)

  describe("legacy inlets and event types", function()
    it("creates an inlet at /data/core/edge/inlet answering inletId, inletUrl and sourceId", function()
      local s, b = api:post("/data/core/edge/inlet", { name = "{{UNIQUE_ID}}Streaming Loyalty data",
        description = "Collects streaming data", sourceId = "{{UNIQUE_ID}}LoyaltyIngest", dataType = "xdm",
        authenticationRequired = false })
      assert.equals(201, s, b)
      assert.matches("^" .. ("%x"):rep(64) .. "$", b.inletId)
      assert.equals(emu.url .. "/collection/" .. b.inletId, b.inletUrl)
      assert.equals("{{UNIQUE_ID}}LoyaltyIngest", b.sourceId)
      local list
      s, list = api:get("/data/core/edge/inlet")
      assert.equals(200, s)
      local found = false
      for _, i in ipairs(list.items) do if i.inletId == b.inletId then found = true end end
      assert.is_true(found)
      s = api:get("/data/core/edge/inlet/" .. b.inletId)
      assert.equals(200, s)
      s = api:request("DELETE", "/data/core/edge/inlet/" .. b.inletId)
      assert.equals(204, s)
      s = api:get("/data/core/edge/inlet/" .. b.inletId)
      assert.equals(404, s)
    end)

    it("accepts event types POSTed without Content-Type, and lists them", function()
      local body = json.encode { id = "loyaltyBalanceUpdate", imsOrgId = api.org, title = "Loyalty Balance Update",
        description = "Change to the points balance for a loyalty member", global = true }
      local resp = assert(http.request { method = "POST", url = emu.url .. "/data/core/ups/config/eventTypes",
        headers = api:headers(), body = body })
      assert.equals(201, resp.status)
      local s, b = api:get("/data/core/ups/config/eventTypes")
      assert.equals(200, s)
      assert.equals("loyaltyBalanceUpdate", b.children[1].id)
    end)
  end)
end)
