-- aep.cmd: the command dispatcher, the top of the program. core/main.c calls cmd.dispatch(argv)
-- for `aep COMMAND ...` and cmd.repl() for the REPL; a command is lua/aep/cmd/<name>.lua
-- returning { summary = "...", usage = "...", run = function(args, commands) ... end }, found
-- embedded or on AEP_LUA_PATH, so a new command needs no C. `commands` is this module (aep
-- help lists the commands through it without requiring it).
local host = require "aep.host"
local cli = require "aep.cli"

local M = {}

-- Commands whose module name differs from the command's: cmd/init.lua is this dispatcher, so
-- `aep init` lives in cmd/init_project.lua.
local MODULE_OF = { init = "init_project" }
local COMMAND_OF = { init_project = "init" }

local function command_exists(name)
  if not name:match("^[%w][%w%-_]*$") then return false end
  local base = MODULE_OF[name] or name:gsub("%-", "_")
  if base == "init" then return false end
  local modname = "aep.cmd." .. base
  if package.searchpath(modname, package.path) then return modname end
  if host.embedded("lua/aep/cmd/" .. base .. ".lua") then return modname end
  return false
end

-- cmd.commands() -> sorted list of command names found (embedded or on AEP_LUA_PATH)
function M.commands()
  local seen, names = {}, {}
  for _, path in ipairs(host.embedded_list("lua/aep/cmd/")) do
    local name = path:match("^lua/aep/cmd/([%w_]+)%.lua$")
    if name and name ~= "init" and not seen[name] then
      seen[name] = true
      names[#names + 1] = COMMAND_OF[name] or (name:gsub("_", "-"))
    end
  end
  table.sort(names)
  return names
end

-- cmd.load(name) -> command table | nil
function M.load(name)
  local modname = command_exists(name)
  if not modname then return nil end
  local cmd = require(modname)
  if type(cmd) ~= "table" or type(cmd.run) ~= "function" then
    error("command module '" .. modname .. "' must return a table with a run function", 0)
  end
  return cmd
end

local function print_usage(cmd, out)
  out:write(((cmd.usage or ""):gsub("\n*$", "\n")))
end

-- Run cmd.run(args) turning usage errors into "aep: message" + usage (exit 64).
function M.run_command(name, cmd, args)
  for _, a in ipairs(args) do
    if a == "--" then break end
    if a == "--help" or a == "-h" then
      print_usage(cmd, io.stdout)
      return cli.EXIT.OK
    end
  end
  local ok, result = pcall(cmd.run, args, M)
  if ok then
    return math.tointeger(result) or cli.EXIT.OK
  end
  if type(result) == "table" and result.usage_error then
    io.stderr:write("aep ", name, ": ", result.message, "\n")
    print_usage(cmd, io.stderr)
    return cli.EXIT.USAGE
  end
  error(result, 0)
end

-- cmd.dispatch(argv) -> exit status; argv[1] is the command name (called by core/main.c)
function M.dispatch(argv)
  local name = argv[1]
  local args = table.move(argv, 2, #argv, 1, {})
  local cmd = M.load(name)
  if not cmd then
    io.stderr:write("aep: unknown command '", name, "' (run 'aep help' for the list)\n")
    return cli.EXIT.USAGE
  end
  return M.run_command(name, cmd, args)
end

-- cmd.repl() -> exit status (called by core/main.c for `aep` on a terminal and for -i)
function M.repl(argv)
  return M.run_command("repl", M.load("repl"), argv or {})
end

return M
