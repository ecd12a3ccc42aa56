-- aep.stream.follow: after `aep stream` has sent its records, follow the accepted ones through
-- AEP's asynchronous validation to their outcome: ingested, failed after acceptance (with AEP's
-- codes and messages) or unknown (the wait ran out). docs/delivery-guarantee.md, "After the
-- answer", says how and where it can be wrong.
--
--   local t = follow.tracker()              -- before the loop
--   pipeline.run{..., on_accept = t.on_accept}
--   local out = follow.run{client=, dataset_id=, since_ms=, tracker=t, wait=, entity_of=}
--   -> {state = "final" | "timeout" | "unavailable", accepted, ingested, failed = {item...},
--       unknown, unmatched, batches, waited_s, reason}
--
-- What it reads is public Platform API only: the dataset's Catalog batches created since the run
-- started (aep.catalog.list_batches), and the failed records of those holding failures (Data
-- Access error diagnostics, aep.diagnostics.failed_records). The run is final when every such
-- batch is final and they account for at least as many records as this run had accepted.
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local host = require "aep.host"

local M = {}

-- Ctrl-C reaches Lua as an error ending in "interrupted" (aep.cli.is_interrupt; not required here:
-- aep.cli leads to the commands, which require this module)
local function is_interrupt(e) return type(e) == "string" and e:match("interrupted$") ~= nil end

-- How long `aep stream` waits by default: the emulator validates within its --batch-window
-- (1 s by default); AEP documents the data lake within 60 minutes
-- (help/ingestion/streaming-ingestion/overview.md, docs/AEP-API-FACTS.md §13.1).
M.WAIT_LOCAL_S = 60
M.WAIT_AEP_S = 3600
-- Polling interval: the emulator answers at once; AEP's Catalog is read every 15 s.
M.POLL_LOCAL_S = 0.1
M.POLL_AEP_S = 15
-- Batches created this long before the run's first request still count: a batch of the
-- emulator's window (or AEP's) may have been opened by an earlier message and take ours too.
M.MARGIN_LOCAL_S = 5
M.MARGIN_AEP_S = 900
M.MAX_FAILED = 100000
-- The texts (record as read, message as sent) of the first MAX_TEXTS accepted records are kept
-- for matching and for the reject entries; past it only position and xactionId, so memory stays
-- bounded on long runs (docs/delivery-guarantee.md, "Limits").
M.MAX_TEXTS = 200000

-- Catalog batch states that will not change any more (docs/AEP-API-FACTS.md §13.3; batch
-- ingestion troubleshooting: Active/Success and Failed/Failure are used interchangeably).
M.FINAL = { success = true, active = true, failed = true, failure = true, aborted = true,
            abandoned = true, inactive = true, deleted = true }

local function int(v) return math.tointeger(tonumber(v) or 0) or math.floor(tonumber(v) or 0) end

-- records a batch accounts for: ingested + failed (top level, else its metrics)
local function batch_counts(b)
  local m = type(b.metrics) == "table" and b.metrics or {}
  local ok = b.recordCount or m.outputRecordCount or 0
  local failed = b.failedRecordCount or m.failedRecordCount or 0
  return int(ok), int(failed)
end

-- follow.tracker() -> tracker: what was accepted, by position (kept as references to the strings
-- the loop already has: no copy, no decoding while sending)
function M.tracker()
  local t = { n = 0, pos = {}, xid = {}, orig = {}, msg = {}, line = {}, origin = {}, input = {} }
  local pos, xids, orig, msg, line, origin = t.pos, t.xid, t.orig, t.msg, t.line, t.origin
  local keep = M.MAX_TEXTS
  t.on_accept = function(b, i, xid)
    local n = t.n + 1
    t.n = n
    pos[n], xids[n], line[n] = b.pos[i], xid or false, b.lines[i] or false
    if n <= keep then orig[n], msg[n] = b.origs[i], b.msgs[i] end
    if b.origins then origin[n] = b.origins[i] end
  end
  return t
end

