-- aep.stream.sources.kafka_group: a member of a Kafka consumer group for `aep stream --from
-- kafka` (the source in aep.stream.sources.kafka drives it), at least once.
--
-- The policy side of aep.kafka. A source hands out messages in batches, learns from the stream
-- engine which of them are accounted for (accepted by AEP, rejected into the reject file, sent to
-- the dead-letter topic), and commits for each partition only the contiguous prefix of settled
-- messages: an offset is never committed before every message below it is settled, so a crash
-- can repeat records but never lose one.
--
-- Interface used by the Kafka source (lua/aep/stream/sources/kafka.lua):
--   source:next_batch(max, timeout_s) -> array of {value, key, topic, partition, offset,
--       timestamp, headers, replay} | nil, message, code (fatal). May be empty.
--   source:settle(msg) or source:settle(topic, partition, offset): the message is accounted for.
--   source:commit() -> true [, "deferred"] | nil, message, code: commit each partition's settled
--       prefix (deferred while the group rebalances).
--   source:dead_letter(msg, reason) -> true | nil, message, code: produce the message (value and
--       key unchanged, reason in headers) to the dead-letter topic, wait for the broker's ack,
--       then settle it.
--   source.on_revoke = function(partitions) (optional): called when partitions are being taken
--       away, so that the engine sends what it has buffered now; the source gives them up once
--       every message handed out from them is settled (or drain_timeout passes) and committed.
--   source:in_flight() -> messages handed out and not yet settled
--   source:stats() -> {received, replayed, settled, dead_lettered, committed, assigned, ...}
--   source:close() -> true | nil, message, code: commit what is settled, leave the group.
--
-- Duplicates are counted, not guessed. Before a message is handed out, its partition's commit
-- carries a mark in its metadata ("aep1 h=H": every offset below H may have been sent). When a
-- consumer dies, the next owner of the partition resumes from the committed offset C and flags
-- each message below the dead owner's H as a replay (msg.replay = true, stats().replayed): these
-- are the only records that can reach AEP twice.
--
-- Rebalances are handled here, outside librdkafka's callbacks: aep.kafka queues them as entries
-- of poll_batch and waits for this module to acknowledge them. The default assignor is
-- cooperative-sticky (a consumer keeps its partitions while others join or leave);
-- `--kafka-config partition.assignment.strategy=range` switches to the eager protocol, which this
-- module handles as well.
local kafka = require "aep.kafka"
local host = require "aep.host"
local log = require "aep.log"

local M = {}

local MARK = "aep1 h="
M.MARK = MARK

