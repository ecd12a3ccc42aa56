-- aep.repl: the interactive loop. Line editing and history by aep.readline; an input that is an
-- incomplete chunk continues on the next line; expressions are printed pretty; errors are shown
-- and the loop goes on; Ctrl-C cancels the line being typed or the call that is running;
-- Ctrl-D (end of input) leaves.
local readline = require "aep.readline"
local pretty = require "aep.repl.pretty"
local host = require "aep.host"
local log = require "aep.log"

local M = {}

-- repl.history_path() -> $XDG_STATE_HOME/aep/history (default ~/.local/state/aep/history)
function M.history_path()
  local dir = require("aep.file").state_dir()
  return dir .. "/history", dir
end

local function mkdir_p(dir)
  local path = ""
  for part in dir:gmatch("[^/]+") do
    path = path .. "/" .. part
    host.mkdir(path, tonumber("700", 8))
  end
end

-- A chunk is incomplete when the parser stopped at the end of the input.
local function incomplete(err)
  return err and err:sub(-5) == "<eof>"
end

-- Compile a line: first as `return <line>` so expressions print, then as statements.
local function compile(source, env)
  local fn = load("return " .. source, "=stdin", "t", env)
  if fn then return fn end
  return load(source, "=stdin", "t", env)
end

-- Results and errors pass through log.redact: showing `cfg` or `client` must not show a secret.
local function print_results(results, n)
  for i = 1, n do
    io.stdout:write(log.redact(pretty.format(results[i])), i < n and "\t" or "\n")
  end
end

-- Completion of globals and of fields: "aep.sch" -> "aep.schemas", "s:me" -> methods.
function M.completer(env)
  return function(text)
    local prefix, sep, partial = text:match("^(.-)([%.:])([%w_]*)$")
    local scope
    if prefix then
      scope = env
      for part in prefix:gmatch("[^%.:]+") do
        if type(scope) ~= "table" then scope = nil; break end
        local ok, v = pcall(function() return scope[part] end)
        scope = ok and v or nil
      end
    else
      prefix, sep, partial, scope = "", "", text, env
    end
    local out, seen = {}, {}
    local function add_keys(t, depth)
      if type(t) ~= "table" or depth > 3 then return end
      for k, v in pairs(t) do
        if type(k) == "string" and k:match("^[%a_][%w_]*$") and k:sub(1, #partial) == partial and not seen[k] then
          if sep ~= ":" or type(v) == "function" then
            seen[k] = true
            out[#out + 1] = prefix .. sep .. k
          end
        end
      end
      local mt = getmetatable(t)
      if mt and type(mt.__index) == "table" then add_keys(mt.__index, depth + 1) end
    end
    if type(scope) == "table" then add_keys(scope, 0)
    elseif scope ~= nil then
      local mt = getmetatable(scope)
      if mt and type(mt.__index) == "table" then add_keys(mt.__index, 0) end
    end
    table.sort(out)
    return out
  end
end

-- repl.run{env = table, prompt = "> ", prompt2 = ">> ", banner = string, on_line = fn}
function M.run(opts)
  opts = opts or {}
  local env = opts.env or _G
  local history, dir = M.history_path()
  mkdir_p(dir)
  readline.read_history(history)
  readline.set_completer(M.completer(env))
  if opts.banner then io.stdout:write(opts.banner, "\n") end
  local buffer = nil
  while true do
    local line = readline.readline(buffer and (opts.prompt2 or ">> ") or (opts.prompt or "> "))
    if line == nil then -- Ctrl-D
      io.stdout:write("\n")
      break
    elseif line == false then -- Ctrl-C: drop what was typed
      buffer = nil
    else
      local source = buffer and (buffer .. "\n" .. line) or line
      if source:match("^%s*$") then
        buffer = nil
      else
        local fn, err = compile(source, env)
        if not fn and incomplete(err) then
          buffer = source
        else
          buffer = nil
          readline.add_history(source)
          readline.write_history(history)
          if not fn then
            io.stderr:write(err, "\n")
          else
            local results = table.pack(xpcall(fn, function(e)
              if type(e) ~= "string" then
                local mt = getmetatable(e)
                e = mt and mt.__tostring and tostring(e) or pretty.format(e)
              end
              return e
            end))
            if results[1] then
              if results.n > 1 then print_results({ table.unpack(results, 2, results.n) }, results.n - 1) end
            else
              io.stderr:write(log.redact(tostring(results[2])), "\n")
            end
          end
        end
      end
    end
  end
  readline.write_history(history)
  return 0
end

return M
