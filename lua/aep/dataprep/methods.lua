-- aep.dataprep.methods: methods an expression calls on a value (JEXL calls Java's): the
-- documented equals / equalsIgnoreCase and get, and the java.lang.String methods people write.
local values = require "aep.dataprep.values"
local strings = require "aep.dataprep.fn.strings"

local to_string, fail = values.to_string, values.fail

local function s(v, name)
  if type(v) ~= "string" then fail("%s() needs a string, got %s", name, type(v)) end
  return v
end

local M = {}

M.equals = { min = 1, max = 1, null_ok = false, fn = function(a, b) return values.equal(a, b) and type(a) == type(b) or a == b end }
M.equalsIgnoreCase = { min = 1, max = 1, fn = function(a, b)
  if b == nil then return false end
  return to_string(a):lower() == to_string(b):lower()
end }
M.get = { min = 1, max = 1, fn = function(o, k)
  if type(o) ~= "table" then fail("get() needs an object") end
  if values.is_array(o) then
    local v = o[(math.tointeger(values.to_number(k)) or -1) + 1]
    if v == values.null then return nil end
    return v
  end
  local v = o[to_string(k)]
  if v == values.null then return nil end
  return v
end }
M.length = { min = 0, max = 0, fn = function(a) return utf8.len(s(a, "length")) or #a end }
M.toUpperCase = { min = 0, max = 0, fn = function(a) return s(a, "toUpperCase"):upper() end }
M.toLowerCase = { min = 0, max = 0, fn = function(a) return s(a, "toLowerCase"):lower() end }
M.trim = { min = 0, max = 0, fn = function(a) return s(a, "trim"):match("^%s*(.-)%s*$") end }
-- String.isEmpty, and Collection.isEmpty / size on arrays and objects (List, Map)
M.isEmpty = { min = 0, max = 0, fn = function(a)
  if type(a) == "table" and getmetatable(a) ~= values.date_mt then return next(a) == nil end
  return s(a, "isEmpty") == ""
end }
M.size = { min = 0, max = 0, fn = function(a)
  if type(a) ~= "table" or getmetatable(a) == values.date_mt then fail("size() needs an array or an object") end
  if values.is_array(a) then return #a end
  local n = 0
  for _ in pairs(a) do n = n + 1 end
  return n
end }
M.contains = { min = 1, max = 1, fn = function(a, b) return s(a, "contains"):find(to_string(b) or "", 1, true) ~= nil end }
M.startsWith = { min = 1, max = 1, fn = function(a, b)
  b = to_string(b) or ""
  return s(a, "startsWith"):sub(1, #b) == b
end }
M.endsWith = { min = 1, max = 1, fn = function(a, b)
  b = to_string(b) or ""
  return b == "" or s(a, "endsWith"):sub(-#b) == b
end }
M.indexOf = { min = 1, max = 1, fn = function(a, b)
  local i = s(a, "indexOf"):find(to_string(b) or "", 1, true)
  return i and (utf8.len(a, 1, i - 1) or i - 1) or -1
end }
M.substring = { min = 1, max = 2, fn = function(a, i, j)
  s(a, "substring")
  local n = strings._helpers.len(a)
  i = math.tointeger(values.to_number(i)) or fail("substring() needs integer positions")
  j = j == nil and n or (math.tointeger(values.to_number(j)) or fail("substring() needs integer positions"))
  if i < 0 or j > n or i > j then fail("substring(%d, %d) is out of range for a string of length %d", i, j, n) end
  return strings._helpers.sub(a, i + 1, j)
end }
M.replace = { min = 2, max = 2, fn = function(a, b, c)
  return strings.replacestr.fn(s(a, "replace"), b, c)
end }
M.toString = { min = 0, max = 0, fn = function(a) return to_string(a) end }

return M
