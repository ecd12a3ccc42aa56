-- String functions (functions.md "String functions"). Positions count characters (UTF-8 code
-- points; bytes when the text is not valid UTF-8) and are 0-based where Java's are: instr returns
-- String.indexOf's index, substr takes a 0-based start.
local values = require "aep.dataprep.values"
local regex = require "aep.dataprep.fn.regex"

local to_string, fail = values.to_string, values.fail

local function str(v, what)
  if type(v) == "string" or v == nil then return v end
  local s = to_string(v)
  if type(v) == "table" and not values.is_array(v) and getmetatable(v) ~= values.date_mt then
    fail("%s expects a string, got an object", what)
  end
  return s
end

local function int(v, what)
  local n = math.tointeger(values.to_number(v))
  if n == nil then fail("%s expects an integer, got %s", what, v == nil and "null" or to_string(v)) end
  return n
end

-- character helpers: UTF-8 when valid, bytes otherwise
local function chars(s)
  if utf8.len(s) then
    local t = {}
    for _, c in utf8.codes(s) do t[#t + 1] = utf8.char(c) end
    return t
  end
  local t = {}
  for i = 1, #s do t[i] = s:sub(i, i) end
  return t
end
local function len(s) return utf8.len(s) or #s end
local function sub(s, i, j) -- 1-based character positions, inclusive, like string.sub
  if not utf8.len(s) then return s:sub(i, j) end
  local n = utf8.len(s)
  if j == nil or j > n then j = n end
  if i < 1 then i = 1 end
  if i > j then return "" end
  local bi = utf8.offset(s, i)
  local bj = utf8.offset(s, j + 1)
  return s:sub(bi, (bj or #s + 1) - 1)
end

local F = {}

F.concat = { min = 0, max = math.huge, returns = "string", fn = function(...)
  local n = select("#", ...)
  if n <= 3 then -- the common short calls, when every argument is a string
    local a, b, c = ...
    if type(a) == "string" and (n < 2 or type(b) == "string") and (n < 3 or type(c) == "string") then
      if n == 3 then return a .. b .. c end
      if n == 2 then return a .. b end
      return a
    end
  end
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if v ~= nil then out[#out + 1] = to_string(v) end
  end
  return table.concat(out)
end }

F.explode = { min = 1, max = 2, returns = "array", fn = function(s, re)
  s = str(s, "explode")
  if s == nil then return nil end
  return regex._split(s, re == nil and "," or to_string(re))
end }

F.instr = { min = 2, max = 4, returns = "integer", fn = function(s, needle, start, occurrence)
  s, needle = str(s, "instr"), str(needle, "instr")
  if s == nil or needle == nil then return nil end
  start = start == nil and 0 or int(start, "instr")
  occurrence = occurrence == nil and 1 or int(occurrence, "instr")
  local cs = chars(s)
  local text = table.concat(cs)
  local from = math.max(start, 0)
  for _ = 1, math.max(occurrence, 1) do
    -- byte position of character index `from`
    local b = utf8.len(text) and (utf8.offset(text, from + 1) or #text + 1) or from + 1
    local at = text:find(needle, b, true)
    if not at then return -1 end
    from = (utf8.len(text, 1, at - 1) or (at - 1)) + 1
  end
  return from - 1
end }

F.replacestr = { min = 3, max = 3, returns = "string", fn = function(s, find, repl)
  s = str(s, "replacestr")
  if s == nil then return nil end
  find, repl = str(find, "replacestr"), str(repl, "replacestr") or ""
  if find == nil or find == "" then return s end
  local out, i = {}, 1
  while true do
    local a, b = s:find(find, i, true)
    if not a then break end
    out[#out + 1] = s:sub(i, a - 1)
    out[#out + 1] = repl
    i = b + 1
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end }

F.substr = { min = 2, max = 3, returns = "string", fn = function(s, start, length)
  s = str(s, "substr")
  if s == nil then return nil end
  start = int(start, "substr")
  local n = len(s)
  if start < 0 then start = math.max(n + start, 0) end
  if length == nil then return sub(s, start + 1, n) end
  length = int(length, "substr")
  if length <= 0 then return "" end
  return sub(s, start + 1, start + length)
end }

local function lower(s) s = str(s, "lower"); return s and s:lower() end
local function upper(s) s = str(s, "upper"); return s and s:upper() end
F.lower = { min = 1, returns = "string", fn = lower }
F.lcase = { min = 1, returns = "string", fn = lower }
F.upper = { min = 1, returns = "string", fn = upper }
F.ucase = { min = 1, returns = "string", fn = upper }

F.split = { min = 2, max = 2, returns = "array", fn = function(s, sep)
  s = str(s, "split")
  if s == nil then return nil end
  sep = str(sep, "split")
  local set = {}
  if sep == nil or sep == "" then
    for _, c in ipairs({ " ", "\t", "\n", "\r", "\f", "\v" }) do set[c] = true end
  else
    for _, c in ipairs(chars((sep:gsub("\\(.)", "%1")))) do set[c] = true end
  end
  local out, cur = values.array({}), {}
  for _, c in ipairs(chars(s)) do
    if set[c] then
      if #cur > 0 then out[#out + 1] = table.concat(cur); cur = {} end
    else
      cur[#cur + 1] = c
    end
  end
  if #cur > 0 then out[#out + 1] = table.concat(cur) end
  return out
end }

F.join = { min = 2, max = math.huge, returns = "string", fn = function(sep, ...)
  sep = str(sep, "join") or ""
  local items = {}
  local n = select("#", ...)
  local first = ...
  local list = (n == 1 and values.is_array(first)) and first or { n = n, ... }
  for i = 1, (list.n or #list) do
    local v = list[i]
    items[#items + 1] = (v == nil or v == values.null) and "" or to_string(v)
  end
  return table.concat(items, sep)
end }

local function padding(p)
  p = p ~= nil and to_string(p) or nil
  if p == nil or p == "" then return " " end
  return p
end
-- a padded string longer than this is refused (Java would run out of memory well before)
local MAX_PAD = 1 << 24

local function make_pad(count, p)
  if count > MAX_PAD then fail("padding to %d characters is more than the %d allowed", count, MAX_PAD) end
  local pc = chars(p)
  local out = {}
  for i = 1, count do out[i] = pc[(i - 1) % #pc + 1] end
  return table.concat(out)
end

F.lpad = { min = 3, max = 3, returns = "string", fn = function(s, count, p)
  s = str(s, "lpad")
  if s == nil then return nil end
  count = int(count, "lpad")
  local missing = count - len(s)
  if missing <= 0 then return s end
  return make_pad(missing, padding(p)) .. s
end }

F.rpad = { min = 3, max = 3, returns = "string", fn = function(s, count, p)
  s = str(s, "rpad")
  if s == nil then return nil end
  count = int(count, "rpad")
  local missing = count - len(s)
  if missing <= 0 then return s end
  return s .. make_pad(missing, padding(p))
end }

F.left = { min = 2, max = 2, returns = "string", fn = function(s, count)
  s = str(s, "left")
  if s == nil then return nil end
  count = int(count, "left")
  if count <= 0 then return "" end
  return sub(s, 1, count)
end }

F.right = { min = 2, max = 2, returns = "string", fn = function(s, count)
  s = str(s, "right")
  if s == nil then return nil end
  count = int(count, "right")
  if count <= 0 then return "" end
  local n = len(s)
  return sub(s, math.max(n - count + 1, 1), n)
end }

F.ltrim = { min = 1, returns = "string", fn = function(s) s = str(s, "ltrim"); return s and (s:gsub("^%s+", "")) end }
F.rtrim = { min = 1, returns = "string", fn = function(s) s = str(s, "rtrim"); return s and (s:gsub("%s+$", "")) end }
F.trim = { min = 1, returns = "string", fn = function(s) s = str(s, "trim"); return s and s:match("^%s*(.-)%s*$") end }

F._helpers = { chars = chars, len = len, sub = sub, str = str, int = int }

return F
