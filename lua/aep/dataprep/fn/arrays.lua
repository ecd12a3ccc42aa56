-- Hierarchies - Arrays (functions.md). The variadic functions take either their values as
-- arguments (first("1", "2", "3")) or one array (first(items)).
local values = require "aep.dataprep.values"

local fail, null = values.fail, values.null

local function nonnull(v) if v == null then return nil end return v end

-- the values of a call: one array argument stands for its elements
local function items(...)
  local n = select("#", ...)
  if n == 1 and values.is_array((...)) then
    local a = ...
    return a, #a
  end
  return { ... }, n
end

local function copy(a)
  local out = values.array({})
  if a == nil then return out end
  if not values.is_array(a) and not (type(a) == "table" and next(a) == nil) then fail("expected an array") end
  for i = 1, #a do out[i] = a[i] end
  return out
end

local F = {}

F.coalesce = { min = 0, max = math.huge, returns = "any", fn = function(...)
  local list, n = items(...)
  for i = 1, n do
    local v = nonnull(list[i])
    if v ~= nil then return v end
  end
  return nil
end }

F.first = { min = 0, max = math.huge, returns = "any", fn = function(...)
  local list, n = items(...)
  if n == 0 then return nil end
  return nonnull(list[1])
end }

F.last = { min = 0, max = math.huge, returns = "any", fn = function(...)
  local list, n = items(...)
  if n == 0 then return nil end
  return nonnull(list[n])
end }

F.add_to_array = { min = 1, max = math.huge, returns = "array", fn = function(a, ...)
  local out = copy(a)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    out[#out + 1] = v == nil and null or v
  end
  return out
end }

F.join_arrays = { min = 1, max = math.huge, returns = "array", fn = function(a, ...)
  local out = copy(a)
  for i = 1, select("#", ...) do
    local b = select(i, ...)
    if b ~= nil then
      if not values.is_array(b) and not (type(b) == "table" and next(b) == nil) then
        fail("join_arrays: argument %d must be an array", i + 1)
      end
      for j = 1, #b do out[#out + 1] = b[j] end
    end
  end
  return out
end }

F.to_array = { min = 1, max = math.huge, returns = "array", fn = function(include_nulls, ...)
  local keep = values.truthy(include_nulls)
  local out = values.array({})
  for i = 1, select("#", ...) do
    local v = nonnull((select(i, ...)))
    if v ~= nil then out[#out + 1] = v elseif keep then out[#out + 1] = null end
  end
  return out
end }

F.size_of = { min = 1, returns = "integer", fn = function(v)
  if v == nil then return 0 end
  if type(v) == "string" then return utf8.len(v) or #v end
  if type(v) == "table" and getmetatable(v) ~= values.date_mt then
    if values.is_array(v) then return #v end
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    return n
  end
  return 1
end }

-- JEXL's size(x) operator, a reserved word of the language
F.size = F.size_of

-- only meaningful to Profile updates (upserts.md); on an insert they return their input
F.upsert_array_append = { min = 1, max = 2, returns = "array", fn = function(a) return a end }
F.upsert_array_replace = { min = 1, max = 2, returns = "array", fn = function(a) return a end }

F._items = items

return F
