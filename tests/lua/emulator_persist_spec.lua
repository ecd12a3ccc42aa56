-- aep emulator: nothing answered is lost across kill -9 + restart; the org and its credentials
-- are kept; SIGTERM shuts down cleanly (exit 0).
package.path = "tests/lua/?.lua;" .. package.path
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"

local REG = "/data/foundation/schemaregistry"
local XED = { Accept = "application/vnd.adobe.xed+json" }
local XED1 = { Accept = "application/vnd.adobe.xed+json; version=1" }
local FLOW = "/data/foundation/flowservice"
local SPEC = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"

describe("aep emulator persistence", function()
  local emu

  setup(function() emu = emulator.start { "--tenant", "persisttenant" } end)
  teardown(function() emu.cleanup() end)

  it("keeps every created resource across kill -9 and restart", function()
    local api = fixtures.client(emu)
    local env_before = emu.env
    local enc = fixtures.url_encode
    local s, fg = api:post(REG .. "/tenant/fieldgroups", fixtures.profile_mixin(api.tenant, "Persisted FG"), { headers = XED })
    assert.equals(201, s)
    local sc
    s, sc = api:post(REG .. "/tenant/schemas", { type = "object", title = "Persisted Schema", ["meta:immutableTags"] = { "union" },
      allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" }, { ["$ref"] = fg["$id"] } } }, { headers = XED })
    assert.equals(201, s, sc)
    local d
    s, d = api:post(REG .. "/tenant/descriptors", { ["@type"] = "xdm:descriptorIdentity", ["xdm:sourceSchema"] = sc["$id"],
      ["xdm:sourceVersion"] = 1, ["xdm:sourceProperty"] = "/_persisttenant/loyaltyID", ["xdm:namespace"] = "Email",
      ["xdm:property"] = "xdm:code", ["xdm:isPrimary"] = true })
    assert.equals(201, s, d)
    s = api:post("/data/core/idnamespace/identities", { name = "Persisted", code = "Persisted", idType = "CROSS_DEVICE" })
    assert.equals(200, s)
    local ds
    s, ds = api:post("/data/foundation/catalog/dataSets", { name = "Persisted DS",
      schemaRef = { id = sc["$id"], contentType = "application/vnd.adobe.xed-full+json;version=1" },
      tags = { unifiedProfile = { "enabled:true" }, unifiedIdentity = { "enabled:true" } } })
    assert.equals(201, s)
    local ds_id = ds[1]:sub(12)
    local conn
    s, conn = api:post(FLOW .. "/connections", { name = "Persisted conn", connectionSpec = { id = SPEC, version = "1.0" },
      auth = { specName = "Streaming Connection", params = { name = "Persisted conn", dataType = "xdm" } } })
    assert.equals(201, s)
    local inlet
    s, inlet = api:post("/data/core/edge/inlet", { name = "Persisted inlet", sourceId = "src", dataType = "xdm" })
    assert.equals(201, s)
    local et = require("aep.json").encode { id = "persistedEvent", title = "x" }
    s = api:request("POST", "/data/core/ups/config/eventTypes", et, { content_type = "text/plain" })
    assert.equals(201, s)

    emu.kill9()
    emu.restart()
    assert.equals(env_before.API_KEY, emu.env.API_KEY)
    assert.equals(env_before.CLIENT_SECRET, emu.env.CLIENT_SECRET)
    assert.equals(env_before.IMS_ORG, emu.env.IMS_ORG)
    assert.equals(env_before.PRIVATE_KEY, emu.env.PRIVATE_KEY)
    assert.equals("persisttenant", emu.env.TENANT_ID)

    -- the old token still works; the resources are all there
    local again = fixtures.client(emu)
    again.token = api.token
    s = again:get(REG .. "/stats", { headers = XED })
    assert.equals(200, s)
    local got
    s, got = again:get(REG .. "/tenant/schemas/" .. enc(sc["$id"]), { headers = XED1 })
    assert.equals(200, s)
    assert.equals("Persisted Schema", got.title)
    assert.same({ "union" }, got["meta:immutableTags"])
    s = again:get(REG .. "/tenant/fieldgroups/" .. enc(fg["$id"]), { headers = XED1 })
    assert.equals(200, s)
    s = again:get(REG .. "/tenant/descriptors/" .. d["@id"])
    assert.equals(200, s)
    s, got = again:get("/data/core/idnamespace/identities/Persisted")
    assert.equals(200, s)
    s, got = again:get("/data/foundation/catalog/dataSets/" .. ds_id)
    assert.equals(200, s)
    assert.equals("Persisted DS", got[ds_id].name)
    s, got = again:get(FLOW .. "/connections/" .. conn.id)
    assert.equals(200, s)
    assert.equals(emu.url .. "/collection/" .. got.items[1].auth.params.inletId, got.items[1].auth.params.inletUrl)
    s, got = again:get("/data/core/edge/inlet/" .. inlet.inletId)
    assert.equals(200, s)
    s, got = again:get("/data/core/ups/config/eventTypes/persistedEvent")
    assert.equals(200, s)
    -- a second title "Persisted Schema" is still a duplicate
    s = again:post(REG .. "/tenant/schemas", { type = "object", title = "Persisted Schema",
      allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" } } }, { headers = XED })
    assert.equals(400, s)
  end)

  it("forgets resources on /emulator/reset but keeps the org and its tokens", function()
    local api = fixtures.client(emu)
    local s = api:post("/data/core/idnamespace/identities", { name = "Gone", code = "Gone", idType = "CROSS_DEVICE" })
    assert.equals(200, s)
    s = api:post("/emulator/reset", {}, { auth = false })
    assert.equals(200, s)
    s = api:get("/data/core/idnamespace/identities/Gone")
    assert.equals(404, s)
    local state
    s, state = api:get("/emulator/state", { auth = false })
    assert.equals(200, s)
    assert.equals(emu.env.IMS_ORG, state.org.imsOrg)
    assert.equals("persisttenant", state.org.tenantId)
  end)

  it("keeps the tenant of an existing data directory", function()
    emu.restart { "--tenant", "othertenant" }
    assert.equals("persisttenant", emu.env.TENANT_ID)
    assert.matches("tenant 'persisttenant'", emu.stderr())
  end)

  it("stops cleanly on SIGTERM (exit 0)", function()
    local ok, how, code = emu.stop()
    assert.is_true(ok)
    assert.equals("exit", how)
    assert.equals(0, code)
  end)
end)
