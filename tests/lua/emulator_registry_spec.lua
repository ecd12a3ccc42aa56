-- aep emulator: Schema Registry (stats, field groups and legacy mixins, schemas and their Accept
-- variants, PATCH/PUT/DELETE, descriptors, global resources) and identity namespaces.
package.path = "tests/lua/?.lua;" .. package.path
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"

local REG = "/data/foundation/schemaregistry"
local XED = { Accept = "application/vnd.adobe.xed+json" }
local XED1 = { Accept = "application/vnd.adobe.xed+json; version=1" }
local XED_ID = { Accept = "application/vnd.adobe.xed-id+json" }
local PROFILE = "https://ns.adobe.com/xdm/context/profile"
local EVENT = "https://ns.adobe.com/xdm/context/experienceevent"

describe("aep emulator schema registry", function()
  local emu, api, enc = nil, nil, fixtures.url_encode

  setup(function()
    emu = emulator.start()
    api = fixtures.client(emu)
  end)
  teardown(function() emu.cleanup() end)

  local n = 0
  local function title(t) n = n + 1; return t .. " " .. n end

  local function mixin(path)
    local body = fixtures.profile_mixin(api.tenant, title("Loyalty Profile Details"))
    local s, b = api:post(REG .. (path or "/tenant/mixins/"), body, { headers = XED })
    assert.equals(201, s, b)
    return b
  end

  local function schema(mixin_id, extra)
    local body = { type = "object", title = title("Loyalty Profiles"), description = "Profile data plus Loyalty data",
      allOf = { { ["$ref"] = PROFILE }, { ["$ref"] = "https://ns.adobe.com/xdm/context/profile-person-details" },
                { ["$ref"] = "https://ns.adobe.com/xdm/context/profile-personal-details" },
                { ["$ref"] = mixin_id } },
      ["meta:immutableTags"] = { "union" } }
    for k, v in pairs(extra or {}) do body[k] = v end
    local s, b = api:post(REG .. "/tenant/schemas/", body, { headers = XED })
    return s, b
  end

  it("answers /stats with the tenant id and counts", function()
    local s, b = api:get(REG .. "/stats", { headers = XED })
    assert.equals(200, s)
    assert.equals(emu.env.TENANT_ID, b.tenantId)
    assert.equals(emu.env.IMS_ORG, b.imsOrg)
    assert.is_table(b.counts)
  end)

  it("creates a field group through /tenant/mixins/ with ids under the tenant", function()
    local fg = mixin()
    assert.matches("^https://ns%.adobe%.com/" .. api.tenant .. "/mixins/%x+$", fg["$id"])
    assert.matches("^_" .. api.tenant .. "%.mixins%.%x+$", fg["meta:altId"])
    assert.equals("1.0", fg.version)
    assert.equals("tenant", fg["meta:containerId"])
    -- the same resource through /tenant/fieldgroups, by URL-encoded $id and by meta:altId
    local s, b = api:get(REG .. "/tenant/fieldgroups/" .. enc(fg["$id"]), { headers = XED1 })
    assert.equals(200, s)
    assert.equals(fg.title, b.title)
    s, b = api:get(REG .. "/tenant/mixins/" .. fg["meta:altId"], { headers = XED1 })
    assert.equals(200, s)
    assert.equals(fg["$id"], b["$id"])
  end)

  it("rejects custom fields outside _{TENANT} and bad field names", function()
    local body = fixtures.profile_mixin("someoneelse", title("Outside"))
    local s, b = api:post(REG .. "/tenant/fieldgroups", body, { headers = XED })
    assert.equals(400, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1020-400", b.type)
    body = fixtures.profile_mixin(api.tenant, title("Bad name"))
    body.definitions.loyalty.properties["_" .. api.tenant].properties._hidden = { type = "string" }
    s, b = api:post(REG .. "/tenant/fieldgroups", body, { headers = XED })
    assert.equals(400, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1021-400", b.type)
  end)

  it("creates a union schema and serves it with each Accept variant", function()
    local fg = mixin()
    local s, sc = schema(fg["$id"])
    assert.equals(201, s, sc)
    assert.matches("^https://ns%.adobe%.com/" .. api.tenant .. "/schemas/%x+$", sc["$id"])
    assert.equals(PROFILE, sc["meta:class"])
    assert.same({ "union" }, sc["meta:immutableTags"])
    local id = enc(sc["$id"])
    local raw
    s, raw = api:get(REG .. "/tenant/schemas/" .. id, { headers = XED1 })
    assert.equals(200, s)
    assert.is_table(raw.allOf)
    local full
    s, full = api:get(REG .. "/tenant/schemas/" .. id, { headers = { Accept = "application/vnd.adobe.xed-full+json;version=1" } })
    assert.equals(200, s)
    assert.is_nil(full.allOf)
    local t = full.properties["_" .. api.tenant]
    assert.equals("email", t.properties.loyaltyID.format)
    assert.equals("Loyalty ID", t.properties.loyaltyID.title)
    local notext
    s, notext = api:get(REG .. "/tenant/schemas/" .. sc["meta:altId"],
      { headers = { Accept = "application/vnd.adobe.xed-full-notext+json; version=1" } })
    assert.equals(200, s)
    assert.is_nil(notext.properties["_" .. api.tenant].properties.loyaltyID.title)
    -- listing, ids only and full
    local list
    s, list = api:get(REG .. "/tenant/schemas/", { headers = XED_ID })
    assert.equals(200, s)
    local found
    for _, r in ipairs(list.results) do if r["$id"] == sc["$id"] then found = r end end
    assert.same({ ["$id"] = sc["$id"], ["meta:altId"] = sc["meta:altId"], version = "1.0", title = sc.title }, found)
  end)

  it("answers 400 XDM-1521-400 for a duplicate title, across resource types", function()
    local fg = mixin()
    local s, b = schema(fg["$id"], { title = fg.title })
    assert.equals(400, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1521-400", b.type)
    assert.equals("Title not unique", b.title)
    assert.equals(400, b.status)
    assert.is_table(b.report["sub-errors"])
  end)

  it("answers 404 XDM-1010-404 for an unknown schema and 400 for a missing Accept version", function()
    local s, b = api:get(REG .. "/tenant/schemas/" .. enc("https://ns.adobe.com/" .. api.tenant .. "/schemas/nope"),
      { headers = XED1 })
    assert.equals(404, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1010-404", b.type)
    assert.equals(404, b.status)
    local fg = mixin()
    s, b = api:get(REG .. "/tenant/mixins/" .. enc(fg["$id"]), { headers = XED })
    assert.equals(400, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1007-400", b.type)
    s = api:get(REG .. "/tenant/schemas")
    assert.equals(400, s)
  end)

  it("needs exactly one class and existing references", function()
    local fg = mixin()
    local s, b = api:post(REG .. "/tenant/schemas", { title = title("No class"), type = "object",
      allOf = { { ["$ref"] = fg["$id"] } } }, { headers = XED })
    assert.equals(400, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1013-400", b.type)
    s, b = api:post(REG .. "/tenant/schemas", { title = title("Two classes"), type = "object",
      allOf = { { ["$ref"] = PROFILE }, { ["$ref"] = EVENT } } }, { headers = XED })
    assert.equals(400, s)
    s, b = api:post(REG .. "/tenant/schemas", { title = title("Dangling"), type = "object",
      allOf = { { ["$ref"] = PROFILE }, { ["$ref"] = "https://ns.adobe.com/" .. api.tenant .. "/mixins/none" } } },
      { headers = XED })
    assert.equals(400, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1012-400", b.type)
  end)

  it("PATCHes meta:immutableTags and allOf, bumping the version; the union tag stays", function()
    local fg = mixin()
    local s, sc = schema(fg["$id"], { ["meta:immutableTags"] = nil })
    assert.equals(201, s)
    local id = enc(sc["$id"])
    local b
    s, b = api:request("PATCH", REG .. "/tenant/schemas/" .. id,
      { { op = "add", path = "/meta:immutableTags", value = { "union" } } }, { headers = XED })
    assert.equals(200, s, b)
    assert.same({ "union" }, b["meta:immutableTags"])
    assert.equals("1.1", b.version)
    local fg2 = mixin()
    -- a second tenant field group under the same _tenant key merges into it
    s, b = api:request("PATCH", REG .. "/tenant/schemas/" .. id,
      { { op = "add", path = "/allOf/-", value = { ["$ref"] = fg2["$id"] } } }, { headers = XED })
    assert.equals(200, s, b)
    assert.equals("1.2", b.version)
    local has = false
    for _, e in ipairs(b["meta:extends"]) do if e == fg2["$id"] then has = true end end
    assert.is_true(has)
    s, b = api:request("PATCH", REG .. "/tenant/schemas/" .. id,
      { { op = "remove", path = "/meta:immutableTags" } }, { headers = XED })
    assert.equals(400, s)
  end)

  it("answers 400 XDM-1528-400 for a union schema with neither a primary identity nor identityMap", function()
    -- a class of Adobe's that carries no identityMap: find one; skip when the standard set has none
    local _, classes = api:get(REG .. "/global/classes", { headers = XED })
    local target
    for _, c in ipairs(classes.results) do
      local _, full = api:get(REG .. "/global/classes/" .. enc(c["$id"]),
        { headers = { Accept = "application/vnd.adobe.xed-full+json; version=1" } })
      local extends_map = false
      for _, e in ipairs(full["meta:extends"] or {}) do
        if e == "https://ns.adobe.com/xdm/context/identitymap" then extends_map = true end
      end
      if not extends_map and not (full.properties or {}).identityMap and not (full.properties or {})["xdm:identityMap"] then
        target = c["$id"]
        break
      end
    end
    if not target then return pending("every standard class carries identityMap") end
    local s, b = api:post(REG .. "/tenant/schemas", { title = title("No identity"), type = "object",
      allOf = { { ["$ref"] = target } }, ["meta:immutableTags"] = { "union" } }, { headers = XED })
    assert.equals(400, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1528-400", b.type)
  end)

  it("PUT replaces a schema; DELETE answers 204 and then 404", function()
    local fg = mixin()
    local s, sc = schema(fg["$id"])
    local id = enc(sc["$id"])
    local body = { type = "object", title = title("Replaced"), allOf = sc.allOf, ["meta:immutableTags"] = { "union" } }
    local b
    s, b = api:put(REG .. "/tenant/schemas/" .. id, body, { headers = XED })
    assert.equals(200, s, b)
    assert.equals(body.title, b.title)
    assert.equals(sc["$id"], b["$id"])
    s = api:request("DELETE", REG .. "/tenant/schemas/" .. id, nil, { headers = XED })
    assert.equals(204, s)
    s = api:get(REG .. "/tenant/schemas/" .. id, { headers = XED1 })
    assert.equals(404, s)
    s = api:request("DELETE", REG .. "/tenant/mixins/" .. enc(fg["$id"]), nil, { headers = XED })
    assert.equals(204, s)
  end)

  describe("descriptors", function()
    local sc
    setup(function()
      local fg = mixin()
      local s
      s, sc = schema(fg["$id"])
      assert.equals(201, s)
    end)

    local function identity(over)
      local d = { ["@type"] = "xdm:descriptorIdentity", ["xdm:sourceProperty"] = "/_" .. api.tenant .. "/loyaltyID",
        ["xdm:property"] = "xdm:code", ["xdm:isPrimary"] = true, ["xdm:namespace"] = "Email",
        ["xdm:sourceSchema"] = sc["$id"], ["xdm:sourceVersion"] = 1 }
      for k, v in pairs(over or {}) do d[k] = v end
      return d
    end

    it("creates, lists, gets and deletes a primary identity descriptor", function()
      local s, d = api:post(REG .. "/tenant/descriptors", identity())
      assert.equals(201, s, d)
      assert.matches("^%x+$", d["@id"])
      assert.equals("tenant", d["meta:containerId"])
      local list
      s, list = api:get(REG .. "/tenant/descriptors", { headers = { Accept = "application/vnd.adobe.xdm-id+json" } })
      assert.equals(200, s)
      assert.same({ d["@id"] }, list["xdm:descriptorIdentity"])
      local got
      s, got = api:get(REG .. "/tenant/descriptors/" .. d["@id"])
      assert.equals(200, s)
      assert.equals("Email", got["xdm:namespace"])
      -- a second primary identity is refused
      s = api:post(REG .. "/tenant/descriptors", identity({ ["xdm:sourceProperty"] = "/personalEmail/address" }))
      assert.equals(400, s)
      s = api:request("DELETE", REG .. "/tenant/descriptors/" .. d["@id"])
      assert.equals(204, s)
      s = api:get(REG .. "/tenant/descriptors/" .. d["@id"])
      assert.equals(404, s)
    end)

    it("refuses unknown schemas, paths and namespaces", function()
      local s = api:post(REG .. "/tenant/descriptors", identity({ ["xdm:sourceSchema"] = "https://ns.adobe.com/x/schemas/none" }))
      assert.equals(400, s)
      s = api:post(REG .. "/tenant/descriptors", identity({ ["xdm:sourceProperty"] = "/_" .. api.tenant .. "/nothing" }))
      assert.equals(400, s)
      s = api:post(REG .. "/tenant/descriptors", identity({ ["xdm:namespace"] = "NoSuchNamespace" }))
      assert.equals(400, s)
    end)
  end)

  it("serves Adobe's global classes and field groups (and /global/mixins)", function()
    local s, b = api:get(REG .. "/global/classes", { headers = XED_ID })
    assert.equals(200, s)
    local ids = {}
    for _, r in ipairs(b.results) do ids[r["$id"]] = true end
    assert.is_true(ids[PROFILE])
    assert.is_true(ids[EVENT])
    s, b = api:get(REG .. "/global/classes/" .. enc(PROFILE), { headers = XED1 })
    assert.equals(200, s)
    assert.equals(PROFILE, b["$id"])
    s, b = api:get(REG .. "/global/fieldgroups?property=meta:intendedToExtend==" .. enc(PROFILE), { headers = XED_ID })
    assert.equals(200, s)
    ids = {}
    for _, r in ipairs(b.results) do ids[r["$id"]] = true end
    assert.is_true(ids["https://ns.adobe.com/xdm/context/profile-person-details"])
    s, b = api:get(REG .. "/global/mixins/" .. enc("https://ns.adobe.com/xdm/context/profile-personal-details"), { headers = XED1 })
    assert.equals(200, s)
    s = api:get(REG .. "/global/classes/" .. enc("https://ns.adobe.com/xdm/context/nothing"), { headers = XED1 })
    assert.equals(404, s)
  end)

  describe("identity namespaces", function()
    local NS = "/data/core/idnamespace/identities"
    it("lists the standard namespaces", function()
      local s, b = api:get(NS)
      assert.equals(200, s)
      local codes = {}
      for _, ns in ipairs(b) do codes[ns.code] = ns end
      for _, c in ipairs { "Email", "Phone", "ECID", "CRMID", "AdCloud" } do assert.is_table(codes[c], c) end
      assert.is_false(codes.Email.custom)
      assert.equals("ACTIVE", codes.Email.status)
    end)

    it("creates a custom namespace and answers 409 NAMESPACE_CODE_CONFLICT for its code again", function()
      local s, b = api:post(NS, { name = "Loyalty Member", code = "LoyaltyMember", description = "x", idType = "Cross_device" })
      assert.equals(200, s)
      assert.is_true(b.custom)
      assert.is_number(b.id)
      s, b = api:get(NS .. "/" .. math.tointeger(b.id))
      assert.equals(200, s)
      assert.equals("LoyaltyMember", b.code)
      s, b = api:post(NS, { name = "Again", code = "loyaltymember", idType = "Cross_device" })
      assert.equals(409, s)
      assert.equals("NAMESPACE_CODE_CONFLICT", b.error)
      s, b = api:post(NS, { name = "Bad", code = "bad-code", idType = "Cross_device" })
      assert.equals(400, s)
      s = api:post(NS, { name = "Bad type", code = "BadType", idType = "Planet" })
      assert.equals(400, s)
    end)
  end)
end)
