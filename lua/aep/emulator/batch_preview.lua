-- aep.emulator.batch_preview: GET /data/foundation/import/batches/:b/datasets/:d/preview
-- (batch-ingestion.yaml, retrievePreview): a data preview of the files uploaded to the batch so
-- far, as the spec's PreviewResponse:
--   { formatParams = {format, delimiter, quote, escape, charset, header},
--     preview = { columns = { {cid = "0", name = "person/name/firstName"}, ... },
--                 rows = { {["0"] = "Jane", ...}, ... } } }
-- JSON rows are flattened to their leaf fields, named by their slash path as the spec's example
-- names columns ("_acmesandbox/testClassField0"); arrays are shown as their JSON text. CSV rows
-- keep the header's names. Values are text (the spec's Row: string properties). Rows that do not
-- read are left out. `format` is required (400 without it); `nrow` caps the rows (0 or absent:
-- M.DEFAULT_ROWS; at most M.MAX_ROWS). Guide: none (Adobe's batch guides do not show preview), so
-- these choices are the emulator's (docs/EMULATOR-INTERNALS.md, "Batch preview").
local json = require "aep.json"
local batch_files = require "aep.emulator.batch_files"
local batch_csv = require "aep.emulator.batch_csv"

local M = {}

M.DEFAULT_ROWS = 100
M.MAX_ROWS = 1000

local H

local function text_of(v)
  if type(v) == "string" then return v end
  if math.type(v) == "float" and v == math.floor(v) and v > -2^53 and v < 2^53 then
    return string.format("%d", v) -- a JSON number as its text: 5, not 5.0
  end
  return json.encode(v)
end

-- Leaf fields of a JSON object in first-seen order -> calls add(path, value)
local function flatten(v, prefix, add)
  if type(v) == "table" and next(v) ~= nil and v[1] == nil then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do flatten(v[k], prefix == "" and k or (prefix .. "/" .. k), add) end
  elseif prefix ~= "" then -- an empty object at the top has no field to show
    add(prefix, v)
  end
end

local function truthy(v, default)
  if v == nil or v == "" then return default end
  return tostring(v):lower() == "true"
end

local function preview(req, ctx)
  H.ready(ctx)
  local p, q = req.params, req.query or {}
  local row = H.find_batch(ctx, p.batchId)
  if not row or row.source ~= "import" then return H.batch_not_found(p.batchId) end
  if row.dataset_id ~= p.datasetId then
    return H.problem(404, "Not Found", "Dataset [" .. tostring(p.datasetId) .. "] is not the dataset of batch [" ..
      row.id .. "]", "INGEST-1105-404")
  end
  local format = q.format and tostring(q.format):lower() or ""
  if format == "" then
    return H.problem(400, "Bad Request", "The query parameter format is required (json or csv)", "INGEST-1114-400")
  end
  if format == "parquet" then
    return H.problem(415, "Unsupported Media Type", "The emulator cannot read Parquet files (no Debian package " ..
      "reads Parquet), so it cannot preview them; Adobe Experience Platform itself previews Parquet batches.",
      "INGEST-1115-415")
  end
  if format ~= "json" and format ~= "csv" then
    return H.problem(400, "Bad Request", "Unknown format [" .. format .. "]: use json, csv or parquet", "INGEST-1114-400")
  end
  local limit = math.tointeger(tonumber(q.nrow or 0))
  if not limit or limit < 0 then
    return H.problem(400, "Bad Request", "nrow must be a whole number", "INGEST-1114-400")
  end
  if limit == 0 then limit = M.DEFAULT_ROWS end
  if limit > M.MAX_ROWS then limit = M.MAX_ROWS end
  local input = type(row.doc.inputFormat) == "table" and row.doc.inputFormat or {}
  local multiline = truthy(q.isMultiLineJson, input.isMultiLineJson == true)

  local columns, cid_of, rows = json.array {}, {}, json.array {}
  local function cid(name)
    local c = cid_of[name]
    if not c then
      c = tostring(#columns)
      cid_of[name] = c
      columns[#columns + 1] = { cid = c, name = name }
    end
    return c
  end
  for _, file in ipairs(H.files(row.id)) do
    if #rows >= limit then break end
    if format == "csv" then
      local header, data = batch_csv.table(file.path, limit - #rows)
      for _, fields in ipairs(data or {}) do
        local out = {}
        for i, name in ipairs(header) do out[cid(name)] = fields[i] end
        rows[#rows + 1] = out
      end
    else
      for _, r in ipairs(batch_files.rows(file.path, multiline)) do
        if #rows >= limit then break end
        if type(r.value) == "table" and r.value[1] == nil then
          local out = {}
          flatten(r.value, "", function(path, v) out[cid(path)] = text_of(v) end)
          rows[#rows + 1] = out
        end
      end
    end
  end
  local params = { format = format, charset = "UTF-8" }
  if format == "csv" then
    params.delimiter, params.quote, params.escape, params.header = ",", '"', "\\", true
  end
  return 200, { ["Content-Type"] = "application/json" },
    { formatParams = params, preview = { columns = columns, rows = rows } }
end

-- batch_preview.install(app, helpers): helpers from batches.lua
function M.install(app, helpers)
  H = helpers
  app:route("GET", "/data/foundation/import/batches/:batchId/datasets/:datasetId/preview", preview,
    { auth = "platform" })
end

return M
