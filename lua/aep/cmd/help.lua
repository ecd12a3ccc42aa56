-- aep help [COMMAND]: the list of commands, or one command's usage.
local cli = require "aep.cli"

local usage = [[
usage: aep help [COMMAND]

Lists aep's commands with a one-line summary, or shows COMMAND's usage.

Examples:
  aep help
  aep help stream
]]

local exit_codes = [[
Exit codes:
  0    success
  1    could not run (bad configuration, AEP error, I/O error); the message says why
  2    ran, but some records were rejected, failed or invalid (stream, validate)
  64   usage error: unknown flag or missing argument
  130  interrupted (Ctrl-C)
]]

local function run(args)
  local _, positional = cli.parse(args, {})
  local name = positional[1]
  if name then
    local cmd = cli.load(name)
    if not cmd then
      io.stderr:write("aep: unknown command '", name, "' (run 'aep help' for the list)\n")
      return cli.EXIT.USAGE
    end
    io.stdout:write((cmd.usage or ""):gsub("\n*$", "\n"))
    return 0
  end
  io.stdout:write("usage: aep COMMAND [flags]   |   aep [options] [script [args]]\n\n")
  io.stdout:write("aep streams customer data into Adobe Experience Platform. Commands:\n")
  for _, n in ipairs(cli.commands()) do
    local ok, cmd = pcall(cli.load, n)
    local summary = ok and cmd and cmd.summary or ""
    io.stdout:write(string.format("  %-10s %s\n", n, summary))
  end
  io.stdout:write("\nRun 'aep help COMMAND' or 'aep COMMAND --help' for a command's flags and examples.\n")
  io.stdout:write("Without a command, aep runs a Lua script like the lua interpreter (aep --help for its options).\n\n")
  io.stdout:write(exit_codes)
  return 0
end

return { summary = "list the commands, or show one command's usage", usage = usage, run = run }
