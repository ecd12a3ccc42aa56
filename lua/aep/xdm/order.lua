-- aep.xdm.order: the order in which AEP's validator visits object keys.
--
-- everit walks an object's extraneous keys in the iteration order of the
-- org.json JSONObject (a java.util.HashMap) and the declared properties in the
-- order of its own HashMap of property schemas. Lua tables have no order, so
-- we reproduce java.util.HashMap iteration: buckets by String.hashCode() spread
-- (h ^ h >>> 16) masked by the table size (16, doubled whenever the count
-- exceeds 3/4 of it); keys sharing a bucket keep insertion order, which we
-- cannot know after decoding, so they are ordered by name.

local M = {}

-- String.hashCode over UTF-16 code units, as an unsigned 32-bit integer.
local function java_hash(s)
  local h = 0
  local ok = pcall(function()
    for _, c in utf8.codes(s) do
      if c >= 0x10000 then
        local v = c - 0x10000
        h = (h * 31 + (0xD800 + (v >> 10))) & 0xFFFFFFFF
        h = (h * 31 + (0xDC00 + (v & 0x3FF))) & 0xFFFFFFFF
      else
        h = (h * 31 + c) & 0xFFFFFFFF
      end
    end
  end)
  if not ok then
    h = 0
    for i = 1, #s do h = (h * 31 + s:byte(i)) & 0xFFFFFFFF end
  end
  return h
end
M.java_hash = java_hash

local spread_cache = {}
local function spread(s)
  local v = spread_cache[s]
  if not v then
    local h = java_hash(s)
    v = h ~ (h >> 16)
    spread_cache[s] = v
  end
  return v
end

-- table size java.util.HashMap reaches after `count` puts into a default map
local function table_size(count)
  local n = 16
  while count > n * 3 // 4 do n = n * 2 end
  return n
end
M.table_size = table_size

-- M.hashmap_order(keys[, count]) -> new array of the keys in HashMap iteration order;
-- count is the size of the whole map when keys is a subset of it (default #keys)
function M.hashmap_order(keys, count)
  local n = table_size(count or #keys)
  local mask = n - 1
  local out = {}
  for i = 1, #keys do out[i] = keys[i] end
  table.sort(out, function(a, b)
    local ba, bb = spread(a) & mask, spread(b) & mask
    if ba ~= bb then return ba < bb end
    return a < b
  end)
  return out
end

return M
