-- aep.emulator.export_files: Data Access downloads of a batch's dataset files and a dataset's
-- preview (help/data-access/api.md, data-access.yaml; the batch's files are listed by
-- diagnostics.lua's GET /export/batches/:id/files, whose dataSetFileId is "<batchId>-1"):
--   GET  /data/foundation/export/files/:dataSetFileId            -> {data:[{name, length, _links.self.href}], _page}
--   GET  /data/foundation/export/files/:dataSetFileId?path=NAME  -> the file (JSON Lines)
--   HEAD /data/foundation/export/files/:dataSetFileId?path=NAME  -> Content-Length, Content-Type, Accept-Ranges
--   GET  /data/foundation/export/datasets/:id/preview            -> {data:[record, ...]} (the latest 100)
-- EMULATOR CHOICE: AEP stores dataset files as Parquet (part-*.parquet); the emulator keeps
-- records, not files, and serves each batch's ingested records as one JSON Lines file,
-- part-00000.json, one XDM entity a line in ingestion order. No Range requests (206).
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local ingest = require "aep.emulator.ingest"

local M = {}

local BASE = "/data/foundation/export"
M.FILE_NAME = "part-00000.json"
local PREVIEW = 100

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "http://ns.adobe.com/aep/errors/DAS-" .. status)
end

-- the batch behind a dataSetFileId, when it has a file (ingested records)
local function file_batch(ctx, file_id)
  local batch_id = tostring(file_id):match("^(.+)%-1$")
  if not batch_id then return nil end
  ingest.setup(ctx.store)
  local row = ingest.get_batch(batch_id)
  if not row or row.sandbox ~= (ctx.sandbox or "prod") or row.status == "failed" then return nil end
  return row
end

-- the file's text: the batch's ingested records, one JSON entity a line
local function content(ctx, batch)
  local parts, offset = {}, 0
  for _ = 1, 100000 do
    local page = ingest.records(ctx, batch.dataset_id, { batch_id = batch.id, status = "success",
                                                         limit = 1000, offset = offset })
    for _, r in ipairs(page.records) do parts[#parts + 1] = json.encode(r.entity) .. "\n" end
    offset = offset + #page.records
    if #page.records == 0 or offset >= page.count then break end
  end
  return table.concat(parts)
end

local function not_found(id)
  return problem(404, "Not Found", "The dataset file " .. tostring(id) .. " was not found")
end

local function file(req, ctx)
  local id = req.params.dataSetFileId
  local batch = file_batch(ctx, id)
  if not batch then return not_found(id) end
  local path = req.query and req.query.path
  local text = content(ctx, batch)
  if text == "" then return not_found(id) end
  if path == nil or path == "" then
    local href = (ctx.app.urls and ctx.app.urls.base or "") .. BASE .. "/files/" .. id .. "?path=" .. M.FILE_NAME
    return 200, errors.JSON_HEADERS, {
      data = json.array { { name = M.FILE_NAME, length = tostring(#text), _links = { self = { href = href } } } },
      _page = { limit = 100, count = 1 } }
  end
  if path ~= M.FILE_NAME then
    return problem(404, "Not Found", "The file " .. path .. " is not part of the dataset file " .. id ..
      " (it holds " .. M.FILE_NAME .. ")")
  end
  -- HEAD gets the same answer: the server sends its headers (Content-Length of the file) only
  return 200, { ["Content-Type"] = "application/octet-stream", ["Accept-Ranges"] = "none" }, text
end

local function preview(req, ctx)
  local id = req.params.id
  if not ctx.store.get(ctx.sandbox, "dataset", id) then
    return problem(404, "Not Found", "The dataset " .. tostring(id) .. " was not found")
  end
  local page = ingest.records(ctx, id, { status = "success", limit = 1, offset = 0 })
  local start = math.max(0, page.count - PREVIEW)
  page = ingest.records(ctx, id, { status = "success", limit = PREVIEW, offset = start })
  local data = json.array {}
  for _, r in ipairs(page.records) do data[#data + 1] = r.entity end
  return 200, errors.JSON_HEADERS, { data = data }
end

function M.install(app)
  local o = { auth = "platform" }
  app:route("GET", BASE .. "/files/:dataSetFileId", file, o)
  app:route("HEAD", BASE .. "/files/:dataSetFileId", file, o)
  app:route("GET", BASE .. "/datasets/:id/preview", preview, o)
end

return M
