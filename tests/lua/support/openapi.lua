-- Spec helper: check a decoded JSON answer against a schema of Adobe's OpenAPI files
-- (/work/shared/reference/openapi, read with lyaml). The check is about shapes: every field the
-- schema declares and the answer holds has the declared type (recursively, $ref and allOf
-- followed, maps through additionalProperties); fields the schema does not declare are allowed
-- (the docs spell some differently), and so are absent ones.
--
--   local openapi = require "support.openapi"
--   local problems = openapi.check("flow-service.yaml", "FlowRunItemDTO", run)   -- {} when it conforms
local M = {}

M.DIR = os.getenv("AEP_OPENAPI_DIR") or "/work/shared/reference/openapi"

local docs = {}

-- openapi.available() -> true when the spec files and lyaml are there
function M.available()
  local ok = pcall(require, "lyaml")
  local f = io.open(M.DIR .. "/catalog.yaml")
  if f then f:close() end
  return ok and f ~= nil
end

local function load(file)
  if docs[file] then return docs[file] end
  local f = assert(io.open(M.DIR .. "/" .. file, "rb"))
  local doc = require("lyaml").load(f:read("a"))
  f:close()
  docs[file] = doc
  return doc
end

local function resolve(doc, schema)
  for _ = 1, 20 do
    if type(schema) ~= "table" or not schema["$ref"] then return schema end
    local name = schema["$ref"]:match("^#/components/schemas/(.+)$")
    schema = name and doc.components.schemas[name] or nil
  end
  return schema
end

local function is_array(v)
  if type(v) ~= "table" then return false end
  local json = require "aep.json"
  if getmetatable(v) == json.array_mt then return true end
  return next(v) == nil or v[1] ~= nil
end

local function type_ok(t, v)
  if t == "string" then return type(v) == "string" end
  if t == "integer" then return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v)) end
  if t == "number" then return type(v) == "number" end
  if t == "boolean" then return type(v) == "boolean" end
  if t == "array" then return is_array(v) end
  if t == "object" then return type(v) == "table" and (next(v) == nil or v[1] == nil) end
  return true
end

local function walk(doc, schema, v, path, out, depth)
  schema = resolve(doc, schema)
  if type(schema) ~= "table" or depth > 30 then return end
  for _, sub in ipairs(schema.allOf or {}) do walk(doc, sub, v, path, out, depth + 1) end
  if v == nil or v == require("aep.json").null then return end
  if schema.type and not type_ok(schema.type, v) then
    out[#out + 1] = path .. ": expected " .. schema.type .. ", got " .. (math.type(v) or type(v))
    return
  end
  if schema.enum and type(v) == "string" then
    local hit = false
    for _, e in ipairs(schema.enum) do if e == v then hit = true end end
    if not hit then out[#out + 1] = path .. ": " .. v .. " is not one of the enum's values" end
  end
  if type(v) ~= "table" then return end
  if schema.items and is_array(v) then
    for i, item in ipairs(v) do walk(doc, schema.items, item, path .. "[" .. i .. "]", out, depth + 1) end
  end
  if schema.properties then
    for k, sub in pairs(schema.properties) do
      if v[k] ~= nil then walk(doc, sub, v[k], path .. "." .. k, out, depth + 1) end
    end
  end
  if type(schema.additionalProperties) == "table" and not is_array(v) then
    for k, item in pairs(v) do
      if not (schema.properties and schema.properties[k]) then
        walk(doc, schema.additionalProperties, item, path .. "." .. tostring(k), out, depth + 1)
      end
    end
  end
end

-- openapi.check(file, schema_name, value) -> problems (an array of "path: what" strings)
function M.check(file, name, value)
  local doc = load(file)
  local schema = doc.components.schemas[name]
  assert(schema, file .. " has no schema " .. name)
  local out = {}
  walk(doc, schema, value, name, out, 0)
  return out
end

return M
