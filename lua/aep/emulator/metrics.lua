-- aep.emulator.metrics: Observability Insights ingestion metrics (observability/api/metrics.md,
-- observability-insights.yaml; docs/AEP-API-FACTS.md).
--   POST /data/infrastructure/observability/insights/metrics   V2: {start, end, granularity,
--        metrics: [{name, filters: [{name: dataSetId, value: "a|b", groupBy}], aggregator, downsample}]}
--   GET  /data/infrastructure/observability/insights/metrics?metric=M[&metric=M2]&id=DATASET
--        &dateRange=START/END   V1 (deprecated; one object, as the guide shows it)
-- Counted from the records and batches the emulator holds, by received time:
--   timeseries.ingestion.dataset.recordsuccess.count        records ingested
--   timeseries.ingestion.dataset.batchsuccess.count / .batchfailed.count
--   timeseries.ingestion.dataset.size / .dailysize          bytes of ingested records
--   timeseries.data.collection.validation.total.messages.rate / .valid... / .invalid...
--                                                           streamed messages validated (counts per bucket)
--   timeseries.data.collection.validation.category.{presence,enum,format,type,pattern,range,unclassified}.count
--   timeseries.ingestion.dataset.recordfailed.count         EMULATOR EXTENSION: records that failed
--                                                           (named in no Adobe document)
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local ingest = require "aep.emulator.ingest"
local async_validation = require "aep.emulator.async_validation"

local M = {}

local PATH = "/data/infrastructure/observability/insights/metrics"
local GRANULARITY = { minute = 60, hour = 3600, day = 86400, week = 7 * 86400 }

local function insights_error(ctx, status, title, code)
  local body = {
    type = "http://ns.adobe.com/aep/errors/" .. code, title = title, status = status,
    report = { tenantInfo = { sandboxName = ctx.sandbox or "prod", sandboxId = ctx.sandbox or "prod",
                              imsOrgId = ctx.app.org and ctx.app.org.org_id }, additionalContext = json.null },
    ["error-chain"] = json.array { { serviceId = "INSGHT", errorCode = code, invokingServiceId = "INSGHT",
                                     unixTimeStampMs = math.floor((ctx.now or os.time()) * 1000) } },
  }
  return status, errors.JSON_HEADERS, body
end

local function bad(ctx, title) return insights_error(ctx, 400, "Bad Request - " .. title, "INSGHT-1000-400") end

-- ISO-8601 date-time -> ms (ingest.parse_time reads the XDM forms; a bare date is midnight UTC).
-- The spec's own example writes "2020-07-14 00:00:00+00:00": a space for the T (RFC 3339 allows it).
local function parse_iso(s)
  if type(s) ~= "string" then return nil end
  if s:match("^%d%d%d%d%-%d%d%-%d%d$") then s = s .. "T00:00:00Z" end
  s = s:gsub("^(%d%d%d%d%-%d%d%-%d%d) (%d)", "%1T%2")
  return ingest.parse_time(s)
end

local RECORD_METRICS = {
  ["timeseries.ingestion.dataset.recordsuccess.count"] = "success",
  ["timeseries.ingestion.dataset.recordfailed.count"] = "failed",
  ["timeseries.data.collection.validation.total.messages.rate"] = "stream_all",
  ["timeseries.data.collection.validation.valid.messages.rate"] = "stream_success",
  ["timeseries.data.collection.validation.invalid.messages.rate"] = "stream_failed",
  ["timeseries.ingestion.dataset.size"] = "size",
  -- "size of data ingested on a daily usage basis" (metrics.md): bytes per bucket, as .size
  ["timeseries.ingestion.dataset.dailysize"] = "size",
}
local BATCH_METRICS = {
  ["timeseries.ingestion.dataset.batchsuccess.count"] = "success",
  ["timeseries.ingestion.dataset.batchfailed.count"] = "failed",
}
local CATEGORY_PREFIX = "timeseries.data.collection.validation.category."

