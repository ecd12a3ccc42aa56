-- aep.emulator.classes: the Schema Registry's custom classes and data types (docs/AEP-API-FACTS.md
-- §3): create, list, get (the Accept variants of the other resources), replace (PUT), JSON Patch and
-- delete in the tenant container. Adobe's own classes and data types (the global container) are
-- served by schemas.lua. A custom class is what a schema's allOf may name as its class; a custom
-- data type is what a field's $ref may name: registry.lookup finds both, so the validator resolves
-- records through them.
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"
local views = require "aep.emulator.schema_views"
local schemas = require "aep.emulator.schemas"
local standard = require "aep.xdm.standard"

local M = {}

local BASE = "/data/foundation/schemaregistry"
local JSON_HEADERS = errors.JSON_HEADERS
local H = schemas.helpers
local deepcopy = registry.deepcopy

local KINDS = {
  classes = { kind = "class", rt = "classes", what = "class", title = "The class" },
  datatypes = { kind = "datatype", rt = "datatypes", what = "data type", title = "The data type" },
}

local function behavior(id)
  local doc = standard[id]
  return type(doc) == "table" and doc["meta:resourceType"] == "behaviors" and doc["$id"] ~= nil
    and id ~= "https://ns.adobe.com/xdm/common/extensible"
end

local function bad(detail) return errors.xdm("XDM-1001-400", "Bad Request", detail) end

