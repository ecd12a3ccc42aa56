-- aep.json: what lua-cjson 2.1.0 (Debian) leaves open, settled once for all of aep.
--   * json.null is the null sentinel (cjson.null);
--   * json.array(t) marks a table as an array, so an empty one encodes as [] (cjson says {});
--   * encode never writes "\/" (cjson escapes every slash; valid but ugly in logs and diffs);
--   * encode_pretty sorts keys and indents, for people and for stable diffs;
--   * decode errors say where: "JSON error at line L, column C: ...";
--   * numbers are exact both ways: cjson 2.1.0 writes every number with 14 significant digits
--     (encode_number_precision stops at 14) and reads every number as a double. encode hands
--     cjson the numbers it writes exactly and writes the others itself with C's printf (%d for
--     integers, the shortest of %.15g/%.16g/%.17g that reads back as the same double); decode
--     turns integral numbers into Lua integers and, when the text holds a number with 16 or more
--     digits (beyond a double's exact integers), reads those integers as text (aep.lines'
--     quote_long_integers) and turns them into numbers with Lua's tonumber: integers up to
--     2^63-1 stay exact.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local M = {}

M.null = cjson.null

local array_mt = { __name = "aep.json.array" }
M.array_mt = array_mt

local EMPTY_ARRAY = "\0aep-empty-array\0"
local EMPTY_ARRAY_JSON = cjson.encode(EMPTY_ARRAY)

-- json.array([t]) -> t marked as a JSON array (an empty one encodes as [])
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

-- json.is_array(t) -> true when t is marked as an array or is a non-empty sequence
function M.is_array(t)
  if type(t) ~= "table" then return false end
  if getmetatable(t) == array_mt then return true end
  return next(t) ~= nil and t[1] ~= nil
end

-- The text of number x when cjson would not write it exactly, else nil.
local function number_text(x)
  if math.type(x) == "integer" then
    if x > -100000000000000 and x < 100000000000000 then return nil end -- 14 digits: exact
    return string.format("%d", x)
  end
  if x > -100000000000000 and x < 100000000000000 and x == x // 1 then return nil end -- integral
  if x ~= x or x == math.huge or x == -math.huge then return nil end -- cjson's own error
  if tonumber(string.format("%.14g", x)) == x then return nil end
  for digits = 15, 16 do
    local t = string.format("%." .. digits .. "g", x)
    if tonumber(t) == x then return t end
  end
  return string.format("%.17g", x)
end

local NUMBER_MARK = "\0aep-number\0"
local NUMBER_JSON_PATTERN = cjson.encode(NUMBER_MARK):sub(1, -2):gsub("%p", "%%%0") .. "([^\"]*)\""

-- Does v hold a marked empty array or a number cjson would not write exactly? (Then it is
-- copied with placeholders; most values hold neither and are encoded as they are.)
local function needs_substitution(v, depth)
  if depth > 1000 then error("json: value nested too deeply (cycle?)", 0) end
  for _, x in pairs(v) do
    local t = type(x)
    if t == "table" then
      if next(x) == nil then
        if getmetatable(x) == array_mt then return true end
      elseif needs_substitution(x, depth + 1) then
        return true
      end
    elseif t == "number" and number_text(x) then
      return true
    end
  end
  return false
end

local function substitute(v)
  local t = type(v)
  if t == "number" then
    local text = number_text(v)
    return text and (NUMBER_MARK .. text) or v
  end
  if t ~= "table" then return v end
  if next(v) == nil and getmetatable(v) == array_mt then return EMPTY_ARRAY end
  local out = {}
  for k, x in pairs(v) do out[k] = substitute(x) end
  return out
end

-- cjson's text of v, numbers exact (v: any value without marked empty arrays inside)
local function encode_scalar(v)
  if type(v) == "number" then return number_text(v) or cjson.encode(v) end
  return cjson.encode(v)
end

local function unescape_slashes(s)
  if s:find("\\/", 1, true) then s = s:gsub("\\/", "/") end
  return s
end

-- json.encode(value) -> string   (raises on values JSON cannot hold)
function M.encode(v)
  local text
  if type(v) == "table" then
    if next(v) == nil then
      return getmetatable(v) == array_mt and "[]" or "{}"
    end
    if needs_substitution(v, 0) then
      text = cjson.encode(substitute(v))
      text = text:gsub(EMPTY_ARRAY_JSON:gsub("%p", "%%%0"), "[]")
      if text:find(NUMBER_JSON_PATTERN) then text = text:gsub(NUMBER_JSON_PATTERN, "%1") end
    else
      text = cjson.encode(v)
    end
  else
    text = encode_scalar(v)
  end
  return unescape_slashes(text)
