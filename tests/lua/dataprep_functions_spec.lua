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

describe("dataprep expression language", function()
  local rec = { first = "Ada", last = "Lovelace", n = 4.0, s = "7", flag = true, none = values.null,
    ["First Name"] = "Grace", name = { ["street.name"] = "Main", first = "Ada" },
    items = { { sku = "a" }, { sku = "b" } }, ["new"] = "kw" }

  it("reads fields by dot path, ${} quoting and escaped dots", function()
    assert.equal("Ada", ev("first", rec))
    assert.equal("Ada", ev("name.first", rec))
    assert.equal("Grace", ev("${First Name}", rec))
    assert.equal("Main", ev("name.street\\.name", rec))
    assert.equal("Main", ev("${name.street\\.name}", rec))
    assert.equal("kw", ev("${new}", rec))
    assert.equal("b", ev("items[1].sku", rec))
  end)

  it("gives null for missing fields, JSON null and paths through scalars", function()
    assert.is_nil(ev("missing", rec))
    assert.is_nil(ev("none", rec))
    assert.is_nil(ev("first.deeper.still", rec))
    assert.is_nil(ev("items[5].sku", rec))
  end)

  it("reads integral JSON numbers as integers (cjson decodes 4 as 4.0)", function()
    assert.equal("integer", math.type(ev("n", rec)))
    assert.equal("4", ev("concat(n)", rec))
  end)

  it("has JEXL's operators and precedence", function()
    assert.equal(7, ev("1 + 2 * 3"))
    assert.equal(9, ev("(1 + 2) * 3"))
    assert.equal(3, ev("7 / 2"))
    assert.equal(-3, ev("-7 / 2"))
    assert.equal(3.5, ev("7.0 / 2"))
    assert.equal(1, ev("7 % 3"))
    assert.equal(1, ev("7 mod 3"))
    assert.equal(3, ev("7 div 2"))
    assert.equal("Ada Lovelace", ev('first + " " + last', rec))
    assert.equal(11, ev("s + n", rec)) -- a numeric string and a number add
    assert.is_true(ev("n == 4 && s eq '7'", rec))
    assert.is_true(ev("n > 3 and n le 4 or false", rec))
    assert.is_true(ev("not (n < 4)", rec))
    assert.is_true(ev("!flag == false", rec))
    assert.equal("big", ev('n >= 4 ? "big" : "small"', rec))
    assert.equal("fallback", ev('missing ?: "fallback"', rec))
    assert.equal(-45, ev("~44"))
    assert.equal(6, ev("2 | 4"))
    assert.is_true(ev("'abc' =~ 'a.c'"))
    assert.is_true(ev("2 =~ [1, 2, 3]"))
  end)

  it("reads string escapes and numbers as Java does", function()
    assert.equal("a\"b'c\\d\n\u{e9}", ev('"a\\"b\'c\\\\d\\n\\u00e9"'))
    assert.equal("it's", ev("'it\\'s'"))
    assert.equal(10, ev("10L"))
    assert.equal(1.5, ev("1.5d"))
    assert.equal(2000.0, ev("2e3"))
  end)

  it("compiles a method call on a field and on a call's result", function()
    assert.is_true(ev('first.equals("Ada")', rec))
    assert.is_true(ev('first.equalsIgnoreCase("ADA")', rec))
    assert.equal(3, ev("first.length()", rec))
    assert.equal("ADA", ev("first.toUpperCase()", rec))
    assert.equal("da", ev("first.substring(1)", rec))
    assert.is_true(ev('last.startsWith("Love")', rec))
    assert.equal("Ada", ev('to_object("a", first).get("a")', rec))
    assert.equal(2, ev("items.size()", rec))
    assert.is_false(ev("items.isEmpty()", rec))
    assert.is_true(ev("[].isEmpty()"))
    assert.is_false(ev("'abc\\n' =~ 'abc'")) -- =~ matches the whole string (String.matches)
  end)

  local COMPILE_ERRORS = {
    { "", "empty expression at offset 0" },
    { "concat(", "unexpected end of expression at offset 7" },
    { "1 +", "unexpected end of expression at offset 3" },
    { "foo(1)", "unknown function 'foo'" },
    { 'upper("a", "b")', "function 'upper' takes 1 argument, got 2" },
    { "iif(true)", "function 'iif' takes 3 arguments, got 1" },
    { '"abc', "unterminated string at offset 0" },
    { "a # b", "unexpected character '#' at offset 2" },
    { "new + 1", "'new' is a reserved keyword: wrap a field of that name in ${} at offset 0" },
    { "first.nope()", "unknown method 'nope'" },
    { "(1 + 2", "expected ')' but found the end at offset 6" },
    { "${}", "empty ${} at offset 0" },
    { "1 2", "unexpected '2' at offset 2" },
  }
  for _, case in ipairs(COMPILE_ERRORS) do
    it("refuses " .. string.format("%q", case[1]) .. " with a compile error", function()
      local fn, err = dataprep.expression(case[1])
      assert.is_nil(fn)
      assert.equal(case[2], err)
    end)
  end

  it("refuses an expression longer than calculated fields' 4096 characters", function()
    local fn, err = dataprep.expression(string.rep("1+", 2048) .. "1")
    assert.is_nil(fn)
    assert.equal("expression is 4097 characters long; the maximum is 4096", err)
  end)

  it("refuses nesting deeper than 200 levels without a Lua error", function()
    local fn, err = dataprep.expression(string.rep("(", 300) .. "1" .. string.rep(")", 300))
    assert.is_nil(fn)
    assert.matches("^expression nested too deeply at offset %d+$", err)
  end)
end)

