-- aep.stream.pipeline: the loop of `aep stream`, one way and no back-tracking:
-- reader -> mapping -> envelope (header encoded once) -> batch (<= 1 MB, <= batch size) -> pacer
-- -> pool -> ledger (accepted / rejected / skipped / failed, checkpoint) -> report.
--
--   local result = pipeline.run{reader=, map=, encoder=, ledger=, sender=, progress=, input=,
--                               max_bytes=, max_count=, max_outstanding=, ctx=}
--
-- The per-record path is kept lean (aep implementation notes): the record is decoded once, the
-- mapping runs under one pcall together with the entity's encoding, the envelope is two string
-- concatenations, and a batch is four parallel arrays — no table per record beyond the decoded one.
-- Without a mapping, a JSON record is sent as the very text it was read as.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local batcher = require "aep.stream.batcher"
local ledger_mod = require "aep.stream.ledger"
local mapping = require "aep.stream.mapping"
local is_interrupt = require("aep.cli").is_interrupt

local M = {}

local encode = cjson.encode
local reject_entry = ledger_mod.reject_entry
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

-- pipeline.run(o) -> result {read, read_error, resumed_records, samples, fatal, interrupted}
-- o.term_requested: a function telling that SIGTERM arrived (the loop stops as for Ctrl-C);
-- o.mapping_path: named when a mapping's os.exit stops the run.
function M.run(o)
  local reader, ledger, sender, enc = o.reader, o.ledger, o.sender, o.encoder
  local map = o.map
  local progress = o.progress
  local max_bytes = o.max_bytes or 1000000
  local max_count = o.max_count or 500
  local max_outstanding = o.max_outstanding or 9
  local input = o.input
  local ctx = o.ctx or {}
  local rnext, rskip = reader.next, reader.skip
  local text_is_json = reader.format ~= "csv" -- without a mapping the record goes as the text it was read as
  local entity_of = entity_extractor(enc)
  local samples, nsamples = {}, 0
  local result = { read = 0, resumed_records = 0, samples = samples }
  local keep_origins = false

  local function sample(pos, reason)
    if nsamples < 5 then
      nsamples = nsamples + 1
      samples[nsamples] = "record " .. pos .. ": " .. reason
    end
  end

  local function progress_state()
    local c, t = ledger.counts, ledger.this_run
    local bytes, total = reader:progress()
    return { read = result.read, accepted = c.accepted, rejected = c.rejected, failed = c.failed,
             skipped = c.skipped, bytes = bytes, total_bytes = total,
             settled = t.accepted + t.rejected + t.failed + t.skipped }
  end
  result.progress_state = progress_state

  -- rejects found by the sender (AEP's answers, exhausted retries)
  sender.on_reject = function(b, i, status, reason, kind)
    b.span:reject(reject_entry{
      kind = kind, position = b.pos[i], line = b.lines[i], origin = b.origins and b.origins[i],
      input = input, status = status, reason = reason,
      record = reader:record_json(b.origs[i]), entity = entity_of(b.msgs[i]),
    }, kind)
    sample(b.pos[i], reason)
  end
  if ledger.accepted_path then
    sender.on_accept = function(b, i, xid) b.span:accepted_line(b.pos[i], xid, b.dup) end
  end

  local function local_reject(span, pos, lineno, text, reason, entity)
    span:reject(reject_entry{
      kind = "rejected", position = pos, line = lineno, origin = reader.origin, input = input,
      reason = reason, record = reader:record_json(text), entity = entity,
    }, "rejected")
    sample(pos, reason)
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
      if progress then progress:update(progress_state()) end
    end
    if progress then progress:update(progress_state()) end
  end

  -- close the open span at `last`, sending its batch (if any)
  local function close_span(last)
    if cur.n > 0 then
      cur.span = span
      cur.dup = cur_dup
      ledger:close_span(span, last, 1)
      sender:submit(cur)
      cur = batcher.empty()
      if keep_origins then cur.origins = {} end
      span = nil
      wait_room()
    else
      ledger:close_span(span, last, 0)
      span = nil
    end
  end

  if reader.replay then keep_origins = true; cur.origins = {} end

  local term_requested = o.term_requested or function() return false end
  local ok, err = pcall(function()
    while true do
      if sender.fatal then break end
      if term_requested() or sender.interrupted then error("interrupted", 0) end
      local npos = pos + 1
      if resumed then
        local st = ledger:status(npos)
        if st == "done" then
          if span then close_span(pos) end
          if not rskip(reader) then break end
          pos = npos
          result.resumed_records = result.resumed_records + 1
          goto continue
        end
        local redo = st == "redo"
        if redo ~= cur_dup then
          if span then close_span(pos) end
          cur_dup = redo
        end
      end
      do
        local okr, v, text, lineno = rnext(reader)
        if okr == nil then
          if v then result.read_error = v end
          break
        end
        pos = npos
        result.read = result.read + 1
        if not span then span = ledger:new_span(pos) end
        if okr then
          local etext
          if map then
            ctx.position, ctx.line = pos, lineno
            if keep_origins then ctx.origin = reader.origin end
            local marked = reader.marked
            if marked then reader.marked = false end
            local okm, res = pcall(map_encode, v, ctx, marked)
            if not okm then
              if is_interrupt(res) then error(res, 0) end
              if mapping.is_exit(res) then
                -- the mapping wanted the process gone: stop the run, loudly, with this record's fate known
                local why = string.format("the mapping %s called os.exit(%s) at record %d (line %s): a mapping "
                  .. "cannot end the run (raise an error to reject a record); stopped at record %d",
                  tostring(o.mapping_path or "?"), tostring(res.code), pos, tostring(lineno), pos)
                local_reject(span, pos, lineno, text, "mapping called os.exit(" .. tostring(res.code) .. ")", nil)
                result.stop = why
                break
              end
              local_reject(span, pos, lineno, text, mapping.reason(res), nil)
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
              local_reject(span, pos, lineno, text, too_large, etext)
            else
              if not room_for(cur, size, max_bytes) then
                close_span(pos - 1)
                span = ledger:new_span(pos)
              end
              local n = append(cur, msg, pos, lineno, text)
              if keep_origins then cur.origins[n] = reader.origin end
              if n >= max_count then close_span(pos) end
            end
          end
        else
          local_reject(span, pos, lineno, text, v, nil)
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
      if progress then progress:update(progress_state()) end
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
  result.fatal = sender.fatal or result.stop
  return result
end

return M
