-- aep.emulator.flow_query: Flow Service's filters for listings and searches (sort-and-filter.md):
--   GET ...?property=PATH OP VALUE (repeatable, all must hold), ?limit=N, ?count=true
--   POST .../search {queryString, limit, count}: queryString holds the same expressions, joined by
--   "&" (EMULATOR CHOICE: Adobe documents the field's name only, in flow-service.yaml).
-- Expressions: ==, !=, >, >=, <, <=; == and != take a comma-separated list; a bare PATH means
-- "exists", !PATH "absent"; string comparisons ignore case.
local json = require "aep.json"

local M = {}

-- flow_query.parse(expr) -> {path, op, value} | nil
function M.parse(expr)
  local path, op, value = expr:match("^%s*([%w_.]+)%s*([=!<>]=?)%s*(.-)%s*$")
  if path and (op == "==" or op == "!=" or op == ">" or op == ">=" or op == "<" or op == "<=") then
    -- the guides quote string values: property=name=="CloudStorageToAEP"
    return { path = path, op = op, value = (value:gsub('^"(.*)"$', "%1")) }
  end
  local neg, p = expr:match("^%s*(!?)([%w_.]+)%s*$")
  if p then return { path = p, op = neg == "!" and "absent" or "exists" } end
  return nil
end

local function get_path(doc, path)
  local v = doc
  for seg in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[tonumber(seg) and tonumber(seg) + 1 or seg]
  end
  return v
end

-- flow_query.matches(doc, filter) -> boolean
function M.matches(doc, f)
  local v = get_path(doc, f.path)
  if f.op == "exists" then return v ~= nil end
  if f.op == "absent" then return v == nil end
  if v == nil or type(v) == "table" then return f.op == "!=" end
  if f.op == "==" or f.op == "!=" then
    local hit = false
    for item in (f.value .. ","):gmatch("([^,]*),") do
      if tostring(v):lower() == item:lower() then hit = true end
    end
    return (f.op == "==") == hit
  end
  local a, b = tonumber(v), tonumber(f.value)
  if not (a and b) then a, b = tostring(v), f.value end
  if f.op == ">" then return a > b elseif f.op == ">=" then return a >= b
  elseif f.op == "<" then return a < b else return a <= b end
end

local function parse_all(exprs)
  local out = {}
  for _, e in ipairs(exprs) do
    local f = M.parse(e)
    if not f then return nil, "Invalid property filter [" .. e .. "]: expected PATH==VALUE (or !=, >, >=, <, <=)" end
    out[#out + 1] = f
  end
  return out
end

-- flow_query.from_query(req) -> filters | nil, message
function M.from_query(req)
  local raw = req.query_all and req.query_all.property
  if type(raw) ~= "table" then raw = req.query and req.query.property and { req.query.property } or {} end
  return parse_all(raw)
end

-- flow_query.from_search(body) -> filters | nil, message
function M.from_search(body)
  if type(body) ~= "table" or json.is_array(body) then return nil, "The request body must be a JSON object" end
  local q = body.queryString
  if q == nil or q == json.null or q == "" then return {} end
  if type(q) ~= "string" then return nil, "queryString must be a string" end
  local exprs = {}
  for e in q:gmatch("[^&]+") do exprs[#exprs + 1] = e end
  return parse_all(exprs)
end

-- flow_query.select(docs, filters) -> json array of the docs every filter matches
function M.select(docs, filters)
  local out = json.array {}
  for _, d in ipairs(docs) do
    local ok = true
    for _, f in ipairs(filters) do if not M.matches(d, f) then ok = false; break end end
    if ok then out[#out + 1] = d end
  end
  return out
end

-- flow_query.answer(items, opts) -> {items} (at most opts.limit) or {count} when opts.count
function M.answer(items, opts)
  opts = type(opts) == "table" and opts or {}
  if opts.count == true or opts.count == "true" then return { count = #items } end
  local limit = tonumber(opts.limit)
  if limit and limit >= 0 and #items > limit then
    local cut = json.array {}
    for i = 1, limit do cut[i] = items[i] end
    items = cut
  end
  return { items = items }
end

return M
