-- aep.emulator.descriptors: the Schema Registry's descriptors (docs/AEP-API-FACTS.md §4):
-- /tenant/descriptors with create, list (by Accept variant), get, replace and delete.
-- An identity descriptor needs an existing schema path and identity namespace, and a schema has one
-- primary identity at most.
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"
local ids = require "aep.emulator.ids"
local views = require "aep.emulator.schema_views"

local M = {}

local BASE = "/data/foundation/schemaregistry"
local JSON_HEADERS = errors.JSON_HEADERS
local hex = ids.hex
local deepcopy = registry.deepcopy
local parse_accept = views.parse_accept
local not_found = views.not_found

local function find_tenant(ctx, kind, id)
  return registry.tenant(ctx.sandbox, kind, id)
end

local function changed(ctx)
  registry.invalidate(ctx.sandbox)
end

local function identity_find(ctx, ns)
  return ctx.app:module("identity").find(ctx, ns)
end

local function check_descriptor(ctx, d, except_id)
  if type(d) ~= "table" or json.is_array(d) then
    return errors.xdm("XDM-1001-400", "Bad Request", "The request body must be a JSON object")
  end
  if type(d["@type"]) ~= "string" or d["@type"] == "" then
    return errors.xdm("XDM-1001-400", "Bad Request", "@type is required")
  end
  local src = d["xdm:sourceSchema"]
  if type(src) ~= "string" then
    return errors.xdm("XDM-1001-400", "Bad Request", "xdm:sourceSchema is required")
  end
  local schema = find_tenant(ctx, "schema", src)
  if not schema then
    return errors.xdm("XDM-1012-400", "Reference not found", "The source schema " .. src .. " does not exist")
  end
  d["xdm:sourceSchema"] = schema["$id"]
  if d["xdm:sourceVersion"] == nil then
    return errors.xdm("XDM-1001-400", "Bad Request", "xdm:sourceVersion is required")
  end
  local prop = d["xdm:sourceProperty"]
  if d["@type"] == "xdm:descriptorIdentity" or prop ~= nil then
    if type(prop) ~= "string" or prop:sub(1, 1) ~= "/" or (#prop > 1 and prop:sub(-1) == "/") then
      return errors.xdm("XDM-1001-400", "Bad Request",
        "xdm:sourceProperty must be a path starting with '/' and not ending with '/'")
    end
    local full = registry.resolve_schema(ctx, schema["$id"])
    if full and not registry.has_path(full, prop) then
      return errors.xdm("XDM-1016-400", "Bad Request",
        "xdm:sourceProperty " .. prop .. " does not exist in the schema " .. schema["$id"])
    end
  end
  if d["@type"] == "xdm:descriptorIdentity" then
    local ns = d["xdm:namespace"]
    if ns == nil or ns == "" then
      return errors.xdm("XDM-1001-400", "Bad Request", "xdm:namespace is required for an identity descriptor")
    end
    if not identity_find(ctx, ns) then
      return errors.xdm("XDM-1017-400", "Bad Request", "The identity namespace '" .. tostring(ns) .. "' does not exist")
    end
    local p = d["xdm:property"]
    if p ~= nil and p ~= "xdm:code" and p ~= "xdm:id" then
      return errors.xdm("XDM-1001-400", "Bad Request", "xdm:property must be xdm:code or xdm:id")
    end
    if d["xdm:isPrimary"] == true then
      for _, other in ipairs(registry.identity_descriptors(ctx, schema["$id"])) do
        if other["xdm:isPrimary"] == true and other["@id"] ~= except_id then
          return errors.xdm("XDM-1524-400", "Bad Request",
            "The schema " .. schema["$id"] .. " already has a primary identity (" .. other["xdm:sourceProperty"] .. ")")
        end
      end
    end
  end
end

local function create_descriptor(req, ctx)
  local d, err = req:json_body()
  if d == nil then return err end
  d = deepcopy(d)
  local s, h, b = check_descriptor(ctx, d)
  if s then return s, h, b end
  d["@id"] = hex(20)
  d["meta:containerId"] = "tenant"
  d.version = "1"
  d.imsOrg = ctx.org.org_id
  d["meta:sandboxId"] = ctx.sandbox
  ctx.store.put(ctx.sandbox, "descriptor", d["@id"], d)
  changed(ctx)
  return 201, JSON_HEADERS, d
end

-- Descriptors are tenant-level metadata: the global container lists none and finds none.
local function container_docs(ctx, container)
  if container == "global" then return {} end
  return ctx.store.list(ctx.sandbox, "descriptor")
end

local function list_descriptors(container)
  return function(req, ctx)
    local a = parse_accept(req.headers["accept"])
    local kind = a and a.kind or "xdm-id"
    local docs = container_docs(ctx, container)
    if kind == "xdm-v2" then
      local results = json.array {}
      for i, d in ipairs(docs) do results[i] = d end
      return 200, JSON_HEADERS, { results = results, _page = { count = #results, next = json.null }, _links = {} }
    end
    local grouped = {}
    for _, d in ipairs(docs) do
      local t = d["@type"]
      grouped[t] = grouped[t] or json.array {}
      local v
      if kind == "xdm" then v = d
      elseif kind == "xdm-link" then v = "/" .. container .. "/descriptors/" .. d["@id"] -- the guide's form
      else v = d["@id"] end
      table.insert(grouped[t], v)
    end
    return 200, JSON_HEADERS, grouped
  end
end

local function get_descriptor(req, ctx)
  local d = req.params.container ~= "global" and ctx.store.get(ctx.sandbox, "descriptor", req.params.id)
  if not d then return not_found("descriptor", req.params.id) end
  return 200, JSON_HEADERS, d
end

local function put_descriptor(req, ctx)
  local old = ctx.store.get(ctx.sandbox, "descriptor", req.params.id)
  if not old then return not_found("descriptor", req.params.id) end
  local d, err = req:json_body()
  if d == nil then return err end
  d = deepcopy(d)
  local s, h, b = check_descriptor(ctx, d, old["@id"])
  if s then return s, h, b end
  d["@id"], d["meta:containerId"], d.version, d.imsOrg = old["@id"], "tenant", "1", ctx.org.org_id
  d["meta:sandboxId"] = ctx.sandbox
  ctx.store.put(ctx.sandbox, "descriptor", d["@id"], d)
  changed(ctx)
  return 201, JSON_HEADERS, { ["@id"] = d["@id"] }
end

local function delete_descriptor(req, ctx)
  if not ctx.store.delete(ctx.sandbox, "descriptor", req.params.id) then
    return not_found("descriptor", req.params.id)
  end
  changed(ctx)
  return 204, {}, ""
end

function M.install(app)
  local o = { auth = "platform", body = "json", group = "schemas" }
  app:route("POST", BASE .. "/tenant/descriptors", create_descriptor, o)
  for _, container in ipairs { "tenant", "global" } do
    app:route("GET", BASE .. "/" .. container .. "/descriptors", list_descriptors(container), o)
    app:route("GET", BASE .. "/" .. container .. "/descriptors/:id", function(req, ctx)
      req.params.container = container
      return get_descriptor(req, ctx)
    end, o)
  end
  app:route("PUT", BASE .. "/tenant/descriptors/:id", put_descriptor, o)
  app:route("DELETE", BASE .. "/tenant/descriptors/:id", delete_descriptor, o)
end

return M
