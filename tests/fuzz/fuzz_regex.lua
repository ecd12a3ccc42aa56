-- fuzz_regex: aep.regex (PCRE2) and the XDM wrapper on arbitrary patterns and subjects: the
-- `pattern` keyword of a field group comes from whoever calls the Schema Registry (the emulator's
-- clients), the subject from whoever streams records.
-- Input: pattern, a NUL byte, subject (no NUL: the input is both).
-- Must hold: compile gives a handle or nil, message, "BAD_PATTERN" (never raises); find gives a
-- boolean or nil, message, "MATCH_LIMIT" | "BAD_UTF8" (never raises, never hangs); the XDM
-- wrapper gives a matcher or nil, message, and its find a boolean.
local regex = require "aep.regex"
local xdm_regex = require "aep.xdm.regex"

local FIND_CODES = { MATCH_LIMIT = true, BAD_UTF8 = true }

return function(s)
  local pattern, subject = s:match("^(.-)%z(.*)$")
  if not pattern then pattern, subject = s, s end

  local re, err, code = regex.compile(pattern)
  if re == nil then
    assert(code == "BAD_PATTERN", "compile failure code " .. tostring(code))
    assert(type(err) == "string" and err ~= "", "compile failure without a message")
  else
    local ok, ferr, fcode = re:find(subject)
    if ok == nil then
      assert(FIND_CODES[fcode], "find failure code " .. tostring(fcode) .. ": " .. tostring(ferr))
    else
      assert(type(ok) == "boolean", "find returned a " .. type(ok))
    end
    re:close()
    assert(not pcall(re.find, re, subject), "a closed handle must raise")
  end

  local m, merr = xdm_regex.compile(pattern)
  if m then
    assert(type(m:find(subject)) == "boolean", "the XDM matcher must answer a boolean")
  else
    assert(type(merr) == "string", "the XDM wrapper must say why it refuses a pattern")
  end
end
