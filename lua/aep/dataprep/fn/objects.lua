-- Hierarchies - Objects (functions.md). Objects are Lua tables; JSON gives them no key order,
-- so get_keys answers the keys sorted.
local values = require "aep.dataprep.values"

local to_string, fail, null = values.to_string, values.fail, values.null

local function nonnull(v) if v == null then return nil end return v end

local F = {}

F.is_empty = { min = 1, returns = "boolean", fn = function(v)
  if v == nil then return true end
  if type(v) == "string" then return v == "" end
  if type(v) == "table" and getmetatable(v) ~= values.date_mt then return next(v) == nil end
  return false
end }

local function arrays_to_objects(...)
  local n = select("#", ...)
  if n % 2 ~= 0 then fail("arrays_to_object takes key and array pairs, got %d arguments", n) end
  local args, longest = { ... }, 0
  for i = 2, n, 2 do
    local a = args[i]
    if a ~= nil and not values.is_array(a) and not (type(a) == "table" and next(a) == nil) then
      fail("arrays_to_object: argument %d must be an array", i)
    end
    if a and #a > longest then longest = #a end
  end
  local out = values.array({})
  for row = 1, longest do
    local obj = {}
    for i = 1, n, 2 do
      local key = to_string(args[i]) or fail("arrays_to_object: a key is null")
      local a = args[i + 1]
      local v = a and nonnull(a[row])
      if v ~= nil then obj[key] = v end
    end
    out[row] = obj
  end
  return out
end
-- JEXL's empty(x) operator, a reserved word of the language
F.empty = F.is_empty

F.arrays_to_object = { min = 0, max = math.huge, returns = "array", fn = arrays_to_objects }
F.arrays_to_objects = F.arrays_to_object

F.to_object = { min = 0, max = math.huge, returns = "object", fn = function(...)
  local n = select("#", ...)
  if n % 2 ~= 0 then fail("to_object takes key/value pairs, got %d arguments", n) end
  local args, out = { ... }, {}
  for i = 1, n, 2 do
    local key = to_string(args[i]) or fail("to_object: a key is null")
    if args[i + 1] ~= nil then out[key] = args[i + 1] end
  end
  return out
end }

local function trim(s) return s:match("^%s*(.-)%s*$") end

-- "k1 : v1 , k2 : v2" -> {k1 = "v1", k2 = "v2"}; delimiters are literal text
local function parse_pairs(s, vd, fd)
  vd = (vd == nil or vd == "") and ":" or to_string(vd)
  fd = (fd == nil or fd == "") and "," or to_string(fd)
  local out, i = {}, 1
  while i <= #s + 1 do
    local a, b = s:find(fd, i, true)
    local field = s:sub(i, (a or #s + 1) - 1)
    local va, vb = field:find(vd, 1, true)
    if va then
      local key = trim(field:sub(1, va - 1))
      if key ~= "" then out[key] = trim(field:sub(vb + 1)) end
    end
    if not a then break end
    i = b + 1
  end
  return out
end

F.str_to_object = { min = 1, max = 3, returns = "object", fn = function(s, vd, fd)
  if s == nil then return nil end
  return parse_pairs(to_string(s), vd, fd)
end }

F.get_values = { min = 2, max = 4, returns = "string", fn = function(s, key, vd, fd)
  if s == nil or key == nil then return nil end
  return parse_pairs(to_string(s), vd, fd)[to_string(key)]
end }

F.contains_key = { min = 1, max = 1, returns = "boolean", record = true, fn = function(record, path)
  if path == nil then return false end
  local node = record
  local p = to_string(path):gsub("\\%.", "\0")
  for part in (p .. "."):gmatch("(.-)%.") do
    if type(node) ~= "table" then return false end
    node = node[(part:gsub("%z", "."))]
    if node == nil then return false end
  end
  return true
end }

F.nullify = { min = 0, returns = "null", fn = function() return nil end }

F.get_keys = { min = 1, returns = "array", fn = function(obj)
  if obj == nil then return nil end
  if type(obj) ~= "table" or values.is_array(obj) then fail("get_keys expects an object") end
  local keys = values.array({})
  for k in pairs(obj) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end }

F._parse_pairs = parse_pairs

return F
