-- aep stream's pipeline end to end over a scripted pool (no emulator): the one loop, its spans,
-- rejects and outcomes. Time is a fake clock: nothing here waits. The parts alone:
-- stream_units_spec.lua.
local pacer = require "aep.stream.pacer"
local ledger_mod = require "aep.stream.ledger"
local sender_mod = require "aep.stream.sender"
local pipeline = require "aep.stream.pipeline"
local readers = require "aep.stream.readers"
local cjson = require "cjson"
local fakes = require "tests.lua.support.stream_fakes"
local path, write, read, read_lines = fakes.path, fakes.write, fakes.read, fakes.read_lines
local clock, fake_pool, messages_of, ok207, encoder = fakes.clock, fakes.fake_pool, fakes.messages_of, fakes.ok207, fakes.encoder

describe("pipeline", function()
  local function run_pipeline(input_text, ext, o)
    o = o or {}
    local input = write(input_text, ext)
    local c = clock()
    local pool = fake_pool(o.responder or ok207)
    local rf = path(".jsonl")
    local l = assert(ledger_mod.new { input = input, reject_file = rf, checkpoint = o.checkpoint })
    local s = sender_mod.new { pool = pool, url = "u", pacer = pacer.new { now = c.now }, ledger = l,
      now = c.now, sleep = c.sleep, concurrency = 2 }
    local reader = assert(readers.open(input))
    local result = pipeline.run { source = reader, map = o.map, encoder = encoder, ledger = l, sender = s,
      input = input, max_bytes = o.max_bytes or 1000000, max_count = o.max_count or 3, max_outstanding = 3 }
    l:save(true)
    l:close()
    return { result = result, counts = l.counts, rejects = read_lines(rf), pool = pool, ledger = l }
  end

  it("accounts for every record: accepted, rejected with reasons, skipped; counts add up", function()
    local text = table.concat({
      '{"n":1}', '{"n":2,"skip":true}', '{"n":', '{"n":4,"boom":true}', '{"n":5}', '{"n":6,"big":true}',
      '{"n":7}', '{"n":8}', '{"n":9}',
    }, "\n") .. "\n"
    local out = run_pipeline(text, ".jsonl", {
      max_bytes = 200,
      map = function(rec, ctx)
        if rec.skip then return nil end
        if rec.boom then error("no loyalty id in record " .. ctx.position, 0) end
        if rec.big then return { pad = string.rep("x", 300) } end
        return { id = rec.n, line = ctx.line }
      end,
    })
    local c = out.counts
    assert.same({ accepted = 5, rejected = 3, skipped = 1, failed = 0, possibly_duplicated = 0 }, c)
    assert.equal(9, c.accepted + c.rejected + c.skipped + c.failed)
    assert.equal(9, out.ledger.prefix)
    local reasons = {}
    for _, e in ipairs(out.rejects) do reasons[e.position] = e.reason end
    assert.equal("invalid JSON at line 3: Expected value but found T_END at character 6", reasons[3])
    assert.equal("mapping error: no loyalty id in record 4", reasons[4])
    assert.matches("^the message is %d+ bytes: over AEP's 1 MB request limit", reasons[6])
    local e6
    for _, e in ipairs(out.rejects) do if e.position == 6 then e6 = e end end
    assert.same({ n = 6, big = true }, e6.record)
    assert.equal(string.rep("x", 300), e6.entity.pad)
    assert.equal(1, e6.aep_reject)
    -- the requests carried the mapped entities, in order
    local sent = {}
    for _, req in ipairs(out.pool.submitted) do
      for _, m in ipairs(messages_of(req)) do sent[#sent + 1] = m.body.xdmEntity.id end
    end
    assert.same({ 1, 5, 7, 8, 9 }, sent)
  end)

  it("sends records as they are without a mapping, and writes AEP's rejects with the entity", function()
    local out = run_pipeline('{"a":1}\n{"a":2}\n', ".jsonl", { responder = function()
      return { status = 207, headers = {}, body = cjson.encode({ responses = {
        { xactionId = "1" }, { statusCode = 400, message = "Message has unknown xdm format" } } }) }
    end })
    assert.same({ accepted = 1, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 0 }, out.counts)
    assert.equal('{"messages":[' .. encoder('{"a":1}') .. "," .. encoder('{"a":2}') .. "]}", out.pool.submitted[1].body)
    local e = out.rejects[1]
    assert.same({ 2, 2, 400, "HTTP 400: Message has unknown xdm format" }, { e.position, e.line, e.status, e.reason })
    assert.same({ a = 2 }, e.record)
    assert.same({ a = 2 }, e.entity)
  end)

  it("sends a CSV row without a mapping as a JSON object of its fields", function()
    local out = run_pipeline('a,b\n1,"x,y"\n', ".csv")
    assert.same({ a = "1", b = "x,y" }, messages_of(out.pool.submitted[1])[1].body.xdmEntity)
    assert.equal(1, out.counts.accepted)
  end)

  it("keeps a record's empty arrays empty arrays through a mapping", function()
    local out = run_pipeline('{"ids":[],"o":{}}\n{"ids":[1]}\n', ".jsonl", { map = function(rec) return { ids = rec.ids, o = rec.o } end })
    local body = out.pool.submitted[1].body
    assert.matches('"ids":[]', body, 1, true)
    assert.matches('"o":{}', body, 1, true)
    assert.matches('"ids":[1]', body, 1, true)
  end)

  it("resumes from a checkpoint without sending what was settled", function()
    local recs = {}
    for i = 1, 10 do recs[i] = '{"n":' .. i .. "}" end
    local text = table.concat(recs, "\n") .. "\n"
    local cp = path(".json")
    -- a first run that "dies" after two batches: the third and later are never answered
    local input = write(text, ".jsonl")
    local c = clock()
    local answered = 0
    local pool = fake_pool(function(req)
      answered = answered + 1
      if answered > 2 then error("killed", 0) end
      return ok207(req)
    end)
    local l = assert(ledger_mod.new { input = input, checkpoint = cp })
    local s = sender_mod.new { pool = pool, url = "u", pacer = pacer.new { now = c.now }, ledger = l,
      now = c.now, sleep = c.sleep, concurrency = 1 }
    local ok = pcall(pipeline.run, { source = assert(readers.open(input)), encoder = encoder, ledger = l,
      sender = s, input = input, max_count = 3, max_outstanding = 2 })
    assert.is_false(ok)
    local doc = cjson.decode(read(cp))
    assert.equal(6, doc.prefix)
    assert.same({ { 7, 9 } }, doc.inflight)

    -- the same command again
    local pool2 = fake_pool(ok207)
    local l2 = assert(ledger_mod.new { input = input, checkpoint = cp })
    local s2 = sender_mod.new { pool = pool2, url = "u", pacer = pacer.new { now = c.now }, ledger = l2,
      now = c.now, sleep = c.sleep, concurrency = 1 }
    local result = pipeline.run { source = assert(readers.open(input)), encoder = encoder, ledger = l2,
      sender = s2, input = input, max_count = 3, max_outstanding = 2 }
    l2:save(true)
    assert.equal(6, result.resumed_records)
    local sent = {}
    for _, req in ipairs(pool2.submitted) do
      for _, m in ipairs(messages_of(req)) do sent[#sent + 1] = m.body.xdmEntity.n end
    end
    assert.same({ 7, 8, 9, 10 }, sent)
    assert.same({ accepted = 10, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 3 }, l2.counts)
    assert.is_true(cjson.decode(read(cp)).complete)
  end)
end)
