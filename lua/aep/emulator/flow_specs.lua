-- aep.emulator.flow_specs: Flow Service's read-only catalog of the connection specs and flow specs
-- the HTTP API streaming path uses (flow-service.yaml ConnectionSpecItemDTO / FlowSpecItemDTO;
-- help/sources/tutorials/api/create/streaming/http.md; docs/AEP-API-FACTS.md §7).
--   GET  /data/foundation/flowservice/connectionSpecs[?property=EXPR]  -> {items:[spec]}
--   GET  /data/foundation/flowservice/connectionSpecs/:id             -> {items:[spec]}
--   GET  /data/foundation/flowservice/flowSpecs[?property=EXPR]        -> {items:[spec]}
--   GET  /data/foundation/flowservice/flowSpecs/:id                   -> {items:[spec]}
--   POST /data/foundation/flowservice/flowSpecs/search {queryString, limit} -> {items:[spec]}
-- transformationSpecs is an array of {name, spec}, as the guides' flowSpecs answers show it
-- (help/sources/tutorials/api/collect/cloud-storage.md); the spec says an object
-- (tests/contract/differences.json). The ids are Adobe's; the names, descriptions and attributes are the emulator's summary of what
-- the guides say of each (Adobe's full documents carry JSON Schemas of every parameter).
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local flow_query = require "aep.emulator.flow_query"

local M = {}

local BASE = "/data/foundation/flowservice"
local PROVIDER = "521eee4d-8cbe-4906-bb48-fb6bd4450033"

M.HTTP_API = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
M.DATA_LAKE = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"
M.STREAMING_FLOW = "d8a6f005-7eaf-4153-983e-e8574508b877"
M.MAPPING_FLOW = "c1a19761-d2c7-4702-b9fa-fe91f0613e81"

M.CONNECTION_SPECS = {
  {
    id = M.HTTP_API, name = "http-connector", providerId = PROVIDER, version = "1.0",
    attributes = { category = "Streaming", isSource = true, isPreview = false },
    authSpec = json.array { {
      name = "Streaming Connection", type = "Streaming Connection",
      spec = { ["$schema"] = "http://json-schema.org/draft-07/schema#", type = "object",
        description = "defines auth params required for the HTTP API streaming connection",
        properties = {
          name = { type = "string", description = "Name of the streaming connection (the inlet)." },
          sourceId = { type = "string", description = "Identifier of the source; defaults to name." },
          dataType = { type = "string", enum = json.array { "xdm", "raw" },
                       description = "xdm: XDM messages; raw: raw JSON mapped by a mapping set." },
          authenticationRequired = { type = "boolean",
            description = "true: requests to the inlet need a bearer token." },
        },
        required = json.array { "name" } },
    } },
    sourceSpec = { attributes = { uiAttributes = { category = "streaming", isSource = true } },
      spec = { type = "object", properties = {} } },
  },
  {
    id = M.DATA_LAKE, name = "Data Lake", providerId = PROVIDER, version = "1.0",
    attributes = { category = "Database", isDestination = true, isPreview = false },
    authSpec = json.array {},
    sourceSpec = { attributes = {}, spec = { type = "object", properties = {} } },
    targetSpec = { spec = { ["$schema"] = "http://json-schema.org/draft-07/schema#", type = "object",
      description = "the dataset a dataflow writes to",
      properties = { dataSetId = { type = "string", description = "The target dataset's id." } },
      required = json.array { "dataSetId" } } },
  },
}

M.FLOW_SPECS = {
  {
    id = M.STREAMING_FLOW, name = "Steam data without transformation", providerId = PROVIDER, version = "1.0",
    attributes = { isSourceFlow = true, frequency = "streaming" },
    sourceConnectionSpecIds = json.array { M.HTTP_API },
    targetConnectionSpecIds = json.array { M.DATA_LAKE },
    transformationSpecs = json.array {},
    scheduleSpec = { name = "PeriodicSchedule", type = "Streaming" },
  },
  {
    id = M.MAPPING_FLOW, name = "Mapping", providerId = PROVIDER, version = "1.0",
    attributes = { isSourceFlow = true, frequency = "streaming" },
    sourceConnectionSpecIds = json.array { M.HTTP_API },
    targetConnectionSpecIds = json.array { M.DATA_LAKE },
    transformationSpecs = json.array { {
      name = "Mapping",
      spec = { ["$schema"] = "http://json-schema.org/draft-07/schema#", type = "object",
        description = "defines the mapping set applied to raw data",
        properties = { mappingId = { type = "string" }, mappingVersion = { type = "string" } },
        required = json.array { "mappingId" } },
    } },
    scheduleSpec = { name = "PeriodicSchedule", type = "Streaming" },
  },
}

local function find(list, id)
  for _, s in ipairs(list) do if s.id == id then return s end end
end

-- flow_specs.connection_spec(id) / flow_spec(id) -> the spec | nil
function M.connection_spec(id) return find(M.CONNECTION_SPECS, id) end
function M.flow_spec(id) return find(M.FLOW_SPECS, id) end

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "https://ns.adobe.com/aep/errors/FLOW-" .. status)
end

local function listing(list)
  return function(req, ctx)
    local filters, bad = flow_query.from_query(req)
    if not filters then return problem(400, "Bad Request", bad) end
    return 200, errors.JSON_HEADERS, { items = flow_query.select(list, filters) }
  end
end

local function one(list, what)
  return function(req, ctx)
    local s = find(list, req.params.id)
    if not s then return problem(404, "Not Found", what .. " " .. req.params.id .. " was not found") end
    return 200, errors.JSON_HEADERS, { items = json.array { s } }
  end
end

local function search(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  local filters, bad = flow_query.from_search(body)
  if not filters then return problem(400, "Bad Request", bad) end
  return 200, errors.JSON_HEADERS, flow_query.answer(flow_query.select(M.FLOW_SPECS, filters), body)
end

function M.install(app)
  local o = { auth = "platform", body = "json" }
  app:route("GET", BASE .. "/connectionSpecs", listing(M.CONNECTION_SPECS), o)
  app:route("GET", BASE .. "/connectionSpecs/:id", one(M.CONNECTION_SPECS, "connection spec"), o)
  app:route("GET", BASE .. "/flowSpecs", listing(M.FLOW_SPECS), o)
  app:route("GET", BASE .. "/flowSpecs/:id", one(M.FLOW_SPECS, "flow spec"), o)
  app:route("POST", BASE .. "/flowSpecs/search", search, o)
end

return M
