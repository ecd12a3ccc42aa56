-- aep.stream.connection: the HTTP API streaming connection and dataflow `aep stream -d DATASET`
-- sends through.
--
--   local got = connection.for_dataset(client, dataset, {manifest_path =, run_name =, target =, log =})
--   got.inlet (flows.inlet_of), got.flow_id, got.how ("manifest" | "flow service" | "created"),
--   got.created (labels of what this call created), got.line (the one line said on stderr)
--
-- What exists is reused, so a stream into a dataset the workflow set up (`aep run realtime-import`)
-- goes through the workflow's dataflow: first a dataflow the run manifest records (the workflow's
-- FLOW_ID_PROFILE, or one an earlier stream made), then any dataflow Flow Service lists as writing
-- the dataset. Only when there is none are a connection, a source and a target connection and a
-- dataflow created, all named "aep stream <dataset id>", each recorded in the run manifest as soon
-- as it exists (kind, id, created = true, dataset), so that `aep run teardown` deletes them,
-- newest first: the dataflow before the connections, as AEP requires.
local flows = require "aep.flows"
local manifest_mod = require "aep.run.manifest"
local platform = require "aep.platform"

local M = {}

M.NAME_PREFIX = "aep stream "
-- how long a stream waits for another one setting up under the same run manifest

-- connection.vars(dataset_id) -> the run manifest variables of what stream creates for a dataset,
-- in creation order
function M.vars(dataset_id)
  return {
    connection = "STREAM_CONNECTION_ID_" .. dataset_id,
    sourceConnection = "STREAM_SOURCE_CONNECTION_ID_" .. dataset_id,
    targetConnection = "STREAM_TARGET_CONNECTION_ID_" .. dataset_id,
    flow = "STREAM_FLOW_ID_" .. dataset_id,
  }
end

local function first(list)
  return type(list) == "table" and list[1] or nil
end

local function has_mapping(flow)
  for _, t in ipairs(type(flow.transformations) == "table" and flow.transformations or {}) do
    if type(t) == "table" and t.name == "Mapping" then return true end
  end
  return false
end

-- The inlet of a dataflow that can carry XDM records to dataset_id | nil: an enabled dataflow
-- without a mapping set (a raw-data dataflow maps what it gets), whose target connection writes
-- the dataset and whose source is an HTTP API connection taking XDM.
local function usable(c, flow, dataset_id)
  if type(flow) ~= "table" or flow.state == "disabled" or has_mapping(flow) then return nil end
  local tc_id = first(flow.targetConnectionIds)
  local tc = tc_id and flows.get(c, "targetConnections", tc_id)
  if not (tc and type(tc.params) == "table" and tc.params.dataSetId == dataset_id) then return nil end
  local sc_id = first(flow.sourceConnectionIds)
  local sc = sc_id and flows.get(c, "sourceConnections", sc_id)
  local base = sc and sc.baseConnectionId and flows.get_connection(c, sc.baseConnectionId)
  local inlet = base and flows.inlet_of(base)
  local params = base and type(base.auth) == "table" and base.auth.params or {}
  if not inlet or params.dataType == "raw" then return nil end
  inlet.connection_id = base.id
  return inlet
end

