-- aep.cli: the one flag parser every command uses, so the same flag means the same thing
-- everywhere and every usage error looks the same, and the exit codes. A leaf: the dispatcher
-- (aep.cmd) and the library use it; it requires no command.
local errors = require "aep.errors"

local M = {}

-- Exit codes, documented in the README and in `aep help`.
M.EXIT = {
  OK = 0,          -- success
  ERROR = 1,       -- could not run: bad configuration, AEP error, I/O error
  INCOMPLETE = 2,  -- ran, but some records were rejected, failed or invalid
  USAGE = 64,      -- unknown flag, missing argument (sysexits EX_USAGE)
  INTERRUPTED = 130,
}

-- cli.is_interrupt(err) -> true for the error Ctrl-C raises (errors.is_interrupt)
M.is_interrupt = errors.is_interrupt

-- cli.usage_error(message): raise an error that dispatch prints with the command's usage
-- (errors.usage_error)
M.usage_error = errors.usage_error

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

return M
