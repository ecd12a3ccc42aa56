-- aep.emulator.dataprep_stream: raw data and upserts on HTTP API streaming dataflows, mapped
-- server-side by Data Prep (help/sources/tutorials/api/create/streaming/http.md, "Send Raw data";
-- help/data-prep/upserts.md).
--
--   * A message posted to an inlet whose dataflow (x-adobe-flow-id header or query parameter, or
--     header.flowId) carries a mapping set (`transformations: [{name: "Mapping", params:
--     {mappingId, mappingVersion}}]`) and that is not an XDM envelope is the customer's own
--     record: it is accepted as it is (200 {inletId, xactionId, receivedTimeMs}) and mapped after
--     the answer, in the asynchronous validation slice, by the same engine as the Data Prep API
--     (aep.dataprep), then validated like an XDM message. A record whose mapping fails becomes a
--     failed record of the window's failed batch with Data Prep's TransformErrorInfo errors.
--   * A message {header: {flowId, datasetId, operations: {data, identity, identityDatasetId}},
--     body: {...}} is an upsert: the body is mapped (when the flow has a mapping set; else taken
--     as the XDM entity), then applied to Profile as a partial update, without reaching the data
--     lake ("Partial row updates are not consumed by data lake"); data "delete" removes the
--     Profile data merged so far for the record's identities. identity "create" also writes the
--     entity to identityDatasetId, the Identity Service dataset.
-- The mapping set version is the one the dataflow names; compiled once per (sandbox, id, version,
-- resolved schema).
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local dataprep = require "aep.dataprep"
local ingest = require "aep.emulator.ingest"

local M = {}

M.REASONS = {
  no_flow = "Raw message has an absent flow id: give the x-adobe-flow-id header or query parameter",
  unknown_flow = "Message has an unknown flow id [%s]",
  no_mapping = "Flow [%s] has no mapping set: raw data needs a dataflow with a Mapping transformation",
  no_dataset = "Flow [%s] has no target dataset",
  unknown_dataset = "Message has an unknown dataset id [%s]",
  flow_dataset = "Message dataset [%s] is not the target of flow [%s]",
  bad_data_op = "operations.data must be create, merge or delete, not [%s]",
  bad_identity_op = "operations.identity must be create, not [%s]",
  no_identity_dataset = "operations.identity create needs operations.identityDatasetId",
  unknown_identity_dataset = "operations.identityDatasetId names an unknown dataset [%s]",
}
local R = M.REASONS

