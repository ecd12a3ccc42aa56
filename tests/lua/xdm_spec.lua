-- aep.xdm: resolution of the collection's schemas from Adobe's standard resources and the
-- collection's field groups, and validation with AEP's (everit-json-schema's) exact words.

local cjson = require "cjson"
local xdm = require "aep.xdm"
local loyalty = require "tests.lua.support.xdm_loyalty"
local fixture, samples, loyalty_schemas = loyalty.fixture, loyalty.samples, loyalty.schemas

local function one(v)
  return { keyword = v.keyword, message = v.message, pointerToViolation = v.pointerToViolation,
           schemaLocation = v.schemaLocation }
end

local function brief(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = one(v) end
  return out
end

describe("aep.xdm", function()
  local profile, event = loyalty_schemas("exchangeinternal")

  describe("standard resources", function()
    it("holds the classes, field groups and data types in the registry's xed shape", function()
      local p = xdm.standard["https://ns.adobe.com/xdm/context/profile"]
      assert.are.equal("XDM Individual Profile", p.title)
      assert.are.equal("_xdm.context.profile", p["meta:altId"])
      assert.are.equal("classes", p["meta:resourceType"])
      assert.are.equal("global", p["meta:containerId"])
      assert.are.equal("1.0", p.version)
      local e = xdm.standard["https://ns.adobe.com/xdm/context/experienceevent"]
      assert.are.same({ "_id", "timestamp" }, e.required)
      local fg = xdm.standard["https://ns.adobe.com/xdm/context/profile-person-details"]
      assert.are.equal("mixins", fg["meta:resourceType"])
      assert.are.same({ "https://ns.adobe.com/xdm/context/profile" }, fg["meta:intendedToExtend"])
      assert.are.equal("https://ns.adobe.com/xdm/context/person",
        fg.definitions["profile-person-details"].properties.person["$ref"])
      assert.are.equal("datatypes", xdm.standard["https://ns.adobe.com/xdm/context/person-name"]["meta:resourceType"])
    end)

    it("lists resources by kind, behaviors apart", function()
      local ids = {}
      for _, d in ipairs(xdm.standard.all()) do ids[#ids + 1] = d["$id"] end
      assert.is_true(#ids >= 15)
      for _, id in ipairs(ids) do assert.is_nil(id:find("/xdm/data/", 1, true)) end
      local classes = {}
      for _, d in ipairs(xdm.standard.list("classes")) do classes[#classes + 1] = d["$id"] end
      assert.are.same({ "https://ns.adobe.com/xdm/context/experienceevent", "https://ns.adobe.com/xdm/context/profile" },
        classes)
      for k, v in pairs(xdm.standard) do
        assert.are.equal(k, v["$id"])
      end
    end)
  end)

  describe("resolve", function()
    it("merges the class, the field groups and the data types into one tree", function()
      assert.are.equal("object", profile.type)
      assert.are.equal("https://ns.adobe.com/xdm/context/profile", profile["meta:class"])
      assert.are.equal("Loyalty Profiles", profile.title)
      local person = profile.properties.person
      assert.are.equal("Person", person.title)
      assert.are.equal("object", person["meta:xdmType"])
      assert.are.same({ type = "string", ["meta:xdmType"] = "string", title = "First name",
        description = person.properties.name.properties.firstName.description },
        person.properties.name.properties.firstName)
      assert.are.equal("date", person.properties.birthDate.format)
      assert.are.same({ "male", "female", "not_specified", "non_specific" }, person.properties.gender.enum)
      assert.are.equal("email", profile.properties.personalEmail.properties.address.format)
      assert.is_table(profile.properties._repo.properties.createDate)
      assert.is_nil(profile.allOf)
      assert.is_nil(profile.definitions)
    end)

    it("keeps the tenant fields under _{tenant} with required, isRequired and integer bounds", function()
      local t = profile.properties._exchangeinternal
      assert.are.same({ "loyaltyID" }, t.required)
      assert.is_true(t.properties.loyaltyID.isRequired)
      assert.are.equal("int", t.properties.totalLoyaltyPoints["meta:xdmType"])
      assert.are.equal(-2147483648, t.properties.totalLoyaltyPoints.minimum)
      assert.are.equal(2147483647, t.properties.totalLoyaltyPoints.maximum)
      assert.are.same({ "Silver", "Gold", "Platinum", "Diamond" }, t.properties.loyaltyLevel.enum)
    end)

    it("gives events the class's _id, timestamp, eventType and identityMap", function()
      assert.are.equal("https://ns.adobe.com/xdm/context/experienceevent", event["meta:class"])
      assert.are.same({ "_id", "timestamp" }, event.required)
      assert.are.equal("string", event.properties._id.type)
      assert.are.equal("date-time", event.properties.timestamp.format)
      assert.are.equal("string", event.properties.eventType.type)
      local im = event.properties.identityMap
      assert.are.equal("map", im["meta:xdmType"])
      assert.are.equal("array", im.additionalProperties.type)
      local item = im.additionalProperties.items
      assert.are.same({ "ambiguous", "authenticated", "loggedOut" }, item.properties.authenticatedState.enum)
      assert.are.equal("boolean", item.properties.primary.type)
      -- transactionID is flagged isRequired only: JSON Schema's required lists loyaltyID alone
      assert.are.same({ "loyaltyID" }, event.properties._exchangeinternal.required)
      assert.is_true(event.properties._exchangeinternal.properties.transactionID.isRequired)
    end)

    it("follows local #/definitions references inside another resource", function()
      local sink = fixture("kitchen_sink_mixin.json", { TENANT_ID = "acme" })
      local full = assert(xdm.resolve({ type = "object", title = "Sink", allOf = {
        { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" }, { ["$ref"] = sink["$id"] } } },
        function(id) if id == sink["$id"] then return sink end end))
      assert.are.equal("email", full.properties._acme.properties.contact.properties.email.format)
    end)

    it("reports an unknown reference", function()
      local full, err = xdm.resolve({ type = "object", allOf = {
        { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" },
        { ["$ref"] = "https://ns.adobe.com/acme/mixins/nope" } } }, function() return nil end)
      assert.is_nil(full)
      assert.are.equal("unknown reference https://ns.adobe.com/acme/mixins/nope", err)
      full, err = xdm.resolve({ type = "object", allOf = { { ["$ref"] = "#/definitions/missing" } } })
      assert.is_nil(full)
      assert.are.equal("unknown reference #/definitions/missing", err)
    end)

    it("lists leaf paths with their types", function()
      local paths = {}
      for _, f in ipairs(xdm.field_paths(profile)) do paths[f.path] = f.type end
      assert.are.equal("string", paths["/person/name/firstName"])
      assert.are.equal("date", paths["/person/birthDate"])
      assert.are.equal("int", paths["/_exchangeinternal/totalLoyaltyPoints"])
      assert.are.equal("boolean", paths["/personalEmail/primary"])
      local list = xdm.field_paths(event)
      for i = 2, #list do assert.is_true(list[i - 1].path < list[i].path) end
      local ev = {}
      for _, f in ipairs(list) do ev[f.path] = f end
      assert.are.equal("string", ev["/identityMap/*[]/id"].type)
      assert.is_true(ev["/_id"].required)
      assert.is_true(ev["/_exchangeinternal/loyaltyID"].required)
    end)
  end)

  describe("the collection's data", function()
    local vprofile = xdm.compile(profile, { primary_identity = "/_exchangeinternal/loyaltyID" })
    local vevent = xdm.compile(event, { primary_identity = "/_exchangeinternal/loyaltyID" })

    it("accepts all 25 sample profiles", function()
      local recs = samples("AEP_loyalty_profiles.json")
      assert.are.equal(25, #recs)
      for i, r in ipairs(recs) do
        local ok, v = vprofile(r)
        assert.is_true(ok, "profile " .. i .. ": " .. (v and xdm.describe(v) or ""))
      end
    end)

    it("rejects the 20 sample events for their integer _id, as AEP does", function()
      local recs = samples("AEP_loyalty_events.json")
      assert.are.equal(20, #recs)
      for _, r in ipairs(recs) do
        local ok, v = vevent(r)
        assert.is_false(ok)
        assert.are.same({ { keyword = "type", message = "expected type: String, found: Integer",
          pointerToViolation = "#/_id", schemaLocation = "#/properties/_id" } }, brief(v))
        assert.are.same({}, v[1].causingExceptions)
      end
    end)

    it("accepts the 20 sample events once _id is a string", function()
      for i, r in ipairs(samples("AEP_loyalty_events.json")) do
        r._id = string.format("%d", r._id)
        local ok, v = vevent(r)
        assert.is_true(ok, "event " .. i .. ": " .. (v and xdm.describe(v) or ""))
      end
    end)

    it("accepts the collection's hand-written records (R15, R16)", function()
      local vars = { PROFILE_ID = "jdoe@testprofile.com", RANDOM_EVENT_ID = "4821739561.8364",
                     TIMESTAMP = "2020-03-06T17:42:09Z" }
      assert.is_true(vprofile(fixture("r15_profile_entity.json", vars)))
      assert.is_true(vevent(fixture("r16_event_entity.json", vars)))
    end)

    it("rejects the samples under another tenant with AEP's unknown-field violation", function()
      local p2, e2 = loyalty_schemas("acmecorp")
      local vp = xdm.compile(p2, { primary_identity = "/_acmecorp/loyaltyID" })
      local ok, v = vp(samples("AEP_loyalty_profiles.json")[1])
      assert.is_false(ok)
      assert.are.same({
        { keyword = "required", message = "required key [_acmecorp] not found", pointerToViolation = "#",
          schemaLocation = "#" },
        { keyword = "additionalProperties", message = "extraneous key [_exchangeinternal] is not permitted",
          pointerToViolation = "#", schemaLocation = "#" },
      }, brief(v))
      -- without an identity descriptor only the unknown field remains
      ok, v = xdm.compile(p2)(samples("AEP_loyalty_profiles.json")[2])
      assert.is_false(ok)
      assert.are.same({ { keyword = "additionalProperties", pointerToViolation = "#", schemaLocation = "#",
        message = "extraneous key [_exchangeinternal] is not permitted" } }, brief(v))
      local ev = samples("AEP_loyalty_events.json")[1]
      ev._id = "15367038"
      ok, v = xdm.compile(e2)(ev)
      assert.is_false(ok)
      assert.are.same({ { keyword = "additionalProperties", pointerToViolation = "#", schemaLocation = "#",
        message = "extraneous key [_exchangeinternal] is not permitted" } }, brief(v))
    end)
  end)

  describe("violations", function()
    local sink = fixture("kitchen_sink_mixin.json", { TENANT_ID = "acme" })
    local full = assert(xdm.resolve({ type = "object", title = "Sink", allOf = {
      { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" },
      { ["$ref"] = "https://ns.adobe.com/xdm/context/profile-person-details" },
      { ["$ref"] = "https://ns.adobe.com/xdm/context/profile-personal-details" },
      { ["$ref"] = "https://ns.adobe.com/xdm/context/identitymap" },
      { ["$ref"] = sink["$id"] } } },
      function(id) if id == sink["$id"] then return sink end end))
    local validate = xdm.compile(full)
    local everything = xdm.compile(full, { max_violations = 100 })

    local function check(entity, expected)
      local ok, v = validate(entity)
      assert.is_false(ok)
      assert.are.same(expected, brief(v))
      return v
    end

    it("accepts a record using every kind of field", function()
      assert.is_true(validate {
        person = { name = { firstName = "Ann" }, birthDate = "1980-02-29", gender = "not_specified",
                   nationality = "FR", birthYear = 1980 },
        personalEmail = { address = "ann.o'neil+x@mail.example.co.uk", primary = true, status = "whatever" },
        identityMap = { Email = { { id = "ann@example.com", authenticatedState = "authenticated", primary = true } },
                        ECID = { { id = "123" }, { id = "456" } } },
        _acme = { website = "https://example.com/a?b=c#d", code = "ABC-12", nickname = "Annie", score = 100,
                  ratio = 0.5, tags = { "a", "b" }, visits = { { when = "2024-01-02T03:04:05.123+02:00", page = "/" } },
                  attributes = { color = "red", size = "L" }, contact = { email = "a@b.io", since = "2001-09-09" } },
      })
    end)

    it("type", function()
      check({ person = { name = { firstName = 5 } } }, { {
        keyword = "type", message = "expected type: String, found: Integer",
        pointerToViolation = "#/person/name/firstName",
        schemaLocation = "#/properties/person/properties/name/properties/firstName" } })
      check({ personalEmail = { primary = "yes" } }, { {
        keyword = "type", message = "expected type: Boolean, found: String",
        pointerToViolation = "#/personalEmail/primary", schemaLocation = "#/properties/personalEmail/properties/primary" } })
      check({ person = "Ann" }, { {
        keyword = "type", message = "expected type: JSONObject, found: String",
        pointerToViolation = "#/person", schemaLocation = "#/properties/person" } })
      check({ _acme = { tags = "a" } }, { {
        keyword = "type", message = "expected type: JSONArray, found: String",
        pointerToViolation = "#/_acme/tags", schemaLocation = "#/properties/_acme/properties/tags" } })
      check({ _acme = { score = "10" } }, { {
        keyword = "type", message = "expected type: Number, found: String",
        pointerToViolation = "#/_acme/score", schemaLocation = "#/properties/_acme/properties/score" } })
      check({ person = { name = { firstName = cjson.null } } }, { {
        keyword = "type", message = "expected type: String, found: Null",
        pointerToViolation = "#/person/name/firstName",
        schemaLocation = "#/properties/person/properties/name/properties/firstName" } })
      check({ person = { name = { firstName = { "x" } } } }, { {
        keyword = "type", message = "expected type: String, found: JSONArray",
        pointerToViolation = "#/person/name/firstName",
        schemaLocation = "#/properties/person/properties/name/properties/firstName" } })
      check({ person = { name = { firstName = 3000000000 } } }, { {
        keyword = "type", message = "expected type: String, found: Long",
        pointerToViolation = "#/person/name/firstName",
        schemaLocation = "#/properties/person/properties/name/properties/firstName" } })
    end)

    it("integers: 12000 decoded as 12000.0 is an integer, 12.5 is not", function()
      local r = cjson.decode('{"_acme":{"score":12}}')
      assert.are.equal("float", math.type(r._acme.score))
      assert.is_true(validate(r))
      check(cjson.decode('{"_acme":{"score":12.5}}'), { {
        keyword = "type", message = "expected type: Integer, found: Double",
        pointerToViolation = "#/_acme/score", schemaLocation = "#/properties/_acme/properties/score" } })
      local vp = xdm.compile(profile)
      assert.is_true(vp(cjson.decode('{"_exchangeinternal":{"loyaltyID":"a@b.com","totalLoyaltyPoints":12000}}')))
    end)

    it("minimum, maximum, minLength, maxLength", function()
      check({ _acme = { score = 101 } }, { {
        keyword = "maximum", message = "101 is not less or equal to 100",
        pointerToViolation = "#/_acme/score", schemaLocation = "#/properties/_acme/properties/score" } })
      check({ _acme = { score = -1 } }, { {
        keyword = "minimum", message = "-1 is not greater or equal to 0",
        pointerToViolation = "#/_acme/score", schemaLocation = "#/properties/_acme/properties/score" } })
      check({ _acme = { ratio = 0.25 } }, { {
        keyword = "minimum", message = "0.25 is not greater or equal to 0.5",
        pointerToViolation = "#/_acme/ratio", schemaLocation = "#/properties/_acme/properties/ratio" } })
      check({ _acme = { ratio = 12345678.5 } }, { {
        keyword = "maximum", message = "1.23456785E7 is not less or equal to 10000000",
        pointerToViolation = "#/_acme/ratio", schemaLocation = "#/properties/_acme/properties/ratio" } })
      check({ _acme = { nickname = "A" } }, { {
        keyword = "minLength", message = "expected minLength: 2, actual: 1",
        pointerToViolation = "#/_acme/nickname", schemaLocation = "#/properties/_acme/properties/nickname" } })
      check({ _acme = { nickname = "Annabel" } }, { {
        keyword = "maxLength", message = "expected maxLength: 5, actual: 7",
        pointerToViolation = "#/_acme/nickname", schemaLocation = "#/properties/_acme/properties/nickname" } })
      assert.is_true(validate { _acme = { nickname = "Zoë" } }) -- code points, not bytes
      check({ _exchange = 1, homeAddress = { postOfficeBox = "123456789012345678901" } }, {
        { keyword = "additionalProperties", message = "extraneous key [_exchange] is not permitted",
          pointerToViolation = "#", schemaLocation = "#" },
        { keyword = "maxLength", message = "expected maxLength: 20, actual: 21",
          pointerToViolation = "#/homeAddress/postOfficeBox",
          schemaLocation = "#/properties/homeAddress/properties/postOfficeBox" } })
    end)

    it("required", function()
      check({ _acme = { visits = { { when = "2024-01-02T03:04:05Z" } } } }, { {
        keyword = "required", message = "required key [page] not found",
        pointerToViolation = "#/_acme/visits/0", schemaLocation = "#/properties/_acme/properties/visits/items" } })
    end)

    it("unknown field", function()
      check({ person = { name = { firstName = "A", nickName = "B" } } }, { {
        keyword = "additionalProperties", message = "extraneous key [nickName] is not permitted",
        pointerToViolation = "#/person/name", schemaLocation = "#/properties/person/properties/name" } })
      check({ workEmail = { address = "a@b.com" } }, { {
        keyword = "additionalProperties", message = "extraneous key [workEmail] is not permitted",
        pointerToViolation = "#", schemaLocation = "#" } })
    end)

    it("enum: everit's synthetic allOf of the enum and the type", function()
      local v = check({ person = { gender = "robot" } }, { {
        keyword = "allOf", message = "#: only 1 subschema matches out of 2",
        pointerToViolation = "#/person/gender", schemaLocation = "#/properties/person/properties/gender" } })
      assert.are.same({ { keyword = "enum", message = "robot is not a valid enum value",
        pointerToViolation = "#/person/gender", causingExceptions = {} } }, v[1].causingExceptions)
      v = check({ person = { gender = 1 } }, { {
        keyword = "allOf", message = "#: only 0 subschema matches out of 2",
        pointerToViolation = "#/person/gender", schemaLocation = "#/properties/person/properties/gender" } })
      assert.are.same({
        { keyword = "enum", message = "1 is not a valid enum value", pointerToViolation = "#/person/gender",
          causingExceptions = {} },
        { keyword = "type", message = "expected type: String, found: Integer", pointerToViolation = "#/person/gender",
          causingExceptions = {} } }, v[1].causingExceptions)
      -- meta:enum alone only suggests values
      assert.is_true(validate { personalEmail = { status = "on holiday", type = "other" } })
    end)

    it("pattern", function()
      check({ person = { nationality = "usa" } }, { {
        keyword = "pattern", message = "string [usa] does not match pattern ^[A-Z]{2}$",
        pointerToViolation = "#/person/nationality", schemaLocation = "#/properties/person/properties/nationality" } })
      check({ _acme = { code = "ABC-123" } }, { {
        keyword = "pattern", message = "string [ABC-123] does not match pattern ^[A-Z]{3}-[0-9]{2}$",
        pointerToViolation = "#/_acme/code", schemaLocation = "#/properties/_acme/properties/code" } })
      -- unanchored patterns match anywhere (Matcher.find)
      assert.is_true(validate { person = { birthDayAndMonth = "born 12-31" } })
    end)

    it("format: date", function()
      check({ person = { birthDate = "1980-5-10" } }, { {
        keyword = "format", message = "[1980-5-10] is not a valid date. Expected [yyyy-MM-dd]",
        pointerToViolation = "#/person/birthDate", schemaLocation = "#/properties/person/properties/birthDate" } })
      check({ person = { birthDate = "1980-13-01" } }, { {
        keyword = "format", message = "[1980-13-01] is not a valid date. Expected [yyyy-MM-dd]",
        pointerToViolation = "#/person/birthDate", schemaLocation = "#/properties/person/properties/birthDate" } })
    end)

    it("format: date-time", function()
      local expected = "Expected [yyyy-MM-dd'T'HH:mm:ssZ, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1-9}Z, "
        .. "yyyy-MM-dd'T'HH:mm:ss[+-]HH:mm, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,9}[+-]HH:mm]"
      check({ _acme = { visits = { { page = "/" }, { page = "/x", when = "2018-00-23T22:07:01Z" } } } }, { {
        keyword = "format", message = "[2018-00-23T22:07:01Z] is not a valid date-time. " .. expected,
        pointerToViolation = "#/_acme/visits/1/when",
        schemaLocation = "#/properties/_acme/properties/visits/items/properties/when" } })
      for _, bad in ipairs { "2020-03-03 06:34:55Z", "2020-03-03T06:34:55", "2020-03-03T06:34:55+0100",
                             "2020-03-03T24:00:00Z", "2020-03-03T06:34:55.1234567890Z", "2020-03-03t06:34:55z" } do
        local ok, v = validate { _acme = { visits = { { page = "/", when = bad } } } }
        assert.is_false(ok, bad)
        assert.are.equal("[" .. bad .. "] is not a valid date-time. " .. expected, v[1].message)
      end
      for _, good in ipairs { "2020-03-03T06:34:55Z", "2020-03-03T06:34:55.1Z", "2020-03-03T06:34:55.123456789Z",
                              "2020-03-03T06:34:55+05:30", "2020-03-03T06:34:55.5-08:00" } do
        assert.is_true(validate { _acme = { visits = { { page = "/", when = good } } } }, good)
      end
    end)

    it("format: email", function()
      check({ personalEmail = { address = "jdoe@" } }, { {
        keyword = "format", message = "[jdoe@] is not a valid email address",
        pointerToViolation = "#/personalEmail/address", schemaLocation = "#/properties/personalEmail/properties/address" } })
      for _, bad in ipairs { "plainaddress", "a@b", "a b@example.com", "a..b@example.com", "a@example.invalidtld",
                             "a@-example.com", "a@example.com.", ".a@example.com", "a@exa_mple.com" } do
        local ok, v = validate { personalEmail = { address = bad } }
        assert.is_false(ok, bad)
        assert.are.equal("[" .. bad .. "] is not a valid email address", v[1].message)
      end
      for _, good in ipairs { "tscrowby0@chicagotribune.com", "vjanecki8@tripadvisor.com", "x@youtu.be",
                              "first.last+tag@sub.example.org", "o'neil@example.ie", "a@[127.0.0.1]" } do
        assert.is_true(validate { personalEmail = { address = good } }, good)
      end
    end)

    it("format: uri", function()
      check({ _acme = { website = "www.example.com" } }, { {
        keyword = "format", message = "[www.example.com] is not a valid URI",
        pointerToViolation = "#/_acme/website", schemaLocation = "#/properties/_acme/properties/website" } })
      check({ _acme = { website = "http://exa mple.com" } }, { {
        keyword = "format", message = "[http://exa mple.com] is not a valid URI",
        pointerToViolation = "#/_acme/website", schemaLocation = "#/properties/_acme/properties/website" } })
      assert.is_true(validate { _acme = { website = "mailto:ann@example.com" } })
      assert.is_true(validate { _acme = { website = "//cdn.example.com/x.js" } })
    end)

    it("arrays and maps carry their index and key in the pointer", function()
      check({ _acme = { tags = { "a", 2, "c" } } }, { {
        keyword = "type", message = "expected type: String, found: Integer",
        pointerToViolation = "#/_acme/tags/1", schemaLocation = "#/properties/_acme/properties/tags/items" } })
      local v = check({ identityMap = { Email = { { id = "a@b.c", authenticatedState = "unknown" } } } }, { {
        keyword = "allOf", message = "#: only 1 subschema matches out of 2",
        pointerToViolation = "#/identityMap/Email/0/authenticatedState",
        schemaLocation = "#/properties/identityMap/additionalProperties/items/properties/authenticatedState" } })
      assert.are.equal("unknown is not a valid enum value", v[1].causingExceptions[1].message)
      check({ identityMap = { Email = { id = "a@b.c" } } }, { {
        keyword = "type", message = "expected type: JSONArray, found: JSONObject",
        pointerToViolation = "#/identityMap/Email", schemaLocation = "#/properties/identityMap/additionalProperties" } })
      check({ _acme = { attributes = { color = "red", size = 3 } } }, { {
        keyword = "type", message = "expected type: String, found: Integer",
        pointerToViolation = "#/_acme/attributes/size",
        schemaLocation = "#/properties/_acme/properties/attributes/additionalProperties" } })
    end)

    it("escapes ~ and / in pointers and URL-encodes schemaLocation", function()
      check({ _acme = { attributes = { ["a/b~c"] = false } } }, { {
        keyword = "type", message = "expected type: String, found: Boolean",
        pointerToViolation = "#/_acme/attributes/a~1b~0c",
        schemaLocation = "#/properties/_acme/properties/attributes/additionalProperties" } })
      local v = xdm.compile({ type = "object", properties = { ["a b@c"] = { type = "string" } } })
      local ok, list = v({ ["a b@c"] = 1 })
      assert.is_false(ok)
      assert.are.equal("#/properties/a+b%40c", list[1].schemaLocation)
      assert.are.equal("#/a b@c", list[1].pointerToViolation)
    end)

    it("stops after 5 violations, in everit's order", function()
      local rec = {
        person = { name = { firstName = 1, lastName = 2 }, gender = "x", birthDate = "soon" },
        personalEmail = { address = "nope", primary = 0 },
        bogus = true,
      }
      local ok, v = validate(rec)
      assert.is_false(ok)
      assert.are.equal(5, #v)
      local _, all = everything(rec)
      assert.are.equal(7, #all)
      assert.are.same(brief({ all[1], all[2], all[3], all[4], all[5] }), brief(v))
      -- extraneous keys come first, then the declared properties
      assert.are.equal("extraneous key [bogus] is not permitted", v[1].message)
      -- the same order on every run and for every table layout
      for _ = 1, 3 do
        local copy = cjson.decode(cjson.encode(rec))
        local _, again = validate(copy)
        assert.are.same(brief(v), brief(again))
      end
    end)

    it("visits extraneous keys in java.util.HashMap order (workEmail before person)", function()
      local vp = xdm.compile(xdm.resolve({ type = "object", allOf = {
        { ["$ref"] = "https://ns.adobe.com/xdm/context/experienceevent" } } }))
      local ok, v = vp { workEmail = {}, person = {}, _id = 123456789012, timestamp = "2020-03-03T06:34:55Z" }
      assert.is_false(ok)
      assert.are.same({
        { keyword = "additionalProperties", message = "extraneous key [workEmail] is not permitted",
          pointerToViolation = "#", schemaLocation = "#" },
        { keyword = "additionalProperties", message = "extraneous key [person] is not permitted",
          pointerToViolation = "#", schemaLocation = "#" },
        { keyword = "type", message = "expected type: String, found: Long", pointerToViolation = "#/_id",
          schemaLocation = "#/properties/_id" },
      }, brief(v))
    end)
  end)

  describe("identity and class requirements", function()
    it("requires the primary identity field", function()
      local v = xdm.compile(profile, { primary_identity = "/_exchangeinternal/loyaltyID" })
      local ok, list = v { person = { name = { firstName = "A" } } }
      assert.is_false(ok)
      assert.are.same({ { keyword = "required", message = "required key [_exchangeinternal] not found",
        pointerToViolation = "#", schemaLocation = "#" } }, brief(list))
      ok, list = v { _exchangeinternal = { loyaltyLevel = "Gold" } }
      assert.is_false(ok)
      assert.are.same({ { keyword = "required", message = "required key [loyaltyID] not found",
        pointerToViolation = "#/_exchangeinternal", schemaLocation = "#/properties/_exchangeinternal" } }, brief(list))
      -- the emulator's descriptor table works too
      local v2 = xdm.compile(profile, { primary_identity = { path = "/personalEmail/address", namespace = "Email" } })
      ok, list = v2 { _exchangeinternal = { loyaltyID = "a@b.com" } }
      assert.is_false(ok)
      assert.are.equal("required key [personalEmail] not found", list[1].message)
    end)

    it("requires _id and timestamp in events", function()
      local v = xdm.compile(event)
      local ok, list = v { eventType = "x", _exchangeinternal = { loyaltyID = "a@b.com" } }
      assert.is_false(ok)
      assert.are.same({
        { keyword = "required", message = "required key [_id] not found", pointerToViolation = "#", schemaLocation = "#" },
        { keyword = "required", message = "required key [timestamp] not found", pointerToViolation = "#",
          schemaLocation = "#" },
      }, brief(list))
      ok, list = v { _id = "e1", timestamp = "yesterday" }
      assert.is_false(ok)
      assert.are.equal("#/timestamp", list[1].pointerToViolation)
      -- opts.class adds them to a schema that lacks them
      local bare = xdm.compile({ type = "object", properties = { x = { type = "string" } } }, { class = "experienceevent" })
      ok, list = bare { x = "1" }
      assert.is_false(ok)
      assert.are.same({ "required key [_id] not found", "required key [timestamp] not found" },
        { list[1].message, list[2].message })
      assert.is_false((bare { x = "1", _id = 7, timestamp = "2020-01-01T00:00:00Z" }))
    end)
  end)

end)
