-- aep.emulator.streaming: the Data Collection Service (DCS) inlets (docs/AEP-API-FACTS.md §8).
--   POST /collection/:inletId          one message; ?syncValidation=true (or the older
--                                      ?synchronousValidation=true) validates before answering
--   POST /collection/batch/:inletId    {"messages":[...]} -> 207, one result per message
-- (also under /data/foundation/import/collection/..., as Adobe's Data Ingestion collection posts).
--
-- What happens to a message, as in AEP:
--   * envelope checks (schemaRef in header and xdmMeta, org, dataset, schema, flow): a bad
--     envelope is rejected on the wire (400, or a 400 entry in the 207) and nothing is stored;
--   * with sync validation the xdmEntity is validated with aep.xdm against the dataset's schema
--     (primary identity included) before the answer: an invalid entity answers AEP's 400 and is
--     dropped; without it the message is only received (200/207 with an xactionId) and
--     validated after the answer (async_validation.lua): valid records reach the dataset and
--     Profile, invalid ones a failed batch of the dataset;
--   * everything accepted in one request is committed (ingest_pending) in one SQLite
--     transaction before the answer goes out.
-- The body is decoded once; per request each dataset is looked up once; validators are compiled
-- once per schema version (ingest.dataset).
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local ingest = require "aep.emulator.ingest"
local async_validation = require "aep.emulator.async_validation"
local dataprep_stream = require "aep.emulator.dataprep_stream"
local lines = require "aep.lines"
-- A body that holds long numbers is read by aep.json, which keeps them exact; cjson (faster)
-- otherwise. Returns the document and the encoder that writes its parts back exactly. The scan is
-- aep.lines' (C, digits in strings do not count): a Lua pattern over a 1 MB body cost more than
-- decoding it.
local function decode(text)
  if lines.has_long_number(text) then
    local doc, err = json.decode(text)
    return doc, err, json.encode
  end
  local doc, err = cjson_safe.decode(text)
  return doc, err, cjson.encode
end

local M = {}

-- "Total request payload over 1 MB" answers 413 (§8.4). 1 MB read as 1 MiB, the larger reading,
-- so that a client batching to 1,000,000 bytes or to 1,048,576 bytes is never refused.
M.MAX_BODY = 1048576

local DCS_TYPE = "http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet"
local AUTH_TYPE = "https://ns.adobe.com/adobecloud/problem/data-collection-service-authorization"
local JSON = { ["Content-Type"] = "application/json" }

-- Envelope rejections. The first two are Adobe's own words (retrieve-failed-batches.md appendix,
-- streaming-multiple-messages.md); the others follow their form for checks AEP documents
-- without quoting the message.
M.REASONS = {
  unknown_format = "Message has unknown xdm format",
  wrong_org = "Message has an absent or wrong ims org in the header",
  schema_mismatch = "Message has unknown xdm format: header schemaRef does not match xdmMeta schemaRef",
  no_dataset = "Message has an absent dataset id in the header",
  unknown_dataset = "Message has an unknown dataset id [%s]",
  dataset_schema = "Message schema [%s] does not match the schema [%s] of dataset [%s]",
  no_flow = "Message has an absent flow id in the header",
  unknown_flow = "Message has an unknown flow id [%s]",
  flow_dataset = "Message dataset [%s] is not the target of flow [%s]",
}
local R = M.REASONS

local function prefix(inlet_id, org_id)
  return "inletId: [" .. tostring(inlet_id) .. "] imsOrgId: [" .. tostring(org_id or "") .. "] "
end

local function dcs_problem(status, title, message)
  return status, JSON, json.encode { type = DCS_TYPE, status = status, title = title,
                                     report = { message = message } }
end

-- DCS request ids have the form "1565638336649:1750:244" (receivedTimeMs:node:counter); an
-- accepted message of a batch is "<batchId>:<index>".
local node_id, counter
local function dcs_id(now_ms)
  if not node_id then
    node_id = require("aep.host").getpid() % 10000
    counter = 0
  end
  counter = counter + 1
  return string.format("%d:%d:%d", now_ms, node_id, counter)
end

-- Before the body is decoded: size, inlet, token. -> inlet | nil, status, headers, body
local function admit(req, ctx)
  local inlet_id = req.params.inletId
  local size = req.too_large and req.body_size or #(req.body or "") -- refused from its headers: not read
  if size > M.MAX_BODY then
    return nil, dcs_problem(413, "Payload Too Large", string.format(
      "inletId: [%s] Request payload of %d bytes exceeds the limit of %d bytes", inlet_id, size, M.MAX_BODY))
  end
  local flows = require "aep.emulator.flows"
  local inlet = flows.find_inlet(inlet_id)
  if not inlet then
    -- Unknown inlet: 400 in DCS's problem shape. The status codes documented for DCS
    -- (docs/AEP-API-FACTS.md §8.3: 200, 207, 400, 401, 403, 413, 429, 500, 501, 503) include no 404,
    -- and 400 covers "malformed request, missing fields, unknown XDM format": an inlet id that
    -- names nothing is answered like any other bad request to DCS.
    return nil, dcs_problem(400, "Invalid inlet", "inletId: [" .. tostring(inlet_id) .. "] Inlet not found")
  end
  if inlet.authentication_required then
    local auth = require "aep.emulator.auth"
    local rec, why = auth.verify_bearer(ctx.app, req.headers["authorization"])
    if rec and rec.org_id and inlet.org_id and rec.org_id ~= inlet.org_id then rec, why = nil, "invalid" end
    if not rec then
      -- §8.3: authenticated inlet without a valid token -> 401, status as a string.
      return nil, 401, JSON, json.encode {
        type = AUTH_TYPE, status = "401", title = "Authorization",
        report = { message = "[" .. tostring(inlet_id) .. "] Ims service token is " ..
                             (why == "missing" and "empty" or "invalid") } }
    end
  end
  return inlet
