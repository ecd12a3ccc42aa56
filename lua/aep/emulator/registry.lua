-- aep.emulator.registry: what the Schema Registry knows, for the other emulator modules.
--   registry.lookup(sandbox, id)            -> raw doc (tenant resource or Adobe global) | nil
--   registry.resolve(sandbox, doc)          -> doc with $ref/allOf resolved (xed-full form)
--   registry.resolve_schema(ctx, schema_id) -> resolved schema (cached) | nil, message
--   registry.primary_identity(ctx, schema_id) -> {path="/_t/loyaltyID", namespace="Email"} | nil
--   registry.identity_descriptors(ctx, schema_id) -> array of identity descriptors
--   registry.invalidate(sandbox)           -- after any schema/field group/descriptor change
-- Global classes and field groups come from aep.xdm.standard; resolution goes through
-- aep.xdm.resolve (so the validator sees its own format).
local json = require "aep.json"
local xdm = require "aep.xdm"

local M = {}

local ALT_ID_PREFIX = "https://ns.adobe.com/"

-- registry.alt_to_id("_t.schemas.abc") -> "https://ns.adobe.com/t/schemas/abc"
function M.alt_to_id(alt)
  if type(alt) ~= "string" or alt:sub(1, 1) ~= "_" then return nil end
  return ALT_ID_PREFIX .. alt:sub(2):gsub("%.", "/")
end

-- registry.id_to_alt("https://ns.adobe.com/t/schemas/abc") -> "_t.schemas.abc"
function M.id_to_alt(id)
  local rest = type(id) == "string" and id:match("^https?://ns%.adobe%.com/(.+)$")
  if not rest then return nil end
  return "_" .. rest:gsub("/", ".")
end

-- ---------------------------------------------------------------------------------------------
-- Adobe's global resources (aep.xdm.standard), indexed once.

local globals -- { by_id = {}, classes = {}, fieldgroups = {}, datatypes = {} }

local function kind_of(doc)
  local rt = doc["meta:resourceType"]
  if rt == "classes" then return "classes" end
  if rt == "mixins" or rt == "fieldgroups" then return "fieldgroups" end
  if rt == "datatypes" then return "datatypes" end
  if rt == "schemas" then return "schemas" end
  if doc["meta:intendedToExtend"] then return "fieldgroups" end
  if doc["meta:extensible"] == true or doc["meta:abstract"] == true then return "classes" end
  return "datatypes"
end

local function add_global(doc, hint)
  if type(doc) ~= "table" or type(doc["$id"]) ~= "string" then return end
  if globals.by_id[doc["$id"]] then return end
  globals.by_id[doc["$id"]] = doc
  local kind = hint or kind_of(doc)
  globals[kind] = globals[kind] or {}
  table.insert(globals[kind], doc)
end

local function load_globals()
  globals = { by_id = {}, classes = {}, fieldgroups = {}, datatypes = {}, schemas = {} }
  local std = require "aep.xdm.standard"
  local hints = { classes = "classes", fieldgroups = "fieldgroups", mixins = "fieldgroups",
                  datatypes = "datatypes", schemas = "schemas" }
  local function walk(t, hint)
    if type(t) ~= "table" then return end
    if type(t["$id"]) == "string" then add_global(t, hint); return end
    for k, v in pairs(t) do
      if type(v) == "table" then walk(v, hints[k] or hint) end
    end
  end
  local list = (type(std.all) == "function" and std.all()) or (type(std.list) == "function" and std.list())
  walk(list or std, nil)
  for _, kind in ipairs { "classes", "fieldgroups", "datatypes" } do
    table.sort(globals[kind], function(a, b) return a["$id"] < b["$id"] end)
  end
end

-- registry.globals(kind) -> array of Adobe's docs ("classes" | "fieldgroups" | "datatypes")
function M.globals(kind)
  if not globals then load_globals() end
  return globals[kind] or {}
end

