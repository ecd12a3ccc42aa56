-- aep stream parts that need no emulator: batcher, pacer, ledger + checkpoint, sender (over a
-- scripted pool: 207 shapes, 413 splits, retries, possibly-duplicated accounting, fatal answers),
-- and the pipeline end to end over that pool (stream_pipeline_units_spec.lua). Time is a fake
-- clock: nothing here waits.
local batcher = require "aep.stream.batcher"
local pacer = require "aep.stream.pacer"
local ledger_mod = require "aep.stream.ledger"
local sender_mod = require "aep.stream.sender"
local cjson = require "cjson"

local fakes = require "tests.lua.support.stream_fakes"
local path, write, read, read_lines = fakes.path, fakes.write, fakes.read, fakes.read_lines
local clock, fake_pool, messages_of, ok207, encoder = fakes.clock, fakes.fake_pool, fakes.messages_of, fakes.ok207, fakes.encoder

describe("batcher", function()
  it("closes a batch when the next message would pass max_bytes, and at max_count", function()
    local b = batcher.new { max_bytes = batcher.OVERHEAD + 10, max_count = 3 }
    assert.is_nil(b:add(1, 1, "aaaa", "o1"))          -- 4 bytes
    assert.is_nil(b:add(2, 2, "bbbbb", "o2"))         -- 4 + 1 + 5 = 10: still fits
    local full = b:add(3, 3, "c", "o3")               -- would be 12: the first batch closes
    assert.same({ "aaaa", "bbbbb" }, full.msgs)
    assert.same({ 1, 2 }, full.pos)
    assert.equal(batcher.OVERHEAD + 10, full.bytes)
    assert.equal(#batcher.body(full), full.bytes)
    assert.is_nil(b:add(4, 4, "d", "o4"))
    full = b:add(5, 5, "e", "o5")                     -- third message: max_count
    assert.same({ "c", "d", "e" }, full.msgs)
    assert.is_nil(b:flush())
  end)

  it("with max_count 1 returns both batches when a message also closes the previous one", function()
    local b = batcher.new { max_bytes = 100, max_count = 1 }
    local one = b:add(1, 1, "m1", "o")
    assert.same({ "m1" }, one.msgs)
    assert.equal('{"messages":[m1]}', batcher.body(one))
  end)

  it("slices and picks", function()
    local b = batcher.new { max_bytes = 1000, max_count = 10 }
    for i = 1, 5 do b:add(i, i, "m" .. i, "o" .. i) end
    local all = b:flush()
    local s = batcher.slice(all, 2, 3)
    assert.same({ "m2", "m3" }, s.msgs)
    assert.same({ 2, 3 }, s.pos)
    assert.equal(#batcher.body(s), s.bytes)
    local p = batcher.pick(all, { 1, 5 })
    assert.same({ "o1", "o5" }, p.origs)
    assert.equal(#batcher.body(p), p.bytes)
  end)
end)

describe("pacer", function()
  it("spaces requests at the request rate", function()
    local c = clock()
    local p = pacer.new { requests = 10, now = c.now }
    local sent = {}
    while #sent < 25 do
      local w = p:reserve(1)
      if w == 0 then sent[#sent + 1] = c.t else c.sleep(w) end
    end
    -- any 1-second window holds at most 10 + 1 requests
    for i = 1, #sent do
      local k = 0
      for j = i, #sent do if sent[j] < sent[i] + 1 then k = k + 1 end end
      assert.is_true(k <= 11)
    end
    assert.near(2.4, sent[25] - sent[1], 1e-9)
  end)

  it("charges messages: 500-message batches at 1,000 messages/s go every half second", function()
    local c = clock()
    local p = pacer.new { requests = 1000, messages = 1000, now = c.now }
    local sent = {}
    while #sent < 5 do
      local w = p:reserve(500)
      if w == 0 then sent[#sent + 1] = c.t else c.sleep(w) end
    end
    for i = 2, 5 do assert.near(0.5, sent[i] - sent[i - 1], 1e-9) end
  end)

  it("is unlimited without rates", function()
    local p = pacer.new { requests = math.huge, now = function() return 0 end }
    for _ = 1, 1000 do assert.equal(0, p:reserve(100)) end
    assert.equal("unlimited", p:describe())
  end)
end)

describe("ledger", function()
  local function entry(pos, reason)
    return ledger_mod.reject_entry { position = pos, line = pos, input = "in.jsonl", reason = reason, record = '{"p":' .. pos .. "}" }
  end

  it("keeps the done prefix and the done ranges beyond it as spans finish out of order", function()
    local l = assert(ledger_mod.new { input = "in.jsonl" })
    local s1, s2, s3 = l:new_span(1), l:new_span(11), l:new_span(21)
    l:close_span(s1, 10, 1)
    l:close_span(s2, 20, 1)
    l:close_span(s3, 30, 1)
    s3:accept(10)
    l:part_done(s3)
    assert.equal(0, l.prefix)
    assert.same({ { 21, 30 } }, l.done)
    s1:accept(9)
    s1:skip()
    l:part_done(s1)
    assert.equal(10, l.prefix)
    s2:accept(8)
    s2:reject(entry(15, "no"), "rejected")
    s2:reject(entry(16, "gone"), "failed")
    l:part_done(s2)
    assert.equal(30, l.prefix)
    assert.same({}, l.done)
    assert.same({ accepted = 27, rejected = 1, skipped = 1, failed = 1, possibly_duplicated = 0 }, l.counts)
    assert.equal(30, l:total())
  end)

  it("writes rejects when their span is done, and a checkpoint that resumes", function()
    local cp, rf = path(".json"), path(".jsonl")
    local l = assert(ledger_mod.new { input = "in.jsonl", checkpoint = cp, reject_file = rf, dataset = "ds" })
    local s1, s2, s3 = l:new_span(1), l:new_span(6), l:new_span(11)
    l:close_span(s1, 5, 1)
    l:close_span(s2, 10, 1)
    l:close_span(s3, 15, 1)
    assert.is_true(l:mark_sent(s1))  -- declares every closed span as leaving, in one write
    for _, s in ipairs({ s1, s2, s3 }) do assert.is_false(l:mark_sent(s)) end
    local s4 = l:new_span(16)
    l:close_span(s4, 20, 1)  -- closed later, never sent: not in flight
    s1:reject(entry(2, "first"), "rejected")
    s1:accept(4)
    l:part_done(s1)
    s3:accept(5, true)
    l:part_done(s3)
    l:save()
    -- s2 never finishes: "kill -9"
    s2:reject(entry(7, "never written"), "rejected")
    local doc = cjson.decode(read(cp))
    assert.equal(ledger_mod.FORMAT, doc.format)
    assert.equal(5, doc.prefix)
    assert.same({ { 11, 15 } }, doc.done)
    assert.same({ { 6, 10 } }, doc.inflight)
    assert.same({ accepted = 9, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 5 }, doc.counts)
    assert.equal(#read(rf), doc.reject_offset)
    -- a reject line written after the checkpoint (the crash came before the next one)
    local f = assert(io.open(rf, "ab"))
    f:write(entry(8, "after the checkpoint"))
    f:close()

    local r = assert(ledger_mod.new { input = "in.jsonl", checkpoint = cp, reject_file = rf, dataset = "ds" })
    assert.is_true(r.resumed)
    local st = {}
    for pos = 1, 17 do st[pos] = r:status(pos) or "new" end
    assert.same({ "done", "done", "done", "done", "done", "redo", "redo", "redo", "redo", "redo",
                  "done", "done", "done", "done", "done", "new", "new" }, st)
    assert.is_nil(r:status(18))
    assert.equal(1, #read_lines(rf)) -- cut back to what the checkpoint counted
    assert.equal("first", read_lines(rf)[1].reason)
    local s = r:new_span(6)
    r:close_span(s, 10, 1)
    s:accept(5, true)
    r:part_done(s)
    assert.equal(15, r.prefix)
    assert.same({ accepted = 14, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 10 }, r.counts)
  end)

  it("refuses a checkpoint of another input or dataset", function()
    local cp = path(".json")
    local l = assert(ledger_mod.new { input = "a.jsonl", checkpoint = cp, dataset = "ds" })
    l:save(true)
    local r, err = ledger_mod.new { input = "b.jsonl", checkpoint = cp, dataset = "ds" }
    assert.is_nil(r)
    assert.equal("checkpoint " .. cp .. " belongs to another input (a.jsonl, not b.jsonl): use another --checkpoint file", err)
    r, err = ledger_mod.new { input = "a.jsonl", checkpoint = cp, dataset = "other" }
    assert.is_nil(r)
    assert.matches("belongs to another dataset", err)
  end)
end)

-- A sender over a fake pool, with a fresh ledger; returns sender, ledger, pool, clock, rejects
local function make_sender(responder, o)
  o = o or {}
  local c = clock()
  local pool = fake_pool(responder)
  local l = assert(ledger_mod.new { input = "in" })
  local rejects = {}
  local s = sender_mod.new {
    pool = pool, url = "http://x/collection/batch/i", pacer = pacer.new { now = c.now }, ledger = l,
    now = c.now, sleep = c.sleep, random = function() return 0.5 end, concurrency = o.concurrency or 4,
    max_attempts = o.max_attempts or 5, sync = o.sync,
    on_reject = function(b, i, status, reason, kind)
      b.span:reject("x", kind)
      rejects[#rejects + 1] = { pos = b.pos[i], status = status, reason = reason, kind = kind }
    end,
  }
  return s, l, pool, c, rejects
end

-- n messages in one batch with its span, submitted
local function submit(s, l, first, n)
  local b = batcher.empty()
  for i = 1, n do
    b.n = i
    b.msgs[i] = encoder('{"i":' .. (first + i - 1) .. "}")
    b.pos[i], b.lines[i], b.origs[i] = first + i - 1, first + i - 1, '{"i":' .. (first + i - 1) .. "}"
    b.bytes = b.bytes + #b.msgs[i] + (i > 1 and 1 or 0)
  end
  local span = l:new_span(first)
  b.span = span
  l:close_span(span, first + n - 1, 1)
  s:submit(b)
  return b
end

local function drain(s)
  local guard = 0
  while s:outstanding() > 0 do
    s:pump(true)
    guard = guard + 1
    assert(guard < 10000, "sender does not settle")
  end
end

describe("sender", function()
  it("takes a 207 message by message: accepted, rejected with AEP's words, 429 entries sent again alone", function()
    local calls = 0
    local s, l, pool, _, rejects = make_sender(function(req)
      calls = calls + 1
      if calls == 1 then
        return { status = 207, headers = {}, body = cjson.encode({ responses = {
          { xactionId = "b:0" },
          { statusCode = 400, message = "inletId: [i] imsOrgId: [o] Message has unknown xdm format" },
          { statusCode = 429, message = "slow down" },
          { xactionId = "b:3" },
        } }) }
      end
      return ok207(req)
    end)
    submit(s, l, 1, 4)
    drain(s)
    assert.equal(2, #pool.submitted)
    assert.equal(1, #messages_of(pool.submitted[2]))
    assert.equal(3, cjson.decode(messages_of(pool.submitted[2])[1].body.xdmEntity.i))
    assert.same({ { pos = 2, status = 400, kind = "rejected",
      reason = "HTTP 400: inletId: [i] imsOrgId: [o] Message has unknown xdm format" } }, rejects)
    assert.same({ accepted = 3, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
    assert.equal(4, l.prefix)
  end)

  it("splits a batch in halves on 413 until it fits; a single message over the limit is rejected", function()
    local s, l, pool, _, rejects = make_sender(function(req)
      local msgs = messages_of(req)
      for _, m in ipairs(msgs) do
        if m.body.xdmEntity.i == 5 then return { status = 413, headers = {}, body = "{}" } end
      end
      if #msgs > 2 then return { status = 413, headers = {}, body = "{}" } end
      return ok207(req)
    end)
    submit(s, l, 1, 8)
    drain(s)
    assert.same({ accepted = 7, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
    assert.same({ { pos = 5, status = 413, kind = "rejected",
      reason = "HTTP 413: the message is larger than AEP's 1 MB request limit" } }, rejects)
    assert.equal(1 + 2 + 4 + 2, #pool.submitted) -- 8 -> 4+4 -> 2+2+2+2 -> (5,6) -> 5 alone + 6 alone
    assert.equal(4, s.stats.splits)
    assert.equal(8, l.prefix)
  end)

  it("honours Retry-After on 429 and 503, never retries 400", function()
    local times, c = {}, nil
    local s, l, pool, clk = make_sender(function(req, n)
      times[#times + 1] = c.t
      if n == 1 then return { status = 429, headers = { ["retry-after"] = "3" }, body = "" } end
      if n == 2 then return { status = 503, headers = {}, body = "" } end
      return ok207(req)
    end)
    c = clk
    submit(s, l, 1, 2)
    drain(s)
    assert.equal(3, #times)
    assert.is_true(times[2] - times[1] >= 3)
    assert.is_true(times[3] - times[2] >= 0.2)  -- backoff of the 2nd attempt: 0.4 s with jitter 0.5
    assert.same({ accepted = 2, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
    assert.equal(2, s.stats.retries)

    local s2, l2, pool2, _, rejects = make_sender(function()
      return { status = 400, headers = {}, body = cjson.encode({ status = 400, title = "Bad Request",
        report = { message = "inletId: [i] Message is invalid" } }) }
    end)
    submit(s2, l2, 1, 3)
    drain(s2)
    assert.equal(1, #pool2.submitted)
    assert.equal(3, l2.counts.rejected)
    assert.equal("HTTP 400: inletId: [i] Message is invalid", rejects[1].reason)
    assert.equal(3, #pool.submitted)
  end)

  it("counts records as possibly duplicated when an earlier attempt may have been delivered", function()
    local s, l = make_sender(function(req, n)
      if n == 1 then return nil, "Operation timed out after 30000 milliseconds", "TIMEOUT" end
      if n == 2 then return nil, "Empty reply from server", "RECV" end
      return ok207(req)
    end)
    submit(s, l, 1, 3)
    drain(s)
    assert.same({ accepted = 3, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 3 }, l.counts)
    assert.equal(2, s.stats.ambiguous)
  end)

  -- a CONNECT after an attempt whose outcome was unknown is no proof the batch was not stored
  it("keeps a batch possibly duplicated after an unknown outcome, whatever later attempts say", function()
    local s, l = make_sender(function(req, n)
      if n == 1 then return nil, "Empty reply from server", "RECV" end
      if n == 2 then return nil, "Failed to connect", "CONNECT" end
      return ok207(req)
    end)
    submit(s, l, 1, 3)
    drain(s)
    assert.same({ accepted = 3, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 3 }, l.counts)
  end)

  -- curl sent the request again by itself (aep.http's resent): the first copy may be stored
  it("counts a batch curl resent as possibly duplicated, accepted or refused on the resend", function()
    local s, l = make_sender(function(req, n)
      if n == 1 then return nil, "Failed to connect", "CONNECT", 1 end
      local resp = ok207(req)
      resp.resent = 0
      return resp
    end)
    submit(s, l, 1, 3)
    drain(s)
    assert.same({ accepted = 3, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 3 }, l.counts)
    assert.same({ 1, 1 }, { s.stats.resent, s.stats.ambiguous })
    local s2, l2 = make_sender(function(req)
      local resp = ok207(req)
      resp.resent = 1
      return resp
    end)
    submit(s2, l2, 1, 2)
    drain(s2)
    assert.same({ accepted = 2, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 2 }, l2.counts)
  end)

  it("retries a connection failure as a clean retry", function()
    local s, l = make_sender(function(req, n)
      if n == 1 then return nil, "Failed to connect", "CONNECT" end
      return ok207(req)
    end)
    submit(s, l, 1, 3)
    drain(s)
    assert.same({ accepted = 3, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
  end)

  it("fails the records when the attempts are spent, saying an earlier one may have landed", function()
    local s, l, pool, _, rejects = make_sender(function(_, n)
      if n == 1 then return { status = 504, headers = {}, body = "" } end
      return { status = 503, headers = {}, body = "" }
    end, { max_attempts = 4 })
    submit(s, l, 1, 2)
    drain(s)
    assert.equal(4, #pool.submitted)
    assert.same({ accepted = 0, rejected = 0, skipped = 0, failed = 2, possibly_duplicated = 0 }, l.counts)
    assert.equal("failed after 4 attempts: HTTP 503 (an earlier attempt may have been delivered)", rejects[1].reason)
    assert.equal("failed", rejects[1].kind)
  end)

  it("stops on 404 (no such inlet): the queued batches fail unsent", function()
    local s, l, pool, _, rejects = make_sender(function()
      return { status = 404, headers = {}, body = cjson.encode({ title = "Not Found", detail = "inlet x not found" }) }
    end, { concurrency = 1 })
    submit(s, l, 1, 2)
    submit(s, l, 3, 2)
    drain(s)
    assert.equal(1, #pool.submitted)
    assert.equal("HTTP 404: inlet x not found", s.fatal)
    assert.same({ accepted = 0, rejected = 0, skipped = 0, failed = 4, possibly_duplicated = 0 }, l.counts)
    assert.equal("not sent: HTTP 404: inlet x not found", rejects[4].reason)
  end)

  it("gets a fresh token once for every request that carried an expired one, then goes on", function()
    local tokens, invalidations = 0, 0
    local auth = {
      token = function() tokens = tokens + 1; return "tok" .. tokens end,
      invalidate = function() invalidations = invalidations + 1 end,
    }
    local s, l, pool = make_sender(function(req)
      if req.headers.Authorization == "Bearer tok1" then return { status = 401, headers = {}, body = "{}" } end
      return ok207(req)
    end, { concurrency = 3 })
    s.auth = auth
    submit(s, l, 1, 2)
    submit(s, l, 3, 2)
    submit(s, l, 5, 2)
    drain(s)
    assert.same({ accepted = 6, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
    assert.equal(1, invalidations)
    assert.equal(2, tokens)
    assert.equal(6, #pool.submitted)
  end)

  it("stops when a fresh token is refused too, and settles what comes back afterwards", function()
    local s, l, pool, _, rejects = make_sender(function()
      return { status = 401, headers = {}, body = cjson.encode({ report = { message = "Ims service token is empty" } }) }
    end, { concurrency = 3 })
    submit(s, l, 1, 2)
    submit(s, l, 3, 2)
    submit(s, l, 5, 2)
    submit(s, l, 7, 2)
    drain(s)
    assert.equal(3, #pool.submitted)
    assert.same({ accepted = 0, rejected = 0, skipped = 0, failed = 8, possibly_duplicated = 0 }, l.counts)
    assert.equal("HTTP 401: Ims service token is empty (an inlet created with authenticationRequired needs --authenticated)", s.fatal)
    assert.equal(8, #rejects)
  end)

  it("sends one message per request, unwrapped, in sync-validation mode, and reads AEP's 400 report", function()
    local s, l, pool, _, rejects = make_sender(function(req, n)
      if n == 2 then
        return { status = 400, headers = {}, body = cjson.encode({
          type = "http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet", status = 400,
          title = "Invalid XDM Message Format",
          report = { message = "inletId: [i] imsOrgId: [o] Message is invalid", cause = { _streamingValidation = { {
            causingExceptions = { { pointerToViolation = "#/x", message = "extraneous key [x] is not permitted" } },
          } } } } }) }
      end
      return { status = 200, headers = {}, body = cjson.encode({ xactionId = "t:" .. n, syncValidation = { status = "pass" } }) }
    end, { sync = true })
    submit(s, l, 1, 1)
    submit(s, l, 2, 1)
    drain(s)
    assert.equal(encoder('{"i":1}'), pool.submitted[1].body)
    assert.same({ accepted = 1, rejected = 1, skipped = 0, failed = 0, possibly_duplicated = 0 }, l.counts)
    assert.equal("HTTP 400: inletId: [i] imsOrgId: [o] Message is invalid (#/x: extraneous key [x] is not permitted)",
      rejects[1].reason)
  end)
end)
