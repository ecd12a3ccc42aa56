-- Spec helper: start `aep emulator --port 0 --data-dir <tmp>` as a child process and wait for its
-- ready line (docs/ARCHITECTURE.md, "Emulator start-up contract").
--
--   local emulator = require "support.emulator"   -- (tests/lua on package.path)
--   local emu = emulator.start { "--seed", "7", "--tenant", "exchangeinternal" }
--   emu.url        -- http://127.0.0.1:PORT
--   emu.env_file   -- DATA_DIR/environment.json;  emu.env = {KEY = value} (decoded Postman env)
--   emu.pid, emu.data_dir
--   emu.stop()     -- SIGTERM, wait (exit status checked: 0); emu.kill9() -- SIGKILL, wait
--   emu.restart([args])  -- start again on the same data dir (and the same port), refreshes url/env
--   emu.cleanup()  -- stop if running and remove the data dir
--   emu.faults(spec [, seed])  -- PUT /emulator/faults (raises unless 200); "" clears them
--   emu.sandbox(name)  -- POST /emulator/sandboxes: sandboxes other than prod exist once created

local function need(name)
  local ok, mod = pcall(require, "support." .. name)
  if ok then return mod end
  return require("tests.lua.support." .. name)
end
local spawn = need "spawn"
local files = need "files"
local http = require "aep.http"
local json = require "aep.json"

local M = {}

local function read_env(path)
  local env = files.json(path)
  local out = {}
  for _, v in ipairs(env.values or {}) do out[v.key] = v.value end
  return out
end
M.read_env = read_env

local function mktemp()
  local p = assert(io.popen("mktemp -d /tmp/aep-emu-spec.XXXXXX"))
  local dir = p:read("l")
  p:close()
  return assert(dir, "mktemp failed")
end

-- emulator.start([args [, opts]]) -> emu. args: extra flags; opts.data_dir reuses a directory;
-- opts.nofile: the child's descriptor limit (ulimit -n).
function M.start(args, opts)
  args = args or {}
  opts = opts or {}
  local emu = { data_dir = opts.data_dir or mktemp(), args = args }

  local function launch(port)
    local argv = { spawn.aep, "emulator", "--port", tostring(port or 0), "--data-dir", emu.data_dir }
    if opts.nofile then -- sh execs aep: the pid stays the emulator's
      table.insert(argv, 1, "sh"); table.insert(argv, 2, "-c")
      table.insert(argv, 3, "ulimit -n " .. math.tointeger(opts.nofile) .. ' && exec "$@"'); table.insert(argv, 4, "sh")
    end
    for _, a in ipairs(emu.args) do argv[#argv + 1] = a end
    local child = spawn.spawn(argv, "^aep emulator: ready$", { stderr = emu.data_dir .. "/stderr.log" })
    for _, line in ipairs(child.lines) do
      emu.env_file = line:match("^aep emulator: environment file (.+)$") or emu.env_file
      emu.url = line:match("^aep emulator: listening on (%S+)$") or emu.url
    end
    assert(emu.url and emu.env_file, "emulator printed no URL/environment lines")
    emu.child, emu.pid, emu.lines = child, child.pid, child.lines
    emu.port = tonumber(emu.url:match(":(%d+)$"))
    emu.env = read_env(emu.env_file)
  end

  -- stop(): SIGTERM and wait; returns the popen close results (true, "exit", 0 on a clean stop)
  function emu.stop()
    if not emu.child or emu.child.done then return true, "exit", 0 end
    return emu.child:stop()
  end

  function emu.kill9()
    if not emu.child or emu.child.done then return end
    emu.child:kill("KILL")
    return emu.child:wait()
  end

  function emu.restart(new_args)
    emu.stop()
    if new_args then emu.args = new_args end
    local ok = pcall(launch, emu.port)
    if not ok then launch(0) end
    return emu
  end

  function emu.cleanup()
    emu.stop()
    if not os.getenv("AEP_KEEP_TMP") and emu.data_dir:match("^/tmp/aep%-emu%-spec%.") then
      os.execute("rm -rf '" .. emu.data_dir .. "'")
    end
  end

  -- faults(spec [, seed]) -> the emulator's answer (its rules and seed)
  function emu.faults(spec, seed)
    local resp = assert(http.request({ method = "PUT", url = emu.url .. "/emulator/faults",
      headers = { ["Content-Type"] = "application/json" }, body = json.encode({ spec = spec, seed = seed }) }))
    assert(resp.status == 200, "faults: " .. resp.status .. " " .. resp.body)
    return json.decode(resp.body)
  end

  -- sandbox(name): create a sandbox (others than prod exist once created); idempotent
  function emu.sandbox(name)
    local resp = assert(http.request({ method = "POST", url = emu.url .. "/emulator/sandboxes",
      headers = { ["Content-Type"] = "application/json" }, body = json.encode({ name = name }) }))
    assert(resp.status == 201 or resp.status == 200, "sandbox: " .. resp.status .. " " .. resp.body)
  end

  function emu.stderr()
    return files.read(emu.data_dir .. "/stderr.log") or ""
  end

  launch(opts.port or 0)
  return emu
end

return M
