-- The source interface of `aep stream` (docs/ARCHITECTURE.md, "Stream sources"): the one
-- pipeline drives any source — records handed out one position at a time, "AGAIN" when a source
-- has nothing yet, settle(first, last) as spans finish, commit() only once the reject entries are
-- on disk, on_reject telling the source of a record that will not reach AEP, stopping() ending a
-- run with what is in flight answered; and `aep stream` owns --from, with each source's flags.
-- A scripted source and pool: nothing here waits.
local ledger_mod = require "aep.stream.ledger"
local sender_mod = require "aep.stream.sender"
local pacer = require "aep.stream.pacer"
local pipeline = require "aep.stream.pipeline"
local cjson = require "cjson"
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"

local dir = run.tmpdir()
local nfile = 0
local function path(ext)
  nfile = nfile + 1
  return dir .. "/s" .. nfile .. (ext or ".jsonl")
end

local function clock()
  local c = { t = 1000 }
  c.now = function() return c.t end
  c.sleep = function(s) c.t = c.t + s; return true end
  return c
end

-- a pool answering 207: every message accepted but those whose entity has "bad"
local function fake_pool()
  local p = { submitted = {}, queue = {} }
  function p:submit(req, ctx)
    self.submitted[#self.submitted + 1] = req
    self.queue[#self.queue + 1] = { req = req, ctx = ctx }
  end
  function p:wait()
    local out = {}
    local q = self.queue
    self.queue = {}
    for _, item in ipairs(q) do
      local rs = {}
      for i, m in ipairs(cjson.decode(item.req.body).messages) do
        rs[i] = m.body.xdmEntity.bad and { statusCode = 400, message = "bad record" } or { xactionId = "x" .. i }
      end
      out[#out + 1] = { context = item.ctx, response = { status = 207, headers = {}, body = cjson.encode({ responses = rs }) } }
    end
    return out
  end
  function p:close() end
  return p
end

local function encoder(entity) return '{"header":{},"body":{"xdmEntity":' .. entity .. "}}" end

-- A source handing out `script` in order: a string is a record's JSON text, "AGAIN" a moment
-- with nothing to give, {dup = text} a record that may have reached AEP before.
local function scripted(script, o)
  o = o or {}
  local s = { i = 0, settled = {}, commits = {}, rejects = {}, calls = {}, json_text = true, input = "scripted" }
  function s:next()
    self.i = self.i + 1
    local item = script[self.i]
    if item == nil then return nil end
    if item == "AGAIN" then return nil, nil, "AGAIN" end
    local text, dup = item, false
    if type(item) == "table" then text, dup = item.dup, true end
    local rec = cjson.decode(text)
    if rec.unreadable then return false, "unreadable", text, nil, dup end
    return true, rec, text, nil, dup
  end
  function s:where(p) return "scripted@" .. p end
  function s:settle(first, last) self.settled[#self.settled + 1] = { first, last } end
  function s:commit() self.commits[#self.commits + 1] = o.reject_file and #(files.read(o.reject_file) or "") or 0 end
  function s:on_reject(p, reason, kind, kept)
    self.rejects[#self.rejects + 1] = { p, reason, kind, kept }
    if o.fatal_on_reject then return "cannot keep record " .. p end
  end
  if o.stop_after then
    function s:stopping(outstanding)
      self.calls[#self.calls + 1] = outstanding
      if self.i >= o.stop_after then return "enough" end
    end
  end
  return s
end

local function run_source(src, o)
  o = o or {}
  local c = clock()
  local pool = fake_pool()
  local l = assert(ledger_mod.new { input = "scripted", reject_file = o.reject_file })
  local s = sender_mod.new { pool = pool, url = "u", pacer = pacer.new { now = c.now }, ledger = l,
    now = c.now, sleep = c.sleep, concurrency = 2 }
  local result = pipeline.run { source = src, encoder = encoder, ledger = l, sender = s, input = "scripted",
    max_count = o.max_count or 2, max_outstanding = 3, now = c.now, map = o.map }
  l:close()
  return result, l, pool
end

-- positions covered by a list of {first, last} ranges, sorted
local function covered(ranges)
  local out = {}
  for _, r in ipairs(ranges) do for p = r[1], r[2] do out[#out + 1] = p end end
  table.sort(out)
  return out
end

describe("the pipeline over a source", function()
  it("settles every position exactly once and commits after the reject entries are written", function()
    local rf = path()
    local src = scripted({ '{"n":1}', '{"n":2,"bad":true}', "AGAIN", '{"n":3}', '{"unreadable":1}', "AGAIN",
                           '{"n":5}' }, { reject_file = rf })
    local result, l = run_source(src, { reject_file = rf })
    assert.same({ accepted = 3, rejected = 2, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
    assert.equal(5, result.read)
    assert.same({ 1, 2, 3, 4, 5 }, covered(src.settled))
    -- the last commit saw both reject entries on disk
    local rejects = files.json_lines(rf)
    assert.equal(2, #rejects)
    assert.equal(#files.read(rf), src.commits[#src.commits])
    -- reject entries name the source's place of each record
    assert.same({ "scripted@2", "scripted@4" }, { rejects[1].input, rejects[2].input })
    assert.same({ { 2, "HTTP 400: bad record", "rejected", true }, { 4, "unreadable", "rejected", true } },
      { src.rejects[1], src.rejects[2] })
  end)

  it("sends what it holds when the source has nothing yet, instead of waiting for a full batch", function()
    local src = scripted({ '{"n":1}', "AGAIN", '{"n":2}', '{"n":3}' })
    local _, _, pool = run_source(src, { max_count = 5 })
    assert.equal(2, #pool.submitted)
    assert.equal(1, #cjson.decode(pool.submitted[1].body).messages)
  end)

  it("counts records a source marks as replays as possibly duplicated when accepted", function()
    local src = scripted({ '{"n":1}', { dup = '{"n":2}' }, { dup = '{"n":3}' }, '{"n":4}' })
    local _, l, pool = run_source(src, { max_count = 5 })
    assert.same({ accepted = 4, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 2 }, l.counts)
    -- replays travel in batches of their own
    assert.equal(3, #pool.submitted)
  end)

  it("stops taking records when the source says so, and answers what is in flight", function()
    local src = scripted({ '{"n":1}', '{"n":2}', "AGAIN", '{"n":3}', "AGAIN", '{"n":4}' }, { stop_after = 3 })
    local result, l = run_source(src)
    assert.equal("enough", result.stop)
    assert.equal(2, result.read)
    assert.same({ accepted = 2, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
    assert.same({ 1, 2 }, covered(src.settled))
    assert.is_nil(result.fatal)
  end)

  it("stops the run when the source cannot keep a rejected record", function()
    local src = scripted({ '{"n":1}', '{"unreadable":1}', '{"n":3}', '{"n":4}', '{"n":5}' }, { fatal_on_reject = true })
    local result = run_source(src)
    assert.equal("cannot keep record 2", result.fatal)
    assert.equal("fatal", result.stop)
    assert.equal(2, result.read)
  end)

  it("stops the run, naming the record's place, when a mapping calls os.exit", function()
    local mapping = require "aep.stream.mapping"
    local f = files.write(path(".lua"), "return function(r) if r.n == 2 then os.exit(3) end return r end")
    local src = scripted({ '{"n":1}', '{"n":2}', '{"n":3}' })
    local result, l = run_source(src, { map = assert(mapping.load(f)) })
    assert.matches("called os.exit(3) at record 2 (scripted@2)", result.fatal, 1, true)
    assert.same({ accepted = 1, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
  end)
end)

describe("the mapping guards, for any source", function()
  it("rejects a record whose mapping call runs past --mapping-timeout, and keeps going", function()
    local mapping = require "aep.stream.mapping"
    local f = files.write(path(".lua"), "return function(r) while r.spin do end return r end")
    local rf = path()
    local src = scripted({ '{"n":1}', '{"n":2,"spin":true}', '{"n":3}' }, { reject_file = rf })
    local result, l = run_source(src, { map = assert(mapping.load(f, { timeout_ms = 50 })), reject_file = rf })
    assert.is_nil(result.fatal)
    assert.same({ accepted = 2, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
    local e = files.json_lines(rf)[1]
    assert.same({ 2, "scripted@2", "mapping exceeded 50 ms" }, { e.position, e.input, e.reason })
  end)
end)

describe("aep stream --from", function()
  local function usage_error(args)
    local r = run.aep(args)
    assert.equal(64, r.status, r.stderr)
    return (r.stderr:match("^aep stream: ([^\n]*)"))
  end

  it("refuses an unknown source and another source's flags", function()
    assert.equal("--from takes 'file' or 'kafka', got 'nope'", usage_error({ "stream", "--from", "nope", "-d", "x" }))
    assert.equal("--brokers needs --from kafka", usage_error({ "stream", "-i", "x.jsonl", "-d", "x", "--brokers", "b:9092" }))
    assert.equal("--topic needs --from kafka", usage_error({ "stream", "-i", "x.jsonl", "-d", "x", "--topic", "t" }))
    assert.equal("--from kafka reads no input file (drop --input)",
      usage_error({ "stream", "--from", "kafka", "-i", "x.jsonl", "-d", "x" }))
    assert.equal("--brokers needs --from kafka", usage_error({ "stream", "--brokers", "b:9092" }))
    assert.equal("--from kafka keeps its progress in the group's committed offsets (drop --checkpoint)",
      usage_error({ "stream", "--from", "kafka", "--checkpoint", "c.json" }))
    assert.equal("--format needs --from file", usage_error({ "stream", "--from", "kafka", "--brokers", "b:9092",
      "--topic", "t", "--group", "g", "-d", "x", "--format", "csv" }))
  end)

  it("checks the shared flags for every source: --mapping-timeout with Kafka", function()
    assert.equal("--mapping-timeout must be 0 or more", usage_error({ "stream", "--from", "kafka", "--brokers",
      "b:9092", "--topic", "t", "--group", "g", "-d", "x", "--mapping-timeout", "-1" }))
  end)

  it("lists each source's flags under the source in --help", function()
    local text = run.aep({ "stream", "--help" }).stdout
    local file_at = assert(text:find("\nFlags of --from file (the default), ", 1, true))
    local kafka_at = assert(text:find("\nFlags of --from kafka, ", 1, true))
    assert.truthy(text:find("\n  -i, --input FILE ", file_at, true) < kafka_at)
    assert.truthy(text:find("\n  --brokers HOST:PORT,... ", kafka_at, true))
    assert.truthy(text:find("\n  --from SOURCE                where records come from: file (default) or kafka\n", 1, true))
  end)

  it("completes each source's flags in bash", function()
    local bindir = run.tmpdir()
    assert(os.execute("ln -s " .. run.quote(run.bin) .. " " .. run.quote(bindir .. "/aep")))
    local script = "source share/aep.bash-completion; COMP_WORDS=(aep stream --bro); COMP_CWORD=2; _aep; " ..
      "printf '%s\\n' \"${COMPREPLY[@]}\"; COMP_WORDS=(aep stream --csv-max-l); _aep; printf '%s\\n' \"${COMPREPLY[@]}\""
    local r = run.cmd({ "bash", "-c", script }, { env = { PATH = bindir .. ":/usr/bin:/bin" } })
    os.execute("rm -rf " .. run.quote(bindir))
    assert.equal(0, r.status, r.stderr)
    assert.equal("--brokers\n--csv-max-lines\n", r.stdout)
  end)
end)
