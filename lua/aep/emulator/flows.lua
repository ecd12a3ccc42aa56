-- aep.emulator.flows: Flow Service (docs/AEP-API-FACTS.md §7) — base connections (the HTTP API
-- streaming spec creates an inlet), source/target connections, dataflows (mapping sets: dataprep_api.lua) — plus the
-- legacy inlet API (/data/core/edge/inlet) and UPS event types the collection uses.
--   flows.find_inlet(inlet_id) -> {inlet_id, sandbox, org_id, authentication_required,
--     connection_id, source_id, data_type, flow_ids = {...}, flows = {[flow_id] = {dataset_ids = {...}}}} | nil
local json = require "aep.json"
local crypto = require "aep.crypto"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"
local ids = require "aep.emulator.ids"

local M = {}

local BASE = "/data/foundation/flowservice"
local STREAMING_SPEC = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
local PROVIDER = "521eee4d-8cbe-4906-bb48-fb6bd4450033"
local JSON_HEADERS = errors.JSON_HEADERS

local hex = ids.hex
local now_ms = ids.now_ms

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "https://ns.adobe.com/aep/errors/FLOW-" .. status)
end

local app_ref
local inlets = {} -- inlet_id -> record (derived; rebuilt from the store)

local function object_body(req)
  local body, err = req:json_body()
  if body == nil then return nil, err end
  if type(body) ~= "table" or json.is_array(body) then
    local s, h, b = problem(400, "Bad Request", "The request body must be a JSON object")
    return nil, { s, h, b, status = s, headers = h, body = b }
  end
  return registry.deepcopy(body)
end

