-- aep.dataprep's function library: every example of functions.md (AdobeDocs/experience-platform.en
-- help/data-prep/functions.md) as its own case, then edge cases (nulls, missing fields, wrong types,
-- empty arrays). Where the documented sample output cannot be what AEP returns (a typo, a Java
-- toString, an expression that does not parse), the case says so and docs/dataprep.md lists it.
local dataprep = require "aep.dataprep"
local values = require "aep.dataprep.values"
local crypto = require "aep.crypto"
local regex = require "aep.regex"

-- ev(src [, record]) -> the value as JSON would carry it (dates as ISO text), or raises with the
-- compile or transformation error
local function ev(src, record)
  local fn, err = dataprep.expression(src)
  assert(fn, err)
  local v, rerr = fn(record or {})
  if rerr then error(rerr, 0) end
  return values.to_json(v)
end

local function ev_error(src, record)
  local fn, err = dataprep.expression(src)
  if not fn then return "compile: " .. err end
  local v, rerr = fn(record or {})
  assert(rerr, "expected an error, got " .. tostring(values.to_string(v)))
  return rerr
end

local IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 5_1_1 like Mac OS X) AppleWebKit/534.46 (KHTML, like Gecko) Version/5.1 Mobile/9B206 Safari/7534.48.3"

-- { expression, expected result, note (when the documented output differs) }
local EXAMPLES = {
  string = {
    { 'concat("Hi, ", "there", "!")', "Hi, there!" },
    -- documented ["Hi,", "there"]: String.split keeps the "!"
    { 'explode("Hi, there!", " ")', { "Hi,", "there!" }, "doc drops the '!'" },
    { 'instr("adobe.com", "com")', 6 },
    { 'replacestr("This is a string re test", "re", "replace")', "This is a string replace test" },
    { 'substr("This is a substring test", 7, 8)', " a subst" },
    { 'lower("HeLLo")', "hello" },
    { 'lcase("HeLLo")', "hello" },
    { 'upper("HeLLo")', "HELLO" },
    { 'ucase("HeLLo")', "HELLO" },
    { 'split("Hello world", " ")', { "Hello", "world" } },
    { 'join(" ", to_array(true, "Hello", "world"))', "Hello world" },
    { 'lpad("bat", 8, "yz")', "yzyzybat" },
    { 'rpad("bat", 8, "yz")', "batyzyzy" },
    { 'left("abcde", 2)', "ab" },
    { 'right("abcde", 2)', "de" },
    { 'ltrim(" hello")', "hello" },
    { 'rtrim("hello ")', "hello" },
    { 'trim(" hello ")', "hello" },
    { '"string1".equals("STRING1")', false },
    -- documented with a missing closing quote ("STRING1)
    { '"string1".equalsIgnoreCase("STRING1")', true, "doc misses a quote" },
  },
  regex = {
    { 'extract_regex("E259,E259B_009,1_1", "([^,]+),[^,]*,([^,]+)")', { "E259,E259B_009,1_1", "E259", "1_1" } },
    { 'matches_regex("E259,E259B_009,1_1", "([^,]+),[^,]*,([^,]+)")', true },
  },
  hashing = {
    { 'sha1("my text", "UTF-8")', "c3599c11e47719df18a2448690840c5dfcce3c80" },
    { 'sha256("my text", "UTF-8")', "7330d2b39ca35eaf4cb95fc846c21ee6a39af698154a83a586ee270a0d372104" },
    { 'sha512("my text", "UTF-8")', "a3d7e45a0d9be5fd4e4b9a3b8c9c2163c21ef708bf11b4232bb21d2a8704ada2cdcd7b367dd0788a89a5c908cfe377aceb1072a7b386b7d4fd2ff68a8fd24d16" },
    { 'md5("my text", "UTF-8")', "d3b96ce8c9fb4e9bd0198d03ba6852c7" },
    { 'crc32("my text", "UTF-8")', "8df92e80" },
  },
  url = {
    { 'get_url_protocol("https://platform.adobe.com/home")', "https" },
    { 'get_url_host("https://platform.adobe.com/home")', "platform.adobe.com" },
    { 'get_url_port("sftp://example.com//home/joe/employee.csv")', 22 },
    { 'get_url_path("sftp://example.com//home/joe/employee.csv")', "//home/joe/employee.csv" },
    { 'get_url_query_str("foo://example.com:8042/over/there?name=ferret#nose", "retain")', { name = "ferret#nose" } },
    { 'get_url_query_str("foo://example.com:8042/over/there?name=ferret#nose", "remove")', { name = "ferret" } },
    { 'get_url_query_str("foo://example.com:8042/over/there?name=ferret#nose", "append")', { name = "ferret", _anchor_ = "nose" } },
    { 'get_url_encoded("https://example.com/partneralliance_asia-pacific_2022")', "https%3A%2F%2Fexample.com%2Fpartneralliance_asia-pacific_2022" },
    { 'get_url_decoded("https%3A%2F%2Fexample.com%2Fpartneralliance_asia-pacific_2022")', "https://example.com/partneralliance_asia-pacific_2022" },
  },
  date = {
    -- documented as format(2019-10-23T11:24:00+00:00, ...) -> "2019-10-23 11:24:35": a date literal is
    -- not an expression, and the seconds of the output do not match the input
    { 'format(date("2019-10-23T11:24:00+00:00"), "yyyy-MM-dd HH:mm:ss")', "2019-10-23 11:24:00", "doc's argument is not an expression" },
    { 'dformat(1571829875000, "yyyy-MM-dd\'T\'HH:mm:ss.SSSX")', "2019-10-23T11:24:35.000Z" },
    { 'date("2019-10-23 11:24", "yyyy-MM-dd HH:mm", now())', "2019-10-23T11:24:00Z" },
    { 'date("2019-10-23 11:24", "yyyy-MM-dd HH:mm")', "2019-10-23T11:24:00Z" },
    { 'date("2019-10-23 11:24")', "2019-10-23T11:24:00Z" },
    { 'date_part("MM", date("2019-10-17 11:55:12"))', 10 },
    -- documented "2016-04-09T11:44:44Z": the milliseconds of the input are kept
    { 'set_date_part("m", 4, date("2016-11-09T11:44:44.797"))', "2016-04-09T11:44:44.797Z", "doc drops the milliseconds" },
    -- documented "2019-10-17T11:55:12Z": the zone given is kept (999 is nanoseconds)
    { 'make_date_time(2019, 10, 17, 11, 55, 12, 999, "America/Los_Angeles")', "2019-10-17T11:55:12.000000999-07:00", "doc shows Z" },
    -- documented as zone_date_to_utc(2019-10-17T11:55:12 PST: the date has to be a date value
    { 'zone_date_to_utc(date("2019-10-17T11:55:12 PST", "yyyy-MM-dd\'T\'HH:mm:ss z"))', "2019-10-17T19:55:12Z", "doc's argument is not an expression" },
    -- documented as zone_date_to_utc(now(), "Europe/Paris") -> 2021-10-26T15:43:59Z, on a fixed date here
    { 'zone_date_to_zone(date("2021-10-26T13:43:59Z"), "Europe/Paris")', "2021-10-26T15:43:59+02:00", "doc names the wrong function" },
  },
  objects = {
    { "is_empty([1, null, 2, 3])", false },
    { "arrays_to_objects('sku', explode(\"id1|id2\", '\\\\|'), 'price', [22.5,14.35])", { { sku = "id1", price = 22.5 }, { sku = "id2", price = 14.35 } } },
    { 'to_object("firstName", "John", "lastName", "Doe")', { firstName = "John", lastName = "Doe" } },
    -- documented {"firstName": "John", "lastName": "Doe", "phone": "123 456 7890"} from an input that
    -- holds neither "Doe" nor "phone"
    { 'str_to_object("firstName - John ; lastName - ; - 123 345 7890", "-", ";")', { firstName = "John", lastName = "" }, "doc's output is not from its input" },
    { 'str_to_object("firstName - John ; lastName - ; phone - 123 456 7890", "-", ";").get("firstName")', "John" },
    { 'contains_key("evars.evar.field1")', true },
    { "nullify()", nil },
    { 'get_keys({"book1": "Pride and Prejudice", "book2": "1984"})', { "book1", "book2" } },
    { 'get_values("firstName - John , lastName - Cena , phone - 555 420 8692", "firstName", "-", ",")', "John" },
  },
  arrays = {
    { 'coalesce(null, null, null, "first", null, "second")', "first" },
    { 'first("1", "2", "3")', "1" },
    { 'last("1", "2", "3")', "3" },
    { "add_to_array(['a', 'b'], 'c', 'd')", { "a", "b", "c", "d" } },
    { "join_arrays(['a', 'b'], ['c'], ['d', 'e'])", { "a", "b", "c", "d", "e" } },
    { "to_array(false, 1, null, 2, 3)", { 1, 2, 3 } },
    { "size_of([1, 2, 3, 4])", 4 },
    { "upsert_array_append([123, 456])", { 123, 456 } },
    { "upsert_array_replace([123, 456], 1)", { 123, 456 } },
  },
  logical = {
    { 'iif("s".equalsIgnoreCase("S"), "True", "False")', "True" },
  },
  aggregation = {
    { "min(3, 1, 4)", 1 },
    { "max(3, 1, 4)", 4 },
  },
  conversions = {
    { 'to_bigint("1000000.34")', 1000000.34 },
    { 'to_decimal("20.5")', 20.5 },
    -- documented 12.34566: a typo for the input's 12.3456
    { 'to_float("12.3456")', 12.3456, "doc's output has an extra digit" },
    { 'to_integer("12")', 12 },
  },
  json = {
    -- documented with the JSON unquoted; as a string and as an object literal
    { 'json_to_object("{\\"info\\":{\\"firstName\\":\\"John\\",\\"lastName\\": \\"Doe\\"}}")', { info = { firstName = "John", lastName = "Doe" } } },
    { 'json_to_object({"info":{"firstName":"John","lastName": "Doe"}})', { info = { firstName = "John", lastName = "Doe" } } },
  },
  useragent = {
    { 'ua_os_name("' .. IPHONE .. '")', "iOS" },
    -- documented as ua_os_version_majors(...) (a typo in the name)
    { 'ua_os_version_major("' .. IPHONE .. '")', "iOS 5", "doc misspells the name" },
    { 'ua_os_version("' .. IPHONE .. '")', "5.1.1" },
    { 'ua_os_name_version("' .. IPHONE .. '")', "iOS 5.1.1" },
    { 'ua_agent_version("' .. IPHONE .. '")', "5.1" },
    { 'ua_agent_version_major("' .. IPHONE .. '")', "Safari 5" },
    { 'ua_agent_name("' .. IPHONE .. '")', "Safari" },
    { 'ua_device_class("' .. IPHONE .. '")', "Phone" },
  },
}

local ORDER = { "string", "regex", "hashing", "url", "date", "objects", "arrays", "logical",
  "aggregation", "conversions", "json", "useragent" }

describe("dataprep functions.md examples", function()
  local record = { evars = { evar = { field1 = "x" } } }
  for _, family in ipairs(ORDER) do
    describe(family, function()
      for _, ex in ipairs(EXAMPLES[family]) do
        it(ex[1] .. (ex[3] and ("  [" .. ex[3] .. "]") or ""), function()
          assert.same(ex[2], ev(ex[1], record))
        end)
      end
    end)
  end

  describe("decode", function()
    for code, want in pairs({ ca = "California", pa = "Pennsylvania", ny = "N/A" }) do
      it('decode(stateCode, "ca", "California", "pa", "Pennsylvania", "N/A") with stateCode ' .. code, function()
        assert.same(want, ev('decode(stateCode, "ca", "California", "pa", "Pennsylvania", "N/A")', { stateCode = code }))
      end)
    end
  end)

  describe("functions whose output changes", function()
    it("now() is the current UTC time", function()
      local v = ev("now()")
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*Z$", v)
    end)
    it("timestamp() is the current Unix time in milliseconds", function()
      local v = ev("timestamp()")
      assert.equal("integer", math.type(v))
      assert.is_true(v > 1571850624571)
    end)
    it("uuid() and guid() are random version-4 UUIDs", function()
      local a, b = ev("uuid()"), ev("guid()")
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", a)
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", b)
      assert.not_equal(a, b)
    end)
    it("fpid_to_ecid() fails the field with a clear message (Adobe's derivation is not published)", function()
      assert.equal("fpid_to_ecid is not available offline: Adobe does not publish the FPID to ECID derivation",
        ev_error('fpid_to_ecid("4ed70bee-b654-420a-a3fd-b58b6b65e991")'))
    end)
  end)
end)
