-- Start a child process, wait for the line that says it is ready, and stop it again.
--
--   local spawn = require "support.spawn"
--   local child = spawn.spawn({spawn.aep, "tests/lua/support/test_server.lua"}, "^listening on (%S+)")
--   child.url     -- first capture of the ready pattern, else the URL of a "listening on URL" line
--   child.pid     -- the child's pid (the shell execs the command, so it is the command's pid)
--   child.lines   -- stdout lines read so far, ready line included
--   child:kill("TERM"); child:wait()   -- wait() -> true | false, "exit"|"signal", code
--
-- The child runs under io.popen as `echo $$; exec ARGV...`; its stdout is a pipe we read until the
-- ready line, so a child that prints a lot afterwards should be read with child:read_line() or
-- will block once the pipe is full. stderr is inherited unless opts.stderr names a file.
local M = {}

local host_ok, host = pcall(require, "aep.host")

-- M.aep: the aep binary under test (ctest sets AEP_BIN; otherwise the running executable).
M.aep = os.getenv("AEP_BIN") or (host_ok and host.executable()) or "aep"

-- Quote one word for /bin/sh.
function M.quote(s)
  s = tostring(s)
  if s:match("^[%w%._/%-=:,@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local Child = {}
Child.__index = Child

-- child:read_line() -> next stdout line | nil at end
function Child:read_line()
  if not self.fh then return nil end
  local line = self.fh:read("l")
  if line then self.lines[#self.lines + 1] = line end
  return line
end

-- child:kill([sig="TERM"]) -> true | nil, msg   (sig: a name such as "INT", or a number)
function Child:kill(sig)
  sig = sig or "TERM"
  if self.done then return nil, "already waited for" end
  if host_ok and type(sig) == "string" then return host.kill(self.pid, sig) end
  local ok = os.execute("kill -" .. tostring(sig) .. " " .. self.pid .. " 2>/dev/null")
  return ok or nil, "kill failed"
end

-- child:wait() -> like io.close of a popen handle: ok, "exit"|"signal", code (reads the rest of
-- stdout into child.lines first)
function Child:wait()
  if self.done then return table.unpack(self.status) end
  while self:read_line() do end
  self.status = table.pack(self.fh:close())
  self.fh = nil
  self.done = true
  return table.unpack(self.status)
end

-- child:stop() -> kill with TERM (if still running) and wait
function Child:stop()
  if not self.done then self:kill("TERM") end
  return self:wait()
end

-- spawn.spawn(argv, ready_pattern[, opts]) -> child | error
-- opts.env = {NAME = value}; opts.stderr = file path (default: inherited).
function M.spawn(argv, ready_pattern, opts)
  opts = opts or {}
  local words = {}
  for k, v in pairs(opts.env or {}) do words[#words + 1] = k .. "=" .. M.quote(v) end
  if #words > 0 then table.insert(words, 1, "env") end
  for _, a in ipairs(argv) do words[#words + 1] = M.quote(a) end
  local cmd = "echo $$; exec " .. table.concat(words, " ")
  if opts.stderr then cmd = cmd .. " 2>" .. M.quote(opts.stderr) end
  local fh = assert(io.popen(cmd, "r"))
  local pid = math.tointeger(tonumber(fh:read("l")))
  assert(pid, "spawn: could not read the child's pid")
  local child = setmetatable({ pid = pid, fh = fh, lines = {}, argv = argv }, Child)
  if ready_pattern then
    while true do
      local line = child:read_line()
      if not line then
        local _, how, code = child:wait()
        error(("spawn: %s ended (%s %s) before printing a line matching %q; output:\n%s")
          :format(table.concat(argv, " "), tostring(how), tostring(code), ready_pattern,
                  table.concat(child.lines, "\n")), 2)
      end
      local capture = line:match(ready_pattern)
      if capture then
        child.ready_line = line
        if ready_pattern:find("(", 1, true) then child.url = capture end
        break
      end
    end
    if not child.url then -- e.g. a "ready" line after a "listening on URL" line
      for _, l in ipairs(child.lines) do
        child.url = child.url or l:match("listening on (%a+://%S+)")
      end
    end
  end
  return child
end

setmetatable(M, { __call = function(_, ...) return M.spawn(...) end })

return M
