-- aep.emulator.schemas: the Schema Registry (docs/AEP-API-FACTS.md §3): /stats, tenant field
-- groups (and the legacy /mixins), schemas with PATCH/PUT/DELETE, and Adobe's global classes and
-- field groups. How reads answer (the Accept variants, listings) is schema_views.lua; descriptors
-- (§4) are their own service, descriptors.lua.
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"
local ids = require "aep.emulator.ids"
local views = require "aep.emulator.schema_views"

local M = {}

local BASE = "/data/foundation/schemaregistry"
local IDENTITYMAP = "https://ns.adobe.com/xdm/context/identitymap"
local JSON_HEADERS = errors.JSON_HEADERS

local hex = ids.hex

local now_ms = ids.now_ms

local deepcopy = registry.deepcopy
local single_accept, present, listing, not_found = views.single_accept, views.present, views.listing,
  views.not_found

-- ---------------------------------------------------------------------------------------------
-- Helpers

local KIND = { schemas = "schema", fieldgroups = "fieldgroup", mixins = "fieldgroup" }

local function registry_meta(ctx, created)
  local t = now_ms()
  local client = ctx.org.client_id
  return {
    ["repo:createdDate"] = created and created["repo:createdDate"] or t,
    ["repo:lastModifiedDate"] = t,
    ["xdm:createdClientId"] = created and created["xdm:createdClientId"] or client,
    ["xdm:lastModifiedClientId"] = client,
    ["xdm:createdUserId"] = created and created["xdm:createdUserId"] or ctx.org.technical_account_id,
    ["xdm:lastModifiedUserId"] = ctx.org.technical_account_id,
    eTag = hex(16),
    ["meta:globalLibVersion"] = "1.50.1",
  }
end

local function bump(version)
  local major, minor = tostring(version or "1.0"):match("^(%d+)%.(%d+)")
  if not major then return "1.1" end
  return major .. "." .. (tonumber(minor) + 1)
end

-- every title in the sandbox's tenant container, except the resource being replaced
local function title_taken(ctx, title, except_id)
  for _, kind in ipairs(registry.TENANT_KINDS) do
    for _, doc in ipairs(ctx.store.list(ctx.sandbox, kind)) do
      if doc.title == title and doc["$id"] ~= except_id then return doc end
    end
  end
  return nil
end

local function changed(ctx)
  registry.invalidate(ctx.sandbox)
end

-- custom fields must sit under _{TENANT}; names inside follow the field naming rules
local function check_fields(ctx, full, what)
  local tenant_key = "_" .. ctx.org.tenant
  for name in pairs(full.properties or {}) do
    if name ~= tenant_key then
      return errors.xdm("XDM-1020-400", "Invalid field",
        string.format("%s defines the field '%s' outside the tenant namespace: custom fields must sit under '%s'",
          what, name, tenant_key))
    end
  end
  local function walk(node, path, depth)
    if depth > 30 or type(node) ~= "table" then return end
    local props = node.properties
    if node.type == "array" and type(node.items) == "table" then props = node.items.properties end
    for name, prop in pairs(props or {}) do
      local p = path .. "/" .. name
      if name:sub(1, 1) == "_" or not name:match("^[%w_%-]+$") then
        return errors.xdm("XDM-1021-400", "Invalid field name",
          "Field name '" .. p .. "' is invalid: use letters, digits, '-' and '_', not starting with '_'")
      end
      if type(prop) ~= "table" or prop.type == nil then
        return errors.xdm("XDM-1023-400", "Invalid field", "Field '" .. p .. "' has no type")
      end
      local s, h, b = walk(prop, p, depth + 1)
      if s then return s, h, b end
    end
  end
  local tenant_node = full.properties and full.properties[tenant_key]
  if tenant_node then return walk(tenant_node, "/" .. tenant_key, 0) end
end

