-- aep stream's input and mapping side under hostile input, from the user's side (the command, its
-- exit status, report, reject and accepted files, and what the emulator stored): a CSV quote that
-- never closes, a truncated gzip, a checkpoint given another input or mapping, a mapping that
-- exits, loops or returns bad JSON text, SIGTERM, BOMs, empty inputs and text after a JSON array.
-- Every input record ends stored, rejected with a reason, or the run fails loudly with the
-- position. Inputs are generated on the fly and small; outcomes are asserted, never timings.
local json = require "aep.json"
local cjson = require "cjson"
local host = require "aep.host"
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"
local spawn = require "tests.lua.support.spawn"

local emu, api, ids, dir

local function write(name, content) return files.write(dir .. "/" .. name, content) end
local read, jsonl = files.read, files.json_lines

-- A mapping from flat rows {id = ...} to a profile entity whose loyaltyID is "<id>@example.com";
-- `extra` is Lua placed before the return (it may look at r.id).
local function mapping(name, extra)
  return write(name, [[
return function(r, ctx)
  local id = tostring(math.tointeger(r.id) or r.id)
  ]] .. (extra or "") .. [[

  return { ["_" .. ctx.tenant] = { loyaltyID = id .. "@example.com" },
           personalEmail = { address = id .. "@example.com" } }
end
]])
end

