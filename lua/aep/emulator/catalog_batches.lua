-- aep.emulator.catalog_batches: Catalog's own batch writes (catalog.yaml; help/catalog/api/...):
--   POST   /data/foundation/catalog/batches       {status, relatedObjects:[{type:"dataSet", id}], ...}
--          -> 201 ["@/batches/ID"] + Location
--   POST   /data/foundation/catalog/batches/:id   the same, with the caller's id (400 if it exists)
--   PUT    /data/foundation/catalog/batches/:id   replace the batch's fields -> 200 ["@/batches/ID"]
--   PATCH  /data/foundation/catalog/batches/:id   merge the given fields     -> 200 ["@/batches/ID"]
--   DELETE /data/foundation/catalog/batches/:id   the batch and the records it ingested -> 200 ["@/batches/ID"]
-- The batches share ingest_batches with batch ingestion and streaming (source "catalog"); reads
-- stay batches.lua's (GET /catalog/batches[/:id]). A batch belongs to the dataset its
-- relatedObjects name (required: the emulator keeps every batch under a dataset).
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local ingest = require "aep.emulator.ingest"

local M = {}

local BASE = "/data/foundation/catalog/batches"
local STATUSES = {}
for _, s in ipairs { "processing", "success", "failure", "queued", "retrying", "stalled", "aborted",
  "abandoned", "inactive", "failed", "loading", "loaded", "staged", "active", "staging", "deleted" } do
  STATUSES[s] = true
end
-- the fields a request may set (batchRequest); the rest is Catalog's
local FIELDS = { "externalId", "started", "completed", "replay", "recordCount", "failedRecordCount", "errors",
  "size", "availableDates", "metrics", "tags", "inputFormat" }

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "http://ns.adobe.com/aep/errors/CAT-" .. status)
end

local function ref(id) return json.array { "@/batches/" .. id } end

local function find(ctx, id)
  ingest.setup(ctx.store)
  local row = ingest.get_batch(id)
  if not row or row.sandbox ~= (ctx.sandbox or "prod") then return nil end
  return row
end

local function not_found(id) return problem(404, "Not Found", "Batch " .. tostring(id) .. " was not found") end

local function dataset_of(body)
  for _, o in ipairs(type(body.relatedObjects) == "table" and body.relatedObjects or {}) do
    if type(o) == "table" and tostring(o.type):lower() == "dataset" and type(o.id) == "string" then return o.id end
  end
end

-- body -> status, doc fields | nil, error answer
local function read_body(req, need_status)
  local body, err = req:json_body()
  if body == nil then return nil, err end
  if type(body) ~= "table" or json.is_array(body) then
    return nil, { problem(400, "Bad Request", "The request body must be a JSON object (catalog.yaml batchRequest)") }
  end
  if body.status == nil and need_status then
    return nil, { problem(400, "Bad Request", "status is required, e.g. \"loading\"") }
  end
  if body.status ~= nil and not STATUSES[body.status] then
    return nil, { problem(400, "Bad Request", "status " .. tostring(body.status) .. " is not a batch status") }
  end
  return body
end

local function unpack_err(e)
  if e[1] then return table.unpack(e) end
  return e.status, e.headers, e.body
end

local function apply(doc, body, replace)
  if replace then
    for _, k in ipairs(FIELDS) do doc[k] = nil end
  end
  for _, k in ipairs(FIELDS) do
    if body[k] ~= nil then doc[k] = body[k] end
  end
  -- the top-level counts also reach the metrics the Catalog view shows
  if body.recordCount ~= nil or body.failedRecordCount ~= nil then
    doc.metrics = type(doc.metrics) == "table" and doc.metrics or {}
    if body.recordCount ~= nil then doc.metrics.outputRecordCount = body.recordCount end
    if body.failedRecordCount ~= nil then doc.metrics.failedRecordCount = body.failedRecordCount end
  end
end

