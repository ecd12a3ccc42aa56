-- aep.stream.pacer: open-model pacing of requests for `aep stream` — two token buckets, one in
-- requests per second, one in messages per second, kept as GCRA "theoretical arrival times" so a
-- bucket costs two numbers and a request of n messages is one check.
--
--   local p = pacer.new{requests = 1000, messages = 10000, burst = 1, now = host.monotonic}
--   local wait = p:reserve(n)   -- 0: send now (the tokens are taken); > 0: seconds to wait first
--
-- Guarantee: over any interval of W seconds at most W * requests + burst requests are let
-- through, and at most W * messages + burst_messages messages (burst_messages defaults to one
-- request's worth, so a full batch is never refused for being larger than a second's budget at
-- low rates). A rate of nil, 0 or math.huge means no limit.
local M = {}

local Pacer = {}
Pacer.__index = Pacer

local function limited(r) return r ~= nil and r > 0 and r < math.huge end

-- pacer.new{requests=, messages=, burst=, now=} -> pacer
function M.new(o)
  o = o or {}
  local self = setmetatable({}, Pacer)
  self.now = o.now or require("aep.host").monotonic
  if limited(o.requests) then
    self.req_interval = 1 / o.requests
    self.req_tolerance = ((o.burst or 1) - 1) * self.req_interval
    self.req_tat = -math.huge
  end
  if limited(o.messages) then
    self.msg_interval = 1 / o.messages
    self.msg_tolerance = (o.burst_messages or 0) * self.msg_interval
    self.msg_tat = -math.huge
  end
  self.requests, self.messages = o.requests, o.messages
  return self
end

-- pacer:reserve(n) -> 0 (go: tokens taken) | seconds to wait before asking again
function Pacer:reserve(n)
  local ri, mi = self.req_interval, self.msg_interval
  if not ri and not mi then return 0 end
  local now = self.now()
  local wait = 0
  if ri then
    local allowed = self.req_tat - self.req_tolerance
    if allowed > now then wait = allowed - now end
  end
  if mi then
    local allowed = self.msg_tat - self.msg_tolerance
    if allowed - now > wait then wait = allowed - now end
  end
  if wait > 0 then return wait end
  if ri then
    local tat = self.req_tat
    self.req_tat = (tat > now and tat or now) + ri
  end
  if mi then
    local tat = self.msg_tat
    self.msg_tat = (tat > now and tat or now) + n * mi
  end
  return 0
end

-- pacer:describe() -> "1000 requests/s, 10000 messages/s" | "unlimited"
function Pacer:describe()
  local parts = {}
  if self.req_interval then parts[#parts + 1] = string.format("%g requests/s", self.requests) end
  if self.msg_interval then parts[#parts + 1] = string.format("%g messages/s", self.messages) end
  return #parts > 0 and table.concat(parts, ", ") or "unlimited"
end

return M
