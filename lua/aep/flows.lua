-- aep.flows: Flow Service (/data/foundation/flowservice): the HTTP API streaming connection
-- (base connection -> inlet), source and target connections, and dataflows (flowId).
--
--   flows.create_streaming_connection(c, {name=, source_id=, authenticated=, data_type= "xdm" | "raw"}) -> id
--   flows.get_connection(c, id) -> connection | nil
--   flows.inlet_of(connection) -> {inlet_id=, inlet_url=, authenticated=, source_id=}
--   flows.find_by_name(c, "connections" | "sourceConnections" | "targetConnections" | "flows", name)
--   flows.create_source_connection(c, {name=, base_connection_id=}) -> id
--   flows.create_target_connection(c, {name=, dataset_id=, schema_id=}) -> id
--   flows.create_flow(c, {name=, source_id=, target_id=, mapping_id=, mapping_version=}) -> id
--   flows.delete(c, kind, id) -> true
--   flows.list(c, kind [, property | {property, ...}]) -> items (every page)
--   flows.list_runs(c, flow_id [, {since_ms=}]) -> the dataflow's runs, newest first
--   flows.get_run(c, run_id) -> run | nil
--   flows.flows_to_dataset(c, dataset_id) -> the dataflows whose target connection writes the dataset
local platform = require "aep.platform"
local json = require "aep.json"

local M = {}

M.BASE = "/data/foundation/flowservice"
M.HTTP_API_SPEC = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"      -- streaming (HTTP API) connection spec
M.HTTP_API_PROVIDER = "521eee4d-8cbe-4906-bb48-fb6bd4450033"
M.DATA_LAKE_SPEC = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"     -- target: the data lake
M.FLOW_SPEC = "d8a6f005-7eaf-4153-983e-e8574508b877"          -- streaming dataflow without mapping
M.FLOW_SPEC_MAPPING = "c1a19761-d2c7-4702-b9fa-fe91f0613e81"  -- streaming dataflow with a mapping set (http.md)
M.SCHEMA_VERSION = "application/vnd.adobe.xed-full+json;version=1.0"

local enc = platform.urlencode

local function items_of(doc)
  if type(doc) ~= "table" then return {} end
  if type(doc.items) == "table" then return doc.items end
  if doc[1] then return doc end
  return {}
end

local function created_id(resp, what)
  local id = type(resp.json) == "table" and resp.json.id
  if type(id) ~= "string" then
    error(platform.error({ kind = "aep", code = "BAD_ANSWER", status = resp.status,
      message = "Flow Service created a " .. what .. " but answered no id" }), 0)
  end
  return id
end

-- flows.create_streaming_connection(c, o) -> connection id
function M.create_streaming_connection(c, o)
  local resp = c:post(M.BASE .. "/connections", { json = {
    name = o.name,
    description = o.description or "aep streaming connection",
    providerId = M.HTTP_API_PROVIDER,
    connectionSpec = { id = M.HTTP_API_SPEC, version = "1.0" },
    auth = { specName = "Streaming Connection", params = {
      sourceId = o.source_id or o.name, dataType = o.data_type or "xdm", name = o.name,
      authenticationRequired = o.authenticated and true or false,
    } },
  } })
  return created_id(resp, "connection")
end

local function get(c, kind, id)
  local resp = c:get(M.BASE .. "/" .. kind .. "/" .. enc(id), { allow = { [404] = true } })
  if resp.status == 404 then return nil end
  local list = items_of(resp.json)
  if #list == 0 and type(resp.json) == "table" and resp.json.id then return resp.json end
  return list[1]
end

-- flows.get(c, kind, id) -> item | nil
M.get = get

-- flows.get_connection(c, id) -> connection | nil
function M.get_connection(c, id) return get(c, "connections", id) end

-- flows.inlet_of(connection) -> {inlet_id, inlet_url, authenticated, source_id} | nil
function M.inlet_of(conn)
  local params = type(conn) == "table" and type(conn.auth) == "table" and conn.auth.params
  if type(params) ~= "table" or not params.inletUrl then return nil end
  return {
    inlet_id = params.inletId, inlet_url = params.inletUrl,
    authenticated = params.authenticationRequired == true, source_id = params.sourceId or params.name,
  }
end

