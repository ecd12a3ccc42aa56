-- aep.dataprep.values: the value model expressions run on.
-- null and a missing field are both Lua nil inside an expression (json.null never flows through);
-- arrays are tables marked with aep.json's array metatable; objects are plain tables; dates are
-- aep.dataprep.dates values. A transformation error is raised with values.fail and caught per
-- mapping, so one bad field never stops the record (troubleshooting-guide.md).

local json = require "aep.json"

local M = {}

local ERROR_MT = { __tostring = function(e) return e.message end }

-- values.fail(message): raise a transformation error (caught by the mapping that ran it)
function M.fail(message, ...)
  if select("#", ...) > 0 then message = message:format(...) end
  error(setmetatable({ message = message }, ERROR_MT), 0)
end

-- values.is_error(err) -> true for a transformation error raised with values.fail
function M.is_error(err) return getmetatable(err) == ERROR_MT end

-- values.error_message(err) -> text of a raised error (ours or a Lua one)
function M.error_message(err)
  if getmetatable(err) == ERROR_MT then return err.message end
  return tostring(err)
end

M.array = json.array
local array_mt = json.array_mt

-- values.is_array(v) -> boolean (a marked array, or a non-empty sequence decoded from JSON)
function M.is_array(v)
  if type(v) ~= "table" or getmetatable(v) == M.date_mt then return false end
  if getmetatable(v) == array_mt then return true end
  return v[1] ~= nil
end

function M.is_object(v)
  return type(v) == "table" and getmetatable(v) ~= array_mt and getmetatable(v) ~= M.date_mt
    and v[1] == nil
end

-- Java's Double.toString for the values people see: shortest text that reads back the same,
-- integral values keep ".0"
local function float_text(x)
  if x ~= x then return "NaN" end
  if x == math.huge then return "Infinity" end
  if x == -math.huge then return "-Infinity" end
  if x == math.floor(x) and math.abs(x) < 1e7 then return ("%.1f"):format(x) end
  for digits = 15, 17 do
    local s = ("%." .. digits .. "g"):format(x)
    if tonumber(s) == x then
      return (s:gsub("e%+?(%-?)0*(%d)", "E%1%2"))
    end
  end
  return tostring(x)
end
M.float_text = float_text

-- values.to_string(v) -> string | nil  (Java's String.valueOf, dates as ISO 8601, JSON for
-- objects and arrays)
function M.to_string(v)
  local t = type(v)
  if t == "string" then return v end
  if v == nil or v == json.null then return nil end
  if t == "number" then
    if math.type(v) == "integer" then return ("%d"):format(v) end
    return float_text(v)
  end
  if t == "boolean" then return v and "true" or "false" end
  if t == "table" then
    if getmetatable(v) == M.date_mt then return v:iso() end
    return json.encode(M.to_json(v))
  end
  return tostring(v)
end

-- values.to_json(v) -> v with dates as ISO text (ready for aep.json)
function M.to_json(v)
  if type(v) ~= "table" then return v end
  if getmetatable(v) == M.date_mt then return v:iso() end
  local out = getmetatable(v) == array_mt and M.array({}) or {}
  for k, x in pairs(v) do out[k] = M.to_json(x) end
  return out
end

-- values.to_number(v) -> number | nil (strings are parsed as Java would: trimmed, decimal only)
function M.to_number(v)
  if type(v) == "number" then return v end
  if type(v) == "string" then
    local s = v:match("^%s*(.-)%s*$")
    if s:match("^[%+%-]?%d+$") then return math.tointeger(tonumber(s)) or tonumber(s) end
    if s:match("^[%+%-]?%d*%.?%d*[eE]?[%+%-]?%d*[dDfF]?$") and s:match("%d") then
      return tonumber((s:gsub("[dDfF]$", "")))
    end
    return nil
  end
  if type(v) == "boolean" then return nil end
  return nil
end

-- values.truthy(v) -> boolean (JEXL's toBoolean: null, false, "false", "" and 0 are false)
function M.truthy(v)
  if v == nil or v == false then return false end
  if v == true then return true end
  if type(v) == "string" then return v ~= "" and v ~= "false" end
  if type(v) == "number" then return v ~= 0 end
  return true
end

-- values.equal(a, b) -> boolean (JEXL's ==: numbers compare by value, a number and a numeric
-- string compare as numbers, otherwise strict)
function M.equal(a, b)
  if a == b then return true end
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "string" then return a == M.to_number(b) end
  if tb == "number" and ta == "string" then return b == M.to_number(a) end
  if ta == "table" and tb == "table" and getmetatable(a) == M.date_mt and getmetatable(b) == M.date_mt then
    return a:compare(b) == 0
  end
  if ta == "boolean" and tb == "string" then return a == (b == "true") and (b == "true" or b == "false") end
  if tb == "boolean" and ta == "string" then return b == (a == "true") and (a == "true" or a == "false") end
  return false
end

-- values.compare(a, b) -> -1 | 0 | 1 (natural ordering: numbers, strings, dates, booleans)
function M.compare(a, b)
  if a == nil or b == nil then M.fail("cannot compare null") end
  local ta, tb = type(a), type(b)
  if ta == "number" and tb ~= "number" then b = M.to_number(b) or M.fail("cannot compare %s with %s", ta, tb); tb = "number" end
  if tb == "number" and ta ~= "number" then a = M.to_number(a) or M.fail("cannot compare %s with %s", ta, tb); ta = "number" end
  if ta == "table" and getmetatable(a) == M.date_mt and tb == "table" and getmetatable(b) == M.date_mt then
    return a:compare(b)
  end
  if ta ~= tb or (ta ~= "number" and ta ~= "string" and ta ~= "boolean") then
    M.fail("cannot compare %s with %s", ta, tb)
  end
  if ta == "boolean" then a, b = a and 1 or 0, b and 1 or 0 end
  if a < b then return -1 elseif a > b then return 1 end
  return 0
end

M.null = json.null

return M
