-- bench/health_probe.lua: how long GET /emulator/health takes while the emulator is busy.
--
--   aep bench/health_probe.lua URL STOP_FILE [INTERVAL_S]
--
-- Asks URL/emulator/health every INTERVAL_S seconds (default 0.01), one request at a time, each
-- answer timed from the request to its last byte, until STOP_FILE exists; then prints one line:
--   probes N worst SECONDS median SECONDS failed N
-- bench/emulator_ingest.lua runs it as a separate process beside the ingest load, so that its
-- requests queue behind the emulator's work like any client's (not behind the load generator's).
local host = require "aep.host"
local http = require "aep.http"

local url, stop_file, interval = arg[1], arg[2], tonumber(arg[3] or "0.01")
assert(url and stop_file, "usage: aep bench/health_probe.lua URL STOP_FILE [INTERVAL_S]")

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local times, failed = {}, 0
-- bounded: at most an hour of probes
local deadline = host.monotonic() + 3600
while not exists(stop_file) and host.monotonic() < deadline do
  local t0 = host.monotonic()
  local resp = http.request { method = "GET", url = url .. "/emulator/health", timeout = 30 }
  local dt = host.monotonic() - t0
  if resp and resp.status == 200 then times[#times + 1] = dt else failed = failed + 1 end
  if host.sleep(interval) == false then break end
end
table.sort(times)
io.stdout:write(string.format("probes %d worst %.4f median %.4f failed %d\n", #times,
  times[#times] or 0, times[(#times + 1) // 2] or 0, failed))
