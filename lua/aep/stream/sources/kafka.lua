-- aep.stream.sources.kafka: `aep stream --from kafka`. Each Kafka message is an input record
-- (JSON), mapped, batched, paced and sent by aep.stream.pipeline exactly as file records are; what
-- differs is where records come from and when a record counts as done: a message is settled with
-- the consumer group (aep.stream.sources.kafka_group, over the native aep.kafka) only once the
-- ledger has its final outcome (accepted by AEP, rejected into the reject file / dead-letter
-- topic, skipped by the mapping), and the group commits only the contiguous settled prefix of
-- each partition. At least once, never at most once.
--
-- Stopping: --max-records N, --idle-exit SECONDS, or SIGTERM (source:stopping): no new messages
-- are taken, the batches in flight are answered, what is settled is committed, the group is left
-- cleanly. Ctrl-C stops at once: what is settled is committed, what was in flight is read again
-- later (and flagged as a replay then).
local host = require "aep.host"
local log = require "aep.log"
local readers = require "aep.stream.readers"

local M = {}

M.name = "kafka"
M.summary = "Kafka topics, read by a consumer group"

M.flags = {
  { "brokers", "string", metavar = "HOST:PORT,...", help = "kafka: bootstrap servers" },
  { "topic", "list", metavar = "TOPIC", help = "kafka: topic to consume (repeat for several)" },
  { "group", "string", metavar = "GROUP", help = "kafka: consumer group (processes in one group share the partitions)" },
  { "dead-letter-topic", "string", metavar = "TOPIC", help = "kafka: produce malformed and rejected messages here (reason in headers)" },
  { "kafka-config", "list", metavar = "KEY=VALUE", help = "kafka: a librdkafka property, e.g. security.protocol=SASL_SSL (repeatable)" },
  { "kafka-config-file", "string", metavar = "FILE", help = "kafka: librdkafka properties, one KEY=VALUE a line (# comments); keeps secrets off the command line" },
  { "max-records", "integer", metavar = "N", help = "kafka: stop after taking N messages" },
  { "idle-exit", "number", metavar = "SECONDS", help = "kafka: stop after SECONDS without a message" },
}

M.usage = [[
With --from kafka, records are Kafka messages (JSON) instead of a file: --brokers, --topic and
--group are required, --input and --checkpoint are not used (the group's committed offsets are
the checkpoint). Offsets are committed only once every message below them is accepted by AEP,
rejected into the reject file or the dead-letter topic, or skipped: at least once. Several
processes with the same --group share the partitions; when one dies, the others take its
partitions over from the last committed offsets, and the records it may already have sent are
counted as possibly duplicated. SIGTERM (or --max-records / --idle-exit) drains and commits before
leaving the group. See docs/kafka.md.
]]

