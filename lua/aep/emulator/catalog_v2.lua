-- aep.emulator.catalog_v2: Catalog's PATCH v2 of a dataset (catalog.yaml patchDataSetV2):
--   PATCH /data/foundation/catalog/v2/dataSets/:id  {description, tags, extensions, ...}
--   -> 200 ["@/dataSets/ID"]. The body is merged deeply into the dataset ("missing intermediate
--   objects are automatically created"); arrays and plain values replace what was there.
--   A JSON Patch array, or a change to a field Catalog owns, answers 400.
local json = require "aep.json"
local errors = require "aep.emulator.errors"

local M = {}

local PATH = "/data/foundation/catalog/v2/dataSets/:id"
-- what Catalog keeps for itself (and the schema, which PATCH v1 does not change either)
local OWNED = { id = true, imsOrg = true, sandboxId = true, created = true, createdClient = true,
  createdUser = true, updated = true, updatedUser = true, version = true, files = true, schemaRef = true,
  lastBatchId = true, lastBatchStatus = true, lastSuccessfulBatch = true, lastFailedBatch = true }

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "http://ns.adobe.com/aep/errors/CAT-" .. status)
end

local function is_object(v) return type(v) == "table" and not json.is_array(v) and v ~= json.null end

local function merge(into, from)
  for k, v in pairs(from) do
    if is_object(v) and is_object(into[k]) then merge(into[k], v)
    elseif is_object(v) then into[k] = {}; merge(into[k], v)
    else into[k] = v end
  end
end

local function patch(req, ctx)
  local id = req.params.id
  local ds = ctx.store.get(ctx.sandbox, "dataset", id)
  if not ds then return problem(404, "Not Found", "Dataset " .. id .. " was not found") end
  local body, err = req:json_body()
  if body == nil then return err end
  if not is_object(body) then
    return problem(400, "Bad Request", "PATCH v2 takes a JSON object of the fields to change, e.g. {\"description\": \"...\"}")
  end
  for k in pairs(body) do
    if OWNED[k] then return problem(400, "Bad Request", k .. " cannot be changed") end
  end
  if body.name ~= nil and (type(body.name) ~= "string" or body.name == "") then
    return problem(400, "Bad Request", "name must be a non-empty string")
  end
  merge(ds, body)
  ds.updated = math.floor(ctx.now * 1000)
  ds.updatedUser = ctx.org.technical_account_id
  ctx.store.put(ctx.sandbox, "dataset", id, ds)
  return 200, errors.JSON_HEADERS, json.array { "@/dataSets/" .. id }
end

function M.install(app)
  app:route("PATCH", PATH, patch, { auth = "platform", body = "json" })
end

return M
