-- aep.dataprep mapping sets: the examples of mapping-set.md and api/mapping-set.md (preview),
-- array paths, implicit conversions to the target schema's types (data-handling.md), failing
-- expressions (the field is nullified, the rest of the record mapped: troubleshooting-guide.md),
-- validation as POST /mappingSets/validate answers, and compile-once.
local cjson = require "cjson"
local json = require "aep.json"
local xdm = require "aep.xdm"
local dataprep = require "aep.dataprep"

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- the collection's loyalty profile schema, resolved as tests/lua/xdm_spec.lua resolves it
local function loyalty_schema()
  local vars = { TENANT_ID = "exchangeinternal", UNIQUE_ID = "" }
  local function fixture(name)
    return cjson.decode((read("tests/fixtures/xdm/" .. name):gsub("{{([%w_]+)}}", function(k) return vars[k] end)))
  end
  local pm = fixture("loyalty_profile_mixin.json")
  pm["$id"] = "https://ns.adobe.com/exchangeinternal/mixins/loyalty"
  vars.MIXIN_ID_PROFILE = pm["$id"]
  return assert(xdm.resolve(fixture("loyalty_profile_schema.json"), function(id)
    if id == pm["$id"] then return pm end
  end))
end

-- a small resolved schema with arrays, dates and every scalar type
local SMALL = {
  type = "object",
  properties = {
    pi = { type = "object", properties = {
      name = { type = "string" }, email = { type = "string" },
      emailList = { type = "array", items = { type = "object", properties = {
        name = { type = "string" }, email = { type = "string" } } } },
      created = { type = "string" },
    } },
    people = { type = "array", items = { type = "object", properties = { names = { type = "string" },
      rank = { type = "integer", minimum = 0, maximum = 100 } } } },
    piList = { type = "array", items = { type = "string" } },
    userType = { type = "string" },
    count = { type = "integer", minimum = -2147483648, maximum = 2147483647 },
    score = { type = "number" },
    active = { type = "boolean" },
    seen = { type = "string", format = "date-time" },
    born = { type = "string", format = "date" },
    addr = { type = "object", properties = { addrLine1 = { type = "string" }, city = { type = "string" },
      state = { type = "string" }, zip = { type = "integer" } } },
    tags = { type = "object", additionalProperties = { type = "string" } },
  },
}

local function map(set, record, schema)
  local c, errs = dataprep.compile(set, { schema = schema })
  assert(c, errs and errs[1] and errs[1].exception)
  return c:map(record)
end

local function attr(source, destination) return { sourceType = "ATTRIBUTE", source = source, destination = destination } end

local CUSTOMER = { customerInfo = { name = "John Smith", email = "js@example.com", emails = {
  { name = "John Smith", email = "js@example.com" }, { name = "Jane Smith", email = "jane@example.com" } } } }