-- --kafka-config-file first (a Java-style properties file, as Kafka's own tools take), then each
-- --kafka-config: the command line wins. -> properties | nil, usage error
local function kafka_config(list, file)
  local t = {}
  if file then
    local f, err = io.open(file, "rb")
    if not f then return nil, "--kafka-config-file: " .. tostring(err) end
    local n = 0
    for line in f:lines() do
      n = n + 1
      line = line:gsub("\r$", "")
      if not line:match("^%s*$") and not line:match("^%s*[#!]") then
        local k, v = line:match("^%s*([^=:%s]+)%s*[=:]%s*(.-)%s*$")
        if not k then
          f:close()
          return nil, string.format("--kafka-config-file %s line %d: expected KEY=VALUE", file, n)
        end
        t[k] = v
      end
    end
    f:close()
  end
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^%s*([^=%s]+)%s*=(.*)$")
    if not k then return nil, "--kafka-config needs KEY=VALUE, got '" .. kv .. "'" end
    t[k] = v
  end
  return t
end

-- Why flags of the file source do not apply (instead of "--input needs --from file").
M.refuses = {
  input = "--from kafka reads no input file (drop --input)",
  checkpoint = "--from kafka keeps its progress in the group's committed offsets (drop --checkpoint)",
}

-- check(opts, positional) -> nil | the usage error to report (before the shared checks)
function M.check(opts, positional)
  if positional[1] then return M.refuses.input end
  if not opts.brokers then return "missing --brokers HOST:PORT (with --from kafka)" end
  if #opts.topic == 0 then return "missing --topic TOPIC (with --from kafka)" end
  if not opts.group then return "missing --group GROUP (with --from kafka)" end
  if opts.max_records and opts.max_records < 1 then return "--max-records must be at least 1" end
  if opts.idle_exit and opts.idle_exit <= 0 then return "--idle-exit must be positive" end
  local props, err = kafka_config(opts.kafka_config, opts.kafka_config_file)
  if not props then return err end
  opts.kafka_properties = props
  return nil
end

local Source = {}
Source.__index = Source

local function where(m) return string.format("kafka:%s/%d@%d", m.topic, m.partition, m.offset) end

-- open(opts) -> source | nil, message (joins the group)
function M.open(opts)
  -- required here, not at load: `aep stream` from a file never maps librdkafka
  local kafka_group = require "aep.stream.sources.kafka_group"
  local group, err, code = kafka_group.new{
    brokers = opts.brokers, topics = opts.topic, group = opts.group, config = opts.kafka_properties,
    dead_letter_topic = opts.dead_letter_topic,
  }
  if not group then return nil, tostring(err) .. " (" .. tostring(code) .. ")" end
  local topics = table.concat(opts.topic, ",")
  return setmetatable({
    group = group, opts = opts, format = "kafka", json_text = true, sigterm = "drain",
    input = "kafka:" .. topics,
    title = string.format("kafka topic %s (group %s at %s)", topics, opts.group, opts.brokers),
    interrupted_text = "interrupted (settled records are committed; the rest is read again next time)",
    buffer = {}, head = 1, dry = false,
    by_pos = {},     -- pipeline position -> message, until settled
    -- position -> message after settling, for the follow-through's dead letters (aep stream
    -- follows accepted records at the end of the run; --no-follow keeps nothing)
    kept = opts.follow and {} or nil,
    pos = 0,         -- positions handed out (the pipeline numbers records 1, 2, ... in this order)
    taken = 0,
    last_record = host.monotonic(), rebalances = group:rebalances(),
  }, Source)
end

-- source:next(wait, want) -> true, record, text, nil, replay | false, reason, text | nil, nil,
-- "AGAIN" (nothing now) | nil, message (the consumer failed)
function Source:next(wait, want)
  if not self.trapped then
    -- SIGTERM drains: it only sets a flag stopping() reads (HTTP waits are not cut short)
    host.trap_term("drain")
    self.trapped = true
  end
  local buf = self.buffer
  local m = buf[self.head]
  if not m then
    -- tell the pipeline first (it sends its open batch), then wait for more
    if not self.dry then
      self.dry = true
      return nil, nil, "AGAIN"
    end
    local max = self.opts.max_records
    if max then want = math.min(want, max - self.taken) end
    if want <= 0 then return nil, nil, "AGAIN" end
    local batch, err, code = self.group:next_batch(want, wait)
    if not batch then return nil, "kafka: " .. tostring(err) .. " (" .. tostring(code) .. ")" end
    local rb = self.group:rebalances()
    -- a (re)assignment restarts the idle clock, as a message does
    if #batch > 0 or rb ~= self.rebalances then self.last_record, self.rebalances = host.monotonic(), rb end
    if #batch == 0 then return nil, nil, "AGAIN" end
    self.buffer, self.head, buf = batch, 1, batch
    m = batch[1]
    self.taken = self.taken + #batch
  end
  self.dry = false
  buf[self.head] = nil
  self.head = self.head + 1
  local p = self.pos + 1
  self.pos = p
  self.by_pos[p] = m
  if self.ctx then self.ctx.kafka = m end
  local dup = m.replay and true or false
  local value = m.value
  if value == nil then return false, "empty Kafka message (no value)", nil, nil, dup end
  local rec, _, marked = readers.decode_keep_arrays(value)
  if type(rec) ~= "table" or not value:find("^%s*{") then
    return false, rec == nil and "malformed JSON" or "not a JSON object", value, nil, dup
  end
  if marked then self.marked = true end
  return true, rec, value, nil, dup
end

