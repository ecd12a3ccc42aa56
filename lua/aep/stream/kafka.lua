-- aep.stream.kafka: `aep stream --from kafka`. Each Kafka message is an input record (JSON),
-- mapped, batched, paced and sent exactly as file records are (aep.stream.batcher, .pacer,
-- .sender, .ledger, .report); what differs is where records come from and when a record counts
-- as done: a message is settled with aep.kafka_source only once its span is done in the ledger
-- (accepted by AEP, rejected into the reject file / dead-letter topic, skipped by the mapping),
-- and the source commits only the contiguous settled prefix of each partition. At least once,
-- never at most once.
--
-- lua/aep/cmd/stream.lua adds SPEC to its flags and calls dispatch(opts, positional) first. The
-- set-up and the ending (target, pacer, sender, ledger, report) are aep.stream.setup's, shared
-- with file input.
--
-- Stopping: --max-records N, --idle-exit SECONDS, or SIGTERM: no new messages are taken, the
-- batches in flight are answered, what is settled is committed, the group is left cleanly.
-- Ctrl-C stops at once: what is settled is committed, what was in flight is read again later
-- (and flagged as a replay then).
local cli = require "aep.cli"
local log = require "aep.log"
local host = require "aep.host"
local setup = require "aep.stream.setup"

local M = {}

-- Flags `aep stream` gains for Kafka input.
M.SPEC = {
  { "from", "string", metavar = "SOURCE", help = "where records come from: file (default) or kafka" },
  { "brokers", "string", metavar = "HOST:PORT,...", help = "kafka: bootstrap servers" },
  { "topic", "list", metavar = "TOPIC", help = "kafka: topic to consume (repeat for several)" },
  { "group", "string", metavar = "GROUP", help = "kafka: consumer group (processes in one group share the partitions)" },
  { "dead-letter-topic", "string", metavar = "TOPIC", help = "kafka: produce malformed and rejected messages here (reason in headers)" },
  { "kafka-config", "list", metavar = "KEY=VALUE", help = "kafka: a librdkafka property, e.g. security.protocol=SASL_SSL (repeatable)" },
  { "kafka-config-file", "string", metavar = "FILE", help = "kafka: librdkafka properties, one KEY=VALUE a line (# comments); keeps secrets off the command line" },
  { "max-records", "integer", metavar = "N", help = "kafka: stop after taking N messages" },
  { "idle-exit", "number", metavar = "SECONDS", help = "kafka: stop after SECONDS without a message" },
}

M.USAGE = [[

With --from kafka, records are Kafka messages (JSON) instead of a file: --brokers, --topic and
--group are required, --input and --checkpoint are not used (the group's committed offsets are
the checkpoint). Offsets are committed only once every message below them is accepted by AEP,
rejected into the reject file or the dead-letter topic, or skipped: at least once. Several
processes with the same --group share the partitions; when one dies, the others take its
partitions over from the last committed offsets, and the records it may already have sent are
counted as possibly duplicated. SIGTERM (or --max-records / --idle-exit) drains and commits before
leaving the group. See docs/kafka.md.
]]

local KAFKA_ONLY = { "brokers", "group", "dead_letter_topic", "max_records", "idle_exit", "kafka_config_file" }