-- follow.track(tracker, position, xaction_id, record_text, message): one accepted record, for
-- callers outside the stream loop (aep run's streaming step)
function M.track(t, pos, xid, orig, msg)
  local n = t.n + 1
  t.n = n
  t.pos[n], t.xid[n], t.orig[n], t.msg[n], t.line[n] = pos, xid or false, orig, msg, false
end

-- follow.failed_matching(c, dataset_id, pred [, {since_ms=, limit=}]) -> the failed records of the
-- dataset's final batches (created since since_ms, default 24 h) whose record as sent satisfies
-- pred(record): {{batch=, record=, errors=, reason=}, ...}
function M.failed_matching(c, dataset_id, pred, o)
  o = o or {}
  local catalog, diagnostics = require "aep.catalog", require "aep.diagnostics"
  local since = o.since_ms or math.floor((host.now() - 86400) * 1000)
  local out = {}
  for _, b in ipairs(catalog.list_batches(c, { dataset = dataset_id, created_after = since, limit = o.limit or 100 })) do
    local _, f = batch_counts(b)
    local st = tostring(b.status):lower()
    if f > 0 or st == "failed" or st == "failure" then
      for _, line in ipairs(diagnostics.failed_records(c, b.id, { max = M.MAX_FAILED })) do
        local rec = diagnostics.record_of(line)
        if type(rec) == "table" and pred(rec) then
          out[#out + 1] = { batch = b.id, record = rec, errors = line.errors, reason = diagnostics.describe(line) }
        end
      end
    end
  end
  return out
end

-- follow.default_wait(target) -> seconds
function M.default_wait(target)
  return target.is_local and M.WAIT_LOCAL_S or M.WAIT_AEP_S
end

-- "90s" | "15m" | "2h" | "45" | "0" -> seconds | nil
function M.parse_duration(s)
  local n, unit = tostring(s):match("^(%d+%.?%d*)([smh]?)$")
  if not n then return nil end
  return tonumber(n) * ({ s = 1, m = 60, h = 3600, [""] = 1 })[unit]
end


-- canonical text of an entity (sorted keys) for matching what was sent with what failed
local function canonical(v)
  if type(v) == "string" then v = cjson_safe.decode(v) end
  if type(v) ~= "table" then return nil end
  local ok, text = pcall(json.encode_pretty, v, "")
  return ok and text or nil
end

-- Map failed lines back to tracked positions: the emulator's `_emulator.xactionId` (an emulator
-- extension, absent in AEP), else the entity's `_id`, else the whole entity as sent. A key two
-- accepted records share is ambiguous: the failure is left unmatched.
local function matcher(t, entity_of)
  local by_xid, by_id, by_text
  local function index()
    by_id, by_text = {}, {}
    for k = 1, math.min(t.n, M.MAX_TEXTS) do
      local etext = entity_of(t.msg[k])
      local e = etext and cjson_safe.decode(etext)
      if type(e) == "table" then
        if type(e._id) == "string" then by_id[e._id] = by_id[e._id] == nil and k or false end
        local c = canonical(e)
        if c then by_text[c] = by_text[c] == nil and k or false end
      end
    end
  end
  return function(line)
    if not by_xid then
      by_xid = {}
      for k = 1, t.n do if t.xid[k] then by_xid[t.xid[k]] = k end end
    end
    local em = type(line._emulator) == "table" and line._emulator or nil
    if em and em.xactionId and by_xid[em.xactionId] then return by_xid[em.xactionId], "xactionId" end
    -- the emulator names every message it keeps; one this run cannot match in any way was sent by
    -- another (a batch both wrote to): not ours, rather than a failure that could not be matched
    local other = em and em.xactionId and "foreign" or nil
    local rec = require("aep.diagnostics").record_of(line)
    if type(rec) ~= "table" then return nil, other end
    if not by_id then index() end
    if type(rec._id) == "string" and by_id[rec._id] then return by_id[rec._id], "_id" end
    local c = canonical(rec)
    if c and by_text[c] then return by_text[c], "record" end
    return nil, other
  end
end

-- follow.run(o) -> outcome (see the top)
-- o: client (aep.platform), dataset_id, since_ms (wall clock of the run's start, ms), tracker,
-- wait (s), entity_of(message) -> entity text, is_local, sleep, now (s, wall), log (say(fmt, ...))
function M.run(o)
  local t = o.tracker
  local out = { accepted = t.n, ingested = 0, failed = {}, unknown = 0, unmatched = 0, batches = 0 }
  if t.n == 0 then out.state = "final"; return out end
  if not o.client then
    out.state, out.unknown = "unavailable", t.n
    out.reason = "no Platform client (--inlet with --schema): nothing to read the outcome from"
    return out
  end
  local catalog, diagnostics = require "aep.catalog", require "aep.diagnostics"
  local sleep, now = o.sleep or host.sleep, o.now or host.now
  local poll = o.poll or (o.is_local and M.POLL_LOCAL_S or M.POLL_AEP_S)
  local margin = o.margin or (o.is_local and M.MARGIN_LOCAL_S or M.MARGIN_AEP_S)
  local started = now()
  local deadline = started + (o.wait or 0)
  local after = math.floor(o.since_ms - margin * 1000)
  local batches
  local polls = 0
  while true do
    polls = polls + 1
    local ok, res = pcall(catalog.list_batches, o.client, { dataset = o.dataset_id, created_after = after, limit = 1000 })
    if not ok then
      if is_interrupt(res) then error(res, 0) end
      out.reason = "reading Catalog batches failed: " .. tostring(res)
      batches = batches or {}
    else
      batches = res
      local final, counted = true, 0
      for _, b in ipairs(batches) do
        if not M.FINAL[tostring(b.status):lower()] then final = false end
        local a, f = batch_counts(b)
        counted = counted + a + f
      end
      if final and counted >= t.n then out.state = "final"; out.reason = nil; break end
    end
    if now() >= deadline then out.state = "timeout"; break end
    if o.on_poll then o.on_poll(polls) end
    if sleep(math.min(poll, math.max(0, deadline - now()))) == false then error("interrupted", 0) end
  end
  out.waited_s = now() - started
  out.batches = #batches
  -- the failed records of the final batches holding failures, mapped back to positions
  local match = matcher(t, o.entity_of)
  local seen = {}
  local failed_total = 0
  for _, b in ipairs(batches) do
    local st = tostring(b.status):lower()
    local _, f = batch_counts(b)
    if M.FINAL[st] and (f > 0 or st == "failed" or st == "failure") then
      failed_total = failed_total + f
      local ok, lines = pcall(diagnostics.failed_records, o.client, b.id, { max = M.MAX_FAILED })
      if ok then
        for _, line in ipairs(lines) do
          local k, how = match(line)
          if k and not seen[k] then
            seen[k] = true
            out.failed[#out.failed + 1] = { k = k, position = t.pos[k], line = t.line[k] or nil,
              origin = t.origin[k], record = t.orig[k], entity = o.entity_of(t.msg[k]),
              errors = line.errors, reason = diagnostics.describe(line), batch = b.id, matched_by = how }
          elseif not k and how ~= "foreign" then
            out.unmatched = out.unmatched + 1
          end
        end
      elseif is_interrupt(lines) then
        error(lines, 0)
      else
        out.reason = "reading the failed records of batch " .. tostring(b.id) .. " failed: " .. tostring(lines)
      end
    end
  end
  table.sort(out.failed, function(x, y) return x.position < y.position end)
  if out.state == "final" then
    out.ingested = t.n - #out.failed
  else
    out.unknown = t.n - #out.failed
  end
  return out
end

-- follow.status_command(o) -> the `aep status` command that finishes the check later
function M.status_command(o)
  local parts = { "aep status" }
  if o.env then parts[#parts + 1] = "--env " .. o.env end
  parts[#parts + 1] = "--dataset " .. tostring(o.dataset_id)
  parts[#parts + 1] = "--since " .. (o.since or "2h")
  parts[#parts + 1] = "--errors"
  return table.concat(parts, " ")
end

return M
