-- aep.xdm.checks: the leaf checks of aep.xdm.validator (string, number, boolean, null, enum), each
-- compiled from a schema into check(v) -> nil | list of { keyword, message }, with everit's
-- messages.
local cjson = require "cjson"
local formats = require "aep.xdm.formats"
local regex = require "aep.xdm.regex"

local M = {}

local null = cjson.null
local type, pairs, ipairs = type, pairs, ipairs
local mtype, floor = math.type, math.floor

local function type_msg(expected, v)
  return "expected type: " .. expected .. ", found: " .. formats.type_name(v, null)
end

local function num_str(v) return formats.java_number(v) end

local function int_str(v)
  local i = math.tointeger(v)
  return i and tostring(i) or num_str(v)
end

local function string_check(s)
  local minl, maxl = s.minLength, s.maxLength
  local pat, patsrc
  if type(s.pattern) == "string" then
    pat = regex.compile(s.pattern) -- an unsupported pattern is not checked
    patsrc = s.pattern
  end
  local fmt = type(s.format) == "string" and formats.checkers[s.format] or nil
  local requires = s.type == "string"
  if not (minl or maxl or pat or fmt) then
    if not requires then return nil end
    return function(v)
      if type(v) ~= "string" then return { { "type", type_msg("String", v) } } end
    end
  end
  return function(v)
    if type(v) ~= "string" then
      if requires then return { { "type", type_msg("String", v) } } end
      return nil
    end
    local out
    if minl or maxl then
      local len = utf8.len(v) or #v
      if minl and len < minl then
        out = out or {}
        out[#out + 1] = { "minLength", "expected minLength: " .. int_str(minl) .. ", actual: " .. len }
      end
      if maxl and len > maxl then
        out = out or {}
        out[#out + 1] = { "maxLength", "expected maxLength: " .. int_str(maxl) .. ", actual: " .. len }
      end
    end
    if pat and not pat:find(v) then
      out = out or {}
      out[#out + 1] = { "pattern", "string [" .. v .. "] does not match pattern " .. patsrc }
    end
    if fmt then
      local m = fmt(v)
      if m then
        out = out or {}
        out[#out + 1] = { "format", m }
      end
    end
    return out
  end
end

local function number_check(s)
  local integer = s.type == "integer"
  local requires = s.type == "integer" or s.type == "number"
  local min, max, mult = s.minimum, s.maximum, s.multipleOf
  local xmin, xmax = s.exclusiveMinimum, s.exclusiveMaximum
  if type(min) ~= "number" then min = nil end
  if type(max) ~= "number" then max = nil end
  if type(mult) ~= "number" or mult <= 0 then mult = nil end
  -- draft-4 booleans modify minimum/maximum; draft-6 numbers are limits of their own
  local xmin_b, xmax_b = xmin == true, xmax == true
  if type(xmin) ~= "number" then xmin = nil end
  if type(xmax) ~= "number" then xmax = nil end
  return function(v)
    if type(v) ~= "number" then
      if requires then return { { "type", type_msg("Number", v) } } end
      return nil
    end
    local out
    if integer then
      local cls = formats.number_class(v)
      if cls ~= "Integer" and cls ~= "Long" then
        out = { { "type", type_msg("Integer", v) } }
      end
    end
    if min then
      if xmin_b and v <= min then
        out = out or {}
        out[#out + 1] = { "exclusiveMinimum", num_str(v) .. " is not greater than " .. num_str(min) }
      elseif v < min then
        out = out or {}
        out[#out + 1] = { "minimum", num_str(v) .. " is not greater or equal to " .. num_str(min) }
      end
    end
    if max then
      if xmax_b and v >= max then
        out = out or {}
        out[#out + 1] = { "exclusiveMaximum", num_str(v) .. " is not less than " .. num_str(max) }
      elseif v > max then
        out = out or {}
        out[#out + 1] = { "maximum", num_str(v) .. " is not less or equal to " .. num_str(max) }
      end
    end
    if mult then
      local q = v / mult
      if q ~= floor(q) then
        out = out or {}
        out[#out + 1] = { "multipleOf", num_str(v) .. " is not a multiple of " .. num_str(mult) }
      end
    end
    if xmin and v <= xmin then
      out = out or {}
      out[#out + 1] = { "exclusiveMinimum", num_str(v) .. " is not greater than " .. num_str(xmin) }
    end
    if xmax and v >= xmax then
      out = out or {}
      out[#out + 1] = { "exclusiveMaximum", num_str(v) .. " is not less than " .. num_str(xmax) }
    end
    return out
  end
end

local function boolean_check(_)
  return function(v)
    if type(v) ~= "boolean" then return { { "type", type_msg("Boolean", v) } } end
  end
end

local function null_check(_)
  return function(v)
    if v ~= null then return { { "type", type_msg("Null", v) } } end
  end
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, x in pairs(a) do if not deep_equal(x, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function enum_check(s)
  local set, tables = {}, {}
  for _, e in ipairs(s.enum) do
    if type(e) == "table" then tables[#tables + 1] = e else set[e] = true end
  end
  return function(v)
    if set[v] then return nil end
    if type(v) == "table" then
      for _, e in ipairs(tables) do if deep_equal(e, v) then return nil end end
    end
    return { { "enum", formats.java_string(v, null, cjson.encode) .. " is not a valid enum value" } }
  end
end

local function typed_check(s)
  local t = s.type
  if t == "string" then return string_check(s) end
  if t == "integer" or t == "number" then return number_check(s) end
  if t == "boolean" then return boolean_check(s) end
  if t == "null" then return null_check(s) end
  return nil
end

M.type_msg, M.int_str = type_msg, int_str
M.string, M.number, M.boolean, M.null, M.enum = string_check, number_check, boolean_check, null_check, enum_check
M.deep_equal, M.typed = deep_equal, typed_check

return M
