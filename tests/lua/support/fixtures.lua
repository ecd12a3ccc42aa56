-- Spec helper: talk to a started emulator over plain HTTP (aep.http, never the aep.* client
-- library) and create what the data-plane specs need: the collection's loyalty field groups
-- and schemas (R7-R12), primary identity descriptors, Profile-enabled datasets (R13-R14) and a
-- streaming connection (Flow Service, optionally with a dataflow; or the legacy edge inlet, R4).
--
--   local fixtures = require "support.fixtures"
--   local emu, api, ids = fixtures.start()     -- an emulator with all of it (emu.cleanup() after)
--   local api = fixtures.client(emu)            -- emu: from support.emulator (url, env_file)
--   local ids = fixtures.loyalty(api, { dataflow = false })
--   local s, body = api:post("/collection/" .. ids.inlet_id, msg, { auth = false })
--   local msg = fixtures.profile_message(ids, { loyaltyID = "a@example.com" })
local http = require "aep.http"
local json = require "aep.json"

local emulator = require "tests.lua.support.emulator"

local M = {}

local Client = {}
Client.__index = Client

local read_env = emulator.read_env
M.read_env = read_env

local function form(t)
  local parts = {}
  for k, v in pairs(t) do
    parts[#parts + 1] = k .. "=" .. tostring(v):gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", c:byte())
    end)
  end
  return table.concat(parts, "&")
end

-- fixtures.client(emu) -> client with a fresh access token
function M.client(emu)
  local env = read_env(emu.env_file)
  local c = setmetatable({ url = emu.url, env = env, tenant = env.TENANT_ID, org = env.IMS_ORG,
                           sandbox = "prod", cainfo = emu.cainfo }, Client)
  local resp = assert(http.request {
    method = "POST", url = emu.url .. "/ims/token/v3", cainfo = emu.cainfo,
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = form { grant_type = "client_credentials", client_id = env.API_KEY,
                  client_secret = env.CLIENT_SECRET, scope = env.SCOPES },
  })
  assert(resp.status == 200, "token: " .. resp.status .. " " .. resp.body)
  c.token = assert(json.decode(resp.body)).access_token
  return c
end

-- client:headers([extra]) -> the Platform headers (STD of the collection)
function Client:headers(extra)
  local h = {
    ["Authorization"] = "Bearer " .. self.token,
    ["x-api-key"] = self.env.API_KEY,
    ["x-gw-ims-org-id"] = self.env.IMS_ORG,
    ["x-sandbox-name"] = self.sandbox,
  }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- client:request(method, path, body, opts) -> status, decoded body (or raw text), response
-- body: a table (sent as JSON) or a string (sent as is). opts.auth = false sends no Platform
-- headers (DCS inlets); opts.headers adds or overrides headers; opts.content_type.
function Client:request(method, path, body, opts)
  opts = opts or {}
  local headers = opts.auth == false and {} or self:headers()
  if body ~= nil then
    headers["Content-Type"] = opts.content_type or "application/json"
    if type(body) == "table" then body = json.encode(body) end
  end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local url = path:match("^https?://") and path or (self.url .. path)
  local resp = assert(http.request { method = method, url = url, headers = headers, body = body,
                                     max_body = 256 * 1024 * 1024, cainfo = self.cainfo })
  local decoded = resp.body
  if resp.body ~= "" then
    local v = json.decode(resp.body)
    if v ~= nil then decoded = v end
  end
  return resp.status, decoded, resp
end

function Client:get(path, opts) return self:request("GET", path, nil, opts) end
function Client:post(path, body, opts) return self:request("POST", path, body, opts) end
function Client:put(path, body, opts) return self:request("PUT", path, body, opts) end
function Client:patch(path, body, opts) return self:request("PATCH", path, body, opts) end

local function expect(status, want, body, what)
  if status ~= want then
    error(string.format("%s: expected %d, got %d: %s", what, want, status,
      type(body) == "table" and json.encode(body) or tostring(body)), 2)
  end
  return body
end
M.expect = expect

local function url_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.url_encode = url_encode

local counter = 0
local function unique()
  counter = counter + 1
  return string.format("t%d%d ", os.time() % 100000, counter)
end

-- The collection's mixins (R7, R10), field for field.
local LEVELS = { "Silver", "Gold", "Platinum", "Diamond" }
local function level_prop()
  local meta = {}
  for _, l in ipairs(LEVELS) do meta[l] = l end
  return { type = "string", title = "Loyalty Level", description = "", enum = LEVELS,
           ["meta:enum"] = meta, isRequired = false }
end

