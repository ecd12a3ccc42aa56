-- aep.emulator.last_batches: a dataset's last-batch fields (catalog.yaml dataSetResponse:
-- lastBatchId, lastBatchStatus, lastSuccessfulBatch, lastFailedBatch) and Catalog's
--   GET /data/foundation/catalog/lastBatches?dataSetId=a,b  -> {"<dataSetId>": {lastBatchId,
--       lastBatchStatus, lastSuccessfulBatchId, lastFailedBatchId, imsOrg, sandboxId, created, updated}}
-- ("...BatchId" there, "...Batch" on the dataset: both as documented). Computed from the batches
-- the emulator holds (batch ingestion and the streaming windows), newest by creation.
local errors = require "aep.emulator.errors"

local M = {}

local LAST = "SELECT id, status, created, updated FROM ingest_batches WHERE sandbox = ? AND dataset_id = ? %s " ..
  "ORDER BY created DESC, id DESC LIMIT 1"

local function last(db, sandbox, ds, where, ...)
  local stmt = db:prepare(string.format(LAST, where))
  local row = stmt:first(sandbox, ds, ...)
  stmt:close()
  return row
end

-- last_batches.of(ctx, dataset_id) -> { lastBatchId, lastBatchStatus, lastSuccessfulBatch,
-- lastFailedBatch, created, updated } | nil (no batch yet)
function M.of(ctx, dataset_id)
  -- ingest_batches is created by aep.emulator.ingest, installed before this module
  local db, sb = ctx.store.db, ctx.sandbox or "prod"
  local row = last(db, sb, dataset_id, "")
  if not row then return nil end
  local ok = last(db, sb, dataset_id, "AND status IN ('success', 'active')")
  local bad = last(db, sb, dataset_id, "AND status IN ('failed', 'failure')")
  return { lastBatchId = row[1], lastBatchStatus = row[2], lastSuccessfulBatch = ok and ok[1] or nil,
           lastFailedBatch = bad and bad[1] or nil, created = row[3], updated = row[4] }
end

-- last_batches.decorate(ctx, dataset_id, ds) -> a copy of the dataset doc with the fields
function M.decorate(ctx, dataset_id, ds)
  local f = M.of(ctx, dataset_id)
  if not f then return ds end
  local out = {}
  for k, v in pairs(ds) do out[k] = v end
  out.lastBatchId, out.lastBatchStatus = f.lastBatchId, f.lastBatchStatus
  out.lastSuccessfulBatch, out.lastFailedBatch = f.lastSuccessfulBatch, f.lastFailedBatch
  return setmetatable(out, getmetatable(ds))
end

local function list(req, ctx)
  local ids = req.query and req.query.dataSetId
  if not ids or ids == "" then
    return errors.problem(400, "Bad Request", "dataSetId is required (one id or a comma-separated list)",
      "http://ns.adobe.com/aep/errors/CAT-1001-400")
  end
  local out = {}
  for id in ids:gmatch("[^,%s]+") do
    local f = M.of(ctx, id)
    if f then
      out[id] = { lastBatchId = f.lastBatchId, lastBatchStatus = f.lastBatchStatus,
                  lastSuccessfulBatchId = f.lastSuccessfulBatch, lastFailedBatchId = f.lastFailedBatch,
                  imsOrg = ctx.org and ctx.org.org_id, sandboxId = ctx.sandbox or "prod",
                  created = f.created, updated = f.updated }
    end
  end
  return 200, errors.JSON_HEADERS, out
end

function M.install(app)
  app:route("GET", "/data/foundation/catalog/lastBatches", list, { auth = "platform" })
end

return M