local function rows_jsonl(from, to, pad)
  local t = {}
  local p = pad and (',"pad":"' .. string.rep("p", pad) .. '"') or ""
  for i = from, to do t[#t + 1] = '{"id":' .. i .. p .. '}' end
  return table.concat(t, "\n") .. "\n"
end

local ndataset = 0
local function fresh_dataset()
  ndataset = ndataset + 1
  return fixtures.dataset(api, "reliability input " .. ndataset .. " " .. os.time(), ids.profile_schema)
end

-- stream into a fresh dataset (or o.dataset); returns the run, the report document, the dataset
local function stream(args, o)
  o = o or {}
  local dataset = o.dataset or fresh_dataset()
  local report = dir .. "/report-" .. ndataset .. ".json"
  os.remove(report)
  local argv = { "stream", "--env", emu.env_file, "--dataset", dataset, "--report", report }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = run.aep(argv)
  return r, json.decode(read(report) or "null"), dataset
end

-- loyaltyIDs stored in a dataset -> {["<id>"] = count}, total
local function stored(dataset)
  local out, total, offset = {}, 0, 0
  repeat
    local page = fixtures.records(api, dataset, "?limit=5000&offset=" .. offset)
    for _, rec in ipairs(page.records or {}) do
      local t = rec.entity and rec.entity["_" .. ids.tenant]
      local id = t and t.loyaltyID and t.loyaltyID:match("^(.-)@")
      if id then out[id] = (out[id] or 0) + 1 end
      total = total + 1
    end
    offset = offset + 5000
  until #(page.records or {}) < 5000
  return out, total
end

local function counts(rep) return { rep.accepted, rep.rejected, rep.skipped, rep.failed } end

setup(function()
  dir = run.tmpdir()
  emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--seed", "7" }, { dataflow = false })
  ids.tenant = ids.tenant or "exchangeinternal"
end)

teardown(function()
  if emu then emu.stop(); emu.cleanup() end
  if dir then os.execute("rm -rf " .. run.quote(dir)) end
end)

describe("aep stream input and mappings", function()
  it("rejects a CSV row whose quote never closes, alone and with its line, and streams every other row", function()
    local n, broken = 3000, 50
    local t = { "id,note" }
    for i = 1, n do t[#t + 1] = i == broken and (i .. ',"never closed') or (i .. ",note " .. i) end
    local input = write("broken.csv", table.concat(t, "\n") .. "\n")
    local rejects = dir .. "/broken-rejects.jsonl"
    local r, rep, ds = stream({ "--input", input, "--mapping", mapping("csv.lua"), "--reject-file", rejects })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.same({ n - 1, 1, 0, 0 }, counts(rep))
    local rj = jsonl(rejects)
    assert.equal(1, #rj)
    assert.same({ broken, broken + 1 }, { rj[1].position, rj[1].line })
    assert.equal("malformed CSV at line 51: a quoted field is not closed within 100 lines (this line is "
      .. "rejected alone; reading goes on at line 52)", rj[1].reason)
    assert.equal('50,"never closed', rj[1].record)
    local ids_stored, total = stored(ds)
    assert.equal(n - 1, total)
    for i = 1, n do assert.equal(i ~= broken and 1 or nil, ids_stored[tostring(i)], "row " .. i) end
    -- the bounds are flags
    r, rep = stream({ "--input", input, "--mapping", mapping("csv.lua"), "--csv-max-lines", "3" })
    assert.equal(2, r.status)
    assert.same({ n - 1, 1, 0, 0 }, counts(rep))
    assert.matches("not closed within 3 lines", rep.stopped == nil and r.stdout or "", 1, true)
  end)

  it("fails a truncated gzip input with exit 1 and the position reached; a complete multi-member file reads fully", function()
    local plain = write("gz.jsonl", rows_jsonl(1, 2000))
    assert(os.execute("gzip -kf " .. run.quote(plain)))
    local member = read(plain .. ".gz")
    local two = write("two.jsonl.gz", member .. assert(io.popen("printf '%s' " .. run.quote(rows_jsonl(2001, 3000)) .. " | gzip -c")):read("a"))
    local r, rep, ds = stream({ "--input", two, "--mapping", mapping("gz.lua") })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ 3000, 0, 0, 0 }, counts(rep))
    local _, total = stored(ds)
    assert.equal(3000, total)
    -- the trailer cut off: every record is there, but the file is not whole
    local cut = write("cut.jsonl.gz", member:sub(1, #member - 8))
    r, rep = stream({ "--input", cut, "--mapping", mapping("gz.lua") })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("stream: the gzip input is truncated: it ends inside a compressed stream after line 2000", r.stderr, 1, true)
    assert.same({ 2000, 0, 0, 0 }, counts(rep))
    assert.equal(2000, rep.last_position)
    assert.matches("^the gzip input is truncated", rep.stopped)
    -- a second member cut after its header
    r, rep = stream({ "--input", write("cut2.jsonl.gz", member .. member:sub(1, 12)), "--mapping", mapping("gz.lua") })
    assert.equal(1, r.status)
    assert.same({ 2000, 0, 0, 0 }, counts(rep))
    assert.matches("truncated", rep.stopped, 1, true)
  end)

  it("binds a checkpoint to its input's content and the mapping; an input that grew resumes", function()
    local PAD = 300 -- 500 records of ~320 bytes: more than the two 64 KiB windows the identity hashes
    local input = write("ck.jsonl", rows_jsonl(1000, 1499, PAD))
    local cp = dir .. "/ck.checkpoint"
    local m = mapping("ck.lua")
    local ds = fresh_dataset()
    local r = stream({ "--input", input, "--mapping", m, "--checkpoint", cp }, { dataset = ds })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local doc = json.decode(read(cp))
    assert.equal(#read(input), doc.input_identity.size)
    -- replaced by other records under the same name, of the same size: refused, nothing sent
    write("ck.jsonl", rows_jsonl(2000, 2499, PAD))
    r = stream({ "--input", input, "--mapping", m, "--checkpoint", cp }, { dataset = ds })
    assert.equal(1, r.status)
    assert.matches("stream: checkpoint " .. cp .. " does not match its input: the first bytes of " .. input
      .. " are not those the checkpoint saw (modified ", r.stderr, 1, true)
    assert.matches("delete " .. cp .. " to stream this input from the start, or give another --checkpoint file", r.stderr, 1, true)
    local _, total = stored(ds)
    assert.equal(500, total)
    -- the same first bytes, other ones at the end
    write("ck.jsonl", rows_jsonl(1000, 1498, PAD) .. '{"id":9999,"pad":"' .. string.rep("q", PAD) .. '"}\n')
    r = stream({ "--input", input, "--mapping", m, "--checkpoint", cp }, { dataset = ds })
    assert.equal(1, r.status)
    assert.matches("the bytes of " .. input .. " up to byte " .. math.tointeger(doc.input_identity.size) .. " are not those", r.stderr, 1, true)
    -- a shorter input
    write("ck.jsonl", rows_jsonl(1000, 1009, PAD))
    r = stream({ "--input", input, "--mapping", m, "--checkpoint", cp }, { dataset = ds })
    assert.equal(1, r.status)
    assert.matches(input .. " is shorter (", r.stderr, 1, true)
    -- the same content, a changed mapping: refused
    write("ck.jsonl", rows_jsonl(1000, 1499, PAD))
    local m2 = mapping("ck2.lua", "-- changed")
    r = stream({ "--input", input, "--mapping", m2, "--checkpoint", cp }, { dataset = ds })
    assert.equal(1, r.status)
    assert.matches("was written with another mapping (the text of the mapping " .. m2 .. " changed since)", r.stderr, 1, true)
    _, total = stored(ds)
    assert.equal(500, total)
    -- the original mapping, the input appended to: only the new records go
    write("ck.jsonl", rows_jsonl(1000, 1699, PAD))
    local rep
    r, rep = stream({ "--input", input, "--mapping", m, "--checkpoint", cp }, { dataset = ds })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ 700, 0, 0, 0 }, counts(rep))
    assert.equal(200, rep.this_run.accepted)
    local got
    got, total = stored(ds)
    assert.equal(700, total)
    for i = 1000, 1699 do assert.equal(1, got[tostring(i)], "id " .. i) end
  end)

  it("stops the run with exit 1 and a report when a mapping calls os.exit", function()
    local input = write("exit.jsonl", rows_jsonl(1, 1000))
    local m = mapping("exit.lua", "if r.id == 600 then os.exit(0) end")
    local rejects = dir .. "/exit-rejects.jsonl"
    local r, rep, ds = stream({ "--input", input, "--mapping", m, "--reject-file", rejects, "--batch-size", "100" })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    local why = "the mapping " .. m .. " called os.exit(0) at record 600 (line 600): a mapping cannot end the run "
      .. "(raise an error to reject a record); stopped at record 600"
    assert.matches("stream: " .. why, r.stderr, 1, true)
    assert.equal(why, rep.stopped)
    assert.same({ 599, 1, 0, 0 }, counts(rep))
    assert.equal(600, rep.last_position)
    assert.equal("mapping called os.exit(0)", jsonl(rejects)[1].reason)
    local _, total = stored(ds)
    assert.equal(599, total)
  end)

  it("checks a mapping's JSON text: a bad one rejects that record only", function()
    local input = write("text.jsonl", rows_jsonl(1, 300))
    local m = mapping("text.lua", [[
  if r.id == 3 then return "not json" end
  if r.id == 7 then return '{"a":1}\n{"b":2}' end
  if r.id == 9 then return '[1,2]' end
  if r.id == 11 then return '{"_exchangeinternal":{"loyaltyID":"11@example.com"},"personalEmail":{"address":"11@example.com"}}' end]])
    local rejects = dir .. "/text-rejects.jsonl"
    local r, rep, ds = stream({ "--input", input, "--mapping", m, "--reject-file", rejects })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.same({ 297, 3, 0, 0 }, counts(rep))
    local rj = jsonl(rejects) -- every line decodes
    assert.equal(3, #rj)
    assert.same({ 3, 7, 9 }, { rj[1].position, rj[2].position, rj[3].position })
    assert.equal("mapping error: the mapping returned text that is not JSON (Expected value but found invalid token at character 1); return the entity as a table", rj[1].reason)
    assert.matches("^mapping error: the mapping returned text that is not JSON %(Expected the end", rj[2].reason)
    assert.equal("mapping error: the mapping returned JSON text that is not one object; return the entity as a table", rj[3].reason)
    local got, total = stored(ds)
    assert.equal(297, total)
    assert.equal(1, got["11"])
  end)

  it("rejects a record whose mapping runs past --mapping-timeout and goes on", function()
    local input = write("loop.jsonl", rows_jsonl(1, 50))
    local m = mapping("loop.lua", "if r.id == 2 or r.id == 40 then while true do end end")
    local rejects = dir .. "/loop-rejects.jsonl"
    local r, rep, ds = stream({ "--input", input, "--mapping", m, "--reject-file", rejects, "--mapping-timeout", "100" })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.same({ 48, 2, 0, 0 }, counts(rep))
    local rj = jsonl(rejects)
    assert.same({ 2, 40 }, { rj[1].position, rj[2].position })
    assert.equal("mapping exceeded 100 ms", rj[1].reason)
    local _, total = stored(ds)
    assert.equal(48, total)
  end)

  it("ends on SIGTERM like Ctrl-C: exit 143, a report, whole lines; the same command then finishes", function()
    local n = 2000
    local input = write("term.jsonl", rows_jsonl(1, n))
    local m = mapping("term.lua")
    local cp, acc, report = dir .. "/term.checkpoint", dir .. "/term-accepted.tsv", dir .. "/term-report.json"
    local ds = fresh_dataset()
    local argv = { spawn.aep, "stream", "--env", emu.env_file, "--dataset", ds, "--input", input, "--mapping", m,
                   "--batch-size", "20", "--rate", "20", "--checkpoint", cp, "--accepted-file", acc,
                   "--report", report, "--quiet" }
    local child = spawn.spawn(argv, nil, { stderr = dir .. "/term.stderr" })
    local prefix = 0
    for _ = 1, 200 do
      host.sleep(0.05)
      local doc = json.decode(read(cp) or "")
      prefix = doc and doc.prefix or 0
      if prefix >= 200 then break end
    end
    assert.is_true(prefix >= 200, "the checkpoint did not advance")
    child:kill("TERM")
    local _, how, code = child:wait()
    assert.same({ "exit", 143 }, { how, code })
    local rep = json.decode(assert(read(report), "no report"))
    assert.equal(143, rep.exit_status)
    assert.equal("stopped by SIGTERM (the checkpoint, if any, lets the same command resume)", rep.stopped)
    assert.is_true(rep.accepted >= 200 and rep.accepted < n)
    local text = read(acc)
    assert.equal("\n", text:sub(-1))
    local lines = 0
    for line in text:gmatch("[^\n]*\n") do
      lines = lines + 1
      assert.matches("^%d+\t[^\t\n]+\n$", line)
    end
    assert.equal(rep.accepted, lines)
    -- the input replaced while the run was stopped midway: the resume is refused, nothing is sent
    local original = read(input)
    write("term.jsonl", (original:gsub('"id":(%d+)', function(d) return '"id":' .. string.rep("9", #d) end)))
    local refused = run.aep({ "stream", "--env", emu.env_file, "--dataset", ds, "--input", input, "--mapping", m,
                              "--checkpoint", cp, "--accepted-file", acc })
    assert.equal(1, refused.status)
    assert.matches("does not match its input", refused.stderr, 1, true)
    assert.equal(text, read(acc))
    write("term.jsonl", original)
    local r = run.aep({ "stream", "--env", emu.env_file, "--dataset", ds, "--input", input, "--mapping", m,
                        "--batch-size", "20", "--checkpoint", cp, "--accepted-file", acc, "--report", report })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    rep = json.decode(read(report))
    assert.same({ n, 0, 0, 0 }, counts(rep))
    local got, total = stored(ds)
    local extra = 0
    for i = 1, n do
      local c = got[tostring(i)] or 0
      assert.is_true(c >= 1, "id " .. i)
      extra = extra + c - 1
    end
    assert.equal(n + extra, total)
    assert.is_true(extra <= rep.possibly_duplicated, "a duplicate was not reported")
  end)

  it("reads a BOM, an empty input and text after a JSON array by one rule in every format", function()
    local m = mapping("bom.lua")
    -- a BOM before the first record
    for _, case in ipairs({ { "bom.jsonl", "\239\187\191" .. rows_jsonl(1, 5) },
                            { "bom.json", "\239\187\191[" .. rows_jsonl(1, 5):gsub("\n(.)", ",%1") .. "]" },
                            { "bom.csv", "\239\187\191id\n1\n2\n3\n4\n5\n" } }) do
      local r, rep = stream({ "--input", write(case[1], case[2]), "--mapping", m })
      assert.equal(0, r.status, case[1] .. ": " .. r.stdout .. r.stderr)
      assert.same({ 5, 0, 0, 0 }, counts(rep))
    end
    -- an empty input: 0 records, exit 0, a warning
    for _, name in ipairs({ "empty.jsonl", "empty.json", "empty.csv" }) do
      local input = write(name, "")
      local r, rep = stream({ "--input", input, "--mapping", m })
      assert.equal(0, r.status, name .. ": " .. r.stdout .. r.stderr)
      assert.same({ 0, 0, 0, 0 }, counts(rep))
      assert.matches("stream: " .. input .. " holds no records (0 read)", r.stderr, 1, true)
    end
    -- text after the closing ]: an error naming its line, the records before accounted
    local r, rep = stream({ "--input", write("trailing.json", '[{"id":1},\n{"id":2}]\n{"id":3}\n'), "--mapping", m })
    assert.equal(1, r.status)
    assert.matches("stream: unexpected text after the closing ']' of the JSON array at line 3", r.stderr, 1, true)
    assert.same({ 2, 0, 0, 0 }, counts(rep))
  end)

  it("documents the rules in --help", function()
    local r = run.aep({ "stream", "--help" })
    assert.equal(0, r.status)
    for _, s in ipairs({ "--mapping-timeout MS", "--csv-max-lines N", "--csv-max-field BYTES",
                         "A UTF-8 byte order mark", "input is 0 records", "os.exit", "SIGTERM" }) do
      assert.matches(s, r.stdout, 1, true)
    end
  end)
end)

describe("mapping guards", function()
  local mapping = require "aep.stream.mapping"
  local function load(src, opts) return assert(mapping.load(write("unit-" .. #src .. ".lua", src), opts)) end

  it("turns os.exit into an error the loop can tell apart, keeping the rest of os", function()
    local m = load("local t = os.time() return function(r) if r.x then os.exit(r.x) end return { t = os.time() - t } end")
    assert.same({ t = 0 }, m({}))
    local ok, err = pcall(m, { x = 3 })
    assert.is_false(ok)
    assert.is_true(mapping.is_exit(err))
    assert.equal(3, err.code)
    assert.equal("mapping error: the mapping called os.exit(3)", mapping.reason(err))
    -- the real os.exit is untouched outside the mapping
    assert.is_function(os.exit)
    assert.is_false(mapping.is_exit("os.exit"))
  end)

  it("stops a call past its budget with 'mapping exceeded N ms', and the next call has a fresh one", function()
    local m = load("return function(r) if r.spin then while true do end end return r end", { timeout_ms = 50 })
    local ok, err = pcall(m, { spin = true })
    assert.is_false(ok)
    assert.equal("mapping exceeded 50 ms", mapping.reason(err))
    assert.same({ a = 1 }, m({ a = 1 }))
    -- code outside the mapping is never stopped by its hook
    local n = 0
    for i = 1, 3000000 do n = n + i % 3 end
    assert.equal(3000000, n)
    -- 0: no budget at all (the function is the mapping itself)
    local raw = load("return function(r) return r end", { timeout_ms = 0 })
    assert.same({ b = 2 }, raw({ b = 2 }))
  end)

  it("takes JSON text only when it is one object", function()
    local enc = mapping.encoder(function(r) return r.text end)
    assert.equal('{"a":1}', enc({ text = '{"a":1}' }))
    assert.equal(' {"a":[]} ', enc({ text = ' {"a":[]} ' }))
    for text, why in pairs({
      ["nope"] = "the mapping returned text that is not JSON (Expected value but found invalid token at character 1)",
      ['{"a":1},{"b":2}'] = "the mapping returned text that is not JSON (Expected the end but found T_COMMA at character 8)",
      ["[1]"] = "the mapping returned JSON text that is not one object",
      ['"s"'] = "the mapping returned JSON text that is not one object",
      ['{"a":"\255"}'] = "the mapping returned text that is not valid UTF-8",
    }) do
      local ok, err = pcall(enc, { text = text })
      assert.is_false(ok, text)
      assert.matches(why, err, 1, true)
    end
  end)
end)
