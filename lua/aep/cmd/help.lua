-- aep help [COMMAND]: the list of commands, or one command's usage.
local cli = require "aep.cli"

local spec = { { "man", "boolean", help = "write the whole manual as a man page (troff) on stdout" } }

local usage = [[
usage: aep help [COMMAND] [--man]

Lists aep's commands with a one-line summary, the flags every command shares and the exit
codes, or shows COMMAND's usage (the same text as `aep COMMAND --help`). --man writes the whole
manual (every command's usage) as a man page (troff); the build installs it as aep.1.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep help
  aep help stream
  aep help --man | man -l -
]]

local exit_codes = [[
Exit codes:
  0    success
  1    could not run (bad configuration, AEP error, I/O error); the message says why
  2    ran, but some records were rejected, failed or invalid (stream, validate, status),
       or profiles did not match (run lookup --verify)
  64   usage error: unknown flag or missing argument
  130  interrupted (Ctrl-C)
]]

-- The flags that mean the same thing in every command that takes them.
local common_flags = "Common flags (the same meaning in every command that takes them):\n" ..
  cli.flags_help({ cli.common.verbose, cli.common.quiet, cli.common.env, cli.common.json }) .. "\n" ..
  "Colour and progress lines appear only on a terminal, never when NO_COLOR is set.\n"

-- Escape text for troff: backslashes, and lines starting with a dot or quote.
local function roff(text)
  text = text:gsub("\\", "\\e")
  text = text:gsub("\n([.'])", "\n\\&%1")
  return text
end

local function manual(commands)
  local out = {}
  local host = require "aep.host"
  out[#out + 1] = '.TH AEP 1 "" "aep ' .. host.versions().aep .. '" "User Commands"'
  out[#out + 1] = ".SH NAME\naep \\- stream customer data into Adobe Experience Platform"
  out[#out + 1] = ".SH SYNOPSIS\n.B aep\nCOMMAND [flags]\n.br\n.B aep\n[options] [script [args]]"
  out[#out + 1] = ".SH DESCRIPTION\naep is a small, scriptable runtime (a C host embedding Lua 5.4) that runs " ..
    "Adobe's real-time import workflow, streams files of records into AEP, validates mappings " ..
    "offline and emulates AEP locally. Without a command it runs Lua scripts like the lua interpreter."
  out[#out + 1] = ".SH COMMANDS"
  for _, n in ipairs(commands.commands()) do
    local cmd = commands.load(n)
    out[#out + 1] = ".SS " .. n
    out[#out + 1] = ".nf\n" .. roff((cmd.usage or ""):gsub("\n*$", "")) .. "\n.fi"
  end
  out[#out + 1] = ".SH COMMON FLAGS\n.nf\n" .. roff((common_flags:gsub("^[^\n]*\n", ""):gsub("\n*$", ""))) .. "\n.fi"
  out[#out + 1] = ".SH EXIT STATUS\n.nf\n" .. roff(exit_codes:gsub("^Exit codes:\n", ""):gsub("\n*$", "")) .. "\n.fi"
  out[#out + 1] = ".SH ENVIRONMENT\n.TP\nAEP_LUA_PATH\nLua module path searched before the modules built " ..
    "into aep (;; stands for the default path).\n.TP\nAEP_DEBUG\nSet to 1 to add tracebacks to errors.\n" ..
    ".TP\nAEP_*\nConfiguration values; see aep config.\n.TP\nNO_COLOR\nNo colour in output.\n" ..
    ".TP\nXDG_STATE_HOME\nWhere the REPL keeps its history (aep/history)."
  return table.concat(out, "\n") .. "\n"
end

-- run(args, commands): commands is the dispatcher (aep.cmd), which lists and loads commands
local function run(args, commands)
  local opts, positional = cli.parse(args, spec)
  if opts.man then
    io.stdout:write(manual(commands))
    return 0
  end
  local name = positional[1]
  if name then
    local cmd = commands.load(name)
    if not cmd then
      io.stderr:write("aep: unknown command '", name, "' (run 'aep help' for the list)\n")
      return cli.EXIT.USAGE
    end
    io.stdout:write(((cmd.usage or ""):gsub("\n*$", "\n")))
    return 0
  end
  io.stdout:write("usage: aep COMMAND [flags]   |   aep [options] [script [args]]\n\n")
  io.stdout:write("aep streams customer data into Adobe Experience Platform. Commands:\n")
  -- the summaries line up after the longest name, two spaces apart
  local names, width = commands.commands(), 0
  for _, n in ipairs(names) do width = math.max(width, #n) end
  for _, n in ipairs(names) do
    local ok, cmd = pcall(commands.load, n)
    local summary = ok and cmd and cmd.summary or ""
    io.stdout:write(string.format("  %-" .. width .. "s  %s\n", n, summary))
  end
  io.stdout:write("\nRun 'aep help COMMAND' or 'aep COMMAND --help' for a command's flags and examples.\n")
  io.stdout:write("Without a command, aep runs a Lua script like the lua interpreter (aep --help for its options);\n")
  io.stdout:write("on a terminal, 'aep' alone starts the REPL.\n\n")
  io.stdout:write(common_flags, "\n")
  io.stdout:write(exit_codes)
  return 0
end

return { summary = "list the commands, or show one command's usage", usage = usage, run = run }
