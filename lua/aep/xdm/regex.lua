-- aep.xdm.regex: the subset of java.util.regex that XDM "pattern" keywords use.
--
-- everit validates "pattern" with Pattern.compile(p).matcher(s).find(), so a
-- pattern matches anywhere unless anchored. This is a small backtracking
-- engine over code points, compiled once into closures:
--   literals, ., [...] classes (ranges, negation, \d\w\s, \p{Alpha}...), ^ $ \b \B
--   \A \z \Z, groups (capturing, (?:), (?<name>), (?>), (?=), (?!)), inline flags
--   (?i) (?s) (?x) (?m), alternation, * + ? {n} {n,} {n,m} (greedy, lazy ?,
--   possessive +), escapes \t \n \r \f \a \e \xhh \uhhhh \x{h} \0o \cX \Q..\E.
-- Unsupported (back-references, look-behind, class intersection) makes
-- compile() return nil, message; callers then skip the keyword.

local M = {}

local S, N -- subject as code points, and its length (set per find)
local STEPS -- backtracking budget left for the current find
local BUDGET = 200000 -- a pathological pattern gives up (and counts as a match) after this

local function is_word(c)
  return c and ((c >= 48 and c <= 57) or (c >= 65 and c <= 90) or (c >= 97 and c <= 122) or c == 95)
end

local function is_line_term(c)
  return c == 10 or c == 13 or c == 0x85 or c == 0x2028 or c == 0x2029
end

local function lower(c)
  if c >= 65 and c <= 90 then return c + 32 end
  return c
end

-- Character predicates ------------------------------------------------------

local function range_pred(lo, hi) return function(c) return c >= lo and c <= hi end end

local PREDEF = {
  d = function(c) return c >= 48 and c <= 57 end,
  w = is_word,
  s = function(c) return c == 32 or (c >= 9 and c <= 13) end,
}
PREDEF.D = function(c) return not PREDEF.d(c) end
PREDEF.W = function(c) return not is_word(c) end
PREDEF.S = function(c) return not PREDEF.s(c) end

local function is_alpha(c) return (c >= 65 and c <= 90) or (c >= 97 and c <= 122) end
local function is_digit(c) return c >= 48 and c <= 57 end
local POSIX = {
  Lower = function(c) return c >= 97 and c <= 122 end,
  Upper = function(c) return c >= 65 and c <= 90 end,
  ASCII = function(c) return c <= 127 end,
  Alpha = is_alpha,
  Digit = is_digit,
  Alnum = function(c) return is_alpha(c) or is_digit(c) end,
  Punct = function(c)
    return (c >= 33 and c <= 47) or (c >= 58 and c <= 64) or (c >= 91 and c <= 96) or (c >= 123 and c <= 126)
  end,
  Space = function(c) return c == 32 or (c >= 9 and c <= 13) end,
  Cntrl = function(c) return c < 32 or c == 127 end,
  XDigit = function(c) return is_digit(c) or (c >= 65 and c <= 70) or (c >= 97 and c <= 102) end,
  Blank = function(c) return c == 32 or c == 9 end,
}
POSIX.Graph = function(c) return POSIX.Alnum(c) or POSIX.Punct(c) end
POSIX.Print = function(c) return POSIX.Graph(c) or c == 32 end
-- Unicode categories, approximated: ASCII exact, any non-ASCII code point counts as a letter.
POSIX.L = function(c) return is_alpha(c) or c >= 0xAA end
POSIX.IsAlphabetic = POSIX.L
POSIX.IsLetter = POSIX.L
POSIX.Lu = POSIX.Upper
POSIX.Ll = POSIX.Lower
POSIX.N = is_digit
POSIX.Nd = is_digit
POSIX.IsDigit = is_digit
POSIX.javaLowerCase = POSIX.Lower
POSIX.javaUpperCase = POSIX.Upper

-- Parser ---------------------------------------------------------------------

local Parser = {}
Parser.__index = Parser

local function perr(msg) error({ regex_error = msg }, 0) end

function Parser:peek(o) return self.cp[self.i + (o or 0)] end
function Parser:next()
  local c = self.cp[self.i]
  self.i = self.i + 1
  return c
