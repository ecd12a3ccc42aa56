-- aep stream --to edge: records as Edge Network Server API events (POST /ee/v2/collect, several
-- events a request) into the emulator's Edge Network, through the same sender, accounting and
-- report as the streaming path; the datastream made by `aep run web` and removed by teardown.
local json = require "aep.json"
local cjson = require "cjson"
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"

local emu, api, ids, dir

local EVENTS = "data/AEP_loyalty_events.json"
local MAPPING = "mappings/loyalty_event.lua"

-- a fresh event dataset and a datastream to it, so each test's records are its own
local n = 0
local function fresh_datastream()
  n = n + 1
  local dataset = fixtures.dataset(api, "edge spec " .. n .. " " .. os.time(), ids.event_schema)
  local s, b = api:post("/emulator/datastreams", { name = "edge spec " .. n, eventDataset = dataset }, { auth = false })
  assert.are.equal(201, s, json.encode(b))
  return b.id, dataset
end

local function stream(args)
  local argv = { "stream", "--env", emu.env_file, "--to", "edge" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return run.aep(argv)
end

-- the dataset's records once `want` of them (of status) are there (bounded: 200 polls)
local function drain(dataset, want, status)
  local got
  for _ = 1, 200 do
    got = fixtures.records(api, dataset, "?limit=5000" .. (status and ("&status=" .. status) or ""))
    if got.count >= want then return got end
    os.execute("sleep 0.05")
  end
  return got
end

local function sample_ids()
  local out = {}
  for line in io.lines(EVENTS) do
    local rec = line:gsub(",%s*$", ""):gsub("^%[", ""):gsub("%]%s*$", "")
    if rec:match("^%s*{") then out[#out + 1] = string.format("%d", cjson.decode(rec)._id) end
  end
  table.sort(out)
  return out
end

local function edge_requests()
  local s, b = api:get("/emulator/requests?since=0&path=/ee/v2/collect&limit=100000", { auth = false })
  assert.are.equal(200, s)
  return b.requests
end

setup(function()
  dir = run.tmpdir()
  emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--seed", "7" }, { dataflow = false })
end)

teardown(function()
  if emu then emu.stop(); emu.cleanup() end
  if dir then os.execute("rm -rf " .. run.quote(dir)) end
end)

describe("aep stream --to edge", function()
  before_each(function() emu.faults("", 7) end)

  it("sends the sample events in one batched request; they land in the datastream's dataset", function()
    local ds, dataset = fresh_datastream()
    local before = #edge_requests()
    local r = stream({ "--datastream", ds, "-i", EVENTS, "-m", MAPPING, "--report", dir .. "/edge.json" })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("%-> dataset " .. dataset .. " via http://127.0.0.1:%d+/ee/v2/collect%?dataStreamId=" .. ds:gsub("%-", "%%-"), r.stdout .. r.stderr)
    assert.matches("accepted 20   rejected 0   skipped 0   failed 0", r.stdout, 1, true)
    local reqs = edge_requests()
    assert.are.equal(before + 1, #reqs)
    assert.are.equal(202, reqs[#reqs].status)
    local got = drain(dataset, 20, "success")
    assert.are.equal(20, got.count)
    local stored = {}
    for i, rec in ipairs(got.records) do stored[i] = rec.entity._id end
    table.sort(stored)
    assert.are.same(sample_ids(), stored)
    -- the Edge Network gives every event an ECID in identityMap
    assert.matches("^%d+$", got.records[1].entity.identityMap.ECID[1].id)
    local report = json.decode(files.read(dir .. "/edge.json"))
    assert.are.equal(20, report.accepted)
    assert.are.equal(1, report.requests)
  end)

  it("accepts an invalid event as the Edge Network does; it lands in the failed batch with its violation", function()
    local ds, dataset = fresh_datastream()
    local input = files.write(dir .. "/invalid.jsonl",
      '{"_exchangeinternal":{"loyaltyID":"ok@example.com","pointsEarned":5,"loyaltyLevel":"Gold"},"eventType":"loyaltyBalanceUpdate","_id":1,"timestamp":"2020-03-03T06:34:55Z"}\n' ..
      '{"_exchangeinternal":{"loyaltyID":"bad@example.com","pointsEarned":5,"loyaltyLevel":"Wood"},"eventType":"loyaltyLevelUpdate","_id":2,"timestamp":"2020-03-03T06:34:55Z"}\n')
    local r = stream({ "--datastream", ds, "-i", input, "-m", MAPPING })
    -- accepted on the wire; the follow-through then finds the failed one (exit 2)
    assert.are.equal(2, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 2   rejected 0", r.stdout, 1, true)
    assert.matches("after acceptance: ingested 1   failed 1   unknown 0", r.stdout, 1, true)
    assert.matches("record 2: INGEST-1201-400 Wood is not a valid enum value", r.stdout, 1, true)
    local failed = drain(dataset, 1, "failed")
    assert.are.equal(1, failed.count)
    assert.are.equal("2", failed.records[1].entity._id)
    assert.matches("Wood", json.encode(failed.records[1].errors))
    local batch = fixtures.final_batch(api, failed.records[1].batchId)
    assert.are.equal("failed", batch.status)
    assert.are.equal(1, batch.failedRecordCount)
    local ok = drain(dataset, 1, "success")
    assert.are.equal(1, ok.count)
    assert.are.equal("1", ok.records[1].entity._id)
  end)

  it("fails every record of an unknown datastream with the Edge Network's EXEG-0003-400 and stops", function()
    local r = stream({ "--datastream", "bogus", "--dataset", ids.event_dataset, "-i", EVENTS, "-m", MAPPING,
                       "--reject-file", dir .. "/rejects.jsonl" })
    assert.are.equal(1, r.status, r.stdout .. r.stderr)
    local msg = "HTTP 400 EXEG-0003-400 Invalid datastream ID: The referenced Config 'bogus:prod' doesn't exist. " ..
      "Update the reference and try again."
    assert.matches(msg, r.stderr, 1, true)
    assert.matches("failed 20", r.stdout, 1, true)
    local rejects = files.json_lines(dir .. "/rejects.jsonl")
    assert.are.equal(20, #rejects)
    assert.are.equal(msg, rejects[1].reason)
  end)

  it("retries 503s and stores each record once", function()
    local ds, dataset = fresh_datastream()
    local lines = {}
    for i = 1, 200 do
      lines[i] = cjson.encode({ _exchangeinternal = { loyaltyID = "m" .. i .. "@example.com", pointsEarned = i,
        loyaltyLevel = "Gold" }, eventType = "loyaltyBalanceUpdate", _id = 1000 + i, timestamp = "2020-03-03T06:34:55Z" })
    end
    local input = files.write(dir .. "/many.jsonl", table.concat(lines, "\n") .. "\n")
    emu.faults("edge:503=0.2", 7)
    local r = stream({ "--datastream", ds, "-i", input, "-m", MAPPING, "--batch-size", "10",
                       "--report", dir .. "/retry.json" })
    emu.faults("", 7)
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 200   rejected 0   skipped 0   failed 0", r.stdout, 1, true)
    local report = json.decode(files.read(dir .. "/retry.json"))
    assert.is_true(report.retries > 0)
    assert.are.equal(report.retries, report.statuses["503"])
    local got = drain(dataset, 200, "success")
    assert.are.equal(200, got.count)
    local seen = {}
    for _, rec in ipairs(got.records) do
      assert.is_nil(seen[rec.entity._id])
      seen[rec.entity._id] = true
    end
  end)

  it("refuses --datastream without --to edge, and --to edge without --datastream", function()
    local r = run.aep({ "stream", "--env", emu.env_file, "--datastream", "x", "-i", EVENTS })
    assert.are.equal(64, r.status)
    assert.matches("--datastream needs --to edge", r.stderr, 1, true)
    r = stream({ "-i", EVENTS })
    assert.are.equal(64, r.status)
    assert.matches("--to edge needs --datastream ID", r.stderr, 1, true)
  end)
end)

describe("aep run web", function()
  it("creates a datastream for the events dataset, records it, and teardown removes it", function()
    local manifest = dir .. "/web-manifest.json"
    local base = { "--env", emu.env_file, "--manifest", manifest, "--run-name", "edgespec" }
    local r = run.aep({ "run", "auth", "schemas", "datasets", "web", table.unpack(base) })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    local m = json.decode(files.read(manifest))
    local ds = m.variables.DATASTREAM_ID
    assert.is_string(ds)
    local s, b = api:get("/emulator/datastreams/" .. ds, { auth = false })
    assert.are.equal(200, s)
    assert.are.equal(m.variables.DATASET_ID_EVENT, b.eventDataset)
    assert.are.equal("edgespec Loyalty website", b.name)
    -- a second run finds it
    r = run.aep({ "run", "web", table.unpack(base) })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.are.equal(ds, json.decode(files.read(manifest)).variables.DATASTREAM_ID)
    -- the manifest variable works as --datastream
    r = run.aep({ "stream", "--env", emu.env_file, "--to", "edge", "--datastream", "DATASTREAM_ID",
                  "--manifest", manifest, "-i", EVENTS, "-m", MAPPING })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 20", r.stdout, 1, true)
    r = run.aep({ "run", "teardown", table.unpack(base) })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("deleted%s+datastream%s+edgespec Loyalty website", r.stdout)
    s = api:get("/emulator/datastreams/" .. ds, { auth = false })
    assert.are.equal(404, s)
  end)
end)

-- The Edge Network's own answers through the sender (a fake pool: no emulator sends a 422 for a
-- mapped record, whose entity is always an object).
describe("the edge target's answers", function()
  local batcher = require "aep.stream.batcher"
  local edge = require "aep.stream.edge_target"

  local function make(responder)
    local pool = { submitted = {}, queue = {} }
    function pool:submit(req, ctx)
      self.submitted[#self.submitted + 1] = req
      self.queue[#self.queue + 1] = { req = req, ctx = ctx }
    end
    function pool:wait()
      local out = {}
      for _, q in ipairs(self.queue) do out[#out + 1] = { context = q.ctx, response = responder(q.req) } end
      self.queue = {}
      return out
    end
    local l = assert(require("aep.stream.ledger").new { input = "in" })
    local rejects = {}
    local t = 0
    local s = require("aep.stream.sender").new {
      pool = pool, url = "http://x/ee/v2/collect?dataStreamId=d", ledger = l,
      pacer = require("aep.stream.pacer").new { now = function() return t end },
      now = function() return t end, sleep = function(d) t = t + d end, random = function() return 0.5 end,
      frame = edge.frame, on_status = edge.on_status,
      on_reject = function(b, i, status, reason, kind)
        b.span:reject("x", kind)
        rejects[#rejects + 1] = { pos = b.pos[i], status = status, reason = reason, kind = kind }
      end,
    }
    local b = batcher.empty()
    for i = 1, 3 do batcher.append(b, edge.encoder('{"i":' .. i .. "}"), i, i, "{}") end
    b.span = l:new_span(1)
    l:close_span(b.span, 3, 1)
    s:submit(b)
    for _ = 1, 100 do
      if s:outstanding() == 0 then break end
      s:pump(true)
    end
    return pool, l, rejects
  end

  it("frames events as {events: [{xdm}]}; a 422 naming an event rejects it with the report, the rest go again", function()
    local pool, l, rejects = make(function(req)
      local doc = cjson.decode(req.body)
      if #doc.events == 3 then
        return { status = 422, headers = {}, body = cjson.encode {
          type = "https://ns.adobe.com/aep/errors/EXEG-0104-422", status = 422, title = "Unprocessable entity",
          detail = "Invalid request (report attached). Please check your input and try again.",
          report = { errors = { "Event at index 1 has no xdm object" }, requestId = "r" } } }
      end
      return { status = 202, headers = {}, body = '{"requestId":"r2"}' }
    end)
    assert.are.equal(2, #pool.submitted)
    assert.are.same({ events = { { xdm = { i = 1 } }, { xdm = { i = 2 } }, { xdm = { i = 3 } } } },
      cjson.decode(pool.submitted[1].body))
    assert.are.same({ events = { { xdm = { i = 1 } }, { xdm = { i = 3 } } } }, cjson.decode(pool.submitted[2].body))
    assert.are.same({ { pos = 2, status = 422, kind = "rejected",
      reason = "HTTP 422 EXEG-0104-422 Unprocessable entity: Invalid request (report attached). Please check " ..
        "your input and try again. (Event at index 1 has no xdm object)" } }, rejects)
    assert.are.same({ accepted = 2, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
  end)
end)
