-- aep.stream.progress: what `aep stream` shows while it runs, on stderr.
--   * a terminal: one line redrawn 5 times a second — a bar and ETA when the input size is known,
--     records read, records/s, accepted, rejected, failed;
--   * not a terminal (CI logs): one plain line every `interval` seconds (default 10);
--   * --quiet: nothing.
local host = require "aep.host"

local M = {}

-- progress.count(n) -> "1,234,567"
function M.count(n)
  local s = tostring(math.tointeger(n) or math.floor(n + 0.5))
  local neg = s:sub(1, 1) == "-"
  if neg then s = s:sub(2) end
  s = s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return (neg and "-" or "") .. s
end

-- progress.duration(seconds) -> "0:42", "1:02:03"
function M.duration(s)
  s = math.max(0, math.floor(s + 0.5))
  local h, m, sec = s // 3600, (s // 60) % 60, s % 60
  if h > 0 then return string.format("%d:%02d:%02d", h, m, sec) end
  return string.format("%d:%02d", m, sec)
end

local Progress = {}
Progress.__index = Progress

-- progress.new{quiet=, tty=, interval=, out=, now=} -> progress
function M.new(o)
  o = o or {}
  local self = setmetatable({}, Progress)
  self.quiet = o.quiet
  if o.tty == nil then self.tty = host.isatty(2) else self.tty = o.tty end
  self.interval = o.interval or (self.tty and 0.2 or 10)
  self.out = o.out or function(s) io.stderr:write(s); io.stderr:flush() end
  self.now = o.now or host.monotonic
  self.start = self.now()
  self.next_at = self.start + self.interval
  self.drawn = false
  return self
end

-- progress:update(state [, force]); state = {read=, accepted=, rejected=, failed=, skipped=,
-- bytes=, total_bytes=, settled= (records of this run with their outcome)}
function Progress:update(st, force)
  if self.quiet then return end
  local now = self.now()
  if not force and now < self.next_at then return end
  self.next_at = now + self.interval
  local elapsed = now - self.start
  local rate = elapsed > 0 and st.read / elapsed or 0
  local frac = st.total_bytes and st.total_bytes > 0 and st.bytes and math.min(1, st.bytes / st.total_bytes) or nil
  -- reading runs ahead of the answers by a few batches: count what is settled, not what is read
  if frac and st.settled and st.read > 0 then frac = frac * math.min(1, st.settled / st.read) end
  local eta = ""
  if frac and frac > 0 and frac < 1 and elapsed > 1 then
    eta = "  ETA " .. M.duration(elapsed * (1 - frac) / frac)
  end
  local counts = string.format("%s records  %s/s  accepted %s  rejected %s%s%s",
    M.count(st.read), M.count(rate), M.count(st.accepted), M.count(st.rejected),
    st.failed > 0 and ("  failed " .. M.count(st.failed)) or "",
    st.skipped > 0 and ("  skipped " .. M.count(st.skipped)) or "")
  if self.tty then
    local bar = ""
    if frac then
      local width = 24
      local fill = math.floor(frac * width + 0.5)
      bar = string.format("%3d%% [%s%s] ", math.floor(frac * 100), string.rep("=", fill), string.rep(" ", width - fill))
    end
    self.out("\r\27[K" .. bar .. counts .. eta)
    self.drawn = true
  else
    self.out("aep stream: " .. counts .. (frac and string.format("  (%d%% of the input)", math.floor(frac * 100)) or "") .. eta .. "\n")
  end
end

-- progress:finish(): clear the terminal line
function Progress:finish()
  if self.quiet then return end
  if self.tty and self.drawn then self.out("\r\27[K") end
end

return M