function M.profile_mixin(tenant, title)
  return {
    type = "object", title = title, description = "Loyalty details of a member",
    ["meta:intendedToExtend"] = { "https://ns.adobe.com/xdm/context/profile" },
    definitions = { loyalty = { properties = { ["_" .. tenant] = {
      type = "object", ["meta:xdmType"] = "object", required = { "loyaltyID" },
      properties = {
        totalLoyaltyPoints = { type = "integer", ["meta:xdmType"] = "int", title = "Total Loyalty Points",
                               description = "", isRequired = false },
        loyaltyLevel = level_prop(),
        loyaltyID = { type = "string", format = "email", title = "Loyalty ID", description = "",
                      isRequired = true },
      } } } } },
    allOf = { { ["$ref"] = "#/definitions/loyalty" } },
  }
end

function M.event_mixin(tenant, title)
  return {
    type = "object", title = title, description = "Loyalty event details",
    ["meta:intendedToExtend"] = { "https://ns.adobe.com/xdm/context/experienceevent" },
    definitions = { loyalty = { properties = { ["_" .. tenant] = {
      type = "object", ["meta:xdmType"] = "object", required = { "loyaltyID" },
      properties = {
        loyaltyLevel = level_prop(),
        totalPoints = { type = "integer", ["meta:xdmType"] = "int", title = "Total Loyalty Points",
                        description = "", isRequired = false },
        pointsEarned = { type = "integer", ["meta:xdmType"] = "int", title = "New Loyalty Points Earned",
                         description = "", isRequired = false },
        transactionID = { type = "string", title = "Loyalty Transaction ID", description = "", isRequired = true },
        loyaltyID = { type = "string", format = "email", title = "Loyalty ID", description = "",
                      isRequired = true },
      } } } } },
    allOf = { { ["$ref"] = "#/definitions/loyalty" } },
  }
end

local SCHEMAS = "/data/foundation/schemaregistry/tenant"

local function descriptor(api, schema_id)
  local s, b = api:post(SCHEMAS .. "/descriptors", {
    ["@type"] = "xdm:descriptorIdentity",
    ["xdm:sourceProperty"] = "/_" .. api.tenant .. "/loyaltyID",
    ["xdm:property"] = "xdm:code",
    ["xdm:isPrimary"] = true,
    ["xdm:namespace"] = "Email",
    ["xdm:sourceSchema"] = schema_id,
    ["xdm:sourceVersion"] = 1,
  }, { headers = { Accept = "application/vnd.adobe.xed+json" } })
  return expect(s, 201, b, "descriptor")
end

-- fixtures.dataset(api, name, schema_id [, profile=true]) -> dataset id
function M.dataset(api, name, schema_id, profile)
  local body = {
    name = name, description = name,
    schemaRef = { id = schema_id, contentType = "application/vnd.adobe.xed-full+json;version=1" },
    fileDescription = { persisted = true, containerFormat = "parquet", format = "parquet" },
  }
  if profile ~= false then
    body.tags = { unifiedIdentity = { "enabled:true" }, unifiedProfile = { "enabled:true" } }
  end
  local s, b = api:post("/data/foundation/catalog/datasets", body)
  expect(s, 201, b, "dataset")
  return (b[1]:gsub("^@/dataSets/", ""))
end

