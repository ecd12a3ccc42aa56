-- aep.dataprep.compile: syntax tree -> Lua closure, once per mapping set (never per record).
-- compile.expression(src) -> fn(record) -> value | nil, message. A closure raises
-- values.fail(...) on a transformation error; the mapping that runs it catches it.

local parser = require "aep.dataprep.parser"
local values = require "aep.dataprep.values"
local functions = require "aep.dataprep.functions"
local methods = require "aep.dataprep.methods"

local M = {}

local fail, truthy, equal, compare = values.fail, values.truthy, values.equal, values.compare
local to_number, to_string = values.to_number, values.to_string
local select, type, tointeger, mtype = select, type, math.tointeger, math.type
local null = values.null

-- a value read from a record: JSON null is nil, integral floats (cjson reads 1234 as 1234.0)
-- are integers, as Jackson reads them
local function read(v)
  if v == null then return nil end
  if mtype(v) == "float" then return tointeger(v) or v end
  return v
end
M.read = read

-- field access specialised on path length: the common cases avoid a loop
local function field_reader(path)
  local n = #path
  local a, b, c = path[1], path[2], path[3]
  if n == 1 then return function(r) return read(r[a]) end end
  if n == 2 then
    return function(r)
      local x = r[a]
      if type(x) ~= "table" then return nil end
      return read(x[b])
    end
  end
  if n == 3 then
    return function(r)
      local x = r[a]
      if type(x) ~= "table" then return nil end
      x = x[b]
      if type(x) ~= "table" then return nil end
      return read(x[c])
    end
  end
  return function(r)
    local x = r
    for i = 1, n do
      if type(x) ~= "table" then return nil end
      x = x[path[i]]
    end
    return read(x)
  end
end
M.field_reader = field_reader

local function number_operands(op, a, b)
  local x, y = to_number(a), to_number(b)
  if x == nil or y == nil then
    fail("operator '%s' needs numbers, got %s and %s", op, a == nil and "null" or type(a), b == nil and "null" or type(b))
  end
  return x, y
end

local ARITH = {
  ["+"] = function(a, b)
    if type(a) == "string" or type(b) == "string" then
      local x, y = to_number(a), to_number(b)
      if type(a) == "string" and type(b) == "string" or x == nil or y == nil then
        return (to_string(a) or "null") .. (to_string(b) or "null")
      end
      return x + y
    end
    local x, y = number_operands("+", a, b)
    return x + y
  end,
  ["-"] = function(a, b) local x, y = number_operands("-", a, b); return x - y end,
  ["*"] = function(a, b) local x, y = number_operands("*", a, b); return x * y end,
  ["/"] = function(a, b)
    local x, y = number_operands("/", a, b)
    if mtype(x) == "integer" and mtype(y) == "integer" then
      if y == 0 then fail("/ by zero") end
      local q = x // y
      if q < 0 and q * y ~= x then q = q + 1 end -- Java truncates toward zero
      return q
    end
    return x / y
  end,
  ["%"] = function(a, b) -- math.fmod keeps the dividend's sign, as Java's % does
    local x, y = number_operands("%", a, b)
    if y == 0 and mtype(x) == "integer" and mtype(y) == "integer" then fail("/ by zero") end
    return math.fmod(x, y)
  end,
  ["&"] = function(a, b) local x, y = number_operands("&", a, b); return (tointeger(x) or fail("& needs integers")) & (tointeger(y) or fail("& needs integers")) end,
  ["|"] = function(a, b) local x, y = number_operands("|", a, b); return (tointeger(x) or fail("| needs integers")) | (tointeger(y) or fail("| needs integers")) end,
  ["^"] = function(a, b) local x, y = number_operands("^", a, b); return (tointeger(x) or fail("^ needs integers")) ~ (tointeger(y) or fail("^ needs integers")) end,
  ["=="] = function(a, b) return equal(a, b) end,
  ["!="] = function(a, b) return not equal(a, b) end,
  ["<"] = function(a, b) return compare(a, b) < 0 end,
  [">"] = function(a, b) return compare(a, b) > 0 end,
  ["<="] = function(a, b) return compare(a, b) <= 0 end,
  [">="] = function(a, b) return compare(a, b) >= 0 end,
}

local function regex_matches(a, b)
  local s, p = to_string(a), to_string(b)
  if s == nil or p == nil then return false end
  return functions.call("matches_regex", s, p) -- String.matches: the whole string
end
ARITH["=~"] = function(a, b)
  if values.is_array(b) then
    for _, x in ipairs(b) do if equal(a, x) then return true end end
    return false
  end
  return regex_matches(a, b)
end
ARITH["!~"] = function(a, b) return not ARITH["=~"](a, b) end

local build

local function build_args(nodes)
  local fns = {}
  for i, n in ipairs(nodes) do fns[i] = build(n) end
  return fns
end