end
function Parser:eof() return self.i > #self.cp end

local function hexval(cps)
  local v = 0
  for _, c in ipairs(cps) do
    local d
    if c >= 48 and c <= 57 then d = c - 48
    elseif c >= 65 and c <= 70 then d = c - 55
    elseif c >= 97 and c <= 102 then d = c - 87
    else perr("illegal hexadecimal escape") end
    v = v * 16 + d
  end
  return v
end

-- Parses the escape after a backslash. Returns kind, value:
--   "char", codepoint | "pred", predicate | "assert", name
function Parser:escape(in_class)
  local c = self:next()
  if not c then perr("unexpected end after \\") end
  local ch = utf8.char(c)
  if PREDEF[ch] then return "pred", PREDEF[ch] end
  if ch == "t" then return "char", 9 end
  if ch == "n" then return "char", 10 end
  if ch == "r" then return "char", 13 end
  if ch == "f" then return "char", 12 end
  if ch == "a" then return "char", 7 end
  if ch == "e" then return "char", 27 end
  if ch == "0" then
    local v, k = 0, 0
    while k < 3 do
      local d = self:peek()
      if d and d >= 48 and d <= 55 then v = v * 8 + d - 48; self.i = self.i + 1; k = k + 1 else break end
    end
    if k == 0 then perr("illegal octal escape") end
    return "char", v
  end
  if ch == "x" then
    if self:peek() == 123 then -- \x{h...}
      self.i = self.i + 1
      local digits = {}
      while self:peek() and self:peek() ~= 125 do digits[#digits + 1] = self:next() end
      if not self:next() then perr("unclosed hexadecimal escape") end
      return "char", hexval(digits)
    end
    local a, b = self:next(), self:next()
    if not b then perr("illegal hexadecimal escape") end
    return "char", hexval({ a, b })
  end
  if ch == "u" then
    local d = {}
    for k = 1, 4 do d[k] = self:next() end
    if not d[4] then perr("illegal Unicode escape") end
    return "char", hexval(d)
  end
  if ch == "c" then
    local x = self:next()
    if not x then perr("illegal control escape") end
    return "char", x ~ 64
  end
  if ch == "p" or ch == "P" then
    local name
    if self:peek() == 123 then
      self.i = self.i + 1
      local t = {}
      while self:peek() and self:peek() ~= 125 do t[#t + 1] = utf8.char(self:next()) end
      if not self:next() then perr("unclosed character family") end
      name = table.concat(t)
    else
      local x = self:next()
      if not x then perr("illegal character family") end
      name = utf8.char(x)
    end
    local f = POSIX[name] or POSIX[(name:gsub("^Is", ""))]
    if not f then perr("unknown character property " .. name) end
    if ch == "P" then return "pred", function(cc) return not f(cc) end end
    return "pred", f
  end
  if not in_class then
    if ch == "b" then return "assert", "b" end
    if ch == "B" then return "assert", "B" end
    if ch == "A" then return "assert", "A" end
    if ch == "z" then return "assert", "z" end
    if ch == "Z" then return "assert", "Z" end
    if ch == "G" then return "assert", "A" end -- only meaningful at match start here
    if ch:match("%d") then perr("back-references are not supported") end
    if ch == "k" then perr("named back-references are not supported") end
  end
  if ch:match("%a") then perr("illegal/unsupported escape sequence \\" .. ch) end
  return "char", c
end

function Parser:class()
  -- after '['
  local negate = false
  if self:peek() == 94 then negate = true; self.i = self.i + 1 end -- ^
  local preds = {}
  local first = true
  while true do
    local c = self:next()
    if not c then perr("unclosed character class") end
    if c == 93 and not first then break end -- ]
    first = false
    local kind, v
    if c == 91 then perr("nested character classes are not supported")
    elseif c == 38 and self:peek() == 38 then perr("character class intersection is not supported")
    elseif c == 92 then kind, v = self:escape(true)
    else kind, v = "char", c end
    if kind == "pred" then
      preds[#preds + 1] = v
    else
      -- range?
      if self:peek() == 45 and self:peek(1) and self:peek(1) ~= 93 then
        self.i = self.i + 1
        local hc = self:next()
        local hk, hv
        if hc == 92 then hk, hv = self:escape(true) else hk, hv = "char", hc end
        if hk ~= "char" then perr("illegal character range") end
        if hv < v then perr("illegal character range") end
        preds[#preds + 1] = range_pred(v, hv)
      else
        local lit = v
        preds[#preds + 1] = function(cc) return cc == lit end
      end
    end
  end
  local ci = self.flags.i
  local n = #preds
  local function any(cc)
    for k = 1, n do if preds[k](cc) then return true end end
    return false
  end
  local test = any
  if ci then
    test = function(cc)
      if any(cc) then return true end
      if cc >= 65 and cc <= 90 then return any(cc + 32) end
      if cc >= 97 and cc <= 122 then return any(cc - 32) end
      return false
    end
  end
  if negate then return function(cc) return not test(cc) end end
  return test
end

function Parser:skip_ws_comments()
  if not self.flags.x then return end
  while true do
    local c = self:peek()
    if c == 32 or (c and c >= 9 and c <= 13) then self.i = self.i + 1
    elseif c == 35 then -- # comment to end of line
      while self:peek() and self:peek() ~= 10 do self.i = self.i + 1 end
    else return end
  end
end

function Parser:parse_flags()
  -- after "(?", reads letters [-letters] then ')' or ':'
  local on = true
  local set = {}
  while true do
    local c = self:next()
    if not c then perr("unclosed group") end
    local ch = utf8.char(c)
    if ch == "-" then on = false
    elseif ch == ")" or ch == ":" then return set, ch
    elseif ch:match("[imsxuUd]") then set[ch] = on
    else perr("unknown inline modifier " .. ch) end
  end
end

function Parser:atom()
  self:skip_ws_comments()
  local c = self:peek()
  if not c then return nil end
  if c == 124 or c == 41 then return nil end -- | )
  self.i = self.i + 1
  if c == 40 then -- (
    local node
    if self:peek() == 63 then -- ?
      self.i = self.i + 1
      local d = self:next()
      if d == 58 then node = { t = "group", node = self:alternation() }
      elseif d == 61 then node = { t = "look", node = self:alternation(), neg = false }
      elseif d == 33 then node = { t = "look", node = self:alternation(), neg = true }
      elseif d == 62 then node = { t = "atomic", node = self:alternation() }
      elseif d == 60 then
        local e = self:peek()
        if e == 61 or e == 33 then perr("look-behind is not supported") end
        while self:peek() and self:peek() ~= 62 do self.i = self.i + 1 end
        self.i = self.i + 1
        node = { t = "group", node = self:alternation() }
      else
        self.i = self.i - 1
        local saved = {}
        for k, v in pairs(self.flags) do saved[k] = v end
        local set, term = self:parse_flags()
        for k, v in pairs(set) do self.flags[k] = v end
        if term == ")" then return { t = "empty" } end
        node = { t = "group", node = self:alternation() }
        self.flags = saved
      end
    else
      node = { t = "group", node = self:alternation() }
    end
    if self:next() ~= 41 then perr("unclosed group") end
    return node
  end
  if c == 91 then return { t = "char", pred = self:class() } end
  if c == 46 then -- .
    if self.flags.s then return { t = "char", pred = function() return true end } end
    return { t = "char", pred = function(cc) return not is_line_term(cc) end }
  end
  if c == 94 then return { t = self.flags.m and "mbol" or "bol" } end
  if c == 36 then return { t = self.flags.m and "meol" or "eol" } end
  if c == 42 or c == 43 or c == 63 then perr("dangling meta character '" .. utf8.char(c) .. "'") end
  if c == 123 then perr("illegal repetition") end
  if c == 92 then
    if self:peek() == 81 then -- \Q ... \E
      self.i = self.i + 1
      local seq = {}
      while not self:eof() do
        if self:peek() == 92 and self:peek(1) == 69 then self.i = self.i + 2; break end
        local lit = self:next()
        seq[#seq + 1] = self:literal(lit)
      end
      return { t = "seq", list = seq }
    end
    local kind, v = self:escape(false)
    if kind == "pred" then return { t = "char", pred = v } end
    if kind == "assert" then return { t = "assert", name = v } end
    return self:literal(v)
  end
  return self:literal(c)
end

function Parser:literal(c)
  if self.flags.i and ((c >= 65 and c <= 90) or (c >= 97 and c <= 122)) then
    local l = lower(c)
    return { t = "char", pred = function(cc) return lower(cc) == l end }
  end
  return { t = "char", pred = function(cc) return cc == c end }
end

function Parser:number()
  local v
  while true do
    local c = self:peek()
    if c and c >= 48 and c <= 57 then
      v = (v or 0) * 10 + c - 48
      self.i = self.i + 1
    else
      return v
    end
  end
end

function Parser:quantified()
  local node = self:atom()
  if not node then return nil end
  while true do
    self:skip_ws_comments()
    local c = self:peek()
    local min, max
    if c == 42 then min, max = 0, math.huge
    elseif c == 43 then min, max = 1, math.huge
    elseif c == 63 then min, max = 0, 1
    elseif c == 123 then
      local save = self.i
      self.i = self.i + 1
      min = self:number()
      if not min then self.i = save; perr("illegal repetition") end
      if self:peek() == 44 then
        self.i = self.i + 1
        max = self:number() or math.huge
      else
        max = min
      end
      if self:peek() ~= 125 then perr("unclosed counted closure") end
      if max < min then perr("illegal repetition range") end
    else
      return node
    end
    self.i = self.i + 1
    local mode = "greedy"
    if self:peek() == 63 then mode = "lazy"; self.i = self.i + 1
    elseif self:peek() == 43 then mode = "possessive"; self.i = self.i + 1 end
    node = { t = "rep", node = node, min = min, max = max, mode = mode }
  end
end

function Parser:sequence()
  local list = {}
  while true do
    local q = self:quantified()
    if not q then break end
    list[#list + 1] = q
  end
  if #list == 1 then return list[1] end
  return { t = "seq", list = list }
end

function Parser:alternation()
  local alts = { self:sequence() }
  while self:peek() == 124 do
    self.i = self.i + 1
    alts[#alts + 1] = self:sequence()
  end
  if #alts == 1 then return alts[1] end
  return { t = "alt", list = alts }
end

-- Compiler: AST -> function(i, k) -> boolean --------------------------------

local function ret_true() return true end

local build

local function build_seq(list)
  local n = #list
  if n == 0 then return function(i, k) return k(i) end end
  local ms = {}
  for j = 1, n do ms[j] = build(list[j]) end
  local m = ms[n]
  for j = n - 1, 1, -1 do
    local a, b = ms[j], m
    m = function(i, k) return a(i, function(x) return b(x, k) end) end
  end
  return m
end

function build(node)
  local t = node.t
  if t == "char" then
    local pred = node.pred
    return function(i, k)
      local c = S[i]
      if c and pred(c) then return k(i + 1) end
      return false
    end
  elseif t == "seq" then
    return build_seq(node.list)
  elseif t == "empty" then
    return function(i, k) return k(i) end
  elseif t == "alt" then
    local ms = {}
    for j, a in ipairs(node.list) do ms[j] = build(a) end
    return function(i, k)
      STEPS = STEPS - 1
      if STEPS < 0 then error(BUDGET, 0) end
      for j = 1, #ms do if ms[j](i, k) then return true end end
      return false
    end
  elseif t == "group" then
    return build(node.node)
  elseif t == "atomic" then
    local m = build(node.node)
    return function(i, k)
      local e
      if m(i, function(x) e = x; return true end) then return k(e) end
      return false
    end
  elseif t == "look" then
    local m, neg = build(node.node), node.neg
    return function(i, k)
      local ok = m(i, ret_true)
      if ok ~= neg then return k(i) end
      return false
    end
  elseif t == "bol" then
    return function(i, k) if i == 1 then return k(i) end return false end
  elseif t == "mbol" then
    return function(i, k)
      if i == 1 or (S[i - 1] and is_line_term(S[i - 1]) and i <= N) then return k(i) end
      return false
    end
  elseif t == "eol" then
    return function(i, k)
      if i == N + 1 or (i == N and is_line_term(S[N])) or (i == N - 1 and S[N - 1] == 13 and S[N] == 10) then
        return k(i)
      end
      return false
    end
  elseif t == "meol" then
    return function(i, k)
      if i == N + 1 or is_line_term(S[i]) then return k(i) end
      return false
    end
  elseif t == "assert" then
    local name = node.name
    if name == "b" or name == "B" then
      local want = name == "b"
      return function(i, k)
        local at = (is_word(S[i - 1]) or false) ~= (is_word(S[i]) or false)
        if at == want then return k(i) end
        return false
      end
    elseif name == "A" then
      return function(i, k) if i == 1 then return k(i) end return false end
    elseif name == "z" then
      return function(i, k) if i == N + 1 then return k(i) end return false end
    else -- Z
      return function(i, k)
        if i == N + 1 or (i == N and is_line_term(S[N])) or (i == N - 1 and S[N - 1] == 13 and S[N] == 10) then
          return k(i)
        end
        return false
      end
    end
  elseif t == "rep" then
    local m, min, max, mode = build(node.node), node.min, node.max, node.mode
    if mode == "possessive" then
      return function(i, k)
        local pos, count = i, 0
        while count < max do
          local np
          if m(pos, function(x) np = x; return true end) and np ~= pos then
            pos, count = np, count + 1
          else
            break
          end
        end
        if count < min then return false end
        return k(pos)
      end
    elseif mode == "lazy" then
      local function rec(i, k, count)
        STEPS = STEPS - 1
        if STEPS < 0 then error(BUDGET, 0) end
        if count >= min and k(i) then return true end
        if count < max then
          return m(i, function(x)
            if x == i and count >= min then return false end
            return rec(x, k, count + 1)
          end)
        end
        return false
      end
      return function(i, k) return rec(i, k, 0) end
    else
      local function rec(i, k, count)
        STEPS = STEPS - 1
        if STEPS < 0 then error(BUDGET, 0) end
        if count < max then
          local ok = m(i, function(x)
            if x == i and count >= min then return false end
            return rec(x, k, count + 1)
          end)
          if ok then return true end
        end
        if count >= min then return k(i) end
        return false
      end
      return function(i, k) return rec(i, k, 0) end
    end
  end
  error("regex: unknown node " .. tostring(t))
end

local function to_codepoints(s)
  local out = {}
  if not s:find("[\128-\255]") then
    local n = #s
    local j = 1
    while j <= n do
      local e = j + 4095
      if e > n then e = n end
      local chunk = { s:byte(j, e) }
      for k = 1, #chunk do out[j + k - 1] = chunk[k] end
      j = e + 1
    end
    return out
  end
  local ok = pcall(function()
    local k = 0
    for _, c in utf8.codes(s) do k = k + 1; out[k] = c end
  end)
  if not ok then
    out = {}
    for j = 1, #s do out[j] = s:byte(j) end
  end
  return out
end

-- regex.compile(pattern) -> matcher | nil, message
-- matcher:find(s) -> boolean (Java Matcher.find semantics: match anywhere)
function M.compile(pattern)
  local p = setmetatable({ cp = to_codepoints(pattern), i = 1, flags = {} }, Parser)
  local ok, ast = pcall(function()
    local a = p:alternation()
    if not p:eof() then
      if p:peek() == 41 then perr("unmatched closing ')'") end
      perr("unexpected character")
    end
    return a
  end)
  if not ok then
    if type(ast) == "table" and ast.regex_error then return nil, ast.regex_error end
    error(ast, 0)
  end
  local m = build(ast)
  local anchored = ast.t == "bol" or (ast.t == "seq" and ast.list[1] and ast.list[1].t == "bol")
  local matcher = { pattern = pattern }
  local function search(last)
    for start = 1, last do
      if m(start, ret_true) then return true end
    end
    return false
  end
  function matcher.find(_, s)
    S = to_codepoints(s)
    N = #S
    STEPS = BUDGET
    local ok, found = pcall(search, anchored and 1 or N + 1)
    S = nil
    if not ok then
      if found == BUDGET then return true end
      error(found, 0)
    end
    return found
  end
  return matcher
end

return M
