-- aep.schemas: Schema Registry (/data/foundation/schemaregistry): the tenant id, field groups,
-- schemas, Profile enablement and descriptors. Every function takes an aep.platform client first.
--
--   schemas.tenant_id(c) -> "acme" (no leading underscore)
--   schemas.list(c, "schemas" | "fieldgroups" | ..., {container = "tenant"}) -> {{["$id"], title, ...}}
--   schemas.find_by_title(c, kind, title) -> item | nil
--   schemas.create_field_group(c, body) / create_schema(c, body) -> created resource
--   schemas.get(c, kind, id [, {full = true}]) -> resource | nil
--   schemas.delete(c, kind, id) -> true (also when already gone)
--   schemas.enable_profile(c, schema_id) -> schema (adds meta:immutableTags ["union"])
--   schemas.create_descriptor(c, body) / list_descriptors(c) / find_identity_descriptor(c, schema_id)
--   schemas.delete_descriptor(c, id)
local M = {}

local platform = require "aep.platform"
local json = require "aep.json"

M.BASE = "/data/foundation/schemaregistry"

M.ACCEPT = {
  ids = "application/vnd.adobe.xed-id+json",
  list = "application/vnd.adobe.xed+json",
  raw = "application/vnd.adobe.xed+json; version=1",
  full = "application/vnd.adobe.xed-full+json; version=1",
  descriptors = "application/vnd.adobe.xdm+json",
}

M.PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
M.EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"

local enc = platform.urlencode

-- schemas.stats(c) -> the /stats document (tenantId, counts, ...)
function M.stats(c)
  return c:get(M.BASE .. "/stats", { accept = M.ACCEPT.list }).json
end

-- schemas.tenant_id(c) -> tenant id without leading underscore
function M.tenant_id(c)
  local s = M.stats(c)
  local t = type(s) == "table" and s.tenantId
  if type(t) ~= "string" or t == "" then
    error(platform.error({ kind = "aep", code = "NO_TENANT", message = "Schema Registry /stats has no tenantId" }), 0)
  end
  return (t:gsub("^_", ""))
end

local function next_href(doc)
  local links = type(doc) == "table" and doc._links
  local nxt = type(links) == "table" and links.next
  local href = type(nxt) == "table" and nxt.href or nil
  if type(href) == "string" and href ~= "" then return href end
  return nil
end

