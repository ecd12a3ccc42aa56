-- aep.dataprep.parser: expression text -> syntax tree, by precedence climbing.
-- Grammar (JEXL's, as Data Prep documents it, lowest precedence first):
--   ternary   or ('?' expr ':' expr | '?:' expr)?
--   or        and (('||' | 'or') and)*
--   and       bitor (('&&' | 'and') bitor)*
--   bitor/xor/and  '|' '^' '&'
--   equality  ('==' 'eq' '!=' 'ne' '=~' '!~')
--   relation  ('<' 'lt' '>' 'gt' '<=' 'le' '>=' 'ge')
--   additive  ('+' '-'), multiplicative ('*' '/' 'div' '%' 'mod')
--   unary     ('-' '!' 'not' '~') unary | postfix
--   postfix   primary ('.' name | '.' name '(' args ')' | '[' expr ']')*
--   primary   number | string | true | false | null | '(' expr ')' | '[' list ']'
--             | '{' key ':' value, ... '}' | name '(' args ')' | field path | ${...}
-- Nodes: {k="lit", v}, {k="field", path}, {k="call", name, args}, {k="method", obj, name, args},
-- {k="index", obj, idx}, {k="get", obj, name}, {k="bin", op, a, b}, {k="un", op, a},
-- {k="cond", c, a, b}, {k="elvis", a, b}, {k="array", items}, {k="map", keys, vals}.
-- Errors are returned, never raised, whatever the input (the parser is fuzzed).

local lexer = require "aep.dataprep.lexer"

local M = {}

M.MAX_LENGTH = 4096 -- calculated fields' documented maximum length (home.md)
local MAX_DEPTH = 200

local BINARY = {
  ["||"] = 1, ["&&"] = 2, ["|"] = 3, ["^"] = 4, ["&"] = 5,
  ["=="] = 6, ["!="] = 6, ["=~"] = 6, ["!~"] = 6,
  ["<"] = 7, [">"] = 7, ["<="] = 7, [">="] = 7,
  ["+"] = 8, ["-"] = 8, ["*"] = 9, ["/"] = 9, ["%"] = 9,
}

local function split_field(name)
  local path = {}
  for part in (name .. "."):gmatch("(.-)%.") do path[#path + 1] = (part:gsub("%z", ".")) end
  return path
end

local Parser = {}
Parser.__index = Parser

local function fail(p, msg, tok)
  tok = tok or p.toks[p.i]
  error({ parse_error = ("%s at offset %d"):format(msg, tok.pos - 1) }, 0)
end

function Parser:peek() return self.toks[self.i] end
function Parser:next()
  local t = self.toks[self.i]
  self.i = self.i + 1
  return t
end
function Parser:is_op(v)
  local t = self.toks[self.i]
  return t.t == "op" and t.v == v
end
function Parser:expect(v)
  if not self:is_op(v) then
    local t = self:peek()
    fail(self, ("expected '%s' but found %s"):format(v, t.t == "eof" and "the end" or
      ("'" .. tostring(t.v) .. "'")))
  end
  return self:next()
end

function Parser:enter()
  self.depth = self.depth + 1
  if self.depth > MAX_DEPTH then fail(self, "expression nested too deeply") end
end

function Parser:expr()
  self:enter()
  local c = self:binary(1)
  if self:is_op("?") then
    self:next()
    local a = self:expr()
    self:expect(":")
    local b = self:expr()
    c = { k = "cond", c = c, a = a, b = b }
  elseif self:is_op("?:") then
    self:next()
    c = { k = "elvis", a = c, b = self:expr() }
  end
  self.depth = self.depth - 1
  return c
end

function Parser:binary(min)
  local left = self:unary()
  while true do
    local t = self:peek()
    local prec = t.t == "op" and BINARY[t.v]
    if not prec or prec < min then return left end
    self:next()
    local right = self:binary(prec + 1)
    left = { k = "bin", op = t.v, a = left, b = right }
  end
end

function Parser:unary()
  local t = self:peek()
  if t.t == "op" and (t.v == "-" or t.v == "!" or t.v == "~" or t.v == "+") then
    self:next()
    self:enter()
    local a = self:unary()
    self.depth = self.depth - 1
    if t.v == "+" then return a end
    if t.v == "-" and a.k == "lit" and type(a.v) == "number" then return { k = "lit", v = -a.v } end
    return { k = "un", op = t.v, a = a }
  end
  return self:postfix(self:primary())
end

function Parser:args()
  self:expect("(")
  local list = {}
  if not self:is_op(")") then
    repeat
      list[#list + 1] = self:expr()
    until not (self:is_op(",") and self:next())
  end
  self:expect(")")
  return list
end

function Parser:postfix(node)
  while true do
    if self:is_op(".") then
      self:next()
      local t = self:next()
      if t.t ~= "id" and t.t ~= "kw" then fail(self, "expected a name after '.'", t) end
      if self:is_op("(") then
        node = { k = "method", obj = node, name = t.v, args = self:args() }
      elseif node.k == "field" and not node.closed then
        node.path[#node.path + 1] = t.v
      else
        node = { k = "get", obj = node, name = t.v }
      end
    elseif self:is_op("[") then
      self:next()
      local idx = self:expr()
      self:expect("]")
      node = { k = "index", obj = node, idx = idx }
    else
      return node
    end
  end
end

function Parser:primary()
  local t = self:next()
  if t.t == "num" or t.t == "str" then return { k = "lit", v = t.v } end
  if t.t == "kw" then
    if t.v == "true" then return { k = "lit", v = true } end
    if t.v == "false" then return { k = "lit", v = false } end
    if t.v == "null" then return { k = "lit", v = nil } end
    if (t.v == "empty" or t.v == "size") and self:is_op("(") then
      return { k = "call", name = t.v, args = self:args(), pos = t.pos }
    end
    fail(self, ("'%s' is a reserved keyword: wrap a field of that name in ${}"):format(t.v), t)
  end
  if t.t == "field" then return { k = "field", path = split_field(t.v) } end
  if t.t == "id" then
    if self:is_op("(") then return { k = "call", name = t.v, args = self:args(), pos = t.pos } end
    return { k = "field", path = { t.v } }
  end
  if t.t == "op" and t.v == "(" then
    local e = self:expr()
    self:expect(")")
    if e.k == "field" then e.closed = true end -- (a).b reads b of a's value, not the field "a.b"
    return e
  end
  if t.t == "op" and t.v == "[" then
    local items = {}
    if not self:is_op("]") then
      repeat items[#items + 1] = self:expr() until not (self:is_op(",") and self:next())
    end
    self:expect("]")
    return { k = "array", items = items }
  end
  if t.t == "op" and t.v == "{" then
    local keys, vals = {}, {}
    if not self:is_op("}") then
      repeat
        keys[#keys + 1] = self:expr()
        self:expect(":")
        vals[#vals + 1] = self:expr()
      until not (self:is_op(",") and self:next())
    end
    self:expect("}")
    return { k = "map", keys = keys, vals = vals }
  end
  if t.t == "eof" then fail(self, "unexpected end of expression", t) end
  fail(self, ("unexpected '%s'"):format(tostring(t.v)), t)
end

-- parser.parse(src) -> tree | nil, message   (never raises)
function M.parse(src)
  if type(src) ~= "string" then return nil, "expression must be a string" end
  if #src > M.MAX_LENGTH then
    return nil, ("expression is %d characters long; the maximum is %d"):format(#src, M.MAX_LENGTH)
  end
  local toks, err = lexer.tokenize(src)
  if not toks then return nil, err end
  local p = setmetatable({ toks = toks, i = 1, depth = 0 }, Parser)
  local ok, tree = pcall(function()
    if p:peek().t == "eof" then fail(p, "empty expression") end
    local e = p:expr()
    if p:peek().t ~= "eof" then fail(p, ("unexpected '%s'"):format(tostring(p:peek().v))) end
    return e
  end)
  if ok then return tree end
  if type(tree) == "table" and tree.parse_error then return nil, tree.parse_error end
  return nil, "cannot parse the expression: " .. tostring(tree)
end

return M
