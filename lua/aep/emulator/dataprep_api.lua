-- aep.emulator.dataprep_api: the Data Prep API (data-prep.yaml; help/data-prep/api/mapping-set.md,
-- functions.md, sample-data.md) at its documented base /data/foundation/conversion:
--   GET  /mappingSets?limit=&start=[&name=][&orderBy=]     {data: [...], _page: {count, limit}}
--   POST /mappingSets                                      200 {id, version, createdDate, ...}
--   POST /mappingSets/validate                             {validationResponse: [...]}
--   POST /mappingSets/preview                              [{data, errors}, ...]
--   GET  /mappingSets/:id[?version=N]                      the mapping set (that version)
--   PUT  /mappingSets/:id                                  a new version (version + 1)
--   GET  /mappingSets/:id/mappings[/:mappingId]            its mappings
--   POST /languages/el/validate {expression}               true | 400
--   GET  /languages/el/functions | /languages/el/operators the engine's catalogs
--   GET|POST /samples, POST /samples/upload, GET|PUT /samples/:id   sample data
-- The mapping sets are also served at /data/foundation/mappingSets, the path Adobe's HTTP API
-- streaming tutorial (help/sources/tutorials/api/create/streaming/http.md, "Create a mapping")
-- posts to. Every mapping set is compiled and validated by the engine (aep.dataprep) against its
-- target schema, the one the streaming path maps with (dataprep_stream.lua): one engine.
local json = require "aep.json"
local dataprep = require "aep.dataprep"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"
local ids = require "aep.emulator.ids"

local M = {}

M.BASE = "/data/foundation/conversion"
M.TUTORIAL_BASE = "/data/foundation/mappingSets"
local JSON_HEADERS = errors.JSON_HEADERS
local KIND, VERSION_KIND, SAMPLE_KIND = "mappingSet", "mappingSetVersion", "dataPrepSample"

local function problem(status, title, detail, extra)
  return errors.problem(status, title, detail, "https://ns.adobe.com/aep/errors/DATAPREP-" .. status, extra)
end

local function object_body(req)
  local body, err = req:json_body()
  if body == nil then return nil, err end
  if type(body) ~= "table" or json.is_array(body) then
    local s, h, b = problem(400, "Bad Request", "The request body must be a JSON object")
    return nil, { s, h, b, status = s, headers = h, body = b }
  end
  return registry.deepcopy(body)
end

-- the target schema's $id: outputSchema.schemaRef.id (mapping-set.md), xdmSchema (the streaming
-- tutorial) or schemaRef.id (the stored shape)
function M.schema_id(set)
  local os_ = type(set.outputSchema) == "table" and set.outputSchema
  local ref = os_ and type(os_.schemaRef) == "table" and os_.schemaRef.id
  if type(ref) == "string" then return ref end
  if type(set.xdmSchema) == "string" then return set.xdmSchema end
  if type(set.schemaRef) == "table" and type(set.schemaRef.id) == "string" then return set.schemaRef.id end
end

-- dataprep_api.resolve(ctx, set) -> resolved schema | nil, status, headers, body
function M.resolve(ctx, set)
  local id = M.schema_id(set)
  if not id then
    return nil, problem(400, "Bad Request",
      "The mapping set names no target schema: give outputSchema.schemaRef.id (or xdmSchema)")
  end
  local resolved = registry.resolve_schema(ctx, id)
  if not resolved then
    return nil, problem(400, "Bad Request", "The target schema " .. id .. " was not found in sandbox " .. ctx.sandbox)
  end
  return resolved
end

local function invalid(response)
  return problem(400, "Invalid mapping set",
    "The mapping set does not validate against its target schema: see report.validationResponse",
    { report = response })
end

