-- aep.stream.raw: `aep stream --raw` and `--upsert`: messages AEP maps or applies itself, sent to
-- an HTTP API streaming dataflow (help/sources/tutorials/api/create/streaming/http.md, "Post data
-- to be ingested"; help/data-prep/upserts.md).
--
--   --raw      each record goes as it is (no XDM envelope) to the inlet of a dataflow that carries
--              a mapping set (`transformations: [{name: "Mapping", ...}]`), named by the
--              x-adobe-flow-id header: the dataflow maps it server-side. The dataflow is --flow-id,
--              or the one dataflow with a mapping set that writes --dataset.
--   --upsert OP  each message is Data Prep's upsert: {header: {flowId, imsOrgId, datasetId,
--              operations: {data: OP, identity, identityDatasetId}}, body: ...}; the body is the
--              record as it is with --raw (the dataflow's mapping set maps it), else the entity of
--              the local mapping (--mapping / --mapping-set) sent to the dataset's own dataflow.
--
-- http.md documents raw messages one per request on /collection/{inlet} (no batch form), so both
-- go one message per request, with the pool's concurrency; the answer is {inletId, xactionId,
-- receivedTimeMs}. Everything else (pacing, retries, rejects, the ledger) is aep stream's.
--
--   local t = raw.resolve(opts, target_resolve_options)   -- a target as aep.stream.target gives
local json = require "aep.json"
local platform = require "aep.platform"
local flows = require "aep.flows"
local target_mod = require "aep.stream.target"

local M = {}

M.OPERATIONS = { create = true, merge = true, delete = true }

local function aep_error(message, code)
  return platform.error({ kind = "aep", code = code or "NOT_FOUND", message = message })
end

-- raw.mapping_of(flow) -> mappingId, mappingVersion | nil: the flow's Data Prep mapping set
function M.mapping_of(flow)
  for _, t in ipairs(type(flow) == "table" and type(flow.transformations) == "table" and flow.transformations or {}) do
    if type(t) == "table" and t.name == "Mapping" and type(t.params) == "table" and t.params.mappingId then
      return t.params.mappingId, t.params.mappingVersion
    end
  end
end

-- raw.check(opts) -> nil | usage error text
function M.check(opts)
  if opts.upsert and not M.OPERATIONS[opts.upsert] then
    return "--upsert takes create, merge or delete (Data Prep's operations.data), got '" .. tostring(opts.upsert) .. "'"
  end
  if opts.identity_dataset and not opts.upsert then return "--identity-dataset needs --upsert" end
  if not opts.raw and not opts.upsert then return nil end
  if opts.sync_validation then
    return (opts.raw and "--raw" or "--upsert") .. " messages have no synchronous validation (http.md): leave out --sync-validation"
  end
  if opts.raw and (opts.mapping or opts.mapping_set) then
    return "--raw sends the records as they are for the dataflow's mapping set to map: leave out --mapping/--mapping-set"
  end
  if opts.raw and not opts.flow_id and not opts.dataset then return "--raw needs --flow-id ID (a dataflow with a mapping set) or --dataset ID" end
  if opts.upsert and not opts.raw and not opts.dataset then return "--upsert needs --dataset ID" end
  if opts.inlet and opts.raw then return "--raw finds the inlet from the dataflow: leave out --inlet" end
  return nil
end

-- The dataflow with a mapping set that writes the dataset (exactly one, else an error naming them).
local function flow_for_dataset(c, dataset_id)
  local found = {}
  for _, f in ipairs(flows.flows_to_dataset(c, dataset_id)) do
    if M.mapping_of(f) then found[#found + 1] = f end
  end
  if #found == 1 then return found[1] end
  if #found == 0 then
    error(aep_error("no dataflow with a mapping set writes dataset " .. dataset_id ..
      " (create one: aep run raw-streaming, or give --flow-id)"), 0)
  end
  local names = {}
  for i, f in ipairs(found) do names[i] = f.id .. " (" .. tostring(f.name) .. ")" end
  error(aep_error("several dataflows with a mapping set write dataset " .. dataset_id .. ": " ..
    table.concat(names, ", ") .. "; give --flow-id", "AMBIGUOUS"), 0)
end

-- The inlet and the dataset of a dataflow (its source connection's base connection; its target
-- connection's dataset).
local function flow_parts(c, flow)
  local sc = flow.sourceConnectionIds and flow.sourceConnectionIds[1] and flows.get(c, "sourceConnections", flow.sourceConnectionIds[1])
  local base = sc and sc.baseConnectionId and flows.get_connection(c, sc.baseConnectionId)
  local inlet = base and flows.inlet_of(base)
  if not inlet then
    error(aep_error("dataflow " .. flow.id .. " has no HTTP API streaming connection with an inlet", "BAD_ANSWER"), 0)
  end
  local tc = flow.targetConnectionIds and flow.targetConnectionIds[1] and flows.get(c, "targetConnections", flow.targetConnectionIds[1])
  local dataset = tc and type(tc.params) == "table" and tc.params.dataSetId
  return inlet, dataset
end

-- raw.upsert_encoder(info, opts) -> function(body_json_text) -> upsert message text
function M.upsert_encoder(info, opts)
  local ops = { data = opts.upsert }
  if opts.identity_dataset then
    ops.identity, ops.identityDatasetId = "create", opts.identity_dataset
  end
  local header = { flowId = info.flow_id, imsOrgId = info.ims_org, datasetId = info.dataset_id, operations = ops }
  local prefix = '{"header":' .. json.encode(header) .. ',"body":'
  return function(body) return prefix .. body .. "}" end
end

local function identity(text) return text end

-- raw.resolve(opts, ro) -> target | raises
-- ro: the options aep.stream.target.resolve takes (cfg, dataset, flow_id, org, manifest, ...)
function M.resolve(opts, ro)
  local t
  if opts.raw then
    local c = ro.client or platform.new(ro.cfg)
    ro.client = c
    local flow
    if opts.flow_id then
      flow = flows.get(c, "flows", opts.flow_id)
      if not flow then error(aep_error("dataflow " .. opts.flow_id .. " not found"), 0) end
      if not M.mapping_of(flow) then
        error(aep_error("dataflow " .. opts.flow_id .. " has no mapping set: raw records need a dataflow with a Mapping transformation", "BAD_ANSWER"), 0)
      end
    else
      -- the dataset as aep stream finds it (an id, a name, a run manifest variable)
      local ds = target_mod.find_dataset(c, ro.dataset, ro.manifest, ro.cfg, ro.run_name)
      flow = flow_for_dataset(c, ds.id)
    end
    local inlet, dataset = flow_parts(c, flow)
    ro.inlet, ro.flow_id, ro.authenticated = inlet.inlet_url, flow.id, inlet.authenticated
    ro.dataset = dataset or ro.dataset
    t = target_mod.resolve(ro)
    t.mapping_id = M.mapping_of(flow)
  else
    t = target_mod.resolve(ro)
  end
  t.one_per_request = true
  t.url = t.inlet_url
  t.info.flow_id = t.flow_id
  t.encoder = opts.upsert and M.upsert_encoder(t.info, opts) or identity
  return t
end

return M
