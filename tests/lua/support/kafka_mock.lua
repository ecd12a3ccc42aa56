-- A Kafka cluster for tests, without a Kafka server: librdkafka's mock cluster (aep.kafka.Mock),
-- which listens on loopback sockets so that other processes can use it.
--
-- As a script:
--   aep tests/lua/support/kafka_mock.lua [--partitions N] [--topic NAME]... [--brokers N]
-- creates each --topic with N partitions (default 4), prints "bootstrap HOST:PORT,..." (flushed)
-- and keeps running until SIGTERM or SIGINT.
--
-- As a spec helper:
--   local kafka_mock = require "tests.lua.support.kafka_mock"
--   local mock = kafka_mock.start{partitions = 4, topics = {"events"}}   -- a child process
--   mock.bootstrap, mock.pid; mock.stop() (SIGTERM + wait); mock.kill9()
--   kafka_mock.session_config -> consumer config that makes group rebalances quick on the mock
local M = {}

-- The mock coordinator waits session.timeout.ms - 1 s for members to (re)join a group; 4 s keeps
-- rebalances at ~3 s (its first join waits 3 s anyway) and still above the heartbeat interval.
M.session_config = {
  ["session.timeout.ms"] = "4000",
  ["heartbeat.interval.ms"] = "300",
}

local function run_script(args)
  local kafka = require "aep.kafka"
  local host = require "aep.host"
  local partitions, brokers, topics = 4, 1, {}
  local i = 1
  while i <= #args do
    local a, v = args[i], args[i + 1]
    if a == "--partitions" then partitions = math.tointeger(tonumber(v)); i = i + 2
    elseif a == "--brokers" then brokers = math.tointeger(tonumber(v)); i = i + 2
    elseif a == "--topic" then topics[#topics + 1] = v; i = i + 2
    else
      io.stderr:write("kafka_mock: unknown argument '", tostring(a), "'\n",
        "usage: aep tests/lua/support/kafka_mock.lua [--partitions N] [--topic NAME]... [--brokers N]\n")
      os.exit(64)
    end
    if (a == "--partitions" or a == "--brokers") and not (partitions and brokers) then
      io.stderr:write("kafka_mock: ", a, " needs an integer\n")
      os.exit(64)
    end
  end
  local mock = assert(kafka.mock_cluster{ brokers = brokers, partitions = partitions })
  for _, t in ipairs(topics) do assert(mock:create_topic(t, partitions)) end
  io.stdout:write("bootstrap ", mock:bootstrap(), "\n")
  io.stdout:flush()
  host.trap_term("drain")
  -- host.sleep returns false on Ctrl-C; SIGTERM interrupts the sleep and sets the flag.
  while not host.term_requested() do
    if host.sleep(0.2) == false then break end
  end
  mock:close()
end

-- kafka_mock.start{partitions=4, topics={...}, brokers=1} -> {bootstrap, pid, stop(), kill9()}
function M.start(o)
  o = o or {}
  local ok, spawn = pcall(require, "support.spawn")
  if not ok then spawn = require "tests.lua.support.spawn" end
  local argv = { spawn.aep, "tests/lua/support/kafka_mock.lua", "--partitions", tostring(o.partitions or 4) }
  if o.brokers then argv[#argv + 1] = "--brokers"; argv[#argv + 1] = tostring(o.brokers) end
  for _, t in ipairs(o.topics or {}) do argv[#argv + 1] = "--topic"; argv[#argv + 1] = t end
  local child = spawn.spawn(argv, "^bootstrap (%S+)$")
  local mock = { bootstrap = child.url, pid = child.pid, child = child }
  function mock.stop()
    if child.done then return table.unpack(child.status) end
    return child:stop()
  end
  function mock.kill9()
    if child.done then return end
    child:kill("KILL")
    return child:wait()
  end
  return mock
end

if arg and type(arg[0]) == "string" and arg[0]:match("kafka_mock%.lua$") then
  run_script(arg)
else
  return M
end
