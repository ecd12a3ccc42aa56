-- aep.emulator_lock: where a local emulator lives, read without loading the emulator. Every
-- command looks here for the default emulator (config.load_default), so this stays a leaf: the
-- lock file and environment file an emulator writes into its data directory, and one request to
-- make sure the emulator named there is alive and is the one the environment file describes.
--
--   DIR/emulator.lock     {"pid":..., "url":...} written by the emulator holding DIR
--   DIR/environment.json  the Postman environment it serves (PLATFORM_GATEWAY, IMS_ORG, ...)
local host = require "aep.host"
local json = require "aep.json"
local file = require "aep.file"

local M = {}

M.LOCK_FILE = "emulator.lock"

-- emulator_lock.default_dir() -> $XDG_STATE_HOME/aep/emulator (~/.local/state/aep/emulator)
function M.default_dir()
  return file.state_dir() .. "/emulator"
end

-- emulator_lock.read(data_dir) -> {pid=, url=} | nil   (what DIR/emulator.lock says)
function M.read(data_dir)
  local text = file.read(data_dir .. "/" .. M.LOCK_FILE)
  local lock = text and json.decode(text)
  local pid = type(lock) == "table" and type(lock.pid) == "number" and math.tointeger(lock.pid)
  if not pid then return nil end
  lock.pid = pid
  return lock
end

-- emulator_lock.holder(data_dir) -> {pid=, url=} of a live emulator serving data_dir | nil. A lock
-- whose process is gone (or is no emulator: its pid was reused) is stale: the next start takes it.
function M.holder(data_dir)
  local lock = M.read(data_dir)
  if not lock or lock.pid == host.getpid() or not host.kill(lock.pid, "0") then return nil end
  local cmd = file.read("/proc/" .. lock.pid .. "/cmdline") or ""
  if not cmd:find("emulator", 1, true) then return nil end
  return lock
end

-- emulator_lock.find_running(data_dir) -> {url=, env_file=, data_dir=} | nil
-- An emulator already serving this data directory (started by `aep emulator` in another
-- terminal, say): its environment file names its URL (the lock's URL wins: a live holder is
-- reused even when the environment file was replaced), and its /emulator/state names the same org.
function M.find_running(dir)
  local env_file = dir .. "/environment.json"
  local lock = M.holder(dir)
  local text = file.read(env_file)
  if not text then return nil end
  local env = json.decode(text)
  if type(env) ~= "table" or type(env.values) ~= "table" then return nil end
  local vars = {}
  for _, v in ipairs(env.values) do if type(v) == "table" and v.key then vars[v.key] = v.value end end
  local url = lock and lock.url or vars.PLATFORM_GATEWAY
  if type(url) ~= "string" or not url:match("^https?://") then return nil end
  local ok, resp = pcall(require("aep.http").request, { url = url .. "/emulator/state", timeout = 2, connect_timeout = 1 })
  if not ok or not resp or resp.status ~= 200 then return nil end
  local state = json.decode(resp.body)
  if type(state) ~= "table" or type(state.org) ~= "table" or state.org.imsOrg ~= vars.IMS_ORG then return nil end
  return { url = url, env_file = env_file, data_dir = dir }
end

return M
