-- aep.poll: waiting for AEP to reach a state (a batch's final status, data visible in Profile),
-- with a growing interval and a hard bound.
local platform = require "aep.platform"
local log = require "aep.log"

local M = {}

-- poll.wait(c, check, opts) -> the first truthy result of check()
-- Calls check() now and then again after 1, 1.5, 2.25 ... s (opts.interval, growing by half up to
-- opts.max_interval = 30), never sleeping past opts.timeout (default 900) seconds from the start;
-- then raises a TIMEOUT platform error whose message is opts.timeout_message(seconds) or says
-- that opts.what ("AEP") did not happen. c supplies the clock (c.now, c.sleep) so tests can fake it.
function M.wait(c, check, opts)
  opts = opts or {}
  local timeout = opts.timeout or 900
  local interval = opts.interval or 1
  local max_interval = opts.max_interval or 30
  local what = opts.what or "AEP"
  local start = c.now()
  while true do
    local v = check()
    if v then return v end
    local waited = c.now() - start
    if waited >= timeout then
      local message = opts.timeout_message and opts.timeout_message(math.floor(timeout))
        or string.format("%s not done after %d s", what, math.floor(timeout))
      error(platform.error({ kind = "timeout", code = "TIMEOUT", message = message }), 0)
    end
    local d = math.min(interval, timeout - waited)
    log.debug("%s not done yet; checking again in %.1f s", what, d)
    c.sleep(d)
    interval = math.min(max_interval, interval * 1.5)
  end
end

return M
