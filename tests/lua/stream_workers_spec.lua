-- aep stream --workers N, from the CLI: the messages sent (in order), the reject file, the accepted
-- file, the checkpoint and the summary counts are the same with 2 and 3 workers as with 1, for
-- JSON Lines, JSON arrays and CSV, with a Lua mapping and with a Data Prep mapping set; a mapping
-- error in a worker rejects exactly that record; os.exit in a worker's mapping stops the run with
-- exit 1; kill -9 and a --checkpoint resume with workers deliver every record once (or report it
-- possibly duplicated). Records go to a recording sink (each request body appended to a file per
-- inlet path), one request at a time, so the messages of two runs compare one by one, in order.
-- Messages are compared as JSON values: the order of an object's keys follows the hash seed of the
-- Lua state that encoded it (random per state and per run, with --workers 1 too), so two runs of
-- the very same command already differ there byte for byte.
local cjson = require "cjson"
local json = require "aep.json"
local host = require "aep.host"
local run = require "tests.lua.support.run"
local spawn = require "tests.lua.support.spawn"
local files = require "tests.lua.support.files"
local fixtures = require "tests.lua.support.fixtures"

local read = files.read
local dir, sink

local SCHEMA = "https://ns.adobe.com/exchangeinternal/schemas/workers"
local ORG = "WORKERS00000000000000000@AdobeOrg"

local SINK = [[
local server = require "aep.server"
local dir = arg[1]
local srv = assert(server.listen({ host = "127.0.0.1", port = 0, max_body = 4 * 1024 * 1024 }))
io.stdout:write("listening on ", srv:url(), "\n")
io.stdout:flush()
local H = { ["Content-Type"] = "application/json" }
srv:serve(function(req)
  local body = req.body or ""
  local f = assert(io.open(dir .. "/sink-" .. req.path:match("([^/]+)$"), "ab"))
  f:write(body, "\n")
  f:close()
  local n, at = 0, 1
  while true do
    at = body:find('{"header":', at, true)
    if not at then break end
    n, at = n + 1, at + 10
  end
  local parts = {}
  for i = 1, n do parts[i] = '{"xactionId":"1:1:' .. (i - 1) .. '"}' end
  return 207, H, '{"inletId":"sink","batchId":"1:1","receivedTimeMs":1,"responses":[' .. table.concat(parts, ",") .. "]}"
end)
]]

-- A mapping whose entity shows what the worker saw (ctx.position, ctx.line), rejects "Bad"
-- levels, skips "Skip" ones, and keeps empty arrays and long numbers (the marked path).
local MAPPING = [[
return function(r, ctx)
  if r.level == "Bad" then error("level Bad is not mapped for " .. tostring(r.id), 0) end
  if r.level == "Skip" then return nil end
  return { _exchangeinternal = { loyaltyID = r.id, loyaltyLevel = r.level, points = r.points },
           at = ctx.position, line = ctx.line, upper = string.upper(r.id), tags = r.tags, big = r.big }
end
]]

local function write(name, content) return files.write(dir .. "/" .. name, content) end

local function level(i)
  if i % 17 == 0 then return "Bad" end
  if i % 23 == 0 then return "Skip" end
  return ({ "Silver", "Gold", "Platinum" })[i % 3 + 1]
end

