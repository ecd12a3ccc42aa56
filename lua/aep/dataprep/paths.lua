-- aep.dataprep.paths: source and destination paths of mappings (mapping-set.md): dot-separated
-- names, "\." for a dot inside a name, "[n]" for an array index, "[*]" to iterate an array.
-- A step is {key = name} | {index = n (0-based)} | {wild = true}.

local values = require "aep.dataprep.values"
local json = require "aep.json"

local M = {}

-- The largest array index a path may name.
M.MAX_INDEX = 100000

local null = json.null

-- paths.parse(text) -> steps | nil, message
function M.parse(text)
  if type(text) ~= "string" or text == "" then return nil, "path is empty" end
  local steps, name, i, n = {}, {}, 1, #text
  local function flush(required)
    if #name > 0 then
      steps[#steps + 1] = { key = table.concat(name) }
      name = {}
    elseif required then
      return false
    end
    return true
  end
  while i <= n do
    local c = text:sub(i, i)
    if c == "\\" and i < n then
      name[#name + 1] = text:sub(i + 1, i + 1); i = i + 2
    elseif c == "." then
      if not flush(true) then return nil, ("empty name in path '%s'"):format(text) end
      if i == n then return nil, ("path '%s' ends with a dot"):format(text) end
      i = i + 1
    elseif c == "[" then
      flush(false)
      if #steps == 0 then return nil, ("path '%s' starts with an index"):format(text) end
      local inner, j = text:match("^%[([^%]]*)%]()", i)
      if not inner then return nil, ("unclosed '[' in path '%s'"):format(text) end
      if inner == "*" then steps[#steps + 1] = { wild = true }
      elseif inner:match("^%d+$") then
        -- a destination index fills the array up to it: bounded, so a path cannot ask for 10^30
        local n = math.tointeger(tonumber(inner))
        if not n or n > M.MAX_INDEX then
          return nil, ("index '[%s]' in path '%s' is larger than %d"):format(inner, text, M.MAX_INDEX)
        end
        steps[#steps + 1] = { index = n }
      else return nil, ("bad index '[%s]' in path '%s' (use [n] or [*])"):format(inner, text) end
      i = j
      if i <= n and text:sub(i, i) ~= "." and text:sub(i, i) ~= "[" then
        return nil, ("expected '.' after ']' in path '%s'"):format(text)
      end
      if text:sub(i, i) == "." then
        if i == n then return nil, ("path '%s' ends with a dot"):format(text) end
        i = i + 1
      end
    else
      name[#name + 1] = c; i = i + 1
    end
  end
  flush(false)
  return steps
end

function M.wildcards(steps)
  local n = 0
  for _, s in ipairs(steps) do if s.wild then n = n + 1 end end
  return n
end

-- paths.text(steps) -> "a.b[*].c" (for messages and schema look-ups)
function M.text(steps)
  local out = {}
  for _, s in ipairs(steps) do
    if s.key then
      out[#out + 1] = (#out > 0 and "." or "") .. s.key:gsub("%.", "\\.")
    elseif s.wild then
      out[#out + 1] = "[*]"
    else
      out[#out + 1] = "[" .. s.index .. "]"
    end
  end
  return table.concat(out)
end

-- paths.collect(record, steps, emit): emit(value, idx) for each value the path reaches; idx
-- holds the positions taken at each [*] (nil when the path has none)
function M.collect(node, steps, emit, k, idx)
  k = k or 1
  if k > #steps then
    if node == null then node = nil end
    return emit(node, idx)
  end
  if type(node) ~= "table" then
    if not idx or #idx == 0 then emit(nil, idx) end
    return
  end
  local s = steps[k]
  if s.key then return M.collect(node[s.key], steps, emit, k + 1, idx) end
  if s.index then return M.collect(node[s.index + 1], steps, emit, k + 1, idx) end
  idx = idx or {}
  for i = 1, #node do
    idx[#idx + 1] = i
    M.collect(node[i], steps, emit, k + 1, idx)
    idx[#idx] = nil
  end
end

-- paths.assign(root, steps, value, idx): set value at the path, creating objects and arrays;
-- the n-th [*] takes idx[n]
function M.assign(root, steps, value, idx)
  local node, w = root, 0
  local n = #steps
  for k = 1, n do
    local s = steps[k]
    local key
    if s.key then key = s.key
    elseif s.index then key = s.index + 1
    else w = w + 1; key = idx and idx[w] or 1 end
    if type(key) == "number" then -- no holes: JSON arrays are dense
      for h = #node + 1, key - 1 do node[h] = null end
    end
    if k == n then
      node[key] = value
      return
    end
    local nxt = node[key]
    if type(nxt) ~= "table" or nxt == null then
      local follow = steps[k + 1]
      nxt = follow.key and {} or values.array({})
      node[key] = nxt
    end
    node = nxt
  end
end

-- paths.setter(steps) -> function(root, value, idx): paths.assign specialised once per mapping
-- (destinations made only of names are the common case)
function M.setter(steps)
  local keys, arrays, n = {}, {}, #steps
  for i, s in ipairs(steps) do
    if s.wild then
      return function(root, value, idx) return M.assign(root, steps, value, idx) end
    end
    keys[i] = s.key or (s.index + 1)
    local follow = steps[i + 1]
    arrays[i] = follow ~= nil and follow.key == nil -- the container made for step i is an array
  end
  local a, b, c = keys[1], keys[2], keys[3]
  local function child(node, key, array)
    local x = node[key]
    if type(x) ~= "table" or x == null then
      if type(key) == "number" then -- no holes: JSON arrays are dense
        for h = #node + 1, key - 1 do node[h] = null end
      end
      x = array and values.array({}) or {}
      node[key] = x
    end
    return x
  end
  local function put(node, key, value)
    if type(key) == "number" then
      for h = #node + 1, key - 1 do node[h] = null end
    end
    node[key] = value
  end
  if n == 1 then return function(root, value) put(root, a, value) end end
  local a1, a2 = arrays[1], arrays[2]
  if n == 2 then return function(root, value) put(child(root, a, a1), b, value) end end
  if n == 3 then return function(root, value) put(child(child(root, a, a1), b, a2), c, value) end end
  return function(root, value)
    local node = root
    for i = 1, n - 1 do node = child(node, keys[i], arrays[i]) end
    put(node, keys[n], value)
  end
end

return M
