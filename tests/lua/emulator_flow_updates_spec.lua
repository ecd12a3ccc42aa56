-- aep emulator: Flow Service's connection and flow specs, PATCH with If-Match etags, enabling and
-- disabling a dataflow, and the connection and flow searches (flow-service.yaml;
-- help/sources/tutorials/api/update.md, update-dataflows.md).
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"

local FLOW = "/data/foundation/flowservice"
local HTTP_API = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
local DATA_LAKE = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"
local STREAMING_FLOW = "d8a6f005-7eaf-4153-983e-e8574508b877"
local MAPPING_FLOW = "c1a19761-d2c7-4702-b9fa-fe91f0613e81"

local function enc(s) return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end)) end

describe("emulator flow service updates", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start({}, { dataflow = true })
  end)
  teardown(function() emu.cleanup() end)

  local function get(path, id)
    local s, b = api:get(FLOW .. "/" .. path .. "/" .. id)
    fixtures.expect(s, 200, b, path)
    return b.items[1]
  end

  describe("specs", function()
    it("lists and gets the HTTP API and data lake connection specs", function()
      local s, b = api:get(FLOW .. "/connectionSpecs")
      fixtures.expect(s, 200, b, "connectionSpecs")
      local seen = {}
      for _, c in ipairs(b.items) do seen[c.id] = c end
      assert.is_table(seen[HTTP_API])
      assert.is_table(seen[DATA_LAKE])
      assert.are.equal("Streaming Connection", seen[HTTP_API].authSpec[1].name)
      s, b = api:get(FLOW .. "/connectionSpecs/" .. HTTP_API)
      fixtures.expect(s, 200, b, "connectionSpec")
      assert.are.equal(1, #b.items)
      assert.are.equal("1.0", b.items[1].version)
      s, b = api:get(FLOW .. "/connectionSpecs?property=" .. enc("name==Data Lake"))
      assert.are.equal(200, s)
      assert.are.equal(1, #b.items)
      assert.are.equal(DATA_LAKE, b.items[1].id)
      -- the guides quote the value: property=name=="CloudStorageToAEP"
      s, b = api:get(FLOW .. "/connectionSpecs?property=" .. enc('name=="http-connector"'))
      assert.are.equal(200, s)
      assert.are.equal(1, #b.items)
      assert.are.equal(HTTP_API, b.items[1].id)
      s = api:get(FLOW .. "/connectionSpecs/0123456789abcdef")
      assert.are.equal(404, s)
    end)

    it("lists, gets and searches the streaming flow specs", function()
      local s, b = api:get(FLOW .. "/flowSpecs")
      fixtures.expect(s, 200, b, "flowSpecs")
      assert.are.equal(2, #b.items)
      s, b = api:get(FLOW .. "/flowSpecs/" .. MAPPING_FLOW)
      fixtures.expect(s, 200, b, "flowSpec")
      assert.are.equal("Mapping", b.items[1].transformationSpecs[1].name)
      assert.are.same({ HTTP_API }, b.items[1].sourceConnectionSpecIds)
      assert.are.same({ DATA_LAKE }, b.items[1].targetConnectionSpecIds)
      s, b = api:post(FLOW .. "/flowSpecs/search", { queryString = "id==" .. STREAMING_FLOW })
      fixtures.expect(s, 200, b, "flowSpecs/search")
      assert.are.equal(1, #b.items)
      assert.are.equal(STREAMING_FLOW, b.items[1].id)
      s, b = api:post(FLOW .. "/flowSpecs/search", { queryString = "sourceConnectionSpecIds.0==" .. HTTP_API, count = true })
      assert.are.equal(200, s)
      assert.are.same({ count = 2 }, b)
      s, b = api:post(FLOW .. "/flowSpecs/search", { queryString = "name=~x" })
      assert.are.equal(400, s)
      assert.matches("Invalid property filter", b.detail)
    end)
  end)

  describe("PATCH", function()
    it("updates a flow with its etag, gives a new etag, refuses the stale one with 412", function()
      local before = get("flows", ids.flow_id)
      assert.is_string(before.etag)
      local s, b = api:patch(FLOW .. "/flows/" .. ids.flow_id,
        { { op = "replace", path = "/name", value = "Renamed flow" },
          { op = "add", path = "/description", value = "new words" } },
        { headers = { ["If-Match"] = before.etag } })
      fixtures.expect(s, 200, b, "patch flow")
      assert.are.equal(ids.flow_id, b.id)
      assert.are_not.equal(before.etag, b.etag)
      local after = get("flows", ids.flow_id)
      assert.are.equal("Renamed flow", after.name)
      assert.are.equal("new words", after.description)
      assert.are.equal(b.etag, after.etag)
      assert.is_true(after.updatedAt >= before.updatedAt)
      -- the stale etag
      s, b = api:patch(FLOW .. "/flows/" .. ids.flow_id, { { op = "replace", path = "/name", value = "x" } },
        { headers = { ["If-Match"] = before.etag } })
      assert.are.equal(412, s)
      assert.matches("does not match the current etag", b.detail)
      assert.are.equal("Renamed flow", get("flows", ids.flow_id).name)
      -- none
      s, b = api:patch(FLOW .. "/flows/" .. ids.flow_id, { { op = "replace", path = "/name", value = "x" } })
      assert.are.equal(400, s)
      assert.matches("If%-Match header is required", b.detail)
      -- server-owned fields, unknown references, bodies that are no JSON Patch
      local etag = after.etag
      s, b = api:patch(FLOW .. "/flows/" .. ids.flow_id, { { op = "replace", path = "/id", value = "x" } },
        { headers = { ["If-Match"] = etag } })
      assert.are.equal(400, s)
      assert.matches("/id cannot be changed", b.detail)
      s, b = api:patch(FLOW .. "/flows/" .. ids.flow_id,
        { { op = "replace", path = "/targetConnectionIds", value = { "nope" } } }, { headers = { ["If-Match"] = etag } })
      assert.are.equal(400, s)
      assert.matches("targetConnectionIds: nope does not exist", b.detail)
      s = api:patch(FLOW .. "/flows/" .. ids.flow_id, { name = "x" }, { headers = { ["If-Match"] = etag } })
      assert.are.equal(400, s)
      assert.are.equal(etag, get("flows", ids.flow_id).etag)
      s = api:patch(FLOW .. "/flows/0123456789abcdef", { { op = "replace", path = "/name", value = "x" } },
        { headers = { ["If-Match"] = etag } })
      assert.are.equal(404, s)
      -- the update and its etag survive kill -9 and a restart
      emu.kill9()
      emu.restart()
      api = fixtures.client(emu)
      local kept = get("flows", ids.flow_id)
      assert.are.equal("Renamed flow", kept.name)
      assert.are.equal(etag, kept.etag)
    end)

    it("updates a connection's auth params and its inlet follows", function()
      local c = get("connections", ids.connection_id)
      local s, b = api:patch(FLOW .. "/connections/" .. ids.connection_id,
        { { op = "replace", path = "/auth/params/authenticationRequired", value = true },
          { op = "replace", path = "/description", value = "now authenticated" } },
        { headers = { ["If-Match"] = c.etag } })
      fixtures.expect(s, 200, b, "patch connection")
      local after = get("connections", ids.connection_id)
      assert.is_true(after.auth.params.authenticationRequired)
      assert.are.equal(ids.inlet_id, after.auth.params.inletId)
      local s2, inlet = api:get("/data/core/edge/inlet/" .. ids.inlet_id)
      fixtures.expect(s2, 200, inlet, "inlet")
      assert.is_true(inlet.authenticationRequired)
      assert.are.equal("now authenticated", inlet.inletDescription)
      -- an unauthenticated message is now refused by the inlet
      local s3 = api:post("/collection/" .. ids.inlet_id, fixtures.profile_message(ids, { email = "a@example.com" }), { auth = false })
      assert.are.equal(401, s3)
    end)

    it("updates source and target connections", function()
      local flow = get("flows", ids.flow_id)
      local src = get("sourceConnections", flow.sourceConnectionIds[1])
      local s, b = api:patch(FLOW .. "/sourceConnections/" .. src.id,
        { { op = "replace", path = "/name", value = "Renamed source" } }, { headers = { ["If-Match"] = src.etag } })
      fixtures.expect(s, 200, b, "patch source")
      assert.are.equal("Renamed source", get("sourceConnections", src.id).name)
      local tgt = get("targetConnections", flow.targetConnectionIds[1])
      s, b = api:patch(FLOW .. "/targetConnections/" .. tgt.id,
        { { op = "replace", path = "/params/dataSetId", value = "0123456789abcdef01234567" } },
        { headers = { ["If-Match"] = tgt.etag } })
      assert.are.equal(400, s)
      assert.matches("params.dataSetId 0123456789abcdef01234567 does not exist", b.detail)
      s, b = api:patch(FLOW .. "/targetConnections/" .. tgt.id,
        { { op = "replace", path = "/params/dataSetId", value = ids.event_dataset } },
        { headers = { ["If-Match"] = tgt.etag } })
      fixtures.expect(s, 200, b, "patch target")
      assert.are.equal(ids.event_dataset, get("targetConnections", tgt.id).params.dataSetId)
    end)
  end)

  describe("actions and searches", function()
    it("disables and enables a dataflow", function()
      local s, b = api:post(FLOW .. "/flows/" .. ids.flow_id .. "/action?op=disable")
      fixtures.expect(s, 200, b, "disable")
      assert.are.equal(ids.flow_id, b.id)
      local f = get("flows", ids.flow_id)
      assert.are.equal("disabled", f.state)
      assert.are.equal(b.etag, f.etag)
      s, b = api:post(FLOW .. "/flows/" .. ids.flow_id .. "/action?op=enable", nil, { headers = { ["If-Match"] = "\"stale\"" } })
      assert.are.equal(412, s)
      s, b = api:post(FLOW .. "/flows/" .. ids.flow_id .. "/action?op=ENABLE", nil, { headers = { ["If-Match"] = f.etag } })
      fixtures.expect(s, 200, b, "enable")
      assert.are.equal("enabled", get("flows", ids.flow_id).state)
      s, b = api:post(FLOW .. "/flows/" .. ids.flow_id .. "/action?op=explode")
      assert.are.equal(400, s)
      s = api:post(FLOW .. "/flows/0123456789abcdef/action?op=enable")
      assert.are.equal(404, s)
    end)

    it("searches connections and flows", function()
      local s, b = api:post(FLOW .. "/connections/search", { queryString = "connectionSpec.id==" .. HTTP_API })
      fixtures.expect(s, 200, b, "connections/search")
      assert.are.equal(1, #b.items)
      assert.are.equal(ids.connection_id, b.items[1].id)
      assert.are.equal(ids.inlet_url, b.items[1].auth.params.inletUrl)
      s, b = api:post(FLOW .. "/connections/search", { queryString = "connectionSpec.id==" .. DATA_LAKE })
      assert.are.equal(200, s)
      assert.are.equal(0, #b.items)
      s, b = api:post(FLOW .. "/flows/search", { queryString = "flowSpec.id==" .. STREAMING_FLOW .. "&state==enabled" })
      fixtures.expect(s, 200, b, "flows/search")
      assert.are.equal(1, #b.items)
      assert.are.equal(ids.flow_id, b.items[1].id)
      s, b = api:post(FLOW .. "/flows/search", { count = true })
      assert.are.same({ count = 1 }, b)
      s, b = api:post(FLOW .. "/flows/search", { queryString = "state==disabled" })
      assert.are.equal(0, #b.items)
    end)
  end)
end)