end

-- The sync-validation flag as the client spelled it -> key, enabled
local function sync_flag(query)
  query = query or {}
  if query.syncValidation ~= nil then return "syncValidation", query.syncValidation == "true" end
  if query.synchronousValidation ~= nil then
    return "synchronousValidation", query.synchronousValidation == "true"
  end
  return "syncValidation", false
end

local function contains(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

-- Envelope checks -> info (the dataset's ingest info) | nil, reason
-- infos: per-request memo of dataset lookups (dataset id -> info | false).
local function check_envelope(ctx, inlet, msg, req, infos)
  if type(msg) ~= "table" then return nil, R.unknown_format end
  local header, body = msg.header, msg.body
  if type(header) ~= "table" or type(body) ~= "table" then return nil, R.unknown_format end
  local org = header.imsOrgId
  -- §8.2: absent imsOrgId is filled in by DCS; a present one must be the inlet's org.
  if org ~= nil and org ~= inlet.org_id then return nil, R.wrong_org end
  local ref, meta = header.schemaRef, body.xdmMeta
  local mref = type(meta) == "table" and meta.schemaRef or nil
  if type(ref) ~= "table" or type(ref.id) ~= "string" or type(mref) ~= "table" or type(mref.id) ~= "string" then
    return nil, R.unknown_format
  end
  if mref.id ~= ref.id then return nil, R.schema_mismatch end
  local ds_id = header.datasetId
  if type(ds_id) ~= "string" or ds_id == "" then return nil, R.no_dataset end
  local info = infos[ds_id]
  if info == nil then
    info = ingest.dataset(ctx, inlet.sandbox, ds_id) or false
    infos[ds_id] = info
  end
  if not info then return nil, string.format(R.unknown_dataset, ds_id) end
  if info.schema_id ~= ref.id then
    return nil, string.format(R.dataset_schema, ref.id, info.schema_id, ds_id)
  end
  -- §8.2/§11 #3: flowId is required for inlets of a Flow Service connection with dataflows;
  -- legacy edge inlets (no dataflow) accept messages without one. x-adobe-flow-id may also come
  -- as a header or query parameter (§8.1).
  local flows = inlet.flow_ids
  local flow
  if flows and #flows > 0 then
    flow = header.flowId or req.headers["x-adobe-flow-id"] or (req.query and req.query["x-adobe-flow-id"])
    if flow == nil or flow == "" then return nil, R.no_flow end
    if not contains(flows, flow) then return nil, string.format(R.unknown_flow, tostring(flow)) end
    local f = inlet.flows and inlet.flows[flow]
    if f and f.dataset_ids and #f.dataset_ids > 0 and not contains(f.dataset_ids, ds_id) then
      return nil, string.format(R.flow_dataset, ds_id, tostring(flow))
    end
  end
  return info, nil, flow
end

local MISSING_ENTITY = { message = "Payload body is missing xdmEntity" }

-- -> ok, violations
local function validate(info, msg)
  local entity = msg.body.xdmEntity
  if type(entity) ~= "table" then return false, { MISSING_ENTITY } end
  return info.validate(entity)
end

local function now_ms(ctx)
  return math.floor((ctx.now or os.time()) * 1000)
end

local function store_of(ctx)
  local store = ctx.store or ctx.app.store
  ingest.setup(store)
  return store
end

-- POST /collection/:inletId
function M.collect(req, ctx)
  local inlet, status, headers, body = admit(req, ctx)
  if not inlet then return status, headers, body end
  local inlet_id = req.params.inletId
  local pre = prefix(inlet_id, inlet.org_id)
  local msg, err, encode = decode(req.body or "")
  if type(msg) ~= "table" then
    return dcs_problem(400, "Invalid XDM Message Format",
      pre .. "Message is not valid JSON" .. (err and (": " .. err) or ""))
  end
  local key, sync = sync_flag(req.query)
  -- raw data or an upsert on a Data Prep dataflow: mapped after the answer (dataprep_stream.lua)
  local dinfo, dreason, dflow, record, dp = dataprep_stream.route(ctx, inlet, msg, req, {})
  if dreason then return dcs_problem(400, "Invalid Message Format", pre .. dreason) end
  if dinfo then
    local t = now_ms(ctx)
    local xaction = dcs_id(t)
    local store = store_of(ctx)
    store.transaction(function()
      async_validation.accept(store, { { dinfo.sandbox, dinfo.id, dflow, inlet_id, xaction, t, record, dp } })
    end)
    -- the answer of http.md "Post data to be ingested": no validation flag for raw data
    return 200, JSON, cjson.encode { inletId = inlet_id, xactionId = xaction, receivedTimeMs = t }
  end
  local info, reason, flow = check_envelope(ctx, inlet, msg, req, {})
  if not info then return dcs_problem(400, "Invalid XDM Message Format", pre .. reason) end
  local ok, violations = true, nil
  if sync then ok, violations = validate(info, msg) end
  if sync and not ok then
    local xdm = require "aep.xdm"
    -- aep.json keeps the report's empty causingExceptions arrays as [] (cjson writes {})
    return 400, JSON, json.encode(xdm.streaming_400(violations, inlet_id, inlet.org_id))
  end
  local t = now_ms(ctx)
  local xaction = dcs_id(t)
  local store = store_of(ctx)
  local entity = msg.body.xdmEntity
  local text = type(entity) == "table" and encode(entity) or nil
  store.transaction(function()
    async_validation.accept(store, { { info.sandbox, info.id, flow, inlet_id, xaction, t, text } })
  end)
  async_validation.remember(xaction, entity)
  return 200, JSON, cjson.encode {
    inletId = inlet_id, xactionId = xaction, receivedTimeMs = t,
    [key] = sync and { status = "pass" } or { skipped = true },
  }
end

-- Decimal index strings: "0", "1", ... (message i of a batch answers "<batchId>:<i-1>")
local INDEX = setmetatable({}, { __index = function(t, i)
  local s = tostring(i - 1)
  t[i] = s
  return s
end })

-- POST /collection/batch/:inletId   (sync validation is not available here, §8.1: the flag is
-- ignored and every message is handled as in asynchronous mode)
function M.collect_batch(req, ctx)
  local inlet, status, headers, body = admit(req, ctx)
  if not inlet then return status, headers, body end
  local inlet_id = req.params.inletId
  local pre = prefix(inlet_id, inlet.org_id)
  local doc, err, encode = decode(req.body or "")
  if type(doc) ~= "table" then
    return dcs_problem(400, "Invalid XDM Message Format",
      pre .. "Message is not valid JSON" .. (err and (": " .. err) or ""))
  end
  local messages = doc.messages
  if type(messages) ~= "table" or messages[1] == nil then
    return dcs_problem(400, "Invalid XDM Message Format", pre .. "Batch has no messages")
  end
  local n = #messages
  ctx.message_count = n
  local t = now_ms(ctx)
  local batch_id = dcs_id(t)
  local xprefix = batch_id .. ":"
  -- accepted messages, validated after the answer (async_validation.lua)
  local infos, responses, accepted = {}, {}, {}
  for i = 1, n do
    local msg = messages[i]
    local info, reason, flow, record, dp = dataprep_stream.route(ctx, inlet, msg, req, infos)
    if info then
      local xaction = xprefix .. INDEX[i]
      responses[i] = '{"xactionId":"' .. xaction .. '"}'
      accepted[#accepted + 1] = { info.sandbox, info.id, flow, inlet_id, xaction, t, record, dp }
    elseif reason then
      responses[i] = cjson.encode { statusCode = 400, message = pre .. reason }
    else
      info, reason, flow = check_envelope(ctx, inlet, msg, req, infos)
    end
    if info and dp then -- accepted above
    elseif not info then
      responses[i] = cjson.encode { statusCode = 400, message = pre .. reason }
    else
      local xaction = xprefix .. INDEX[i]
      responses[i] = '{"xactionId":"' .. xaction .. '"}'
      local entity = msg.body.xdmEntity
      local text = type(entity) == "table" and encode(entity) or nil
      accepted[#accepted + 1] = { info.sandbox, info.id, flow, inlet_id, xaction, t, text, nil, entity }
    end
  end
  if #accepted > 0 then
    local store = store_of(ctx)
    store.transaction(function() async_validation.accept(store, accepted) end)
    -- committed: the slice may use the decoded entities instead of decoding them again
    for i = 1, #accepted do
      local a = accepted[i]
      if a[9] then async_validation.remember(a[5], a[9]) end
    end
  end
  -- the answer written as text: 500 small tables less to build and encode
  return 207, JSON, '{"inletId":' .. cjson.encode(inlet_id) .. ',"batchId":"' .. batch_id ..
    '","receivedTimeMs":' .. t .. ',"responses":[' .. table.concat(responses, ",") .. "]}"
end

-- streaming.install(app)
function M.install(app)
  ingest.setup(app.store)
  for _, base in ipairs { "/collection", "/data/foundation/import/collection" } do
    local o = { auth = "inlet", max_body = M.MAX_BODY, own_too_large = true } -- admit() answers DCS's 413
    app:route("POST", base .. "/batch/:inletId", M.collect_batch, o)
    app:route("POST", base .. "/:inletId", M.collect, o)
  end
end

return M
