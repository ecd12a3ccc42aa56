-- aep.kafka (core/aep_kafka.c) and aep.stream.sources.kafka_group (lua/aep/stream/sources/kafka_group.lua) against
-- librdkafka's mock cluster, in this process and in a child process
-- (tests/lua/support/kafka_mock.lua). Exact outcomes only: which records, which offsets.
local kafka = require "aep.kafka"
local kafka_group = require "aep.stream.sources.kafka_group"
local host = require "aep.host"
local log = require "aep.log"
local kafka_mock = require "tests.lua.support.kafka_mock"

-- Loops below poll with short timeouts; MAX_POLLS bounds them so that a broken build fails
-- instead of hanging (no test depends on how long anything takes).
local MAX_POLLS = 600

local function config(extra)
  local c = {}
  for k, v in pairs(kafka_mock.session_config) do c[k] = v end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function produce(bootstrap, topic, n, partitions, prefix)
  local p = assert(kafka.producer{ brokers = bootstrap })
  for i = 0, n - 1 do
    assert(p:produce(topic, (prefix or "v") .. i, "k" .. i, i % partitions))
  end
  assert.equal(n, p:flush(10))
  p:close()
end

-- Poll a native consumer, acknowledging rebalances at once; stop when done() says so.
local function pump(c, state, done)
  for _ = 1, MAX_POLLS do
    for _, e in ipairs(c:poll_batch(100, 0.1)) do
      if e.event == "assign" then
        state.assigned = e.partitions
        if e.protocol == "COOPERATIVE" then assert(c:incremental_assign(e.partitions)) else assert(c:assign(e.partitions)) end
      elseif e.event == "revoke" then
        if e.protocol == "COOPERATIVE" then assert(c:incremental_unassign(e.partitions)) else assert(c:unassign()) end
      elseif e.event == nil then
        state.messages[#state.messages + 1] = e
      end
    end
    if done() then return true end
  end
  error("gave up waiting")
end

local function partitions_of(list)
  local out = {}
  for _, tp in ipairs(list) do out[#out + 1] = tp.partition end
  table.sort(out)
  return out
end

-- Run sources until done(); each batch is settled at once unless keep(msg) says otherwise.
local function run_sources(sources, done, keep)
  for _ = 1, MAX_POLLS do
    for _, s in ipairs(sources) do
      local batch = assert(s.source:next_batch(100, 0.05))
      for _, m in ipairs(batch) do
        s.got[#s.got + 1] = m
        if not (keep and keep(m)) then s.source:settle(m) end
      end
      assert(s.source:commit())
    end
    if done() then return true end
  end
  error("gave up waiting")
end

describe("aep.kafka", function()
  local mock

  setup(function()
    mock = assert(kafka.mock_cluster{ brokers = 1, partitions = 4 })
  end)

  teardown(function()
    if mock then mock:close() end
  end)

  it("has Consumer, Producer and Mock handles with an idempotent close", function()
    local m = assert(kafka.mock_cluster{ partitions = 2 })
    assert.matches("^127%.0%.0%.1:%d+$", m:bootstrap())
    assert.matches("^aep.kafka.Mock %(127", tostring(m))
    assert.is_true(m:create_topic("t-handles"))
    local p = assert(kafka.producer{ brokers = m:bootstrap() })
    local c = assert(kafka.consumer{ brokers = m:bootstrap(), group = "g-handles" })
    assert.matches("^aep.kafka.Consumer", tostring(c))
    assert.is_true(c:close())
    assert.is_true(c:close())
    assert.has_error(function() c:poll_batch() end, "kafka: attempt to use a closed consumer")
    p:close()
    p:close()
    assert.has_error(function() p:produce("t", "v") end, "kafka: attempt to use a closed producer")
    m:close()
    m:close()
    assert.equal("aep.kafka.Mock (closed)", tostring(m))
    assert.has_error(function() m:bootstrap() end, "kafka: attempt to use a closed mock cluster")
  end)

  it("host.trap_term('drain'): SIGTERM ends a poll_batch wait early and interrupts no HTTP wait", function()
    -- a child process: the trap is process-wide. Without the flag poll_batch would wait out its
    -- day-long timeout and `timeout 60` would end the child (exit 124); had SIGTERM interrupted
    -- waits as Ctrl-C does, the request to a server that never answers would end INTERRUPTED,
    -- not TIMEOUT.
    local spawn = require "tests.lua.support.spawn"
    local script = table.concat({
      'local host, kafka, http = require "aep.host", require "aep.kafka", require "aep.http"',
      'local srv = assert(require("aep.server").listen{ port = 0 })',
      'host.trap_term("drain")',
      'local c = assert(kafka.consumer{ group = "g-term", brokers = "127.0.0.1:1" })',
      'assert(host.kill(host.getpid(), "TERM"))',
      'local batch = c:poll_batch(10, 86400)',
      'io.write(#batch, " ", tostring(host.term_requested()), " ", select(3, http.request{ url = srv:url(), timeout = 0.5 }), "\\n")',
      'c:close()',
    }, "\n")
    local f = assert(io.popen("timeout 60 " .. spawn.quote(spawn.aep) .. " -e " .. spawn.quote(script) .. " 2>&1; echo exit=$?"))
    local out = f:read("a")
    f:close()
    assert.equal("0 true TIMEOUT\nexit=0\n", out)
  end)

  it("reports refused configuration as nil, message, CONFIG and misuse as errors", function()
    assert.same({ nil, "kafka config 'no.such.property': No such configuration property: \"no.such.property\"", "CONFIG" },
      { kafka.consumer{ brokers = mock:bootstrap(), group = "g", config = { ["no.such.property"] = "1" } } })
    assert.same({ nil, "kafka config 'linger.ms': value must be a string, number or boolean", "CONFIG" },
      { kafka.producer{ brokers = mock:bootstrap(), config = { ["linger.ms"] = {} } } })
    assert.has_error(function() kafka.consumer{ brokers = mock:bootstrap() } end)
    assert.has_error(function() kafka.consumer{ group = "g", topics = { 1 } } end)
    local c = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-misuse" })
    assert.has_error(function() c:commit({ { "t", 0 } }) end,
      "bad argument #1 to 'commit' (entry 1 needs an offset (integer >= 0))")
    assert.has_error(function() c:commit({ { topic = "t", partition = -1, offset = 0 } }) end,
      "bad argument #1 to 'commit' (entry 1 needs a topic (string) and a partition (integer >= 0))")
    assert.is_true(c:commit({}))
    c:close()
  end)

  it("produces to several partitions; one consumer reads every record once and commits to the end", function()
    assert(mock:create_topic("t-all", 4))
    produce(mock:bootstrap(), "t-all", 40, 4)
    local c = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-all", topics = { "t-all" },
                                     config = config() })
    local st = { messages = {} }
    pump(c, st, function() return #st.messages >= 40 end)
    assert.same({ 0, 1, 2, 3 }, partitions_of(st.assigned))
    local seen, last = {}, {}
    for _, m in ipairs(st.messages) do
      assert.equal("t-all", m.topic)
      assert.equal("v" .. m.value:sub(2), m.value)
      assert.equal("k" .. m.value:sub(2), m.key)
      assert.equal(tonumber(m.value:sub(2)) % 4, m.partition)
      assert.is_number(m.timestamp)
      seen[m.value] = (seen[m.value] or 0) + 1
      last[m.partition] = math.max(last[m.partition] or -1, m.offset)
    end
    for i = 0, 39 do assert.equal(1, seen["v" .. i]) end
    local offsets = {}
    for p = 0, 3 do offsets[#offsets + 1] = { topic = "t-all", partition = p, offset = last[p] + 1 } end
    assert.is_true(c:commit(offsets, true))
    for p = 0, 3 do
      local low, high = c:watermarks("t-all", p)
      assert.same({ 0, 10 }, { low, high })
      assert.same({ 10 }, { c:committed("t-all", p) })
    end
    assert.is_true(c:close())
  end)

  it("carries headers and commit metadata", function()
    local p = assert(kafka.producer{ brokers = mock:bootstrap() })
    assert(mock:create_topic("t-hdr", 1))
    assert(p:produce("t-hdr", "v", nil, 0, { reason = "why", empty = "" }))
    assert(p:produce("t-hdr", nil, nil, 0))
    assert.equal(2, p:flush())
    assert.same({ nil, "kafka: t-hdr: Local: Unknown partition", "_UNKNOWN_PARTITION" }, { p:produce("t-hdr", "v", nil, 5) })
    p:close()
    local c = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-hdr", topics = { "t-hdr" }, config = config() })
    local st = { messages = {} }
    pump(c, st, function() return #st.messages >= 2 end)
    assert.same({ reason = "why", empty = "" }, st.messages[1].headers)
    assert.is_nil(st.messages[1].key)
    assert.is_nil(st.messages[2].value)
    assert.is_true(c:commit({ { "t-hdr", 0, 1, metadata = "aep1 h=2" } }))
    assert.same({ 1, "aep1 h=2" }, { c:committed("t-hdr", 0) })
    local other = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-hdr-other" })
    assert.same({ -1 }, { other:committed("t-hdr", 0) })
    assert.same({ nil, "kafka: committed: Broker: Unknown topic or partition", "UNKNOWN_TOPIC_OR_PART" },
      { other:committed("t-no-such-topic", 0) })
    other:close()
    c:close()
  end)

  it("splits the partitions between two consumers of a group; the survivor takes over from the committed offsets", function()
    assert(mock:create_topic("t-split", 4))
    produce(mock:bootstrap(), "t-split", 40, 4)
    local function source()
      return { got = {}, source = assert(kafka_group.new{ brokers = mock:bootstrap(), group = "g-split",
                                                            topics = { "t-split" }, config = config() }) }
    end
    local a, b = source(), source()
    run_sources({ a, b }, function()
      return #a.source:assignment() + #b.source:assignment() == 4 and #a.got + #b.got == 40
    end)
    -- both got partitions, together all of them, and every record exactly once
    local pa, pb = partitions_of(a.source:assignment()), partitions_of(b.source:assignment())
    assert.equal(2, #pa)
    assert.equal(2, #pb)
    local all = {}
    for _, p in ipairs(pa) do all[#all + 1] = p end
    for _, p in ipairs(pb) do all[#all + 1] = p end
    table.sort(all)
    assert.same({ 0, 1, 2, 3 }, all)
    for _, s in ipairs({ a, b }) do
      local mine = {}
      for _, p in ipairs(partitions_of(s.source:assignment())) do mine[p] = true end
      for _, m in ipairs(s.got) do assert.is_true(mine[m.partition]) end
    end
    -- more records arrive; A closes (committing what it settled); B takes A's partitions over and
    -- reads exactly the records A did not read: none lost, none twice
    produce(mock:bootstrap(), "t-split", 20, 4, "w")
    a.got, b.got = {}, {}
    run_sources({ a }, function() return #a.got > 0 end)
    assert.is_true(a.source:close())
    run_sources({ b }, function() return #b.source:assignment() == 4 and #a.got + #b.got == 20 end)
    local seen = {}
    for _, s in ipairs({ a, b }) do
      for _, m in ipairs(s.got) do seen[m.value] = (seen[m.value] or 0) + 1 end
    end
    for i = 0, 19 do assert.equal(1, seen["w" .. i]) end
    assert.equal(0, b.source:stats().replayed)
    assert.is_true(b.source:commit())
    local c = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-split" })
    for p = 0, 3 do assert.same({ 15, "aep1 h=15" }, { c:committed("t-split", p) }) end
    c:close()
    assert.is_true(b.source:close())
  end)

  it("commits only the contiguous settled prefix of a partition", function()
    assert(mock:create_topic("t-prefix", 1))
    produce(mock:bootstrap(), "t-prefix", 5, 1)
    local s = { got = {}, source = assert(kafka_group.new{ brokers = mock:bootstrap(), group = "g-prefix",
                                                             topics = { "t-prefix" }, config = config() }) }
    run_sources({ s }, function() return #s.got == 5 end, function() return true end)
    local src = s.source
    local probe = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-prefix" })
    -- before anything is settled, the commit is where reading started, and the mark covers all 5
    assert.same({ 0, "aep1 h=5" }, { probe:committed("t-prefix", 0) })
    for _, o in ipairs({ 0, 1, 3 }) do assert.is_true(src:settle("t-prefix", 0, o)) end
    assert.is_false(src:settle("t-prefix", 0, 3))  -- twice: ignored
    assert.is_false(src:settle("t-prefix", 0, 9))  -- never handed out: ignored
    assert.is_true(src:commit())
    assert.same({ 2, "aep1 h=5" }, { probe:committed("t-prefix", 0) })
    assert.equal(2, src:in_flight())
    assert.is_true(src:settle(s.got[3]))           -- offset 2: the prefix now runs through 3
    assert.is_true(src:commit())
    assert.same({ 4, "aep1 h=5" }, { probe:committed("t-prefix", 0) })
    assert.is_true(src:settle("t-prefix", 0, 4))
    assert.is_true(src:close())
    assert.same({ 5, "aep1 h=5" }, { probe:committed("t-prefix", 0) })
    probe:close()
  end)

  it("flags as replays exactly the records a consumer handed out but never committed", function()
    assert(mock:create_topic("t-replay", 1))
    produce(mock:bootstrap(), "t-replay", 10, 1)
    local a = { got = {}, source = assert(kafka_group.new{ brokers = mock:bootstrap(), group = "g-replay",
                                                             topics = { "t-replay" }, config = config() }) }
    run_sources({ a }, function() return #a.got == 10 end, function(m) return m.offset >= 4 end)
    assert.equal(6, a.source:in_flight())
    -- A dies: its consumer leaves without the source committing anything more
    assert.is_true(a.source.consumer:close())
    produce(mock:bootstrap(), "t-replay", 5, 1, "late")
    local b = { got = {}, source = assert(kafka_group.new{ brokers = mock:bootstrap(), group = "g-replay",
                                                             topics = { "t-replay" }, config = config() }) }
    run_sources({ b }, function() return #b.got == 11 end)
    local replays = {}
    for _, m in ipairs(b.got) do if m.replay then replays[#replays + 1] = m.offset end end
    assert.same({ 4, 5, 6, 7, 8, 9 }, replays)
    assert.equal(4, b.got[1].offset)
    assert.equal(6, b.source:stats().replayed)
    assert.is_true(b.source:close())
  end)

  it("dead-letters a message to a second topic with its reason, then settles it", function()
    assert(mock:create_topic("t-in", 1))
    assert(mock:create_topic("t-dead", 1))
    local p = assert(kafka.producer{ brokers = mock:bootstrap() })
    assert(p:produce("t-in", '{"ok":1}', "a", 0))
    assert(p:produce("t-in", "{not json", "b", 0))
    assert(p:produce("t-in", '{"ok":2}', "c", 0))
    assert.equal(3, p:flush())
    p:close()
    local s = { got = {}, source = assert(kafka_group.new{ brokers = mock:bootstrap(), group = "g-dlq",
      topics = { "t-in" }, config = config(), dead_letter_topic = "t-dead" }) }
    run_sources({ s }, function() return #s.got == 3 end, function(m) return m.key == "b" end)
    assert.is_true(s.source:commit())
    assert.equal(1, s.source:in_flight())
    assert.is_true(s.source:dead_letter(s.got[2], "malformed JSON at line 1"))
    assert.equal(0, s.source:in_flight())
    assert.equal(1, s.source:stats().dead_lettered)
    assert.is_true(s.source:close())
    local c = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-dlq-read", topics = { "t-dead" }, config = config() })
    local st = { messages = {} }
    pump(c, st, function() return #st.messages >= 1 end)
    local d = st.messages[1]
    assert.same({ "{not json", "b" }, { d.value, d.key })
    assert.same({ ["aep.error.reason"] = "malformed JSON at line 1", ["aep.source.topic"] = "t-in",
                  ["aep.source.partition"] = "0", ["aep.source.offset"] = "1" }, d.headers)
    c:close()
    local probe = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-dlq" })
    assert.same({ 3, "aep1 h=3" }, { probe:committed("t-in", 0) })
    probe:close()
    local none = assert(kafka_group.new{ brokers = mock:bootstrap(), group = "g-none", topics = { "t-in" } })
    assert.same({ nil, "kafka: no dead-letter topic configured", "NO_DEAD_LETTER_TOPIC" },
      { none:dead_letter(d, "x") })
    none:close()
  end)

  it("never logs secret configuration values", function()
    local lines = {}
    local out, err = log.set_sinks(function(s) lines[#lines + 1] = s end, function(s) lines[#lines + 1] = s end)
    local s = assert(kafka_group.new{ brokers = mock:bootstrap(), group = "g-secret", topics = { "t-in" },
      config = { ["sasl.password"] = "hunter2-very-secret" } })
    log.warn("kafka: %s", "auth with hunter2-very-secret failed")
    log.set_sinks(out, err)
    s:close()
    assert.equal("aep: warning: kafka: auth with [REDACTED] failed\n", table.concat(lines))
  end)

  it("returns from a blocking poll when Ctrl-C arrives", function()
    local c = assert(kafka.consumer{ brokers = mock:bootstrap(), group = "g-int", topics = { "t-none" } })
    -- SIGINT from a helper process while poll_batch waits for an hour: the poll returns and the
    -- host raises "interrupted" in this script (exactly what Ctrl-C does to `aep stream`)
    assert(os.execute("(sleep 1; kill -INT " .. host.getpid() .. ") >/dev/null 2>&1 &"))
    local ok, e = pcall(function()
      c:poll_batch(10, 3600)
      for _ = 1, 1000 do local _ = {} end -- the hook raises at the next Lua instruction
    end)
    assert.is_false(ok)
    assert.matches("interrupted$", e)
    c:close()
  end)
end)

describe("kafka_mock.lua in a child process", function()
  it("serves other processes: produce, consume in a group, commit, until SIGTERM", function()
    local mock = kafka_mock.start{ partitions = 3, topics = { "t-child" } }
    assert.matches("^127%.0%.0%.1:%d+$", mock.bootstrap)
    produce(mock.bootstrap, "t-child", 30, 3)
    local c = assert(kafka.consumer{ brokers = mock.bootstrap, group = "g-child", topics = { "t-child" }, config = config() })
    local st = { messages = {} }
    pump(c, st, function() return #st.messages >= 30 end)
    assert.same({ 0, 1, 2 }, partitions_of(st.assigned))
    local last = {}
    for _, m in ipairs(st.messages) do last[m.partition] = math.max(last[m.partition] or -1, m.offset) end
    assert.is_true(c:commit({ { "t-child", 0, last[0] + 1 }, { "t-child", 1, last[1] + 1 }, { "t-child", 2, last[2] + 1 } }))
    for p = 0, 2 do assert.same({ 10 }, { c:committed("t-child", p) }) end
    c:close()
    assert.same({ true, "exit", 0 }, { mock.stop() })
  end)
end)