local function has_identity(ctx, doc, full)
  for _, e in ipairs(doc["meta:extends"] or {}) do
    if e == IDENTITYMAP then return true end
  end
  local props = full and full.properties or {}
  if props.identityMap or props["xdm:identityMap"] then return true end
  return doc["$id"] ~= nil and registry.primary_identity(ctx, doc["$id"]) ~= nil
end

local function has_union(doc)
  for _, t in ipairs(doc["meta:immutableTags"] or {}) do
    if t == "union" then return true end
  end
  return false
end

-- Checks allOf of a schema and derives meta:class / meta:extends. -> nil | error triple
local function link_schema(ctx, doc)
  if type(doc.allOf) ~= "table" then
    return errors.xdm("XDM-1013-400", "Bad Request", "A schema needs allOf with exactly one class")
  end
  local class, fieldgroups = nil, {}
  for _, item in ipairs(doc.allOf) do
    local ref = type(item) == "table" and item["$ref"]
    if type(ref) ~= "string" then
      return errors.xdm("XDM-1012-400", "Bad Request", "Every allOf item must be {\"$ref\": ...}")
    end
    local target = registry.lookup(ctx.sandbox, ref)
    if not target then
      return errors.xdm("XDM-1012-400", "Reference not found", "The referenced resource " .. ref .. " does not exist")
    end
    local rt = target["meta:resourceType"]
    local is_class = registry.is_class(target)
    if is_class then
      if class then
        return errors.xdm("XDM-1013-400", "Bad Request", "A schema must reference exactly one class")
      end
      class = target
    elseif rt == "schemas" then
      return errors.xdm("XDM-1012-400", "Bad Request", "A schema cannot include the schema " .. ref)
    else
      fieldgroups[#fieldgroups + 1] = target
    end
  end
  if not class then
    return errors.xdm("XDM-1013-400", "Bad Request", "A schema must reference exactly one class")
  end
  local class_id = class["$id"]
  for _, fg in ipairs(fieldgroups) do
    local ext = fg["meta:intendedToExtend"]
    if type(ext) == "table" and #ext > 0 then
      local ok = false
      for _, c in ipairs(ext) do if c == class_id then ok = true end end
      if not ok then
        return errors.xdm("XDM-1014-400", "Bad Request",
          "Field group " .. fg["$id"] .. " is not intended to extend the class " .. class_id)
      end
    end
  end
  local extends, seen = json.array {}, {}
  local function add(id) if id and not seen[id] then seen[id] = true; extends[#extends + 1] = id end end
  for _, e in ipairs(class["meta:extends"] or {}) do add(e) end
  add(class_id)
  for _, fg in ipairs(fieldgroups) do
    add(fg["$id"])
    for _, e in ipairs(fg["meta:extends"] or {}) do add(e) end
  end
  for _, e in ipairs(doc["meta:extends"] or {}) do add(e) end
  doc["meta:class"] = class_id
  doc["meta:extends"] = extends
end

-- ---------------------------------------------------------------------------------------------
-- Tenant field groups and schemas

local function new_ids(ctx, path_kind)
  local h = hex(16)
  local id = "https://ns.adobe.com/" .. ctx.org.tenant .. "/" .. path_kind .. "/" .. h
  return id, "_" .. ctx.org.tenant .. "." .. path_kind .. "." .. h
end

local function base_doc(ctx, doc, rt)
  doc["meta:resourceType"] = rt
  doc["meta:containerId"] = "tenant"
  doc["meta:tenantNamespace"] = "_" .. ctx.org.tenant
  doc["meta:sandboxId"] = ctx.sandbox
  doc["meta:sandboxType"] = ctx.sandbox == "prod" and "production" or "development"
  doc.imsOrg = ctx.org.org_id
  doc.type = doc.type or "object"
end

-- validate(ctx, kind, doc, except_id) -> nil | error triple (also fills derived fields)
local function validate(ctx, kind, doc, except_id, previous)
  if type(doc) ~= "table" or json.is_array(doc) then
    return errors.xdm("XDM-1001-400", "Bad Request", "The request body must be a JSON object")
  end
  if type(doc.title) ~= "string" or doc.title == "" then
    return errors.xdm("XDM-1001-400", "Bad Request", "The title is required")
  end
  if title_taken(ctx, doc.title, except_id) then
    return errors.xdm("XDM-1521-400", "Title not unique",
      "The title '" .. doc.title .. "' is already used by another resource in this sandbox")
  end
  if kind == "schema" then
    local s, h, b = link_schema(ctx, doc)
    if s then return s, h, b end
    local own, rerr = registry.resolve(ctx.sandbox, { properties = doc.properties, definitions = doc.definitions })
    if not own then return errors.xdm("XDM-1012-400", "Bad Request", rerr) end
    if own.properties then
      s, h, b = check_fields(ctx, own, "The schema")
      if s then return s, h, b end
    end
    if previous and has_union(previous) and not has_union(doc) then
      return errors.xdm("XDM-1529-400", "Bad Request", "The union tag cannot be removed from a schema")
    end
    if has_union(doc) then
      local full, err = registry.resolve(ctx.sandbox, doc)
      if not full then return errors.xdm("XDM-1012-400", "Bad Request", err) end
      if not has_identity(ctx, doc, full) then
        return errors.xdm("XDM-1528-400", "Bad Request",
          "A schema enabled for Profile (meta:immutableTags union) needs a primary identity descriptor or the identityMap field")
      end
    end
  else
    local full, err = registry.resolve(ctx.sandbox, doc)
    if not full then return errors.xdm("XDM-1012-400", "Bad Request", err) end
    local s, h, b = check_fields(ctx, full, "The field group")
    if s then return s, h, b end
    doc["meta:extends"] = doc["meta:extends"] or json.array {}
  end
end

local function create(path_kind)
  local kind = KIND[path_kind]
  return function(req, ctx)
    local doc, err = req:json_body()
    if doc == nil then return err end
    if type(doc) ~= "table" then return errors.xdm("XDM-1001-400", "Bad Request", "The request body must be a JSON object") end
    doc = deepcopy(doc)
    doc["$id"], doc["meta:altId"], doc.version = nil, nil, nil
    local s, h, b = validate(ctx, kind, doc)
    if s then return s, h, b end
    local id, alt = new_ids(ctx, kind == "schema" and "schemas" or "mixins")
    doc["$id"], doc["meta:altId"], doc.version = id, alt, "1.0"
    base_doc(ctx, doc, kind == "schema" and "schemas" or "mixins")
    if kind == "schema" then
      doc["meta:abstract"], doc["meta:extensible"], doc["meta:xdmType"] = false, false, "object"
    end
    doc["meta:registryMetadata"] = registry_meta(ctx)
    ctx.store.put(ctx.sandbox, kind, id, doc)
    changed(ctx)
    return 201, JSON_HEADERS, doc
  end
end

local function list(path_kind)
  local kind = KIND[path_kind]
  return function(req, ctx)
    return listing(ctx, req, ctx.store.list(ctx.sandbox, kind))
  end
end

local function find_tenant(ctx, kind, id)
  return registry.tenant(ctx.sandbox, kind, id)
end

local WHAT = { schema = "schema", fieldgroup = "field group" }

local function get(path_kind)
  local kind = KIND[path_kind]
  return function(req, ctx)
    local doc = find_tenant(ctx, kind, req.params.id)
    if not doc and kind == "schema" then -- unions are looked up through /schemas too
      local unions = ctx.app:module("unions")
      doc = unions and unions.find(ctx, req.params.id)
      if doc then return unions.get(req, ctx) end
    end
    if not doc then return not_found(WHAT[kind], req.params.id) end
    local a, err = single_accept(req)
    if not a then return err end
    return 200, JSON_HEADERS, present(ctx, doc, a)
  end
end

local function save_updated(ctx, kind, old, doc)
  doc["$id"], doc["meta:altId"] = old["$id"], old["meta:altId"]
  doc.version = bump(old.version)
  base_doc(ctx, doc, old["meta:resourceType"])
  doc["meta:registryMetadata"] = registry_meta(ctx, old["meta:registryMetadata"])
  ctx.store.put(ctx.sandbox, kind, old["$id"], doc)
  changed(ctx)
  return 200, JSON_HEADERS, doc
end

local function put(path_kind)
  local kind = KIND[path_kind]
  return function(req, ctx)
    local old = find_tenant(ctx, kind, req.params.id)
    if not old then return not_found(WHAT[kind], req.params.id) end
    local doc, err = req:json_body()
    if doc == nil then return err end
    doc = deepcopy(doc)
    local s, h, b = validate(ctx, kind, doc, old["$id"], old)
    if s then return s, h, b end
    return save_updated(ctx, kind, old, doc)
  end
end

-- JSON Patch (RFC 6902): add, remove, replace, test, copy, move
local function parse_pointer(p)
  if p == "" then return {} end
  if p:sub(1, 1) ~= "/" then return nil end
  local parts = {}
  for part in (p:sub(2) .. "/"):gmatch("([^/]*)/") do
    parts[#parts + 1] = part:gsub("~1", "/"):gsub("~0", "~")
  end
  return parts
end

local function walk_to(doc, parts)
  local node = doc
  for i = 1, #parts - 1 do
    local k = parts[i]
    if type(node) ~= "table" then return nil end
    if json.is_array(node) or (next(node) == nil and tonumber(k)) then k = tonumber(k) and tonumber(k) + 1 or k end
    node = node[k]
  end
  if type(node) ~= "table" then return nil end
  return node, parts[#parts]
end

local function is_list(t) return getmetatable(t) == json.array_mt or (t[1] ~= nil) end

local function patch_op(doc, op)
  local parts = type(op.path) == "string" and parse_pointer(op.path)
  if not parts or #parts == 0 then return false, "invalid path " .. tostring(op.path) end
  local parent, key = walk_to(doc, parts)
  if not parent then return false, "path " .. op.path .. " does not exist" end
  local list = is_list(parent)
  if op.op == "add" then
    if list then
      if key == "-" then parent[#parent + 1] = op.value
      else
        local i = tonumber(key)
        if not i or i < 0 or i > #parent then return false, "index out of range in " .. op.path end
        table.insert(parent, i + 1, op.value)
      end
    else
      if type(op.value) == "table" and next(op.value) == nil and key:find("Tags$") then op.value = json.array {} end
      parent[key] = op.value
    end
  elseif op.op == "replace" or op.op == "remove" then
    local k = list and (tonumber(key) or -1) + 1 or key
    if parent[k] == nil then return false, "path " .. op.path .. " does not exist" end
    if op.op == "replace" then parent[k] = op.value
    elseif list then table.remove(parent, k) else parent[k] = nil end
  elseif op.op == "test" then
    local k = list and (tonumber(key) or -1) + 1 or key
    if json.encode(parent[k]) ~= json.encode(op.value) then return false, "test failed at " .. op.path end
  elseif op.op == "copy" or op.op == "move" then
    local from = type(op.from) == "string" and parse_pointer(op.from)
    local fp, fk = from and walk_to(doc, from)
    if not fp then return false, "invalid from " .. tostring(op.from) end
    local fkk = is_list(fp) and (tonumber(fk) or -1) + 1 or fk
    local v = deepcopy(fp[fkk])
    if v == nil then return false, "path " .. op.from .. " does not exist" end
    if op.op == "move" then
      if is_list(fp) then table.remove(fp, fkk) else fp[fkk] = nil end
    end
    return patch_op(doc, { op = "add", path = op.path, value = v })
  else
    return false, "unsupported op " .. tostring(op.op)
  end
  return true
end
M.patch_op = patch_op

local READ_ONLY = { ["/$id"] = true, ["/meta:altId"] = true, ["/version"] = true, ["/meta:resourceType"] = true,
                    ["/meta:containerId"] = true, ["/imsOrg"] = true }

local function patch(path_kind)
  local kind = KIND[path_kind]
  return function(req, ctx)
    local old = find_tenant(ctx, kind, req.params.id)
    if not old then return not_found(WHAT[kind], req.params.id) end
    local ops, err = req:json_body()
    if ops == nil then return err end
    if type(ops) ~= "table" or not json.is_array(ops) then
      return errors.xdm("XDM-1001-400", "Bad Request", "PATCH takes a JSON Patch array")
    end
    local doc = deepcopy(old)
    for _, op in ipairs(ops) do
      if type(op) ~= "table" then return errors.xdm("XDM-1001-400", "Bad Request", "Invalid JSON Patch operation") end
      if READ_ONLY[op.path] then
        return errors.xdm("XDM-1003-400", "Bad Request", "The field " .. op.path .. " is read-only")
      end
      local ok, why = patch_op(doc, op)
      if not ok then return errors.xdm("XDM-1002-400", "Bad Request", "Invalid JSON Patch: " .. why) end
    end
    local s, h, b = validate(ctx, kind, doc, old["$id"], old)
    if s then return s, h, b end
    return save_updated(ctx, kind, old, doc)
  end
end

local function delete(path_kind)
  local kind = KIND[path_kind]
  return function(req, ctx)
    local doc = find_tenant(ctx, kind, req.params.id)
    if not doc then return not_found(WHAT[kind], req.params.id) end
    local id = doc["$id"]
    if kind == "fieldgroup" then
      for _, s in ipairs(ctx.store.list(ctx.sandbox, "schema")) do
        for _, item in ipairs(s.allOf or {}) do
          if item["$ref"] == id then
            return errors.xdm("XDM-1015-400", "Bad Request",
              "The field group " .. id .. " is used by the schema " .. s["$id"])
          end
        end
      end
    end
    ctx.store.transaction(function()
      ctx.store.delete(ctx.sandbox, kind, id)
      if kind == "schema" then
        for _, d in ipairs(ctx.store.list(ctx.sandbox, "descriptor")) do
          if d["xdm:sourceSchema"] == id then ctx.store.delete(ctx.sandbox, "descriptor", d["@id"]) end
        end
      end
    end)
    changed(ctx)
    return 204, {}, ""
  end
end

-- ---------------------------------------------------------------------------------------------
-- Stats and global resources

local function stats(req, ctx)
  local sb = ctx.sandbox
  local schemas = ctx.store.list(sb, "schema")
  local fgs = ctx.store.list(sb, "fieldgroup")
  local unions, class_usage = {}, {}
  for _, s in ipairs(schemas) do
    local c = s["meta:class"]
    if c then
      class_usage[c] = class_usage[c] or json.array {}
      table.insert(class_usage[c], { ["$id"] = s["$id"], title = s.title })
      if has_union(s) then unions[c] = true end
    end
  end
  local n_unions = 0
  for _ in pairs(unions) do n_unions = n_unions + 1 end
  local all = {}
  for _, d in ipairs(schemas) do all[#all + 1] = d end
  for _, kind in ipairs { "fieldgroup", "class", "datatype" } do
    for _, d in ipairs(kind == "fieldgroup" and fgs or ctx.store.list(sb, kind)) do all[#all + 1] = d end
  end
  local function summary(d)
    local m = d["meta:registryMetadata"] or {}
    return { title = d.title, ["$id"] = d["$id"], ["meta:altId"] = d["meta:altId"],
             ["meta:resourceType"] = d["meta:resourceType"], version = d.version,
             ["repo:createdDate"] = m["repo:createdDate"], ["repo:lastModifiedDate"] = m["repo:lastModifiedDate"] }
  end
  local function recent(field)
    local sorted = {}
    for i, d in ipairs(all) do sorted[i] = d end
    table.sort(sorted, function(a, b)
      local x = (a["meta:registryMetadata"] or {})[field] or 0
      local y = (b["meta:registryMetadata"] or {})[field] or 0
      return x > y
    end)
    local out = json.array {}
    for i = 1, math.min(5, #sorted) do out[i] = summary(sorted[i]) end
    return out
  end
  return 200, JSON_HEADERS, {
    imsOrg = ctx.org.org_id,
    tenantId = ctx.org.tenant,
    counts = { schemas = #schemas, mixins = #fgs, datatypes = ctx.store.count(sb, "datatype"),
               classes = ctx.store.count(sb, "class"), unions = n_unions },
    recentlyCreatedResources = recent("repo:createdDate"),
    recentlyUpdatedResources = recent("repo:lastModifiedDate"),
    classUsage = class_usage,
  }
end

local function global_list(kind)
  return function(req, ctx)
    return listing(ctx, req, registry.globals(kind))
  end
end

local function global_get(kind)
  return function(req, ctx)
    local doc = registry.global(req.params.id)
    local ok = false
    if doc then
      for _, d in ipairs(registry.globals(kind)) do if d == doc then ok = true; break end end
    end
    if not ok then return not_found(kind == "classes" and "class" or kind:gsub("s$", ""), req.params.id) end
    local a, err = single_accept(req)
    if not a then return err end
    return 200, JSON_HEADERS, present(ctx, doc, a)
  end
end

local function empty_list(req, ctx)
  return listing(ctx, req, {})
end

-- an unencoded $id ("https://ns.adobe.com/...") arrives as several path segments
local function rejoin(handler)
  return function(req, ctx)
    local id = req.params.id:gsub("^(https?:)/+", "%1//")
    req.params.id = id
    return handler(req, ctx)
  end
end

function M.install(app)
  registry.store = app.store
  local o = { auth = "platform", body = "json", group = "schemas" }
  app:route("GET", BASE .. "/stats", stats, o)
  for _, pk in ipairs { "schemas", "fieldgroups", "mixins" } do
    local p = BASE .. "/tenant/" .. pk
    app:route("POST", p, create(pk), o)
    app:route("GET", p, list(pk), o)
    for _, pat in ipairs { p .. "/:id", p .. "/*id" } do
      local wrap = pat:find("*", 1, true) and rejoin or function(h) return h end
      app:route("GET", pat, wrap(get(pk)), o)
      app:route("PUT", pat, wrap(put(pk)), o)
      app:route("PATCH", pat, wrap(patch(pk)), o)
      app:route("DELETE", pat, wrap(delete(pk)), o)
    end
  end
  for pk, kind in pairs { classes = "classes", fieldgroups = "fieldgroups", mixins = "fieldgroups",
                          datatypes = "datatypes" } do
    app:route("GET", BASE .. "/global/" .. pk, global_list(kind), o)
    app:route("GET", BASE .. "/global/" .. pk .. "/:id", global_get(kind), o)
    app:route("GET", BASE .. "/global/" .. pk .. "/*id", rejoin(global_get(kind)), o)
  end
  -- Adobe's global container holds no schemas the emulator knows of
  app:route("GET", BASE .. "/global/schemas", empty_list, o)
  local function no_global_schema(req) return not_found("schema", req.params.id) end
  app:route("GET", BASE .. "/global/schemas/:id", no_global_schema, o)
  app:route("GET", BASE .. "/global/schemas/*id", rejoin(no_global_schema), o)
end

-- what the class and data type service shares with this one
M.helpers = { registry_meta = registry_meta, bump = bump, title_taken = title_taken, check_fields = check_fields,
              base_doc = base_doc, new_ids = new_ids, has_union = has_union, rejoin = rejoin }

function M.reset(app)
  registry.invalidate()
end

return M
