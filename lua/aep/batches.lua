-- aep.batches: batch ingestion (/data/foundation/import/batches): create a batch, upload files,
-- complete it, and wait for Catalog to say how it ended.
--
--   local id = batches.create(c, dataset_id [, {format = "json", multiline = true}])
--   batches.upload(c, id, dataset_id, "profiles.json", data [, opts])
--   batches.upload_file(c, id, dataset_id, "profiles.json", "/path/on/disk.json" [, opts])
--   batches.complete(c, id)
--   local batch = batches.wait(c, id, {timeout = 600, interval = 1})   -- .status "success"|"failed"
--
-- Files up to M.SMALL_FILE_LIMIT (the 256 MB the batch ingestion guide gives for one PUT) go in
-- one PUT; larger ones through the large-file API: POST ?action=INITIALIZE, PATCH chunks of
-- M.CHUNK_SIZE with Content-Range, POST ?action=COMPLETE. Chunks are resumable: a chunk is
-- repeated by the client's own retries (marked idempotent: the same range replaces itself), and
-- when one still fails, HEAD tells which bytes have arrived and the upload goes on from the first
-- missing byte (at most opts.resume_attempts times, default M.RESUME_ATTEMPTS). opts:
-- small_file_limit, chunk_size, resume_attempts (a test forces the large path with small values).
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
  -- Sent again when its answer is lost: a batch created twice leaves one empty batch that is never
  -- completed (AEP abandons it); no record can be ingested twice by it.
  local doc = c:post(M.BASE, { idempotent = true, json = {
    datasetId = dataset_id,
    inputFormat = { format = M.INPUT_FORMATS[format:lower()] or format,
                    isMultiLineJson = opts.multiline ~= false },
  } }).json
  if type(doc) ~= "table" or not doc.id then
    error(platform.error({ kind = "aep", code = "BAD_ANSWER", message = "batch created without an id" }), 0)
  end
  return doc.id
end

M.SMALL_FILE_LIMIT = 256 * 1024 * 1024 -- bytes: above it, large-file upload (api-overview.md)
M.CHUNK_SIZE = 64 * 1024 * 1024        -- bytes of one PATCH (the API takes up to 512000000)
M.RESUME_ATTEMPTS = 5                  -- HEAD-and-continue rounds after a chunk that failed

local function file_path(batch_id, dataset_id, file_name)
  return M.BASE .. "/" .. enc(batch_id) .. "/datasets/" .. enc(dataset_id) .. "/files/" .. enc(file_name)
end

-- batches.received(c, batch_id, dataset_id, file_name) -> bytes received from the start of the
-- file (HEAD's Range "bytes=0-N[,...]": N + 1; 0 when nothing from byte 0 has arrived)
function M.received(c, batch_id, dataset_id, file_name)
  local resp = c:request { method = "HEAD", path = file_path(batch_id, dataset_id, file_name) }
  local h = resp.headers or {}
  local range = h["range"] or h["Range"]
  local last = type(range) == "string" and range:match("^%s*bytes[=%s]%s*0%-(%d+)")
  return last and (tonumber(last) + 1) or 0
end

-- Large-file upload of `size` bytes read by read(offset, n) -> string.
local function upload_large(c, batch_id, dataset_id, file_name, size, read, opts)
  local path = file_path(batch_id, dataset_id, file_name)
  local chunk = opts.chunk_size or M.CHUNK_SIZE
  local resumes = opts.resume_attempts or M.RESUME_ATTEMPTS
  c:post(path, { query = { action = "INITIALIZE" }, body = "", content_type = "application/json", idempotent = true })
  local offset, failures = 0, 0
  while offset < size do
    local n = math.min(chunk, size - offset)
    local ok, err = pcall(c.patch, c, path, {
      body = read(offset, n), content_type = "application/octet-stream", idempotent = true, timeout = 300,
      headers = { ["Content-Range"] = string.format("bytes %d-%d", offset, offset + n - 1) } })
    if ok then
      offset = offset + n
    else
      failures = failures + 1
      if failures > resumes then error(err, 0) end
      -- What has arrived? (The chunk may have landed although its answer was lost.)
      offset = M.received(c, batch_id, dataset_id, file_name)
    end
  end
  c:post(path, { query = { action = "COMPLETE" }, body = "", content_type = "application/json", idempotent = true })
  return true
end

-- batches.upload(c, batch_id, dataset_id, file_name, data [, opts]) -> true (PUT: safe to repeat)
function M.upload(c, batch_id, dataset_id, file_name, data, opts)
  opts = opts or {}
  if #data > (opts.small_file_limit or M.SMALL_FILE_LIMIT) then
    return upload_large(c, batch_id, dataset_id, file_name, #data, function(offset, n)
      return data:sub(offset + 1, offset + n)
    end, opts)
  end
  c:put(file_path(batch_id, dataset_id, file_name), {
    body = data, content_type = "application/octet-stream", timeout = 300 })
  return true
end

-- batches.upload_file(c, batch_id, dataset_id, file_name, path [, opts]) -> true: a file on disk,
-- never held whole in memory above the small-file limit (read chunk by chunk)
function M.upload_file(c, batch_id, dataset_id, file_name, path, opts)
  opts = opts or {}
  local f, err = io.open(path, "rb")
  if not f then
    error(platform.error({ kind = "input", code = "INPUT", message = "cannot read " .. path .. ": " .. tostring(err) }), 0)
  end
  local size = f:seek("end")
  local ok, res = pcall(function()
    if size <= (opts.small_file_limit or M.SMALL_FILE_LIMIT) then
      f:seek("set", 0)
      return M.upload(c, batch_id, dataset_id, file_name, f:read("a") or "", opts)
    end
    return upload_large(c, batch_id, dataset_id, file_name, size, function(offset, n)
      f:seek("set", offset)
      return f:read(n) or ""
    end, opts)
  end)
  f:close()
  if not ok then error(res, 0) end
  return res
end

-- batches.complete(c, batch_id) -> true
-- Completing again is safe (Adobe's batch troubleshooting guide: a batch past loading answers 200),
-- so a COMPLETE whose answer was lost is sent again.
function M.complete(c, batch_id)
  c:post(M.BASE .. "/" .. enc(batch_id), { query = { action = "COMPLETE" }, body = "",
    content_type = "application/json", idempotent = true })
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
