-- aep.dataprep.convert: the implicit conversion of a mapped value to its target field's type
-- (data-handling.md): strings to numbers, booleans (y/yes/on/true...) and dates (the default
-- formats), numbers to strings, dates to ISO 8601 text. A value that cannot be converted is a
-- transformation error: the field is left out, the rest of the record is mapped.

local values = require "aep.dataprep.values"
local dates = require "aep.dataprep.dates"
local dateformat = require "aep.dataprep.dateformat"
local json = require "aep.json"

local M = {}

local fail, to_string, to_number = values.fail, values.to_string, values.to_number
local Date = dates.mt

local TRUE = { y = true, yes = true, Y = true, YES = true, on = true, ON = true, ["true"] = true, ["TRUE"] = true }
local FALSE = { n = true, N = true, no = true, NO = true, off = true, OFF = true, ["false"] = true, ["FALSE"] = true }

-- the kind of a target schema node: "string" "date-time" "date" "integer" "number" "boolean"
-- "object" "array" | nil (unknown)
function M.kind(node)
  if type(node) ~= "table" then return nil end
  local t = node.type
  if type(t) == "table" then t = t[1] end
  if t == "string" then
    if node.format == "date-time" then return "date-time" end
    if node.format == "date" then return "date" end
    return "string"
  end
  return t
end

local function describe(v)
  if v == nil then return "null" end
  if getmetatable(v) == Date then return "a date" end
  if type(v) == "table" then return values.is_array(v) and "an array" or "an object" end
  return ("%s '%s'"):format(type(v), to_string(v))
end

local function as_date(v)
  if getmetatable(v) == Date then return v end
  if type(v) == "string" then
    local d, err = dateformat.parse_default(v)
    if not d then fail(err) end
    return d
  end
  if math.type(v) == "integer" then -- epoch milliseconds
    local s = v // 1000
    return dates.new(s, (v - s * 1000) * 1000000)
  end
  fail("cannot convert %s to a date", describe(v))
end

-- convert.to(value, node) -> value converted for the target node (raises values.fail)
function M.to(v, node)
  if v == nil then return nil end
  local kind = M.kind(node)
  if kind == nil then
    if getmetatable(v) == Date then return v:iso_utc() end
    if type(v) == "table" then return values.to_json(v) end
    return v
  end
  if kind == "string" then
    if type(v) == "table" and getmetatable(v) ~= Date then fail("cannot convert %s to a string", describe(v)) end
    if getmetatable(v) == Date then return v:iso_utc() end
    return to_string(v)
  elseif kind == "date-time" then
    return as_date(v):iso_utc()
  elseif kind == "date" then
    return as_date(v):iso_date()
  elseif kind == "integer" then
    if type(v) == "boolean" or type(v) == "table" then fail("cannot convert %s to an integer", describe(v)) end
    local n = to_number(v)
    local i = n and math.tointeger(n)
    if not i then fail("cannot convert %s to an integer", describe(v)) end
    if (node.minimum and i < node.minimum) or (node.maximum and i > node.maximum) then
      fail("%d is out of range for the field (%s to %s)", i, to_string(node.minimum), to_string(node.maximum))
    end
    return i
  elseif kind == "number" then
    if type(v) == "boolean" or type(v) == "table" then fail("cannot convert %s to a number", describe(v)) end
    local n = to_number(v)
    if not n then fail("cannot convert %s to a number", describe(v)) end
    return n
  elseif kind == "boolean" then
    if type(v) == "boolean" then return v end
    if type(v) == "string" then
      if TRUE[v] then return true end
      if FALSE[v] then return false end
    end
    fail("cannot convert %s to a boolean", describe(v))
  elseif kind == "object" then
    if not values.is_object(v) then fail("cannot convert %s to an object", describe(v)) end
    return M.object(v, node)
  elseif kind == "array" then
    if type(v) ~= "table" or getmetatable(v) == Date or not (values.is_array(v) or next(v) == nil) then
      fail("cannot convert %s to an array", describe(v))
    end
    local out = json.array({})
    for i = 1, #v do
      local x = v[i]
      out[i] = (x == nil or x == json.null) and json.null or M.to(x, node.items)
    end
    return out
  end
  return values.to_json(v)
end

-- convert.converter(node) -> function(value) -> converted: M.to specialised once per mapping,
-- with a fast path for a value that already has the target's type
function M.converter(node)
  local kind = M.kind(node)
  local to = M.to
  if kind == nil then
    return function(v)
      if type(v) ~= "table" then return v end
      return to(v, node)
    end
  elseif kind == "string" then
    return function(v)
      if type(v) == "string" then return v end
      return to(v, node)
    end
  elseif kind == "integer" then
    local lo, hi = node.minimum, node.maximum
    return function(v)
      if math.type(v) == "integer" and (lo == nil or v >= lo) and (hi == nil or v <= hi) then return v end
      return to(v, node)
    end
  elseif kind == "number" then
    return function(v)
      if type(v) == "number" then return v end
      return to(v, node)
    end
  elseif kind == "boolean" then
    return function(v)
      if type(v) == "boolean" then return v end
      return to(v, node)
    end
  elseif kind == "date" then
    local days_in_month = dates.days_in_month
    return function(v)
      if type(v) == "string" and #v == 10 then -- already yyyy-MM-dd
        local y, m, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
        if y then
          m, d = tonumber(m), tonumber(d)
          if m >= 1 and m <= 12 and d >= 1 and d <= days_in_month(tonumber(y), m) then return v end
        end
      end
      return to(v, node)
    end
  end
  return function(v) return to(v, node) end
end

-- Object copy (functions.md "Object copy"): an object mapped to an object brings the attributes
-- whose names the target schema has (converted to their types); the others are left out.
-- An attribute that cannot be converted fails the whole object, naming the attribute.
function M.object(v, node)
  local props, extra = node.properties, node.additionalProperties
  if type(props) ~= "table" and type(extra) ~= "table" then return values.to_json(v) end
  local out = {}
  for k, x in pairs(v) do
    local child = type(props) == "table" and props[k] or nil
    if child == nil and type(extra) == "table" then child = extra end
    if child ~= nil and x ~= json.null then
      local ok, cv = pcall(M.to, x, child)
      if not ok then fail("%s: %s", k, values.error_message(cv)) end
      out[k] = cv
    end
  end
  return out
end

-- the expression result kinds that can never reach a target kind (validation's type mismatch)
local COMPATIBLE = {
  string = { string = true, integer = true, number = true, boolean = true, date = true, any = true, null = true },
  ["date-time"] = { string = true, date = true, integer = true, any = true, null = true },
  date = { string = true, date = true, integer = true, any = true, null = true },
  integer = { string = true, integer = true, number = true, any = true, null = true },
  number = { string = true, integer = true, number = true, any = true, null = true },
  boolean = { string = true, boolean = true, any = true, null = true },
  object = { object = true, any = true, null = true },
  array = { array = true, any = true, null = true },
}

-- convert.compatible(result_kind, node) -> boolean
function M.compatible(result_kind, node)
  local kind = M.kind(node)
  if kind == nil or result_kind == nil then return true end
  local ok = COMPATIBLE[kind]
  return ok == nil or ok[result_kind] == true
end

return M
