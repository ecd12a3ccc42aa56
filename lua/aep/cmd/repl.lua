-- aep repl: the interactive Lua session with aep's library at hand.
local cli = require "aep.cli"

local usage = [[
usage: aep repl [--env FILE] [--verbose]

An interactive Lua 5.4 session inside aep: line editing, history (kept in
$XDG_STATE_HOME/aep/history), multi-line input, pretty-printed results, Tab completion of
globals and fields. Ctrl-C cancels the line or the running call; Ctrl-D leaves.
'aep' with no arguments on a terminal starts it too.

Examples:
  aep repl
  aep repl --env my-org.postman_environment.json
]]

local spec = { cli.common.env, cli.common.verbose }

local function run(args)
  local opts = cli.parse(args, spec)
  local env = _G
  local ok, session = pcall(require, "aep.repl_session")
  if ok and type(session) == "table" and session.setup then
    env = session.setup(opts) or _G
  end
  local host = require "aep.host"
  local v = host.versions()
  return require("aep.repl").run {
    env = env,
    banner = string.format("aep %s (%s) -- help() for help, Ctrl-D to leave", v.aep, v.lua),
  }
end

return { summary = "interactive Lua session with the aep library", usage = usage, run = run }