-- fixtures.streaming_connection(api, opts) -> { connection_id, inlet_id, inlet_url, source_id,
--   flow_id (opts.dataflow, targeting opts.dataset_id/opts.schema_id) }
-- opts.legacy: the collection's edge inlet (R4) instead of a Flow Service connection.
-- opts.authenticated: authenticationRequired = true.
function M.streaming_connection(api, opts)
  opts = opts or {}
  local name = unique() .. "Streaming Loyalty data"
  if opts.legacy then
    local s, b = api:post("/data/core/edge/inlet", {
      name = name, description = "Collects streaming data", sourceId = unique() .. "LoyaltyIngest",
      dataType = "xdm", authenticationRequired = opts.authenticated == true })
    expect(s, 201, b, "edge inlet")
    return { inlet_id = b.inletId, inlet_url = b.inletUrl, source_id = b.sourceId }
  end
  local s, b = api:post("/data/foundation/flowservice/connections", {
    name = name, providerId = "521eee4d-8cbe-4906-bb48-fb6bd4450033", description = "Testing",
    connectionSpec = { id = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", version = "1.0" },
    auth = { specName = "Streaming Connection",
             params = { sourceId = name, dataType = "xdm", name = name,
                        authenticationRequired = opts.authenticated == true } } })
  expect(s, 201, b, "connection")
  local out = { connection_id = b.id }
  local s2, c = api:get("/data/foundation/flowservice/connections/" .. b.id)
  expect(s2, 200, c, "get connection")
  local params = c.items[1].auth.params
  out.inlet_id, out.inlet_url, out.source_id = params.inletId, params.inletUrl, params.sourceId
  if opts.dataflow then
    local spec = { id = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", version = "1.0" }
    local s3, src = api:post("/data/foundation/flowservice/sourceConnections",
      { name = name .. " source", baseConnectionId = b.id, connectionSpec = spec })
    expect(s3, 201, src, "source connection")
    local s4, tgt = api:post("/data/foundation/flowservice/targetConnections", {
      name = name .. " target",
      data = { schema = { id = opts.schema_id, version = "application/vnd.adobe.xed-full+json;version=1.0" } },
      params = { dataSetId = opts.dataset_id },
      connectionSpec = { id = "c604ff05-7f1a-43c0-8e18-33bf874cb11c", version = "1.0" } })
    expect(s4, 201, tgt, "target connection")
    local s5, flow = api:post("/data/foundation/flowservice/flows", {
      name = name .. " flow", flowSpec = { id = "d8a6f005-7eaf-4153-983e-e8574508b877", version = "1.0" },
      sourceConnectionIds = { src.id }, targetConnectionIds = { tgt.id } })
    expect(s5, 201, flow, "flow")
    out.flow_id = flow.id
  end
  return out
end

-- fixtures.loyalty(api, opts) -> ids: tenant, org, profile_schema, event_schema, profile_dataset,
-- event_dataset, inlet_id, inlet_url, source_id, connection_id, flow_id
-- opts: dataflow (a dataflow to the profile dataset), legacy, authenticated, profile (false:
-- datasets without the Profile tags), union (false: schemas without the union tag)
function M.loyalty(api, opts)
  opts = opts or {}
  local u = unique()
  local ids = { tenant = api.tenant, org = api.org }
  local accept = { headers = { Accept = "application/vnd.adobe.xed+json" } }
  local s, b = api:post(SCHEMAS .. "/mixins/", M.profile_mixin(api.tenant, u .. "Loyalty Profile Details"), accept)
  ids.profile_mixin = expect(s, 201, b, "profile mixin")["$id"]
  -- R8 and R11 tag the schemas "union" at creation, before R9/R12 add the identity descriptors
  local tags = opts.union ~= false and { "union" } or nil
  s, b = api:post(SCHEMAS .. "/schemas/", {
    type = "object", title = u .. "Loyalty Profiles", description = "Profile data plus Loyalty data",
    allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" },
              { ["$ref"] = "https://ns.adobe.com/xdm/context/profile-person-details" },
              { ["$ref"] = "https://ns.adobe.com/xdm/context/profile-personal-details" },
              { ["$ref"] = ids.profile_mixin } },
    ["meta:immutableTags"] = tags }, accept)
  ids.profile_schema = expect(s, 201, b, "profile schema")["$id"]
  descriptor(api, ids.profile_schema)
  s, b = api:post(SCHEMAS .. "/mixins/", M.event_mixin(api.tenant, u .. "Loyalty Event Details"), accept)
  ids.event_mixin = expect(s, 201, b, "event mixin")["$id"]
  s, b = api:post(SCHEMAS .. "/schemas/", {
    type = "object", title = u .. "Loyalty Events", description = "Loyalty event data",
    allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/experienceevent" },
              { ["$ref"] = ids.event_mixin } },
    ["meta:immutableTags"] = tags }, accept)
  ids.event_schema = expect(s, 201, b, "event schema")["$id"]
  descriptor(api, ids.event_schema)
  ids.profile_dataset = M.dataset(api, u .. "Loyalty Profiles", ids.profile_schema, opts.profile)
  ids.event_dataset = M.dataset(api, u .. "Loyalty Events", ids.event_schema, opts.profile)
  local conn = M.streaming_connection(api, { legacy = opts.legacy, authenticated = opts.authenticated,
    dataflow = opts.dataflow, dataset_id = ids.profile_dataset, schema_id = ids.profile_schema })
  for k, v in pairs(conn) do ids[k] = v end
  return ids
end

-- fixtures.start([args [, loyalty_opts]]) -> emu, api, ids: an emulator (support.emulator,
-- started with args) holding the collection's set-up (fixtures.loyalty with loyalty_opts). If the
-- set-up fails, the emulator is cleaned up before the error goes on.
function M.start(args, opts)
  local emu = emulator.start(args)
  local ok, api, ids = pcall(function()
    local api = M.client(emu)
    return api, M.loyalty(api, opts)
  end)
  if not ok then
    emu.cleanup()
    error(api, 0)
  end
  return emu, api, ids
