-- aep.stream.workers: the main thread's side of `aep stream --workers N`. It reads records ahead
-- from a file source, hands them as text in chunks to N worker threads (aep.workers, each running
-- aep.stream.worker with its own copy of the mapping), and gives the pipeline each position's
-- outcome strictly in input order: the pipeline keeps batching, sending and accounting on the
-- main thread exactly as with one worker, so the ledger, checkpoint, reject, accepted and report
-- files are the same.
--
--   local feed, why = workers.start(source, {n=, ledger=, mapping=, timeout_ms=, set=, schema=,
--                                            set_name=, ctx=})
--   -- feed: pipeline.run{feed = feed, ...}; false, why: map in-process; nil, err: cannot start
--   feed:next() -> ok, value, text, line, nil, exit_code   (value: the entity's JSON text, nil
--                  for a skip; a reason when ok is false; exit_code: the mapping called os.exit)
--   feed:skip() -> true | nil (a position the checkpoint counts as done), feed:status(pos)
--   feed:close()
--
-- Only file sources of JSON Lines, JSON arrays and CSV go to workers; a replayed reject file and
-- Kafka sources map in-process. The text a record is handed over as: a JSON Lines line or a JSON
-- array element as read (decoding moves to the workers); a CSV row as the JSON of the record the
-- reader built. Rows must be split on the main thread anyway (a quoted field spans lines, so
-- where a row ends depends on the rows before it). Handing over the row's text instead would add
-- nothing on the main thread but make every worker split it again with the reader's dialect
-- (header, delimiter, field count), a second implementation to keep in step; the JSON costs the
-- main thread one cjson.encode, measured at about a fifth of the reader's split of a 10-field row
-- (and a worker's cjson.decode a quarter of a second split), and the worker gets exactly the
-- record the in-process path maps.
-- Read-ahead is bounded in chunks and bytes, so memory stays flat whatever the input's size.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local native = require "aep.workers"
local readers = require "aep.stream.readers"
local worker = require "aep.stream.worker"

local M = {}

-- Records per hand-off (enough to make the locking cost per record negligible), the bytes that
-- close a chunk early (large records), and the chunks in flight per worker.
M.CHUNK_RECORDS = 256
M.CHUNK_BYTES = 1024 * 1024
M.CHUNKS_PER_WORKER = 2

local pack, unpack = string.pack, string.unpack
local byte, find, sub = string.byte, string.find, string.sub
local utf8_len = utf8.len
local BOM = "\239\187\191"
local DECODED, MARKED = worker.FLAG_DECODED, worker.FLAG_MARKED
local ENTITY, REJECT, SKIP, EXIT = worker.ENTITY, worker.REJECT, worker.SKIP, worker.EXIT

-- entry kinds besides the worker's: read here, not mapped
local WORK, RESUMED, END, READ_REJECT = 10, 11, 12, 13

-- workers.default_count() -> the number of online processors
function M.default_count() return native.cores() end

-- The raw readers: one position each, as the reader's own next would find it, without decoding.
-- -> true, text to hand over, the record's text, line | false, reason, text, line | nil[, error]
local function jsonl_raw(r)
  local src = r.src
  while true do
    local line, lineno, code = src:line()
    if line == nil then
      if lineno == nil then return nil end
      if code == "TOO_LARGE" then
        return false, "the record is longer than " .. readers.MAX_RECORD .. " bytes (AEP takes at most 1 MB per request)", nil, src:lineno()
      end
      return nil, lineno
    end
    local text = line
    local b = byte(line, 1)
    if b == 239 and lineno == 1 and sub(line, 1, 3) == BOM then
      text = sub(line, 4)
      b = byte(text, 1)
    end
    if b == 123 or (b and find(text, "%S")) then return true, line, text, lineno end
  end
end

local function array_raw(r)
  if r.done then return nil end
  local text, lineno, code = r.src:array_item()
  if text == nil then
    r.done = true
    if lineno == nil then return nil end
    if code == "READ" or code == "TRAILING" then return nil, lineno end
    return false, lineno .. " (the rest of the input was not read)", nil, r.src:lineno()
  end
  return true, text, text, lineno
end

-- a CSV row is split by the reader (its rows may span lines): the record goes as its JSON
local function csv_raw(r)
  local ok, v, text, lineno = r.next(r)
  if ok then
    local flags = DECODED
    if r.marked then flags = flags | MARKED; r.marked = false end
    return true, cjson.encode(v), text, lineno, flags
  end
  return ok, v, text, lineno
end

-- The first JSON Lines record tells whether the input replays a reject file (read in-process).
-- Peek at the lines up to the first that decodes, then hand them back to the reader.
local function jsonl_is_replay(r)
  local src, held = r.src, {}
  local replay
  while #held < 1000 do
    local line, lineno, code = src:line()
    held[#held + 1] = { line, lineno, code }
    if line == nil then break end
    if lineno == 1 and sub(line, 1, 3) == BOM then line = sub(line, 4) end
    if find(line, "%S") and utf8_len(line) then
      local v = cjson_safe.decode(line)
      if v ~= nil then
        replay = type(v) == "table" and v.aep_reject ~= nil
        break
      end
    end
  end
  if #held >= 1000 then replay = true end -- no decodable record near the start: keep the in-process path
  local i = 0
  r.src = setmetatable({
    line = function()
      i = i + 1
      local h = held[i]
      if i >= #held then r.src = src end
      return h[1], h[2], h[3]
    end,
  }, { __index = function(_, k)
    local f = src[k]
    if type(f) == "function" then return function(_, ...) return f(src, ...) end end
    return f
  end })
  return replay
end

local Feed = {}
Feed.__index = Feed

-- Read one chunk ahead and hand its records to the workers.
function Feed:read_chunk()
  local reader, raw, ledger = self.reader, self.raw, self.ledger
  local c = { n = 0, kind = {}, v = {}, text = {}, line = {}, st = {}, at = {} }
  local parts, np, bytes = {}, 0, 0
  local kind, v, text, line, st, at = c.kind, c.v, c.text, c.line, c.st, c.at
  local where_now = reader.progress
  while c.n < M.CHUNK_RECORDS and bytes < M.CHUNK_BYTES do
    local pos = self.rpos + 1
    self.rpos = pos
    local i = c.n + 1
    c.n = i
    local s = self.resumed and ledger:status(pos) or nil
    st[i] = s
    if s == "done" then
      if reader.skip(reader) then
        kind[i] = RESUMED
      else
        kind[i] = END
        self.eof = true
        break
      end
    else
      local ok, a, t, l, flags = raw(reader)
      if ok == nil then
        kind[i], v[i] = END, a
        self.eof = true
        break
      elseif ok == false then
        kind[i], v[i], text[i], line[i] = READ_REJECT, a, t, l
      else
        kind[i], text[i], line[i] = WORK, t, l
        -- string.pack's "<i8i8Bs4" written as its head and the text: the text is copied once, by concat
        parts[np + 1] = pack("<i8i8BI4", pos, l or 0, flags or 0, #a)
        parts[np + 2] = a
        np = np + 2
        bytes = bytes + #a
      end
    end
    if where_now then at[i] = where_now(reader) end
  end
  if np > 0 then c.seq = self.pool:submit(table.concat(parts)) end
  local q = self.queue
  q[#q + 1] = c
end

-- The next chunk, its results in: read ahead first, so the workers are busy while this waits.
function Feed:advance()
  local q = self.queue
  while not self.eof and #q < self.max_chunks do self:read_chunk() end
  local c = table.remove(q, 1)
  if not c then
    c = { n = 1, kind = { END }, v = {}, text = {}, line = {}, st = {}, at = {} }
  elseif c.seq then
    local res, err, code = self.pool:take(c.seq)
    if not res then
      if code == "INTERRUPTED" then error("interrupted", 0) end
      -- nothing of this chunk is settled: the run stops as on a read error (checkpoint kept)
      c = { n = 1, kind = { END }, v = { "a mapping worker failed: " .. tostring(err) }, text = {}, line = {}, st = {}, at = {} }
    else
      local at, kind, v = 1, c.kind, c.v
      for i = 1, c.n do
        if kind[i] == WORK then
          kind[i], v[i], at = unpack("<Bs4", res, at)
        end
      end
    end
  end
  self.cur, self.ci = c, 1
  return c
end

function Feed:status()
  local c = self.cur
  if not c or self.ci > c.n then c = self:advance() end
  return c.st[self.ci]
end

-- feed:progress() -> bytes of the input up to the last record handed out, input size (the
-- reader itself is chunks ahead: its own position would count records not settled yet)
function Feed:progress()
  if not self.reader.progress then return nil end
  local _, total = self.reader:progress()
  return self.handed_bytes or 0, total
end

function Feed:skip()
  local c = self.cur
  if not c or self.ci > c.n then c = self:advance() end
  local i = self.ci
  self.ci = i + 1
  self.handed_bytes = c.at[i] or self.handed_bytes
  return c.kind[i] == RESUMED or nil
end

function Feed:next()
  local c = self.cur
  if not c or self.ci > c.n then c = self:advance() end
  local i = self.ci
  local k, v = c.kind[i], c.v[i]
  if k == END then return nil, v end
  self.ci = i + 1
  self.handed_bytes = c.at[i] or self.handed_bytes
  local text, line = c.text[i], c.line[i]
  c.text[i] = nil
  if k == ENTITY then return true, v, text, line end
  if k == SKIP then return true, nil, text, line end
  if k == EXIT then return false, "mapping called os.exit(" .. v .. ")", text, line, nil, v end
  return false, v, text, line -- REJECT (the mapping's or the decoding's), READ_REJECT
end

function Feed:close()
  if self.pool then self.pool:close() end
  self.pool = nil
end

-- workers.start(source, o) -> feed | false, why (map in-process) | nil, err
-- o: n (workers), ledger, mapping (a Lua mapping file) and timeout_ms, or set (a mapping set
-- ready for the target), schema (the resolved target schema) and set_name; ctx (the mapping's)
function M.start(source, o)
  local format = source.format
  local raw = (format == "jsonl" and jsonl_raw) or (format == "json" and array_raw) or (format == "csv" and csv_raw)
  if not raw or not source.src or source.replay then return false, "only file inputs map on workers" end
  if format == "jsonl" and jsonl_is_replay(source) then return false, "a replayed reject file maps in-process" end
  local ctx = o.ctx or {}
  local cfg = {
    format = format, mapping = o.mapping, timeout_ms = o.timeout_ms,
    mapping_set = o.set, schema = o.schema, name = o.set_name,
    -- each worker's ctx is its own table: what a mapping may read is resolved here once
    ctx = { input = ctx.input, dataset_id = ctx.dataset_id, schema_id = ctx.schema_id,
            tenant = (not o.set) and ctx.tenant or nil },
  }
  local pool, err = native.start({
    n = o.n, module = "aep.stream.worker", config = json.encode(cfg),
    path = package.path, cpath = package.cpath,
  })
  if not pool then return nil, err end
  return setmetatable({
    pool = pool, reader = source, raw = raw, ledger = o.ledger, resumed = o.ledger.resumed,
    rpos = 0, queue = {}, max_chunks = M.CHUNKS_PER_WORKER * o.n + 1, n = o.n,
  }, Feed)
end

return M
