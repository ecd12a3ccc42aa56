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
-- opts.on_wait(waited, timeout), when given, is called after each check that found nothing and
-- then at least once a second while sleeping (the sleep is cut into slices of at most opts.tick,
-- 1 s), so a progress line can count the seconds of a wait whose checks are 30 s apart.
function M.wait(c, check, opts)
  opts = opts or {}
  local timeout = opts.timeout or 900
  local interval = opts.interval or 1
  local max_interval = opts.max_interval or 30
  local what = opts.what or "AEP"
  local start = c.now()
  local on_wait, tick = opts.on_wait, opts.tick or 1
  while true do
    local v = check()
    if v then return v end
    local waited = c.now() - start
    if waited >= timeout then
      local message = opts.timeout_message and opts.timeout_message(math.floor(timeout))
        or string.format("%s not done after %d s", what, math.floor(timeout))
      error(platform.error({ kind = "timeout", code = "TIMEOUT", message = message }), 0)
    end
    if on_wait then on_wait(waited, timeout) end
    local d = math.min(interval, timeout - waited)
    log.debug("%s not done yet; checking again in %.1f s", what, d)
    if on_wait then
      local until_t = c.now() + d
      for _ = 1, math.ceil(d / tick) + 1 do
        local left = until_t - c.now()
        if left <= 0 then break end
        c.sleep(math.min(tick, left))
        on_wait(c.now() - start, timeout)
      end
    else
      c.sleep(d)
    end
    interval = math.min(max_interval, interval * 1.5)
  end
end

return M
