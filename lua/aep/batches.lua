-- aep.batches: batch ingestion (/data/foundation/import/batches): create a batch, upload files,
-- complete it, and wait for Catalog to say how it ended.
--
--   local id = batches.create(c, dataset_id [, {format = "json", multiline = true}])
--   batches.upload(c, id, dataset_id, "profiles.json", data)
--   batches.complete(c, id)
--   local batch = batches.wait(c, id, {timeout = 600, interval = 1})   -- .status "success"|"failed"
local platform = require "aep.platform"
local catalog = require "aep.catalog"
local poll = require "aep.poll"

local M = {}

M.BASE = "/data/foundation/import/batches"
M.FINAL = { success = true, failed = true, failure = true, aborted = true, abandoned = true, inactive = true }

local enc = platform.urlencode

-- inputFormat.format as the batch ingestion API's enum spells it (JSON, Parquet, CSV); callers
-- may write the format in any case.
M.INPUT_FORMATS = { json = "JSON", parquet = "Parquet", csv = "CSV" }

-- batches.create(c, dataset_id [, opts]) -> batch id
function M.create(c, dataset_id, opts)
  opts = opts or {}
  local format = opts.format or "json"
  local doc = c:post(M.BASE, { json = {
    datasetId = dataset_id,
    inputFormat = { format = M.INPUT_FORMATS[format:lower()] or format,
                    isMultiLineJson = opts.multiline ~= false },
  } }).json
  if type(doc) ~= "table" or not doc.id then
    error(platform.error({ kind = "aep", code = "BAD_ANSWER", message = "batch created without an id" }), 0)
  end
  return doc.id
end

-- batches.upload(c, batch_id, dataset_id, file_name, data) -> true (PUT: safe to repeat)
function M.upload(c, batch_id, dataset_id, file_name, data)
  c:put(M.BASE .. "/" .. enc(batch_id) .. "/datasets/" .. enc(dataset_id) .. "/files/" .. enc(file_name), {
    body = data, content_type = "application/octet-stream", timeout = 300 })
  return true
end

-- batches.complete(c, batch_id) -> true
function M.complete(c, batch_id)
  c:post(M.BASE .. "/" .. enc(batch_id), { query = { action = "COMPLETE" }, body = "", content_type = "application/json" })
  return true
end

-- batches.status(c, batch_id) -> batch (Catalog view) | nil
function M.status(c, batch_id)
  return catalog.get_batch(c, batch_id)
end

-- batches.wait(c, batch_id [, opts]) -> batch in a final state (success, failed, ...)
-- Polls Catalog with a growing interval (opts.interval, up to opts.max_interval = 15 s), never
-- past opts.timeout seconds (default 600); then raises code TIMEOUT with the last status.
function M.wait(c, batch_id, opts)
  opts = opts or {}
  local last_status
  return poll.wait(c, function()
    local batch = M.status(c, batch_id)
    last_status = batch and tostring(batch.status or ""):lower()
    if last_status and M.FINAL[last_status] then return batch end
  end, {
    timeout = opts.timeout or 600, interval = opts.interval, max_interval = opts.max_interval or 15,
    what = "batch " .. batch_id,
    timeout_message = function(s)
      return string.format("batch %s still '%s' after %d s", batch_id, tostring(last_status), s)
    end,
  })
end

-- batches.errors(batch) -> array of human-readable error lines from a failed batch
function M.errors(batch)
  local out = {}
  if type(batch) ~= "table" then return out end
  for _, e in ipairs(type(batch.errors) == "table" and batch.errors or {}) do
    if type(e) == "table" then
      out[#out + 1] = table.concat({ tostring(e.code or ""), tostring(e.description or e.message or "") }, " "):gsub("^%s+", "")
    else
      out[#out + 1] = tostring(e)
    end
  end
  return out
end

return M
