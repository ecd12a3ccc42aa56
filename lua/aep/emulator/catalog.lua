-- aep.emulator.catalog: Catalog datasets (docs/AEP-API-FACTS.md §6). Create answers 201
-- ["@/dataSets/{id}"] + Location; lists and single gets answer objects keyed by id, as Catalog
-- does; PATCH (JSON Patch or a merge object) for tags; DELETE. /dataSets and /datasets both work.
--   catalog.get_dataset(ctx, id) -> dataset doc | nil   (ctx.sandbox; cached, no SQL)
-- Batches under /catalog/batches|batch are batches.lua's (emudata).
local json = require "aep.json"
local host = require "aep.host"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"
local ids = require "aep.emulator.ids"
local datasets = require "aep.emulator.datasets"
local ingest = require "aep.emulator.ingest"

local M = {}

local BASE = "/data/foundation/catalog"
local JSON_HEADERS = errors.JSON_HEADERS

local hex = ids.hex

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "http://ns.adobe.com/aep/errors/CAT-" .. status)
end

-- catalog.get_dataset(ctx, id) -> doc | nil; catalog.profile_enabled(ds), identity_enabled(ds)
M.get_dataset = datasets.get
M.profile_enabled = datasets.profile_enabled
M.identity_enabled = datasets.identity_enabled

local function union_schema(schema)
  for _, t in ipairs(schema["meta:immutableTags"] or {}) do if t == "union" then return true end end
  return false
end

-- check(ctx, ds) -> nil | error triple
local function check(ctx, ds)
  if type(ds.name) ~= "string" or ds.name == "" then
    return problem(400, "Bad Request", "name is required")
  end
  if ds.schemaRef ~= nil then
    if type(ds.schemaRef) ~= "table" or type(ds.schemaRef.id) ~= "string" then
      return problem(400, "Bad Request", "schemaRef.id is required")
    end
    local schema = registry.tenant(ctx.sandbox, "schema", ds.schemaRef.id) or registry.global(ds.schemaRef.id)
    if not schema then
      return problem(400, "Bad Request", "The schema " .. ds.schemaRef.id .. " does not exist")
    end
    ds.schemaRef.id = schema["$id"]
    ds.schemaRef.contentType = ds.schemaRef.contentType or "application/vnd.adobe.xed+json;version=1"
    if datasets.profile_enabled(ds) and not union_schema(schema) then
      return problem(400, "Bad Request", "To enable profile datasets the schema should be valid")
    end
  elseif datasets.profile_enabled(ds) then
    return problem(400, "Bad Request", "To enable profile datasets the schema should be valid")
  end
  if ds.tags ~= nil and (type(ds.tags) ~= "table" or json.is_array(ds.tags)) then
    return problem(400, "Bad Request", "tags must be an object of arrays")
  end
end

local function ref(id) return json.array { "@/dataSets/" .. id } end