local function call_closure(f, args, pass_record)
  local n = #args
  local a1, a2, a3, a4 = args[1], args[2], args[3], args[4]
  if pass_record then
    return function(r)
      local vals = {}
      for i = 1, n do vals[i] = args[i](r) end
      return f(r, table.unpack(vals, 1, n))
    end
  end
  if n == 0 then return function() return f() end end
  if n == 1 then return function(r) return f(a1(r)) end end
  if n == 2 then return function(r) return f(a1(r), a2(r)) end end
  if n == 3 then return function(r) return f(a1(r), a2(r), a3(r)) end end
  if n == 4 then return function(r) return f(a1(r), a2(r), a3(r), a4(r)) end end
  return function(r)
    local vals = {}
    for i = 1, n do vals[i] = args[i](r) end
    return f(table.unpack(vals, 1, n))
  end
end

local function compile_error(msg) error({ compile_error = msg }, 0) end

function build(node)
  local k = node.k
  if k == "lit" then
    local v = node.v
    return function() return v end
  elseif k == "field" then
    return field_reader(node.path)
  elseif k == "call" then
    local name = node.name
    local def = functions.lookup(name)
    if not def then compile_error(("unknown function '%s'"):format(name)) end
    local n = #node.args
    if n < def.min or n > def.max then
      compile_error(("function '%s' takes %s argument%s, got %d"):format(name,
        def.min == def.max and tostring(def.min) or (def.max == math.huge and ("at least " .. def.min) or
        (def.min .. " to " .. def.max)), def.max == 1 and "" or "s", n))
    end
    return call_closure(def.fn, build_args(node.args), def.record)
  elseif k == "method" then
    local m = methods[node.name]
    if not m then compile_error(("unknown method '%s'"):format(node.name)) end
    local obj = build(node.obj)
    local args = build_args(node.args)
    local n = #args
    if n < m.min or n > m.max then
      compile_error(("method '%s' takes %d to %d arguments, got %d"):format(node.name, m.min, m.max, n))
    end
    local f = m.fn
    local name = node.name
    return function(r)
      local o = obj(r)
      if o == nil and not m.null_ok then fail("cannot call %s() on null", name) end
      local vals = {}
      for i = 1, n do vals[i] = args[i](r) end
      return f(o, table.unpack(vals, 1, n))
    end
  elseif k == "index" then
    local obj, idx = build(node.obj), build(node.idx)
    return function(r)
      local o, i = obj(r), idx(r)
      if type(o) ~= "table" or i == nil then return nil end
      if values.is_array(o) or (type(i) == "number" and o[1] ~= nil) then
        local n = tointeger(to_number(i))
        if not n then fail("array index must be a number") end
        return read(o[n + 1])
      end
      return read(o[to_string(i)])
    end
  elseif k == "get" then
    local obj, name = build(node.obj), node.name
    return function(r)
      local o = obj(r)
      if type(o) ~= "table" then return nil end
      return read(o[name])
    end
  elseif k == "bin" then
    local a, b, op = build(node.a), build(node.b), node.op
    if op == "&&" then return function(r) return truthy(a(r)) and truthy(b(r)) end end
    if op == "||" then return function(r) return truthy(a(r)) or truthy(b(r)) end end
    local f = ARITH[op]
    return function(r) return f(a(r), b(r)) end
  elseif k == "un" then
    local a, op = build(node.a), node.op
    if op == "!" then return function(r) return not truthy(a(r)) end end
    if op == "-" then
      return function(r)
        local x = to_number(a(r))
        if x == nil then fail("unary - needs a number") end
        return -x
      end
    end
    return function(r)
      local x = tointeger(to_number(a(r)))
      if x == nil then fail("~ needs an integer") end
      return ~x
    end
  elseif k == "cond" then
    local c, a, b = build(node.c), build(node.a), build(node.b)
    return function(r) if truthy(c(r)) then return a(r) end return b(r) end
  elseif k == "elvis" then
    local a, b = build(node.a), build(node.b)
    return function(r)
      local v = a(r)
      if truthy(v) then return v end
      return b(r)
    end
  elseif k == "array" then
    local items = build_args(node.items)
    local n = #items
    return function(r)
      local out = values.array({})
      local j = 0
      for i = 1, n do
        local v = items[i](r)
        j = j + 1
        out[j] = v == nil and null or v
      end
      return out
    end
  elseif k == "map" then
    local keys, vals = build_args(node.keys), build_args(node.vals)
    return function(r)
      local out = {}
      for i = 1, #keys do
        local key = to_string(keys[i](r))
        if key == nil then fail("a map key cannot be null") end
        out[key] = vals[i](r)
      end
      return out
    end
  end
  compile_error("unsupported expression node " .. tostring(k))
end

-- compile.tree(tree) -> fn | nil, message
function M.tree(tree)
  local ok, fn = pcall(build, tree)
  if ok then return fn end
  if type(fn) == "table" and fn.compile_error then return nil, fn.compile_error end
  return nil, "cannot compile the expression: " .. tostring(fn)
end

-- compile.expression(src) -> fn(record) -> value | nil, message
function M.expression(src)
  local tree, err = parser.parse(src)
  if not tree then return nil, err end
  local fn, cerr = M.tree(tree)
  if not fn then return nil, cerr end
  return fn, nil, tree
end

return M