-- registry.is_class(doc) -> true for a class (tenant or Adobe's)
function M.is_class(doc)
  if doc["meta:resourceType"] == "classes" then return true end
  for _, c in ipairs(M.globals("classes")) do if c == doc then return true end end
  return false
end

-- registry.global(id) -> doc | nil   (by $id or meta:altId)
function M.global(id)
  if not globals then load_globals() end
  return globals.by_id[id] or globals.by_id[M.alt_to_id(id) or ""]
end

-- ---------------------------------------------------------------------------------------------
-- Lookups across containers

M.store = nil -- set by schemas.install

-- the kinds of resources the tenant container holds (store kinds), in lookup order
M.TENANT_KINDS = { "fieldgroup", "schema", "class", "datatype" }

-- registry.tenant(sandbox, kind, id) -> doc | nil
--   (kind "schema" | "fieldgroup" | "class" | "datatype"; id or altId)
function M.tenant(sandbox, kind, id)
  local store = M.store
  local doc = store.get(sandbox, kind, id)
  if doc then return doc end
  local from_alt = M.alt_to_id(id)
  if from_alt then doc = store.get(sandbox, kind, from_alt) end
  if doc then return doc end
  -- a $id given with "mixins"/"fieldgroups" spelled the other way
  local alt = id:gsub("/fieldgroups/", "/mixins/")
  if alt ~= id then return store.get(sandbox, kind, alt) end
  return nil
end

-- registry.lookup(sandbox, id) -> doc, container ("tenant" | "global") | nil
function M.lookup(sandbox, id)
  if type(id) ~= "string" then return nil end
  for _, kind in ipairs(M.TENANT_KINDS) do
    local doc = M.tenant(sandbox, kind, id)
    if doc then return doc, "tenant" end
  end
  local doc
  doc = M.global(id)
  if doc then return doc, "global" end
  return nil
end

-- ---------------------------------------------------------------------------------------------
-- Resolution: the one resolver, aep.xdm's, shared with the client's `try` and `aep validate`.

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deepcopy(x) end
  return setmetatable(out, getmetatable(v))
end
M.deepcopy = deepcopy

-- registry.resolve(sandbox, doc) -> resolved copy of doc | nil, "unknown reference <id>"
function M.resolve(sandbox, doc)
  return xdm.resolve(doc, function(id) return (M.lookup(sandbox, id)) end)
end

-- ---------------------------------------------------------------------------------------------
-- Cached resolution of tenant schemas (the streaming hot path)

local cache = {} -- sandbox -> { [schema_id] = resolved }

function M.invalidate(sandbox)
  if sandbox then cache[sandbox] = nil else cache = {} end
end

local function sandbox_of(ctx)
  if type(ctx) == "string" then return ctx end
  return ctx and ctx.sandbox or "prod"
end

-- registry.resolve_schema(ctx, schema_id) -> resolved schema | nil, message
function M.resolve_schema(ctx, schema_id)
  local sandbox = sandbox_of(ctx)
  local c = cache[sandbox]
  if not c then c = {}; cache[sandbox] = c end
  local full = c[schema_id]
  if full then return full end
  local doc = M.tenant(sandbox, "schema", schema_id) or M.global(schema_id)
  if not doc then return nil, "schema " .. tostring(schema_id) .. " not found" end
  local err
  full, err = M.resolve(sandbox, doc)
  if not full then return nil, err end
  c[schema_id] = full
  if doc["$id"] ~= schema_id then c[doc["$id"]] = full end
  return full
end

-- registry.identity_descriptors(ctx, schema_id) -> array of xdm:descriptorIdentity docs
function M.identity_descriptors(ctx, schema_id)
  local sandbox = sandbox_of(ctx)
  local doc = M.tenant(sandbox, "schema", schema_id)
  local id = doc and doc["$id"] or schema_id
  local out = {}
  for _, d in ipairs(M.store.list(sandbox, "descriptor")) do
    if d["@type"] == "xdm:descriptorIdentity" and d["xdm:sourceSchema"] == id then out[#out + 1] = d end
  end
  return out
end

-- registry.primary_identity(ctx, schema_id) -> {path=, namespace=} | nil
function M.primary_identity(ctx, schema_id)
  for _, d in ipairs(M.identity_descriptors(ctx, schema_id)) do
    if d["xdm:isPrimary"] == true then
      return { path = d["xdm:sourceProperty"], namespace = d["xdm:namespace"] }
    end
  end
  return nil
end

-- registry.has_path(full, "/a/b") -> true when the resolved schema defines that field
function M.has_path(full, path)
  local node = full
  for part in path:gmatch("[^/]+") do
    if type(node) ~= "table" then return false end
    if node.type == "array" and node.items then node = node.items end
    node = node.properties and node.properties[part]
    if node == nil then return false end
  end
  return true
end

return M
