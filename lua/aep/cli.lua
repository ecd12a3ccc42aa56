-- aep.cli: command dispatch and the one flag parser every command uses, so the same flag means
-- the same thing everywhere and every usage error looks the same.
local host = require "aep.host"

local M = {}

-- Exit codes, documented in the README and in `aep help`.
M.EXIT = {
  OK = 0,          -- success
  ERROR = 1,       -- could not run: bad configuration, AEP error, I/O error
  INCOMPLETE = 2,  -- ran, but some records were rejected, failed or invalid
  USAGE = 64,      -- unknown flag, missing argument (sysexits EX_USAGE)
  INTERRUPTED = 130,
}

-- cli.is_interrupt(err) -> true for the error Ctrl-C raises ("interrupted", core/main.c), which
-- commands pass on instead of reporting it as a failure
function M.is_interrupt(e)
  return type(e) == "string" and e:match("interrupted$") ~= nil
end

local usage_error_mt = {
  __tostring = function(e) return e.message end,
}

-- cli.usage_error(message): raise an error that dispatch prints with the command's usage.
function M.usage_error(message)
  error(setmetatable({ message = message, usage_error = true }, usage_error_mt), 0)
end

-- Flags shared by every command that prints or talks to AEP.
M.common = {
  verbose = { "verbose", "boolean", short = "v", help = "HTTP trace and tracebacks (secrets redacted)" },
  quiet = { "quiet", "boolean", short = "q", help = "print only errors and the final result" },
  env = { "env", "string", metavar = "FILE", help = "environment file: Postman environment or JSON config (or an emulator's data dir)" },
  json = { "json", "boolean", help = "machine-readable output" },
}

local function key_of(name) return (name:gsub("-", "_")) end

-- cli.parse(args, spec) -> options, positional
-- spec: array of { "long-name", "string"|"number"|"integer"|"boolean"|"list", short = "x",
-- default = v, required = bool, help = "..." }. "--name value", "--name=value", "-x value";
-- "--" ends the flags. Unknown flags and missing values raise usage errors.
function M.parse(args, spec)
  local by_long, by_short = {}, {}
  local opts, positional = {}, {}
  for _, s in ipairs(spec) do
    by_long[s[1]] = s
    if s.short then by_short[s.short] = s end
    if s.default ~= nil then opts[key_of(s[1])] = s.default end
    if s[2] == "list" and opts[key_of(s[1])] == nil then opts[key_of(s[1])] = {} end
  end
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do positional[#positional + 1] = args[j] end
      break
    end
    local s, value
    if a:sub(1, 2) == "--" then
      local name, v = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      value = v
      s = by_long[name]
      if not s and name:sub(1, 3) == "no-" and by_long[name:sub(4)] and by_long[name:sub(4)][2] == "boolean" then
        opts[key_of(name:sub(4))] = false
        goto continue
      end
      if not s then M.usage_error("unknown flag '" .. a .. "'") end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      s = by_short[a:sub(2)]
      if not s then M.usage_error("unknown flag '" .. a .. "'") end
    else
      positional[#positional + 1] = a
      goto continue
    end
    do
      local k = key_of(s[1])
      if s[2] == "boolean" then
        if value ~= nil then
          if value == "true" or value == "1" then opts[k] = true
          elseif value == "false" or value == "0" then opts[k] = false
          else M.usage_error("flag '--" .. s[1] .. "' takes no value") end
        else
          opts[k] = true
        end
      else
        if value == nil then
          i = i + 1
          value = args[i]
          if value == nil then M.usage_error("flag '--" .. s[1] .. "' needs a value") end
        end
        if s[2] == "number" or s[2] == "integer" then
          local n = tonumber(value)
          if not n or (s[2] == "integer" and math.tointeger(n) == nil) then
            M.usage_error("flag '--" .. s[1] .. "' needs a" .. (s[2] == "integer" and "n integer" or " number") .. ", got '" .. value .. "'")
          end
          opts[k] = s[2] == "integer" and math.tointeger(n) or n
        elseif s[2] == "list" then
          local list = opts[k]
          list[#list + 1] = value
        else
          opts[k] = value
        end
      end
    end
    ::continue::
    i = i + 1
  end
  for _, s in ipairs(spec) do
    if s.required and opts[key_of(s[1])] == nil then
      M.usage_error("missing required flag '--" .. s[1] .. "'")
    end
  end
  return opts, positional
end

-- cli.flags_help(spec) -> text listing the flags, for usage strings
function M.flags_help(spec)
  local lines = {}
  for _, s in ipairs(spec) do
    local left = "  --" .. s[1]
    if s.short then left = "  -" .. s.short .. ", --" .. s[1] end
    if s[2] ~= "boolean" then left = left .. " " .. (s.metavar or s[2]:upper()) end
    local right = s.help or ""
    if s.default ~= nil and s[2] ~= "boolean" then right = right .. " (default " .. tostring(s.default) .. ")" end
    lines[#lines + 1] = string.format("%-30s %s", left, right)
  end
  return table.concat(lines, "\n")
end

local function command_exists(name)
  if not name:match("^[%w][%w%-_]*$") then return false end
  local modname = "aep.cmd." .. name:gsub("%-", "_")
  if package.searchpath(modname, package.path) then return modname end
  if host.embedded("lua/aep/cmd/" .. name:gsub("%-", "_") .. ".lua") then return modname end
  return false
end

-- cli.commands() -> sorted list of command names found (embedded or on AEP_LUA_PATH)
function M.commands()
  local seen, names = {}, {}
  for _, path in ipairs(host.embedded_list("lua/aep/cmd/")) do
    local name = path:match("^lua/aep/cmd/([%w_]+)%.lua$")
    if name and not seen[name] then
      seen[name] = true
      names[#names + 1] = (name:gsub("_", "-"))
    end
  end
  table.sort(names)
  return names
end

-- cli.load(name) -> command table | nil
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
      return M.EXIT.OK
    end
  end
  local ok, result = pcall(cmd.run, args)
  if ok then
    return math.tointeger(result) or M.EXIT.OK
  end
  if type(result) == "table" and result.usage_error then
    io.stderr:write("aep ", name, ": ", result.message, "\n")
    print_usage(cmd, io.stderr)
    return M.EXIT.USAGE
  end
  error(result, 0)
end

-- cli.dispatch(argv) -> exit status; argv[1] is the command name (called by core/main.c)
function M.dispatch(argv)
  local name = argv[1]
  local args = table.move(argv, 2, #argv, 1, {})
  local cmd = M.load(name)
  if not cmd then
    io.stderr:write("aep: unknown command '", name, "' (run 'aep help' for the list)\n")
    return M.EXIT.USAGE
  end
  return M.run_command(name, cmd, args)
end

-- cli.repl() -> exit status (called by core/main.c for `aep` on a terminal and for -i)
function M.repl(argv)
  return M.run_command("repl", M.load("repl"), argv or {})
end

return M