-- After the coordinator refuses a commit because the group is rebalancing, no commit is tried
-- until the rebalance is over (this consumer's next assign event) or this many seconds pass: a
-- commit that races the end of a rebalance carries a stale generation, and librdkafka answers
-- that by dropping the whole assignment (its records are then read again).
M.REBALANCE_HOLD = 10

local Source = {}
Source.__index = Source

local function key_of(topic, partition) return topic .. "\0" .. partition end

-- Config values that must never be printed (librdkafka's secret-bearing properties).
local function register_secrets(config)
  for k, v in pairs(config) do
    if type(k) == "string" and (k:find("password", 1, true) or k:find("secret", 1, true)
        or k:find("oauthbearer.config", 1, true) or k:find("key.pem", 1, true)) then
      log.add_secret(tostring(v))
    end
  end
end

local function brokers_string(b)
  if type(b) == "table" then return table.concat(b, ",") end
  return b
end

-- kafka_group.new{brokers=, topics={...} | topic=, group=, config={name=value},
--   dead_letter_topic=, drain_timeout=30, consumer= (for tests)} -> source | nil, message, code
function M.new(opts)
  assert(type(opts) == "table", "kafka_group.new: options table expected")
  local topics = opts.topics or { opts.topic }
  assert(#topics > 0, "kafka_group.new: 'topics' (or 'topic') is required")
  assert(type(opts.group) == "string", "kafka_group.new: 'group' is required")
  local brokers = brokers_string(opts.brokers)
  local user = opts.config or {}
  register_secrets(user)
  local consumer_config = { ["partition.assignment.strategy"] = "cooperative-sticky" }
  for k, v in pairs(user) do consumer_config[k] = v end
  local consumer = opts.consumer
  if not consumer then
    local err, code
    consumer, err, code = kafka.consumer{ brokers = brokers, group = opts.group, topics = topics,
                                         config = consumer_config }
    if not consumer then return nil, err, code end
  end
  local self = setmetatable({
    consumer = consumer,
    brokers = brokers,
    producer_config = user,
    dead_letter_topic = opts.dead_letter_topic,
    drain_timeout = opts.drain_timeout or 30,
    clock = opts.clock or host.monotonic,
    parts = {},        -- key -> partition state (only partitions this consumer owns)
    pending = {},      -- polled, not yet handed out (waiting for the mark)
    revokes = {},      -- revocations waiting for their partitions to drain
    warned = {},       -- error code -> time of the last warning
    counts = { received = 0, replayed = 0, settled = 0, dead_lettered = 0, committed = 0,
               dropped = 0, assigned = 0, revoked = 0, lost = 0, commit_failures = 0, rebalances = 0 },
    on_revoke = nil,
  }, Source)
  return self
end

-- Partition state. `out` holds offsets handed out and not settled; `done` offsets settled but not
-- yet part of the committed prefix; `order` the handed-out offsets in order (a FIFO from `head`):
-- the prefix advances along `order`, never by arithmetic, since Kafka offsets may have gaps.
local function new_part(topic, partition)
  return { topic = topic, partition = partition, order = {}, head = 1, tail = 0, out = {},
           done = {}, inflight = 0, next = nil, committed = nil, mark = 0, replay_until = nil,
           revoking = false }
end

local function mark_of(metadata)
  return metadata and tonumber(metadata:match("^" .. MARK .. "(%d+)")) or nil
end

function Source:_warn(code, fmt, ...)
  local now = self.clock()
  local last = self.warned[code]
  if last and now - last < 30 then return end
  self.warned[code] = now
  log.warn(fmt, ...)
end

function Source:_ack(ev, how)
  local c = self.consumer
  local ok, err
  if ev.protocol == "COOPERATIVE" then
    if how == "assign" then ok, err = c:incremental_assign(ev.partitions)
    else ok, err = c:incremental_unassign(ev.partitions) end
  else
    if how == "assign" then ok, err = c:assign(ev.partitions) else ok, err = c:unassign() end
  end
  if not ok then log.warn("kafka: %s", err) end
end

function Source:_drop_pending(pred)
  local keep = {}
  for _, m in ipairs(self.pending) do
    if pred(m) then self.counts.dropped = self.counts.dropped + 1 else keep[#keep + 1] = m end
  end
  self.pending = keep
end

function Source:_on_assign(ev)
  self.hold_until = nil -- the rebalance is over
  for _, tp in ipairs(ev.partitions) do
    local P = new_part(tp.topic, tp.partition)
    -- The previous owner's mark tells which offsets it may have sent without committing them.
    local off, metadata = self.consumer:committed(tp.topic, tp.partition)
    if off then
      local h = mark_of(metadata)
      if h and h > off then P.replay_until = h end
      P.mark = h or 0
    else
      log.warn("kafka: cannot read the committed offset of %s [%d]: %s (replays from a failed " ..
               "consumer will not be flagged)", tp.topic, tp.partition, tostring(metadata))
    end
    self.parts[key_of(tp.topic, tp.partition)] = P
    self.counts.assigned = self.counts.assigned + 1
  end
  self:_ack(ev, "assign")
  log.debug("kafka: assigned %d partition(s)", #ev.partitions)
end

function Source:_on_revoke(ev)
  local revoked = {}
  for _, tp in ipairs(ev.partitions) do
    local P = self.parts[key_of(tp.topic, tp.partition)]
    if P then
      P.revoking = true
      revoked[key_of(tp.topic, tp.partition)] = true
    end
  end
  -- Messages of these partitions that were not handed out go back to Kafka (the next owner
  -- reads them from the committed offset).
  self:_drop_pending(function(m) return revoked[key_of(m.topic, m.partition)] end)
  if ev.lost then
    -- Already owned by someone else: committing now could move their offsets. Let go at once.
    for k in pairs(revoked) do self.parts[k] = nil end
    self.counts.lost = self.counts.lost + #ev.partitions
    log.warn("kafka: lost %d partition(s) (session timeout?); their unsettled records will be " ..
             "read again by the new owner", #ev.partitions)
    self:_ack(ev, "revoke")
    return
  end
  self.revokes[#self.revokes + 1] = { ev = ev, deadline = self.clock() + self.drain_timeout }
  if self.on_revoke then self.on_revoke(ev.partitions) end
  self:_progress_revokes()
end

-- Give up revoked partitions whose handed-out messages are all settled (or whose drain timed
-- out): commit their prefix first, then acknowledge the revocation.
function Source:_progress_revokes(force)
  local i = 1
  while i <= #self.revokes do
    local r = self.revokes[i]
    local ready = force or self.clock() >= r.deadline
    if not ready then
      ready = true
      for _, tp in ipairs(r.ev.partitions) do
        local P = self.parts[key_of(tp.topic, tp.partition)]
        if P and P.inflight > 0 then ready = false break end
      end
    end
    if ready then
      local list = {}
      for _, tp in ipairs(r.ev.partitions) do
        local P = self.parts[key_of(tp.topic, tp.partition)]
        if P then
          list[#list + 1] = P
          if P.inflight > 0 then
            log.warn("kafka: giving up %s [%d] with %d record(s) still in flight; they will be " ..
                     "read again by the next owner", P.topic, P.partition, P.inflight)
          end
        end
      end
      local ok, err = self:_commit_parts(list, true)
      if not ok then
        log.warn("kafka: could not commit before giving up %d partition(s): %s (records after " ..
                 "the last commit will be read again)", #list, err)
      end
      for _, P in ipairs(list) do self.parts[key_of(P.topic, P.partition)] = nil end
      self.counts.revoked = self.counts.revoked + #r.ev.partitions
      self:_ack(r.ev, "revoke")
      table.remove(self.revokes, i)
    else
      i = i + 1
    end
  end
end

-- Synchronous commit, unless the group is known to be rebalancing (see REBALANCE_HOLD); force
-- tries anyway (giving partitions up: a failure there costs nothing more).
function Source:_commit_entries(entries, force)
  if not force and self.hold_until then
    if self.clock() < self.hold_until then
      return nil, "kafka: group rebalance in progress", "REBALANCE_IN_PROGRESS"
    end
    self.hold_until = nil
  end
  local ok, err, code = self.consumer:commit(entries, true)
  if not ok then
    self.counts.commit_failures = self.counts.commit_failures + 1
    if code == "REBALANCE_IN_PROGRESS" then self.hold_until = self.clock() + M.REBALANCE_HOLD end
  end
  return ok, err, code
end

-- Commit the settled prefix of the given partition states (sync). Keeps the mark.
function Source:_commit_parts(list, force)
  local entries, parts = {}, {}
  for _, P in ipairs(list) do
    if P.next and P.next ~= P.committed then
      entries[#entries + 1] = { topic = P.topic, partition = P.partition, offset = P.next,
                                metadata = MARK .. P.mark }
      parts[#parts + 1] = P
    end
  end
  if #entries == 0 then return true end
  local ok, err, code = self:_commit_entries(entries, force)
  if not ok then return nil, err, code end
  for i, P in ipairs(parts) do P.committed = entries[i].offset end
  self.counts.committed = self.counts.committed + #entries
  return true
end

function Source:_handle(entry)
  local ev = entry.event
  if ev == "assign" or ev == "revoke" then self.counts.rebalances = self.counts.rebalances + 1 end
  if ev == nil then
    local P = self.parts[key_of(entry.topic, entry.partition)]
    if P and not P.revoking then
      self.pending[#self.pending + 1] = entry
    else
      self.counts.dropped = self.counts.dropped + 1
    end
  elseif ev == "assign" then
    self:_on_assign(entry)
  elseif ev == "revoke" then
    self:_on_revoke(entry)
  elseif ev == "error" then
    if entry.fatal then return nil, entry.message, entry.code end
    self:_warn(entry.code, "kafka: %s", entry.message)
  end
  return true
end

-- source:next_batch(max, timeout_s) -> array of messages | nil, message, code
-- Waits up to timeout_s when nothing is pending. Before handing messages out, records the mark
-- (see the header) with a synchronous commit; if that fails, the messages stay pending and the
-- batch is empty (the next call retries).
function Source:next_batch(max, timeout)
  max = max or 500
  self:_progress_revokes()
  if #self.pending < max then
    local entries = self.consumer:poll_batch(max - #self.pending, #self.pending > 0 and 0 or (timeout or 1))
    for _, e in ipairs(entries) do
      local ok, err, code = self:_handle(e)
      if not ok then return nil, err, code end
    end
  end
  if #self.pending == 0 then return {} end

  local take = {}
  local n = math.min(max, #self.pending)
  for i = 1, n do take[i] = self.pending[i] end
  -- Marks: every partition's commit metadata must cover what is about to be handed out.
  local highs, order = {}, {}
  for _, m in ipairs(take) do
    local k = key_of(m.topic, m.partition)
    local P = self.parts[k]
    if not highs[k] then highs[k] = { P = P, first = m.offset, high = m.offset + 1 }; order[#order + 1] = k
    elseif m.offset + 1 > highs[k].high then highs[k].high = m.offset + 1 end
  end
  local entries, marked = {}, {}
  for _, k in ipairs(order) do
    local h = highs[k]
    if h.high > h.P.mark then
      local at = h.P.next or h.first
      entries[#entries + 1] = { topic = h.P.topic, partition = h.P.partition, offset = at,
                                metadata = MARK .. h.high }
      marked[#marked + 1] = h
    end
  end
  if #entries > 0 then
    local ok, err, code = self:_commit_entries(entries)
    if not ok then
      -- Typically a group rebalance in progress: the messages wait until the mark can be
      -- recorded. Wait as the caller allows, then try again on the next call.
      if code ~= "REBALANCE_IN_PROGRESS" then
        self:_warn("mark:" .. tostring(code), "kafka: waiting to record progress before sending: %s", err)
      end
      if (timeout or 0) > 0 then host.sleep(math.min(timeout, 0.2)) end
      return {}
    end
    for i, h in ipairs(marked) do
      h.P.mark = h.high
      h.P.next = h.P.next or h.first
      h.P.committed = entries[i].offset
    end
  end
  self.pending = table.move(self.pending, n + 1, #self.pending, 1, {})
  for _, m in ipairs(take) do
    local P = self.parts[key_of(m.topic, m.partition)]
    P.next = P.next or m.offset
    P.tail = P.tail + 1
    P.order[P.tail] = m.offset
    P.out[m.offset] = true
    P.inflight = P.inflight + 1
    if P.replay_until and m.offset < P.replay_until then
      m.replay = true
      self.counts.replayed = self.counts.replayed + 1
    end
  end
  self.counts.received = self.counts.received + #take
  return take
end

-- source:settle(msg) | source:settle(topic, partition, offset) -> true | false (not ours any more
-- or never handed out: ignored, since the partition's next owner reads it again)
function Source:settle(topic, partition, offset)
  if type(topic) == "table" then topic, partition, offset = topic.topic, topic.partition, topic.offset end
  local P = self.parts[key_of(topic, partition)]
  if not P or not P.out[offset] then return false end
  P.out[offset] = nil
  P.done[offset] = true
  P.inflight = P.inflight - 1
  self.counts.settled = self.counts.settled + 1
  while P.head <= P.tail and P.done[P.order[P.head]] do
    local o = P.order[P.head]
    P.done[o] = nil
    P.order[P.head] = nil
    P.head = P.head + 1
    P.next = o + 1
  end
  if P.revoking and P.inflight == 0 then self:_progress_revokes() end
  return true
end

-- source:commit() -> true [, "deferred"] | nil, message, code
-- Commits, for every owned partition, the offset after its contiguous settled prefix. While the
-- group rebalances the commit is deferred (true, "deferred"): the next call catches up.
function Source:commit(force)
  self:_progress_revokes()
  local list = {}
  for _, P in pairs(self.parts) do list[#list + 1] = P end
  table.sort(list, function(a, b)
    if a.topic ~= b.topic then return a.topic < b.topic end
    return a.partition < b.partition
  end)
  local ok, err, code = self:_commit_parts(list, force)
  if not ok and code == "REBALANCE_IN_PROGRESS" then return true, "deferred" end
  return ok, err, code
end

-- source:dead_letter(msg, reason) -> true | nil, message, code
-- The dead-letter record keeps the original value and key; headers say why and where from:
-- aep.error.reason, aep.source.topic, aep.source.partition, aep.source.offset.
function Source:dead_letter(msg, reason)
  if not self.dead_letter_topic then
    return nil, "kafka: no dead-letter topic configured", "NO_DEAD_LETTER_TOPIC"
  end
  if not self.producer then
    local p, err, code = kafka.producer{ brokers = self.brokers, config = self.producer_config }
    if not p then return nil, err, code end
    self.producer = p
  end
  local headers = {
    ["aep.error.reason"] = tostring(reason),
    ["aep.source.topic"] = msg.topic,
    ["aep.source.partition"] = tostring(msg.partition),
    ["aep.source.offset"] = tostring(msg.offset),
  }
  local ok, err, code = self.producer:produce(self.dead_letter_topic, msg.value, msg.key, nil, headers)
  if ok then ok, err, code = self.producer:flush(30) end
  if not ok then return nil, err, code end
  self.counts.dead_lettered = self.counts.dead_lettered + 1
  self:settle(msg)
  return true
end

-- source:in_flight() -> number of messages handed out and not settled
function Source:in_flight()
  local n = 0
  for _, P in pairs(self.parts) do n = n + P.inflight end
  return n
end

-- source:assignment() -> sorted array of {topic, partition} this source owns
function Source:assignment()
  local list = {}
  for _, P in pairs(self.parts) do list[#list + 1] = { topic = P.topic, partition = P.partition } end
  table.sort(list, function(a, b)
    if a.topic ~= b.topic then return a.topic < b.topic end
    return a.partition < b.partition
  end)
  return list
end

-- source:rebalances() -> how many rebalance events this consumer has seen (assignments, even
-- empty ones, and revocations)
function Source:rebalances()
  return self.counts.rebalances
end

-- source:stats() -> a copy of the counters
function Source:stats()
  local t = {}
  for k, v in pairs(self.counts) do t[k] = v end
  t.in_flight = self:in_flight()
  return t
end

-- source:close() -> true | nil, message, code
-- Commits what is settled (the engine settles what it can first), then leaves the group.
-- Idempotent.
function Source:close()
  if self.closed then return true end
  self.closed = true
  self:_progress_revokes(true)
  local ok, err, code = self:commit(true)
  if not ok then log.warn("kafka: final commit failed: %s", err) end
  local cok, cerr, ccode = self.consumer:close()
  if self.producer then self.producer:close() end
  if not ok then return nil, err, code end
  if not cok then return nil, cerr, ccode end
  return true
end

return M