local function known(name)
  if RECORD_METRICS[name] or BATCH_METRICS[name] then return true end
  local cat = name:match("^" .. CATEGORY_PREFIX:gsub("%.", "%%.") .. "(%a+)%.count$")
  return cat ~= nil
end

local function bucket_of(ms, start_ms, step_s)
  if not step_s then return start_ms end
  local step = step_s * 1000
  return start_ms + ((ms - start_ms) // step) * step
end

-- values(ctx, metric, dataset_id | nil, start_ms, end_ms, step_s) -> { [bucket_ms] = number }
local function values(ctx, metric, ds, start_ms, end_ms, step_s)
  local db = ctx.store.db
  local out = {}
  local function add(ms, n) local b = bucket_of(ms, start_ms, step_s); out[b] = (out[b] or 0) + n end
  local where, args = "r.sandbox = ? AND r.received_ms >= ? AND r.received_ms < ?", { ctx.sandbox or "prod", start_ms, end_ms }
  if ds then where = where .. " AND r.dataset_id = ?"; args[#args + 1] = ds end
  local kind = RECORD_METRICS[metric]
  local cat = metric:match("^" .. CATEGORY_PREFIX:gsub("%.", "%%.") .. "(%a+)%.count$")
  if kind or cat then
    local status_filter = ""
    if kind == "success" or kind == "size" or kind == "stream_success" then status_filter = " AND r.status = 'success'"
    elseif kind == "failed" or kind == "stream_failed" or cat then status_filter = " AND r.status = 'failed'" end
    local streaming = (kind and kind:match("^stream_")) or cat
    local sql = "SELECT r.received_ms, length(r.entity), r.errors FROM ingest_records r" ..
      (streaming and " JOIN ingest_batches b ON b.id = r.batch_id AND b.source = 'streaming'" or "") ..
      " WHERE " .. where .. status_filter
    local stmt = db:prepare(sql)
    for r in stmt:rows(table.unpack(args)) do
      if cat then
        local v = cjson_safe.decode(r[3] or "[]") or {}
        if async_validation.category(v) == cat then add(r[1], 1) end
      else
        add(r[1], kind == "size" and (r[2] or 0) or 1)
      end
    end
    stmt:close()
  else
    local bkind = BATCH_METRICS[metric]
    local bwhere = "sandbox = ? AND created >= ? AND created < ? AND status = ?"
    local bargs = { ctx.sandbox or "prod", start_ms, end_ms, bkind }
    if ds then bwhere = bwhere .. " AND dataset_id = ?"; bargs[#bargs + 1] = ds end
    local stmt = db:prepare("SELECT created FROM ingest_batches WHERE " .. bwhere)
    for r in stmt:rows(table.unpack(bargs)) do add(r[1], 1) end
    stmt:close()
  end
  return out
end

local function dps(ctx, metric, ds, start_ms, end_ms, step_s)
  local v = values(ctx, metric, ds, start_ms, end_ms, step_s)
  local out = {}
  if step_s then
    local step = step_s * 1000
    local b = start_ms
    for _ = 1, 10000 do
      if b >= end_ms then break end
      out[ingest.iso(b)] = (v[b] or 0) + 0.0
      b = b + step
    end
  else
    out[ingest.iso(start_ms)] = (v[start_ms] or 0) + 0.0
  end
  return out
end

-- POST (V2)
local function query_v2(req, ctx)
  ingest.setup(ctx.store)
  local body = req:json_body()
  if type(body) ~= "table" then return bad(ctx, "The request body must be a JSON object.") end
  local start_ms, end_ms = parse_iso(body.start), parse_iso(body["end"])
  if not start_ms or not end_ms then return bad(ctx, "start and end must be ISO-8601 date-times.") end
  if start_ms > end_ms then return bad(ctx, "Start date cannot be after end date.") end
  local step_s
  if body.granularity ~= nil then
    step_s = GRANULARITY[tostring(body.granularity):lower()]
    if not step_s then return bad(ctx, "Invalid granularity [" .. tostring(body.granularity) .. "].") end
  end
  if type(body.metrics) ~= "table" or #body.metrics == 0 then return bad(ctx, "metrics must be a non-empty array.") end
  local responses = json.array {}
  for _, m in ipairs(body.metrics) do
    if type(m) ~= "table" or type(m.name) ~= "string" or not known(m.name) then
      return bad(ctx, "Invalid metric [" .. tostring(type(m) == "table" and m.name or m) .. "].")
    end
    if m.aggregator == nil then return bad(ctx, "Missing aggregator for metric [" .. m.name .. "].") end
    -- The guide asks for a downsample with a granularity; the spec's own example has none and AEP
    -- documents no error for it: the buckets are then combined with the aggregator.
    local ids, group = nil, false
    local filters = json.array {}
    for _, f in ipairs(type(m.filters) == "table" and m.filters or {}) do
      local n = type(f) == "table" and tostring(f.name or ""):lower() or ""
      if n == "datasetid" or n == "datasets" then
        ids = {}
        for id in tostring(f.value or ""):gmatch("[^|]+") do ids[#ids + 1] = id end
        group = f.groupBy == true
      end
      filters[#filters + 1] = f
    end
    local datapoints = json.array {}
    if ids and group then
      for _, id in ipairs(ids) do
        datapoints[#datapoints + 1] = { groupBy = { dataSetId = id }, dps = dps(ctx, m.name, id, start_ms, end_ms, step_s) }
      end
    elseif ids then
      local sum = {}
      for _, id in ipairs(ids) do
        for k, v in pairs(dps(ctx, m.name, id, start_ms, end_ms, step_s)) do sum[k] = (sum[k] or 0) + v end
      end
      datapoints[1] = { groupBy = {}, dps = sum }
    else
      datapoints[1] = { groupBy = {}, dps = dps(ctx, m.name, nil, start_ms, end_ms, step_s) }
    end
    responses[#responses + 1] = { metric = m.name, filters = filters, datapoints = datapoints,
                                  granularity = body.granularity and tostring(body.granularity):upper() or nil }
  end
  return 200, errors.JSON_HEADERS, { metricResponses = responses }
end

-- GET (V1, deprecated)
local function query_v1(req, ctx)
  ingest.setup(ctx.store)
  local names = (req.query_all and req.query_all.metric) or {}
  if #names == 0 or #names > 6 then return bad(ctx, "Between 1 and 6 metric parameters are required.") end
  local range = req.query.dateRange
  local now = math.floor((ctx.now or os.time()) * 1000)
  local start_ms, end_ms = now - 30 * 86400000, now
  if range then
    local a, b = range:match("^([^/]+)/([^/]+)$")
    start_ms, end_ms = parse_iso(a), parse_iso(b)
    if not start_ms or not end_ms then return bad(ctx, "dateRange must be START/END in ISO-8601.") end
    if start_ms > end_ms then return bad(ctx, "Start date cannot be after end date.") end
  end
  local by_bucket = {}
  for _, name in ipairs(names) do
    if not known(name) then return bad(ctx, "Invalid metric [" .. name .. "].") end
    for k, v in pairs(dps(ctx, name, req.query.id, start_ms, end_ms, 86400)) do
      by_bucket[k] = by_bucket[k] or {}
      by_bucket[k][name] = v
    end
  end
  local keys = {}
  for k in pairs(by_bucket) do keys[#keys + 1] = k end
  table.sort(keys)
  local items = json.array {}
  for _, k in ipairs(keys) do items[#items + 1] = { timestamp = k, metrics = by_bucket[k] } end
  return 200, errors.JSON_HEADERS, { id = req.query.id, imsOrgId = ctx.app.org and ctx.app.org.org_id,
    timeseries = { granularity = "DAY", items = items, _page = json.null, _links = json.null }, stats = {} }
end

function M.install(app)
  -- the spec documents the body as */* (its own example is sent so): any Content-Type, read as JSON
  app:route("POST", PATH, query_v2, { auth = "platform" })
  app:route("GET", PATH, query_v1, { auth = "platform" })
end

return M
