-- aep.stream.sender: batches to AEP over the aep.http curl-multi pool, paced, retried, and each
-- message brought to its final outcome in the ledger.
--
--   local s = sender.new{pool=, url=, sync=, headers=, pacer=, ledger=, on_reject=, auth=, ...}
--   s:submit(batch)        -- batch from aep.stream.batcher, with batch.span set
--   s:pump(block)          -- start what pacing allows, take in completions (block: wait a little)
--   s:outstanding()        -- batches queued, waiting for a retry, or in flight
--
-- Outcomes (docs/AEP-API-FACTS.md §8.3): 207 -> per message: {"xactionId"} accepted, {"statusCode":4xx}
-- rejected with AEP's status and message, a retryable statusCode (429/5xx) sent again alone;
-- 200 (one message, sync validation) accepted; 400 rejects the request's messages with AEP's
-- report (never retried); 413 splits the batch in halves (a single message: rejected);
-- 429/503 retried after Retry-After or an exponential backoff with jitter; 500/502/504 and
-- transport errors after the request may have left (timeout, connection reset or closed without
-- an answer) retried too, but the records are then counted as possibly duplicated when finally
-- accepted — never resent silently; connection failures before sending (CONNECT, DNS) retried
-- as plain retries — unless the request may have left before: a batch whose outcome was once
-- unknown stays possibly duplicated whatever later attempts say, and a request that curl sent
-- again by itself (aep.http's `resent`: a reused connection died before any answer byte) counts
-- as possibly delivered twice, whatever its final outcome. Retries exhausted -> failed. 401/403 (an authenticated inlet): a fresh
-- token, up to MAX_REAUTH times per batch, then fatal; 404 (no such inlet): fatal. A fatal condition fails what was not sent and
-- stops the run.
local cjson_safe = require "cjson.safe"
local host = require "aep.host"
local log = require "aep.log"
local xdm = require "aep.xdm"
local batcher = require "aep.stream.batcher"

local M = {}

-- Transport codes of aep.http for which the request certainly did not reach the server.
M.NOT_SENT = { CONNECT = true, DNS = true, URL = true }
-- Statuses retried without doubt (the server says it did not take the request) ...
M.RETRY_CLEAN = { [429] = true, [503] = true }
-- ... and those retried although the server may have processed the request.
M.RETRY_UNSURE = { [500] = true, [502] = true, [504] = true }
-- Fresh tokens tried per batch on 401/403 before the run stops (authenticated inlets).
M.MAX_REAUTH = 3

local Sender = {}
Sender.__index = Sender

-- sender.new(o) -> sender
-- o: pool (aep.http pool), url, sync (one message per request, body = the message), headers,
-- pacer, ledger, on_reject(batch, i, status, reason, kind), on_accept(batch, i, xaction_id) |
-- nil, frame, on_status, concurrency, max_attempts (8), backoff_base (0.2 s), backoff_cap (20 s),
-- max_retry_after (300 s), auth (session with :token() / :invalidate()) | nil, now, sleep, random
function M.new(o)
  local self = setmetatable({}, Sender)
  self.pool = o.pool
  self.url = o.url
  self.sync = o.sync and true or false
  self.headers = o.headers or { ["Content-Type"] = "application/json" }
  self.pacer = o.pacer
  self.ledger = o.ledger
  self.on_reject = o.on_reject
  self.on_accept = o.on_accept
  self.auth = o.auth
  -- another API's framing and answers (aep.stream.edge_target): frame(batch) -> body,
  -- on_status(sender, batch, resp) -> true when it settled the answer
  self.frame = o.frame
  self.on_status = o.on_status
  self.concurrency = o.concurrency or 8
  self.max_attempts = o.max_attempts or 8
  self.backoff_base = o.backoff_base or 0.2
  self.backoff_cap = o.backoff_cap or 20
  self.max_retry_after = o.max_retry_after or 300
  self.now = o.now or host.monotonic
  self.sleep = o.sleep or host.sleep
  self.random = o.random or math.random
  self.retry_after = o.retry_after or require("aep.platform").retry_after
  self.verbose = log.is_verbose()
  self.queue, self.qhead, self.qtail = {}, 1, 0
  self.waiting = {}   -- batches waiting for their retry time
  self.inflight = 0
  self.stats = { requests = 0, retries = 0, splits = 0, ambiguous = 0, resent = 0, bytes = 0, statuses = {} }
  return self
end

-- sender:submit(batch): queue a batch (batch.span must be set)
function Sender:submit(b)
  b.attempts = b.attempts or 0
  if self.fatal then return self:_settle_all(b, nil, "not sent: " .. self.fatal, "failed") end
  local t = self.qtail + 1
  self.queue[t] = b
  self.qtail = t
end

-- sender:outstanding() -> batches not yet settled (queued, waiting, in flight)
function Sender:outstanding()
  return (self.qtail - self.qhead + 1) + #self.waiting + self.inflight
end

-- sender:in_flight() -> requests on the wire
function Sender:in_flight() return self.inflight end

local function status_reason(status, body)
  local doc = body and body ~= "" and cjson_safe.decode(body)
  local msg
  if type(doc) == "table" then
    local report = type(doc.report) == "table" and doc.report or nil
    msg = (report and report.message) or doc.detail or doc.message or doc.title
    -- sync validation: list the violations AEP found (at most 5 per message)
    local cause = report and type(report.cause) == "table" and report.cause._streamingValidation
    if type(cause) == "table" then
      local parts = {}
      for _, leaf in ipairs(xdm.leaves(cause)) do
        parts[#parts + 1] = (leaf.pointerToViolation and (leaf.pointerToViolation .. ": ") or "") .. tostring(leaf.message)
      end
      if #parts > 0 then msg = tostring(msg or "invalid") .. " (" .. table.concat(parts, "; ") .. ")" end
    end
  end
  if msg == nil and body and body ~= "" then msg = body:sub(1, 300) end
  return string.format("HTTP %d%s", status, msg and (": " .. tostring(msg)) or "")
end
M.status_reason = status_reason

-- Every message of batch b gets the same final outcome.
function Sender:_settle_all(b, status, reason, kind)
  for i = 1, b.n do self.on_reject(b, i, status, reason, kind) end
  self.ledger:part_done(b.span)
end

function Sender:_accept(b, i, xid)
  local span = b.span
  span:accept(1, b.dup)
  if self.on_accept then self.on_accept(b, i, xid) end
end

function Sender:_backoff(attempt)
  local d = math.min(self.backoff_cap, self.backoff_base * 2 ^ (attempt - 1))
  return d / 2 + self.random() * d / 2
end

-- Schedule b again, or fail it when its attempts are spent.
function Sender:_retry(b, why, wait)
  b.attempts = b.attempts + 1
  if b.attempts >= self.max_attempts then
    local reason = string.format("failed after %d attempts: %s%s", b.attempts, why,
      b.dup and " (an earlier attempt may have been delivered)" or "")
    return self:_settle_all(b, nil, reason, "failed")
  end
  wait = wait or self:_backoff(b.attempts)
  if wait > self.max_retry_after then wait = self.max_retry_after end
  b.due = self.now() + wait
  b.last_error = why
  self.stats.retries = self.stats.retries + 1
  self.waiting[#self.waiting + 1] = b
end

-- A new request for part of b's messages (413 halves, per-message retries).
function Sender:_spawn(b, part)
  part.span = b.span
  part.dup = b.dup
  part.attempts = 0
  self.ledger:add_part(b.span)
  return part
end

function Sender:_fatal(message)
  if not self.fatal then self.fatal = message end
  -- nothing more is sent: what is queued or waiting fails with the reason
  local reason = "not sent: " .. message
  for i = self.qhead, self.qtail do
    local b = self.queue[i]
    self.queue[i] = nil
    self:_settle_all(b, nil, reason, "failed")
  end
  self.qhead, self.qtail = 1, 0
  local waiting = self.waiting
  self.waiting = {}
  for _, b in ipairs(waiting) do self:_settle_all(b, nil, reason, "failed") end
end

function Sender:_on_207(b, resp)
  local doc = cjson_safe.decode(resp.body or "")
  local responses = type(doc) == "table" and doc.responses
  if type(responses) ~= "table" then
    -- an answer we cannot read: the batch may have been taken
    b.dup = true
    self.stats.ambiguous = self.stats.ambiguous + 1
    return self:_retry(b, "unreadable 207 answer")
  end
  local again, again_unsure
  for i = 1, b.n do
    local r = responses[i]
    if type(r) ~= "table" then
      again_unsure = again_unsure or {}
      again_unsure[#again_unsure + 1] = i
    else
      local code = tonumber(r.statusCode)
      code = code and (math.tointeger(code) or code)
      if r.xactionId ~= nil and (code == nil or code < 300) then
        self:_accept(b, i, r.xactionId)
      elseif code and (M.RETRY_CLEAN[code] or M.RETRY_UNSURE[code]) then
        if M.RETRY_UNSURE[code] then
          again_unsure = again_unsure or {}
          again_unsure[#again_unsure + 1] = i
        else
          again = again or {}
          again[#again + 1] = i
        end
      else
        local msg = r.message
        if msg == nil and type(r.report) == "table" then msg = r.report.message end
        self.on_reject(b, i, code, string.format("HTTP %s: %s", tostring(code or "?"), tostring(msg or "rejected")), "rejected")
      end
    end
  end
  if again then
    local part = self:_spawn(b, batcher.pick(b, again))
    part.attempts = b.attempts
    self:_retry(part, "per-message status in a 207 answer")
  end
  if again_unsure then
    local part = self:_spawn(b, batcher.pick(b, again_unsure))
    part.dup = true
    part.attempts = b.attempts
    self:_retry(part, "per-message error in a 207 answer")
  end
  self.ledger:part_done(b.span)
end

function Sender:_on_200(b, resp)
  local doc = cjson_safe.decode(resp.body or "")
  if self.sync or b.n == 1 then
    if type(doc) == "table" and type(doc.responses) == "table" then return self:_on_207(b, resp) end
    self:_accept(b, 1, type(doc) == "table" and doc.xactionId or nil)
    return self.ledger:part_done(b.span)
  end
  if type(doc) == "table" and type(doc.responses) == "table" then return self:_on_207(b, resp) end
  for i = 1, b.n do self:_accept(b, i, nil) end
  self.ledger:part_done(b.span)
end

function Sender:_complete(c)
  local b = c.context
  self.inflight = self.inflight - 1
  local resp = c.response
  local resent = (resp and resp.resent) or c.resent or 0
  if resent > 0 then
    -- curl sent this request more than once: an earlier copy may have been stored
    b.dup = true
    self.stats.resent = self.stats.resent + resent
    self.stats.ambiguous = self.stats.ambiguous + 1
  end
  if self.verbose then
    log.debug("POST %s: %s (%d messages, positions %d-%d, attempt %d)", self.url,
      resp and tostring(resp.status) or (tostring(c.code) .. ": " .. tostring(c.error)), b.n, b.pos[1] or 0,
      b.pos[b.n] or 0, b.attempts + 1)
  end
  if not resp then
    local code = c.code or "HTTP"
    if code == "INTERRUPTED" then
      self.interrupted = true
      b.unsettled = true
      return
    end
    local why = code .. ": " .. tostring(c.error)
    if code == "TLS" then
      -- a certificate that fails verification fails again on every retry: stop, and say how to fix
      local reason = why .. " (give the CA with --cacert FILE, or --insecure to skip verification)"
      self:_settle_all(b, nil, reason, "failed")
      return self:_fatal(reason)
    end
    if not M.NOT_SENT[code] and resent == 0 then
      b.dup = true
      self.stats.ambiguous = self.stats.ambiguous + 1
    end
    return self:_retry(b, why)
  end
  local status = resp.status
  local st = self.stats.statuses
  st[status] = (st[status] or 0) + 1
  if status == 207 then return self:_on_207(b, resp) end
  if status >= 200 and status < 300 then return self:_on_200(b, resp) end
  if self.on_status and self.on_status(self, b, resp) then return end
  if status == 413 then
    if b.n == 1 then
      return self:_settle_all(b, 413, "HTTP 413: the message is larger than AEP's 1 MB request limit", "rejected")
    end
    self.stats.splits = self.stats.splits + 1
    local half = b.n // 2
    local first = self:_spawn(b, batcher.slice(b, 1, half))
    local second = self:_spawn(b, batcher.slice(b, half + 1, b.n))
    -- the halves go first, ahead of new batches
    self:_requeue_front(second)
    self:_requeue_front(first)
    return self.ledger:part_done(b.span)
  end
  if M.RETRY_CLEAN[status] or M.RETRY_UNSURE[status] then
    if M.RETRY_UNSURE[status] then
      b.dup = true
      self.stats.ambiguous = self.stats.ambiguous + 1
    end
    local ra = self.retry_after(resp.headers or {})
    local wait = ra and (ra + self.random() * 0.1) or nil
    return self:_retry(b, "HTTP " .. status, wait)
  end
  if (status == 401 or status == 403) and self.auth then
    -- the token expired or was revoked: a fresh one (once for all the requests that carried the
    -- same token), and the batch goes again. Only a refusal of the newest token counts against
    -- the batch: requests that left with an older one just go again.
    if b.token ~= self.token then return self:_requeue_front(b) end
    b.reauths = (b.reauths or 0) + 1
    if b.reauths <= M.MAX_REAUTH then
      self.auth:invalidate()
      self.token = nil
      self.stats.reauth = (self.stats.reauth or 0) + 1
      return self:_requeue_front(b)
    end
  end
  if status == 400 then
    return self:_settle_all(b, 400, status_reason(status, resp.body), "rejected")
  end
  local reason = status_reason(status, resp.body)
  if (status == 401 or status == 403) and not self.auth then
    reason = reason .. " (an inlet created with authenticationRequired needs --authenticated)"
  end
  if status == 401 or status == 403 or status == 404 then
    self:_settle_all(b, status, reason, "failed")
    return self:_fatal(reason)
  end
  return self:_settle_all(b, status, reason, "failed")
end

function Sender:_requeue_front(b)
  local h = self.qhead - 1
  self.queue[h] = b
  self.qhead = h
end

function Sender:_request(b)
  local headers = self.headers
  if self.auth then
    headers = {}
    for k, v in pairs(self.headers) do headers[k] = v end
    self.token = self.token or self.auth:token()
    b.token = self.token
    headers["Authorization"] = "Bearer " .. self.token
  end
  local body = self.sync and b.msgs[1] or (self.frame or batcher.body)(b)
  self.stats.bytes = self.stats.bytes + #body
  return { method = "POST", url = self.url, headers = headers, body = body }
end

-- Start what may start now; returns the time (monotonic) when something else may, or nil.
function Sender:_start()
  local now = self.now()
  local wake
  -- retries whose time has come join the front of the queue, oldest first
  local waiting = self.waiting
  if #waiting > 0 then
    local keep = {}
    local due = {}
    for _, b in ipairs(waiting) do
      if b.due <= now then due[#due + 1] = b else
        keep[#keep + 1] = b
        if not wake or b.due < wake then wake = b.due end
      end
    end
    if #due > 0 then
      self.waiting = keep
      table.sort(due, function(x, y) return x.due > y.due end)
      for _, b in ipairs(due) do self:_requeue_front(b) end
    end
  end
  if self.fatal then
    -- nothing more is sent: what came back to the queue after the fatal answer fails too
    if self.qhead <= self.qtail or #self.waiting > 0 then self:_fatal(self.fatal) end
    return nil
  end
  local ledger = self.ledger
  while self.inflight < self.concurrency and self.qhead <= self.qtail do
    local b = self.queue[self.qhead]
    local delay = self.pacer:reserve(b.n)
    if delay > 0 then
      local t = now + delay
      if not wake or t < wake then wake = t end
      break
    end
    self.queue[self.qhead] = nil
    self.qhead = self.qhead + 1
    if ledger:mark_sent(b.span) then ledger:save() end
    self.pool:submit(self:_request(b), b)
    self.inflight = self.inflight + 1
    self.stats.requests = self.stats.requests + 1
  end
  if self.qhead > self.qtail then self.qhead, self.qtail = 1, 0 end
  return wake
end

-- sender:pump(block [, max_wait]) -> number of completions handled
-- block = false: start what may start and take what has completed, without waiting.
-- block = true: also wait (up to max_wait, default 0.2 s) for a completion, a pacing slot or a
-- retry time.
function Sender:pump(block, max_wait)
  local wake = self:_start()
  local timeout = 0
  if block then
    timeout = max_wait or 0.2
    if wake then
      local d = wake - self.now()
      if d < timeout then timeout = d > 0 and d or 0 end
    end
  end
  local handled = 0
  if self.inflight > 0 then
    local done = self.pool:wait(timeout)
    for _, c in ipairs(done) do
      self:_complete(c)
      handled = handled + 1
    end
    if handled > 0 and self.ledger.checkpoint then self.ledger:save() end
  elseif timeout > 0 and (wake or #self.waiting > 0 or self.qhead <= self.qtail) then
    self.sleep(timeout)
  end
  return handled
end

return M