-- The manifest's dataflows first (a stream's own record for this dataset before the others).
local function from_manifest(c, m, dataset_id)
  local own, others = {}, {}
  for _, r in ipairs(m:resources()) do
    -- a stream's record names its dataset: one for another dataset is not looked at
    if r.kind == "flow" and type(r.id) == "string" and (r.dataset == nil or r.dataset == dataset_id) then
      if r.dataset == dataset_id then own[#own + 1] = r else others[#others + 1] = r end
    end
  end
  for _, list in ipairs({ own, others }) do
    for _, r in ipairs(list) do
      local flow = flows.get(c, "flows", r.id)
      local inlet = usable(c, flow, dataset_id)
      if inlet then return flow, inlet end
    end
  end
  return nil
end

local function from_flow_service(c, dataset_id)
  for _, flow in ipairs(flows.flows_to_dataset(c, dataset_id)) do
    local inlet = usable(c, flow, dataset_id)
    if inlet then return flow, inlet end
  end
  return nil
end

-- The run manifest stream records into: the one `aep run` keeps for this run name, sandbox and
-- org (or --manifest); refused when it belongs to another org or sandbox, as `aep run` refuses it.
local function open_manifest(o)
  if not o.manifest_path then return manifest_mod.new(nil, o.run_name, o.target) end -- kept in memory only
  local m, err = manifest_mod.load(o.manifest_path, o.run_name, o.target)
  if not m then error(platform.error({ kind = "config", code = "BAD_MANIFEST", message = err }), 0) end
  local prev, target = m.doc.target or {}, o.target or {}
  if m.existed and ((prev.org and target.org and prev.org ~= target.org) or
      (prev.sandbox and target.sandbox and prev.sandbox ~= target.sandbox)) then
    error(platform.error({ kind = "config", code = "BAD_MANIFEST", message = string.format(
      "run manifest %s belongs to org %s, sandbox %s; this configuration targets org %s, sandbox %s (use another --manifest)",
      m.path, tostring(prev.org), tostring(prev.sandbox), tostring(target.org), tostring(target.sandbox)) }), 0)
  end
  return m
end

-- Create what is missing for the dataset, reusing what an earlier, interrupted stream recorded.
local function create(c, m, dataset, o)
  local name = M.NAME_PREFIX .. dataset.id
  local vars = M.vars(dataset.id)
  local created = {}
  local function record(kind, id)
    m:record(vars[kind], { kind = kind, id = id, title = name, created = true, step = "stream", dataset = dataset.id })
    if m.path then m:save() end
  end
  -- what an earlier stream recorded and that still exists under the name it was given
  local function recorded(kind, get)
    local r = m:resource(vars[kind])
    if not (r and r.created and type(r.id) == "string") then return nil end
    local got = get(r.id)
    return got and got.name == name and got or nil
  end

  local base = recorded("connection", function(id) return flows.get_connection(c, id) end)
  if not (base and flows.inlet_of(base)) then
    -- one made by an aep stream from before streams were recorded: adopted, so teardown removes it
    base = flows.find_by_name(c, "connections", name)
    if base and not flows.inlet_of(base) then base = flows.get_connection(c, base.id) end
    if not (base and flows.inlet_of(base)) then
      local id = flows.create_streaming_connection(c, { name = name, description = "created by aep stream for dataset " .. dataset.id })
      created[#created + 1] = "streaming connection " .. id
      base = flows.get_connection(c, id) or { id = id }
    end
    record("connection", base.id)
  end
  local inlet = flows.inlet_of(base)
  if not inlet then
    error(platform.error({ kind = "aep", code = "BAD_ANSWER",
      message = "streaming connection " .. tostring(base.id) .. " has no inlet URL" }), 0)
  end
  inlet.connection_id = base.id

  local sc = recorded("sourceConnection", function(id)
    local got = flows.get(c, "sourceConnections", id)
    return got and got.baseConnectionId == base.id and got or nil
  end)
  sc = sc and sc.id
  if not sc then
    sc = flows.create_source_connection(c, { name = name, base_connection_id = base.id })
    record("sourceConnection", sc)
  end
  local tc = recorded("targetConnection", function(id)
    local got = flows.get(c, "targetConnections", id)
    return got and type(got.params) == "table" and got.params.dataSetId == dataset.id and got or nil
  end)
  tc = tc and tc.id
  if not tc then
    local ref = dataset.schemaRef or {}
    tc = flows.create_target_connection(c, { name = name, dataset_id = dataset.id, schema_id = ref.id })
    record("targetConnection", tc)
  end
  local flow_id = flows.create_flow(c, { name = name, source_id = sc, target_id = tc })
  record("flow", flow_id)
  created[#created + 1] = "dataflow " .. flow_id
  return inlet, flow_id, created
end

-- Two streams into one dataset at once (two Kafka consumers sharing its partitions) must not both
-- create a dataflow: the look-up, the creation and the record run under the manifest's lock
-- (manifest.with_lock; m:save() inside it does not wait for it again).
local with_lock = manifest_mod.with_lock

-- connection.for_dataset(c, dataset, o) -> {inlet, flow_id, flow_name, how, created, line} | raises
-- dataset: the Catalog dataset ({id, schemaRef}); o: manifest_path (the run manifest), run_name,
-- target (cfg:target(), written into a new manifest), log (says the line)
function M.for_dataset(c, dataset, o)
  o = o or {}
  local got = with_lock(o.manifest_path, function() return M.find_or_create(c, dataset, o) end)
  if o.log then o.log.note("%s", got.line) end
  return got
end

-- connection.find_or_create(c, dataset, o): for_dataset without the lock and the line said
function M.find_or_create(c, dataset, o)
  local m = open_manifest(o)
  local got = { created = {} }
  local flow, inlet = from_manifest(c, m, dataset.id)
  got.how = "the run manifest " .. tostring(m.path)
  if not flow then
    flow, inlet = from_flow_service(c, dataset.id)
    got.how = "Flow Service"
  end
  if flow then
    got.inlet, got.flow_id, got.flow_name = inlet, flow.id, flow.name
    got.line = string.format("stream: using dataflow %s '%s' (streaming connection %s) for dataset %s, found in %s",
      tostring(flow.id), tostring(flow.name), tostring(inlet.connection_id), dataset.id, got.how)
  else
    got.inlet, got.flow_id, got.created = create(c, m, dataset, o)
    got.flow_name = M.NAME_PREFIX .. dataset.id
    got.how = "created"
    got.line = string.format("stream: created %s for dataset %s (with its source and target connections), recorded in the run manifest %s: `aep run teardown%s` deletes them",
      #got.created > 0 and table.concat(got.created, " and ") or ("dataflow " .. got.flow_id), dataset.id, tostring(m.path),
      o.manifest_flag and (" --manifest " .. tostring(m.path)) or (o.run_name and o.run_name ~= "aep" and (" --run-name " .. o.run_name) or ""))
  end
  return got
end

return M