local function contains(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

local function flow_mapping(flow_doc)
  for _, t in ipairs(type(flow_doc) == "table" and flow_doc.transformations or {}) do
    if type(t) == "table" and t.name == "Mapping" and type(t.params) == "table" and t.params.mappingId then
      return t.params.mappingId, math.tointeger(tonumber(t.params.mappingVersion)) or 0
    end
  end
end

local function is_xdm_envelope(msg)
  return type(msg.header) == "table" and type(msg.header.schemaRef) == "table"
    and type(msg.body) == "table" and msg.body.xdmMeta ~= nil
end

local function check_operations(ops)
  local data = ops.data == nil and "create" or ops.data
  if data ~= "create" and data ~= "merge" and data ~= "delete" then return nil, R.bad_data_op:format(tostring(data)) end
  if ops.identity ~= nil and ops.identity ~= "create" then
    return nil, R.bad_identity_op:format(tostring(ops.identity))
  end
  if ops.identity == "create" and (type(ops.identityDatasetId) ~= "string" or ops.identityDatasetId == "") then
    return nil, R.no_identity_dataset
  end
  return { data = data, identity = ops.identity, identityDatasetId = ops.identityDatasetId }
end

local function dataset_info(ctx, sandbox, ds, infos)
  local info = infos[ds]
  if info == nil then
    info = ingest.dataset(ctx, sandbox, ds) or false
    infos[ds] = info
  end
  return info or nil
end

-- dataprep_stream.route(ctx, inlet, msg, req, infos)
--   -> nil                                   not Data Prep's: the XDM path takes the message
--   -> nil, reason                           rejected on the wire
--   -> info, nil, flow_id, record_text, dp_text   accepted (dp_text: what the slice needs)
function M.route(ctx, inlet, msg, req, infos)
  if type(msg) ~= "table" then return nil end
  local raw_inlet = inlet.data_type == "raw"
  local header = type(msg.header) == "table" and msg.header or nil
  local upsert = header and type(header.operations) == "table" and type(msg.body) == "table"
  if not raw_inlet and not upsert and is_xdm_envelope(msg) then return nil end
  local q = req.query or {}
  local flow = req.headers["x-adobe-flow-id"] or q["x-adobe-flow-id"] or (header and header.flowId)
  if flow == nil or flow == "" then
    if raw_inlet then return nil, R.no_flow end
    return nil
  end
  if not contains(inlet.flow_ids, flow) then
    if raw_inlet or upsert then return nil, R.unknown_flow:format(tostring(flow)) end
    return nil
  end
  local flow_doc = ctx.store.get(inlet.sandbox, "flow", flow)
  local mapping_id, version = flow_mapping(flow_doc)
  if not mapping_id and not upsert then
    if raw_inlet then return nil, R.no_mapping:format(flow) end
    return nil -- an XDM inlet's flow without a mapping set: the XDM path says what is wrong
  end
  local targets = inlet.flows[flow] and inlet.flows[flow].dataset_ids or {}
  local ds = upsert and header.datasetId or targets[1]
  if type(ds) ~= "string" or ds == "" then return nil, R.no_dataset:format(flow) end
  if #targets > 0 and not contains(targets, ds) then return nil, R.flow_dataset:format(ds, flow) end
  local info = dataset_info(ctx, inlet.sandbox, ds, infos)
  if not info then return nil, R.unknown_dataset:format(ds) end
  local dp = { m = mapping_id, v = version }
  local record = msg
  if upsert then
    local ops, why = check_operations(header.operations)
    if not ops then return nil, why end
    if ops.identity and not dataset_info(ctx, inlet.sandbox, ops.identityDatasetId, infos) then
      return nil, R.unknown_identity_dataset:format(ops.identityDatasetId)
    end
    dp.op = ops
    record = msg.body
    -- without a mapping set the body is the entity (XDM-compatible payload)
    if not mapping_id and type(record.xdmEntity) == "table" then record = record.xdmEntity end
  end
  return info, nil, flow, cjson.encode(record), cjson.encode(dp)
end

-- Compiled mapping sets: key -> {schema = resolved table, compiled}. Bounded: cleared past 256.
local compiled_cache, cached = {}, 0

local function compiled_for(ctx, sandbox, id, version)
  local api = require "aep.emulator.dataprep_api"
  local sctx = setmetatable({ sandbox = sandbox }, { __index = ctx })
  local set = api.find(sctx, id, version)
  if not set then return nil, ("mapping set %s version %d was not found"):format(id, version) end
  local resolved = api.resolve(sctx, set)
  if not resolved then return nil, "the target schema " .. tostring(api.schema_id(set)) .. " of mapping set " .. id .. " was not found" end
  local key = sandbox .. "\0" .. id .. "\0" .. version
  local hit = compiled_cache[key]
  if hit and hit.schema == resolved and hit.set == set then return hit.compiled end
  local c, errs = dataprep.compile(set, { schema = resolved })
  if not c then
    return nil, "mapping set " .. id .. " does not compile: " .. tostring(errs[1] and errs[1].exception)
  end
  if cached >= 256 then compiled_cache, cached = {}, 0 end
  if not hit then cached = cached + 1 end
  compiled_cache[key] = { schema = resolved, set = set, compiled = c }
  return c
end

-- Data Prep's errors as a failed record's violations: the TransformErrorInfo fields, plus the
-- `message` the error diagnostics and Catalog codes read.
local function violations_of(errs)
  local out = {}
  for i, e in ipairs(errs) do
    out[i] = { sourceType = e.sourceType, source = e.source, destination = e.destination, exception = e.exception,
               message = ("Data Prep: mapping %s -> %s failed: %s"):format(tostring(e.source),
                 tostring(e.destination), tostring(e.exception)) }
  end
  return out
end

-- dataprep_stream.prepare(ctx, sandbox, dp_text, record)
--   -> entity, entity_text, nil, ops     mapped (ops: the upsert operations or nil)
--   -> record, nil, violations, ops      the mapping failed: Data Prep's errors (the failed record
--                                        keeps the message as it was sent)
local function prepare(ctx, sandbox, dp_text, record)
  local dp = cjson_safe.decode(dp_text) or {}
  local ops = type(dp.op) == "table" and dp.op or nil
  if type(record) ~= "table" then
    return nil, nil, { { message = "Data Prep: the message is not a JSON object" } }, ops
  end
  if not dp.m then return record, nil, nil, ops end -- an upsert whose body is already XDM
  local c, why = compiled_for(ctx, sandbox, dp.m, math.tointeger(dp.v) or 0)
  if not c then return record, nil, { { message = "Data Prep: " .. why } }, ops end
  local entity, errs = c:map(record)
  if errs then return record, nil, violations_of(errs), ops end
  return entity, cjson.encode(entity), nil, ops