end

local CT = "application/vnd.adobe.xed-full+json;version=1"

-- fixtures.envelope(ids, schema_id, dataset_id, entity [, header_extra]) -> message (R15/R16)
function M.envelope(ids, schema_id, dataset_id, entity, extra)
  local header = {
    schemaRef = { id = schema_id, contentType = CT },
    imsOrgId = ids.org,
    source = { name = ids.source_id or "fixtures" },
    datasetId = dataset_id,
  }
  if ids.flow_id then header.flowId = ids.flow_id end
  for k, v in pairs(extra or {}) do header[k] = v end
  return { header = header, body = { xdmMeta = { schemaRef = { id = schema_id, contentType = CT } },
                                     xdmEntity = entity } }
end

-- fixtures.profile_entity(ids, o) -> the R15 xdmEntity (o: loyaltyID, level, points, first, last)
function M.profile_entity(ids, o)
  o = o or {}
  local id = o.loyaltyID or "jdoe@testprofile.com"
  return {
    ["_" .. ids.tenant] = { loyaltyID = id, loyaltyLevel = o.level or "Silver",
                            totalLoyaltyPoints = o.points or 12000 },
    person = { name = { firstName = o.first or "Jane", middleName = "B", lastName = o.last or "Doe" },
               birthDate = "1980-05-10", gender = "female" },
    personalEmail = { primary = false, address = id, type = "personal", status = "active" },
  }
end

-- fixtures.event_entity(ids, o) -> the R16 xdmEntity (o: loyaltyID, id, timestamp, earned, total)
function M.event_entity(ids, o)
  o = o or {}
  return {
    ["_" .. ids.tenant] = { loyaltyID = o.loyaltyID or "jdoe@testprofile.com", pointsEarned = o.earned or 2000,
                            totalPoints = o.total or 16500, loyaltyLevel = "Silver",
                            transactionID = o.transaction or "purchase_12345" },
    _id = o.id or "evt-1",
    eventType = "loyaltyBalanceUpdate",
    timestamp = o.timestamp or "2020-03-03T10:00:00Z",
  }
end

function M.profile_message(ids, o)
  return M.envelope(ids, ids.profile_schema, ids.profile_dataset, M.profile_entity(ids, o))
end

function M.event_message(ids, o)
  return M.envelope(ids, ids.event_schema, ids.event_dataset, M.event_entity(ids, o))
end

-- fixtures.records(api, dataset_id [, query]) -> /emulator/datasets/:id/records answer
function M.records(api, dataset_id, query)
  local s, b = api:get("/emulator/datasets/" .. dataset_id .. "/records" .. (query or ""), { auth = false })
  return expect(s, 200, b, "records")
end

-- fixtures.poll(fn, what [, seconds]) -> fn()'s first value that is not nil/false, polled every
-- 50 ms; raises "timed out waiting for WHAT" after `seconds` (default 20)
function M.poll(fn, what, seconds)
  local host = require "aep.host"
  seconds = seconds or 20
  local deadline = host.now() + seconds
  for _ = 1, seconds * 20 do
    local v = fn()
    if v then return v end
    if host.now() > deadline then break end
    host.sleep(0.05)
  end
  error("timed out waiting for " .. what, 2)
end

-- fixtures.final_batch(api, batch_id [, seconds]) -> the Catalog batch once it has left
-- "processing" (streamed records are validated after the answer and their batches close with the
-- emulator's --batch-window); raises after `seconds` (default 20)
function M.final_batch(api, batch_id, seconds)
  return M.poll(function()
    local s, b = api:get("/data/foundation/catalog/batches/" .. batch_id)
    local view = expect(s, 200, b, "batch")[batch_id]
    return view.status ~= "processing" and view
  end, "batch " .. batch_id .. " to leave processing", seconds)
end

-- fixtures.stored_ids(api, dataset_id) -> {loyaltyID = how many records hold it}, number of
-- records (of sample-shaped records: loyaltyID under _exchangeinternal)
function M.stored_ids(api, dataset_id)
  local counts, total, offset = {}, 0, 0
  repeat
    local page = M.records(api, dataset_id, "?limit=5000&offset=" .. offset)
    for _, rec in ipairs(page.records or {}) do
      local t = rec.entity and rec.entity._exchangeinternal
      if t and t.loyaltyID then counts[t.loyaltyID] = (counts[t.loyaltyID] or 0) + 1 end
      total = total + 1
    end
    offset = offset + 5000
  until #(page.records or {}) < 5000
  return counts, total
end

return M
