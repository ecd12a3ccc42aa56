-- aep.run.emulator: start `aep emulator` as a child process for a workflow run, wait for its
-- ready line, and stop it afterwards (the README's main command runs against one on a fresh
-- machine).
--
--   local emu = require("aep.run.emulator").start{ data_dir = dir }
--   emu.url, emu.env_file, emu.pid, emu.log_path;  emu:stop()
--
-- The child runs `aep emulator --port 0 --data-dir DIR` with its output in DIR/emulator.log
-- (not a pipe: a pipe nobody reads would block it), so its ready lines are read from that file.
local host = require "aep.host"
local emulator_lock = require "aep.emulator_lock"
local log = require "aep.log"
local read_file = require("aep.file").read

local M = {}

M.READY_TIMEOUT = 60

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function alive(pid)
  if not host.kill(pid, "0") then return false end
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat and stat:match("^%d+ %b() Z") then return false end -- a zombie is gone for us
  return true
end
M.alive = alive

local function tail(text, n)
  local lines = {}
  for l in (text or ""):gmatch("[^\n]+") do lines[#lines + 1] = l end
  return table.concat(lines, "\n", math.max(1, #lines - (n or 10) + 1))
end

-- emulator.default_dir() -> $XDG_STATE_HOME/aep/emulator (~/.local/state/aep/emulator)
M.default_dir = emulator_lock.default_dir

local Child = {}
Child.__index = Child

-- emulator.find_running(data_dir) -> {url=, env_file=, data_dir=, reused=true} | nil: the emulator
-- already serving this data directory (aep.emulator_lock), as a child that stop() leaves running
function M.find_running(dir)
  local emu = emulator_lock.find_running(dir)
  if not emu then return nil end
  emu.reused, emu.stopped = true, true
  return setmetatable(emu, Child)
end

-- emulator.start(opts) -> child | raises. opts: data_dir, bin (default: this aep binary),
-- args (extra flags, e.g. {"--profile-lag", "0"}), timeout (seconds to wait for ready)
function M.start(opts)
  opts = opts or {}
  local dir = opts.data_dir or M.default_dir()
  require("aep.run.manifest").mkdir_p(dir)
  local bin = opts.bin or os.getenv("AEP_BIN") or host.executable()
  local log_path = dir .. "/emulator.log"
  os.remove(log_path) -- a previous run's ready line must not be mistaken for this one's
  local extra = {}
  for _, a in ipairs(opts.args or {}) do extra[#extra + 1] = q(a) end
  local cmd = string.format("( exec %s emulator --port 0 --data-dir %s %s ) </dev/null >%s 2>&1 & echo $!",
    q(bin), q(dir), table.concat(extra, " "), q(log_path))
  local p = io.popen(cmd, "r")
  local pid = p and tonumber(p:read("l"))
  if p then p:close() end
  if not pid then error("cannot start `aep emulator` (" .. bin .. ")", 0) end
  local self = setmetatable({ pid = pid, data_dir = dir, log_path = log_path }, Child)
  local deadline = host.monotonic() + (opts.timeout or M.READY_TIMEOUT)
  while true do
    local text = read_file(log_path) or ""
    self.env_file = self.env_file or text:match("aep emulator: environment file ([^\n]+)")
    self.url = self.url or text:match("aep emulator: listening on (%S+)")
    if text:find("aep emulator: ready", 1, true) then break end
    if not alive(pid) then
      error("`aep emulator` exited before it was ready:\n" .. log.redact(tail(text)), 0)
    end
    if host.monotonic() > deadline then
      self:stop()
      error("`aep emulator` was not ready after " .. (opts.timeout or M.READY_TIMEOUT) .. " s:\n" .. log.redact(tail(text)), 0)
    end
    if host.sleep(0.05) == false then
      self:stop()
      error("interrupted", 0)
    end
  end
  if not self.env_file then
    self:stop()
    error("`aep emulator` did not say where its environment file is", 0)
  end
  return self
end

-- child:stop(): SIGTERM, wait up to 10 s for a clean exit, then SIGKILL. Idempotent.
function Child:stop()
  if self.stopped then return end
  self.stopped = true
  if not alive(self.pid) then return end
  host.kill(self.pid, "TERM")
  local deadline = host.monotonic() + 10
  while alive(self.pid) and host.monotonic() < deadline do host.sleep(0.02) end
  if alive(self.pid) then host.kill(self.pid, "KILL") end
end

Child.__close = Child.stop
Child.__gc = Child.stop

return M
