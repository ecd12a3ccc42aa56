-- Numbers through `aep stream`: every digit kept after a mapping, in JSON Lines, a JSON array, CSV
-- (a mapping's tonumber), the reject file and its replay. lua-cjson 2.1.0 alone writes 14
-- significant digits and reads every number as a double (1234567890123456 went out as
-- 1.2345678901235e+15, 123456789012345 as 123456789012340, pi as 3.1415926535898).
-- The values exceed the schema's int range: the emulator stores them as failed records, with
-- their entity, which /emulator/datasets/ID/records serves exactly.
local json = require "aep.json"
local lines = require "aep.lines"
local readers = require "aep.stream.readers"
local mapping = require "aep.stream.mapping"
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"

-- the edge values, as a person would write them, and the value each must arrive as
local EDGE = {
  { "9007199254740993", 9007199254740993 },          -- 2^53 + 1
  { "9223372036854775807", math.maxinteger },       -- 2^63 - 1
  { "-9223372036854775808", math.mininteger },      -- -2^63
  { "1234567890123456", 1234567890123456 },
  { "123456789012345", 123456789012345 },
  { "0.30000000000000004", 0.1 + 0.2 },
  { "3.141592653589793", math.pi },
  { "1e308", 1e308 },
  { "5e-324", 5e-324 },
  { "12345678.1234567", 12345678.1234567 },
  { "42", 42 },
}

local function same_number(want, got)
  return math.type(want) == math.type(got) and want == got
end

describe("long numbers, the mechanism", function()
  it("flags 15 or more digits in one number, outside JSON strings unless asked for text", function()
    local has = lines.has_long_number
    assert.is_false(has('{"a":12345678901234,"b":1.2345678901234}'))   -- 14 digits: cjson is exact
    assert.is_true(has('{"a":123456789012345}'))
    assert.is_true(has('{"a":-1234567.12345678}'))
    assert.is_true(has('[1.0000000000000000]'))                           -- conservative
    assert.is_false(has('{"ecid":"12345678901234567890123456789012345678"}'))
    assert.is_false(has('{"s":"a\\"123456789012345678"}'))                -- still inside the string
    assert.is_true(has('{"s":"a\\\\",  "n":123456789012345678}'))         -- the string ended
    assert.is_true(has('{"ecid":"12345678901234567890"}', "text"))
    assert.is_true(has('id,points\n7,1234567890123456', "text"))
    assert.is_false(has('192.168.100.200.1234567', "text"))             -- one '.' per run
    assert.is_false(has('1e308,5e-324', "text"))
  end)

  it("decodes a flagged record exactly, empty arrays kept, and marks it; others stay cjson's", function()
    local v, err, marked = readers.decode_keep_arrays('{"n":9223372036854775807,"a":[],"f":3.141592653589793}')
    assert.is_nil(err)
    assert.is_true(marked)
    assert.is_true(same_number(math.maxinteger, v.n))
    assert.equal("[]", json.encode(v.a))
    assert.is_true(same_number(math.pi, v.f))
    v, err, marked = readers.decode_keep_arrays('{"n":12}')
    assert.is_nil(marked)
    assert.equal(12, v.n)
    -- an error reads the same whatever the path
    local _, e1 = readers.decode_keep_arrays('{"n":123456789012345678,}')
    local _, e2 = readers.decode_keep_arrays('{"n":1,}')
    assert.equal(e2:gsub("%d+$", ""), e1:gsub("%d+$", ""))
  end)

  it("writes an entity exactly when the record was marked or cjson wrote an exponent", function()
    local enc = mapping.encoder(function(r) return { n = r.n, t = r.t and (1733330000000000 + r.t) } end)
    assert.equal('{"n":1234567890123456}', enc({ n = 1234567890123456 }, {}, true))
    assert.equal('{"n":12}', enc({ n = 12 }, {}, false))
    -- an integer the mapping made, from a record with none: caught by cjson's exponent
    assert.equal('{"t":1733330000000007}', enc({ t = 7 }, {}, false))
  end)
end)

describe("long numbers through aep stream and the emulator", function()
  local emu, api, ids, dir

  setup(function()
    dir = run.tmpdir()
    emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--seed", "7" }, { dataflow = false })
  end)

  teardown(function()
    if emu then emu.stop(); emu.cleanup() end
    if dir then os.execute("rm -rf " .. run.quote(dir)) end
  end)

  local ndataset = 0
  local function stream(args)
    ndataset = ndataset + 1
    local dataset = fixtures.dataset(api, "numbers " .. ndataset .. " " .. os.time(), ids.profile_schema)
    -- --no-follow: the values exceed the schema's ranges, so AEP fails them after acceptance; what
    -- is checked here is that the emulator received and stored every digit
    local argv = { "stream", "--env", emu.env_file, "--dataset", dataset, "--quiet", "--no-follow" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return run.aep(argv), dataset
  end

  -- loyaltyID -> totalLoyaltyPoints as the emulator serves them
  local function stored_points(dataset)
    local page = fixtures.records(api, dataset, "?limit=1000")
    local got = {}
    for _, rec in ipairs(page.records) do
      local l = rec.entity._exchangeinternal
      got[l.loyaltyID] = l.totalLoyaltyPoints
    end
    return got, #page.records
  end

  local function assert_all_exact(got)
    for i, e in ipairs(EDGE) do
      local back = got["n" .. i .. "@example.com"]
      assert.is_true(same_number(e[2], back), string.format("%s came back as %s (%s)", e[1], tostring(back),
        tostring(math.type(back))))
    end
  end

  local function record_text(i, text)
    local id = "n" .. i .. "@example.com"
    return '{"_exchangeinternal":{"loyaltyID":"' .. id .. '","totalLoyaltyPoints":' .. text ..
      '},"personalEmail":{"address":"' .. id .. '"}}'
  end

  local function edge_jsonl()
    local t = {}
    for i, e in ipairs(EDGE) do t[i] = record_text(i, e[1]) end
    return table.concat(t, "\n") .. "\n"
  end

  local IDENTITY = "return function(r) return r end"

  it("JSON Lines with the sample mapping and with an identity mapping: stored exactly", function()
    local input = files.write(dir .. "/edge.jsonl", edge_jsonl())
    local identity = files.write(dir .. "/identity.lua", IDENTITY)
    for _, m in ipairs({ "mappings/loyalty_profile.lua", identity }) do
      local r, dataset = stream({ "--input", input, "--mapping", m })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      local got, n = stored_points(dataset)
      assert.equal(#EDGE, n)
      assert_all_exact(got)
    end
  end)

  it("a JSON array with a mapping: stored exactly", function()
    local t = {}
    for i, e in ipairs(EDGE) do t[i] = record_text(i, e[1]) end
    local input = files.write(dir .. "/edge.json", "[\n" .. table.concat(t, ",\n") .. "\n]\n")
    local r, dataset = stream({ "--input", input, "--mapping", "mappings/loyalty_profile.lua" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert_all_exact((stored_points(dataset)))
  end)

  it("CSV through a mapping's tonumber, and an integer the mapping computes: stored exactly", function()
    local rows = { "id,points" }
    for i, e in ipairs(EDGE) do rows[#rows + 1] = "n" .. i .. "," .. e[1] end
    local input = files.write(dir .. "/edge.csv", table.concat(rows, "\n") .. "\n")
    local m = files.write(dir .. "/csv.lua", [[
return function(r, ctx)
  local id = r.id .. "@example.com"
  return { _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = tonumber(r.points),
                                 computedAt = 1733330000000000 + #r.id },
           personalEmail = { address = id } }
end]])
    local r, dataset = stream({ "--input", input, "--mapping", m })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert_all_exact((stored_points(dataset)))
    local page = fixtures.records(api, dataset, "?limit=1000")
    for _, rec in ipairs(page.records) do
      local l = rec.entity._exchangeinternal
      assert.is_true(same_number(1733330000000000 + #l.loyaltyID - #"@example.com", l.computedAt),
        tostring(l.computedAt))
    end
  end)

  it("the reject file keeps every digit of record and entity, and its replay stores them exactly", function()
    local input = files.write(dir .. "/fail.jsonl", edge_jsonl())
    local rejects = dir .. "/fail-rejects.jsonl"
    emu.faults("streaming:503=1", 7)
    local r = stream({ "--input", input, "--mapping", "mappings/loyalty_profile.lua", "--retries", "1",
                       "--reject-file", rejects })
    emu.faults("", 7)
    assert.equal(2, r.status, r.stdout .. r.stderr)
    local text = files.read(rejects)
    local entries = {}
    for line in text:gmatch("[^\n]+") do entries[#entries + 1] = assert(json.decode(line)) end
    assert.equal(#EDGE, #entries)
    for _, e in ipairs(entries) do
      assert.equal("failed", e.kind)
      local i = math.tointeger(tonumber(e.record._exchangeinternal.loyaltyID:match("^n(%d+)@")))
      local want = EDGE[i][2]
      assert.is_true(same_number(want, e.record._exchangeinternal.totalLoyaltyPoints), EDGE[i][1] .. " (record)")
      assert.is_true(same_number(want, e.entity._exchangeinternal.totalLoyaltyPoints), EDGE[i][1] .. " (entity)")
    end
    -- the texts themselves: the input's digits, never cjson's 14
    for _, d in ipairs({ "9223372036854775807", "-9223372036854775808", "1234567890123456", "123456789012345",
                         "3.141592653589793", "12345678.1234567" }) do
      local _, twice = text:gsub(d:gsub("%p", "%%%0") .. "[,}]", "")
      assert.equal(2, twice, d .. " in record and entity")
    end
    assert.is_nil(text:find("e+15", 1, true))
    local r2, dataset = stream({ "--input", rejects, "--mapping", "mappings/loyalty_profile.lua" })
    assert.equal(0, r2.status, r2.stdout .. r2.stderr)
    assert_all_exact((stored_points(dataset)))
  end)
end)
