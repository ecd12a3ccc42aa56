-- aep stream readers (lua/aep/stream/readers.lua over core/aep_lines.c): JSON Lines, JSON arrays
-- of any layout, CSV (RFC 4180), gzip, stdin, reject-file replay; positions stable under skip().
local readers = require "aep.stream.readers"
local lines = require "aep.lines"
local cjson = require "cjson"
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"

local dir = run.tmpdir()
local n = 0
local function file(content, ext)
  n = n + 1
  return files.write(dir .. "/in" .. n .. (ext or ".jsonl"), content)
end

local function gzip(path)
  assert(os.execute("gzip -kf " .. path))
  return path .. ".gz"
end

-- read everything: list of {ok, value (decoded as JSON text or reason), text, line}
local function all(path, opts)
  local r = assert(readers.open(path, opts))
  local out = {}
  while true do
    local ok, v, text, line = r:next()
    if ok == nil then
      out.ended = v
      break
    end
    out[#out + 1] = { ok = ok, value = ok and cjson.encode(v) or v, text = text, line = line, origin = r.origin }
  end
  r:close()
  return out
end

describe("aep.lines", function()
  it("reads lines without their \\n and \\r\\n, plain or gzip, and counts them", function()
    local p = file('a\r\nbb\n\nlast')
    for _, path in ipairs({ p, gzip(p) }) do
      local r = assert(lines.open(path))
      assert.same({ "a", 1 }, { r:line() })
      assert.same({ "bb", 2 }, { r:line() })
      assert.same({ "", 3 }, { r:line() })
      assert.same({ "last", 4 }, { r:line() })
      assert.is_nil(r:line())
      assert.equal(11, r:tell())
      r:close()
      assert.has_error(function() r:line() end, "lines: attempt to use a closed reader")
    end
  end)

  it("skips a line longer than max_record and goes on", function()
    local p = file(string.rep("x", 5000) .. "\nok\n")
    local r = assert(lines.open(p, { max_record = 1000 }))
    local v, msg, code = r:line()
    assert.is_nil(v)
    assert.equal("TOO_LARGE", code)
    assert.equal("line 1 is longer than 1000 bytes", msg)
    assert.same({ "ok", 2 }, { r:line() })
  end)

  it("reports a missing file as OPEN", function()
    local r, msg, code = lines.open(dir .. "/nope.jsonl")
    assert.is_nil(r)
    assert.equal("OPEN", code)
    assert.matches("No such file", msg)
  end)

  it("reads a gzip file that is corrupt as a READ error", function()
    local p = gzip(file(string.rep('{"a":1}\n', 2000)))
    local f = assert(io.open(p, "rb"))
    local data = f:read("a")
    f:close()
    local bad = file(data:sub(1, 40) .. string.rep("\0", 30) .. data:sub(71), ".jsonl.gz")
    local r = assert(lines.open(bad))
    local got
    repeat
      local v, msg, code = r:line()
      if v == nil then got = code end
    until v == nil
    assert.equal("READ", got)
  end)
end)

describe("JSON Lines", function()
  it("gives each record with its text and line, blank lines are not records", function()
    local got = all(file('{"a":1}\n\n  \n{"b":"x"}\r\n'))
    assert.equal(2, #got)
    assert.same({ ok = true, value = '{"a":1}', text = '{"a":1}', line = 1 }, got[1])
    assert.same({ ok = true, value = '{"b":"x"}', text = '{"b":"x"}', line = 4 }, got[2])
  end)

  it("turns a malformed line, invalid UTF-8 and a non-object into rejects and goes on", function()
    local got = all(file('{"a":\n{"u":"\255"}\n[1,2]\n{"ok":true}\n'))
    assert.equal(4, #got)
    assert.is_false(got[1].ok)
    assert.equal("invalid JSON at line 1: Expected value but found T_END at character 6", got[1].value)
    assert.is_false(got[2].ok)
    assert.equal("invalid UTF-8 at byte 7 of the record", got[2].value)
    assert.equal("the record is not a JSON object", got[3].value)
    assert.is_true(got[4].ok)
  end)

  it("reads gzip-compressed input", function()
    local got = all(gzip(file('{"a":1}\n{"a":2}\n', ".jsonl")))
    assert.equal(2, #got)
    assert.equal('{"a":2}', got[2].value)
  end)

  it("reads stdin ('-')", function()
    local r = run.aep({ "-e", [[
      local r = require("aep.stream.readers").open("-")
      local n = 0
      while r:next() ~= nil do n = n + 1 end
      print(n, r.format)]] }, { stdin = '{"a":1}\n{"a":2}\n{"a":3}\n',
      env = { AEP_LUA_PATH = os.getenv("AEP_LUA_PATH") or "" } })
    assert.equal(0, r.status, r.stderr)
    assert.equal("3\tjsonl\n", r.stdout)
  end)
end)

describe("JSON array", function()
  it("splits elements whatever the layout, strings and escapes included", function()
    local text = '\239\187\191 [\n  {\n    "a": "x,]}\\"y",\n    "n": {"m": [{}, [1, 2]]}\n  }\n  ,{"b":2},\n\n{"c":"[{"}]'
    local got = all(file(text, ".json"))
    assert.equal(3, #got)
    assert.same({ a = 'x,]}"y', n = { m = { {}, { 1, 2 } } } }, cjson.decode(got[1].value))
    assert.equal(2, got[1].line)
    assert.equal('{"b":2}', got[2].value)
    assert.equal(6, got[2].line)
    assert.equal('{"c":"[{"}', got[3].value)
    assert.equal(8, got[3].line)
  end)

  it("reads the samples' shape (one record per line) from gzip", function()
    local recs = {}
    for i = 1, 50 do recs[i] = '{"i":' .. i .. '}' end
    local got = all(gzip(file("[" .. table.concat(recs, ",\n") .. "]\n", ".json")))
    assert.equal(50, #got)
    assert.equal('{"i":50}', got[50].value)
  end)

  it("takes an empty array as no records", function()
    local got = all(file(" [ ] ", ".json"))
    assert.equal(0, #got)
  end)

  it("rejects a malformed element and stops at a structural error with one reject", function()
    local got = all(file('[{"a":1},{"b":tru},{"c":[1}, {"d":4}]', ".json"))
    assert.equal(3, #got)
    assert.is_true(got[1].ok)
    assert.is_false(got[2].ok)
    assert.matches("^invalid JSON in the array element at line 1: ", got[2].value)
    assert.is_false(got[3].ok)
    assert.equal("malformed JSON array at line 1: mismatched brackets (the rest of the input was not read)", got[3].value)
  end)

  it("says when the input is not an array", function()
    local got = all(file('{"a":1}', ".json"))
    assert.equal(1, #got)
    assert.equal("malformed JSON array at line 1: expected '[' at the start (the rest of the input was not read)", got[1].value)
  end)
end)

describe("CSV", function()
  it("maps rows to the header, with RFC 4180 quoting (commas, doubled quotes, newlines)", function()
    local got = all(file('\239\187\191id,name,note\r\n1,Ann,plain\r\n2,"Doe, J","he said ""hi"""\r\n3,"multi\nline",\n', ".csv"))
    assert.equal(3, #got)
    assert.same({ id = "1", name = "Ann", note = "plain" }, cjson.decode(got[1].value))
    assert.same({ id = "2", name = "Doe, J", note = 'he said "hi"' }, cjson.decode(got[2].value))
    assert.same({ id = "3", name = "multi\nline", note = "" }, cjson.decode(got[3].value))
    assert.equal(4, got[3].line)
  end)

  it("rejects a row with too many or too few fields and goes on", function()
    local got = all(file('a,b\n1,2,3\n4\n5,6\n', ".csv"))
    assert.equal(3, #got)
    assert.same({ false, "CSV row at line 2 has 3 fields, the header has 2" }, { got[1].ok, got[1].value })
    assert.same({ false, "CSV row at line 3 has 1 fields, the header has 2" }, { got[2].ok, got[2].value })
    assert.is_true(got[3].ok)
  end)

  it("rejects a stray quote and an unclosed quoted field", function()
    local got = all(file('a,b\n1,x"y\n"open,2\n', ".csv"))
    assert.equal("malformed CSV at line 2: a quote inside an unquoted field (field 2)", got[1].value)
    assert.equal("malformed CSV at line 3: a quoted field is not closed (this line is rejected alone; reading goes on at line 4)", got[2].value)
  end)

  it("takes an empty input as no records, and needs named header columns", function()
    assert.same({}, all(file("", ".csv")))
    assert.same({}, all(file("\239\187\191", ".csv")))
    local r, err = readers.open(file("a,,c\n", ".csv"))
    assert.equal("CSV header: column 2 has no name", err)
  end)

  it("gives the reject file a JSON object for a good row and a string for a bad one", function()
    local r = assert(readers.open(file('a,b\n1,2\n', ".csv")))
    assert.same({ a = "1", b = "2" }, cjson.decode(r:record_json("1,2")))
    assert.equal('"1,2,3"', r:record_json("1,2,3"))
  end)
end)

describe("format detection", function()
  it("follows the name, .gz included, unless told", function()
    assert.equal("jsonl", readers.detect("x.ndjson.gz"))
    assert.equal("json", readers.detect("x.JSON"))
    assert.equal("csv", readers.detect("x.csv.gz"))
    assert.equal("jsonl", readers.detect("-"))
    assert.equal("csv", readers.detect("x.txt", "CSV"))
    assert.same({ nil, "cannot tell the format of x.txt from its name: use --format jsonl|json|csv" }, { readers.detect("x.txt") })
    assert.same({ nil, "unknown input format 'xml' (jsonl, json, csv or rejects)" }, { readers.detect("x", "xml") })
  end)
end)

describe("reject file replay", function()
  it("reads the original records back, and their first positions", function()
    local ledger = require "aep.stream.ledger"
    local text = ledger.reject_entry { position = 7, line = 7, input = "a.jsonl", reason = "mapping error: x",
                                       record = '{"k":1}' }
      .. ledger.reject_entry { position = 9, line = 9, input = "a.jsonl", reason = "invalid JSON",
                               record = cjson.encode('{"k":2') }
      .. ledger.reject_entry { position = 3, origin = 12, input = "r.jsonl", reason = "HTTP 400: no",
                               record = '{"k":3}', entity = '{"e":3}', status = 400 }
    local got = all(file(text, ".jsonl"))
    assert.equal(3, #got)
    assert.same({ true, '{"k":1}', 7 }, { got[1].ok, got[1].value, got[1].origin })
    -- the first input's line, an integer (written back as 7, not 7.0)
    assert.are.equal("integer", math.type(got[1].line))
    assert.are.equal(7, got[1].line)
    assert.is_false(got[2].ok)
    assert.matches("^invalid JSON: ", got[2].value)
    assert.same({ true, '{"k":3}', 12 }, { got[3].ok, got[3].value, got[3].origin })
  end)
end)

describe("skip()", function()
  it("moves over the same positions as next(), for every format", function()
    local cases = {
      { '{"a":1}\n\nbad\n{"a":2}\n', ".jsonl" },
      { '[{"a":1},\n{"a":2}, 3, {"a":4}]', ".json" },
      { 'a,b\n1,2\n"x\ny",3\n1,2,3\n\n4,5\n', ".csv" },
    }
    for _, c in ipairs(cases) do
      local p = file(c[1], c[2])
      local total = #all(p)
      for k = 0, total do
        local r = assert(readers.open(p))
        for _ = 1, k do assert.is_true(r:skip()) end
        local rest = 0
        while r:next() ~= nil do rest = rest + 1 end
        assert.equal(total - k, rest, p .. " after skipping " .. k)
      end
    end
  end)
end)

describe("empty arrays", function()
  it("survive decoding (as aep.json.array) so a mapped record still sends []", function()
    local json = require "aep.json"
    local got = {}
    local r = assert(readers.open(file('{"a":[],"s":"x[]y\\"[ ]","n":{"b":[ ],"c":{}},"d":[1]}\n{"plain":1}\n', ".jsonl")))
    local ok, v = r:next()
    assert.is_true(ok)
    assert.is_true(r.marked)
    r.marked = false
    assert.equal(json.array_mt, getmetatable(v.a))
    assert.equal(json.array_mt, getmetatable(v.n.b))
    assert.is_nil(getmetatable(v.n.c))
    assert.equal('x[]y"[ ]', v.s)
    assert.same({ 1 }, v.d)
    local text = json.encode(v)
    assert.matches('"a":[]', text, 1, true)
    assert.matches('"b":[]', text, 1, true)
    assert.matches('"c":{}', text, 1, true)
    ok, v = r:next()
    assert.is_true(ok)
    assert.is_false(r.marked)
    assert.same({ plain = 1 }, v)
  end)
end)

describe("one rule for every format: a BOM is skipped, an empty input is no records", function()
  it("skips a UTF-8 BOM before the first JSON Lines record (and skip() agrees)", function()
    local p = file('\239\187\191{"a":1}\n{"a":2}\n', ".jsonl")
    local got = all(p)
    assert.same({ true, '{"a":1}', 1 }, { got[1].ok, got[1].value, got[1].line })
    assert.same({ true, '{"a":2}' }, { got[2].ok, got[2].value })
    assert.equal(2, #got)
    local r = assert(readers.open(p))
    assert.is_true(r:skip())
    assert.is_true(r:skip())
    assert.is_nil(r:skip())
    r:close()
    assert.same({ true, '{"a":1}' }, { all(file('\239\187\191[{"a":1}]', ".json"))[1].ok, all(file('\239\187\191[{"a":1}]', ".json"))[1].value })
  end)

  it("reads an empty or blank input as 0 records in every format, without an error", function()
    for _, case in ipairs({ { "", ".jsonl" }, { "\n\n", ".jsonl" }, { "", ".json" }, { " \n", ".json" },
                            { "\239\187\191", ".json" }, { "", ".csv" }, { "\239\187\191", ".jsonl" } }) do
      local got = all(file(case[1], case[2]))
      assert.equal(0, #got, case[2] .. " " .. #case[1])
      assert.is_nil(got.ended, case[2])
    end
  end)

  it("ends a JSON array input with an error naming the line of text after the closing ]", function()
    local got = all(file('[{"a":1},\n{"a":2}]\n\n{"a":3}\n', ".json"))
    assert.equal(2, #got)
    assert.equal("unexpected text after the closing ']' of the JSON array at line 4", got.ended)
    got = all(file('[{"a":1}]\n  \n', ".json"))
    assert.equal(1, #got)
    assert.is_nil(got.ended)
  end)
end)

describe("CSV with an unterminated quote", function()
  -- rows "i,vi" with one broken row; returns the path
  local function broken_csv(nrows, broken_at)
    local out = { "id,v" }
    for i = 1, nrows do
      out[#out + 1] = i == broken_at and (i .. ',"open') or (i .. ",v" .. i)
    end
    return file(table.concat(out, "\n") .. "\n", ".csv")
  end

  it("rejects the broken row alone, with its line, and reads every other row", function()
    local got = all(broken_csv(20000, 50))
    assert.equal(20000, #got)
    local bad = 0
    for i, g in ipairs(got) do
      if i == 50 then
        assert.is_false(g.ok)
        assert.equal("malformed CSV at line 51: a quoted field is not closed within 100 lines (this line is rejected alone; reading goes on at line 52)", g.value)
        assert.equal(51, g.line)
        bad = bad + 1
      else
        assert.is_true(g.ok, tostring(g.value))
        assert.same({ id = tostring(i), v = "v" .. i }, cjson.decode(g.value))
        assert.equal(i + 1, g.line)
      end
    end
    assert.equal(1, bad)
    assert.is_nil(got.ended)
  end)

  it("bounds the quoted field by bytes and lines (configurable), and resynchronises after each break", function()
    local got = all(broken_csv(1000, 10), { csv_max_lines = 5 })
    assert.equal(1000, #got)
    assert.equal("malformed CSV at line 11: a quoted field is not closed within 5 lines (this line is rejected alone; reading goes on at line 12)", got[10].value)
    assert.is_true(got[11].ok)
    got = all(broken_csv(1000, 10), { csv_max_field = 20 })
    assert.equal(1000, #got)
    assert.matches("^malformed CSV at line 11: a quoted field is not closed within 20 bytes", got[10].value)
    -- the quote closing on a later row's quote does not swallow the rows between
    local p = file('id,v\n1,"open\n2,v2\n3,"x"\n4,v4\n', ".csv")
    got = all(p)
    assert.equal(4, #got)
    assert.same({ false, 2 }, { got[1].ok, got[1].line })
    assert.equal("malformed CSV at line 2: a quoted field is not closed (this line is rejected alone; reading goes on at line 3)", got[1].value)
    assert.same({ { id = "2", v = "v2" }, { id = "3", v = "x" }, { id = "4", v = "v4" } },
      { cjson.decode(got[2].value), cjson.decode(got[3].value), cjson.decode(got[4].value) })
    -- a quote that closes into a row of the wrong width: the first line alone is rejected
    got = all(file('id,v\n1,"a\nb",c\n2,v2\n', ".csv"))
    assert.equal(3, #got)
    assert.equal("malformed CSV at line 2: a quoted field opened here does not close into a row (this line is rejected alone; reading goes on at line 3)", got[1].value)
    assert.equal("malformed CSV at line 3: a quote inside an unquoted field (field 1)", got[2].value)
    assert.same({ id = "2", v = "v2" }, cjson.decode(got[3].value))
    -- at the end of the input
    got = all(file('id,v\n1,v1\n2,"open\n3,v3\n', ".csv"))
    assert.equal(3, #got)
    assert.is_false(got[2].ok)
    assert.same({ id = "3", v = "v3" }, cjson.decode(got[3].value))
    -- skip() takes the same positions (a resumed run skips exactly what the first run read)
    local r = assert(readers.open(p))
    local n = 0
    while r:skip() do n = n + 1 end
    r:close()
    assert.equal(4, n)
  end)
end)

describe("a truncated gzip input", function()
  local function jsonl(n)
    local t = {}
    for i = 1, n do t[i] = '{"a":' .. i .. '}' end
    return table.concat(t, "\n") .. "\n"
  end
  local function cut(path, size, out)
    local f = assert(io.open(path, "rb")); local data = f:read("a"); f:close()
    return files.write(out, data:sub(1, size < 0 and #data + size or size))
  end

  it("is an error with the position reached, never a short end of file; complete multi-member files read fully", function()
    local whole = gzip(file(jsonl(4000), ".jsonl"))
    local got = all(whole)
    assert.equal(4000, #got)
    assert.is_nil(got.ended)
    -- the deflate data complete, the trailer (CRC, length) missing
    got = all(cut(whole, -8, dir .. "/notrailer.jsonl.gz"))
    assert.equal(4000, #got)
    assert.matches("^the gzip input is truncated: it ends inside a compressed stream after line 4000", got.ended)
    -- cut in the middle of the compressed data
    local f = assert(io.open(whole, "rb")); local size = #f:read("a"); f:close()
    got = all(cut(whole, size // 2, dir .. "/half.jsonl.gz"))
    assert.is_true(#got > 0 and #got < 4000)
    assert.matches("^the gzip input is truncated", got.ended)
    -- two members, the second cut after its header
    local f1 = assert(io.open(whole, "rb")); local member = f1:read("a"); f1:close()
    local two = files.write(dir .. "/two.jsonl.gz", member .. member)
    got = all(two)
    assert.equal(8000, #got)
    assert.is_nil(got.ended)
    got = all(files.write(dir .. "/twocut.jsonl.gz", member .. member:sub(1, 12)))
    assert.equal(4000, #got)
    assert.matches("^the gzip input is truncated", got.ended)
    -- the JSON array reader too
    local arr = gzip(file("[" .. jsonl(3000):gsub("\n", ","):gsub(",$", "") .. "]", ".json"))
    got = all(cut(arr, -8, dir .. "/arr.json.gz"))
    assert.matches("^the gzip input is truncated", got.ended)
  end)
end)
