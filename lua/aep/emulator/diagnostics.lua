-- aep.emulator.diagnostics: Data Access error diagnostics of a batch (retrieve-failed-batches.md,
-- error-diagnostics.md, data-access.yaml; docs/AEP-API-FACTS.md):
--   GET /data/foundation/export/batches/:id/files               the batch's dataset files
--   GET /data/foundation/export/batches/:id/failed              the failed files (listing)
--   GET /data/foundation/export/batches/:id/failed?path=NAME    one failed file (JSON Lines)
--   GET /data/foundation/export/batches/:id/meta?path=row_errors        row-error files (listing)
--   GET /data/foundation/export/batches/:id/meta?path=row_errors/NAME   one of them (JSON Lines)
--   GET /data/foundation/export/batches/:id/meta?path=row_error_samples.json  the first 100 lines
-- Listings: {"data":[{name, length (a string), _links.self.href}], "_page":{limit, count}}.
-- A failed record's line holds the documented fields (_validationErrors, the everit violations;
-- _errors, [{code, message}]; _corrupt_record for unreadable rows; _filename) and the message as
-- it was sent (header and body.xdmEntity, for streaming) or the row (batch ingestion).
-- `_emulator` {xactionId, receivedTimeMs, row} is the emulator's own extension: AEP documents no
-- field that joins a failed record to the request that sent it.
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local ingest = require "aep.emulator.ingest"

local M = {}

local BASE = "/data/foundation/export/batches"
local PAGE = 100

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "http://ns.adobe.com/aep/errors/DAS-" .. status)
end

local function find_batch(ctx, id)
  ingest.setup(ctx.store)
  local row = ingest.get_batch(id)
  if not row or row.sandbox ~= (ctx.sandbox or "prod") then return nil end
  return row
end

