-- aep.stream.mapping: load a record -> XDM mapping for `aep stream`.
--
-- A mapping is a plain Lua file returning `function(record, ctx) -> entity | nil` (or a table with
-- a `map` function of that shape). It returns the XDM entity (a table, or JSON text), nil to skip
-- the record (counted as skipped), or raises an error (the record is rejected with that message).
-- ctx is one table reused for every record: ctx.position (input position, 1-based), ctx.line
-- (line number in the input), ctx.input (path), ctx.dataset_id, ctx.schema_id, ctx.origin (the
-- first input's position when replaying a reject file). Copy what you keep.
-- The file runs in its own environment (globals it sets stay its own; it can require modules).
local encode = require("cjson").encode
local json_encode = require("aep.json").encode

local M = {}

-- mapping.load(path) -> map function | nil, err
function M.load(path)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, "cannot load mapping " .. path .. ": " .. tostring(err) end
  local ok, result = pcall(chunk)
  if not ok then return nil, "mapping " .. path .. " failed while loading: " .. tostring(result) end
  if type(result) == "table" and type(result.map) == "function" then
    local t = result
    return function(record, ctx) return t.map(record, ctx) end
  end
  if type(result) ~= "function" then
    return nil, "mapping " .. path .. " must return a function(record, ctx) (it returned " .. type(result) .. ")"
  end
  return result
end

-- mapping.encoder(map) -> function(record, ctx[, marked]) -> the entity's JSON text | nil (skip)
-- The mapping and the encoding of its result, for the loops to run under one pcall; a result that
-- is neither a table, JSON text nor nil raises. marked: the record held empty arrays, kept as
-- aep.json.array({}), which aep.json writes as [] (cjson, faster, would write {}).
function M.encoder(map)
  return function(rec, ctx, marked)
    local e = map(rec, ctx)
    if e == nil then return nil end
    local te = type(e)
    if te == "table" then return marked and json_encode(e) or encode(e) end
    if te == "string" then return e end
    error("the mapping returned a " .. te .. " (expected the entity table, its JSON text, or nil to skip)", 0)
  end
end

-- mapping.reason(err) -> a one-line reject reason for an error a mapping raised
function M.reason(err)
  if type(err) == "table" then
    local mt = getmetatable(err)
    if mt and mt.__tostring then err = tostring(err)
    elseif err.message then err = err.message
    else err = "(error object is a table)" end
  end
  err = tostring(err):gsub("\n.*$", "")
  return "mapping error: " .. err
end

return M