-- Follow _links.next (absolute, or relative to the registry) until exhausted.
local function paged(c, path, opts)
  local items = {}
  local url_or_path = path
  local query = opts.query
  local seen = {}
  for _ = 1, 1000 do
    local req = { accept = opts.accept, query = query }
    if url_or_path:match("^%a[%w+.-]*://") then req.url = url_or_path else req.path = url_or_path end
    local doc = c:get(url_or_path, req).json
    local results = type(doc) == "table" and (doc.results or (doc[1] and doc)) or {}
    for _, r in ipairs(results) do items[#items + 1] = r end
    local href = next_href(doc)
    if not href or seen[href] or #results == 0 then break end
    seen[href] = true
    if not href:match("^%a[%w+.-]*://") and href:sub(1, #M.BASE) ~= M.BASE then
      href = M.BASE .. (href:sub(1, 1) == "/" and href or ("/" .. href))
    end
    url_or_path, query = href, nil
  end
  return items
end

-- schemas.list(c, kind [, opts]) -> array of {["$id"], ["meta:altId"], version, title}
-- kind: "schemas", "fieldgroups", "mixins", "classes", "datatypes"; opts.container ("tenant"),
-- opts.property (a registry filter such as "title==X"), opts.full (whole resources)
function M.list(c, kind, opts)
  opts = opts or {}
  local query = { { "limit", 300 } }
  if opts.property then query[#query + 1] = { "property", opts.property } end
  return paged(c, M.BASE .. "/" .. (opts.container or "tenant") .. "/" .. kind, {
    accept = opts.full and M.ACCEPT.list or M.ACCEPT.ids, query = query })
end

-- schemas.find_by_title(c, kind, title [, container]) -> item | nil (exact title match)
function M.find_by_title(c, kind, title, container)
  local items = M.list(c, kind, { container = container, property = "title==" .. title })
  for _, it in ipairs(items) do
    if it.title == title then return it end
  end
  return nil
end

-- schemas.get(c, kind, id [, opts]) -> resource | nil when 404. opts.full: resolved form.
function M.get(c, kind, id, opts)
  opts = opts or {}
  local resp = c:get(M.BASE .. "/" .. (opts.container or "tenant") .. "/" .. kind .. "/" .. enc(id), {
    accept = opts.full and M.ACCEPT.full or M.ACCEPT.raw, allow = { [404] = true } })
  if resp.status == 404 then return nil end
  return resp.json
end

local function create(c, kind, body)
  return c:post(M.BASE .. "/tenant/" .. kind, { json = body, accept = M.ACCEPT.raw }).json
end

-- schemas.create_field_group(c, body) -> field group (with $id). Uses /tenant/fieldgroups
-- (the current name of the legacy /tenant/mixins).
function M.create_field_group(c, body)
  return create(c, "fieldgroups", body)
end

-- schemas.create_schema(c, body) -> schema (with $id)
function M.create_schema(c, body)
  return create(c, "schemas", body)
end

-- schemas.delete(c, kind, id) -> true (a 404 counts: the resource is gone either way)
function M.delete(c, kind, id)
  c:delete(M.BASE .. "/tenant/" .. kind .. "/" .. enc(id), { accept = M.ACCEPT.raw, allow = { [404] = true } })
  return true
end

local function has_union(doc)
  local tags = type(doc) == "table" and doc["meta:immutableTags"]
  if type(tags) ~= "table" then return false end
  for _, t in ipairs(tags) do if t == "union" then return true end end
  return false
end
M.is_profile_enabled = has_union

-- schemas.enable_profile(c, schema_id) -> schema: adds the "union" tag unless present
function M.enable_profile(c, schema_id)
  local doc = M.get(c, "schemas", schema_id)
  if has_union(doc) then return doc end
  return c:patch(M.BASE .. "/tenant/schemas/" .. enc(schema_id), {
    json = { { op = "add", path = "/meta:immutableTags", value = json.array({ "union" }) } },
    accept = M.ACCEPT.raw, idempotent = true, -- adding the tag twice changes nothing
  }).json
end

-- schemas.create_descriptor(c, body) -> descriptor (with @id)
function M.create_descriptor(c, body)
  return c:post(M.BASE .. "/tenant/descriptors", { json = body, accept = M.ACCEPT.descriptors }).json
end

-- schemas.list_descriptors(c [, opts]) -> flat array of descriptors (whatever grouping the
-- registry answers with: by @type, {results = ...}, or an array)
function M.list_descriptors(c, opts)
  opts = opts or {}
  local query = {}
  if opts.property then query[#query + 1] = { "property", opts.property } end
  local doc = c:get(M.BASE .. "/tenant/descriptors", { accept = M.ACCEPT.descriptors, query = query }).json
  local out = {}
  local function add_all(list)
    for _, d in ipairs(list) do if type(d) == "table" then out[#out + 1] = d end end
  end
  if type(doc) ~= "table" then return out end
  if doc[1] then
    add_all(doc)
  elseif type(doc.results) == "table" then
    add_all(doc.results)
  else
    local keys = {}
    for k, v in pairs(doc) do if type(v) == "table" and v[1] and k ~= "_links" and k ~= "_page" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do add_all(doc[k]) end
  end
  return out
end

-- schemas.find_identity_descriptor(c, schema_id [, source_property]) -> descriptor | nil
function M.find_identity_descriptor(c, schema_id, source_property)
  for _, d in ipairs(M.list_descriptors(c, { property = "xdm:sourceSchema==" .. schema_id })) do
    if d["@type"] == "xdm:descriptorIdentity" and d["xdm:sourceSchema"] == schema_id
      and (source_property == nil or d["xdm:sourceProperty"] == source_property) then
      return d
    end
  end
  return nil
end

-- schemas.delete_descriptor(c, id) -> true (404 included)
function M.delete_descriptor(c, id)
  c:delete(M.BASE .. "/tenant/descriptors/" .. enc(id), { allow = { [404] = true } })
  return true
end

-- schemas.identity_descriptor(schema_id, source_property, namespace) -> descriptor body
-- (primary identity, matched by namespace code, as the collection's R9/R12)
function M.identity_descriptor(schema_id, source_property, namespace)
  return {
    ["@type"] = "xdm:descriptorIdentity",
    ["xdm:sourceSchema"] = schema_id,
    ["xdm:sourceVersion"] = 1,
    ["xdm:sourceProperty"] = source_property,
    ["xdm:namespace"] = namespace,
    ["xdm:property"] = "xdm:code",
    ["xdm:isPrimary"] = true,
  }
end

return M
