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
-- cost is four appends and no table. A message larger than max_bytes on its own is the caller's
-- to refuse (batcher.fits); add() would still place it alone.
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

-- batcher:fits(message) -> true when the message can travel at all (alone in a batch)
function Batcher:fits(msg)
  return #msg + M.OVERHEAD <= self.max_bytes
end

-- batcher:add(pos, line, msg, orig) -> closed batch | nil, second closed batch | nil
function Batcher:add(pos, line, msg, orig)
  local cur = self.cur
  local size = #msg
  local closed
  if cur.n > 0 and cur.bytes + size + 1 > self.max_bytes then
    closed = cur
    cur = empty()
    self.cur = cur
  end
  local n = cur.n + 1
  cur.n = n
  cur.bytes = cur.bytes + size + (n > 1 and 1 or 0)
  cur.msgs[n] = msg
  cur.pos[n] = pos
  cur.lines[n] = line
  cur.origs[n] = orig
  if n >= self.max_count then
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

-- batcher.slice(batch, first, last) -> a new batch holding messages first..last of batch
function M.slice(batch, first, last)
  local b = empty()
  local n = 0
  for i = first, last do
    n = n + 1
    b.msgs[n], b.pos[n], b.lines[n], b.origs[n] = batch.msgs[i], batch.pos[i], batch.lines[i], batch.origs[i]
    b.bytes = b.bytes + #batch.msgs[i] + (n > 1 and 1 or 0)
  end
  b.n = n
  return b
end

-- batcher.pick(batch, indexes) -> a new batch holding the listed messages of batch, in order
function M.pick(batch, idx)
  local b = empty()
  for n, i in ipairs(idx) do
    b.msgs[n], b.pos[n], b.lines[n], b.origs[n] = batch.msgs[i], batch.pos[i], batch.lines[i], batch.origs[i]
    b.bytes = b.bytes + #batch.msgs[i] + (n > 1 and 1 or 0)
    b.n = n
  end
  return b
end

return M