-- --kafka-config-file first (a Java-style properties file, as Kafka's own tools take), then each
-- --kafka-config: the command line wins.
local function kafka_config(list, file)
  local t = {}
  if file then
    local f, err = io.open(file, "rb")
    if not f then cli.usage_error("--kafka-config-file: " .. tostring(err)) end
    local n = 0
    for line in f:lines() do
      n = n + 1
      line = line:gsub("\r$", "")
      if not line:match("^%s*$") and not line:match("^%s*[#!]") then
        local k, v = line:match("^%s*([^=:%s]+)%s*[=:]%s*(.-)%s*$")
        if not k then
          f:close()
          cli.usage_error(string.format("--kafka-config-file %s line %d: expected KEY=VALUE", file, n))
        end
        t[k] = v
      end
    end
    f:close()
  end
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^%s*([^=%s]+)%s*=(.*)$")
    if not k then cli.usage_error("--kafka-config needs KEY=VALUE, got '" .. kv .. "'") end
    t[k] = v
  end
  return t
end

-- dispatch(opts, positional) -> exit status for --from kafka, nil for file input (after
-- refusing Kafka flags without --from kafka).
function M.dispatch(opts, positional)
  if opts.from == nil or opts.from == "file" then
    for _, k in ipairs(KAFKA_ONLY) do
      if opts[k] ~= nil then cli.usage_error("--" .. k:gsub("_", "-") .. " needs --from kafka") end
    end
    if #opts.topic > 0 or #opts.kafka_config > 0 then
      cli.usage_error((#opts.topic > 0 and "--topic" or "--kafka-config") .. " needs --from kafka")
    end
    return nil
  end
  if opts.from ~= "kafka" then
    cli.usage_error("--from takes 'file' or 'kafka', got '" .. tostring(opts.from) .. "'")
  end
  if opts.input or positional[1] then cli.usage_error("--from kafka reads no input file (drop --input)") end
  if opts.checkpoint then cli.usage_error("--from kafka keeps its progress in the group's committed offsets (drop --checkpoint)") end
  if not opts.brokers then cli.usage_error("missing --brokers HOST:PORT (with --from kafka)") end
  if #opts.topic == 0 then cli.usage_error("missing --topic TOPIC (with --from kafka)") end
  if not opts.group then cli.usage_error("missing --group GROUP (with --from kafka)") end
  setup.check_flags(opts)
  if opts.max_records and opts.max_records < 1 then cli.usage_error("--max-records must be at least 1") end
  if opts.idle_exit and opts.idle_exit <= 0 then cli.usage_error("--idle-exit must be positive") end
  return M.run(opts, kafka_config(opts.kafka_config, opts.kafka_config_file))
end

local fail, is_interrupt = setup.fail, cli.is_interrupt

-- The loop. o: source, sender, ledger, map, encoder, ctx, progress, max_bytes, max_count,
-- concurrency, max_records, idle_exit, dead_letter (bool), reject_file (bool), now
local function loop(o)
  local cjson_safe = require "cjson.safe"
  local kafka = require "aep.kafka"
  local batcher = require "aep.stream.batcher"
  local ledger_mod = require "aep.stream.ledger"
  local mapping = require "aep.stream.mapping"
  local source, sender, ledger, map, enc, ctx = o.source, o.sender, o.ledger, o.map, o.encoder, o.ctx
  local now = o.now or host.monotonic
  local max_bytes, max_count, concurrency = o.max_bytes, o.max_count, o.concurrency
  local result = { read = 0, samples = {} }
  local samples = result.samples

  local pos = 0
  local by_pos = {}        -- position -> Kafka message, until its span is done
  local spans = {}         -- spans closed and not yet seen done: {span = , first = , last = }
  local cur, cur_span, cur_dup = batcher.empty(), nil, false
  local last_record, last_commit = now(), 0
  local rebalances = source:rebalances()
  local stop                -- why no new messages are taken any more

  local function sample(p, reason)
    if #samples < 5 then samples[#samples + 1] = "record " .. p .. ": " .. reason end
  end

  local function where(m) return string.format("kafka:%s/%d@%d", m.topic, m.partition, m.offset) end

  local function fatal(message)
    if not result.fatal then result.fatal = message end
  end

  -- A record that will not reach AEP. With a dead-letter topic it goes there (and is settled once
  -- the broker has it); a failed one (AEP unavailable) with no reject file nor dead-letter topic
  -- is never settled, so it is read again, and the run stops.
  local function disposed(m, reason, kind)
    if not m then return end
    if o.dead_letter then
      local ok, err = source:dead_letter(m, reason)
      if not ok then
        m.hold = true
        fatal("cannot write to the dead-letter topic: " .. tostring(err))
      end
    elseif kind == "failed" and not o.reject_file then
      m.hold = true
      fatal("records failed and there is no --reject-file or --dead-letter-topic to keep them; " ..
            "stopping without committing them (" .. reason .. ")")
    end
  end

  sender.on_reject = function(b, i, status, reason, kind)
    local m = by_pos[b.pos[i]]
    b.span:reject(ledger_mod.reject_entry{
      kind = kind, position = b.pos[i], input = m and where(m) or "kafka", status = status,
      reason = reason, record = b.origs[i], entity = nil,
    }, kind)
    sample(b.pos[i], reason)
    disposed(m, reason, kind)
  end

  local function local_reject(m, reason, record_json)
    cur_span:reject(ledger_mod.reject_entry{
      kind = "rejected", position = pos, input = where(m), reason = reason, record = record_json,
    }, "rejected")
    sample(pos, reason)
    disposed(m, reason, "rejected")
  end

  local map_encode = map and mapping.encoder(map)

  local function close_batch()
    if not cur_span then return end
    local entry = { span = cur_span, first = cur_span.first, last = pos }
    if cur.n > 0 then
      cur.span, cur.dup = cur_span, cur_dup
      ledger:close_span(cur_span, pos, 1)
      sender:submit(cur)
    else
      ledger:close_span(cur_span, pos, 0)
    end
    spans[#spans + 1] = entry
    cur, cur_span = batcher.empty(), nil
  end

  local function add(m)
    local p = pos + 1
    pos = p
    result.read = result.read + 1
    by_pos[p] = m
    local dup = m.replay and true or false
    if cur_span and (dup ~= cur_dup) then close_batch() end
    if not cur_span then cur_span = ledger:new_span(p); cur_dup = dup end
    local value = m.value
    local rec = value and cjson_safe.decode(value)
    if type(rec) ~= "table" or not value:find("^%s*{") then
      local reason = value == nil and "empty Kafka message (no value)" or
        (rec == nil and "malformed JSON" or "not a JSON object")
      local rj = value and require("aep.stream.readers").json_text_or_string(value) or "null"
      return local_reject(m, reason, rj)
    end
    local etext
    if map then
      ctx.position, ctx.kafka = p, m
      local okm, res = pcall(map_encode, rec, ctx)
      if not okm then
        if is_interrupt(res) then error(res, 0) end
        return local_reject(m, mapping.reason(res), value)
      elseif res == nil then
        cur_span:skip()
        return
      end
      etext = res
    else
      etext = value
    end
    local msg = enc(etext)
    local size = #msg
    local too_large = batcher.too_large(size, max_bytes)
    if too_large then return local_reject(m, too_large, value) end
    if not batcher.room_for(cur, size, max_bytes) then
      close_batch()
      cur_span = ledger:new_span(p)
      cur_dup = dup
    end
    if batcher.append(cur, msg, p, nil, value) >= max_count then
      close_batch()
    end
  end

  -- Settle the messages of every span the ledger has finished; then commit now and then.
  local function settle_done(force_commit)
    local keep = {}
    for _, s in ipairs(spans) do
      if ledger.open[s.span] then
        keep[#keep + 1] = s
      else
        for p = s.first, s.last do
          local m = by_pos[p]
          by_pos[p] = nil
          if m and not m.hold then source:settle(m) end
        end
      end
    end
    spans = keep
    local t = now()
    if force_commit or t - last_commit >= 0.2 then
      last_commit = t
      -- reject entries reach the disk before the offsets that skip their records
      ledger:save()
      if ledger.reject_fh then host.fsync(ledger.reject_fh) end
      local ok, err, code = source:commit()
      if not ok then log.warn("stream: kafka commit: %s (%s)", tostring(err), tostring(code)) end
    end
  end

  local function room()
    return concurrency - sender:outstanding()
  end

  local ok, err = pcall(function()
    while true do
      if not stop then
        if sender.fatal then fatal(sender.fatal) end
        if result.fatal then stop = "fatal"
        elseif kafka.term_requested() then stop = "SIGTERM"
        elseif o.max_records and result.read >= o.max_records then stop = "max-records"
        elseif o.idle_exit and now() - last_record >= o.idle_exit and sender:outstanding() == 0 then
          stop = "idle"
        end
      end
      if stop then
        close_batch()
        if sender:outstanding() == 0 then break end
        sender:pump(true)
      else
        local free, got = room(), 0
        if free > 0 then
          local want = free * max_count
          if o.max_records then want = math.min(want, o.max_records - result.read) end
          local busy = sender:outstanding() > 0
          local batch, berr, bcode = source:next_batch(want, busy and 0 or 0.2)
          if not batch then
            fatal("kafka: " .. tostring(berr) .. " (" .. tostring(bcode) .. ")")
          else
            got = #batch
            for _, m in ipairs(batch) do add(m) end
            close_batch()
          end
        end
        -- a (re)assignment restarts the idle clock, as a message does
        local rb = source:rebalances()
        if got > 0 or rb ~= rebalances then last_record, rebalances = now(), rb end
        -- nothing new: wait for answers instead of spinning
        sender:pump(got == 0 or room() <= 0)
      end
      settle_done(false)
      if o.progress then o.progress:update(o.progress_state(result)) end
    end
  end)
  if not ok then
    if is_interrupt(err) then result.interrupted = true else error(err, 0) end
  end
  result.stop = stop
  if sender.fatal then fatal(sender.fatal) end
  -- what is done is settled and committed, whatever ended the loop
  local ok2, err2 = pcall(settle_done, true)
  if not ok2 and not is_interrupt(err2) then error(err2, 0) end
  return result
end
M.loop = loop

-- run(opts, kconfig) -> exit status. kconfig: librdkafka properties.
function M.run(opts, kconfig)
  local kafka = require "aep.kafka"
  local kafka_source = require "aep.kafka_source"
  local report = require "aep.stream.report"
  local topics = table.concat(opts.topic, ",")
  local s, status = setup.prepare(opts, "kafka:" .. topics, false)
  if not s then return status end
  local ledger, sender, pacer, target = s.ledger, s.sender, s.pacer, s.target
  if ledger.accepted_path then
    sender.on_accept = function(b, i, xid) b.span:accepted_line(b.pos[i], xid) end
  end
  local source, serr, scode = kafka_source.new{
    brokers = opts.brokers, topics = opts.topic, group = opts.group, config = kconfig,
    dead_letter_topic = opts.dead_letter_topic,
  }
  if not source then
    s.pool:close()
    return fail(tostring(serr) .. " (" .. tostring(scode) .. ")")
  end
  kafka.trap_term()
  local progress = require("aep.stream.progress").new({ quiet = opts.quiet, interval = opts.progress_interval })
  if not opts.quiet then
    log.info("aep stream: kafka topic %s (group %s at %s) -> dataset %s via %s (%s)", topics, opts.group,
      opts.brokers, tostring(target.dataset_id), target.url, pacer:describe())
  end
  s.t_stream = host.monotonic()
  local function progress_state(res)
    local c = ledger.counts
    return { read = res.read, accepted = c.accepted, rejected = c.rejected, failed = c.failed,
             skipped = c.skipped }
  end
  local result = loop({
    source = source, sender = sender, ledger = ledger, map = s.map, encoder = target.encoder,
    ctx = setup.mapping_context(s), progress = progress, progress_state = progress_state,
    max_bytes = opts.max_request_bytes, max_count = s.batch_size, concurrency = s.concurrency,
    max_records = opts.max_records, idle_exit = opts.idle_exit,
    dead_letter = opts.dead_letter_topic ~= nil, reject_file = s.reject_file ~= nil,
  })
  local stats = source:stats()
  local cok, cerr = source:close()
  if not cok then log.warn("stream: kafka: %s", tostring(cerr)) end
  local t_end = host.monotonic()
  progress:finish()
  ledger:save(true)
  ledger:close()
  s.pool:close()

  local exit_status, stopped = setup.outcome(result, ledger.counts,
    "interrupted (settled records are committed; the rest is read again next time)")
  local r = setup.report_fields(s, result, t_end, exit_status, stopped)
  r.format = "kafka"
  local kinfo = {
    brokers = opts.brokers, topics = opts.topic, group = opts.group, received = stats.received,
    replayed = stats.replayed, dead_lettered = stats.dead_lettered, commits = stats.committed,
    partitions_assigned = stats.assigned, partitions_revoked = stats.revoked,
    partitions_lost = stats.lost, stop = result.stop,
  }
  local text = report.summary(r) .. string.format(
    "  kafka: %d messages from group %s; %d replayed after another consumer stopped; %d dead-lettered%s\n",
    stats.received, opts.group, stats.replayed, stats.dead_lettered,
    result.stop and result.stop ~= "fatal" and ("; stopped: " .. result.stop) or "")
  return setup.conclude(s, r, text, { json = opts.json, extra = { kafka = kinfo } })
end

return M
