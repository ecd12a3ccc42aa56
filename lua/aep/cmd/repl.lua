-- aep repl: the interactive Lua session with aep's library at hand.
local cli = require "aep.cli"

local spec = { cli.common.env, cli.common.verbose, cli.common.quiet }
for _, s in ipairs(require("aep.config").flag_spec()) do spec[#spec + 1] = s end

local usage = [[
usage: aep repl [--env FILE] [-v] [-q] [configuration flags]

An interactive Lua 5.4 session inside aep with its library loaded: `aep.schemas`,
`aep.catalog`, ... (each module loads on first use), a `client` for the current configuration
that authenticates on its first request, try(mapping, record [, dataset]) to map one record and
validate it offline against the dataset's schema, reload "FILE" to reload a mapping, and help()
for the rest. Line editing, history (kept in $XDG_STATE_HOME/aep/history), multi-line input,
pretty-printed results, Tab completion of globals and fields (`aep.schemas.<Tab>`). Calls that
wait on the network show a spinner; Ctrl-C cancels the line or the running call; Ctrl-D
leaves. 'aep' with no arguments on a terminal starts it too. With nothing configured, the REPL
uses an `aep emulator` already running on its default data directory.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep repl
  aep repl --env my-org.postman_environment.json
  aep repl --env /tmp/aep-emu          (an emulator's data directory)
  > help()
  > try("mappings/loyalty_profile.lua", records("data/AEP_loyalty_profiles.json")[1], "DATASET_ID_PROFILE")
]]

local function run(args)
  local opts = cli.parse(args, spec)
  local env, banner = require("aep.repl.session").setup(opts)
  local host = require "aep.host"
  local v = host.versions()
  local lines = { string.format("aep %s (%s) -- help() for help, Ctrl-D to leave", v.aep, v.lua) }
  for _, l in ipairs(banner or {}) do lines[#lines + 1] = l end
  return require("aep.repl").run {
    env = env or _G,
    banner = not opts.quiet and table.concat(lines, "\n") or nil,
  }
end

return { summary = "interactive Lua session with the aep library, a client and offline try", usage = usage, run = run }