local function create(req, ctx)
  local body, e = read_body(req, true)
  if not body then return unpack_err(e) end
  local ds = dataset_of(body)
  if not ds then
    return problem(400, "Bad Request", "relatedObjects must name the batch's dataset: [{\"type\": \"dataSet\", \"id\": \"...\"}]")
  end
  if not ctx.store.get(ctx.sandbox, "dataset", ds) then
    return problem(400, "Bad Request", "The dataset " .. ds .. " does not exist")
  end
  local id = req.params.batchId
  if id and find(ctx, id) then return problem(400, "Bad Request", "Batch " .. id .. " already exists") end
  local now = math.floor(ctx.now * 1000)
  local doc = { imsOrg = ctx.org.org_id, createdClient = ctx.org.client_id,
                createdUser = ctx.org.technical_account_id, version = "1.0.0" }
  apply(doc, body, false)
  ctx.store.transaction(function()
    id = ingest.new_batch({ sandbox = ctx.sandbox, id = ds }, "catalog", body.status, now, doc, id)
  end)
  local headers = { ["Content-Type"] = "application/json",
                    Location = (ctx.app.urls and ctx.app.urls.base or "") .. BASE .. "/" .. id }
  return 201, headers, ref(id)
end

local function update(replace)
  return function(req, ctx)
    local row = find(ctx, req.params.batchId)
    if not row then return not_found(req.params.batchId) end
    local body, e = read_body(req, replace)
    if not body then return unpack_err(e) end
    local ds = dataset_of(body)
    if ds and ds ~= row.dataset_id then
      return problem(400, "Bad Request", "A batch cannot move to another dataset (it belongs to " .. row.dataset_id .. ")")
    end
    local doc = row.doc
    apply(doc, body, replace)
    doc.updatedUser = ctx.org.technical_account_id
    ctx.store.transaction(function()
      ingest.update_batch(row.id, body.status or row.status, math.floor(ctx.now * 1000), doc)
    end)
    return 200, errors.JSON_HEADERS, ref(row.id)
  end
end

-- the batch goes with the records it ingested (and their identity links)
local function delete(req, ctx)
  local row = find(ctx, req.params.batchId)
  if not row then return not_found(req.params.batchId) end
  if row.source == "streaming" and row.status == "processing" then
    -- its window is still open: records validated later would land in a batch that is gone
    return problem(400, "Bad Request", "Batch " .. row.id .. " is still processing (its streaming window is open); " ..
      "delete it once its status is success or failed")
  end
  local db = ctx.store.db
  ingest.flush_links() -- the links of every record exist before they are deleted with it
  local function exec(sql, ...)
    local stmt = db:prepare(sql)
    stmt:run(...)
    stmt:close()
  end
  ctx.store.transaction(function()
    exec("DELETE FROM ingest_identities WHERE sandbox = ? AND seq IN " ..
      "(SELECT seq FROM ingest_records WHERE batch_id = ?)", row.sandbox, row.id)
    exec("DELETE FROM ingest_records WHERE batch_id = ?", row.id)
    exec("DELETE FROM ingest_batches WHERE id = ?", row.id)
    -- seqs freed at the end are given out again: the links' watermark must not stay above them
    local stmt = db:prepare("SELECT coalesce(max(seq), 0) FROM ingest_records")
    local top = stmt:first()
    stmt:close()
    local linked = tonumber(ctx.store.meta_get("ingest.linked_seq")) or 0
    if top and tonumber(top[1]) < linked then ctx.store.meta_put("ingest.linked_seq", tostring(top[1])) end
  end)
  return 200, errors.JSON_HEADERS, ref(row.id)
end

function M.install(app)
  local o = { auth = "platform", body = "json" }
  app:route("POST", BASE, create, o)
  app:route("POST", BASE .. "/:batchId", create, o)
  app:route("PUT", BASE .. "/:batchId", update(true), o)
  app:route("PATCH", BASE .. "/:batchId", update(false), o)
  app:route("DELETE", BASE .. "/:batchId", delete, o)
end

return M