end

-- (a mapping set that raises, or an entity cjson cannot write, fails its record, never the slice)
function M.prepare(ctx, sandbox, dp_text, record)
  local ok, entity, text, violations, ops = pcall(prepare, ctx, sandbox, dp_text, record)
  if ok then return entity, text, violations, ops end
  local dp = cjson_safe.decode(dp_text) or {}
  return record, nil, { { message = "Data Prep: the record could not be mapped: " .. tostring(entity) } },
    type(dp.op) == "table" and dp.op or nil
end

-- An upsert is a partial record: fields the schema requires may be absent from it. Only the
-- other violations fail it.
local function leaves(list, out)
  for _, v in ipairs(list or {}) do
    if type(v) == "table" then
      if v.causingExceptions and #v.causingExceptions > 0 then leaves(v.causingExceptions, out)
      else out[#out + 1] = v end
    end
  end
  return out
end

function M.partial_violations(violations)
  for _, v in ipairs(leaves(violations, {})) do
    if v.keyword ~= "required" then return violations end
  end
  return nil
end

M.DELETE_MARKER = '{"__aepProfileDelete":true}'

-- dataprep_stream.apply_upsert(ctx, info, ops, xaction, received, entity, text) -> ok, violations
-- (inside the slice's transaction) the partial record reaches Profile only (status "upsert":
-- linked and merged like a profile record, left out of the data lake views); identity create
-- also writes it to the identity dataset.
function M.apply_upsert(ctx, info, ops, xaction, received, entity, text)
  if info.kind ~= "p" then
    return false, { { message = "Data Prep: upserts need a Profile-enabled dataset of an XDM Individual Profile schema" } }
  end
  -- no Catalog batch holds a partial update: its batch id is empty. A delete is linked by the
  -- record's identities and stored as the marker profiles.lua reads: the Profile data merged
  -- before it is gone.
  if ops.data == "delete" then text = M.DELETE_MARKER end
  ingest.insert(info, "", xaction, received, "upsert", entity, text)
  if ops.identity == "create" then
    local idinfo = ingest.dataset(ctx, info.sandbox, ops.identityDatasetId)
    if idinfo then ingest.insert(idinfo, "", xaction, received, "success", entity, text) end
  end
  return true
end

-- dataprep_stream.migrate(db): the pending table's dataprep column (stores written before it)
function M.migrate(db)
  local has = false
  local st = db:prepare("PRAGMA table_info(ingest_pending)")
  for r in st:rows() do if r[2] == "dataprep" then has = true end end
  st:close()
  if not has then db:exec("ALTER TABLE ingest_pending ADD COLUMN dataprep TEXT") end
end

return M