-- flows.list(c, kind [, property]) -> items (following _links.next)
function M.list(c, kind, property)
  local out = {}
  local path, query = M.BASE .. "/" .. kind, nil
  if type(property) == "string" then
    query = { { "property", property } }
  elseif type(property) == "table" then
    query = {}
    for _, p in ipairs(property) do query[#query + 1] = { "property", p } end
  end
  local seen = {}
  for _ = 1, 1000 do
    local req = { query = query }
    if path:match("^%a[%w+.-]*://") then req.url = path else req.path = path end
    local doc = c:get(path, req).json
    local items = items_of(doc)
    for _, it in ipairs(items) do out[#out + 1] = it end
    local href = type(doc) == "table" and type(doc._links) == "table" and type(doc._links.next) == "table"
      and doc._links.next.href
    if type(href) ~= "string" or href == "" or seen[href] or #items == 0 then break end
    seen[href] = true
    if not href:match("^%a[%w+.-]*://") and href:sub(1, #M.BASE) ~= M.BASE then
      href = M.BASE .. (href:sub(1, 1) == "/" and href or ("/" .. href))
    end
    path, query = href, nil
  end
  return out
end

-- flows.find_by_name(c, kind, name) -> item | nil (exact name)
function M.find_by_name(c, kind, name)
  for _, it in ipairs(M.list(c, kind, "name==" .. name)) do
    if it.name == name then return it end
  end
  return nil
end

-- flows.create_source_connection(c, {name, base_connection_id}) -> id
function M.create_source_connection(c, o)
  local resp = c:post(M.BASE .. "/sourceConnections", { json = {
    name = o.name, description = o.description,
    baseConnectionId = o.base_connection_id,
    connectionSpec = { id = M.HTTP_API_SPEC, version = "1.0" },
    -- required by the Flow Service spec; the HTTP API streaming tutorial sends JSON messages
    data = { format = "json" },
  } })
  return created_id(resp, "source connection")
end

-- flows.create_target_connection(c, {name, dataset_id, schema_id}) -> id
function M.create_target_connection(c, o)
  local resp = c:post(M.BASE .. "/targetConnections", { json = {
    name = o.name, description = o.description,
    connectionSpec = { id = M.DATA_LAKE_SPEC, version = "1.0" },
    data = { format = "parquet_xdm", schema = { id = o.schema_id, version = M.SCHEMA_VERSION } },
    params = { dataSetId = o.dataset_id },
  } })
  return created_id(resp, "target connection")
end

-- flows.create_flow(c, {name, source_id, target_id [, mapping_id, mapping_version]}) -> flow id
-- With mapping_id: the dataflow maps each message with that Data Prep mapping set (http.md "Create
-- a dataflow", with transformations: its own flow spec, the transformation named "Mapping").
function M.create_flow(c, o)
  local body = {
    name = o.name, description = o.description,
    flowSpec = { id = o.flow_spec or (o.mapping_id and M.FLOW_SPEC_MAPPING) or M.FLOW_SPEC, version = "1.0" },
    sourceConnectionIds = json.array({ o.source_id }),
    targetConnectionIds = json.array({ o.target_id }),
  }
  if o.mapping_id then
    body.transformations = { { name = "Mapping", params = { mappingId = o.mapping_id, mappingVersion = o.mapping_version or 0 } } }
  end
  local resp = c:post(M.BASE .. "/flows", { json = body })
  return created_id(resp, "dataflow")
end

-- flows.list_runs(c, flow_id [, {since_ms}]) -> runs (sources/tutorials/api/monitor.md), newest
-- first; since_ms keeps the runs started after it (metrics.durationSummary.startedAtUTC)
function M.list_runs(c, flow_id, o)
  o = o or {}
  local props = { "flowId==" .. flow_id }
  if o.since_ms then props[2] = "metrics.durationSummary.startedAtUTC>" .. math.floor(o.since_ms) end
  local runs = M.list(c, "runs", props)
  local function started(r)
    local m = type(r.metrics) == "table" and r.metrics.durationSummary
    return tonumber(type(m) == "table" and m.startedAtUTC) or tonumber(r.createdAt) or 0
  end
  table.sort(runs, function(a, b) return started(a) > started(b) end)
  return runs
end

-- flows.get_run(c, run_id) -> run | nil  (AEP answers {"items": [run]})
function M.get_run(c, id)
  local resp = c:get(M.BASE .. "/runs/" .. enc(id), { allow = { [404] = true } })
  if resp.status == 404 then return nil end
  return items_of(resp.json)[1]
end

-- flows.flows_to_dataset(c, dataset_id) -> dataflows writing the dataset (through their target
-- connections' params.dataSetId)
function M.flows_to_dataset(c, dataset_id)
  local targets = {}
  for _, t in ipairs(M.list(c, "targetConnections")) do
    if type(t.params) == "table" and t.params.dataSetId == dataset_id then targets[t.id] = true end
  end
  local out = {}
  for _, f in ipairs(M.list(c, "flows")) do
    for _, tid in ipairs(f.targetConnectionIds or {}) do
      if targets[tid] then out[#out + 1] = f; break end
    end
  end
  return out
end

-- flows.delete(c, kind, id) -> true (404 included)
function M.delete(c, kind, id)
  c:delete(M.BASE .. "/" .. kind .. "/" .. enc(id), { allow = { [404] = true } })
  return true
end

return M
