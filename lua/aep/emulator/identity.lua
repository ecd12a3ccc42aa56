-- aep.emulator.identity: Identity Service namespaces (docs/AEP-API-FACTS.md §5): the standard ones,
-- custom creation (409 NAMESPACE_CODE_CONFLICT), lookups by id or code.
--   identity.find(ctx, code_or_id) -> namespace | nil   (codes match without regard to case)
local json = require "aep.json"
local host = require "aep.host"
local errors = require "aep.emulator.errors"

local M = {}

local BASE = "/data/core/idnamespace"
local JSON_HEADERS = errors.JSON_HEADERS
local CREATED = 1546300800000 -- the standard namespaces' createTime/updateTime

-- {id, code, name, idType, description}
local STANDARD = {
  { 0, "CORE", "CORE", "COOKIE", "Adobe Audience Manager" },
  { 4, "ECID", "ECID", "COOKIE", "Experience Cloud ID (Adobe Marketing Cloud ID, Experience Platform ID)" },
  { 6, "Email", "Email", "Email", "Email" },
  { 7, "Phone", "Phone", "Phone", "Phone" },
  { 8, "WAID", "Windows AID", "DEVICE", "Windows Advertising ID" },
  { 9, "TNTID", "TNTID", "COOKIE", "Adobe Target ID" },
  { 10, "AAID", "Adobe Analytics (Legacy ID)", "COOKIE", "Adobe Analytics ID" },
  { 11, "Email_LC_SHA256", "Emails (SHA256, lowercased)", "Email", "SHA256 of the lower-cased email" },
  { 12, "Phone_E.164", "Phone (E.164)", "Phone", "Phone number in E.164 format" },
  { 13, "Phone_SHA256", "Phone (SHA256)", "Phone", "SHA256 of the phone number" },
  { 14, "Phone_SHA256_E.164", "Phone (SHA256_E.164)", "Phone", "SHA256 of the E.164 phone number" },
  { 15, "CRMID", "CRMID", "CROSS_DEVICE", "CRM identifier" },
  { 411, "AdCloud", "AdCloud", "COOKIE", "Adobe Advertising Cloud" },
  { 20914, "GAID", "Google Ad ID (GAID)", "DEVICE", "Google Advertising ID" },
  { 20915, "IDFA", "Apple IDFA", "DEVICE", "Apple ID for Advertisers" },
  { 20919, "FCM", "Firebase Cloud Messaging", "DEVICE", "Firebase Cloud Messaging token" },
  { 20920, "APNS", "Apple Push Notification service", "DEVICE", "Apple Push Notification service token" },
}

local standard, by_code, by_id = {}, {}, {}
for i, s in ipairs(STANDARD) do
  local ns = { id = s[1], code = s[2], name = s[3], idType = s[4], description = s[5], status = "ACTIVE",
               custom = false, createTime = CREATED, updateTime = CREATED }
  standard[i] = ns
  by_code[s[2]:lower()] = ns
  by_id[s[1]] = ns
end

-- idType, by its upper-case form: {as a listing (GET /identities, PUT) spells it, as one namespace
-- (POST, GET /identities/{ID}) spells it}. identity-service.yaml documents the two spellings (enum
-- of listNamespaces/updateNamespace vs Namespace), and Adobe's guides show the same: list-namespaces.md
-- answers "COOKIE", create-custom-namespace.md echoes "Cross_device". Any casing is accepted and
-- answered in the endpoint's documented spelling.
local ID_TYPES = {
  COOKIE = { "COOKIE", "Cookie" }, CROSS_DEVICE = { "CROSS_DEVICE", "Cross_device" }, DEVICE = { "Device", "Device" },
  EMAIL = { "Email", "Email" }, MOBILE = { "MOBILE", "Mobile" }, NON_PEOPLE = { "Non_people", "Non_people" },
  PHONE = { "Phone", "Phone" },
}

-- view(ns, "list" | "one") -> the namespace with idType spelled as that kind of answer documents it
local function view(ns, kind)
  local t = ID_TYPES[tostring(ns.idType):upper()]
  if not t then return ns end
  local out = {}
  for k, v in pairs(ns) do out[k] = v end
  out.idType = t[kind == "list" and 1 or 2]
  return out
end

-- identity.find(ctx, code_or_id) -> namespace | nil
function M.find(ctx, key)
  local n = tonumber(key)
  if n then
    local ns = by_id[n]
    if ns then return ns end
    for _, c in ipairs(ctx.store.list(ctx.sandbox, "namespace")) do
      if c.id == n then return c end
    end
    return nil
  end
  if type(key) ~= "string" then return nil end
  local lower = key:lower()
  if by_code[lower] then return by_code[lower] end
  for _, c in ipairs(ctx.store.list(ctx.sandbox, "namespace")) do
    if c.code:lower() == lower then return c end
  end
  return nil
end

local function problem(status, err, message)
  return status, { ["Content-Type"] = "application/json" }, {
    type = "http://ns.adobe.com/aep/errors/IDENTITY-" .. status, title = err, status = status,
    error = err, timestamp = errors.iso_now(), report = { message = message },
  }
end

