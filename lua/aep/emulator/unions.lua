-- aep.emulator.unions: the Schema Registry's union schemas and behaviors (docs/AEP-API-FACTS.md §3).
-- A union is computed, never stored: for each class with at least one schema enabled for Profile
-- (meta:immutableTags "union"), the union of those schemas, with the $id of the class plus
-- "__union" (Adobe's unions guide). It follows every schema change at once and needs no reset.
-- Behaviors are Adobe's three in the global container (record, time-series, ad hoc).
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"
local views = require "aep.emulator.schema_views"
local schemas = require "aep.emulator.schemas"
local standard = require "aep.xdm.standard"

local M = {}

local BASE = "/data/foundation/schemaregistry"
local JSON_HEADERS = errors.JSON_HEADERS
local IDENTITYMAP = "https://ns.adobe.com/xdm/context/identitymap"
local SUFFIX = "__union"

local function class_doc(ctx, id)
  return registry.tenant(ctx.sandbox, "class", id) or registry.global(id)
end

-- unions.all(ctx) -> array of union docs (xed form), ordered by class $id
function M.all(ctx)
  local by_class, order = {}, {}
  for _, s in ipairs(ctx.store.list(ctx.sandbox, "schema")) do
    local class_id = s["meta:class"]
    if class_id and schemas.helpers.has_union(s) then
      local u = by_class[class_id]
      if not u then
        local class = class_doc(ctx, class_id) or {}
        u = {
          ["$id"] = class_id .. SUFFIX,
          ["meta:altId"] = (registry.id_to_alt(class_id) or class_id) .. SUFFIX,
          ["meta:resourceType"] = "unions",
          version = "1.0",
          title = class.title or ("Union object for " .. class_id),
          type = "object",
          description = "Union view of all schemas that extend " .. class_id,
          allOf = json.array { { ["$ref"] = class_id } },
          ["meta:extends"] = json.array {},
          ["meta:class"] = class_id,
          ["meta:containerId"] = "tenant",
          ["meta:xdmType"] = "object",
          imsOrg = ctx.org.org_id,
          ["meta:sandboxId"] = ctx.sandbox,
          ["meta:sandboxType"] = ctx.sandbox == "prod" and "production" or "development",
          ["meta:registryMetadata"] = { ["meta:globalLibVersion"] = "1.50.1" },
          _refs = { [class_id] = true }, _ext = {},
        }
        by_class[class_id] = u
        order[#order + 1] = class_id
      end
      for _, item in ipairs(s.allOf or {}) do
        local ref = type(item) == "table" and item["$ref"]
        if type(ref) == "string" and not u._refs[ref] then
          u._refs[ref] = true
          u.allOf[#u.allOf + 1] = { ["$ref"] = ref }
        end
      end
      for _, id in ipairs { s["$id"], table.unpack(s["meta:extends"] or {}) } do
        if not u._ext[id] then u._ext[id] = true; u["meta:extends"][#u["meta:extends"] + 1] = id end
      end
    end
  end
  table.sort(order)
  local out = {}
  for i, c in ipairs(order) do
    local u = by_class[c]
    u._refs, u._ext = nil, nil
    out[i] = u
  end
  return out
end

-- unions.find(ctx, id) -> union doc | nil   (id: $id, URL-decoded, or meta:altId)
function M.find(ctx, id)
  if type(id) ~= "string" or id:sub(-#SUFFIX) ~= SUFFIX then return nil end
  for _, u in ipairs(M.all(ctx)) do
    if u["$id"] == id or u["meta:altId"] == id then return u end
  end
  return nil
end

-- The registry adds three fields to every union (Adobe's unions guide): identityMap,
-- timeSeriesEvents and segmentMembership; the resolved forms show them.
local function union_fields(ctx, full)
  if type(full) ~= "table" or type(full.properties) ~= "table" then return full end
  full = registry.deepcopy(full)
  local props = full.properties
  if props.identityMap == nil then
    local idmap = registry.resolve(ctx.sandbox, { allOf = { { ["$ref"] = IDENTITYMAP } } })
    props.identityMap = idmap and idmap.properties and idmap.properties.identityMap
  end
  props.timeSeriesEvents = props.timeSeriesEvents or {
    title = "Time-series events", type = "array", ["meta:xdmType"] = "array",
    description = "The time-series events of the record schemas in this union.",
    items = { type = "object", ["meta:xdmType"] = "object" } }
  props.segmentMembership = props.segmentMembership or {
    title = "Segment membership", type = "object", ["meta:xdmType"] = "map",
    description = "The results of evaluating segment definitions, keyed by namespace.",
    additionalProperties = { type = "object", ["meta:xdmType"] = "map",
      additionalProperties = { type = "object", ["meta:xdmType"] = "object" } } }
  return full
end

local function list_unions(req, ctx)
  return views.listing(ctx, req, M.all(ctx))
end

-- unions.get(req, ctx): GET /tenant/unions/{UNION_ID} (also answers /tenant/schemas/{UNION_ID})
local function get_union(req, ctx)
  local u = M.find(ctx, req.params.id)
  if not u then return views.not_found("union", req.params.id) end
  local a, err = views.single_accept(req)
  if not a then return err end
  local body = views.present(ctx, u, a)
  if a:find("full", 1, true) then body = union_fields(ctx, body) end
  return 200, JSON_HEADERS, body
end

M.get = get_union

-- ---------------------------------------------------------------------------------------------
-- Behaviors (global container)

local function behaviors()
  return standard.list("behaviors")
end

local function list_behaviors(req, ctx)
  return views.listing(ctx, req, behaviors())
end

local function get_behavior(req, ctx)
  local id = req.params.id
  for _, b in ipairs(behaviors()) do
    if b["$id"] == id or b["meta:altId"] == id then
      local a, err = views.single_accept(req)
      if not a then return err end
      return 200, JSON_HEADERS, views.present(ctx, b, a)
    end
  end
  return views.not_found("behavior", id)
end

function M.install(app)
  local o = { auth = "platform", body = "json", group = "schemas" }
  local rejoin = schemas.helpers.rejoin
  app:route("GET", BASE .. "/tenant/unions", list_unions, o)
  app:route("GET", BASE .. "/tenant/unions/:id", get_union, o)
  app:route("GET", BASE .. "/tenant/unions/*id", rejoin(get_union), o)
  app:route("GET", BASE .. "/global/behaviors", list_behaviors, o)
  app:route("GET", BASE .. "/global/behaviors/:id", get_behavior, o)
  app:route("GET", BASE .. "/global/behaviors/*id", rejoin(get_behavior), o)
end

return M
