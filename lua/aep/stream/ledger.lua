-- aep.stream.ledger: where every input record of `aep stream` ends — accepted (with its
-- xactionId), rejected (with the reason: AEP's status and message, or why it could not be read or
-- mapped), skipped (by the mapping) or failed (retries exhausted) — and the checkpoint that lets the
-- same command resume after a crash without resending what AEP acknowledged.
--
-- Records are grouped in spans: a span is a run of consecutive input positions [first, last] whose
-- records travel in one batch request (plus those settled locally: skipped, unreadable). A span is
-- done when every record in it has its final outcome; its counts then join the totals, its reject
-- entries go to the reject file, and its range joins the done set. Spans finish out of order
-- (requests run concurrently); the checkpoint keeps the contiguous done prefix, the done ranges
-- beyond it, and the ranges in flight (sent, not yet answered).
--
-- Resuming: positions in the prefix or a done range are skipped without being read; positions in
-- an in-flight range are sent again and, when accepted, also counted as possibly duplicated
-- (AEP may have taken them before the crash); the reject and accepted files are cut back to the
-- length they had when the checkpoint was written, so no entry appears twice.
--
-- Checkpoint file (JSON, written atomically with aep.host.write_file after every change that
-- matters: before a span's first request leaves, and after spans finish; "inflight" lists the
-- spans whose requests left and were not all answered):
--   {"format":"aep-stream-checkpoint/1", "input":..., "dataset":..., "prefix":P,
--    "done":[[a,b],...], "inflight":[[a,b],...], "counts":{accepted,rejected,skipped,failed,
--    possibly_duplicated}, "reject_file":..., "reject_offset":N, "accepted_file":...,
--    "accepted_offset":N, "complete":bool, "updated":"...",
--    "input_identity":{"size":N, "mtime":T, "head":sha256, "tail":sha256} (absent for stdin),
--    "mapping_sha256":sha256 of the mapping's text | "none"}
--
-- A checkpoint only makes sense for the input and mapping it was written with: positions it counts
-- as done are skipped unread. So it is bound to the input's identity as the run that wrote it saw
-- it at its start (size, mtime, and SHA-256 of the first and of the last 64 KiB below that size)
-- and to the mapping's text; a resume checks them and refuses a mismatch, saying what changed. An
-- input that only grew (appended to) keeps the checked bytes and stays resumable; an edit that
-- keeps the size and touches neither window is not seen (a hash of the whole file would cost a
-- full extra read of every input at every start).
local cjson = require "cjson"
local json = require "aep.json"
local host = require "aep.host"

local M = {}

M.FORMAT = "aep-stream-checkpoint/1"
M.KINDS = { "accepted", "rejected", "skipped", "failed" }

local encode = cjson.encode
local concat = table.concat

local IDENTITY_WINDOW = 64 * 1024

local function sha256_hex(s) return require("aep.crypto").sha256_hex(s) end

-- bytes [from, from + n) of a file (from 0-based)
local function read_range(path, from, n)
  local f = io.open(path, "rb")
  if not f then return nil end
  f:seek("set", from)
  local data = f:read(n) or ""
  f:close()
  return data
end

-- ledger.input_identity(path [, size]) -> {size, mtime, head, tail} | nil (stdin, not a file).
-- size: hash the windows as of this size (the size recorded in a checkpoint), default the current.
function M.input_identity(path, size)
  if not path or path == "-" then return nil end
  local st = host.stat(path)
  if not st or st.type ~= "file" then return nil end
  size = size or st.size
  if size > st.size then return { size = st.size, mtime = st.mtime } end
  local head = read_range(path, 0, math.min(size, IDENTITY_WINDOW))
  local tail_from = math.max(0, size - IDENTITY_WINDOW)
  local tail = read_range(path, tail_from, size - tail_from)
  if not head or not tail then return nil end
  return { size = size, mtime = st.mtime, head = sha256_hex(head), tail = sha256_hex(tail) }
end

-- ledger.mapping_hash(path | nil) -> sha256 of the mapping's text | "none"
function M.mapping_hash(path)
  if not path then return "none" end
  local f = io.open(path, "rb")
  if not f then return "none" end
  local text = f:read("a")
  f:close()
  return sha256_hex(text)
end

local function when(t) return t and os.date("!%Y-%m-%dT%H:%M:%SZ", math.tointeger(t) or 0) or "?" end

-- Why the input no longer matches the identity a checkpoint recorded, or nil.
local function identity_mismatch(path, old)
  if type(old) ~= "table" or not math.tointeger(old.size) then return nil end
  local size = math.tointeger(old.size)
  local now = M.input_identity(path, size)
  if not now then return nil end
  local mtime = string.format(" (modified %s; the checkpoint saw %s)", when(now.mtime), when(old.mtime))
  if now.size < size then
    return string.format("%s is shorter (%d bytes) than when the checkpoint was written (%d bytes)%s",
      path, now.size, size, mtime)
  end
  if now.head ~= old.head then
    return string.format("the first bytes of %s are not those the checkpoint saw%s", path, mtime)
  end
  if now.tail ~= old.tail then
    return string.format("the bytes of %s up to byte %d are not those the checkpoint saw%s", path, size, mtime)
  end
  return nil
end

local function unslash(s) return (s:gsub("\\/", "/")) end

-- ledger.reject_entry{kind, position, line, origin, input, status, reason, record, entity}
-- -> one JSON Lines entry (record and entity are JSON texts, or nil)
function M.reject_entry(e)
  return unslash(concat({
    '{"aep_reject":1,"kind":', encode(e.kind or "rejected"),
    ',"position":', tostring(e.position),
    ',"line":', e.line and tostring(e.line) or "null",
    e.origin and (',"origin":' .. tostring(e.origin)) or "",
    ',"input":', encode(e.input or "-"),
    ',"status":', e.status and tostring(math.tointeger(e.status) or e.status) or "null",
    ',"reason":', encode(e.reason or "unknown"),
    ',"record":', e.record or "null",
    ',"entity":', e.entity or "null",
    "}\n",
  }))
end

local Span = {}
Span.__index = Span

local Ledger = {}
Ledger.__index = Ledger

-- Cut a file back to `offset` bytes (copying the prefix to a temporary file and renaming).
local function truncate_file(path, offset)
  local st = host.stat(path)
  if not st then
    if offset > 0 then return nil, path .. " is missing (the checkpoint expects " .. offset .. " bytes)" end
    return true
  end
  if st.size == offset then return true end
  if st.size < offset then
    return nil, path .. " is shorter (" .. st.size .. " bytes) than the checkpoint says (" .. offset .. ")"
  end
  local src = assert(io.open(path, "rb"))
  local tmp = path .. ".aep-tmp"
  local dst, err = io.open(tmp, "wb")
  if not dst then src:close(); return nil, err end
  local left = offset
  while left > 0 do
    local chunk = src:read(math.min(left, 1 << 20))
    if not chunk then break end
    dst:write(chunk)
    left = left - #chunk
  end
  src:close()
  dst:flush()
  host.fsync(dst)
  dst:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then return nil, rerr end
  return true
end

-- ledger.new{checkpoint=, reject_file=, accepted_file=, input=, dataset=, mapping=} -> ledger | nil, err
-- With a checkpoint file that exists, the ledger resumes from it (its input, the input's identity,
-- the mapping's text and the dataset must match).
function M.new(o)
  local self = setmetatable({}, Ledger)
  self.checkpoint = o.checkpoint
  self.reject_path = o.reject_file
  self.accepted_path = o.accepted_file
  self.input = o.input
  self.dataset = o.dataset
  -- what this run reads: recorded in the checkpoint (see the identity notes at the top)
  self.mapping_sha256 = M.mapping_hash(o.mapping)
  self.input_identity = self.checkpoint and M.input_identity(o.input) or nil
  self.counts = { accepted = 0, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 0 }
  self.this_run = { accepted = 0, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 0 }
  self.prefix = 0
  self.done = {}        -- sorted, disjoint, non-adjacent ranges {a, b} beyond the prefix
  self.open = {}        -- closed spans not yet done (set)
  self.reject_offset, self.accepted_offset = 0, 0
  self.old_done, self.old_inflight = {}, {}
  self.od_i, self.oi_i = 1, 1
  self.resumed = false
  self.unsaved_spans = false
  if self.checkpoint then
    local f = io.open(self.checkpoint, "rb")
    if f then
      local text = f:read("a")
      f:close()
      local doc, err = json.decode(text)
      if type(doc) ~= "table" or doc.format ~= M.FORMAT then
        return nil, "checkpoint " .. self.checkpoint .. " is not an aep stream checkpoint" .. (err and (": " .. err) or "")
      end
      if doc.input ~= self.input then
        return nil, string.format("checkpoint %s belongs to another input (%s, not %s): use another --checkpoint file",
          self.checkpoint, tostring(doc.input), tostring(self.input))
      end
      if doc.dataset ~= nil and self.dataset ~= nil and doc.dataset ~= self.dataset then
        return nil, string.format("checkpoint %s belongs to another dataset (%s, not %s)",
          self.checkpoint, tostring(doc.dataset), tostring(self.dataset))
      end
      local how = "delete " .. self.checkpoint .. " to stream this input from the start, or give another --checkpoint file"
      local changed = identity_mismatch(self.input, doc.input_identity)
      if changed then
        return nil, string.format("checkpoint %s does not match its input: %s. It counts positions of the "
          .. "old content as done, which would skip records of this one: %s", self.checkpoint, changed, how)
      end
      if doc.mapping_sha256 ~= nil and doc.mapping_sha256 ~= self.mapping_sha256 then
        local what = self.mapping_sha256 == "none" and "this run has no --mapping"
          or doc.mapping_sha256 == "none" and ("it was written without a mapping, this run has " .. tostring(o.mapping))
          or ("the text of the mapping " .. tostring(o.mapping) .. " changed since")
        return nil, string.format("checkpoint %s was written with another mapping (%s): the records it counts "
          .. "as done were mapped by the old one; %s (a reject file can be replayed with the new mapping)",
          self.checkpoint, what, how)
      end
      self.resumed = true
      self.prefix = math.tointeger(doc.prefix) or 0
      for _, k in ipairs({ "accepted", "rejected", "skipped", "failed", "possibly_duplicated" }) do
        self.counts[k] = math.tointeger((doc.counts or {})[k]) or 0
      end
      for _, r in ipairs(doc.done or {}) do
        local a, b = math.tointeger(r[1]), math.tointeger(r[2])
        self.done[#self.done + 1] = { a, b }
        self.old_done[#self.old_done + 1] = { a, b }
      end
      for _, r in ipairs(doc.inflight or {}) do
        self.old_inflight[#self.old_inflight + 1] = { math.tointeger(r[1]), math.tointeger(r[2]) }
      end
      table.sort(self.old_inflight, function(x, y) return x[1] < y[1] end)
      self.old_prefix = self.prefix
      self.reject_offset = math.tointeger(doc.reject_offset) or 0
      self.accepted_offset = math.tointeger(doc.accepted_offset) or 0
      if doc.reject_file and self.reject_path and doc.reject_file ~= self.reject_path then
        return nil, string.format("checkpoint %s was written with --reject-file %s: give the same file to resume",
          self.checkpoint, doc.reject_file)
      end
      self.reject_path = self.reject_path or doc.reject_file
      if doc.accepted_file and self.accepted_path and doc.accepted_file ~= self.accepted_path then
        return nil, string.format("checkpoint %s was written with --accepted-file %s: give the same file to resume",
          self.checkpoint, doc.accepted_file)
      end
      self.accepted_path = self.accepted_path or doc.accepted_file
      self.was_complete = doc.complete == true
    end
  end
  if self.resumed then
    if self.reject_path then
      local ok, err = truncate_file(self.reject_path, self.reject_offset)
      if not ok then return nil, "cannot resume: reject file " .. tostring(err) end
    end
    if self.accepted_path then
      local ok, err = truncate_file(self.accepted_path, self.accepted_offset)
      if not ok then return nil, "cannot resume: accepted file " .. tostring(err) end
    end
  end
  return self
end

-- Open an output file lazily: appended to when resuming, truncated otherwise. Unbuffered: each
-- finished span's lines go out in one write of whole lines, so a process killed at any moment
-- leaves no line cut in the middle (a buffered stream flushes at arbitrary byte counts).
function Ledger:_file(which)
  local key, path = which .. "_fh", self[which .. "_path"]
  if self[key] then return self[key] end
  if not path then return nil end
  local fh, err = io.open(path, self.resumed and "ab" or "wb")
  if not fh then error("cannot write " .. path .. ": " .. tostring(err), 0) end
  fh:setvbuf("no")
  self[key] = fh
  return fh
end

-- ledger:status(pos) -> "done" | "redo" | nil. Positions must be asked in increasing order.
function Ledger:status(pos)
  if not self.resumed then return nil end
  if pos <= self.old_prefix then return "done" end
  local od = self.old_done
  while od[self.od_i] and od[self.od_i][2] < pos do self.od_i = self.od_i + 1 end
  local r = od[self.od_i]
  if r and r[1] <= pos then return "done" end
  local oi = self.old_inflight
  while oi[self.oi_i] and oi[self.oi_i][2] < pos do self.oi_i = self.oi_i + 1 end
  r = oi[self.oi_i]
  if r and r[1] <= pos then return "redo" end
  return nil
end

-- ledger:resume_prefix() -> the last position already done from the start (the old prefix)
function Ledger:resume_prefix()
  return self.old_prefix or 0
end

-- ledger:new_span(first) -> span (open: records are still being added)
function Ledger:new_span(first)
  return setmetatable({ first = first, last = first - 1, pending = 0, accepted = 0, rejected = 0,
    skipped = 0, failed = 0, possibly_duplicated = 0, rejects = nil, acc = nil, closed = false,
    sent = false }, Span)
end

-- span:reject(entry_line, kind): a rejected or failed record ("rejected" | "failed")
function Span:reject(line, kind)
  kind = kind or "rejected"
  self[kind] = self[kind] + 1
  local r = self.rejects
  if not r then r = {}; self.rejects = r end
  r[#r + 1] = line
end

-- span:skip(): a record the mapping skipped
function Span:skip()
  self.skipped = self.skipped + 1
end

-- span:accept(n [, dup]): n records accepted (dup: they may have been taken twice)
function Span:accept(n, dup)
  self.accepted = self.accepted + n
  if dup then self.possibly_duplicated = self.possibly_duplicated + n end
end

-- span:accepted_line(pos, xaction_id [, dup]) (only when an accepted file is kept):
-- "position<TAB>xactionId" or "position<TAB>xactionId<TAB>possibly-duplicated"
function Span:accepted_line(pos, xid, dup)
  local a = self.acc
  if not a then a = {}; self.acc = a end
  a[#a + 1] = pos .. "\t" .. tostring(xid) .. (dup and "\tpossibly-duplicated\n" or "\n")
end

-- ledger.on_done = function(first, last) (optional): called when the records at positions
-- first..last reach their final outcome (their span is done; spans finish out of order), after
-- their reject and accepted lines are written.

-- ledger:close_span(span, last, parts): no more records join the span; `parts` requests carry its
-- messages (0: everything was settled locally and the span is done at once).
function Ledger:close_span(span, last, parts)
  span.last = last
  span.pending = parts
  span.closed = true
  if parts == 0 then
    self:_complete(span)
  else
    self.open[span] = true
  end
end

-- ledger:mark_sent(span) -> true when the checkpoint must be written before the request leaves
-- (the span's first request is about to go: a resumed run must treat its records as possibly
-- delivered)
function Ledger:mark_sent(span)
  if span.sent then return false end
  -- one checkpoint write declares every closed span as leaving (the few queued behind this one
  -- go out within the next moments), instead of one fsync'd write per request
  for s in pairs(self.open) do s.sent = true end
  span.sent = true
  self.unsaved_spans = true
  return self.checkpoint ~= nil
end

-- ledger:part_done(span): one of the span's requests reached its final outcome
function Ledger:part_done(span)
  span.pending = span.pending - 1
  span.extra_parts = nil
  if span.pending == 0 and span.closed then
    self.open[span] = nil
    self:_complete(span)
  end
end

-- ledger:add_part(span): the span now has one more request (a 413 split, a partial retry)
function Ledger:add_part(span)
  span.pending = span.pending + 1
end

-- Insert [a, b] into the done set, merging, and advance the prefix.
function Ledger:_mark_done(a, b)
  local done = self.done
  local i = 1
  while done[i] and done[i][2] < a - 1 do i = i + 1 end
  -- done[i] (if any) ends at or after a-1: merge every range that touches [a, b]
  local na, nb = a, b
  local j = i
  while done[j] and done[j][1] <= b + 1 do
    if done[j][1] < na then na = done[j][1] end
    if done[j][2] > nb then nb = done[j][2] end
    j = j + 1
  end
  for _ = i, j - 1 do table.remove(done, i) end
  table.insert(done, i, { na, nb })
  -- advance the prefix
  while done[1] and done[1][1] <= self.prefix + 1 do
    if done[1][2] > self.prefix then self.prefix = done[1][2] end
    table.remove(done, 1)
  end
end

function Ledger:_complete(span)
  local c, t = self.counts, self.this_run
  for _, k in ipairs({ "accepted", "rejected", "skipped", "failed", "possibly_duplicated" }) do
    local v = span[k]
    if v > 0 then
      c[k] = c[k] + v
      t[k] = t[k] + v
    end
  end
  if span.rejects then
    local fh = self:_file("reject")
    if fh then
      local text = concat(span.rejects)
      fh:write(text)
      self.reject_offset = self.reject_offset + #text
      self.rejects_unsynced = true
    end
    if self.on_rejects then self.on_rejects(span.rejects) end
  end
  if span.acc then
    local fh = self:_file("accepted")
    if fh then
      local text = concat(span.acc)
      fh:write(text)
      self.accepted_offset = self.accepted_offset + #text
      self.accepted_unsynced = true
    end
  end
  span.rejects, span.acc = nil, nil
  if span.last >= span.first then
    self:_mark_done(span.first, span.last)
    -- the source hears of it (a Kafka source may now commit these records' offsets)
    if self.on_done then self.on_done(span.first, span.last) end
  end
  self.dirty = true
end

-- ledger:total() -> accepted + rejected + skipped + failed
function Ledger:total()
  local c = self.counts
  return c.accepted + c.rejected + c.skipped + c.failed
end

-- ledger:save([complete]) -> writes the checkpoint (when there is one and something changed)
function Ledger:save(complete)
  if not (self.dirty or self.unsaved_spans or complete) then return end
  -- entries reach the disk before the checkpoint that counts them
  local unsynced = { reject = self.rejects_unsynced, accepted = self.accepted_unsynced }
  for _, which in ipairs({ "reject", "accepted" }) do
    local fh = self[which .. "_fh"]
    if fh then
      fh:flush()
      if self.checkpoint and unsynced[which] then host.fsync(fh) end
    end
  end
  self.rejects_unsynced, self.accepted_unsynced = false, false
  if self.checkpoint then
    local inflight = {}
    for span in pairs(self.open) do
      if span.sent then inflight[#inflight + 1] = { span.first, span.last } end
    end
    table.sort(inflight, function(x, y) return x[1] < y[1] end)
    local done = {}
    for i, r in ipairs(self.done) do done[i] = { r[1], r[2] } end
    local doc = {
      format = M.FORMAT, input = self.input, dataset = self.dataset,
      prefix = self.prefix, done = json.array(done), inflight = json.array(inflight),
      counts = self.counts, reject_file = self.reject_path, reject_offset = self.reject_offset,
      accepted_file = self.accepted_path, accepted_offset = self.accepted_offset,
      complete = complete and true or false,
      input_identity = self.input_identity, mapping_sha256 = self.mapping_sha256,
      updated = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    }
    local ok, err = host.write_file(self.checkpoint, json.encode(doc) .. "\n")
    if not ok then error("cannot write the checkpoint " .. self.checkpoint .. ": " .. tostring(err), 0) end
    self.saves = (self.saves or 0) + 1
  end
  self.dirty = false
  self.unsaved_spans = false
end

-- ledger:close(): flush and close the output files
function Ledger:close()
  for _, which in ipairs({ "reject", "accepted" }) do
    local fh = self[which .. "_fh"]
    if fh then fh:close(); self[which .. "_fh"] = nil end
  end
end

return M
