-- Drive an interactive program in a real terminal (tmux) the way a person would: type keys,
-- read the screen.
local run = require "tests.lua.support.run"
local host = require "aep.host"

local M = {}
M.__index = M

local counter = 0

-- tmux.start(command_line, {env = {K = V}, width = 120, height = 40}) -> session
function M.start(command, opts)
  opts = opts or {}
  counter = counter + 1
  local name = string.format("aep-test-%d-%d", host.getpid(), counter)
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. run.quote(v) end
  local line = (#env > 0 and ("env " .. table.concat(env, " ") .. " ") or "") .. command
  local r = run.cmd({ "tmux", "new-session", "-d", "-s", name, "-x", tostring(opts.width or 120),
    "-y", tostring(opts.height or 40), line })
  assert(r.status == 0, "tmux failed: " .. r.stderr)
  return setmetatable({ name = name }, M)
end

-- session:type(text): literal text; session:keys(...): key names such as "Enter", "Tab", "C-c"
function M:type(text)
  run.cmd({ "tmux", "send-keys", "-t", self.name, "-l", text })
end

function M:keys(...)
  run.cmd({ "tmux", "send-keys", "-t", self.name, ... })
end

-- session:screen() -> the visible text, trailing blank lines removed
function M:screen()
  local r = run.cmd({ "tmux", "capture-pane", "-t", self.name, "-p" })
  return (r.stdout:gsub("%s+$", ""))
end

-- session:wait_for(pattern [, seconds = 10]) -> screen once it matches (plain text), or raises
function M:wait_for(text, seconds)
  local deadline = host.monotonic() + (seconds or 10)
  while true do
    local s = self:screen()
    if s:find(text, 1, true) then return s end
    if host.monotonic() > deadline then
      error("timed out waiting for " .. string.format("%q", text) .. "; screen:\n" .. s, 2)
    end
    host.sleep(0.05)
  end
end

function M:alive()
  return run.cmd({ "tmux", "has-session", "-t", self.name }).status == 0
end

function M:kill()
  run.cmd({ "tmux", "kill-session", "-t", self.name })
end

return M
