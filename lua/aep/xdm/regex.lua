-- aep.xdm.regex: java.util.regex "pattern" keywords, matched by PCRE2 (aep.regex).
--
-- everit validates "pattern" with Pattern.compile(p).matcher(s).find(), so a pattern matches
-- anywhere unless anchored; aep.regex's find is that unanchored search. PCRE2 already speaks
-- Java's syntax for what XDM patterns use (classes, greedy/lazy/possessive quantifiers, groups,
-- named and atomic groups, alternation, anchors \A \z \Z ^ $ \b, look-ahead and look-behind,
-- back-references, \Q..\E, inline flags (?imsx)); aep.regex makes ".", "$" see Java's line
-- terminators and keeps \d \w \s ASCII, as Java does. Translated here before compiling:
--   \p{Lower} \p{Alpha} ... (Java's US-ASCII POSIX classes) -> [[:lower:]] ...  (PCRE2 would read
--   them as Unicode properties), \p{IsXxx} -> \p{Xxx}, \uhhhh -> \x{hhhh}.
-- Unsupported, so compile() returns nil, message and the validator skips the keyword (as it
-- always has): class union/intersection ([a-z&&[^aeiou]], [a[b]]), \p{javaLowerCase} and other
-- java* properties, \p{InBlock}, flags PCRE2 lacks ((?u) (?d) (?U)).
-- A find that hits PCRE2's match limit (catastrophic backtracking) counts as a match: the value
-- passes rather than the validator hanging or failing a record on a budget, as before.

local native = require "aep.regex"

local M = {}

local POSIX = {
  Lower = "lower", Upper = "upper", ASCII = "ascii", Alpha = "alpha", Digit = "digit",
  Alnum = "alnum", Punct = "punct", Graph = "graph", Print = "print", Blank = "blank",
  Cntrl = "cntrl", XDigit = "xdigit", Space = "space",
}

-- translate(pattern) -> PCRE2 pattern | nil, message
local function translate(p)
  if not p:find("\\[pPu]") and not p:find("[", 1, true) then return p end
  local out, n, i, in_class = {}, #p, 1, false
  local function emit(s) out[#out + 1] = s end
  while i <= n do
    local c = p:sub(i, i)
    if c == "\\" then
      local d = p:sub(i + 1, i + 1)
      if d == "Q" then -- quoted run: copied untouched up to \E
        local e = p:find("\\E", i + 2, true)
        local stop = e and e + 1 or n
        emit(p:sub(i, stop)); i = stop + 1
      elseif (d == "p" or d == "P") and p:sub(i + 2, i + 2) == "{" then
        local close = p:find("}", i + 3, true)
        if not close then return nil, "unclosed \\" .. d .. "{" end
        local name = p:sub(i + 3, close - 1)
        local posix = POSIX[name]
        if posix then
          local neg = d == "P" and "^" or ""
          emit(in_class and ("[:" .. neg .. posix .. ":]") or ("[" .. neg .. "[:" .. posix .. ":]]"))
        elseif name:match("^java") then
          return nil, "Java property \\p{" .. name .. "} is not supported"
        else
          emit("\\" .. d .. "{" .. (name:match("^Is(.+)") or name) .. "}")
        end
        i = close + 1
      elseif d == "u" and p:sub(i + 2, i + 5):match("^%x%x%x%x$") then
        emit("\\x{" .. p:sub(i + 2, i + 5) .. "}"); i = i + 6
      else
        emit(p:sub(i, i + 1)); i = i + 2
      end
    elseif in_class then
      if c == "[" or (c == "&" and p:sub(i + 1, i + 1) == "&") then
        return nil, "character class union/intersection is not supported"
      end
      if c == "]" then in_class = false end
      emit(c); i = i + 1
    elseif c == "[" then
      in_class = true
      local j = i + 1
      if p:sub(j, j) == "^" then j = j + 1 end
      -- a "]" right after "[" or "[^" is a literal in both Java and PCRE2
      if p:sub(j, j) == "]" then j = j + 1 end
      emit(p:sub(i, j - 1)); i = j
    else
      emit(c); i = i + 1
    end
  end
  return table.concat(out)
end

-- Invalid UTF-8 in a subject: Java would have decoded it with U+FFFD replacements.
local function repair_utf8(s)
  local out, i = {}, 1
  while true do
    local len, bad = utf8.len(s, i)
    if len then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\239\191\189"
    i = bad + 1
  end
  return table.concat(out)
end

local Matcher = {}
Matcher.__index = Matcher

-- matcher:find(s) -> boolean (Matcher.find: a match anywhere; the match limit counts as a match)
function Matcher:find(s)
  local ok, msg, code = self.re:find(s)
  if ok ~= nil then return ok end
  if code == "BAD_UTF8" then
    ok, msg, code = self.re:find(repair_utf8(s))
    if ok ~= nil then return ok end
  end
  if code == "MATCH_LIMIT" then return true end
  error("regex: " .. tostring(msg), 2) -- PCRE2 failed in a way no pattern or subject should cause
end

local cache, cached = {}, 0
local CACHE_MAX = 1000

-- regex.compile(pattern) -> matcher | nil, message (cached per pattern)
function M.compile(pattern)
  local hit = cache[pattern]
  if hit then
    if hit.re then return hit end
    return nil, hit.err
  end
  local src, err = translate(pattern)
  local re
  if src then re, err = native.compile(src) end
  hit = re and setmetatable({ pattern = pattern, re = re }, Matcher) or { err = err }
  if cached >= CACHE_MAX then cache, cached = {}, 0 end
  cache[pattern], cached = hit, cached + 1
  if re then return hit end
  return nil, err
end

return M