end

local function is_sequence(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  return keys
end

local function pretty(v, indent, level, out)
  local t = type(v)
  if t ~= "table" then
    out[#out + 1] = unescape_slashes(encode_scalar(v))
    return
  end
  local pad = string.rep(indent, level + 1)
  local close_pad = string.rep(indent, level)
  if is_sequence(v) then
    if #v == 0 then out[#out + 1] = "[]"; return end
    out[#out + 1] = "[\n"
    for i = 1, #v do
      out[#out + 1] = pad
      pretty(v[i], indent, level + 1, out)
      out[#out + 1] = i < #v and ",\n" or "\n"
    end
    out[#out + 1] = close_pad .. "]"
    return
  end
  local keys = sorted_keys(v)
  if #keys == 0 then out[#out + 1] = "{}"; return end
  out[#out + 1] = "{\n"
  for i, k in ipairs(keys) do
    out[#out + 1] = pad .. unescape_slashes(cjson.encode(tostring(k))) .. ": "
    pretty(v[k], indent, level + 1, out)
    out[#out + 1] = i < #keys and ",\n" or "\n"
  end
  out[#out + 1] = close_pad .. "}"
end

-- json.encode_pretty(value [, indent = "  "]) -> string with sorted keys, one member per line
function M.encode_pretty(v, indent)
  local out = {}
  pretty(v, indent or "  ", 0, out)
  return table.concat(out)
end

-- Turn cjson's "... at character N" into a line and column in text.
local function locate(text, message)
  local pos = tonumber(message:match("at character (%d+)"))
  if not pos then return "JSON error: " .. message end
  local line, col = 1, pos
  for nl in text:sub(1, pos - 1):gmatch("()\n") do
    line = line + 1
    col = pos - nl
  end
  local what = message:gsub(" at character %d+", "")
  return string.format("JSON error at line %d, column %d: %s", line, col, what)
end

-- json.integerize(v) -> v with every integral float turned into an integer, in place
-- (-0.0 stays a float: its sign is part of the value)
function M.integerize(v)
  if type(v) == "number" then
    if v == 0 and 1 / v < 0 then return v end
    return math.tointeger(v) or v
  end
  if type(v) == "table" then
    for k, x in pairs(v) do
      if type(x) == "number" or type(x) == "table" then v[k] = M.integerize(x) end
    end
  end
  return v
end

local LONG_NUMBER = "%d" .. string.rep("%d", 15) -- 16 digits in a row: maybe beyond 2^53
local INTEGER_MARK = "\0aep-integer\0" -- what aep.lines.quote_long_integers puts before a long integer's text
local MARK_LEN = #INTEGER_MARK

-- Turn the marked strings of quote_long_integers back into numbers (integers up to 2^63-1, as
-- Lua's tonumber reads them; beyond that a float, as any JSON reader would), in place.
local function unquote_long_integers(v)
  for k, x in pairs(v) do
    if type(x) == "table" then
      unquote_long_integers(x)
    elseif type(x) == "string" and x:sub(1, MARK_LEN) == INTEGER_MARK then
      v[k] = tonumber(x:sub(MARK_LEN + 1))
    end
  end
  return v
end

-- json.decode(text) -> value | nil, "JSON error at line L, column C: ..."
-- Integral numbers come back as Lua integers (integers written with 16+ digits exactly, up to
-- 2^63-1), others as floats.
function M.decode(text)
  if type(text) ~= "string" then
    return nil, "JSON error: expected a string to decode, got " .. type(text)
  end
  local v, err = cjson_safe.decode(text)
  if v == nil and err then return nil, locate(text, err) end
  if type(v) == "table" and text:find(LONG_NUMBER) then
    -- valid JSON (cjson said so) with a long digit run: its long integers are read as text
    local quoted = require("aep.lines").quote_long_integers(text)
    if quoted then v = unquote_long_integers(cjson.decode(quoted)) end
  elseif type(v) == "number" and text:find(LONG_NUMBER) then
    v = tonumber(text:match("^%s*(.-)%s*$")) or v
  end
  return M.integerize(v)
end

return M
