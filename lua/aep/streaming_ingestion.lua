-- aep.streaming_ingestion: streaming ingestion (DCS): one message, a batch, and the XDM envelope.
--
--   local info = streaming.dataset_info(c, dataset_id, {flow_id = , source_name = })
--   local wrap = streaming.envelope_encoder(info)   -- header encoded once per dataset
--   local msg = wrap(json.encode(entity))           -- -> message JSON text (no re-encoding)
--   streaming.send(c, inlet, msg, {sync_validation = true})      -> 200 answer (raises on 400)
--   streaming.send_batch(c, inlet, {msg, ...})                   -> {accepted=, rejected=, ...}
--   for first, last in streaming.chunks(msgs, {max_bytes=, max_count=}) do ... end
--
-- `inlet` is {inlet_url=, authenticated=} (aep.flows.inlet_of) or the inlet URL string.
-- Envelope (docs/AEP-API-FACTS.md §8.2): header{schemaRef{id,contentType}, imsOrgId, datasetId, flowId,
-- source{name}} and body{xdmMeta{schemaRef}, xdmEntity}; xdmMeta.schemaRef equals the header's.
local json = require "aep.json"
local platform = require "aep.platform"
local catalog = require "aep.catalog"

local M = {}

M.CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1"
M.MAX_REQUEST_BYTES = 1000000 -- AEP's 1 MB request limit (decimal, to be safe)

-- streaming.dataset_info(c, dataset_or_id [, opts]) -> {dataset_id, schema_id, content_type,
-- ims_org, flow_id, source_name}: what the envelope needs, read from Catalog
function M.dataset_info(c, dataset, opts)
  opts = opts or {}
  if type(dataset) == "string" then
    local id = dataset
    dataset = catalog.get_dataset(c, id)
    if not dataset then
      error(platform.error({ kind = "aep", code = "NOT_FOUND", status = 404,
        message = "dataset '" .. id .. "' not found" }), 0)
    end
  end
  local ref = dataset.schemaRef or {}
  return {
    dataset_id = dataset.id,
    schema_id = ref.id,
    content_type = ref.contentType or M.CONTENT_TYPE,
    ims_org = opts.ims_org or (c.cfg and c.cfg:get("IMS_ORG")),
    flow_id = opts.flow_id,
    source_name = opts.source_name,
  }
end

-- streaming.header(info) -> the envelope header table
function M.header(info)
  local h = {
    schemaRef = { id = info.schema_id, contentType = info.content_type or M.CONTENT_TYPE },
    imsOrgId = info.ims_org,
    datasetId = info.dataset_id,
  }
  if info.flow_id then h.flowId = info.flow_id end
  if info.source_name then h.source = { name = info.source_name } end
  return h
end

-- streaming.envelope_encoder(info) -> function(entity_json_text) -> message_json_text
-- The constant parts are encoded once; each call is two concatenations.
function M.envelope_encoder(info)
  local header = M.header(info)
  local prefix = '{"header":' .. json.encode(header) .. ',"body":{"xdmMeta":{"schemaRef":'
    .. json.encode(header.schemaRef) .. '},"xdmEntity":'
  local suffix = "}}"
  return function(entity_json)
    return prefix .. entity_json .. suffix
  end
end

-- streaming.envelope(info, entity) -> message table (for one-off use; streams use the encoder)
function M.envelope(info, entity)
  local header = M.header(info)
  return { header = header, body = { xdmMeta = { schemaRef = header.schemaRef }, xdmEntity = entity } }
end

-- streaming.batch_url(inlet_url) -> the batch endpoint of the same inlet (/collection/batch/{id})
function M.batch_url(inlet_url)
  local base, id = inlet_url:match("^(.*)/collection/([^/?]+)")
  if not base then return inlet_url end
  if id == "batch" then return inlet_url end
  return base .. "/collection/batch/" .. id
end