local function create(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  if type(body) ~= "table" or json.is_array(body) then
    return problem(400, "Bad Request", "The request body must be a JSON object")
  end
  local ds = registry.deepcopy(body)
  local s, h, b = check(ctx, ds)
  if s then return s, h, b end
  local id = hex(12)
  local now = math.floor(host.now() * 1000)
  ds.id = nil
  ds.imsOrg = ctx.org.org_id
  ds.sandboxId = ctx.sandbox
  ds.created, ds.updated = now, now
  ds.createdClient, ds.updatedUser, ds.createdUser = ctx.org.client_id, ctx.org.technical_account_id,
    ctx.org.technical_account_id
  ds.version = "1.0.0"
  ds.state = "DRAFT"
  ds.tags = ds.tags or {}
  ds.files = "@/dataSetFiles?dataSetId=" .. id
  ctx.store.put(ctx.sandbox, "dataset", id, ds)
  return 201, { ["Content-Type"] = "application/json", Location = ctx.app.urls.base .. BASE .. "/dataSets/" .. id },
    ref(id)
end

local RESERVED = { limit = true, start = true, orderBy = true, orderby = true, properties = true,
                   requestDataSource = true }

local function project(ds, props)
  if not props then return ds end
  local out = {}
  for p in props:gmatch("[^,%s]+") do out[p] = ds[p] end
  return out
end

local function list(req, ctx)
  local q = req.query
  local limit = math.max(1, math.min(tonumber(q.limit) or 50, 100))
  local start = math.max(0, tonumber(q.start) or 0)
  local out, n, skipped = {}, 0, 0
  local ids = ctx.store.ids(ctx.sandbox, "dataset")
  for _, id in ipairs(ids) do
    local ds = ctx.store.get(ctx.sandbox, "dataset", id)
    local ok = true
    for k, v in pairs(q) do
      if not RESERVED[k] and tostring(ds[k]) ~= v then ok = false; break end
    end
    if ok then
      if skipped < start then skipped = skipped + 1
      elseif n < limit then
        n = n + 1
        out[id] = project(require("aep.emulator.last_batches").decorate(ctx, id, ds), q.properties)
      end
    end
  end
  return 200, JSON_HEADERS, out
end

local function get(req, ctx)
  local id = req.params.id
  local ds = ctx.store.get(ctx.sandbox, "dataset", id)
  if not ds then return problem(404, "Not Found", "Dataset " .. id .. " was not found") end
  return 200, JSON_HEADERS, { [id] = project(require("aep.emulator.last_batches").decorate(ctx, id, ds),
                                             req.query.properties) }
end

local schemas_patch -- schemas.patch_op, loaded lazily

local function update(req, ctx, replace)
  local id = req.params.id
  local old = ctx.store.get(ctx.sandbox, "dataset", id)
  if not old then return problem(404, "Not Found", "Dataset " .. id .. " was not found") end
  local body, err = req:json_body()
  if body == nil then return err end
  local ds
  if replace then
    if type(body) ~= "table" or json.is_array(body) then
      return problem(400, "Bad Request", "The request body must be a JSON object")
    end
    ds = registry.deepcopy(body)
  else
    ds = registry.deepcopy(old)
    if json.is_array(body) then
      schemas_patch = schemas_patch or require("aep.emulator.schemas").patch_op
      for _, op in ipairs(body) do
        local path = type(op) == "table" and op.path
        if path == "/tags/unifiedProfile" or path == "/tags/unifiedIdentity" or (type(path) == "string" and path:match("^/tags/")) then
          ds.tags = ds.tags or {}
        end
        local ok, why = type(op) == "table" and schemas_patch(ds, op)
        if not ok then return problem(400, "Bad Request", "Invalid JSON Patch: " .. tostring(why)) end
      end
    elseif type(body) == "table" then
      for k, v in pairs(body) do
        if k == "tags" and type(v) == "table" then
          ds.tags = ds.tags or {}
          for tk, tv in pairs(v) do ds.tags[tk] = tv end
        else
          ds[k] = v
        end
      end
    else
      return problem(400, "Bad Request", "PATCH takes a JSON Patch array or a JSON object")
    end
  end
  local s, h, b = check(ctx, ds)
  if s then return s, h, b end
  for _, k in ipairs { "imsOrg", "sandboxId", "created", "createdClient", "createdUser", "files", "version" } do
    ds[k] = old[k]
  end
  ds.updated = math.floor(host.now() * 1000)
  ds.updatedUser = ctx.org.technical_account_id
  ds.state = ds.state or old.state
  ctx.store.put(ctx.sandbox, "dataset", id, ds)
  return 200, JSON_HEADERS, ref(id)
end

-- Deleting a dataset deletes its data too (records, identity links, batches), as AEP does.
local function delete(req, ctx)
  local id = req.params.id
  local deleted = ctx.store.transaction(function()
    if not ctx.store.delete(ctx.sandbox, "dataset", id) then return false end
    ingest.drop_dataset(ctx.store, ctx.sandbox, id)
    return true
  end)
  if not deleted then
    return problem(404, "Not Found", "Dataset " .. id .. " was not found")
  end
  return 200, JSON_HEADERS, ref(id)
end

function M.install(app)
  local o = { auth = "platform", body = "json" }
  for _, name in ipairs { "dataSets", "datasets" } do
    local p = BASE .. "/" .. name
    app:route("POST", p, create, o)
    app:route("GET", p, list, o)
    app:route("GET", p .. "/:id", get, o)
    app:route("PATCH", p .. "/:id", function(req, ctx) return update(req, ctx, false) end, o)
    app:route("PUT", p .. "/:id", function(req, ctx) return update(req, ctx, true) end, o)
    app:route("DELETE", p .. "/:id", delete, o)
  end
end

return M
