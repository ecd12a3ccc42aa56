-- aep.repl.pretty: values as people read them in the REPL: tables with sorted keys, nested tables
-- indented, depth-limited, cycles marked, long tables cut.
local M = {}

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function scalar(v)
  if type(v) == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2^53 then
    return string.format("%.1f", v)
  end
  return tostring(v)
end

-- pretty.format(v [, {depth = 4, max_items = 100, indent = "  "}]) -> string
function M.format(v, opts)
  opts = opts or {}
  local max_depth = opts.depth or 4
  local max_items = opts.max_items or 100
  local indent = opts.indent or "  "
  local seen = {}
  local out = {}

  local function emit(x, level)
    if type(x) ~= "table" then
      out[#out + 1] = scalar(x)
      return
    end
    local mt = getmetatable(x)
    if mt and mt.__tostring and not mt.__pretty_as_table then
      out[#out + 1] = tostring(x)
      return
    end
    if seen[x] then out[#out + 1] = "<cycle>"; return end
    if level >= max_depth then out[#out + 1] = "{...}"; return end
    local keys = {}
    for k in pairs(x) do keys[#keys + 1] = k end
    if #keys == 0 then out[#out + 1] = "{}"; return end
    table.sort(keys, key_order)
    seen[x] = true
    local n = #x
    local pad = string.rep(indent, level + 1)
    out[#out + 1] = "{\n"
    for i, k in ipairs(keys) do
      if i > max_items then
        out[#out + 1] = pad .. string.format("... (%d more)\n", #keys - max_items)
        break
      end
      out[#out + 1] = pad
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then
        out[#out + 1] = is_identifier(k) and k or ("[" .. scalar(k) .. "]")
        out[#out + 1] = " = "
      end
      emit(x[k], level + 1)
      out[#out + 1] = ",\n"
    end
    out[#out + 1] = string.rep(indent, level) .. "}"
    seen[x] = nil
  end

  emit(v, 0)
  return table.concat(out)
end

return M