local function inlet_parts(inlet)
  if type(inlet) == "string" then return inlet, false end
  return inlet.inlet_url or inlet.url, inlet.authenticated and true or false
end

local function stream_headers(c, opts)
  local h = { ["Content-Type"] = "application/json" }
  if opts.flow_id then h["x-adobe-flow-id"] = opts.flow_id end
  if c.cfg and c.cfg:get("SANDBOX_NAME") then h["x-sandbox-name"] = c.cfg:get("SANDBOX_NAME") end
  return h
end

-- streaming.send(c, inlet, message, opts) -> answer {xactionId, receivedTimeMs, ...}
-- message: JSON text or a table. opts: sync_validation (adds ?syncValidation=true; AEP allows 60
-- requests a minute with it), idempotent (the entity is keyed so a repeat is harmless, e.g. an
-- event with a deterministic _id), flow_id. A 400 raises with the validation violations.
function M.send(c, inlet, message, opts)
  opts = opts or {}
  local url, authenticated = inlet_parts(inlet)
  local body = type(message) == "table" and json.encode(message) or message
  local resp = c:request({
    method = "POST", url = url, body = body, headers = stream_headers(c, opts),
    query = opts.sync_validation and { syncValidation = "true" } or nil,
    platform = authenticated, auth = authenticated, idempotent = opts.idempotent,
  })
  return resp.json or {}
end

-- streaming.batch_body(messages) -> '{"messages":[m1,m2,...]}' from message JSON texts
function M.batch_body(messages, first, last)
  return '{"messages":[' .. table.concat(messages, ",", first or 1, last or #messages) .. "]}"
end

-- streaming.send_batch(c, inlet, messages [, opts]) -> result
-- result = {status = 207, batch_id =, accepted = {{index =, xaction_id =}}, rejected = {{index =,
-- status =, message =}}}; indexes are positions in `messages` (first..last).
function M.send_batch(c, inlet, messages, opts)
  opts = opts or {}
  local first, last = opts.first or 1, opts.last or #messages
  local url, authenticated = inlet_parts(inlet)
  local resp = c:request({
    method = "POST", url = M.batch_url(url), body = M.batch_body(messages, first, last),
    headers = stream_headers(c, opts), platform = authenticated, auth = authenticated,
    idempotent = opts.idempotent,
  })
  local doc = resp.json or {}
  local result = { status = resp.status, batch_id = doc.batchId, accepted = {}, rejected = {} }
  local responses = type(doc.responses) == "table" and doc.responses or {}
  for i = first, last do
    local r = responses[i - first + 1]
    if type(r) == "table" and r.xactionId and (r.statusCode == nil or tonumber(r.statusCode) < 300) then
      result.accepted[#result.accepted + 1] = { index = i, xaction_id = r.xactionId }
    elseif type(r) == "table" then
      result.rejected[#result.rejected + 1] = { index = i, status = tonumber(r.statusCode) or r.statusCode,
        message = r.message, report = r.report }
    elseif resp.status == 200 and #responses == 0 then
      result.accepted[#result.accepted + 1] = { index = i }
    else
      result.rejected[#result.rejected + 1] = { index = i, message = "no result for this message in the answer" }
    end
  end
  return result
end

-- streaming.chunks(messages [, opts]) -> iterator of first, last: consecutive slices whose batch
-- body stays under opts.max_bytes (default 1 MB) and opts.max_count messages (default 500).
-- A single message over the limit comes alone (AEP will answer 413 for it).
function M.chunks(messages, opts)
  opts = opts or {}
  local max_bytes = opts.max_bytes or M.MAX_REQUEST_BYTES
  local max_count = opts.max_count or 500
  local i = 1
  return function()
    if i > #messages then return nil end
    local first, size = i, #'{"messages":[]}'
    while i <= #messages do
      local add = #messages[i] + (i > first and 1 or 0)
      if i > first and (size + add > max_bytes or i - first >= max_count) then break end
      size = size + add
      i = i + 1
    end
    return first, i - 1
  end
end

return M