-- Rebuild one sandbox-independent inlet record from the stored docs.
local function index_inlet(sandbox, inlet_doc)
  local store = app_ref.store
  local rec = {
    inlet_id = inlet_doc.inletId, sandbox = sandbox, org_id = app_ref.org.org_id,
    authentication_required = inlet_doc.authenticationRequired == true,
    connection_id = inlet_doc.connectionId, source_id = inlet_doc.sourceId,
    data_type = inlet_doc.dataType or "xdm", name = inlet_doc.name, flow_ids = {}, flows = {},
  }
  if rec.connection_id then
    local sources = {}
    for _, sc in ipairs(store.list(sandbox, "sourceConnection")) do
      if sc.baseConnectionId == rec.connection_id then sources[sc.id] = true end
    end
    for _, flow in ipairs(store.list(sandbox, "flow")) do
      local hit = false
      for _, sid in ipairs(flow.sourceConnectionIds or {}) do if sources[sid] then hit = true end end
      if hit then
        local datasets = {}
        for _, tid in ipairs(flow.targetConnectionIds or {}) do
          local tc = store.get(sandbox, "targetConnection", tid)
          local ds = tc and tc.params and tc.params.dataSetId
          if ds then datasets[#datasets + 1] = ds end
        end
        rec.flow_ids[#rec.flow_ids + 1] = flow.id
        rec.flows[flow.id] = { dataset_ids = datasets }
      end
    end
  end
  inlets[rec.inlet_id] = rec
  return rec
end

local function reindex(sandbox)
  for id, rec in pairs(inlets) do
    if rec.sandbox == sandbox then inlets[id] = nil end
  end
  for _, doc in ipairs(app_ref.store.list(sandbox, "inlet")) do index_inlet(sandbox, doc) end
end

-- flows.find_inlet(inlet_id) -> record | nil
function M.find_inlet(inlet_id)
  return inlets[inlet_id]
end

local function inlet_url(id) return app_ref.urls.base .. "/collection/" .. id end

local function new_inlet(ctx, fields)
  local id = hex(32)
  local t = now_ms()
  local doc = {
    inletId = id, inletUrl = inlet_url(id), inletName = fields.name, inletDescription = fields.description,
    name = fields.name, description = fields.description,
    sourceId = fields.sourceId or fields.name, dataType = fields.dataType or "xdm",
    authenticationRequired = fields.authenticationRequired == true,
    connectionId = fields.connectionId, imsOrg = ctx.org.org_id, sandboxName = ctx.sandbox,
    createdBy = ctx.org.technical_account_id, createdDate = t,
    modifiedBy = ctx.org.technical_account_id, modifiedDate = t,
  }
  ctx.store.put(ctx.sandbox, "inlet", id, doc)
  return doc
end

local function meta(ctx, doc)
  local t = now_ms()
  doc.createdAt, doc.updatedAt = doc.createdAt or t, t
  doc.createdBy, doc.updatedBy = ctx.org.technical_account_id, ctx.org.technical_account_id
  doc.createdClient, doc.updatedClient = ctx.org.client_id, ctx.org.client_id
  doc.sandboxId, doc.sandboxName, doc.imsOrgId = ctx.sandbox, ctx.sandbox, ctx.org.org_id
  doc.etag = "\"" .. hex(8) .. "-0000-0200-0000-" .. hex(6) .. "\""
  doc.version = doc.etag
  doc.state = doc.state or "enabled"
  return doc
end

local function created(doc) return 201, JSON_HEADERS, { id = doc.id, etag = doc.etag } end

-- ---------------------------------------------------------------------------------------------
-- Flow Service

local function create_connection(req, ctx)
  local doc, err = object_body(req)
  if not doc then return err end
  if type(doc.name) ~= "string" or doc.name == "" then return problem(400, "Bad Request", "name is required") end
  local spec = type(doc.connectionSpec) == "table" and doc.connectionSpec.id
  if type(spec) ~= "string" then return problem(400, "Bad Request", "connectionSpec.id is required") end
  doc.id = crypto.uuid4()
  meta(ctx, doc)
  if spec == STREAMING_SPEC then
    doc.auth = type(doc.auth) == "table" and doc.auth or {}
    doc.auth.specName = doc.auth.specName or "Streaming Connection"
    local p = type(doc.auth.params) == "table" and doc.auth.params or {}
    doc.auth.params = p
    p.name = p.name or doc.name
    p.sourceId = p.sourceId or p.name
    p.dataType = p.dataType or "xdm"
    if p.dataType ~= "xdm" and p.dataType ~= "raw" then
      return problem(400, "Bad Request", "auth.params.dataType must be xdm or raw")
    end
    p.authenticationRequired = p.authenticationRequired == true
    doc.providerId = doc.providerId or PROVIDER
    local inlet = new_inlet(ctx, { name = p.name, description = doc.description, sourceId = p.sourceId,
      dataType = p.dataType, authenticationRequired = p.authenticationRequired, connectionId = doc.id })
    p.inletId, p.inletUrl = inlet.inletId, inlet.inletUrl
    ctx.store.transaction(function() ctx.store.put(ctx.sandbox, "connection", doc.id, doc) end)
    index_inlet(ctx.sandbox, inlet)
  else
    ctx.store.put(ctx.sandbox, "connection", doc.id, doc)
  end
  return created(doc)
end

local function check_source(ctx, doc)
  if type(doc.baseConnectionId) ~= "string" or not ctx.store.get(ctx.sandbox, "connection", doc.baseConnectionId) then
    return problem(400, "Bad Request", "baseConnectionId " .. tostring(doc.baseConnectionId) .. " does not exist")
  end
end

local function check_target(ctx, doc)
  local ds = type(doc.params) == "table" and doc.params.dataSetId
  if ds ~= nil and not ctx.store.get(ctx.sandbox, "dataset", ds) then
    return problem(400, "Bad Request", "params.dataSetId " .. tostring(ds) .. " does not exist")
  end
end

local function check_flow(ctx, doc)
  if type(doc.flowSpec) ~= "table" or type(doc.flowSpec.id) ~= "string" then
    return problem(400, "Bad Request", "flowSpec.id is required")
  end
  for field, kind in pairs { sourceConnectionIds = "sourceConnection", targetConnectionIds = "targetConnection" } do
    local ids = doc[field]
    if type(ids) ~= "table" or #ids == 0 then return problem(400, "Bad Request", field .. " is required") end
    for _, id in ipairs(ids) do
      if not ctx.store.get(ctx.sandbox, kind, id) then
        return problem(400, "Bad Request", field .. ": " .. tostring(id) .. " does not exist")
      end
    end
  end
  for _, t in ipairs(doc.transformations or {}) do
    if type(t) == "table" and t.name ~= "Mapping" then
      return problem(400, "Bad Request", "transformation name must be 'Mapping'")
    end
    -- the mapping set the dataflow maps raw data with (dataprep_api.lua) must exist
    local p = type(t) == "table" and type(t.params) == "table" and t.params or {}
    if p.mappingId ~= nil and not ctx.store.get(ctx.sandbox, "mappingSet", tostring(p.mappingId)) then
      return problem(400, "Bad Request", "transformations: mapping set " .. tostring(p.mappingId) .. " does not exist")
    end
  end
end

local function simple_create(kind, checker)
  return function(req, ctx)
    local doc, err = object_body(req)
    if not doc then return err end
    if type(doc.name) ~= "string" or doc.name == "" then return problem(400, "Bad Request", "name is required") end
    local s, h, b = checker(ctx, doc)
    if s then return s, h, b end
    doc.id = crypto.uuid4()
    meta(ctx, doc)
    ctx.store.put(ctx.sandbox, kind, doc.id, doc)
    if kind == "flow" then reindex(ctx.sandbox) end
    return created(doc)
  end
end

-- the inlet URL follows the emulator's current address (--port 0 changes it at each start)
local function view(d)
  local p = type(d.auth) == "table" and type(d.auth.params) == "table" and d.auth.params
  if p and p.inletId then p.inletUrl = inlet_url(p.inletId) end
  return d
end

local function list_kind(kind)
  return function(req, ctx)
    local items = json.array {}
    for _, d in ipairs(ctx.store.list(ctx.sandbox, kind)) do items[#items + 1] = view(d) end
    return 200, JSON_HEADERS, { items = items }
  end
end

local function get_kind(kind)
  return function(req, ctx)
    local d = ctx.store.get(ctx.sandbox, kind, req.params.id)
    if not d then return problem(404, "Not Found", kind .. " " .. req.params.id .. " was not found") end
    return 200, JSON_HEADERS, { items = json.array { view(d) } }
  end
end

local function delete_kind(kind)
  return function(req, ctx)
    local d = ctx.store.get(ctx.sandbox, kind, req.params.id)
    if not d then return problem(404, "Not Found", kind .. " " .. req.params.id .. " was not found") end
    ctx.store.transaction(function()
      ctx.store.delete(ctx.sandbox, kind, d.id)
      if kind == "connection" then
        for _, inlet in ipairs(ctx.store.list(ctx.sandbox, "inlet")) do
          if inlet.connectionId == d.id then ctx.store.delete(ctx.sandbox, "inlet", inlet.inletId) end
        end
      end
    end)
    reindex(ctx.sandbox)
    return 204, {}, ""
  end
end

-- ---------------------------------------------------------------------------------------------
-- Legacy inlets: /data/core/edge/inlet

local function legacy_view(doc)
  return {
    inletId = doc.inletId, inletUrl = inlet_url(doc.inletId), inletName = doc.inletName or doc.name,
    inletDescription = doc.inletDescription or doc.description, sourceId = doc.sourceId,
    dataType = doc.dataType, authenticationRequired = doc.authenticationRequired, imsOrg = doc.imsOrg,
    createdBy = doc.createdBy, createdDate = doc.createdDate, modifiedBy = doc.modifiedBy,
    modifiedDate = doc.modifiedDate, connectionId = doc.connectionId,
  }
end

local function create_legacy_inlet(req, ctx)
  local doc, err = object_body(req)
  if not doc then return err end
  if type(doc.name) ~= "string" or doc.name == "" then return problem(400, "Bad Request", "name is required") end
  local dt = doc.dataType or "xdm"
  if dt ~= "xdm" and dt ~= "raw" then return problem(400, "Bad Request", "dataType must be xdm or raw") end
  local inlet = new_inlet(ctx, { name = doc.name, description = doc.description, sourceId = doc.sourceId,
    dataType = dt, authenticationRequired = doc.authenticationRequired == true })
  index_inlet(ctx.sandbox, inlet)
  return 201, JSON_HEADERS, legacy_view(inlet)
end

local function list_legacy(req, ctx)
  local items = json.array {}
  for _, d in ipairs(ctx.store.list(ctx.sandbox, "inlet")) do items[#items + 1] = legacy_view(d) end
  return 200, JSON_HEADERS, { items = items, _page = { count = #items } }
end

local function get_legacy(req, ctx)
  local d = ctx.store.get(ctx.sandbox, "inlet", req.params.id)
  if not d then return problem(404, "Not Found", "inlet " .. req.params.id .. " was not found") end
  return 200, JSON_HEADERS, legacy_view(d)
end

local function delete_legacy(req, ctx)
  if not ctx.store.delete(ctx.sandbox, "inlet", req.params.id) then
    return problem(404, "Not Found", "inlet " .. req.params.id .. " was not found")
  end
  inlets[req.params.id] = nil
  return 204, {}, ""
end

-- ---------------------------------------------------------------------------------------------
-- UPS event types (the collection POSTs them without Content-Type)

local function create_event_type(req, ctx)
  local doc, err = object_body(req)
  if not doc then return err end
  if type(doc.id) ~= "string" or doc.id == "" then return problem(400, "Bad Request", "id is required") end
  if ctx.store.get(ctx.sandbox, "eventType", doc.id) then
    return problem(409, "Conflict", "The event type " .. doc.id .. " already exists")
  end
  doc.imsOrgId = doc.imsOrgId or ctx.org.org_id
  doc.created = now_ms()
  ctx.store.put(ctx.sandbox, "eventType", doc.id, doc)
  return 201, JSON_HEADERS, doc
end

local function list_event_types(req, ctx)
  local children = json.array {}
  for _, d in ipairs(ctx.store.list(ctx.sandbox, "eventType")) do children[#children + 1] = d end
  return 200, JSON_HEADERS, { _page = { count = #children }, children = children }
end

local function get_event_type(req, ctx)
  local d = ctx.store.get(ctx.sandbox, "eventType", req.params.id)
  if not d then return problem(404, "Not Found", "event type " .. req.params.id .. " was not found") end
  return 200, JSON_HEADERS, d
end

-- For flow_updates.lua (PATCH): the creation checks by kind, and the inlet index's rebuild.
M.CHECKS = { sourceConnection = check_source, targetConnection = check_target, flow = check_flow }
M.reindex = function(sandbox) reindex(sandbox) end

function M.install(app)
  app_ref = app
  inlets = {}
  for _, sb in ipairs(app.store.sandboxes()) do reindex(sb) end
  local o = { auth = "platform", body = "json" }
  app:route("POST", BASE .. "/connections", create_connection, o)
  app:route("POST", BASE .. "/sourceConnections", simple_create("sourceConnection", check_source), o)
  app:route("POST", BASE .. "/targetConnections", simple_create("targetConnection", check_target), o)
  app:route("POST", BASE .. "/flows", simple_create("flow", check_flow), o)
  for path, kind in pairs { connections = "connection", sourceConnections = "sourceConnection",
                            targetConnections = "targetConnection", flows = "flow" } do
    app:route("GET", BASE .. "/" .. path, list_kind(kind), o)
    app:route("GET", BASE .. "/" .. path .. "/:id", get_kind(kind), o)
    app:route("DELETE", BASE .. "/" .. path .. "/:id", delete_kind(kind), o)
  end

  app:route("POST", "/data/core/edge/inlet", create_legacy_inlet, o)
  app:route("GET", "/data/core/edge/inlet", list_legacy, o)
  app:route("GET", "/data/core/edge/inlet/:id", get_legacy, o)
  app:route("DELETE", "/data/core/edge/inlet/:id", delete_legacy, o)

  local et = { auth = "platform" } -- no Content-Type check: the collection sends none
  app:route("POST", "/data/core/ups/config/eventTypes", create_event_type, et)
  app:route("GET", "/data/core/ups/config/eventTypes", list_event_types, et)
  app:route("GET", "/data/core/ups/config/eventTypes/:id", get_event_type, et)
end

function M.reset(app)
  inlets = {}
end

return M
