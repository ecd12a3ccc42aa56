-- aep.emulator.runs: Flow Service dataflow runs of streaming dataflows (dataflows/api/monitor.md,
-- sources/tutorials/api/monitor.md, dataflows/api/sort-and-filter.md; docs/AEP-API-FACTS.md).
--   GET /data/foundation/flowservice/runs?property=flowId==ID[&property=...][&limit=N][&orderby=-createdAt][&count=true]
--   GET /data/foundation/flowservice/runs/:id  -> {"items":[run]} (FlowRunsListResponse)
-- One run per window of async_validation.lua (a dataflow, a dataset, --batch-window seconds).
-- Its metrics (duration, size, record, file and status summaries) and its one
-- "promotionActivity" (the documented activity id) come from the window's counters; the
-- activity's targetInfo names the window's Catalog batches, and statusSummary.extensions.manifest
-- the error-diagnostics URLs of its failed batch (diagnostics.lua).
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local async_validation = require "aep.emulator.async_validation"
local flow_query = require "aep.emulator.flow_query"

local M = {}

local BASE = "/data/foundation/flowservice"

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "https://ns.adobe.com/aep/errors/FLOW-" .. status)
end

local COLUMNS = "id, sandbox, dataset_id, flow_id, inlet_id, window_start, window_end, state, ok_batch, " ..
  "failed_batch, created, updated, completed, input, output, failed, in_bytes, out_bytes, codes"

local function row_table(r)
  return { id = r[1], sandbox = r[2], dataset_id = r[3], flow_id = r[4], inlet_id = r[5], window_start = r[6],
           window_end = r[7], state = r[8], ok_batch = r[9], failed_batch = r[10], created = r[11],
           updated = r[12], completed = r[13], input = r[14], output = r[15], failed = r[16],
           in_bytes = r[17], out_bytes = r[18], codes = cjson_safe.decode(r[19]) or {} }
end

-- The documented errors of a run whose records failed: CONNECTOR-2001-500 (the copied data failed
-- processing: parsing, validation or transformation; sources/notifications.md) on the run, the
-- INGEST-1212-400 summary and one entry per Catalog code on its activity.
local PROCESSING = { code = "CONNECTOR-2001-500",
  message = "Error in processing (parsing, validation or transformation) the copied data." }

local function status_of(w)
  if w.state ~= "done" then return "inProgress" end
  if w.failed > 0 and w.output == 0 then return "failed" end
  return "success"
end