local function list(req, ctx)
  local out = json.array {}
  for _, ns in ipairs(standard) do out[#out + 1] = view(ns, "list") end
  for _, ns in ipairs(ctx.store.list(ctx.sandbox, "namespace")) do out[#out + 1] = view(ns, "list") end
  return 200, JSON_HEADERS, out
end

local function get(req, ctx)
  local ns = M.find(ctx, req.params.id)
  if not ns then return problem(404, "NAMESPACE_NOT_FOUND", "Namespace " .. req.params.id .. " not found") end
  return 200, JSON_HEADERS, view(ns, "one")
end

-- The body as a table, or Identity Service's 400 (application/json, as documented) for a body
-- that is not JSON.
local function object_body(req)
  local ct = req.headers and req.headers["content-type"]
  if not ct or not ct:lower():find("json", 1, true) then
    return nil, { problem(400, "INVALID_REQUEST", "A valid content-type must be specified: Content-Type: application/json") }
  end
  local body, err = req:json_body()
  if body == nil then
    local detail = type(err) == "table" and type(err.body) == "table" and err.body.detail or "The request body is not valid JSON"
    return nil, { problem(400, "INVALID_REQUEST", detail) }
  end
  if type(body) ~= "table" or json.is_array(body) then
    return nil, { problem(400, "INVALID_REQUEST", "The request body must be a JSON object") }
  end
  return body
end

local function create(req, ctx)
  local body, err = object_body(req)
  if body == nil then return table.unpack(err) end
  local code, name = body.code, body.name
  if type(name) ~= "string" or name == "" then return problem(400, "INVALID_REQUEST", "name is required") end
  if type(code) ~= "string" or code == "" then return problem(400, "INVALID_REQUEST", "code is required") end
  if not code:match("^[%w]+$") then
    return problem(400, "INVALID_NAMESPACE_CODE", "code must contain only letters and digits")
  end
  local id_type = body.idType
  if type(id_type) ~= "string" or not ID_TYPES[id_type:upper()] then
    return problem(400, "INVALID_ID_TYPE",
      "idType must be one of Cookie, Cross_device, Device, Email, Mobile, Non_people, Phone")
  end
  if M.find(ctx, code) then
    return problem(409, "NAMESPACE_CODE_CONFLICT", "A namespace with the code '" .. code .. "' already exists")
  end
  local now = math.floor(host.now() * 1000)
  local max = 1000000
  for _, c in ipairs(ctx.store.list(ctx.sandbox, "namespace")) do
    if c.id > max then max = c.id end
  end
  local ns = { id = max + 1, code = code, name = name, idType = id_type:upper(),
               description = type(body.description) == "string" and body.description or "",
               status = "ACTIVE", custom = true, createTime = now, updateTime = now }
  ctx.store.put(ctx.sandbox, "namespace", code, ns)
  return 200, JSON_HEADERS, view(ns, "one")
end

-- PUT /identities/{ID}: a custom namespace's name, description and idType (namespaceUpdate:
-- code, name, idType required; the code names the namespace and cannot change). Standard
-- namespaces are Adobe's: 400. Answers [namespace], as identity-service.yaml documents.
local function update(req, ctx)
  local ns = M.find(ctx, req.params.id)
  if not ns then return problem(404, "NAMESPACE_NOT_FOUND", "Namespace " .. req.params.id .. " not found") end
  local body, err = object_body(req)
  if body == nil then return table.unpack(err) end
  if not ns.custom then
    return problem(400, "INVALID_REQUEST_PARAMS", "Namespace " .. ns.code .. " is a standard namespace: it cannot be updated")
  end
  local name, code, id_type = body.name, body.code, body.idType
  if type(name) ~= "string" or name == "" then return problem(400, "INVALID_REQUEST_PARAMS", "name is required") end
  if type(code) ~= "string" or code:lower() ~= ns.code:lower() then
    return problem(400, "INVALID_REQUEST_PARAMS", "code is required and must stay " .. ns.code .. " (a namespace's code cannot change)")
  end
  if type(id_type) ~= "string" or not ID_TYPES[id_type:upper()] then
    return problem(400, "INVALID_REQUEST_PARAMS",
      "idType must be one of COOKIE, CROSS_DEVICE, Device, Email, MOBILE, Non_people, Phone")
  end
  local new = {}
  for k, v in pairs(ns) do new[k] = v end
  new.name, new.idType, new.updateTime = name, id_type:upper(), math.floor(host.now() * 1000)
  if type(body.description) == "string" then new.description = body.description end
  ctx.store.put(ctx.sandbox, "namespace", ns.code, new)
  return 200, JSON_HEADERS, json.array { view(new, "list") }
end

function M.install(app)
  -- No `body = "json"`: the Content-Type check is object_body's, to answer in this service's shape.
  local o = { auth = "platform" }
  app:route("GET", BASE .. "/identities", list, o)
  app:route("POST", BASE .. "/identities", create, o)
  app:route("GET", BASE .. "/identities/:id", get, o)
  app:route("PUT", BASE .. "/identities/:id", update, o)
  app:route("GET", BASE .. "/orgs/:org/identities", list, o) -- deprecated form
end

return M
