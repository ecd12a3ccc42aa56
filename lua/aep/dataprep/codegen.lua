-- aep.dataprep.codegen: a compiled mapping set as one generated Lua function, loaded once.
-- Sources made only of names, STATIC values, the fast path of each conversion and destinations
-- without [*] become straight-line code (no closure call per step); expressions and [*]
-- mappings call their closures. The generated function must give the same entity as running the
-- mappings' closures one by one (init.lua falls back to them when a record has an error).

local json = require "aep.json"
local values = require "aep.dataprep.values"
local convert = require "aep.dataprep.convert"

local M = {}

local function lit(k)
  if type(k) == "number" then return ("%d"):format(k) end
  return ("%q"):format(k)
end

-- the code that stores `v` at dsteps (all names or indexes), creating the containers
local function emit_store(out, dsteps)
  local node = "out"
  for i = 1, #dsteps - 1 do
    local s, follow = dsteps[i], dsteps[i + 1]
    local key = s.key and lit(s.key) or lit(s.index + 1)
    local child = "d" .. i
    out[#out + 1] = ("  local %s = %s[%s]"):format(child, node, key)
    out[#out + 1] = ("  if type(%s) ~= 'table' then"):format(child)
    if s.index and s.index > 0 then
      out[#out + 1] = ("    for h = #%s + 1, %d do %s[h] = null end"):format(node, s.index, node)
    end
    out[#out + 1] = ("    %s = %s; %s[%s] = %s"):format(child, follow.key and "{}" or "array({})", node, key, child)
    out[#out + 1] = "  end"
    node = child
  end
  local last = dsteps[#dsteps]
  if last.index and last.index > 0 then
    out[#out + 1] = ("  for h = #%s + 1, %d do %s[h] = null end"):format(node, last.index, node)
  end
  out[#out + 1] = ("  %s[%s] = v"):format(node, last.key and lit(last.key) or lit(last.index + 1))
end

-- the fast path of the target's conversion, inline; anything else goes to conv[i]
local FAST = {
  string = "type(v) ~= 'string'", number = "type(v) ~= 'number'", boolean = "type(v) ~= 'boolean'",
}

-- codegen.generate(built) -> function(record, out)
function M.generate(built)
  local out = { "local runs, produce, conv, statics, null, array, mtype, tointeger = ...",
    "return function(r, out)", "  local v, x" }
  local statics = {}
  for i, b in ipairs(built) do
    out[#out + 1] = ("  do -- mapping %d"):format(i)
    local inline = b.dwild == 0 or b.dwild == nil
    if b.kind == "STATIC" and inline then
      local ok, v = pcall(b.conv, b.value)
      if ok and type(v) ~= "table" then -- a table would be shared by every entity: built per record
        statics[i] = v
        out[#out + 1] = ("  v = statics[%d]"):format(i)
        emit_store(out, b.dsteps)
      else
        out[#out + 1] = ("  runs[%d](r, out)"):format(i) -- a failure here: the fallback reports it
      end
    elseif inline and b.produce then
      if b.src_keys then
        local keys = b.src_keys
        out[#out + 1] = ("  v = r[%s]"):format(lit(keys[1]))
        for k = 2, #keys do
          out[#out + 1] = ("  if type(v) == 'table' then v = v[%s] else v = nil end"):format(lit(keys[k]))
        end
        out[#out + 1] = "  if v == null then v = nil elseif mtype(v) == 'float' then v = tointeger(v) or v end"
      else
        out[#out + 1] = ("  v = produce[%d](r)"):format(i)
      end
      out[#out + 1] = "  if v ~= nil then"
      local kind = convert.kind(b.node)
      local lo, hi = type(b.node) == "table" and b.node.minimum, type(b.node) == "table" and b.node.maximum
      if FAST[kind] then
        out[#out + 1] = ("  if %s then v = conv[%d](v) end"):format(FAST[kind], i)
      elseif kind == "integer" and type(lo) == "number" and type(hi) == "number" then
        out[#out + 1] = ("  if mtype(v) ~= 'integer' or v < %s or v > %s then v = conv[%d](v) end"):format(
          values.to_string(lo), values.to_string(hi), i)
      elseif kind == nil then
        out[#out + 1] = ("  if type(v) == 'table' then v = conv[%d](v) end"):format(i)
      else
        out[#out + 1] = ("  v = conv[%d](v)"):format(i)
      end
      emit_store(out, b.dsteps)
      out[#out + 1] = "  end"
    else
      out[#out + 1] = ("  runs[%d](r, out)"):format(i)
    end
    out[#out + 1] = "  end"
  end
  out[#out + 1] = "end"
  local runs, produce, conv = {}, {}, {}
  for i, b in ipairs(built) do runs[i], produce[i], conv[i] = b.run, b.produce, b.conv end
  local src = table.concat(out, "\n")
  local chunk = assert(load(src, "=(dataprep mapping set)", "t", { type = type, pcall = pcall }))
  return chunk(runs, produce, conv, statics, json.null, values.array, math.type, math.tointeger)
end

return M