-- the failed records of a batch, in ingestion order
local function failed_records(ctx, batch)
  local out, offset = {}, 0
  for _ = 1, 10000 do
    local page = ingest.records(ctx, batch.dataset_id, { batch_id = batch.id, status = "failed", limit = 1000,
                                                         offset = offset })
    for _, r in ipairs(page.records) do out[#out + 1] = r end
    offset = offset + #page.records
    if #page.records == 0 or offset >= page.count then break end
  end
  return out
end

local function is_parse_error(r)
  local v = r.errors and r.errors[1]
  return r.entity == nil and type(v) == "table" and type(v.message) == "string"
    and v.message:match("^Row %d+ is not") ~= nil
end

-- the [{code, message}] of one record: a code per violation (the Catalog codes of batches.lua)
local function error_entries(r)
  local out = json.array {}
  if is_parse_error(r) then
    out[1] = { code = "1401", message = "Row is corrupted and cannot be read, please fix and resend." }
    return out
  end
  -- one entry per innermost violation (everit wraps a type+enum check in an allOf)
  for _, v in ipairs(require("aep.xdm").leaves(r.errors or {})) do
    out[#out + 1] = { code = ingest.violation_code({ v }), message = v.message }
  end
  return out
end

local function empty_arrays(list)
  for _, v in ipairs(list or {}) do
    if type(v) == "table" then
      v.causingExceptions = json.array(v.causingExceptions or {})
      empty_arrays(v.causingExceptions)
    end
  end
  return json.array(list or {})
end

-- One failed record as a line of a failed file.
local function failed_line(ctx, batch, r, filename, index)
  local line = {
    _errors = error_entries(r),
    _filename = filename,
    _emulator = { xactionId = r.xactionId, receivedTimeMs = r.receivedTimeMs, row = index },
  }
  if is_parse_error(r) then
    -- the row's text when it was kept (a row that does not decode), else what was wrong with it
    local v = r.errors[1]
    line._corrupt_record = v.corruptRecord or (r.entity == nil and v.message) or nil
  else
    line._validationErrors = empty_arrays(r.errors)
  end
  if batch.source == "streaming" then
    local ds = require("aep.emulator.catalog").get_dataset(ctx, batch.dataset_id)
    local ref = ds and ds.schemaRef or nil
    line.header = { schemaRef = ref, imsOrgId = ctx.app.org and ctx.app.org.org_id, datasetId = batch.dataset_id,
                    flowId = batch.doc.flowId }
    line.body = { xdmMeta = { schemaRef = ref }, xdmEntity = r.entity }
    if r.entity == nil then line.body.xdmEntity = nil end
  elseif r.entity ~= nil then
    line._record = r.entity
  end
  return line
end

local function jsonl(lines)
  local parts = {}
  for i, l in ipairs(lines) do parts[i] = json.encode(l) end
  return table.concat(parts, "\n") .. (#parts > 0 and "\n" or "")
end

local function href(ctx, batch_id, kind, path)
  local base = ctx.app.urls and ctx.app.urls.base or ""
  return base .. BASE .. "/" .. batch_id .. "/" .. kind .. "?path=" .. path:gsub("/", "%%2F")
end

local function listing(entries)
  local data = json.array {}
  for i, e in ipairs(entries) do data[i] = e end
  return 200, errors.JSON_HEADERS, { data = data, _page = { limit = PAGE, count = #data }, _links = {} }
end

local function failed_name(batch) return "part-00000-" .. batch.id:lower() .. "-c000.json" end

-- the row-error files of a batch: name -> lines (parse errors apart from the others)
local function row_error_files(ctx, batch)
  local parsing, conversion = {}, {}
  for i, r in ipairs(failed_records(ctx, batch)) do
    if is_parse_error(r) then
      parsing[#parsing + 1] = failed_line(ctx, batch, r, "parsing_errors_0.json", i)
    else
      conversion[#conversion + 1] = failed_line(ctx, batch, r, "conversion_errors_0.json", i)
    end
  end
  local files = {}
  if #conversion > 0 then files[#files + 1] = { "conversion_errors_0.json", conversion } end
  if #parsing > 0 then files[#files + 1] = { "parsing_errors_0.json", parsing } end
  return files
end

-- GET .../failed[?path=NAME]
local function failed(req, ctx)
  local batch = find_batch(ctx, req.params.batchId)
  if not batch then return problem(404, "Not Found", "Batch " .. tostring(req.params.batchId) .. " was not found") end
  local name = failed_name(batch)
  local path = req.query and req.query.path
  local records = failed_records(ctx, batch)
  if path == nil or path == "" then
    if #records == 0 then return listing({}) end
    local lines = {}
    for i, r in ipairs(records) do lines[i] = failed_line(ctx, batch, r, name, i) end
    return listing({
      { name = "_SUCCESS", length = "0", _links = { self = { href = href(ctx, batch.id, "failed", "_SUCCESS") } } },
      { name = name, length = tostring(#jsonl(lines)), _links = { self = { href = href(ctx, batch.id, "failed", name) } } },
    })
  end
  if path == "_SUCCESS" and #records > 0 then return 200, { ["Content-Type"] = "application/octet-stream" }, "" end
  if path ~= name or #records == 0 then return problem(404, "Not Found", "The path is not found") end
  local lines = {}
  for i, r in ipairs(records) do lines[i] = failed_line(ctx, batch, r, name, i) end
  return 200, { ["Content-Type"] = "application/json" }, jsonl(lines)
end

-- GET .../meta?path=row_errors | row_errors/NAME | row_error_samples.json
local function meta(req, ctx)
  local batch = find_batch(ctx, req.params.batchId)
  if not batch then return problem(404, "Not Found", "Batch " .. tostring(req.params.batchId) .. " was not found") end
  local path = (req.query and req.query.path or ""):gsub("/+$", "")
  local files = row_error_files(ctx, batch)
  if path == "row_errors" then
    local entries = {}
    for _, f in ipairs(files) do
      entries[#entries + 1] = { name = f[1], length = tostring(#jsonl(f[2])),
        _links = { self = { href = href(ctx, batch.id, "meta", "row_errors/" .. f[1]) } } }
    end
    return listing(entries)
  end
  local file = path:match("^row_errors/(.+)$")
  if file then
    for _, f in ipairs(files) do
      if f[1] == file then return 200, { ["Content-Type"] = "application/json" }, jsonl(f[2]) end
    end
    return problem(404, "Not Found", "The path is not found")
  end
  if path == "row_error_samples.json" or path == "row_errors_sample.json" then
    local sample = {}
    for _, f in ipairs(files) do
      for _, l in ipairs(f[2]) do if #sample < 100 then sample[#sample + 1] = l end end
    end
    if #sample == 0 then return problem(404, "Not Found", "The path is not found") end
    return 200, { ["Content-Type"] = "application/json" }, jsonl(sample)
  end
  if path == "" then
    local entries = {}
    if #files > 0 then
      entries[1] = { name = "row_errors", length = "0",
                     _links = { self = { href = href(ctx, batch.id, "meta", "row_errors") } } }
    end
    return listing(entries)
  end
  return problem(404, "Not Found", "The path is not found")
end

-- GET .../files: one dataset file per batch that ingested records
local function files(req, ctx)
  local batch = find_batch(ctx, req.params.batchId)
  if not batch then return problem(404, "Not Found", "Batch " .. tostring(req.params.batchId) .. " was not found") end
  local m = batch.doc.metrics or {}
  local data = json.array {}
  local out = tonumber(m.outputRecordCount) or 0
  if out > 0 and batch.status ~= "failed" then
    local file_id = batch.id .. "-1"
    local function int(v) return string.format("%d", math.floor(tonumber(v) or 0)) end
    data[1] = { dataSetFileId = file_id, dataSetViewId = batch.dataset_id, version = "1.0.0",
                created = int(batch.created), updated = int(batch.updated), records = int(out),
                size = int(m.inputByteSize), isValid = true,
                _links = { self = { href = (ctx.app.urls and ctx.app.urls.base or "") ..
                  "/data/foundation/export/files/" .. file_id } } }
  end
  return 200, errors.JSON_HEADERS, { data = data, _page = { limit = PAGE, count = #data } }
end

M.failed_line = failed_line
M.failed_records = failed_records

function M.install(app)
  local o = { auth = "platform" }
  app:route("GET", BASE .. "/:batchId/failed", failed, o)
  app:route("GET", BASE .. "/:batchId/meta", meta, o)
  app:route("GET", BASE .. "/:batchId/files", files, o)
end

return M