-- n flat records as JSON Lines, with input problems along the way (bad JSON, blank lines, a
-- non-object, invalid UTF-8) and records taking cjson's and aep.json's encoding paths
local function jsonl(n)
  local lines = {}
  for i = 1, n do
    local l = string.format('{"id":"u%d@example.com","level":"%s","points":"%d"}', i, level(i), i * 10)
    if i % 101 == 0 then l = '{"id":"u' .. i .. '@example.com","level":"Gold","tags":[],"big":12345678901234567}' end
    if i % 97 == 0 then l = "{not json " .. i end
    if i % 89 == 0 then l = "[" .. i .. "]" end
    if i % 83 == 0 then l = '{"id":"u' .. i .. '\255"}' end
    lines[#lines + 1] = l
    if i % 50 == 0 then lines[#lines + 1] = "" end
  end
  return table.concat(lines, "\n") .. "\n"
end

local function csv(n)
  local lines = { "id,level,points" }
  for i = 1, n do
    local l = string.format("u%d@example.com,%s,%d", i, level(i), i * 10)
    if i % 97 == 0 then l = "u" .. i .. "@example.com,Gold" end -- a missing field
    if i % 89 == 0 then l = '"u' .. i .. '@example.com\nsecond line",Gold,' .. i end -- a quoted field over two lines
    lines[#lines + 1] = l
  end
  return table.concat(lines, "\n") .. "\n"
end

-- Run aep stream in its own directory (same relative output names, so the files compare) with
-- --workers N; -> result, {sink, accepted, rejects, checkpoint, report}
local function stream(tag, workers, input, args)
  local cwd = dir .. "/" .. tag
  os.execute("mkdir -p " .. run.quote(cwd))
  local argv = { "stream", "--input", input, "--inlet", sink.url .. "/collection/" .. tag,
                 "--concurrency", "1", "--batch-size", "7", "--workers", tostring(workers),
                 "--accepted-file", "accepted.tsv", "--reject-file", "rejects.jsonl",
                 "--checkpoint", "run.checkpoint", "--report", "report.json", "--quiet" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = run.aep(argv, { cwd = cwd })
  local cp = json.decode(read(cwd .. "/run.checkpoint") or "null")
  if type(cp) == "table" then cp.updated = nil end
  return r, {
    sink = read(dir .. "/sink-" .. tag) or "", accepted = read(cwd .. "/accepted.tsv") or "",
    rejects = read(cwd .. "/rejects.jsonl") or "", checkpoint = cp,
    report = json.decode(read(cwd .. "/report.json") or "null"),
  }
end

-- the messages of every request the sink got, decoded, in order
local function messages(sink_text)
  local out = {}
  for body in sink_text:gmatch("[^\n]+") do
    for _, m in ipairs(json.decode(body).messages) do out[#out + 1] = m end
  end
  return out
end

-- the same messages in the same order (a short failure: the first that differs)
local function same_messages(a, b, what)
  local ma, mb = messages(a), messages(b)
  assert.equal(#ma, #mb, what .. ": not as many messages")
  for i = 1, #ma do
    if not require("luassert.util").deepcompare(ma[i], mb[i], true) then
      error(what .. ": message " .. i .. " differs: " .. json.encode(ma[i]) .. " vs " .. json.encode(mb[i]), 2)
    end
  end
end

local function counts(rep)
  return { rep.records, rep.accepted, rep.rejected, rep.skipped, rep.failed, rep.exit_status }
end

-- the same outputs for --workers 1, 2 and 3; -> the outputs of --workers 1
local function same_for_workers(tag, input, args)
  local r1, one = stream(tag .. "-w1", 1, input, args)
  for _, n in ipairs({ 2, 3 }) do
    local rn, out = stream(tag .. "-w" .. n, n, input, args)
    assert.equal(r1.status, rn.status, rn.stderr)
    assert.equal(r1.stdout:gsub(" in [%d.]+ s %(.-%)", ""), (rn.stdout:gsub(" in [%d.]+ s %(.-%)", "")))
    same_messages(one.sink, out.sink, "--workers " .. n)
    assert.equal(one.accepted, out.accepted)
    assert.equal(one.rejects, out.rejects)
    assert.same(one.checkpoint, out.checkpoint)
    assert.same(counts(one.report), counts(out.report))
  end
  return r1, one
end

local function base_args()
  return { "--dataset", "workers", "--schema", SCHEMA, "--org", ORG }
end

setup(function()
  dir = run.tmpdir()
  local script = write("sink.lua", SINK)
  sink = spawn.spawn({ spawn.aep, script, dir }, "^listening on (%S+)")
end)

teardown(function()
  if sink then sink:stop() end
  if dir then os.execute("rm -rf " .. run.quote(dir)) end
end)

describe("aep stream --workers with a Lua mapping", function()
  it("sends, rejects, skips and accounts JSON Lines exactly as --workers 1", function()
    local input = write("records.jsonl", jsonl(1200))
    local mapping = write("flat.lua", MAPPING)
    local args = base_args()
    args[#args + 1] = "--mapping"
    args[#args + 1] = mapping
    local r, one = same_for_workers("jsonl", input, args)
    assert.equal(2, r.status, r.stderr)
    -- 1200 positions: 70 Bad (mapping errors), 52 Skip, 12 bad JSON, 13 non-objects, 14 bad UTF-8
    local rej = files.json_lines(dir .. "/jsonl-w1/rejects.jsonl")
    local by_pos = {}
    for _, e in ipairs(rej) do by_pos[e.position] = e end
    assert.same({ 1200, 1200 - #rej - one.report.skipped, #rej, one.report.skipped, 0, 2 }, counts(one.report))
    -- a mapping error rejects exactly its record, with the mapping's words, position and line
    assert.same({ "mapping error: level Bad is not mapped for u17@example.com", 17, 17 },
      { by_pos[17].reason, by_pos[17].position, by_pos[17].line })
    assert.is_nil(by_pos[16])
    assert.is_nil(by_pos[18])
    -- position 97 is line 98 (a blank line after line 50); its text is kept as a string
    assert.equal(98, by_pos[97].line)
    assert.matches("^invalid JSON at line 98: ", by_pos[97].reason)
    assert.equal("the record is not a JSON object", by_pos[89].reason)
    assert.matches("^invalid UTF%-8 at byte ", by_pos[83].reason)
    -- the entity a worker encoded: ctx per record, [] kept, every digit of a long number
    assert.truthy(one.sink:find('"at":1[,}]')) -- wherever the key order puts it
    assert.truthy(one.sink:find('"big":12345678901234567', 1, true))
    assert.truthy(one.sink:find('"tags":[]', 1, true))
  end)

  it("sends CSV rows exactly as --workers 1", function()
    local input = write("records.csv", csv(700))
    local mapping = write("flat-csv.lua", MAPPING)
    local args = base_args()
    args[#args + 1] = "--mapping"
    args[#args + 1] = mapping
    local r, one = same_for_workers("csv", input, args)
    assert.equal(2, r.status, r.stderr)
    local rej = files.json_lines(dir .. "/csv-w1/rejects.jsonl")
    local reasons = {}
    for _, e in ipairs(rej) do reasons[e.position] = e.reason end
    assert.equal("mapping error: level Bad is not mapped for u34@example.com", reasons[34])
    assert.equal("CSV row at line 99 has 2 fields, the header has 3", reasons[97]) -- the header and row 89 take a line each more
    assert.is_nil(reasons[89]) -- the quoted field spanning two lines is one record
    assert.truthy(one.sink:find('"loyaltyID":"u89@example.com\\nsecond line"', 1, true))
  end)

  it("sends a JSON array exactly as --workers 1", function()
    local mapping = write("flat-array.lua", MAPPING)
    local recs = {}
    for i = 1, 600 do recs[i] = string.format('{"id":"a%d@example.com","level":"%s"}', i, level(i)) end
    local input = write("records.json", "[" .. table.concat(recs, ",\n") .. "]\n")
    local args = base_args()
    args[#args + 1] = "--mapping"
    args[#args + 1] = mapping
    local r, one = same_for_workers("array", input, args)
    assert.equal(2, r.status, r.stderr)
    assert.same({ 600, 600 - 35 - 25, 35, 25, 0, 2 }, counts(one.report))
  end)

  it("stops the run with exit 1 when a worker's mapping calls os.exit", function()
    local mapping = write("exits.lua", [[
      return function(r, ctx)
        if r.id == "u300@example.com" then os.exit(3) end
        return { _exchangeinternal = { loyaltyID = r.id } }
      end]])
    local lines = {}
    for i = 1, 1000 do lines[i] = '{"id":"u' .. i .. '@example.com"}' end
    local input = write("exits.jsonl", table.concat(lines, "\n") .. "\n")
    local args = base_args()
    args[#args + 1] = "--mapping"
    args[#args + 1] = mapping
    local r, one = stream("exit-w2", 2, input, args)
    assert.equal(1, r.status)
    assert.matches("the mapping " .. mapping .. " called os.exit(3) at record 300 (line 300)", r.stderr, 1, true)
    assert.same({ 300, 299, 1, 0, 0, 1 }, counts(one.report))
    local rej = files.json_lines(dir .. "/exit-w2/rejects.jsonl")
    assert.same({ 300, "mapping called os.exit(3)" }, { rej[1].position, rej[1].reason })
    -- the same as --workers 1
    local r1, o1 = stream("exit-w1", 1, input, args)
    assert.equal(r1.stderr, r.stderr)
    same_messages(o1.sink, one.sink, "--workers 2")
    assert.same(o1.checkpoint, one.checkpoint)
  end)

  it("rejects a record whose mapping runs past --mapping-timeout in a worker, and only that one", function()
    local mapping = write("loops.lua", [[
      return function(r, ctx)
        if r.id == "u7@example.com" then while true do end end
        return { _exchangeinternal = { loyaltyID = r.id } }
      end]])
    local lines = {}
    for i = 1, 20 do lines[i] = '{"id":"u' .. i .. '@example.com"}' end
    local input = write("loops.jsonl", table.concat(lines, "\n") .. "\n")
    local args = base_args()
    for _, a in ipairs({ "--mapping", mapping, "--mapping-timeout", "50" }) do args[#args + 1] = a end
    local r, out = stream("timeout-w2", 2, input, args)
    assert.equal(2, r.status, r.stderr)
    assert.same({ 20, 19, 1, 0, 0, 2 }, counts(out.report))
    local rej = files.json_lines(dir .. "/timeout-w2/rejects.jsonl")
    assert.same({ 7, "mapping exceeded 50 ms" }, { rej[1].position, rej[1].reason })
  end)

  it("resumes after kill -9 with workers: every record reaches the sink once, or is reported", function()
    local n = 3000
    local lines = {}
    for i = 1, n do lines[i] = '{"id":"k' .. i .. '@example.com","level":"Gold"}' end
    local input = write("kill.jsonl", table.concat(lines, "\n") .. "\n")
    local mapping = write("kill.lua", MAPPING)
    local cwd = dir .. "/kill"
    os.execute("mkdir -p " .. run.quote(cwd))
    local argv = { spawn.aep, "stream", "--input", input, "--inlet", sink.url .. "/collection/kill",
                   "--dataset", "workers", "--schema", SCHEMA, "--org", ORG, "--mapping", mapping,
                   "--workers", "2", "--batch-size", "50", "--rate", "20", "--checkpoint", cwd .. "/run.checkpoint",
                   "--accepted-file", cwd .. "/accepted.tsv", "--quiet" }
    local child = spawn.spawn(argv, nil, { stderr = cwd .. "/stderr" })
    local prefix = 0
    for _ = 1, 400 do
      host.sleep(0.05)
      local doc = json.decode(read(cwd .. "/run.checkpoint") or "")
      prefix = doc and doc.prefix or 0
      if prefix >= 500 then break end
    end
    assert.is_true(prefix >= 500, "the checkpoint did not advance")
    child:kill("KILL")
    child:wait()
    assert.is_true(json.decode(read(cwd .. "/run.checkpoint")).prefix < n)
    for i, a in ipairs(argv) do if a == "20" and argv[i - 1] == "--rate" then argv[i] = "0" end end
    table.remove(argv, 1)
    local r = run.aep(argv)
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local doc = json.decode(read(cwd .. "/run.checkpoint"))
    assert.is_true(doc.complete)
    assert.equal(n, doc.prefix)
    -- what the sink holds: each record at least once, more only when the accepted file says so
    local seen = {}
    for id in (read(dir .. "/sink-kill") or ""):gmatch('"loyaltyID":"k(%d+)@example%.com"') do
      id = tonumber(id)
      seen[id] = (seen[id] or 0) + 1
    end
    local listed, flagged = {}, {}
    for line in io.lines(cwd .. "/accepted.tsv") do
      local pos, _, dup = line:match("^(%d+)\t([^\t]*)\t?(.*)$")
      pos = tonumber(pos)
      assert.is_nil(listed[pos], "position " .. pos .. " listed twice")
      listed[pos] = true
      if dup == "possibly-duplicated" then flagged[pos] = true end
    end
    for i = 1, n do
      assert.is_true(listed[i], "position " .. i .. " not accepted")
      assert.is_true((seen[i] or 0) >= 1, "record " .. i .. " never reached the sink")
      if seen[i] > 1 then assert.is_true(flagged[i] == true, "record " .. i .. " sent " .. seen[i] .. " times, not reported") end
    end
  end)

  it("documents --workers in the help", function()
    local r = run.aep({ "stream", "--help" })
    assert.equal(0, r.status)
    assert.matches("--workers N", r.stdout, 1, true)
    assert.matches("own Lua state", r.stdout, 1, true)
    assert.matches("run it with --workers 1", r.stdout, 1, true)
    r = run.aep({ "stream", "--input", "x.jsonl", "--dataset", "d", "--workers", "0" })
    assert.equal(64, r.status)
    assert.matches("--workers must be 1 or more", r.stderr, 1, true)
  end)
end)

describe("aep stream --workers with a Data Prep mapping set", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal" }, { dataflow = false })
  end)

  teardown(function()
    if emu then emu.stop(); emu.cleanup() end
  end)

  local SET = {
    xdmSchema = "https://ns.adobe.com/exchangeinternal/schemas/loyalty-profiles",
    mappings = {
      { sourceType = "ATTRIBUTE", source = "id", destination = "_exchangeinternal.loyaltyID" },
      { sourceType = "ATTRIBUTE", source = "id", destination = "personalEmail.address" },
      { sourceType = "EXPRESSION", source = "to_integer(points)", destination = "_exchangeinternal.totalLoyaltyPoints" },
    },
  }
  local POINTS_ERROR = "mapping error: Data Prep: mapping to_integer(points) -> _exchangeinternal.totalLoyaltyPoints " ..
    "failed: to_integer: 'lots' is not a number"

  local function set_args(set)
    return { "--env", emu.env_file, "--dataset", ids.profile_dataset, "--mapping-set", set, "--no-follow" }
  end

  it("maps JSON Lines and CSV exactly as --workers 1", function()
    assert.is_truthy(api)
    local set = write("flat.mapping-set.json", cjson.encode(SET))
    local lines, rows = {}, { "id,points" }
    for i = 1, 600 do
      local points = i % 41 == 0 and "lots" or tostring(i)
      lines[i] = string.format('{"id":"s%d@example.com","points":"%s"}', i, points)
      rows[i + 1] = string.format("s%d@example.com,%s", i, points)
    end
    for _, case in ipairs({ { "set-jsonl", write("set.jsonl", table.concat(lines, "\n") .. "\n") },
                            { "set-csv", write("set.csv", table.concat(rows, "\n") .. "\n") } }) do
      local r, one = same_for_workers(case[1], case[2], set_args(set))
      assert.equal(2, r.status, r.stderr)
      assert.same({ 600, 586, 14, 0, 0, 2 }, counts(one.report))
      local rej = files.json_lines(dir .. "/" .. case[1] .. "-w1/rejects.jsonl")
      assert.same({ 41, POINTS_ERROR }, { rej[1].position, rej[1].reason })
      assert.truthy(one.sink:find('"totalLoyaltyPoints":600', 1, true))
    end
  end)
end)

describe("aep.workers (the thread pool)", function()
  it("hands chunks to worker states and gives results back in submission order", function()
    local native = require "aep.workers"
    files.write(dir .. "/echo_worker.lua", [[
      local M = {}
      function M.init(config)
        if config == "fail" then error("init refused", 0) end
        return function(chunk)
          if chunk == "raise" then error("chunk refused", 0) end
          local n = tonumber(chunk)
          if n then local x = 0 for i = 1, n do x = x + i end end -- uneven work: finishing out of order
          return config .. ":" .. chunk
        end
      end
      return M]])
    local path = dir .. "/?.lua;" .. package.path
    local pool = assert(native.start({ n = 3, module = "echo_worker", config = "w", path = path }))
    local seqs = {}
    for i = 1, 30 do seqs[i] = pool:submit(tostring((31 - i) * 1000)) end
    for i = 1, 30 do assert.equal("w:" .. (31 - i) * 1000, pool:take(seqs[i])) end
    assert.same({ nil, "chunk refused", "WORKER" }, { pool:take(pool:submit("raise")) })
    assert.equal("w:x", pool:take(pool:submit("x"))) -- a failed chunk leaves the pool working
    pool:close()
    pool:close()
    local ok, err = pcall(pool.submit, pool, "x")
    assert.is_false(ok)
    assert.matches("the worker pool is closed", err, 1, true)
    assert.same({ nil, "a worker could not start: init refused", "WORKER_INIT" },
      { native.start({ n = 2, module = "echo_worker", config = "fail", path = path }) })
    assert.is_true(native.cores() >= 1)
  end)
end)