-- runs.view(app, w) -> the run as Flow Service shows it
function M.view(app, w)
  local org = app.org or {}
  local status = status_of(w)
  local base = app.urls and app.urls.base or ""
  local started, completed = w.created, w.completed
  local duration = { startedAtUTC = started, completedAtUTC = completed }
  local size = { inputBytes = w.in_bytes, outputBytes = w.out_bytes }
  local records = { inputRecordCount = w.input, outputRecordCount = w.output, failedRecordCount = w.failed }
  local batches = json.array {}
  if w.ok_batch then batches[#batches + 1] = w.ok_batch end
  if w.failed_batch then batches[#batches + 1] = w.failed_batch end
  local files = { inputFileCount = #batches, outputFileCount = w.ok_batch and 1 or 0 }
  local run_status = { status = status }
  local act_status = { status = status }
  if w.failed > 0 then
    run_status.errors = json.array { PROCESSING }
    local ext = json.array { { code = "INGEST-1212-400", message = string.format(
      "Encountered %d errors in the data. Successfully ingested %d rows. Review the associated diagnostic " ..
      "files for additional details.", w.failed, w.output) } }
    local codes = w.codes.catalog or {}
    local names = {}
    for code in pairs(codes) do names[#names + 1] = code end
    table.sort(names)
    local batches_mod = require "aep.emulator.batches"
    for _, code in ipairs(names) do
      ext[#ext + 1] = { code = code, recordCount = codes[code],
                        message = batches_mod.DESCRIPTIONS and batches_mod.DESCRIPTIONS[code] or code }
    end
    local export = base .. "/data/foundation/export/batches/" .. tostring(w.failed_batch)
    act_status.errors = json.array { PROCESSING }
    act_status.extensions = {
      manifest = { failedRecords = export .. "/meta?path=row_errors",
                   sampleErrors = export .. "/meta?path=row_error_samples.json" },
      errors = ext,
    }
  end
  local activity = {
    id = "promotionActivity", name = "Promotion Activity", updatedAtUTC = w.updated,
    durationSummary = { startedAtUTC = started, completedAtUTC = completed,
                        extensions = { windowStart = w.window_start, windowEnd = w.window_end } },
    sizeSummary = size, recordSummary = records, fileSummary = files, statusSummary = act_status,
    targetInfo = json.array { { id = w.dataset_id, type = "DataSet",
                                reference = { type = "Batch", ids = batches } } },
  }
  return {
    id = w.id, flowId = w.flow_id, imsOrgId = org.org_id,
    createdAt = w.created, updatedAt = w.updated,
    createdBy = org.technical_account_id, updatedBy = org.technical_account_id,
    createdClient = org.client_id, updatedClient = org.client_id,
    sandboxId = w.sandbox, sandboxName = w.sandbox,
    etag = string.format("\"%s-%d\"", w.id:sub(1, 8), w.updated),
    state = w.state == "done" and "completed" or "inProgress",
    metrics = { durationSummary = duration, sizeSummary = size, recordSummary = records, fileSummary = files,
                statusSummary = run_status },
    activities = json.array { activity },
  }
end

-- the windows of the sandbox's dataflows, newest first; flow_id (a flowId==ID filter) narrows
-- the query, so a long-running emulator's thousands of windows are not all turned into runs
local function windows_of(app, sandbox, flow_id)
  async_validation.setup(app.store)
  local out = {}
  local stmt = app.store.db:prepare("SELECT " .. COLUMNS .. " FROM ingest_windows WHERE sandbox = ? AND flow_id <> '' " ..
    (flow_id and "AND flow_id = ? " or "") .. "ORDER BY created DESC, id")
  if flow_id then
    for r in stmt:rows(sandbox, flow_id) do out[#out + 1] = row_table(r) end
  else
    for r in stmt:rows(sandbox) do out[#out + 1] = row_table(r) end
  end
  stmt:close()
  return out
end

local function list(req, ctx)
  local filters, bad = flow_query.from_query(req)
  if not filters then return problem(400, "Bad Request", bad) end
  local q = req.query or {}
  local limit
  if q.limit ~= nil then
    limit = math.tointeger(tonumber(q.limit))
    if not limit or limit < 1 then return problem(400, "Bad Request", "limit must be a positive integer") end
  end
  local start = math.tointeger(tonumber(q.continuationToken or 0)) or 0
  local items = json.array {}
  local matched = 0
  local flow_id
  for _, f in ipairs(filters) do
    if f.path == "flowId" and f.op == "==" and not f.value:find(",", 1, true) then flow_id = f.value end
  end
  for _, w in ipairs(windows_of(ctx.app, ctx.sandbox or "prod", flow_id)) do
    local run = M.view(ctx.app, w)
    local ok = true
    for _, f in ipairs(filters) do
      if not flow_query.matches(run, f) then ok = false; break end
    end
    if ok then
      matched = matched + 1
      if matched > start and (not limit or #items < limit) then items[#items + 1] = run end
    end
  end
  if q.count == "true" then return 200, errors.JSON_HEADERS, { count = matched } end
  local orderby = q.orderby or q.orderBy
  if orderby then
    local desc, field = orderby:match("^([+-]?)([%w_.]+)$")
    if field then
      table.sort(items, function(a, b)
        local x, y = get_path(a, field) or 0, get_path(b, field) or 0
        if desc == "-" then return x > y end
        return x < y
      end)
    end
  end
  local links = {}
  if limit and matched > start + limit then
    -- the next page keeps the filters: the token is an offset into the filtered list
    local kept = {}
    for part in (req.raw_query or ""):gmatch("[^&]+") do
      if not part:match("^continuationToken=") then kept[#kept + 1] = part end
    end
    kept[#kept + 1] = "continuationToken=" .. (start + limit)
    links.next = { href = BASE .. "/runs?" .. table.concat(kept, "&") }
  end
  return 200, errors.JSON_HEADERS, { items = items, _links = links }
end

local function get(req, ctx)
  async_validation.setup(ctx.store)
  local stmt = ctx.store.db:prepare("SELECT " .. COLUMNS .. " FROM ingest_windows WHERE id = ? AND sandbox = ?")
  local r = stmt:first(req.params.id, ctx.sandbox or "prod")
  stmt:close()
  if not r or r[4] == "" then
    return problem(404, "Not Found", "Run " .. tostring(req.params.id) .. " was not found")
  end
  return 200, errors.JSON_HEADERS, { items = json.array { M.view(ctx.app, row_table(r)) } }
end

function M.install(app)
  local o = { auth = "platform" }
  app:route("GET", BASE .. "/runs", list, o)
  app:route("GET", BASE .. "/runs/:id", get, o)
end

return M
