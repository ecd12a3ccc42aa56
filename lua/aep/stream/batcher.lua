-- aep.stream.batcher: packs messages into batch requests for /collection/batch/{inlet}: at most
-- max_count messages and max_bytes of body ('{"messages":[' m1 ',' m2 ... ']}').
--
--   local b = batcher.new{max_bytes = 1000000, max_count = 500}
--   local full1, full2 = b:add(position, lineno, message, original_text)
--   local last = b:flush()
--
-- add() returns the batches it closed: the current one when this message does not fit in it any
-- more, and the new one too when the message alone fills it (max_count = 1). A batch is
-- {n, bytes, msgs = {}, pos = {}, lines = {}, origs = {}}: four parallel arrays, so the per-record
-- cost is four appends and no table (plus origins = {}, the first input's positions of replayed
-- records, set by the pipeline and kept by slice and pick). A message larger than max_bytes on its own is the caller's
-- to refuse (batcher.too_large); add() would still place it alone.
--
-- The loop of aep stream (aep.stream.pipeline) keeps its own open batch, as
-- their spans need, but fill it with the same rules: batcher.too_large, batcher.room_for and
-- batcher.append.
local M = {}

M.OVERHEAD = #'{"messages":[]}'

-- batcher.body(batch [, first, last]) -> the JSON body of the batch (or of a slice of it)
function M.body(batch, first, last)
  return '{"messages":[' .. table.concat(batch.msgs, ",", first or 1, last or batch.n) .. "]}"
end

-- batcher.empty() -> a new empty batch
local function empty()
  return { n = 0, bytes = M.OVERHEAD, msgs = {}, pos = {}, lines = {}, origs = {} }
end
M.empty = empty

-- batcher.too_large(size, max_bytes) -> the reject reason when a message of size bytes cannot
-- travel even alone in a batch, else nil
function M.too_large(size, max_bytes)
  if size + M.OVERHEAD <= max_bytes then return nil end
  return string.format(
    "the message is %d bytes: over AEP's 1 MB request limit (%d bytes with the batch wrapper)",
    size, max_bytes)
end

-- batcher.room_for(batch, size, max_bytes) -> whether a message of size bytes still fits in batch
-- (an empty batch takes any message)
function M.room_for(b, size, max_bytes)
  return b.n == 0 or b.bytes + size + 1 <= max_bytes
end

-- batcher.append(batch, msg, pos, line, orig) -> the batch's new count (its bytes count the comma
-- before every message but the first)
local function append(b, msg, pos, line, orig)
  local n = b.n + 1
  b.n = n
  b.bytes = b.bytes + #msg + (n > 1 and 1 or 0)
  b.msgs[n], b.pos[n], b.lines[n], b.origs[n] = msg, pos, line, orig
  return n
end
M.append = append

local Batcher = {}
Batcher.__index = Batcher

-- batcher.new{max_bytes=, max_count=} -> batcher
function M.new(o)
  local self = setmetatable({}, Batcher)
  self.max_bytes = o.max_bytes or 1000000
  self.max_count = o.max_count or 500
  self.cur = empty()
  return self
end

-- batcher:add(pos, line, msg, orig) -> closed batch | nil, second closed batch | nil
function Batcher:add(pos, line, msg, orig)
  local cur = self.cur
  local closed
  if not M.room_for(cur, #msg, self.max_bytes) then
    closed = cur
    cur = empty()
    self.cur = cur
  end
  if append(cur, msg, pos, line, orig) >= self.max_count then
    self.cur = empty()
    if closed then return closed, cur end
    return cur
  end
  return closed
end

-- batcher:pending() -> number of messages in the open batch
function Batcher:pending()
  return self.cur.n
end

-- batcher:flush() -> the open batch if it holds any message, else nil
function Batcher:flush()
  local cur = self.cur
  if cur.n == 0 then return nil end
  self.cur = empty()
  return cur
end

-- message i of batch appended to b, with its original position when it was replayed (origins)
local function copy(b, batch, i)
  append(b, batch.msgs[i], batch.pos[i], batch.lines[i], batch.origs[i])
  local o = batch.origins and batch.origins[i]
  if o ~= nil then
    if not b.origins then b.origins = {} end
    b.origins[b.n] = o
  end
end

-- batcher.slice(batch, first, last) -> a new batch holding messages first..last of batch
function M.slice(batch, first, last)
  local b = empty()
  for i = first, last do copy(b, batch, i) end
  return b
end

-- batcher.pick(batch, indexes) -> a new batch holding the listed messages of batch, in order
function M.pick(batch, idx)
  local b = empty()
  for _, i in ipairs(idx) do copy(b, batch, i) end
  return b
end

return M