-- The stored view of a mapping set version: the fields AEP returns (mapping-set.md "Look up a
-- mapping set"), each mapping with its id and both spellings of source and destination.
local function stored(ctx, set, id, version, created, t)
  local who = ctx.org.technical_account_id
  set.id, set.version = id, version
  set.createdDate, set.modifiedDate = created or t, t
  set.createdBy, set.modifiedBy = set.createdBy or who, who
  set.supportVersion = set.supportVersion or "1.1"
  set.status = set.status or "PUBLISHED"
  if set.strictMapping == nil then set.strictMapping = false end
  if set.allowNullValues == nil then set.allowNullValues = false end
  local sid = M.schema_id(set)
  set.xdmSchema = sid
  set.xdmVersion = set.xdmVersion or "1.0"
  set.schemaRef = set.schemaRef or { id = sid, contentType = "application/vnd.adobe.xed-full+json;version=1" }
  set.outputSchema = type(set.outputSchema) == "table" and set.outputSchema or {}
  set.outputSchema.schemaRef = set.outputSchema.schemaRef or set.schemaRef
  local mappings = json.array {}
  for i, m in ipairs(set.mappings) do
    local c = registry.deepcopy(m)
    c.id = type(c.id) == "string" and c.id or ids.hex(16)
    c.version = version
    c.createdDate, c.modifiedDate, c.createdBy, c.modifiedBy = created or t, t, who, who
    c.source = c.source == nil and c.sourceAttribute or c.source
    c.destination = c.destination or c.destinationXdmPath
    c.sourceType = c.sourceType or "ATTRIBUTE"
    if c.sourceAttribute == nil and type(c.source) == "string" then c.sourceAttribute = c.source end
    c.destinationXdmPath = c.destinationXdmPath or c.destination
    if c.identity == nil then c.identity = false end
    if c.primaryIdentity == nil then c.primaryIdentity = false end
    mappings[i] = c
  end
  set.mappings = mappings
  return set
end

local function summary(set)
  return { id = set.id, version = set.version, createdDate = set.createdDate, modifiedDate = set.modifiedDate,
           createdBy = set.createdBy, modifiedBy = set.modifiedBy }
end

local function check_set(ctx, set)
  if type(set.mappings) ~= "table" or (next(set.mappings) ~= nil and not json.is_array(set.mappings)) then
    return nil, problem(400, "Bad Request", "mappings is required: an array of mappings")
  end
  local resolved, s, h, b = M.resolve(ctx, set)
  if not resolved then return nil, s, h, b end
  local ok, response = dataprep.validate(set, resolved)
  if not ok then return nil, invalid(response) end
  return resolved
end

local function save_version(ctx, set)
  ctx.store.transaction(function()
    ctx.store.put(ctx.sandbox, KIND, set.id, set)
    ctx.store.put(ctx.sandbox, VERSION_KIND, set.id .. "@" .. set.version, set)
  end)
end

-- POST /mappingSets
local function create(req, ctx)
  local set, err = object_body(req)
  if not set then return err end
  local ok, s, h, b = check_set(ctx, set)
  if not ok then return s, h, b end
  set = stored(ctx, set, ids.hex(16), 0, nil, ids.now_ms())
  save_version(ctx, set)
  -- mapping-set.md: "A successful response returns HTTP status 200"
  return 200, JSON_HEADERS, summary(set)
end

local function nonneg_int(v)
  local n = math.tointeger(tonumber(v))
  if n and n >= 0 then return n end
end

-- GET /mappingSets?limit=&start=
local function list(req, ctx)
  local q = req.query or {}
  local limit = q.limit == nil and 10 or nonneg_int(q.limit)
  local start = q.start == nil and 0 or nonneg_int(q.start)
  if not limit or not start then
    return problem(400, "Bad Request", "limit and start must be non-negative integers (limit=10&start=0)")
  end
  local all = {}
  for _, d in ipairs(ctx.store.list(ctx.sandbox, KIND)) do
    if q.name == nil or d.name == q.name then all[#all + 1] = d end
  end
  local order = q.orderBy or "-updatedDate"
  local field = order:gsub("^[+-]", "")
  field = (field == "createdDate") and "createdDate" or "modifiedDate"
  local desc = order:sub(1, 1) ~= "+"
  table.sort(all, function(a, b)
    if a[field] ~= b[field] then
      if desc then return a[field] > b[field] end
      return a[field] < b[field]
    end
    return a.id < b.id
  end)
  local data = json.array {}
  for i = start + 1, math.min(#all, start + limit) do data[#data + 1] = all[i] end
  return 200, JSON_HEADERS, { data = data, _page = { count = #data, limit = limit } }
end

local function find(ctx, id, version)
  if version == nil then return ctx.store.get(ctx.sandbox, KIND, id) end
  return ctx.store.get(ctx.sandbox, VERSION_KIND, id .. "@" .. version)
end
M.find = find

local function not_found(what) return problem(404, "Not Found", what .. " was not found") end

-- GET /mappingSets/:id[?version=N]
local function get(req, ctx)
  local q = req.query or {}
  local version
  if q.version ~= nil then
    version = nonneg_int(q.version)
    if not version then return problem(400, "Bad Request", "version must be a non-negative integer") end
  end
  local set = find(ctx, req.params.id, version)
  if not set then
    return not_found("Mapping set " .. req.params.id .. (version and (" version " .. version) or ""))
  end
  return 200, JSON_HEADERS, set
end

-- PUT /mappingSets/:id: the body replaces the mapping set as a new version
local function put(req, ctx)
  local cur = find(ctx, req.params.id)
  if not cur then return not_found("Mapping set " .. req.params.id) end
  local set, err = object_body(req)
  if not set then return err end
  local ok, s, h, b = check_set(ctx, set)
  if not ok then return s, h, b end
  set.createdBy = cur.createdBy
  set = stored(ctx, set, cur.id, cur.version + 1, cur.createdDate, ids.now_ms())
  save_version(ctx, set)
  return 200, JSON_HEADERS, set
end

local function mappings(req, ctx)
  local set = find(ctx, req.params.id)
  if not set then return not_found("Mapping set " .. req.params.id) end
  return 200, JSON_HEADERS, json.array(set.mappings)
end

local function mapping(req, ctx)
  local set = find(ctx, req.params.id)
  if not set then return not_found("Mapping set " .. req.params.id) end
  for _, m in ipairs(set.mappings) do
    if m.id == req.params.mappingId then return 200, JSON_HEADERS, m end
  end
  return not_found("Mapping " .. req.params.mappingId .. " of mapping set " .. req.params.id)
end

-- POST /mappingSets/validate
local function validate(req, ctx)
  local set, err = object_body(req)
  if not set then return err end
  if type(set.mappings) ~= "table" then return problem(400, "Bad Request", "mappings is required: an array of mappings") end
  local resolved, s, h, b = M.resolve(ctx, set)
  if not resolved then return s, h, b end
  local _, response = dataprep.validate(set, resolved)
  return 200, JSON_HEADERS, response
end

-- POST /mappingSets/preview {data: [records], mappingSet: {...}}
local function preview(req, ctx)
  local body, err = object_body(req)
  if not body then return err end
  local set, data = body.mappingSet, body.data
  if type(set) ~= "table" or type(set.mappings) ~= "table" then
    return problem(400, "Bad Request", "mappingSet with its mappings is required")
  end
  if type(data) ~= "table" or (next(data) ~= nil and not json.is_array(data)) then
    return problem(400, "Bad Request", "data is required: an array of sample records")
  end
  local resolved, s, h, b = M.resolve(ctx, set)
  if not resolved then return s, h, b end
  local out, errs = dataprep.preview(set, data, resolved)
  if not out then
    local _, response = dataprep.validate(set, resolved)
    return invalid(response)
  end
  return 200, JSON_HEADERS, out
end

-- POST /languages/el/validate {expression}: true, or 400 with the compile error
local function validate_expression(req, ctx)
  local body, err = object_body(req)
  if not body then return err end
  local src = body.expression
  if type(src) == "table" then src = src.expression end -- the OpenAPI example nests it
  if type(src) ~= "string" then return problem(400, "Bad Request", "expression is required: a string") end
  local fn, why = dataprep.expression(src)
  if not fn then return problem(400, "Invalid expression", why) end
  return 200, JSON_HEADERS, "true"
end

local function functions(req, ctx) return 200, JSON_HEADERS, json.array(dataprep.function_catalog()) end
local function operators(req, ctx) return 200, JSON_HEADERS, json.array(dataprep.operator_catalog()) end

-- Sample data (sample-data.md names the routes only): a sample is {id, format, sampleData (the
-- records as JSON text), createdDate, ...}. POST /samples takes a JSON body; /samples/upload a
-- multipart form whose `file` part is the JSON (an array or one object).
local function sample_doc(ctx, id, fields, created)
  local t = ids.now_ms()
  local who = ctx.org.technical_account_id
  return { id = id, format = fields.format or "json", sampleData = fields.sampleData, name = fields.name,
           createdDate = created or t, modifiedDate = t, createdBy = who, modifiedBy = who }
end

local function sample_fields(body)
  if type(body.sampleData) == "string" then return body end
  if body.sampleData ~= nil then body.sampleData = json.encode(body.sampleData); return body end
  return nil
end

local function create_sample(req, ctx)
  local body, err = object_body(req)
  if not body then return err end
  local fields = sample_fields(body)
  if not fields then return problem(400, "Bad Request", "sampleData is required: the sample records") end
  local doc = sample_doc(ctx, ids.hex(16), fields)
  ctx.store.put(ctx.sandbox, SAMPLE_KIND, doc.id, doc)
  return 200, JSON_HEADERS, doc
end

local function upload_sample(req, ctx)
  local form = require("aep.emulator.auth").parse_form(req)
  local text = form.file
  if type(text) ~= "string" or text == "" then
    return problem(400, "Bad Request", "a multipart/form-data body with a `file` part is required")
  end
  if require("cjson.safe").decode(text) == nil then return problem(400, "Bad Request", "the file is not JSON") end
  local doc = sample_doc(ctx, ids.hex(16), { sampleData = text, format = "json", name = form.name })
  ctx.store.put(ctx.sandbox, SAMPLE_KIND, doc.id, doc)
  return 200, JSON_HEADERS, doc
end

local function list_samples(req, ctx)
  local data = json.array {}
  for _, d in ipairs(ctx.store.list(ctx.sandbox, SAMPLE_KIND)) do data[#data + 1] = d end
  return 200, JSON_HEADERS, { data = data, _page = { count = #data } }
end

local function get_sample(req, ctx)
  local d = ctx.store.get(ctx.sandbox, SAMPLE_KIND, req.params.id)
  if not d then return not_found("Sample " .. req.params.id) end
  return 200, JSON_HEADERS, d
end

local function put_sample(req, ctx)
  local cur = ctx.store.get(ctx.sandbox, SAMPLE_KIND, req.params.id)
  if not cur then return not_found("Sample " .. req.params.id) end
  local body, err = object_body(req)
  if not body then return err end
  local fields = sample_fields(body)
  if not fields then return problem(400, "Bad Request", "sampleData is required: the sample records") end
  local doc = sample_doc(ctx, cur.id, fields, cur.createdDate)
  ctx.store.put(ctx.sandbox, SAMPLE_KIND, doc.id, doc)
  return 200, JSON_HEADERS, doc
end

function M.install(app)
  local o = { auth = "platform", body = "json" }
  for _, base in ipairs { M.BASE .. "/mappingSets", M.TUTORIAL_BASE } do
    app:route("GET", base, list, o)
    app:route("POST", base, create, o)
    app:route("POST", base .. "/validate", validate, o)
    app:route("POST", base .. "/preview", preview, o)
    app:route("GET", base .. "/:id", get, o)
    app:route("PUT", base .. "/:id", put, o)
    app:route("GET", base .. "/:id/mappings", mappings, o)
    app:route("GET", base .. "/:id/mappings/:mappingId", mapping, o)
  end
  app:route("POST", M.BASE .. "/languages/el/validate", validate_expression, o)
  app:route("GET", M.BASE .. "/languages/el/functions", functions, o)
  app:route("GET", M.BASE .. "/languages/el/operators", operators, o)
  app:route("GET", M.BASE .. "/samples", list_samples, o)
  app:route("POST", M.BASE .. "/samples", create_sample, o)
  app:route("POST", M.BASE .. "/samples/upload", upload_sample, { auth = "platform" })
  app:route("GET", M.BASE .. "/samples/:id", get_sample, o)
  app:route("PUT", M.BASE .. "/samples/:id", put_sample, o)
end

return M
