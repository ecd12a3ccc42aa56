-- aep.term: what commands and the REPL show on a terminal, and only there: colour (never when
-- NO_COLOR is set, TERM is "dumb" or the output is a pipe or a file) and a progress line
-- redrawn in place on stderr. Off a terminal nothing here writes escape sequences, so logs and
-- captured output stay plain text.
--
-- One progress-line implementation: term.line (when to redraw, drawing in place on a terminal or
-- one plain line at a time off it, clearing at the end) under term.progress (commands and the
-- REPL) and aep.stream.progress (`aep stream`'s counts); every command counts "1,234" and times
-- "1:02" the same way (term.count, term.duration).
local host = require "aep.host"

local M = {}

-- term.count(n) -> "1,234,567"
function M.count(n)
  local s = tostring(math.tointeger(n) or math.floor(n + 0.5))
  local neg = s:sub(1, 1) == "-"
  if neg then s = s:sub(2) end
  s = s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return (neg and "-" or "") .. s
end

-- term.duration(seconds) -> "0:42", "1:02:03"
function M.duration(s)
  s = math.max(0, math.floor(s + 0.5))
  local h, m, sec = s // 3600, (s // 60) % 60, s % 60
  if h > 0 then return string.format("%d:%02d:%02d", h, m, sec) end
  return string.format("%d:%02d", m, sec)
end

local FD = { [io.stdout] = 1, [io.stderr] = 2 }

local function fd_of(f)
  if type(f) == "number" then return f end
  return FD[f] or 1
end

-- term.getenv: replaceable in tests
M.getenv = os.getenv

-- term.isatty(fd | io.stdout | io.stderr) -> boolean
function M.isatty(f)
  return host.isatty(fd_of(f))
end

local forced -- nil: decide per stream; true/false: a caller decided (tests, --color flags)

-- term.set_color(true | false | nil): force colour on or off (nil: back to the automatic choice)
function M.set_color(v) forced = v end

-- term.color(fd | file) -> true when colour should be used on that stream: a terminal, NO_COLOR
-- unset or empty (https://no-color.org), TERM not "dumb"
function M.color(f)
  if forced ~= nil then return forced end
  local no = M.getenv("NO_COLOR")
  if no ~= nil and no ~= "" then return false end
  if M.getenv("TERM") == "dumb" then return false end
  return M.isatty(f or 1)
end

local SGR = {
  bold = "1", dim = "2", red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36",
}

-- term.paint(file, style, text) -> text, wrapped in the style's escape codes when file is a
-- colour terminal. style: "bold", "dim", "red", "green", "yellow", "blue", "magenta", "cyan",
-- or several joined with "+" ("bold+red").
function M.paint(f, style, text)
  text = tostring(text)
  if not style or not M.color(f) then return text end
  local codes = {}
  for s in style:gmatch("[^+]+") do codes[#codes + 1] = SGR[s] end
  if #codes == 0 then return text end
  return "\27[" .. table.concat(codes, ";") .. "m" .. text .. "\27[0m"
end

-- ---------------------------------------------------------------------------------------------
-- Progress

local Line = {}
-- term.Line: the methods of a line (due, draw, finish), for progress lines built on it
M.Line = Line
Line.__index = Line

-- term.line{quiet=, tty=, interval=, delay=, out=, now=} -> line: a status line on stderr. On a
-- terminal it is redrawn in place at most `interval` (0.2) s apart; off a terminal each draw is
-- one plain line, at most every `interval` (default 10) s; quiet: nothing. The first draw comes
-- after `delay` seconds (default: the interval).
function M.line(o)
  o = o or {}
  local self = setmetatable({}, Line)
  self.quiet = o.quiet
  if o.tty == nil then self.tty = M.isatty(2) else self.tty = o.tty end
  self.interval = o.interval or (self.tty and 0.2 or 10)
  self.out = o.out or function(s) io.stderr:write(s); io.stderr:flush() end
  self.now = o.now or host.monotonic
  self.start = self.now()
  self.next_at = self.start + (o.delay or self.interval)
  self.drawn = false
  return self
end

-- line:due([force]) -> seconds since the start when a draw is due now, else nil
function Line:due(force)
  if self.quiet then return nil end
  local now = self.now()
  if not force and now < self.next_at then return nil end
  self.next_at = now + self.interval
  return now - self.start
end

-- line:draw(text): the text in place of the last one (terminal) or as a new line
function Line:draw(text)
  if self.tty then
    self.out("\r\27[K" .. text)
    self.drawn = true
  else
    self.out(text .. "\n")
  end
end

-- line:finish(): clear the terminal line (idempotent)
function Line:finish()
  if self.quiet then return end
  if self.tty and self.drawn then self.out("\r\27[K") end
  self.drawn = false
end

-- term.bar(frac) -> " 42% [==========              ]"
function M.bar(frac)
  local width = 24
  local fill = math.floor(frac * width + 0.5)
  return string.format("%3d%% [%s%s]", math.floor(frac * 100), string.rep("=", fill), string.rep(" ", width - fill))
end

-- term.eta(elapsed, frac) -> "  ETA 1:02" once a second has passed and the fraction is known, else ""
function M.eta(elapsed, frac)
  if frac and frac > 0 and frac < 1 and elapsed > 1 then
    return "  ETA " .. M.duration(elapsed * (1 - frac) / frac)
  end
  return ""
end

local Progress = setmetatable({}, { __index = Line })
Progress.__index = Progress

-- term.progress{label=, total=, quiet=, tty=, interval=, out=, now=} -> progress
-- On a terminal: one line on stderr, redrawn at most `interval` (0.2) s apart: label, a bar and
-- an ETA when the total is known, else a spinner, then the caller's text. Not on a terminal: one
-- plain line every `interval` (default 10) s, as `aep stream` does in CI logs; quiet: nothing.
-- The first line is drawn only after `delay` seconds (default 0), so quick work shows nothing.
function M.progress(o)
  o = o or {}
  local self = setmetatable(M.line(o), Progress)
  self.label = o.label or "aep"
  self.total = o.total
  self.frame = 0
  return self
end

local SPIN = { "|", "/", "-", "\\" }

-- progress:update(done [, text [, force]]): done = units so far (of total when known)
function Progress:update(done, text, force)
  local elapsed = self:due(force)
  if not elapsed then return end
  local frac = self.total and self.total > 0 and done and math.min(1, done / self.total) or nil
  local eta = M.eta(elapsed, frac)
  text = text or ""
  if self.tty then
    local head
    if frac then
      head = M.bar(frac)
    else
      self.frame = self.frame % #SPIN + 1
      head = SPIN[self.frame] .. " " .. M.duration(elapsed)
    end
    self:draw(self.label .. " " .. head .. (text ~= "" and ("  " .. text) or "") .. eta)
  else
    self:draw(self.label .. ": " .. text .. (frac and string.format("  (%d%%)", math.floor(frac * 100)) or "") .. eta)
  end
end

Line.__close = Line.finish
Progress.__close = Line.finish

return M