-- source:start(ctx): the mapping's ctx gains ctx.kafka, the message being mapped; the idle clock
-- starts with the loop
function Source:start(ctx)
  self.ctx = ctx
  self.last_record = host.monotonic()
end

-- source:where(position) -> "kafka:TOPIC/PARTITION@OFFSET" for the reject entry
function Source:where(p)
  local m = self.by_pos[p]
  return m and where(m) or "kafka"
end

-- source:on_reject(position, reason, kind, kept) -> nil | why the run must stop.
-- A record that will not reach AEP. With a dead-letter topic it goes there (and is settled once
-- the broker has it); a failed one (AEP unavailable) with no reject file nor dead-letter topic
-- (kept: the reject file holds the entry) is never settled, so it is read again, and the run stops.
function Source:on_reject(p, reason, kind, kept)
  local m = self.by_pos[p]
  if not m then return nil end
  if self.opts.dead_letter_topic then
    local ok, err = self.group:dead_letter(m, reason)
    if not ok then
      m.hold = true
      return "cannot write to the dead-letter topic: " .. tostring(err)
    end
  elseif kind == "failed" and not kept then
    m.hold = true
    return "records failed and there is no --reject-file or --dead-letter-topic to keep them; " ..
           "stopping without committing them (" .. reason .. ")"
  end
  return nil
end

-- source:settle(first, last): positions first..last have their final outcome
function Source:settle(first, last)
  local by_pos, group = self.by_pos, self.group
  for p = first, last do
    local m = by_pos[p]
    by_pos[p] = nil
    if m and not m.hold then group:settle(m) end
    if m and self.kept then self.kept[p] = m end
  end
end

-- source:where_accepted(position) -> the reject entry's input for a record settled as accepted
function Source:where_accepted(p)
  local m = self.kept and self.kept[p]
  return m and where(m) or self.input
end

-- source:on_failed_after_acceptance(position, reason) -> nil | why the run must stop.
-- Its offset was committed once AEP accepted it; AEP's validation failed it later: with a
-- dead-letter topic it goes there now, the reason prefixed "failed after acceptance: ".
function Source:on_failed_after_acceptance(p, reason)
  local m = self.kept and self.kept[p]
  if not (m and self.opts.dead_letter_topic) then return nil end
  local ok, err = self.group:dead_letter(m, "failed after acceptance: " .. tostring(reason))
  if not ok then return "cannot write to the dead-letter topic: " .. tostring(err) end
  return nil
end

-- source:commit(): commit each partition's settled prefix
function Source:commit()
  local ok, err, code = self.group:commit()
  if not ok then log.warn("stream: kafka commit: %s (%s)", tostring(err), tostring(code)) end
end

-- source:stopping(outstanding) -> why no new messages are taken any more | nil
function Source:stopping(outstanding)
  if host.term_requested() then return "SIGTERM" end
  local max = self.opts.max_records
  if max and self.taken >= max then return "max-records" end
  local idle = self.opts.idle_exit
  if idle and host.monotonic() - self.last_record >= idle and outstanding == 0 then return "idle" end
  return nil
end

-- source:close(): commit what is settled, leave the group
function Source:close()
  self.stats = self.group:stats()
  local ok, err = self.group:close()
  if not ok then log.warn("stream: kafka: %s", tostring(err)) end
end

-- source:report(r, result) -> summary line, {kafka = ...} for the JSON report
function Source:report(r, result)
  local opts, stats = self.opts, self.stats or self.group:stats()
  local kinfo = {
    brokers = opts.brokers, topics = opts.topic, group = opts.group, received = stats.received,
    replayed = stats.replayed, dead_lettered = stats.dead_lettered, commits = stats.committed,
    partitions_assigned = stats.assigned, partitions_revoked = stats.revoked,
    partitions_lost = stats.lost, stop = result.stop,
  }
  local text = string.format(
    "  kafka: %d messages from group %s; %d replayed after another consumer stopped; %d dead-lettered%s\n",
    stats.received, opts.group, stats.replayed, stats.dead_lettered,
    result.stop and result.stop ~= "fatal" and ("; stopped: " .. result.stop) or "")
  return text, { kafka = kinfo }
end

return M
