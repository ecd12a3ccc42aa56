-- aep emulator: the Schema Registry's custom classes and data types (create, get, list, PUT, PATCH,
-- DELETE, and their use by schemas, field groups and the validator), unions, behaviors,
-- /rpc/sampledata and the global container's descriptors and schemas.
package.path = "tests/lua/?.lua;" .. package.path
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"

local REG = "/data/foundation/schemaregistry"
local XED = { Accept = "application/vnd.adobe.xed+json" }
local XED1 = { Accept = "application/vnd.adobe.xed+json; version=1" }
local XED_FULL = { Accept = "application/vnd.adobe.xed-full+json; version=1" }
local XED_ID = { Accept = "application/vnd.adobe.xed-id+json" }
local RECORD = "https://ns.adobe.com/xdm/data/record"
local PROFILE = "https://ns.adobe.com/xdm/context/profile"

describe("aep emulator schema registry: classes, data types, unions", function()
  local emu, api, enc = nil, nil, fixtures.url_encode

  setup(function()
    emu = emulator.start()
    api = fixtures.client(emu)
  end)
  teardown(function() emu.cleanup() end)

  local n = 0
  local function title(t) n = n + 1; return t .. " " .. n end

  local function property_class(t)
    return {
      title = t or title("Property"), description = "Properties owned and operated by the company.", type = "object",
      definitions = { property = { type = "object", properties = { ["_" .. api.tenant] = { type = "object",
        properties = { propertyId = { title = "Property ID", type = "string" } } } } } },
      allOf = { { ["$ref"] = RECORD }, { ["$ref"] = "#/definitions/property" } },
    }
  end

  local function membership_type()
    return {
      title = title("Membership"), description = "A loyalty membership", type = "object",
      definitions = { membership = { properties = {
        tier = { title = "Tier", type = "string", enum = { "basic", "premium" } },
        since = { title = "Member since", type = "string", format = "date" },
        visits = { title = "Visits", type = "integer", minimum = 0, maximum = 1000 },
      } } },
      allOf = { { ["$ref"] = "#/definitions/membership" } },
    }
  end

  local function list_titles(path, query)
    local s, b = api:get(REG .. path .. (query or ""), { headers = XED_ID })
    assert.equals(200, s)
    local out = {}
    for _, r in ipairs(b.results) do out[#out + 1] = r.title end
    return out, b
  end

  describe("custom classes", function()
    it("create -> get (altId, $id, xed-full) -> list -> PUT -> PATCH -> DELETE -> 404", function()
      local t = title("Property")
      local s, c = api:post(REG .. "/tenant/classes", property_class(t), { headers = XED })
      assert.equals(201, s, c)
      assert.matches("^https://ns%.adobe%.com/" .. api.tenant .. "/classes/%x+$", c["$id"])
      assert.matches("^_" .. api.tenant .. "%.classes%.%x+$", c["meta:altId"])
      assert.equals("classes", c["meta:resourceType"])
      assert.equals("1.0", c.version)
      assert.equals("tenant", c["meta:containerId"])
      assert.same({ RECORD }, c["meta:extends"])
      assert.is_true(c["meta:abstract"])
      assert.is_true(c["meta:extensible"])

      local got
      s, got = api:get(REG .. "/tenant/classes/" .. c["meta:altId"], { headers = XED1 })
      assert.equals(200, s)
      assert.equals(c["$id"], got["$id"])
      s, got = api:get(REG .. "/tenant/classes/" .. enc(c["$id"]), { headers = XED_FULL })
      assert.equals(200, s)
      assert.equals("string", got.properties["_" .. api.tenant].properties.propertyId.type)
      assert.equals("uri-reference", got.properties._id.format) -- from the record behavior

      local titles, listed = list_titles("/tenant/classes", "?property=title==" .. enc(t))
      assert.same({ t }, titles)
      assert.equals(1, listed._page.count)

      local body = property_class(t)
      body.description = "Rewritten"
      s, got = api:put(REG .. "/tenant/classes/" .. enc(c["$id"]), body, { headers = XED })
      assert.equals(200, s, got)
      assert.equals("1.1", got.version)
      assert.equals("Rewritten", got.description)
      assert.equals(c["$id"], got["$id"])

      s, got = api:patch(REG .. "/tenant/classes/" .. c["meta:altId"],
        { { op = "replace", path = "/description", value = "Patched" } }, { headers = XED })
      assert.equals(200, s, got)
      assert.equals("1.2", got.version)
      assert.equals("Patched", got.description)
      s, got = api:patch(REG .. "/tenant/classes/" .. c["meta:altId"],
        { { op = "replace", path = "/$id", value = "x" } }, { headers = XED })
      assert.equals(400, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1003-400", got.type)

      s = api:request("DELETE", REG .. "/tenant/classes/" .. enc(c["$id"]))
      assert.equals(204, s)
      s, got = api:get(REG .. "/tenant/classes/" .. enc(c["$id"]), { headers = XED1 })
      assert.equals(404, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1010-404", got.type)
      assert.same({}, (list_titles("/tenant/classes", "?property=title==" .. enc(t))))
    end)

    it("needs exactly one behavior and custom fields under _{TENANT}", function()
      local body = property_class()
      body.allOf = { { ["$ref"] = "#/definitions/property" } }
      local s, b = api:post(REG .. "/tenant/classes", body, { headers = XED })
      assert.equals(400, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1013-400", b.type)
      body = property_class()
      body.allOf[#body.allOf + 1] = { ["$ref"] = "https://ns.adobe.com/xdm/data/time-series" }
      s, b = api:post(REG .. "/tenant/classes", body, { headers = XED })
      assert.equals(400, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1013-400", b.type)
      body = property_class()
      body.definitions.property.properties.outside = { type = "string" }
      s, b = api:post(REG .. "/tenant/classes", body, { headers = XED })
      assert.equals(400, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1020-400", b.type)
    end)

    it("is a schema's class; a class in use is not deleted", function()
      local s, c = api:post(REG .. "/tenant/classes", property_class(), { headers = XED })
      assert.equals(201, s, c)
      -- a field group meant for the custom class
      local fg_body = fixtures.profile_mixin(api.tenant, title("Property Details"))
      fg_body["meta:intendedToExtend"] = { c["$id"] }
      local fg
      s, fg = api:post(REG .. "/tenant/fieldgroups", fg_body, { headers = XED })
      assert.equals(201, s, fg)
      local sch
      s, sch = api:post(REG .. "/tenant/schemas", { title = title("Properties"), type = "object",
        allOf = { { ["$ref"] = c["$id"] }, { ["$ref"] = fg["$id"] } } }, { headers = XED })
      assert.equals(201, s, sch)
      assert.equals(c["$id"], sch["meta:class"])
      assert.same({ RECORD, c["$id"], fg["$id"] }, sch["meta:extends"])
      local b
      s, b = api:post(REG .. "/tenant/schemas", { title = title("Wrong class"), type = "object",
        allOf = { { ["$ref"] = PROFILE }, { ["$ref"] = fg["$id"] } } }, { headers = XED })
      assert.equals(400, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1014-400", b.type)
      local full
      s, full = api:get(REG .. "/tenant/schemas/" .. enc(sch["$id"]), { headers = XED_FULL })
      assert.equals(200, s)
      assert.is_table(full.properties["_" .. api.tenant].properties.propertyId)
      assert.is_table(full.properties["_" .. api.tenant].properties.loyaltyID)
      s, b = api:request("DELETE", REG .. "/tenant/classes/" .. enc(c["$id"]))
      assert.equals(400, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1015-400", b.type)
      assert.matches(sch["$id"], b.detail, 1, true)
      assert.equals(204, (api:request("DELETE", REG .. "/tenant/schemas/" .. enc(sch["$id"]))))
      s, b = api:request("DELETE", REG .. "/tenant/classes/" .. enc(c["$id"]))
      assert.equals(400, s)
      assert.matches(fg["$id"], b.detail, 1, true)
      assert.equals(204, (api:request("DELETE", REG .. "/tenant/fieldgroups/" .. enc(fg["$id"]))))
      assert.equals(204, (api:request("DELETE", REG .. "/tenant/classes/" .. enc(c["$id"]))))
    end)

    it("counts in /stats", function()
      local _, before = api:get(REG .. "/stats", { headers = XED })
      local s = api:post(REG .. "/tenant/classes", property_class(), { headers = XED })
      assert.equals(201, s)
      s = api:post(REG .. "/tenant/datatypes", membership_type(), { headers = XED })
      assert.equals(201, s)
      local _, after = api:get(REG .. "/stats", { headers = XED })
      assert.equals(before.counts.classes + 1, after.counts.classes)
      assert.equals(before.counts.datatypes + 1, after.counts.datatypes)
      local kinds = {}
      for _, r in ipairs(after.recentlyCreatedResources) do kinds[r["meta:resourceType"]] = true end
      assert.is_true(kinds.classes and kinds.datatypes)
    end)
  end)

  describe("custom data types", function()
    it("create -> get -> list -> PUT -> PATCH -> DELETE -> 404", function()
      local body = membership_type()
      local s, d = api:post(REG .. "/tenant/datatypes", body, { headers = XED })
      assert.equals(201, s, d)
      assert.matches("^https://ns%.adobe%.com/" .. api.tenant .. "/datatypes/%x+$", d["$id"])
      assert.equals("datatypes", d["meta:resourceType"])
      assert.equals("1.0", d.version)
      local got
      s, got = api:get(REG .. "/tenant/datatypes/" .. d["meta:altId"], { headers = XED_FULL })
      assert.equals(200, s)
      assert.same({ "basic", "premium" }, got.properties.tier.enum)
      local titles = list_titles("/tenant/datatypes", "?property=title==" .. enc(body.title))
      assert.same({ body.title }, titles)

      body.description = "Rewritten"
      s, got = api:put(REG .. "/tenant/datatypes/" .. enc(d["$id"]), body, { headers = XED })
      assert.equals(200, s, got)
      assert.equals("1.1", got.version)
      assert.equals("Rewritten", got.description)
      s, got = api:patch(REG .. "/tenant/datatypes/" .. enc(d["$id"]), {
        { op = "add", path = "/definitions/membership/properties/code", value = { title = "Code", type = "string" } } },
        { headers = XED })
      assert.equals(200, s, got)
      assert.equals("1.2", got.version)
      s, got = api:get(REG .. "/tenant/datatypes/" .. enc(d["$id"]), { headers = XED_FULL })
      assert.equals("string", got.properties.code.type)

      s = api:request("DELETE", REG .. "/tenant/datatypes/" .. enc(d["$id"]))
      assert.equals(204, s)
      s, got = api:get(REG .. "/tenant/datatypes/" .. enc(d["$id"]), { headers = XED1 })
      assert.equals(404, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1010-404", got.type)
    end)

    it("is used by a field group; records are validated through it; in use it is not deleted", function()
      local s, d = api:post(REG .. "/tenant/datatypes", membership_type(), { headers = XED })
      assert.equals(201, s, d)
      local fg_body = fixtures.profile_mixin(api.tenant, title("Membership Details"))
      fg_body.definitions.loyalty.properties["_" .. api.tenant].properties.membership =
        { title = "Membership", ["$ref"] = d["$id"], type = "object" }
      local fg
      s, fg = api:post(REG .. "/tenant/fieldgroups", fg_body, { headers = XED })
      assert.equals(201, s, fg)
      local sch
      s, sch = api:post(REG .. "/tenant/schemas", { title = title("Members"), type = "object",
        allOf = { { ["$ref"] = PROFILE }, { ["$ref"] = fg["$id"] } } }, { headers = XED })
      assert.equals(201, s, sch)
      local full
      s, full = api:get(REG .. "/tenant/schemas/" .. enc(sch["$id"]), { headers = XED_FULL })
      assert.equals(200, s)
      assert.equals("date", full.properties["_" .. api.tenant].properties.membership.properties.since.format)

      local ids = { org = api.org, tenant = api.tenant }
      local dataset = fixtures.dataset(api, title("Members"), sch["$id"], false)
      local conn = fixtures.streaming_connection(api)
      ids.source_id = conn.source_id
      local function send(membership)
        local entity = { ["_" .. api.tenant] = { loyaltyID = "m@example.com", membership = membership } }
        return api:post("/collection/" .. conn.inlet_id .. "?syncValidation=true",
          fixtures.envelope(ids, sch["$id"], dataset, entity), { auth = false })
      end
      local ok, b = send({ tier = "premium", since = "2020-01-31", visits = 3 })
      assert.equals(200, ok, b)
      assert.same({ status = "pass" }, b.syncValidation)
      local bad
      bad, b = send({ tier = "gold", since = "2020-01-31" })
      assert.equals(400, bad)
      assert.matches("tier", require("aep.json").encode(b), 1, true)
      bad, b = send({ tier = "basic", visits = 5000 })
      assert.equals(400, bad)
      assert.matches("visits", require("aep.json").encode(b), 1, true)

      s, b = api:request("DELETE", REG .. "/tenant/datatypes/" .. enc(d["$id"]))
      assert.equals(400, s)
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1015-400", b.type)
      assert.matches(fg["$id"], b.detail, 1, true)
    end)
  end)

  describe("unions", function()
    it("list the classes of Profile-enabled schemas, by each Accept variant; follow schema deletes", function()
      local s, lb = api:get(REG .. "/tenant/unions", { headers = XED_ID })
      assert.equals(200, s)
      assert.same({}, lb.results)
      local fg
      s, fg = api:post(REG .. "/tenant/mixins", fixtures.profile_mixin(api.tenant, title("Union Loyalty")), { headers = XED })
      assert.equals(201, s, fg)
      local sch
      s, sch = api:post(REG .. "/tenant/schemas", { title = title("Union members"), type = "object",
        allOf = { { ["$ref"] = PROFILE }, { ["$ref"] = fg["$id"] },
                  { ["$ref"] = "https://ns.adobe.com/xdm/context/identitymap" } },
        ["meta:immutableTags"] = { "union" } }, { headers = XED })
      assert.equals(201, s, sch)
      -- a schema without the union tag stays out
      local other
      s, other = api:post(REG .. "/tenant/schemas", { title = title("Not in a union"), type = "object",
        allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/experienceevent" } } }, { headers = XED })
      assert.equals(201, s, other)

      s, lb = api:get(REG .. "/tenant/unions", { headers = XED_ID })
      assert.equals(200, s)
      assert.equals(1, #lb.results)
      assert.equals(PROFILE .. "__union", lb.results[1]["$id"])
      assert.equals("_xdm.context.profile__union", lb.results[1]["meta:altId"])
      s, lb = api:get(REG .. "/tenant/unions", { headers = XED })
      assert.equals("unions", lb.results[1]["meta:resourceType"])
      assert.equals(PROFILE, lb.results[1]["meta:class"])

      local u
      s, u = api:get(REG .. "/tenant/unions/" .. enc(PROFILE .. "__union"), { headers = XED1 })
      assert.equals(200, s)
      assert.equals(PROFILE, u.allOf[1]["$ref"])
      assert.equals(fg["$id"], u.allOf[2]["$ref"])
      assert.is_truthy(table.concat(u["meta:extends"], " "):find(sch["$id"], 1, true))
      s, u = api:get(REG .. "/tenant/unions/_xdm.context.profile__union", { headers = XED_FULL })
      assert.equals(200, s)
      assert.is_table(u.properties["_" .. api.tenant].properties.loyaltyID)
      assert.is_table(u.properties.identityMap)
      assert.is_table(u.properties.segmentMembership)
      assert.equals("array", u.properties.timeSeriesEvents.type)
      -- the /schemas lookup of a union
      s, u = api:get(REG .. "/tenant/schemas/" .. enc(PROFILE .. "__union"), { headers = XED1 })
      assert.equals(200, s)
      assert.equals("unions", u["meta:resourceType"])
      s, u = api:get(REG .. "/tenant/schemas/_xdm.context.profile__union", { headers = XED_FULL })
      assert.equals(200, s)
      assert.is_table(u.properties.segmentMembership)
      s, u = api:get(REG .. "/tenant/unions/" .. enc("https://ns.adobe.com/xdm/context/experienceevent__union"),
        { headers = XED1 })
      assert.equals(404, s)
      s, u = api:get(REG .. "/tenant/unions/_xdm.context.profile__union", { headers = XED })
      assert.equals(400, s) -- a lookup needs the Accept version
      assert.equals("http://ns.adobe.com/aep/errors/XDM-1007-400", u.type)

      assert.equals(204, (api:request("DELETE", REG .. "/tenant/schemas/" .. enc(sch["$id"]))))
      s, lb = api:get(REG .. "/tenant/unions", { headers = XED_ID })
      assert.same({}, lb.results)
      s = api:get(REG .. "/tenant/unions/_xdm.context.profile__union", { headers = XED1 })
      assert.equals(404, s)
    end)
  end)

  it("lists and gets Adobe's three behaviors", function()
    local titles = list_titles("/global/behaviors")
    table.sort(titles)
    assert.same({ "Ad Hoc Schema", "Record Schema", "Time-series Schema" }, titles)
    local s, b = api:get(REG .. "/global/behaviors/_xdm.data.record", { headers = XED1 })
    assert.equals(200, s)
    assert.equals(RECORD, b["$id"])
    assert.equals("behaviors", b["meta:resourceType"])
    s, b = api:get(REG .. "/global/behaviors/" .. enc("https://ns.adobe.com/xdm/data/time-series"), { headers = XED_FULL })
    assert.equals(200, s)
    assert.equals("date-time", b.properties.timestamp.format)
    s = api:get(REG .. "/global/behaviors/_xdm.data.nothing", { headers = XED1 })
    assert.equals(404, s)
  end)

  it("generates sample data that the schema's own validator accepts", function()
    local s, d = api:post(REG .. "/tenant/datatypes", membership_type(), { headers = XED })
    assert.equals(201, s, d)
    local fg_body = fixtures.profile_mixin(api.tenant, title("Sample Details"))
    fg_body.definitions.loyalty.properties["_" .. api.tenant].properties.membership =
      { title = "Membership", ["$ref"] = d["$id"], type = "object" }
    local fg
    s, fg = api:post(REG .. "/tenant/fieldgroups", fg_body, { headers = XED })
    assert.equals(201, s, fg)
    local sch
    s, sch = api:post(REG .. "/tenant/schemas", { title = title("Sampled"), type = "object",
      allOf = { { ["$ref"] = PROFILE }, { ["$ref"] = fg["$id"] },
                { ["$ref"] = "https://ns.adobe.com/xdm/context/profile-personal-details" } } }, { headers = XED })
    assert.equals(201, s, sch)
    local sample
    s, sample = api:get(REG .. "/rpc/sampledata/" .. sch["meta:altId"])
    assert.equals(200, s, sample)
    local mine = sample["_" .. api.tenant]
    assert.same({ tier = "basic", since = "2018-01-12", visits = 0 }, mine.membership)
    assert.equals("john.smith@abc.com", mine.loyaltyID)
    assert.equals("Silver", mine.loyaltyLevel)
    assert.equals("/uri-reference", sample._id)
    assert.is_table(sample.personalEmail)
    s = api:get(REG .. "/rpc/sampledata/" .. enc("https://ns.adobe.com/" .. api.tenant .. "/schemas/nope"))
    assert.equals(404, s)

    local ids = { org = api.org, tenant = api.tenant }
    local dataset = fixtures.dataset(api, title("Sampled"), sch["$id"], false)
    local conn = fixtures.streaming_connection(api)
    ids.source_id = conn.source_id
    local b
    s, b = api:post("/collection/" .. conn.inlet_id .. "?syncValidation=true",
      fixtures.envelope(ids, sch["$id"], dataset, sample), { auth = false })
    assert.equals(200, s, require("aep.json").encode(b))
    assert.same({ status = "pass" }, b.syncValidation)
  end)

  it("answers the global container's descriptors and schemas: none", function()
    local s, b = api:get(REG .. "/global/descriptors", { headers = { Accept = "application/vnd.adobe.xdm-id+json" } })
    assert.equals(200, s)
    assert.same({}, b)
    s, b = api:get(REG .. "/global/descriptors/0123456789abcdef")
    assert.equals(404, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1010-404", b.type)
    s, b = api:get(REG .. "/global/schemas/" .. enc(PROFILE), { headers = XED1 })
    assert.equals(404, s)
    assert.equals("http://ns.adobe.com/aep/errors/XDM-1010-404", b.type)
  end)

  it("keeps classes, data types and unions in their sandbox, across kill -9 and restart", function()
    local s, c = api:post(REG .. "/tenant/classes", property_class(), { headers = XED })
    assert.equals(201, s, c)
    local d
    s, d = api:post(REG .. "/tenant/datatypes", membership_type(), { headers = XED })
    assert.equals(201, s, d)
    local fg
    s, fg = api:post(REG .. "/tenant/mixins", fixtures.profile_mixin(api.tenant, title("Kept Loyalty")), { headers = XED })
    assert.equals(201, s, fg)
    s = api:post(REG .. "/tenant/schemas", { title = title("Kept members"), type = "object",
      allOf = { { ["$ref"] = PROFILE }, { ["$ref"] = fg["$id"] },
                { ["$ref"] = "https://ns.adobe.com/xdm/context/identitymap" } },
      ["meta:immutableTags"] = { "union" } }, { headers = XED })
    assert.equals(201, s)

    -- another sandbox sees none of them
    assert.equals(201, (api:post("/emulator/sandboxes", { name = "classes-dev" }, { auth = false })))
    local dev = fixtures.client(emu)
    dev.token, dev.sandbox = api.token, "classes-dev"
    assert.equals(404, (dev:get(REG .. "/tenant/classes/" .. enc(c["$id"]), { headers = XED1 })))
    assert.equals(404, (dev:get(REG .. "/tenant/datatypes/" .. enc(d["$id"]), { headers = XED1 })))
    local _, lb = dev:get(REG .. "/tenant/unions", { headers = XED_ID })
    assert.same({}, lb.results)

    emu.kill9()
    emu.restart()
    local again = fixtures.client(emu)
    again.token = api.token
    local got
    s, got = again:get(REG .. "/tenant/classes/" .. enc(c["$id"]), { headers = XED1 })
    assert.equals(200, s)
    assert.equals(c.title, got.title)
    s, got = again:get(REG .. "/tenant/datatypes/" .. d["meta:altId"], { headers = XED_FULL })
    assert.equals(200, s)
    assert.is_table(got.properties.tier)
    s, got = again:get(REG .. "/tenant/unions/_xdm.context.profile__union", { headers = XED1 })
    assert.equals(200, s)
    api = again
  end)

  it("lists descriptors in link form as the guide does: /tenant/descriptors/{@id}", function()
    local ids = fixtures.loyalty(api)
    local s, b = api:get(REG .. "/tenant/descriptors", { headers = { Accept = "application/vnd.adobe.xdm-link+json" } })
    assert.equals(200, s)
    assert.is_true(#b["xdm:descriptorIdentity"] >= 2)
    for _, link in ipairs(b["xdm:descriptorIdentity"]) do
      assert.matches("^/tenant/descriptors/%x+$", link)
    end
    assert.is_string(ids.profile_schema)
  end)

  it("forgets classes, data types and unions on /emulator/reset (runs last)", function()
    local s, c = api:post(REG .. "/tenant/classes", property_class(), { headers = XED })
    assert.equals(201, s, c)
    local d
    s, d = api:post(REG .. "/tenant/datatypes", membership_type(), { headers = XED })
    assert.equals(201, s, d)
    assert.equals(200, (api:post("/emulator/reset", {}, { auth = false })))
    assert.equals(404, (api:get(REG .. "/tenant/classes/" .. enc(c["$id"]), { headers = XED1 })))
    assert.equals(404, (api:get(REG .. "/tenant/datatypes/" .. enc(d["$id"]), { headers = XED1 })))
    local _, lb = api:get(REG .. "/tenant/classes", { headers = XED_ID })
    assert.same({}, lb.results)
    _, lb = api:get(REG .. "/tenant/unions", { headers = XED_ID })
    assert.same({}, lb.results)
  end)
end)