describe("dataprep functions on nulls, missing fields, wrong types and empty arrays", function()
  local rec = { obj = { a = 1 }, arr = values.array({}), text = "abc", num = 5 }

  it("string functions give null on null input", function()
    for _, f in ipairs({ "lower(missing)", "upper(missing)", "trim(missing)", "ltrim(missing)", "rtrim(missing)",
      "substr(missing, 1, 2)", "left(missing, 1)", "right(missing, 1)", "lpad(missing, 3, 'x')",
      "rpad(missing, 3, 'x')", "replacestr(missing, 'a', 'b')", "explode(missing)", "split(missing, ',')",
      "instr(missing, 'a')" }) do
      assert.is_nil(ev(f, rec), f)
    end
  end)

  it("concat skips nulls; an empty padding is a space", function()
    assert.equal("ab", ev("concat('a', missing, 'b')", rec))
    assert.equal("  abc", ev("lpad(text, 5, '')", rec))
    assert.equal("", ev("left(text, -1)", rec))
    assert.equal("abc", ev("substr(text, 0, 99)", rec))
    assert.equal(-1, ev("instr(text, 'z')", rec))
    assert.equal(4, ev("instr('abcabc', 'b', 0, 2)"))
  end)

  it("hashes, URLs and dates give null on null input", function()
    for _, f in ipairs({ "sha256(missing)", "md5(missing)", "crc32(missing)", "get_url_host(missing)",
      "get_url_query_str(missing, 'remove')", "format(missing, 'yyyy')", "dformat(missing, 'yyyy')",
      "date(missing)", "date_part('year', missing)", "zone_date_to_utc(missing)", "json_to_object(missing)",
      "ua_os_name(missing)", "to_integer(missing)", "first(missing)", "coalesce()", "nullify()" }) do
      assert.is_nil(ev(f, rec), f)
    end
  end)

  it("hashes with the charsets Java knows", function()
    assert.equal(crypto.digest_hex("sha256", "\195\169"), ev("sha256('\\u00e9')"))
    assert.equal(crypto.digest_hex("sha256", "\233"), ev("sha256('\\u00e9', 'ISO-8859-1')"))
    assert.equal(crypto.digest_hex("sha256", "?"), ev("sha256('\\u00e9', 'US-ASCII')"))
    assert.equal(crypto.digest_hex("sha256", "\254\255\0\233"), ev("sha256('\\u00e9', 'UTF-16')"))
    assert.equal("sha256: unsupported charset 'EBCDIC' (use UTF-8, UTF-16, ISO-8859-1 or US-ASCII)",
      "sha256: " .. ev_error("sha256('x', 'EBCDIC')"))
  end)

  it("a date function default is used only for a null date", function()
    assert.equal("2020-01-02T00:00:00Z", ev("date(missing, 'yyyy-MM-dd', date('2020-01-02'))", rec))
    assert.equal("date: '2020/13/45' does not match the date pattern 'yyyy-MM-dd'",
      ev_error("date('2020/13/45', 'yyyy-MM-dd')"))
    assert.equal("date: '31-02-2020' is not a valid date: day 31 is out of range for 2020-02",
      ev_error("date('31-02-2020', 'dd-MM-yyyy')"))
  end)

  it("parses the documented pattern letters and time zones", function()
    assert.equal("2024-05-05T20:39:00.005-08:00", ev("date('2024-05-05 20:39:00.005-0800', 'yyyy-MM-dd HH:mm:ss.SSSZ')"))
    assert.equal("2020-12-31T00:00:00Z", ev("date('31-Dec-2020', 'dd-MMM-yyyy')"))
    assert.equal("2020-03-01T15:04:05Z", ev("date('3/01/2020 03:04:05 PM', 'M/dd/yyyy hh:mm:ss a')"))
    assert.equal("2021-07-01T12:00:00+02:00", ev("date('2021-07-01 12:00 Europe/Paris', 'yyyy-MM-dd HH:mm VV')"))
    assert.equal("2021-01-01T12:00:00+01:00", ev("date('2021-01-01 12:00 Europe/Paris', 'yyyy-MM-dd HH:mm VV')"))
    assert.equal("Friday, December 31, 2021 Q4", ev("format(date('2021-12-31'), 'EEEE, MMMM d, yyyy QQQ')"))
    assert.equal("2021-12-31T23:59:59.999Z", ev("date('20211231235959999', 'yyyyMMddHHmmssSSS')"))
  end)

  it("resolves daylight-saving gaps and overlaps as java.time does", function()
    -- 02:30 does not exist on 2021-03-14 in Los Angeles: moved forward by the gap
    assert.equal("2021-03-14T10:30:00Z",
      ev("zone_date_to_utc(make_date_time(2021, 3, 14, 2, 30, 0, 0, 'America/Los_Angeles'))"))
    -- 01:30 happens twice on 2021-11-07: the earlier offset (PDT)
    assert.equal("2021-11-07T08:30:00Z",
      ev("zone_date_to_utc(make_date_time(2021, 11, 7, 1, 30, 0, 0, 'America/Los_Angeles'))"))
    assert.equal("2021-01-15T12:00:00-08:00", ev("make_date_time(2021, 1, 15, 12, 0, 0, 0, 'America/Los_Angeles')"))
    assert.equal("2021-01-15T17:30:00+05:30", ev("zone_date_to_zone(date('2021-01-15T12:00:00Z'), 'Asia/Kolkata')"))
    assert.equal("2021-01-15T20:00:00+08:00", ev("zone_date_to_zone(date('2021-01-15T12:00:00Z'), 'GMT+8')"))
    assert.equal("zone_date_to_zone: unknown time zone 'Mars/Olympus'", ev_error("zone_date_to_zone(now(), 'Mars/Olympus')"))
    assert.equal("zone_date_to_zone: unknown time zone '../../etc/passwd'", ev_error("zone_date_to_zone(now(), '../../etc/passwd')"))
  end)

  it("date_part reads every documented component", function()
    local d = "date('2019-10-17 11:55:12.345', 'yyyy-MM-dd HH:mm:ss.SSS')"
    local want = { year = 2019, quarter = 4, month = 10, dayofyear = 290, day = 17, week = 42,
      weekday = 4, hour = 11, hh12 = 11, minute = 55, second = 12, millisecond = 345 }
    for part, value in pairs(want) do
      assert.equal(value, ev(("date_part('%s', %s)"):format(part, d)), part)
    end
    assert.equal("date_part: unknown date component 'era'", ev_error("date_part('era', now())"))
  end)

  it("conversion functions refuse what is not a number", function()
    assert.equal("to_integer: 'abc' is not a number", ev_error("to_integer('abc')"))
    assert.equal("to_integer: '12.5' is not an integer", ev_error("to_integer('12.5')"))
    assert.equal("to_integer: 3000000000 is out of the integer range", ev_error("to_integer('3000000000')"))
    assert.equal(12, ev("to_integer(' 12 ')"))
  end)

  it("array and object functions take empty arrays and objects", function()
    assert.is_true(ev("is_empty(arr)", rec))
    assert.is_true(ev("is_empty([])"))
    assert.is_true(ev("is_empty(missing)"))
    assert.is_false(ev("is_empty(obj)", rec))
    assert.equal(0, ev("size_of(arr)", rec))
    assert.equal(1, ev("size_of(obj)", rec))
    assert.is_nil(ev("first(arr)", rec))
    assert.same(values.array({}), ev("to_array(false, missing)", rec))
    assert.same({ "x" }, ev("add_to_array(missing, 'x')", rec))
    assert.same({ "a" }, ev("join_arrays(arr, ['a'], missing)", rec))
    assert.same({ "a", values.null }, ev("to_array(true, 'a', missing)", rec))
    assert.equal("", ev("join(',', arr)", rec))
    assert.equal(5, ev("max(missing, num, 2)", rec))
  end)

  it("wrong types are transformation errors naming the problem", function()
    assert.equal("join_arrays: argument 2 must be an array", ev_error("join_arrays(['a'], 'b')"))
    assert.equal("get_keys expects an object", ev_error("get_keys('x')"))
    assert.equal("to_object takes key/value pairs, got 3 arguments", ev_error("to_object('a', 1, 'b')"))
    assert.equal("operator '-' needs numbers, got string and number", ev_error("'a' - 1"))
    assert.equal("/ by zero", ev_error("1 / 0"))
    assert.equal("cannot compare string with table", ev_error("'a' < obj", rec))
    assert.equal("cannot call equals() on null", ev_error("missing.equals('a')"))
    assert.equal("json_to_object: JSON error at line 1, column 2: Expected object key string but found invalid token",
      ev_error("json_to_object('{x')"))
    assert.equal("invalid regular expression '(': missing closing parenthesis at offset 1",
      ev_error("matches_regex('a', '(')"))
  end)

  it("classifies common desktop and Android user agents; Unknown for the rest", function()
    local cases = {
      { "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Windows NT 10.0", "Chrome 120", "Desktop" },
      { "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36",
        "Android 13", "Chrome 116", "Phone" },
      { "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
        "Mac OS 10.15.7", "Safari 17", "Desktop" },
      { "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
        "Windows NT 10.0", "Edge 120", "Desktop" },
      { "curl/8.0", "Unknown ??", "Unknown ??", "Unknown" },
    }
    for _, c in ipairs(cases) do
      local rec = { ua = c[1] }
      assert.equal(c[2], ev("ua_os_name_version(ua)", rec), c[1])
      assert.equal(c[3], ev("ua_agent_version_major(ua)", rec), c[1])
      assert.equal(c[4], ev("ua_device_class(ua)", rec), c[1])
    end
  end)

  it("refuses padding that would exhaust memory", function()
    assert.equal("padding to 99999999 characters is more than the 16777216 allowed", ev_error("lpad('a', 100000000, 'x')"))
    assert.equal("padding to 99999999 characters is more than the 16777216 allowed", ev_error("rpad('a', 100000000, 'x')"))
  end)

  it("a catastrophic regex fails the field instead of hanging", function()
    assert.equal("regular expression failed: match limit exceeded",
      ev_error("matches_regex('" .. string.rep("a", 40) .. "!', '(a+)+$')"))
  end)

  it("explode and extract_regex follow Java's split and groups", function()
    assert.same({ "a", "b", "", "c" }, ev("explode('a,b,,c,,')"))
    assert.same({ "a", "b" }, ev("explode('a1b', '\\\\d')"))
    assert.same({ "x" }, ev("explode('x', ';')"))
    assert.same({ "ab1", "ab", values.null }, ev("extract_regex('ab1', '([a-z]+)(z)?\\\\d')"))
    assert.is_nil(ev("extract_regex('abc', '\\\\d')"))
    assert.is_false(ev("matches_regex('abc1', '[a-z]+')"))
  end)
end)

describe("the native bindings the functions use", function()
  it("crypto.digest_hex knows OpenSSL's digests and refuses others", function()
    assert.equal("900150983cd24fb0d6963f7d28e17f72", crypto.digest_hex("md5", "abc"))
    assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", crypto.digest_hex("sha1", "abc"))
    local v, msg, code = crypto.digest_hex("nope", "abc")
    assert.is_nil(v)
    assert.matches("^unknown digest", msg)
    assert.equal("BAD_INPUT", code)
  end)

  it("crypto.crc32 is the standard CRC-32 (check value of '123456789')", function()
    assert.equal(0xCBF43926, crypto.crc32("123456789"))
    assert.equal(0, crypto.crc32(""))
  end)

  it("regex exec gives the match bounds and groups from a start position", function()
    local re = assert(regex.compile("(a)(x)?(b)"))
    local s, e, groups = re:exec("zzab ab", 1)
    assert.equal(3, s); assert.equal(4, e)
    assert.same({ "a", false, "b" }, groups)
    s, e = re:exec("zzab ab", 5)
    assert.equal(6, s); assert.equal(7, e)
    assert.is_false(re:exec("zzz"))
    assert.has_error(function() re:exec("abc", 9) end)
  end)
end)
