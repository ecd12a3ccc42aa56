-- aep.emulator.registry: what the Schema Registry knows, for the other emulator modules.
--   registry.lookup(sandbox, id)            -> raw doc (tenant resource or Adobe global) | nil
--   registry.resolve(sandbox, doc)          -> doc with $ref/allOf resolved (xed-full form)
--   registry.resolve_schema(ctx, schema_id) -> resolved schema (cached) | nil, message
--   registry.primary_identity(ctx, schema_id) -> {path="/_t/loyaltyID", namespace="Email"} | nil
--   registry.identity_descriptors(ctx, schema_id) -> array of identity descriptors
--   registry.invalidate(sandbox)           -- after any schema/field group/descriptor change
-- Global classes and field groups come from aep.xdm.standard; resolution goes through
-- aep.xdm.resolve when that module offers it (so the validator sees its own format), else
-- through the small resolver below.
local json = require "aep.json"

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
  local ok, std = pcall(require, "aep.xdm.standard")
  if not ok or type(std) ~= "table" then
    if not ok and not tostring(std):find("module 'aep.xdm.standard' not found", 1, true) then
      error(std, 0)
    end
    return
  end
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

-- registry.tenant(sandbox, kind, id) -> doc | nil   (kind "schema" | "fieldgroup"; id or altId)
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
  local doc = M.tenant(sandbox, "fieldgroup", id) or M.tenant(sandbox, "schema", id)
  if doc then return doc, "tenant" end
  doc = M.global(id)
  if doc then return doc, "global" end
  return nil
end

-- ---------------------------------------------------------------------------------------------
-- Resolution (fallback resolver; aep.xdm.resolve is preferred when present)

local SKIP_ON_REF = { ["$id"] = true, ["$schema"] = true, ["meta:altId"] = true, ["meta:resourceType"] = true,
  version = true, definitions = true, allOf = true, ["$ref"] = true, ["meta:extends"] = true,
  ["meta:registryMetadata"] = true, ["meta:intendedToExtend"] = true, ["meta:containerId"] = true,
  imsOrg = true, ["meta:tenantNamespace"] = true, ["meta:sandboxId"] = true, ["meta:sandboxType"] = true,
  ["meta:abstract"] = true, ["meta:extensible"] = true, ["meta:class"] = true, ["meta:immutableTags"] = true }

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deepcopy(x) end
  return setmetatable(out, getmetatable(v))
end
M.deepcopy = deepcopy

local function pointer(doc, ref)
  local node = doc
  for part in ref:sub(3):gmatch("[^/]+") do
    part = part:gsub("~1", "/"):gsub("~0", "~")
    if type(node) ~= "table" then return nil end
    node = node[part]
  end
  return node
end

local flatten

-- merge b into a: properties deep-merged, required unioned, other keys only when a lacks them
local function merge_into(a, b, structural_only)
  if type(b) ~= "table" then return end
  if b.properties then
    a.properties = a.properties or {}
    for name, prop in pairs(b.properties) do
      local cur = a.properties[name]
      if cur and type(cur) == "table" and type(prop) == "table" then
        merge_into(cur, prop, false)
      else
        a.properties[name] = prop
      end
    end
  end
  if type(b.required) == "table" and #b.required > 0 then
    local seen = {}
    a.required = a.required or json.array {}
    for _, r in ipairs(a.required) do seen[r] = true end
    for _, r in ipairs(b.required) do
      if not seen[r] then seen[r] = true; a.required[#a.required + 1] = r end
    end
  end
  for k, v in pairs(b) do
    if k ~= "properties" and k ~= "required" and a[k] == nil then
      if not structural_only or k == "type" or k == "meta:xdmType" then a[k] = v end
    end
  end
end

-- flatten(node, ctxdoc, sandbox, depth) -> new table with $ref/allOf resolved
flatten = function(node, ctxdoc, sandbox, depth)
  if type(node) ~= "table" then return node end
  if depth > 40 then error("schema references nest too deeply (cycle?)", 0) end
  if json.is_array(node) and node[1] ~= nil then
    local out = json.array {}
    for i, x in ipairs(node) do out[i] = flatten(x, ctxdoc, sandbox, depth + 1) end
    return out
  end
  local out = setmetatable({}, getmetatable(node))
  for k, v in pairs(node) do
    if k == "properties" then
      local props = {}
      for name, p in pairs(v) do props[name] = flatten(p, ctxdoc, sandbox, depth + 1) end
      out.properties = props
    elseif k == "items" or k == "additionalProperties" then
      out[k] = flatten(v, ctxdoc, sandbox, depth + 1)
    elseif k ~= "allOf" and k ~= "$ref" and k ~= "definitions" then
      out[k] = v
    end
  end
  local ref = node["$ref"]
  if type(ref) == "string" then
    local target, tctx
    if ref:sub(1, 2) == "#/" then
      target, tctx = pointer(ctxdoc, ref), ctxdoc
    else
      target = M.lookup(sandbox, ref)
      tctx = target
    end
    if target then
      local resolved = flatten(target, tctx, sandbox, depth + 1)
      for k in pairs(SKIP_ON_REF) do resolved[k] = nil end
      merge_into(out, resolved, false)
    end
  end
  if type(node.allOf) == "table" then
    for _, item in ipairs(node.allOf) do
      local r = item["$ref"]
      local target, tctx = item, ctxdoc
      if type(r) == "string" then
        if r:sub(1, 2) == "#/" then
          target = pointer(ctxdoc, r)
        else
          target = M.lookup(sandbox, r)
          tctx = target
        end
      end
      if target then merge_into(out, flatten(target, tctx, sandbox, depth + 1), true) end
    end
  end
  return out
end

local xdm_resolve = false -- false: not looked up yet; nil: aep.xdm has no resolve
local function get_xdm_resolve()
  if xdm_resolve == false then
    local ok, xdm = pcall(require, "aep.xdm")
    xdm_resolve = ok and type(xdm) == "table" and type(xdm.resolve) == "function" and xdm.resolve or nil
  end
  return xdm_resolve
end

-- registry.resolve(sandbox, doc) -> resolved copy of doc
function M.resolve(sandbox, doc)
  local resolve = get_xdm_resolve()
  if resolve then
    local ok, full = pcall(resolve, doc, function(id) return (M.lookup(sandbox, id)) end)
    if ok and type(full) == "table" then return full end
  end
  local full = flatten(doc, doc, sandbox, 0)
  full.type = full.type or "object"
  return full
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
  full = M.resolve(sandbox, doc)
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
