-- aep.dataprep.lexer: the tokens of Data Prep's expression language (a JEXL dialect).
-- Identifiers are Java identifiers ($ and _ allowed, any non-ASCII letter), a backslash inside one
-- escapes the next character (`address.street\.name` is the field "street.name" of "address"),
-- `${...}` quotes a field name verbatim (spaces, dots, reserved words; `\.` and `\}` escape),
-- strings take single or double quotes with Java's escapes, numbers take Java's L/F/D suffixes.
-- Reserved words (functions.md "Fields") are keywords, never field names.

local M = {}

local byte, sub, find, char = string.byte, string.sub, string.find, string.char

-- the words functions.md reserves; the operator words among them become operators
M.RESERVED = {}
for w in ([[new mod or break var lt for false while eq gt div not null continue else and ne true
  le if ge return _errors do function empty size]]):gmatch("%S+") do M.RESERVED[w] = true end

local WORD_OPS = {
  ["and"] = "&&", ["or"] = "||", ["not"] = "!", eq = "==", ne = "!=", lt = "<", gt = ">", le = "<=",
  ge = ">=", div = "/", mod = "%",
}

local TWO = { ["=="] = true, ["!="] = true, ["<="] = true, [">="] = true, ["&&"] = true, ["||"] = true,
  ["=~"] = true, ["!~"] = true, ["?:"] = true }
local ONE = {}
for c in ("+-*/%!~&|^<>?:,.()[]{}"):gmatch(".") do ONE[c] = true end

local ESCAPES = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f", ["\\"] = "\\", ["'"] = "'",
  ['"'] = '"' }

local function is_ident_start(c)
  return c and ((c >= 65 and c <= 90) or (c >= 97 and c <= 122) or c == 95 or c == 36 or c >= 128
    or c == 92)
end
local function is_ident_part(c)
  return is_ident_start(c) or (c and c >= 48 and c <= 57)
end

-- lexer.tokenize(src) -> tokens | nil, message
-- token: {t = "num"|"str"|"id"|"field"|"op"|"kw"|"eof", v = value, pos = byte offset}
function M.tokenize(src)
  if type(src) ~= "string" then return nil, "expression must be a string" end
  local toks, i, n = {}, 1, #src
  local function push(t, v, pos) toks[#toks + 1] = { t = t, v = v, pos = pos } end
  while true do
    local s = find(src, "[^ \t\r\n]", i)
    if not s then break end
    i = s
    local c = byte(src, i)
    if c >= 48 and c <= 57 then
      local num = src:match("^%d+%.?%d*[eE][%+%-]?%d+", i) or src:match("^%d+%.%d+", i)
        or src:match("^%d+", i)
      local j = i + #num
      local suffix = sub(src, j, j)
      local v
      if suffix:match("^[fFdD]$") then
        v = tonumber(num) + 0.0; j = j + 1
      else
        if suffix:match("^[lL]$") then j = j + 1 end
        v = math.tointeger(tonumber(num)) or tonumber(num)
        if num:find("[%.eE]") then v = tonumber(num) + 0.0 end
      end
      if v == nil then return nil, ("bad number at offset %d"):format(i - 1) end
      if is_ident_part(byte(src, j)) then return nil, ("bad number at offset %d"):format(i - 1) end
      push("num", v, i); i = j
    elseif c == 34 or c == 39 then -- " or '
      local q, out, j = c, {}, i + 1
      while true do
        local d = byte(src, j)
        if not d then return nil, ("unterminated string at offset %d"):format(i - 1) end
        if d == q then break end
        if d == 92 then
          local e = sub(src, j + 1, j + 1)
          if e == "u" and src:match("^%x%x%x%x", j + 2) then
            out[#out + 1] = utf8.char(tonumber(sub(src, j + 2, j + 5), 16)); j = j + 6
          elseif e == "" then
            return nil, ("unterminated string at offset %d"):format(i - 1)
          else
            out[#out + 1] = ESCAPES[e] or e; j = j + 2
          end
        else
          local k = find(src, q == 34 and '["\\]' or "['\\]", j)
          if not k then return nil, ("unterminated string at offset %d"):format(i - 1) end
          out[#out + 1] = sub(src, j, k - 1); j = k
        end
      end
      push("str", table.concat(out), i); i = j + 1
    elseif c == 36 and byte(src, i + 1) == 123 then -- ${...}
      local out, j = {}, i + 2
      while true do
        local d = byte(src, j)
        if not d then return nil, ("unterminated ${ at offset %d"):format(i - 1) end
        if d == 125 then break end
        if d == 92 and byte(src, j + 1) then
          local e = sub(src, j + 1, j + 1)
          -- an escaped dot stays a literal dot inside one name; other escapes give the character
          out[#out + 1] = e == "." and "\0" or e; j = j + 2
        else
          out[#out + 1] = char(d); j = j + 1
        end
      end
      local name = table.concat(out)
      if name == "" then return nil, ("empty ${} at offset %d"):format(i - 1) end
      push("field", name, i); i = j + 1
    elseif is_ident_start(c) then
      local out, j = {}, i
      while is_ident_part(byte(src, j)) do
        local d = byte(src, j)
        if d == 92 then
          local e = sub(src, j + 1, j + 1)
          if e == "" then return nil, ("dangling backslash at offset %d"):format(j - 1) end
          out[#out + 1] = e; j = j + 2
        else
          out[#out + 1] = char(d); j = j + 1
        end
      end
      local word = table.concat(out)
      local raw = sub(src, i, j - 1)
      if WORD_OPS[raw] then
        push("op", WORD_OPS[raw], i)
      elseif M.RESERVED[raw] then
        push("kw", raw, i)
      else
        push("id", word, i)
      end
      i = j
    else
      local two = sub(src, i, i + 1)
      if TWO[two] then
        push("op", two, i); i = i + 2
      elseif ONE[char(c)] then
        push("op", char(c), i); i = i + 1
      else
        return nil, ("unexpected character '%s' at offset %d"):format(char(c), i - 1)
      end
    end
  end
  push("eof", nil, n + 1)
  return toks
end

return M
