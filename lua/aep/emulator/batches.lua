-- aep.emulator.batches: Batch Ingestion and Catalog's batch objects.
--   POST /data/foundation/import/batches                       create (201, status "loading")
--   PUT  /data/foundation/import/batches/:b/datasets/:d/files/:name   upload one file (200)
--   POST /data/foundation/import/batches/:b?action=COMPLETE    process now (200, the batch); also ABORT
--   large-file upload (POST ?action=INITIALIZE|COMPLETE, PATCH, HEAD on a file): large_files.lua
--   GET  /data/foundation/import/batches/:b/datasets/:d/preview: batch_preview.lua
--   GET  /data/foundation/catalog/batches/:b  (and the collection's singular /catalog/batch/:b)
--   GET  /data/foundation/catalog/batches?dataSet=..&status=..&limit=..&start=..&orderBy=..
--
-- Uploaded files are written under DATA_DIR/batches/<batchId>/<n>.upload: the client's file name
-- is only ever a database value, never part of a path, so no name can leave the data directory.
-- COMPLETE moves the batch loading -> processing (committed) -> success | failed (committed with
-- its records, metrics and errors in one transaction); a batch found "processing" after a crash
-- is processed again on the next batch request. Files (read by batch_files.lua): a JSON array
-- (multi-line or not), JSON Lines, or with isMultiLineJson concatenated multi-line objects; CSV
-- (batch_csv.lua: a header row of XDM paths). Parquet batches fail naming the emulator's own
-- limitation (batch_files.format_limitation).
-- Every record is validated against the dataset's schema as streaming does. As in AEP, one bad
-- row fails the whole batch unless the batch allows partial ingestion (partialIngestionPercentage,
-- at batch creation).
-- Streaming writes its own Catalog batches (ingest.lua); they are served here as well.
local json = require "aep.json"
local ingest = require "aep.emulator.ingest"
local batch_files = require "aep.emulator.batch_files"
local batch_csv = require "aep.emulator.batch_csv"
local registry = require "aep.emulator.registry"
local errors = require "aep.emulator.errors"
local large_files = require "aep.emulator.large_files"
local batch_preview = require "aep.emulator.batch_preview"

local M = {}

local FILES_SCHEMA = [[
CREATE TABLE IF NOT EXISTS ingest_batch_files (
  batch_id TEXT NOT NULL, dataset_id TEXT NOT NULL, name TEXT NOT NULL,
  path TEXT NOT NULL, size INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (batch_id, dataset_id, name));
]]

-- Catalog error entries (error-diagnostics.md, batch-ingestion/troubleshooting.md).
M.CODES = {
  summary = "INGEST-1212-400",
  parse = "INGEST-1401-400",
  required = ingest.CODES.required,
  invalid = ingest.CODES.invalid,
  empty = "106",
  format = "INGEST-1100-400",
  dataset = "INGEST-1104-400",
}
local DESCRIPTIONS = {
  [M.CODES.parse] = "The row has corrupted data and cannot be read or parsed. Fix the corrupted data and try again.",
  [M.CODES.required] = "A required field is either missing or has a value of null. Add the required field to the input row and try again.",
  [M.CODES.invalid] = "The row has a value that does not conform to the schema. Fix the value and try again.",
  [M.CODES.empty] = "Dataset file is empty. Please upload file with data.",
}
M.DESCRIPTIONS = DESCRIPTIONS
local CODE_ORDER = { M.CODES.parse, M.CODES.required, M.CODES.invalid }

local st -- statements of this module

local function setup(store)
  ingest.setup(store)
  if st and st.store == store then return end
  store.db:exec(FILES_SCHEMA)
  local db = store.db
  st = {
    store = store,
    file_put = db:prepare("INSERT INTO ingest_batch_files (batch_id, dataset_id, name, path, size, seq) " ..
      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id, dataset_id, name) DO UPDATE SET size = excluded.size"),
    file_get = db:prepare("SELECT path, seq FROM ingest_batch_files WHERE batch_id = ? AND dataset_id = ? AND name = ?"),
    file_next = db:prepare("SELECT coalesce(max(seq), 0) + 1 FROM ingest_batch_files WHERE batch_id = ?"),
    files = db:prepare("SELECT name, path, size, dataset_id FROM ingest_batch_files WHERE batch_id = ? ORDER BY seq"),
    processing = db:prepare("SELECT id FROM ingest_batches WHERE source = 'import' AND status = 'processing'"),
  }
end

local function now_ms(ctx)
  return math.floor((ctx.now or os.time()) * 1000)
end

local function data_dir(ctx)
  local c = ctx.config or (ctx.app and ctx.app.config) or {}
  local d = c.data_dir or c.dataDir
  if not d then
    local store = ctx.store or ctx.app.store
    d = store.path and store.path:match("^(.*)/[^/]*$")
  end
  return d or "."
end

local function org_id(ctx)
  local org = ctx.org or (ctx.app and ctx.app.org) or {}
  return org.org_id or org.orgId or org.IMS_ORG
end

local function problem(status, title, detail, code)
  return errors.problem(status, title, detail,
    code and ("http://ns.adobe.com/aep/errors/" .. code) or nil)
end

local function batch_not_found(id)
  return problem(404, "Not Found", "Batch [" .. tostring(id) .. "] not found", "INGEST-1002-404")
end

-- The batch of this sandbox, or nil
local function find_batch(ctx, id)
  local row = ingest.get_batch(id)
  if not row or row.sandbox ~= (ctx.sandbox or "prod") then return nil end
  return row
end

---------------------------------------------------------------------------------------------
-- Catalog view

local violation_code = ingest.violation_code
M.violation_code = violation_code

-- Catalog errors for n failures: the summary, then one entry per code (recordCount).
local function error_entries(counts, failed, output, per_file)
  local out = json.array {}
  if failed == 0 and not per_file then return out end
  out[#out + 1] = {
    code = M.CODES.summary,
    description = string.format("Encountered %d errors in the data. Successfully ingested %d rows. " ..
      "Please review the associated diagnostic files for more details.", failed, output),
  }
  for _, code in ipairs(CODE_ORDER) do
    if (counts[code] or 0) > 0 then
      out[#out + 1] = { code = code, description = DESCRIPTIONS[code], recordCount = counts[code] }
    end
  end
  for _, e in ipairs(per_file or {}) do out[#out + 1] = e end
  return out
end

local function catalog_view(row)
  local doc = row.doc
  local view = {
    id = row.id,
    externalId = row.id,
    status = row.status,
    imsOrg = doc.imsOrg,
    created = row.created,
    updated = row.updated,
    createdClient = doc.createdClient,
    createdUser = doc.createdUser,
    updatedUser = doc.updatedUser or doc.createdUser,
    relatedObjects = { { type = "dataSet", id = row.dataset_id } },
    version = doc.version or "1.0.0",
    tags = doc.tags or {},
    inputFormat = doc.inputFormat,
    started = doc.started,
    completed = doc.completed,
  }
  if row.source == "streaming" then
    -- Streaming batches: metrics and error counts were written with their records.
    local m = doc.metrics or { inputRecordCount = 0, outputRecordCount = 0, failedRecordCount = 0 }
    view.metrics = m
    view.started = view.started or row.created
    -- a window's batches are "processing" until the window closes (async_validation.lua)
    if row.status ~= "processing" then view.completed = view.completed or row.created end
    view.failedBatchLocation = doc.failedBatchLocation
    view.errors = error_entries(doc.codes or {}, m.failedRecordCount, m.outputRecordCount)
  else
    view.metrics = doc.metrics
    view.errors = doc.errors and json.array(doc.errors) or json.array {}
    if doc.errors then
      for _, e in ipairs(doc.errors) do
        if e.rows then json.array(e.rows) end
      end
    end
  end
  -- the top-level counts of Catalog's batchResponse (catalog.yaml)
  if view.metrics then
    view.recordCount, view.failedRecordCount = view.metrics.outputRecordCount, view.metrics.failedRecordCount
  end
  return view
end
M.catalog_view = catalog_view

---------------------------------------------------------------------------------------------
-- Processing (COMPLETE)

local function fail_whole(ctx, row, doc, t, entry)
  doc.errors = { entry }
  doc.metrics = doc.metrics or { inputByteSize = 0, inputFileCount = 0, inputRecordCount = 0,
                                 outputRecordCount = 0, failedRecordCount = 0 }
  doc.completed = t
  local store = ctx.store or ctx.app.store
  store.transaction(function() ingest.update_batch(row.id, "failed", t, doc) end)
end

-- process(ctx, row): validate and store every record of the batch; set its final status.
local function process(ctx, row)
  local doc = row.doc
  local t = now_ms(ctx)
  local store = ctx.store or ctx.app.store
  local info = ingest.dataset(ctx, row.sandbox, row.dataset_id)
  if not info then
    return fail_whole(ctx, row, doc, t, { code = M.CODES.dataset,
      description = "Dataset [" .. row.dataset_id .. "] was not found or has no schema.", rows = {} })
  end
  local format = type(doc.inputFormat) == "table" and tostring(doc.inputFormat.format or ""):lower() or ""
  local limitation = batch_files.format_limitation(doc.inputFormat)
  if limitation then
    return fail_whole(ctx, row, doc, t, { code = M.CODES.format, description = limitation, rows = {} })
  end
  local multiline = doc.inputFormat.isMultiLineJson == true
  local resolved = format == "csv" and registry.resolve_schema(ctx, info.schema_id) or nil
  local files = {}
  for r in st.files:rows(row.id) do files[#files + 1] = { name = r[1], path = r[2], size = r[3] } end

  local good, bad = {}, {}      -- { entity } ; { entity|nil, violations }
  local counts, per_file = {}, {}
  local input, bytes = 0, 0
  local unreadable = false -- a file whose rows cannot be read at all (a CSV header AEP refuses)
  for _, file in ipairs(files) do
    bytes = bytes + file.size
    local rows, header_problem
    if format == "csv" then
      rows, header_problem = batch_csv.rows(file.path, resolved)
    else
      rows = batch_files.rows(file.path, multiline)
    end
    if header_problem then
      unreadable = true
      per_file[#per_file + 1] = { code = M.CODES.parse, description = header_problem, rows = {}, fileName = file.name }
    elseif #rows == 0 then
      per_file[#per_file + 1] = { code = M.CODES.empty, description = DESCRIPTIONS[M.CODES.empty],
                                  rows = {}, fileName = file.name }
    end
    local file_codes, file_rows = {}, {}
    for k, r in ipairs(rows) do
      input = input + 1
      local code, violations
      local v = r.value
      if r.err or type(v) ~= "table" or (v[1] ~= nil) then
        code = M.CODES.parse
        violations = { { message = r.message or (r.err and ("Row " .. k .. " is not valid JSON")
                                         or ("Row " .. k .. " is not a JSON object")),
                         corruptRecord = r.text } }
      else
        local ok, viol = info.validate(v)
        if ok then
          good[#good + 1] = v
        else
          code, violations = violation_code(viol), viol
        end
      end
      if code then
        bad[#bad + 1] = { type(v) == "table" and v[1] == nil and v or nil, violations }
        counts[code] = (counts[code] or 0) + 1
        file_codes[code] = (file_codes[code] or 0) + 1
        file_rows[code] = file_rows[code] or {}
        local fr = file_rows[code]
        if #fr < 100 then fr[#fr + 1] = k end
      end
    end
    for _, code in ipairs(CODE_ORDER) do
      if file_codes[code] then
        per_file[#per_file + 1] = { code = code, description = DESCRIPTIONS[code],
                                    recordCount = file_codes[code], rows = file_rows[code],
                                    fileName = file.name }
      end
    end
  end
  if #files == 0 then
    per_file[#per_file + 1] = { code = M.CODES.empty, description = DESCRIPTIONS[M.CODES.empty], rows = {} }
  end

  local failed = #bad
  local empty = input == 0
  local allowed = tonumber(doc.partialIngestionPercentage)
  local success
  if empty or unreadable then
    success = false
  elseif failed == 0 then
    success = true
  else
    success = allowed ~= nil and (failed * 100 / input) <= allowed
  end
  local output = success and #good or 0
  doc.metrics = { inputByteSize = bytes, inputFileCount = #files, inputRecordCount = input,
                  outputRecordCount = output, failedRecordCount = failed }
  if failed > 0 or empty or unreadable then
    doc.errors = error_entries(counts, failed, output, per_file)
  else
    doc.errors = {}
  end
  doc.completed = t
  local status = success and "success" or "failed"
  store.transaction(function()
    local n = 0
    if success then
      for _, entity in ipairs(good) do
        ingest.insert(info, row.id, row.id .. ":" .. n, t, "success", entity)
        n = n + 1
      end
    end
    for _, b in ipairs(bad) do
      ingest.insert(info, row.id, row.id .. ":" .. n, t, "failed", b[1], nil, b[2])
      n = n + 1
    end
    ingest.update_batch(row.id, status, t, doc)
  end)
end

local resumed = false
local function ready(ctx)
  setup(ctx.store or ctx.app.store)
  if resumed then return end
  resumed = true
  local ids = {}
  for r in st.processing:rows() do ids[#ids + 1] = r[1] end
  for _, id in ipairs(ids) do
    local row = ingest.get_batch(id)
    if row then
      local bctx = setmetatable({ sandbox = row.sandbox }, { __index = ctx })
      local ok, err = pcall(process, bctx, row)
      if not ok then io.stderr:write("aep emulator: batch " .. id .. ": " .. tostring(err) .. "\n") end
    end
  end
end

---------------------------------------------------------------------------------------------
-- Handlers

-- -> value | nil, answer (a response in the router's table form)
local function json_body(req)
  if req.json_body then return req:json_body() end
  local v, err = json.decode(req.body or "")
  if v == nil then
    local s, h, b = errors.bad_json("import", err)
    return nil, { s, h, b, status = s, headers = h, body = b }
  end
  return v
end

-- POST /data/foundation/import/batches
function M.create(req, ctx)
  ready(ctx)
  local body, answer = json_body(req)
  if body == nil then return answer end
  if type(body) ~= "table" then
    return problem(400, "Bad Request", "The request body must be a JSON object", "INGEST-1000-400")
  end
  local ds_id = body.datasetId
  if type(ds_id) ~= "string" or ds_id == "" then
    return problem(400, "Bad Request", "datasetId is required", "INGEST-1001-400")
  end
  local catalog = require "aep.emulator.catalog"
  local ds = catalog.get_dataset(ctx, ds_id)
  if not ds then
    return problem(400, "Bad Request", "Dataset [" .. ds_id .. "] not found", "INGEST-1104-400")
  end
  local input_format = body.inputFormat
  if input_format ~= nil and type(input_format) ~= "table" then
    return problem(400, "Bad Request", "inputFormat must be an object", "INGEST-1001-400")
  end
  input_format = input_format or { format = "parquet" }
  local fmt = tostring(input_format.format or "parquet"):lower()
  if fmt ~= "json" and fmt ~= "parquet" and fmt ~= "csv" then
    return problem(400, "Bad Request", "inputFormat.format must be one of json, parquet, csv", "INGEST-1001-400")
  end
  input_format.format = fmt
  local t = now_ms(ctx)
  local id = ingest.new_batch_id(t)
  local client = req.headers["x-api-key"]
  local org = ctx.org or (ctx.app and ctx.app.org) or {}
  local user = org.technical_account_id or client
  local doc = {
    imsOrg = org_id(ctx),
    createdClient = client,
    createdUser = user,
    updatedUser = user,
    inputFormat = input_format,
    version = "1.0.0",
    tags = {
      acp_producer = { client },
      acp_stagePath = { tostring(client) .. "/stage/" .. id },
    },
    partialIngestionPercentage = tonumber(body.partialIngestionPercentage),
    enableErrorDiagnostics = body.enableErrorDiagnostics,
  }
  local store = ctx.store or ctx.app.store
  local info = { sandbox = ctx.sandbox or "prod", id = ds_id }
  store.transaction(function() ingest.new_batch(info, "import", "loading", t, doc, id) end)
  local view = catalog_view(ingest.get_batch(id))
  view.metrics, view.errors, view.started, view.completed = nil, nil, nil, nil
  return 201, errors.JSON_HEADERS, view
end

local function valid_name(name)
  if type(name) ~= "string" or name == "" or #name > 1024 or name:find("%z") then return false end
  for seg in name:gmatch("[^/]+") do
    if seg == "." or seg == ".." then return false end
  end
  return name:find("[^/]") ~= nil
end

-- A handler's answer in the router's table form (one value to hand on)
local function as_answer(status, headers, body)
  return { status, headers, body, status = status, headers = headers, body = body }
end

-- check_upload(req, ctx) -> batch row | nil, answer: the batch of this sandbox, loading, for the
-- dataset of the path, and a file name that stays a name (shared by PUT and large-file upload)

local function check_upload(req, ctx)
  ready(ctx)
  local p = req.params
  local row = find_batch(ctx, p.batchId)
  if not row or row.source ~= "import" then return nil, as_answer(batch_not_found(p.batchId)) end
  if row.dataset_id ~= p.datasetId then
    return nil, as_answer(problem(400, "Bad Request", "Dataset [" .. tostring(p.datasetId) .. "] is not the dataset of batch [" ..
      row.id .. "]", "INGEST-1105-400"))
  end
  if row.status ~= "loading" then
    return nil, as_answer(problem(400, "Bad Request", "Batch [" .. row.id .. "] is " .. row.status ..
      "; files can only be added while it is loading", "INGEST-1106-400"))
  end
  if not valid_name(p.fileName) then
    return nil, as_answer(problem(400, "Bad Request", "Invalid file name", "INGEST-1107-400"))
  end
  return row
end

-- file_slot(ctx, row, name) -> path, seq: where the batch's file of that name is kept
-- (DATA_DIR/batches/<batchId>/<seq>.upload; the same one when the name was uploaded before)
local function file_slot(ctx, row, name)
  local existing = st.file_get:first(row.id, row.dataset_id, name)
  if existing then return existing[1], existing[2] end
  local host = require "aep.host"
  local seq = st.file_next:first(row.id)[1]
  local dir = data_dir(ctx) .. "/batches"
  assert(host.mkdir(dir))
  dir = dir .. "/" .. row.id
  assert(host.mkdir(dir))
  return string.format("%s/%d.upload", dir, seq), seq
end

-- PUT /data/foundation/import/batches/:batchId/datasets/:datasetId/files/*fileName
function M.upload(req, ctx)
  local row, answer = check_upload(req, ctx)
  if not row then return answer end
  local name = req.params.fileName
  local path, seq = file_slot(ctx, row, name)
  local body = req.body or ""
  local ok, err = require("aep.host").write_file(path, body, 384)
  if not ok then
    return problem(500, "Internal Server Error", "Could not store the file: " .. tostring(err))
  end
  st.file_put:run(row.id, row.dataset_id, name, path, #body, seq)
  -- PUT replaces the whole file: a large-file upload of that name in progress is dropped
  large_files.discard(ctx, row.id, row.dataset_id, name)
  return 200, {}, ""
end

-- The batch as Catalog shows it: the body of COMPLETE and ABORT (the spec's Batch; the guide
-- shows only "200 OK").
local function batch_answer(id)
  return 200, errors.JSON_HEADERS, catalog_view(ingest.get_batch(id))
end

-- POST /data/foundation/import/batches/:batchId?action=COMPLETE|ABORT
function M.action(req, ctx)
  ready(ctx)
  local action = tostring(req.query and req.query.action or ""):upper()
  local row = find_batch(ctx, req.params.batchId)
  if not row or row.source ~= "import" then return batch_not_found(req.params.batchId) end
  local store = ctx.store or ctx.app.store
  local t = now_ms(ctx)
  if action == "COMPLETE" then
    -- Retrying COMPLETE is safe (troubleshooting.md): a batch already past loading answers 200.
    if row.status ~= "loading" then return batch_answer(row.id) end
    local open_name = large_files.open_file(row.id)
    if open_name then
      return problem(400, "Bad Request", "File [" .. open_name .. "] of batch [" .. row.id .. "] is a large-file " ..
        "upload that was initialized but not completed: send its remaining chunks and POST " ..
        ".../files/" .. open_name .. "?action=COMPLETE, then complete the batch", "INGEST-1110-400")
    end
    row.doc.started = t
    store.transaction(function() ingest.update_batch(row.id, "processing", t, row.doc) end)
    row.status = "processing"
    process(ctx, row)
    return batch_answer(row.id)
  elseif action == "ABORT" then
    if row.status == "loading" then
      store.transaction(function() ingest.update_batch(row.id, "aborted", t, row.doc) end)
      large_files.discard(ctx, row.id)
      return batch_answer(row.id)
    end
    return problem(400, "Bad Request", "Batch [" .. row.id .. "] is " .. row.status .. " and cannot be aborted",
      "INGEST-1108-400")
  end
  return problem(400, "Bad Request", "Unknown action [" .. tostring(req.query and req.query.action) ..
    "]; use COMPLETE or ABORT", "INGEST-1109-400")
end

-- GET /data/foundation/catalog/batches/:batchId  ->  { "<id>": {...} }
function M.get(req, ctx)
  ready(ctx)
  local row = find_batch(ctx, req.params.batchId)
  if not row then return batch_not_found(req.params.batchId) end
  return 200, errors.JSON_HEADERS, { [row.id] = catalog_view(row) }
end

-- GET /data/foundation/catalog/batches  ->  { "<id>": {...}, ... }
-- Catalog filters (filter-data.md): limit (default 20, at most 100, 0 or junk -> 400), start
-- (offset), dataSet, status, orderBy=[asc:|desc:]created|updated.
function M.list(req, ctx)
  ready(ctx)
  local q = req.query or {}
  local limit = 20
  if q.limit ~= nil then
    limit = math.tointeger(tonumber(q.limit))
    if not limit or limit < 1 then
      return problem(400, "Bad Request", "limit must be an integer between 1 and 100", "CAT-1001-400")
    end
    if limit > 100 then limit = 100 end
  end
  local start = math.tointeger(tonumber(q.start or 0)) or 0
  if start < 0 then start = 0 end
  local where, args = { "sandbox = ?" }, { ctx.sandbox or "prod" }
  local ds = q.dataSet or q.dataset or q.datasetId
  if ds and ds ~= "" then where[#where + 1] = "dataset_id = ?"; args[#args + 1] = ds end
  if q.status and q.status ~= "" then
    local list = {}
    for v in q.status:gmatch("[^,]+") do list[#list + 1] = "?"; args[#args + 1] = v:lower() end
    where[#where + 1] = "status IN (" .. table.concat(list, ",") .. ")"
  end
  -- createdAfter/createdBefore: epoch ms, exclusive (filter-data.md)
  for key, op in pairs { createdAfter = ">", createdBefore = "<" } do
    if q[key] ~= nil then
      local v = math.tointeger(tonumber(q[key]))
      if not v then return problem(400, "Bad Request", key .. " must be a time in milliseconds", "CAT-1001-400") end
      where[#where + 1] = "created " .. op .. " ?"; args[#args + 1] = v
    end
  end
  local dir, field = "ASC", "created"
  local ob = q.orderBy or q.orderby
  if ob then
    local d, f = ob:match("^(%a+):(%a+)$")
    f = f or ob
    if d and d:lower() == "desc" then dir = "DESC" end
    if f == "updated" then field = "updated" end
  end
  args[#args + 1] = limit
  args[#args + 1] = start
  local db = (ctx.store or ctx.app.store).db
  local stmt = db:prepare("SELECT id FROM ingest_batches WHERE " .. table.concat(where, " AND ") ..
    " ORDER BY " .. field .. " " .. dir .. ", id " .. dir .. " LIMIT ? OFFSET ?")
  local ids = {}
  for r in stmt:rows(table.unpack(args)) do ids[#ids + 1] = r[1] end
  stmt:close()
  local out = {}
  for _, id in ipairs(ids) do
    local row = ingest.get_batch(id)
    if row then out[id] = catalog_view(row) end
  end
  return 200, errors.JSON_HEADERS, out
end

-- batches.install(app)
function M.install(app)
  setup(app.store)
  app:route("POST", "/data/foundation/import/batches", M.create, { auth = "platform" })
  app:route("PUT", "/data/foundation/import/batches/:batchId/datasets/:datasetId/files/*fileName", M.upload,
    { auth = "platform" })
  app:route("POST", "/data/foundation/import/batches/:batchId", M.action, { auth = "platform" })
  local helpers = { ready = ready, find_batch = find_batch, check_upload = check_upload, file_slot = file_slot,
                    problem = problem, batch_not_found = batch_not_found, data_dir = data_dir,
                    file_put = function(...) st.file_put:run(...) end,
                    file_get = function(...) return st.file_get:first(...) end,
                    files = function(batch_id)
                      local out = {}
                      for r in st.files:rows(batch_id) do
                        out[#out + 1] = { name = r[1], path = r[2], size = r[3], dataset_id = r[4] }
                      end
                      return out
                    end }
  large_files.install(app, helpers)
  batch_preview.install(app, helpers)
  app:route("GET", "/data/foundation/catalog/batches", M.list, { auth = "platform" })
  app:route("GET", "/data/foundation/catalog/batches/:batchId", M.get, { auth = "platform" })
  app:route("GET", "/data/foundation/catalog/batch/:batchId", M.get, { auth = "platform" })
end

-- batches.reset(app): ingest.reset clears the batches; the uploaded files go with their rows
-- (their empty directories stay)
function M.reset(app)
  setup(app.store)
  for r in app.store.db:prepare("SELECT path FROM ingest_batch_files"):rows() do os.remove(r[1]) end
  app.store.db:exec("DELETE FROM ingest_batch_files")
  large_files.reset(app)
end

return M