-- every "$ref" in a document (its allOf and its fields), in document order of discovery
local function refs_in(node, out, depth)
  out = out or {}
  depth = depth or 0
  if type(node) ~= "table" or depth > 60 then return out end
  if type(node["$ref"]) == "string" then out[#out + 1] = node["$ref"] end
  for k, v in pairs(node) do
    if k ~= "$ref" and type(v) == "table" then refs_in(v, out, depth + 1) end
  end
  return out
end

local function add_unique(list, seen, id)
  if id and not seen[id] then seen[id] = true; list[#list + 1] = id end
end

-- A class: allOf names exactly one behavior (record, time-series or ad hoc), plus local definitions
-- and field groups; custom fields sit under _{TENANT}. -> nil | error triple (fills derived fields)
local function check_class(ctx, doc)
  if type(doc.allOf) ~= "table" or not json.is_array(doc.allOf) or #doc.allOf == 0 then
    return errors.xdm("XDM-1013-400", "Bad Request",
      "A class needs allOf with a $ref to its behavior: https://ns.adobe.com/xdm/data/record or https://ns.adobe.com/xdm/data/time-series")
  end
  local behaviors, extends, seen, local_refs = {}, json.array {}, {}, json.array {}
  for _, item in ipairs(doc.allOf) do
    local ref = type(item) == "table" and item["$ref"]
    if type(ref) ~= "string" then return bad("Every allOf item must be {\"$ref\": ...}") end
    if ref:sub(1, 1) == "#" then
      local_refs[#local_refs + 1] = { ["$ref"] = ref }
    elseif behavior(ref) then
      behaviors[#behaviors + 1] = ref
    else
      local target = registry.lookup(ctx.sandbox, ref)
      if not target then
        return errors.xdm("XDM-1012-400", "Reference not found", "The referenced resource " .. ref .. " does not exist")
      end
      local rt = target["meta:resourceType"]
      if rt == "schemas" or registry.is_class(target) then
        return errors.xdm("XDM-1013-400", "Bad Request", "A class cannot include the " ..
          (rt == "schemas" and "schema " or "class ") .. ref .. ": name a behavior, field groups or local definitions")
      end
      add_unique(extends, seen, target["$id"])
    end
  end
  if #behaviors ~= 1 then
    return errors.xdm("XDM-1013-400", "Bad Request",
      "A class must reference exactly one behavior in allOf (https://ns.adobe.com/xdm/data/record, " ..
      "https://ns.adobe.com/xdm/data/time-series or https://ns.adobe.com/xdm/data/adhoc); found " .. #behaviors)
  end
  local own, rerr = registry.resolve(ctx.sandbox,
    { definitions = doc.definitions, properties = doc.properties, allOf = local_refs })
  if not own then return errors.xdm("XDM-1012-400", "Bad Request", rerr) end
  if own.properties then
    local s, h, b = H.check_fields(ctx, own, "The class")
    if s then return s, h, b end
  end
  local full, ferr = registry.resolve(ctx.sandbox, doc)
  if not full then return errors.xdm("XDM-1012-400", "Bad Request", ferr) end
  local all = json.array {}
  local seen_all = {}
  add_unique(all, seen_all, behaviors[1])
  for _, id in ipairs(extends) do add_unique(all, seen_all, id) end
  doc["meta:extends"] = all
  doc["meta:abstract"], doc["meta:extensible"], doc["meta:xdmType"] = true, true, "object"
end

-- A data type: an object whose fields resolve (other data types by $ref). -> nil | error triple
local function check_datatype(ctx, doc, own_id)
  if doc.type ~= nil and doc.type ~= "object" then
    return bad("A data type is an object: type must be \"object\"")
  end
  local extends, seen = json.array {}, {}
  for _, ref in ipairs(refs_in(doc)) do
    if ref:sub(1, 1) ~= "#" then
      local uri = ref:match("^([^#]*)")
      if uri == own_id then return bad("A data type cannot reference itself: " .. uri) end
      local target = registry.lookup(ctx.sandbox, uri)
      if target and target["meta:resourceType"] == "datatypes" then add_unique(extends, seen, target["$id"]) end
    end
  end
  local full, err = registry.resolve(ctx.sandbox, doc)
  if not full then return errors.xdm("XDM-1012-400", "Bad Request", err) end
  if type(full.properties) ~= "table" or next(full.properties) == nil then
    return bad("A data type needs at least one field (properties, or allOf with definitions)")
  end
  doc["meta:extends"] = extends
  doc["meta:abstract"], doc["meta:extensible"], doc["meta:xdmType"] = true, true, "object"
end

local function validate(ctx, k, doc, old)
  if type(doc) ~= "table" or json.is_array(doc) then return bad("The request body must be a JSON object") end
  if type(doc.title) ~= "string" or doc.title == "" then return bad("The title is required") end
  if H.title_taken(ctx, doc.title, old and old["$id"]) then
    return errors.xdm("XDM-1521-400", "Title not unique",
      "The title '" .. doc.title .. "' is already used by another resource in this sandbox")
  end
  if k.kind == "class" then return check_class(ctx, doc) end
  return check_datatype(ctx, doc, old and old["$id"])
end

local function changed(ctx) registry.invalidate(ctx.sandbox) end

local function save(ctx, k, doc, old)
  if old then
    doc["$id"], doc["meta:altId"], doc.version = old["$id"], old["meta:altId"], H.bump(old.version)
  else
    doc["$id"], doc["meta:altId"] = H.new_ids(ctx, k.rt)
    doc.version = "1.0"
  end
  H.base_doc(ctx, doc, k.rt)
  doc["meta:registryMetadata"] = H.registry_meta(ctx, old and old["meta:registryMetadata"])
  ctx.store.put(ctx.sandbox, k.kind, doc["$id"], doc)
  changed(ctx)
  return doc
end

local function create(k)
  return function(req, ctx)
    local doc, err = req:json_body()
    if doc == nil then return err end
    if type(doc) ~= "table" then return bad("The request body must be a JSON object") end
    doc = deepcopy(doc)
    doc["$id"], doc["meta:altId"], doc.version = nil, nil, nil
    local s, h, b = validate(ctx, k, doc)
    if s then return s, h, b end
    return 201, JSON_HEADERS, save(ctx, k, doc)
  end
end

local function list(k)
  return function(req, ctx) return views.listing(ctx, req, ctx.store.list(ctx.sandbox, k.kind)) end
end

local function get(k)
  return function(req, ctx)
    local doc = registry.tenant(ctx.sandbox, k.kind, req.params.id)
    if not doc then return views.not_found(k.what, req.params.id) end
    local a, err = views.single_accept(req)
    if not a then return err end
    return 200, JSON_HEADERS, views.present(ctx, doc, a)
  end
end

local function put(k)
  return function(req, ctx)
    local old = registry.tenant(ctx.sandbox, k.kind, req.params.id)
    if not old then return views.not_found(k.what, req.params.id) end
    local doc, err = req:json_body()
    if doc == nil then return err end
    doc = deepcopy(doc)
    local s, h, b = validate(ctx, k, doc, old)
    if s then return s, h, b end
    return 200, JSON_HEADERS, save(ctx, k, doc, old)
  end
end

local READ_ONLY = { ["/$id"] = true, ["/meta:altId"] = true, ["/version"] = true, ["/meta:resourceType"] = true,
                    ["/meta:containerId"] = true, ["/imsOrg"] = true }

local function patch(k)
  return function(req, ctx)
    local old = registry.tenant(ctx.sandbox, k.kind, req.params.id)
    if not old then return views.not_found(k.what, req.params.id) end
    local ops, err = req:json_body()
    if ops == nil then return err end
    if type(ops) ~= "table" or not json.is_array(ops) then return bad("PATCH takes a JSON Patch array") end
    local doc = deepcopy(old)
    for _, op in ipairs(ops) do
      if type(op) ~= "table" then return bad("Invalid JSON Patch operation") end
      if READ_ONLY[op.path] then
        return errors.xdm("XDM-1003-400", "Bad Request", "The field " .. op.path .. " is read-only")
      end
      local ok, why = schemas.patch_op(doc, op)
      if not ok then return errors.xdm("XDM-1002-400", "Bad Request", "Invalid JSON Patch: " .. why) end
    end
    local s, h, b = validate(ctx, k, doc, old)
    if s then return s, h, b end
    return 200, JSON_HEADERS, save(ctx, k, doc, old)
  end
end

-- the first tenant resource that uses id: a schema of the class, or a $ref to the data type
local function user_of(ctx, k, id)
  for _, kind in ipairs { "schema", "fieldgroup", "class", "datatype" } do
    for _, d in ipairs(ctx.store.list(ctx.sandbox, kind)) do
      if d["$id"] ~= id then
        if k.kind == "class" then
          if d["meta:class"] == id then return d end
          for _, c in ipairs(d["meta:intendedToExtend"] or {}) do if c == id then return d end end
        end
        for _, ref in ipairs(refs_in(d)) do
          if ref:match("^([^#]*)") == id then return d end
        end
      end
    end
  end
end

local function delete(k)
  return function(req, ctx)
    local doc = registry.tenant(ctx.sandbox, k.kind, req.params.id)
    if not doc then return views.not_found(k.what, req.params.id) end
    local id = doc["$id"]
    local user = user_of(ctx, k, id)
    if user then
      return errors.xdm("XDM-1015-400", "Bad Request", string.format("%s %s is used by the %s %s: remove it there first",
        k.title, id, (user["meta:resourceType"] or "resource"):gsub("s$", ""):gsub("mixin", "field group"), user["$id"]))
    end
    ctx.store.delete(ctx.sandbox, k.kind, id)
    changed(ctx)
    return 204, {}, ""
  end
end

function M.install(app)
  local o = { auth = "platform", body = "json", group = "schemas" }
  for pk, k in pairs(KINDS) do
    local p = BASE .. "/tenant/" .. pk
    app:route("POST", p, create(k), o)
    app:route("GET", p, list(k), o)
    for _, pat in ipairs { p .. "/:id", p .. "/*id" } do
      local wrap = pat:find("*", 1, true) and H.rejoin or function(h) return h end
      app:route("GET", pat, wrap(get(k)), o)
      app:route("PUT", pat, wrap(put(k)), o)
      app:route("PATCH", pat, wrap(patch(k)), o)
      app:route("DELETE", pat, wrap(delete(k)), o)
    end
  end
end

return M
