-- aep.stream.pipeline: the one loop of `aep stream`, whatever the records come from, one way and
-- no back-tracking:
-- source -> mapping -> envelope (header encoded once) -> batch (<= 1 MB, <= batch size) -> pacer
-- -> pool -> ledger (accepted / rejected / skipped / failed, checkpoint) -> source:settle -> report.
--
--   local result = pipeline.run{source=, map=, encoder=, ledger=, sender=, progress=, input=,
--                               max_bytes=, max_count=, max_outstanding=, ctx=}
--
-- The source is one of lua/aep/stream/sources/ (the interface is in docs/ARCHITECTURE.md, "Stream
-- sources"): source:next() hands out records one position at a time; the pipeline maps, batches
-- and sends them, writes every reject entry, and tells the source which positions are settled
-- (source:settle, as the ledger finishes spans) and when to make that durable (source:commit,
-- after the reject entries are on disk).
--
-- The per-record path is kept lean (aep implementation notes): the record is decoded once (by the
-- source), the mapping runs under one pcall together with the entity's encoding, the envelope is
-- two string concatenations, and a batch is four parallel arrays — no table per record beyond
-- the decoded one. Without a mapping, a JSON record is sent as the very text it was read as.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local host = require "aep.host"
local batcher = require "aep.stream.batcher"
local ledger_mod = require "aep.stream.ledger"
local mapping = require "aep.stream.mapping"
local readers = require "aep.stream.readers"
local is_interrupt = require("aep.errors").is_interrupt

local M = {}

-- Seconds between two source:commit calls while the run goes on (the end always commits).
M.COMMIT_INTERVAL = 0.2

local encode = cjson.encode
local reject_entry = ledger_mod.reject_entry
local record_json = readers.json_text_or_string
local room_for, append = batcher.room_for, batcher.append

-- Split messages back into the entity text: the encoder is prefix .. entity .. suffix.
local function entity_extractor(enc)
  local probe = "\1aep-probe\1"
  local ok, m = pcall(enc, probe)
  local at = ok and type(m) == "string" and m:find(probe, 1, true)
  if at then
    local plen, slen = at - 1, #m - (at - 1) - #probe
    return function(msg)
      if msg == nil then return nil end
      return msg:sub(plen + 1, #msg - slen)
    end
  end
  return function(msg)
    local d = msg and cjson_safe.decode(msg)
    local e = type(d) == "table" and type(d.body) == "table" and d.body.xdmEntity
    return e and encode(e) or nil
  end
end
M.entity_extractor = entity_extractor

local function never() return false end

-- pipeline.run(o) -> result {read, read_error, resumed_records, samples, fatal, interrupted, stop,
-- last_position}
-- o.source: the source (lua/aep/stream/sources/; an aep.stream.readers reader is one);
-- o.term_requested: a function telling that SIGTERM arrived (the loop stops as for Ctrl-C);
-- o.mapping_path: named when a mapping's os.exit stops the run; o.now: the clock (tests);
-- o.feed: records mapped ahead on worker threads (aep.stream.workers): the loop takes each
-- position's outcome from it, in input order, instead of reading and mapping here.
function M.run(o)
  local source, ledger, sender, enc = o.source, o.ledger, o.sender, o.encoder
  local map = o.map
  local progress = o.progress
  local max_bytes = o.max_bytes or 1000000
  local max_count = o.max_count or 500
  local max_outstanding = o.max_outstanding or 9
  local input = o.input
  local ctx = o.ctx or {}
  local now = o.now or host.monotonic
  local snext, sskip = source.next, source.skip
  local feed = o.feed
  local from = source -- what snext and sskip are called on
  if feed then snext, sskip, from = feed.next, feed.skip, feed end
  local where = source.where
  local settle, commit, stopping, on_reject = source.settle, source.commit, source.stopping, source.on_reject
  -- without a mapping the record goes as the text it was read as (a CSV row: its fields encoded)
  local text_is_json = source.json_text
  if text_is_json == nil then text_is_json = source.format ~= "csv" end
  local entity_of = entity_extractor(enc)
  local samples, nsamples = {}, 0
  local result = { read = 0, resumed_records = 0, samples = samples }
  local keeps_rejects = ledger.reject_path ~= nil

  local function sample(pos, reason)
    if nsamples < 5 then
      nsamples = nsamples + 1
      samples[nsamples] = "record " .. pos .. ": " .. reason
    end
  end

  local function fatal(message)
    if message and not result.fatal then result.fatal = message end
  end

  local function progress_state()
    local c, t = ledger.counts, ledger.this_run
    local bytes, total
    -- with workers the reader runs ahead: the feed tells the bytes of the records handed out
    local of = feed or source
    if of.progress then bytes, total = of:progress() end
    return { read = result.read, accepted = c.accepted, rejected = c.rejected, failed = c.failed,
             skipped = c.skipped, bytes = bytes, total_bytes = total,
             settled = t.accepted + t.rejected + t.failed + t.skipped }
  end
  result.progress_state = progress_state

  -- what the source hears of a rejected or failed record (a Kafka source dead-letters it, or
  -- holds it back and stops the run when nothing would keep it)
  local function tell_source(pos, reason, kind)
    if on_reject then fatal(on_reject(source, pos, reason, kind, keeps_rejects)) end
  end

  -- rejects found by the sender (AEP's answers, exhausted retries)
  sender.on_reject = function(b, i, status, reason, kind)
    local pos = b.pos[i]
    b.span:reject(reject_entry{
      kind = kind, position = pos, line = b.lines[i], origin = b.origins and b.origins[i],
      input = where and where(source, pos) or input, status = status, reason = reason,
      record = record_json(b.origs[i]), entity = entity_of(b.msgs[i]),
    }, kind)
    sample(pos, reason)
    tell_source(pos, reason, kind)
  end
  -- o.on_accept(b, i, xid): one more hears of each accepted record (the follow-through)
  local also = o.on_accept
  if ledger.accepted_path then
    sender.on_accept = function(b, i, xid)
      -- a replayed record keeps the position it had in its first input
      b.span:accepted_line(b.origins and b.origins[i] or b.pos[i], xid, b.dup)
      if also then also(b, i, xid) end
    end
  else
    sender.on_accept = also
  end

  local function local_reject(span, pos, lineno, origin, text, reason, entity)
    span:reject(reject_entry{
      kind = "rejected", position = pos, line = lineno, origin = origin,
      input = where and where(source, pos) or input,
      reason = reason, record = record_json(text), entity = entity,
    }, "rejected")
    sample(pos, reason)
    tell_source(pos, reason, "rejected")
  end

  -- the mapping wanted the process gone: stop the run, loudly, with this record's fate known
  local function exit_stop(span, pos, lineno, origin, text, code)
    local at = lineno and ("line " .. tostring(lineno)) or (where and where(source, pos)) or "?"
    result.exit_stop = string.format("the mapping %s called os.exit(%s) at record %d (%s): a mapping "
      .. "cannot end the run (raise an error to reject a record); stopped at record %d",
      tostring(o.mapping_path or "?"), code, pos, at, pos)
    local_reject(span, pos, lineno, origin, text, "mapping called os.exit(" .. code .. ")", nil)
  end

  -- positions reach the source as their spans finish; what is settled is committed now and then,
  -- once the reject entries that account for it are on disk
  if settle then ledger.on_done = function(first, last) settle(source, first, last) end end
  local last_commit = now()
  local function commit_settled(force)
    if not commit then return end
    local t = now()
    if not force and t - last_commit < M.COMMIT_INTERVAL then return end
    last_commit = t
    ledger:save()
    if ledger.reject_fh then host.fsync(ledger.reject_fh) end
    commit(source)
  end

  local function tick()
    commit_settled(false)
    if progress then progress:update(progress_state()) end
  end

  local map_encode = map and mapping.encoder(map)

  local pos = 0
  local span
  local cur = batcher.empty()
  local cur_dup = false
  local resumed = ledger.resumed

  local function wait_room()
    sender:pump(false)
    while sender:outstanding() >= max_outstanding do
      sender:pump(true)
      tick()
    end
    tick()
  end

  -- close the open span at `last`, sending its batch (if any)
  local function close_span(last)
    if cur.n > 0 then
      cur.span = span
      cur.dup = cur_dup
      ledger:close_span(span, last, 1)
      sender:submit(cur)
      cur = batcher.empty()
      span = nil
      wait_room()
    else
      ledger:close_span(span, last, 0)
      span = nil
    end
  end

  local term_requested = o.term_requested or never
  -- what a source that waits for records (Kafka) is asked for: how long it may block when it has
  -- nothing, and how many records the pipeline can send at once (a Kafka source marks what it
  -- hands out as possibly sent: handing out no more than goes out at once keeps that true)
  local wait, want = 0, (max_outstanding - 1) * max_count
  local got = 0 -- records since the source last said it had none
  local ok, err = pcall(function()
    while true do
      if sender.fatal or result.fatal then break end
      if term_requested() or sender.interrupted then error("interrupted", 0) end
      local npos = pos + 1
      local st_dup = false
      if resumed then
        local st
        if feed then st = feed:status(npos) else st = ledger:status(npos) end
        if st == "done" then
          if span then close_span(pos) end
          if not sskip(from) then break end
          pos = npos
          result.resumed_records = result.resumed_records + 1
          goto continue
        end
        st_dup = st == "redo"
      end
      do
        local okr, v, text, lineno, dup, exit_code = snext(from, wait, want)
        if okr == nil then
          if text == "AGAIN" then
            -- nothing now: send what is open, take in answers (waiting a little when nothing came
            -- since the last time, instead of spinning), settle, and ask whether to stop
            if span then close_span(pos) end
            sender:pump(got == 0 or sender:outstanding() >= max_outstanding)
            tick()
            got = 0
            local why = stopping and stopping(source, sender:outstanding())
            if why then
              result.stop = why
              break
            end
            local out = sender:outstanding()
            wait = out > 0 and 0 or 0.2
            want = (max_outstanding - 1 - out) * max_count
            goto continue
          end
          if v then result.read_error = v end
          break
        end
        got = got + 1
        dup = dup or st_dup
        if dup ~= cur_dup then
          if span then close_span(pos) end
          cur_dup = dup
        end
        pos = npos
        result.read = result.read + 1
        if not span then span = ledger:new_span(pos) end
        local origin = source.origin
        if okr then
          local etext
          if feed then
            -- mapped on a worker: the entity's text, or nil when the mapping skipped the record
            etext = v
            if v == nil then span:skip() end
          elseif map then
            ctx.position, ctx.line, ctx.origin = pos, lineno, origin
            local marked = source.marked
            if marked then source.marked = false end
            local okm, res = pcall(map_encode, v, ctx, marked)
            if not okm then
              if is_interrupt(res) then error(res, 0) end
              if mapping.is_exit(res) then
                exit_stop(span, pos, lineno, origin, text, tostring(res.code))
                break
              end
              local_reject(span, pos, lineno, origin, text, mapping.reason(res), nil)
            elseif res == nil then
              span:skip()
            else
              etext = res
            end
          elseif text_is_json then
            etext = text
          else
            etext = encode(v) -- a CSV row: its fields as a JSON object
          end
          if etext then
            local msg = enc(etext)
            local size = #msg
            local too_large = batcher.too_large(size, max_bytes)
            if too_large then
              local_reject(span, pos, lineno, origin, text, too_large, etext)
            else
              if not room_for(cur, size, max_bytes) then
                close_span(pos - 1)
                span = ledger:new_span(pos)
              end
              local n = append(cur, msg, pos, lineno, text)
              if origin ~= nil then
                local origins = cur.origins
                if not origins then origins = {}; cur.origins = origins end
                origins[n] = origin
              end
              if n >= max_count then close_span(pos) end
            end
          end
        elseif exit_code then
          exit_stop(span, pos, lineno, origin, text, exit_code)
          break
        else
          local_reject(span, pos, lineno, origin, text, v, nil)
        end
        -- a long run of records settled without a request: let the ledger see it done
        if span and cur.n == 0 and pos - span.first >= 4095 then close_span(pos) end
      end
      ::continue::
    end
    if span then close_span(pos) end
    while sender:outstanding() > 0 do
      sender:pump(true)
      if sender.interrupted then error("interrupted", 0) end
      tick()
    end
  end)
  result.last_position = pos
  if not ok then
    if is_interrupt(err) then
      result.interrupted = true
    else
      error(err, 0)
    end
  end
  if sender.fatal and not result.fatal then result.fatal = sender.fatal end
  if not result.fatal then result.fatal = result.exit_stop end
  if (result.fatal or result.read_error) and not result.stop then result.stop = "fatal" end
  -- what is settled is made durable, whatever ended the loop
  local ok2, err2 = pcall(commit_settled, true)
  if not ok2 and not is_interrupt(err2) then error(err2, 0) end
  return result
end

return M
