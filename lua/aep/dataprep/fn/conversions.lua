-- Type conversions (functions.md). Strings are read as Java's parsers read them (trimmed);
-- a string that is not a number is a transformation error.
local values = require "aep.dataprep.values"

local to_string, fail, to_number = values.to_string, values.fail, values.to_number

local function number(v, what)
  if v == nil then return nil end
  if type(v) == "boolean" then fail("%s: cannot convert a boolean", what) end
  local n = to_number(v)
  if n == nil then fail("%s: '%s' is not a number", what, to_string(v)) end
  return n
end

local F = {}

-- BigInteger: integral values become integers; the documented example keeps a fraction
-- (to_bigint("1000000.34") -> 1000000.34), so a fraction is kept rather than refused
F.to_bigint = { min = 1, returns = "number", fn = function(v)
  local n = number(v, "to_bigint")
  if n == nil then return nil end
  return math.tointeger(n) or n
end }

F.to_decimal = { min = 1, returns = "number", fn = function(v)
  local n = number(v, "to_decimal")
  return n and n + 0.0
end }

F.to_float = { min = 1, returns = "number", fn = function(v)
  local n = number(v, "to_float")
  return n and n + 0.0
end }

F.to_integer = { min = 1, returns = "integer", fn = function(v)
  local n = number(v, "to_integer")
  if n == nil then return nil end
  local i = math.tointeger(n)
  if type(v) == "number" and not i then i = math.tointeger(n >= 0 and math.floor(n) or math.ceil(n)) end
  if not i then fail("to_integer: '%s' is not an integer", to_string(v)) end
  if i < -2147483648 or i > 2147483647 then fail("to_integer: %d is out of the integer range", i) end
  return i
end }

return F
