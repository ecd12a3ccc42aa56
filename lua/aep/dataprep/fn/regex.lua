-- Regular expression functions (functions.md), on PCRE2 through aep.regex with the Java-syntax
-- translation and compile cache of aep.xdm.regex. A pattern that does not compile is a
-- transformation error naming PCRE2's reason.
local values = require "aep.dataprep.values"
local xdm_regex = require "aep.xdm.regex"

local to_string, fail = values.to_string, values.fail

local function compile(pattern)
  local m, err = xdm_regex.compile(pattern)
  if not m then fail("invalid regular expression '%s': %s", pattern, err) end
  return m.re
end

-- exec that turns PCRE2's failures into transformation errors
local function exec(re, s, init)
  local a, b, groups = re:exec(s, init)
  if a == nil then fail("regular expression failed: %s", tostring(b)) end
  return a, b, groups
end

local F = {}

-- Java's String.split(regex): no leading empty part for a zero-width match at the start,
-- trailing empty parts dropped
function F._split(s, pattern)
  local re = compile(pattern)
  local out, pos, init = values.array({}), 1, 1
  while init <= #s + 1 do
    local a, b = exec(re, s, init)
    if not a then break end
    if b < a then -- zero-width match
      if a > 1 and a <= #s then out[#out + 1] = s:sub(pos, a - 1); pos = a end
      init = a + 1
      while init <= #s and (s:byte(init) or 0) >= 0x80 and (s:byte(init) or 0) < 0xC0 do init = init + 1 end
    else
      if not (a == 1 and b == 0) then out[#out + 1] = s:sub(pos, a - 1) end
      pos, init = b + 1, b + 1
    end
  end
  out[#out + 1] = s:sub(pos)
  while #out > 0 and out[#out] == "" do out[#out] = nil end
  if #out == 0 and s == "" then out[1] = "" end
  return out
end

F.extract_regex = { min = 2, max = 2, returns = "array", fn = function(s, pattern)
  if s == nil or pattern == nil then return nil end
  s = to_string(s)
  local a, b, groups = exec(compile(to_string(pattern)), s)
  if not a then return nil end
  local out = values.array({ s:sub(a, b) })
  for i = 1, #groups do out[i + 1] = groups[i] == false and values.null or groups[i] end
  return out
end }

F.matches_regex = { min = 2, max = 2, returns = "boolean", fn = function(s, pattern)
  if s == nil or pattern == nil then return false end
  pattern = to_string(pattern)
  compile(pattern) -- so an invalid pattern is reported as written
  local a = exec(compile("\\A(?:" .. pattern .. ")\\z"), to_string(s))
  return a ~= false
end }

return F