describe("dataprep mapping sets", function()
  describe("mapping-set.md examples", function()
    it("maps a field whose name holds a dot, escaped (columnar data)", function()
      local out = map({ mappings = { attr("Full\\.Name", "pi.name") } }, { ["Full.Name"] = "John Smith" }, SMALL)
      assert.same({ pi = { name = "John Smith" } }, out)
    end)

    it("maps a field in nested data", function()
      assert.same({ pi = { name = "John Smith" } }, map({ mappings = { attr("customerInfo.name", "pi.name") } }, CUSTOMER, SMALL))
    end)

    it("maps a field within an array by index", function()
      assert.same({ pi = { email = "js@example.com" } },
        map({ mappings = { attr("customerInfo.emails[0].email", "pi.email") } }, CUSTOMER, SMALL))
    end)

    it("maps an array to an array", function()
      assert.same({ pi = { emailList = CUSTOMER.customerInfo.emails } },
        map({ mappings = { attr("customerInfo.emails", "pi.emailList") } }, CUSTOMER, SMALL))
    end)

    -- the doc's output nests {"names": {"name": ...}}; the value of each element's name is what
    -- lands in names (docs/dataprep.md)
    it("iterates arrays with [*] on both sides", function()
      assert.same({ people = { { names = "John Smith" }, { names = "Jane Smith" } } },
        map({ mappings = { attr("customerInfo.emails[*].name", "people[*].names") } }, CUSTOMER, SMALL))
    end)

    it("maps a STATIC value", function()
      assert.same({ userType = "CUSTOMER" }, map({ mappings = {
        { sourceType = "STATIC", source = "CUSTOMER", destination = "userType" } } }, { name = "John Smith" }, SMALL))
    end)

    it("maps an EXPRESSION", function()
      assert.same({ pi = { created = "SMITHJOHN" } }, map({ mappings = {
        { sourceType = "EXPRESSION", source = "concat(upper(lastName), upper(firstName))", destination = "pi.created" } } },
        { firstName = "John", lastName = "Smith", email = "js@example.com" }, SMALL))
    end)

    it("maps to the root, a nested field and an array index", function()
      assert.same({ userType = "John Smith", pi = { name = "John Smith" }, piList = { "John Smith" } }, map({ mappings = {
        attr("customerInfo.name", "userType"), attr("customerInfo.name", "pi.name"), attr("customerInfo.name", "piList[0]"),
      } }, CUSTOMER, SMALL))
    end)

    it("copies an object into an object: the attributes the schema has (object copy)", function()
      local out = map({ mappings = { attr("address", "addr"), attr("address.line1", "addr.addrLine1") } },
        { address = { line1 = "4191 Ridgebrook Way", city = "San Jose", state = "California", zip = "95123" } }, SMALL)
      assert.same({ addr = { addrLine1 = "4191 Ridgebrook Way", city = "San Jose", state = "California", zip = 95123 } }, out)
    end)
  end)

  it("previews the api/mapping-set.md example: 1234 becomes the string \"1234\" for _id", function()
    local set = { outputSchema = { schemaRef = { id = "https://ns.adobe.com/stardust/schemas/89abc189258b1cb1a816d8f2b2341a6d98000ed8f4008305",
      contentType = "application/vnd.adobe.xed-full+json;version=1" } }, mappings = {
      { sourceType = "ATTRIBUTE", source = "id", destination = "_id", name = "id", description = "Identifier field" },
      { sourceType = "ATTRIBUTE", source = "firstName", destination = "person.name.firstName" },
      { sourceType = "ATTRIBUTE", source = "lastName", destination = "person.name.lastName" },
    } }
    local record = json.decode('{"id": 1234, "firstName": "Jim", "lastName": "Seltzer"}')
    local out, errors = map(set, record, loyalty_schema())
    assert.same({ person = { name = { firstName = "Jim", lastName = "Seltzer" } }, _id = "1234" }, out)
    assert.is_nil(errors)
  end)

  it("previews records as POST /mappingSets/preview answers: {data, errors} per record", function()
    local set = { mappings = { attr("id", "_id"), { sourceType = "EXPRESSION", source = "to_integer(n)", destination = "person.birthYear" } } }
    local list = assert(dataprep.preview(set, { { id = 1234, n = "1990" }, { id = "x", n = "soon" } }, loyalty_schema()))
    assert.equal('[{"data":{"_id":"1234","person":{"birthYear":1990}},"errors":null},' ..
      '{"data":{"_id":"x"},"errors":[{"destination":"person.birthYear","exception":"to_integer: \'soon\' is not a number",' ..
      '"source":"to_integer(n)","sourceType":"EXPRESSION"}]}]',
      json.encode_pretty(list, ""):gsub("\n", ""):gsub('": ', '":'))
    local none, errors = dataprep.preview({ mappings = { attr("a[", "b") } }, {})
    assert.is_nil(none)
    assert.equal("source: unclosed '[' in path 'a['", errors[1].exception)
  end)

  it("maps the collection's loyalty sample into its schema's types: valid XDM", function()
    local set = json.decode(read("tests/lua/dataprep_mapping_spec.lua"):match("%-%-%[%[LOYALTY(.-)%]%]"))
    local record = json.decode(read("data/AEP_loyalty_profiles.json"))[1]
    local schema = loyalty_schema()
    local ok, resp = dataprep.validate(set, schema)
    assert.is_true(ok, json.encode(resp))
    local out, errors = map(set, record, schema)
    assert.is_nil(errors)
    local valid, problems = xdm.compile(schema)(out)
    assert.is_true(valid ~= false and (problems == nil or #problems == 0), json.encode(problems or {}))
    assert.same({
      _exchangeinternal = { loyaltyID = "tscrowby0@chicagotribune.com", totalLoyaltyPoints = 241450, loyaltyLevel = "Platinum" },
      person = { name = { firstName = "Timi", lastName = "Scrowby", fullName = "Timi Scrowby" }, birthDate = "1979-03-06",
        gender = "male", birthYear = 1979 },
      personalEmail = { address = "tscrowby0@chicagotribune.com", primary = false },
      identityMap = { Email = { { id = "tscrowby0@chicagotribune.com", primary = true } } },
    }, out)
  end)

  describe("implicit conversions to the target type (data-handling.md)", function()
    local function one(source, destination, record)
      local out, errors = map({ mappings = { attr(source, destination) } }, record, SMALL)
      return out[destination], errors and errors[1].exception
    end

    it("parses the documented boolean words", function()
      for _, w in ipairs({ "y", "yes", "Y", "YES", "on", "ON", "true", "TRUE" }) do assert.is_true((one("v", "active", { v = w }))) end
      for _, w in ipairs({ "n", "N", "no", "NO", "off", "OFF", "false", "FALSE" }) do assert.is_false((one("v", "active", { v = w }))) end
      assert.same({ nil, "cannot convert string 'maybe' to a boolean" }, { one("v", "active", { v = "maybe" }) })
    end)

    it("converts strings and numbers to integers, numbers and strings", function()
      assert.equal(42, (one("v", "count", { v = "42" })))
      assert.equal("integer", math.type((one("v", "count", { v = 42.0 }))))
      assert.equal(2.5, (one("v", "score", { v = "2.5" })))
      assert.equal("12", (one("v", "userType", { v = 12.0 })))
      assert.equal("2.5", (one("v", "userType", { v = 2.5 })))
      assert.equal("true", (one("v", "userType", { v = true })))
      assert.same({ nil, "cannot convert string '4.5' to an integer" }, { one("v", "count", { v = "4.5" }) })
      assert.same({ nil, "cannot convert string 'abc' to a number" }, { one("v", "score", { v = "abc" }) })
      assert.same({ nil, "3000000000 is out of range for the field (-2147483648 to 2147483647)" }, { one("v", "count", { v = 3e9 }) })
      assert.same({ nil, "cannot convert an object to a string" }, { one("v", "userType", { v = { a = 1 } }) })
    end)

    it("reads dates with the default formats, in order, and writes ISO 8601", function()
      local cases = {
        { "2024-05-05 20:39:00-0800", "2024-05-06T04:39:00Z" },
        { "2024-05-05 20:39:00.005-0800", "2024-05-06T04:39:00.005Z" },
        { "2024-05-05 20:39:00.005", "2024-05-05T20:39:00.005Z" },
        { "2024-05-05T20:39:00.005+02:00", "2024-05-05T18:39:00.005Z" },
        { "2024-05-05T20:39:00Z", "2024-05-05T20:39:00Z" },
        { "2024-05-05", "2024-05-05T00:00:00Z" },
        { "2024/05/05", "2024-05-05T00:00:00Z" },
        { "2024.05.05", "2024-05-05T00:00:00Z" },
        { "2024-May-05", "2024-05-05T00:00:00Z" },
        { "20240505", "2024-05-05T00:00:00Z" },
        { "05-06-2024", "2024-05-06T00:00:00Z" },
        { "12112020", "2020-12-11T00:00:00Z" }, -- MMddyyyy, as data-handling.md warns
        { "5/06/2024", "2024-05-06T00:00:00Z" },
        { "06.5.2024", "2024-05-06T00:00:00Z" },
        { "5/06/2024 01:02:03 PM", "2024-05-06T13:02:03Z" },
        { "06.5.2024 01:02:03 AM", "2024-05-06T01:02:03Z" },
        { "06.May.2024", "2024-05-06T00:00:00Z" },
        { "06-May-2024", "2024-05-06T00:00:00Z" },
      }
      for _, c in ipairs(cases) do assert.equal(c[2], (one("v", "seen", { v = c[1] })), c[1]) end
      assert.equal("1979-03-06", (one("v", "born", { v = "03-06-1979" })))
      assert.equal("2019-10-23T11:24:35Z", (one("v", "seen", { v = 1571829875000 }))) -- epoch milliseconds
      assert.same({ nil, "'next tuesday' matches none of the supported date formats; give the format explicitly, e.g. date(field, \"yyyy-MM-dd\")" },
        { one("v", "seen", { v = "next tuesday" }) })
    end)

    it("writes a date value in UTC to a date-time field and as ISO text without a schema", function()
      local set = { mappings = { { sourceType = "EXPRESSION", source = "date(d, 'yyyy-MM-dd HH:mm VV')", destination = "seen" } } }
      assert.same({ seen = "2021-07-01T10:00:00Z" }, map(set, { d = "2021-07-01 12:00 Europe/Paris" }, SMALL))
      assert.same({ seen = "2021-07-01T10:00:00Z" }, map(set, { d = "2021-07-01 12:00 Europe/Paris" }))
    end)
  end)

  describe("a failing expression", function()
    local set = { mappings = {
      attr("id", "userType"),
      { sourceType = "EXPRESSION", source = "to_integer(points)", destination = "count" },
      { sourceType = "EXPRESSION", source = "upper(name)", destination = "pi.name" },
      attr("score", "score"),
    } }

    it("nullifies its field, reports AEP's TransformErrorInfo and maps the rest of the record", function()
      local out, errors = map(set, { id = "u1", points = "lots", name = "ada", score = "x" }, SMALL)
      assert.same({ userType = "u1", pi = { name = "ADA" } }, out)
      assert.same({
        { sourceType = "EXPRESSION", source = "to_integer(points)", destination = "count", exception = "to_integer: 'lots' is not a number" },
        { sourceType = "ATTRIBUTE", source = "score", destination = "score", exception = "cannot convert string 'x' to a number" },
      }, errors)
    end)

    it("gives no errors (nil) for a record that maps cleanly, and leaves missing fields out", function()
      local out, errors = map(set, { id = "u2", points = "7" }, SMALL)
      assert.same({ userType = "u2", count = 7 }, out)
      assert.is_nil(errors)
    end)
  end)

  describe("array paths", function()
    it("spreads an expression's array over [*]", function()
      assert.same({ people = { { names = "A" }, { names = "B" } } }, map({ mappings = {
        { sourceType = "EXPRESSION", source = "split(upper(list), ',')", destination = "people[*].names" } } },
        { list = "a,b" }, SMALL))
    end)

    it("pairs two [*] mappings element by element and converts each", function()
      local out = map({ mappings = { attr("items[*].n", "people[*].names"), attr("items[*].r", "people[*].rank") } },
        { items = { { n = "x", r = "1" }, { n = "y", r = "2" } } }, SMALL)
      assert.same({ people = { { names = "x", rank = 1 }, { names = "y", rank = 2 } } }, out)
    end)

    it("collects [*] values into an array when the destination has no [*]", function()
      assert.same({ piList = { "js@example.com", "jane@example.com" } },
        map({ mappings = { attr("customerInfo.emails[*].email", "piList") } }, CUSTOMER, SMALL))
    end)

    it("maps nothing from an empty or missing array", function()
      assert.same({}, map({ mappings = { attr("items[*].n", "people[*].names") } }, { items = json.array({}) }, SMALL))
      assert.same({}, map({ mappings = { attr("items[*].n", "people[*].names") } }, {}, SMALL))
    end)

    it("writes map keys through additionalProperties", function()
      assert.same({ tags = { color = "red" } }, map({ mappings = { attr("c", "tags.color") } }, { c = "red" }, SMALL))
    end)
  end)

  it("reads the mapping shapes of stored mapping sets (sourceAttribute, destinationXdmPath, text/x.*)", function()
    local out = map({ xdmSchema = "https://ns.adobe.com/xdm/context/profile__union", xdmVersion = "1.0", mappings = {
      { sourceType = "text/x.schema-path", sourceAttribute = "a", destinationXdmPath = "userType", identity = false, version = 0 },
      { sourceType = "text/x.aep-xl", source = "lower(b)", destination = "pi.name" },
      { sourceAttribute = "c", destinationXdmPath = "pi.email" },
    } }, { a = "x", b = "Y", c = "z" }, SMALL)
    assert.same({ userType = "x", pi = { name = "y", email = "z" } }, out)
  end)

  it("compiles every expression once: mapping records never parses again", function()
    local parser = require "aep.dataprep.parser"
    local c = assert(dataprep.compile({ mappings = {
      { sourceType = "EXPRESSION", source = "concat(a, '-', upper(b))", destination = "userType" } } }, { schema = SMALL }))
    local real, calls = parser.parse, 0
    parser.parse = function(...) calls = calls + 1; return real(...) end
    for i = 1, 100 do assert.equal("x-" .. i, (c:map({ a = "x", b = tostring(i) })).userType) end
    parser.parse = real
    assert.equal(0, calls)
  end)

  describe("the generated function and the mapping-by-mapping fallback", function()
    local MAPPINGS = {
      attr("customerInfo.name", "pi.name"),
      attr("customerInfo.emails[1].email", "pi.email"),
      attr("customerInfo.emails[*].name", "people[*].names"),
      { sourceType = "STATIC", source = 7, destination = "count" },
      { sourceType = "EXPRESSION", source = "to_integer('42')", destination = "people[0].rank" },
      attr("customerInfo.emails", "pi.emailList"),
      { sourceType = "EXPRESSION", source = "customerInfo.emails[0].email", destination = "piList[2]" },
      attr("customerInfo.flag", "active"),
    }

    it("give the same entity (a record with an error takes the fallback)", function()
      local record = { customerInfo = { name = "John Smith", flag = "yes", emails = CUSTOMER.customerInfo.emails } }
      local clean, errs = map({ mappings = MAPPINGS }, record, SMALL)
      assert.is_nil(errs)
      local failing = { table.unpack(MAPPINGS) }
      failing[#failing + 1] = { sourceType = "EXPRESSION", source = "to_integer('x')", destination = "score" }
      local fallback, errors = map({ mappings = failing }, record, SMALL)
      assert.same(clean, fallback)
      assert.equal(1, #errors)
      assert.same({ pi = { name = "John Smith", email = "jane@example.com", emailList = CUSTOMER.customerInfo.emails },
        people = { { names = "John Smith", rank = 42 }, { names = "Jane Smith" } }, count = 7,
        piList = { json.null, json.null, "js@example.com" }, active = true }, clean)
      assert.equal('[null,null,"js@example.com"]', json.encode(clean.piList))
    end)

    it("builds a STATIC array anew for each entity", function()
      local c = assert(dataprep.compile({ mappings = { { sourceType = "STATIC", source = json.decode('["a"]'), destination = "piList" } } },
        { schema = SMALL }))
      local a, b = c:map({}), c:map({})
      assert.same({ "a" }, a.piList)
      assert.is_false(rawequal(a.piList, b.piList))
    end)

    it("reports a STATIC value the field cannot take on every record", function()
      local out, errors = map({ mappings = { { sourceType = "STATIC", source = "many", destination = "count" }, attr("a", "userType") } },
        { a = "x" }, SMALL)
      assert.same({ userType = "x" }, out)
      assert.same({ { sourceType = "STATIC", source = "many", destination = "count", exception = "cannot convert string 'many' to an integer" } }, errors)
    end)

    it("maps what is not an object as an empty record", function()
      local c = assert(dataprep.compile({ mappings = { attr("a", "userType"), { sourceType = "STATIC", source = "s", destination = "pi.name" } } }))
      assert.same({ pi = { name = "s" } }, (c:map("not a record")))
    end)
  end)

  it("lists every function of functions.md", function()
    local names = {}
    for _, n in ipairs(dataprep.functions()) do names[n] = true end
    for n in ([[concat explode instr replacestr substr lower lcase upper ucase split join lpad rpad left right
      ltrim rtrim trim extract_regex matches_regex sha1 sha256 sha512 md5 crc32 get_url_protocol get_url_host
      get_url_port get_url_path get_url_query_str get_url_encoded get_url_decoded now timestamp format dformat
      date date_part set_date_part make_date_time make_timestamp zone_date_to_utc zone_date_to_zone is_empty
      arrays_to_object to_object str_to_object contains_key nullify get_keys get_values coalesce first last
      add_to_array join_arrays to_array size_of upsert_array_append upsert_array_replace decode iif min max
      to_bigint to_decimal to_float to_integer json_to_object uuid guid fpid_to_ecid ua_os_name
      ua_os_version_major ua_os_version ua_os_name_version ua_agent_version ua_agent_version_major
      ua_agent_name ua_device_class]]):gmatch("%S+") do
      assert.is_true(names[n], n)
    end
  end)

  it("catalogs the functions and operators as /languages/el/functions and /operators list them", function()
    local by_name = {}
    for _, f in ipairs(dataprep.function_catalog()) do by_name[f["function"]] = f end
    assert.same({ category = "Hierarchies - Arrays", ["function"] = "first", minArguments = 0, maxArguments = json.null, returns = "any" }, by_name.first)
    assert.same({ category = "Date / Time", ["function"] = "date", minArguments = 1, maxArguments = 3, returns = "date" }, by_name.date)
    assert.equal(#dataprep.functions(), #dataprep.function_catalog())
    local ops = dataprep.operator_catalog()
    assert.same({ operatorSymbol = "~", methodName = "complement", numberOfOperands = 1,
      description = "The usual ~ operator is used, e.g., ~33, ~0010 0001 = 1101 1110 = -34.", example = "~44" }, ops[16])
    for _, o in ipairs(ops) do -- every listed example compiles
      assert.is_function((dataprep.expression(o.example)), o.example)
    end
  end)

  describe("compile errors", function()
    local CASES = {
      { { sourceType = "NOPE", source = "a", destination = "b" }, "unknown sourceType 'NOPE' (use ATTRIBUTE, EXPRESSION or STATIC)" },
      { { sourceType = "ATTRIBUTE", source = "a" }, "the mapping has no destination" },
      { { sourceType = "ATTRIBUTE", destination = "a" }, "the mapping has no source" },
      { attr("a[x]", "b"), "source: bad index '[x]' in path 'a[x]' (use [n] or [*])" },
      { attr("a..b", "b"), "source: empty name in path 'a..b'" },
      { attr("a", "b["), "destination: unclosed '[' in path 'b['" },
      { { sourceType = "EXPRESSION", source = "concat(a", destination = "b" }, "expected ')' but found the end at offset 8" },
    }
    for _, case in ipairs(CASES) do
      it(case[2], function()
        local c, errors = dataprep.compile({ mappings = { attr("ok", "fine"), case[1] } })
        assert.is_nil(c)
        assert.equal(1, #errors)
        assert.equal(case[2], errors[1].exception)
        assert.equal(1, errors[1].index)
      end)
    end
    it("refuses what is not a mapping set", function()
      local c, errors = dataprep.compile({ name = "x" })
      assert.is_nil(c)
      assert.same({ { exception = "the mapping set has no mappings array" } }, errors)
    end)
  end)

  describe("validation against the target schema (POST /mappingSets/validate)", function()
    it("answers SUCCESS per mapping for the documented example", function()
      local ok, resp = dataprep.validate({ mappings = {
        { sourceType = "ATTRIBUTE", source = "id", destination = "_id", name = "id", description = "Identifier field" },
        { sourceType = "ATTRIBUTE", source = "firstName", destination = "person.name.firstName" },
        { sourceType = "ATTRIBUTE", source = "lastName", destination = "person.name.lastName" },
      } }, loyalty_schema())
      assert.is_true(ok)
      assert.equal('{"validationResponse":[{"status":"SUCCESS","errors":null},{"status":"SUCCESS","errors":null},{"status":"SUCCESS","errors":null}]}',
        json.encode(resp):gsub('"errors":null,"status":"SUCCESS"', '"status":"SUCCESS","errors":null'))
    end)

    it("fails unknown destinations, type mismatches and bad expressions, each with its reason", function()
      local ok, resp = dataprep.validate({ mappings = {
        attr("a", "person.name.nickname"),
        { sourceType = "STATIC", source = "lots", destination = "_exchangeinternal.totalLoyaltyPoints" },
        { sourceType = "EXPRESSION", source = "now()", destination = "personalEmail.primary" },
        { sourceType = "EXPRESSION", source = "upper(", destination = "person.name.firstName" },
        { sourceType = "EXPRESSION", source = "to_integer(p)", destination = "_exchangeinternal.totalLoyaltyPoints" },
      } }, loyalty_schema())
      assert.is_false(ok)
      local r = resp.validationResponse
      assert.same({ status = "FAILED", errors = { { sourceType = "ATTRIBUTE", source = "a", destination = "person.name.nickname",
        exception = "destination 'person.name.nickname' is not a field of the target schema" } } }, r[1])
      assert.same({ status = "FAILED", errors = { { sourceType = "STATIC", source = "lots", destination = "_exchangeinternal.totalLoyaltyPoints",
        exception = "type mismatch: cannot convert string 'lots' to an integer" } } }, r[2])
      assert.same({ status = "FAILED", errors = { { sourceType = "EXPRESSION", source = "now()", destination = "personalEmail.primary",
        exception = "type mismatch: the expression gives date, the destination 'personalEmail.primary' is boolean" } } }, r[3])
      assert.same({ status = "FAILED", errors = { { sourceType = "EXPRESSION", source = "upper(", destination = "person.name.firstName",
        exception = "unexpected end of expression at offset 6" } } }, r[4])
      assert.same({ status = "SUCCESS", errors = json.null }, r[5])
    end)
  end)
end)

--[[LOYALTY
{
  "xdmSchema": "https://ns.adobe.com/exchangeinternal/schemas/loyalty-profiles",
  "xdmVersion": "1.0",
  "mappings": [
    { "sourceType": "ATTRIBUTE", "source": "_exchangeinternal.loyaltyID", "destination": "_exchangeinternal.loyaltyID" },
    { "sourceType": "ATTRIBUTE", "source": "_exchangeinternal.totalLoyaltyPoints", "destination": "_exchangeinternal.totalLoyaltyPoints" },
    { "sourceType": "EXPRESSION", "source": "decode(lower(_exchangeinternal.loyaltyLevel), \"platinum\", \"Platinum\", \"gold\", \"Gold\", _exchangeinternal.loyaltyLevel)", "destination": "_exchangeinternal.loyaltyLevel" },
    { "sourceType": "ATTRIBUTE", "source": "person.name.firstName", "destination": "person.name.firstName" },
    { "sourceType": "ATTRIBUTE", "source": "person.name.lastName", "destination": "person.name.lastName" },
    { "sourceType": "EXPRESSION", "source": "concat(person.name.firstName, \" \", person.name.lastName)", "destination": "person.name.fullName" },
    { "sourceType": "ATTRIBUTE", "source": "person.birthDate", "destination": "person.birthDate" },
    { "sourceType": "EXPRESSION", "source": "date_part(\"year\", date(person.birthDate, \"yyyy-MM-dd\"))", "destination": "person.birthYear" },
    { "sourceType": "ATTRIBUTE", "source": "person.gender", "destination": "person.gender" },
    { "sourceType": "ATTRIBUTE", "source": "personalEmail.address", "destination": "personalEmail.address" },
    { "sourceType": "ATTRIBUTE", "source": "personalEmail.primary", "destination": "personalEmail.primary" },
    { "sourceType": "ATTRIBUTE", "source": "personalEmail.address", "destination": "identityMap.Email[0].id" },
    { "sourceType": "STATIC", "source": true, "destination": "identityMap.Email[0].primary" }
  ]
}
]]

describe("dataprep paths", function()
  local paths = require "aep.dataprep.paths"
  it("refuses an array index past MAX_INDEX instead of filling an array up to it", function()
    local steps, err = paths.parse("a.b[2222222222222222222222222222224]")
    assert.is_nil(steps)
    assert.equal("index '[2222222222222222222222222222224]' in path 'a.b[2222222222222222222222222222224]' is larger than 100000", err)
    assert.equal(3, #assert(paths.parse("a.b[100000]")))
  end)
end)
