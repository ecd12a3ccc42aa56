-- aep.emulator.edge: the Edge Network on the emulator's port (Adobe's Web SDK and the Edge Network
-- Server API: help/server-api/interactive-data-collection.md, non-interactive-data-collection.md,
-- error-handling.md, location-hints.md; the Web SDK's own requests, @adobe/alloy).
--   POST /ee/v1/interact?configId=ID&requestId=R      the Web SDK: events, answered with handles
--   POST /ee/v1/collect?configId=ID                   the Web SDK's sendBeacon: 204, no body
--   POST /ee/v1/privacy/set-consent?configId=ID       the Web SDK's setConsent
--   POST /ee/v1/identity/acquire?configId=ID          the Web SDK's getIdentity (no event)
--   POST /ee/v2/interact?dataStreamId=ID              Server API, interactive: 200 with handles
--   POST /ee/v2/collect?dataStreamId=ID[&silent=true] Server API, batched: 202 {requestId} | 204
--   (each also under /ee/<locationHint>/..., where the Web SDK sends once it has a hint)
-- Bodies are JSON whatever their Content-Type (the Web SDK posts text/plain, so no preflight;
-- sendBeacon too). An event is {xdm, data, meta}; `events` (or `event` for v2/interact).
--
-- What happens to an event: its datastream (configId / dataStreamId / datastreamId) names the
-- sandbox and the event dataset (datastreams.lua); the device's ECID (kndctr identity cookie,
-- meta.state.entries, identityMap.ECID, else minted) joins identityMap.ECID; `_id` and
-- `timestamp` are filled when missing; the xdm then goes the asynchronous streaming way
-- (async_validation.accept, in the request's transaction): validated after the answer into the
-- dataset and Profile, or into a failed batch with its violations -- the answer does not wait.
-- Consent: a visitor's "general=out" (setConsent, kndctr consent cookie), or a datastream whose
-- defaultConsent is "out" with no opt-in, drops the events, as the Edge Network does. A
-- setConsent's Adobe 2.0 value goes, as a profile record {identityMap, consents}, the same
-- asynchronous way into the datastream's profile dataset (when it names one).
-- A token is optional, as at edge.adobedc.net; one given must be valid (401 EXEG-0500-401), and
-- a datastream with authenticationRequired refuses requests without one.
-- Errors are problem details (application/problem+json): an unknown datastream 400
-- EXEG-0003-400; a request without events, or an event without an xdm object, 422 EXEG-0104-422
-- with report.errors (the documented example's shape).
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local crypto = require "aep.crypto"
local ingest = require "aep.emulator.ingest"
local async_validation = require "aep.emulator.async_validation"
local datastreams = require "aep.emulator.datastreams"
local auth = require "aep.emulator.auth"
local ident = require "aep.emulator.edge_identity"

local M = {}

M.MAX_BODY = 1048576
M.ERRORS = "https://ns.adobe.com/aep/errors/"

local PROBLEM = { ["Content-Type"] = "application/problem+json" }
local JSON = { ["Content-Type"] = "application/json" }

local function problem(status, code, title, detail, report)
  return status, PROBLEM, cjson.encode { type = M.ERRORS .. code, status = status, title = title,
                                         detail = detail, report = report }
end

local function invalid(request_id, org_id, errs)
  return problem(422, "EXEG-0104-422", "Unprocessable entity",
    "Invalid request (report attached). Please check your input and try again.",
    { errors = errs, requestId = request_id, orgId = org_id })
end

local function iso(ms)
  return os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000) .. string.format(".%03dZ", ms % 1000)
end

-- The request: body, datastream, request id -> r | nil, status, headers, body
local function admit(req, ctx, version)
  local q = req.query or {}
  local request_id = q.requestId
  if type(request_id) ~= "string" or request_id == "" or #request_id > 128 then request_id = crypto.uuid4() end
  local org_id = ctx.app.org and ctx.app.org.org_id
  local size = req.too_large and req.body_size or #(req.body or "")
  if size > M.MAX_BODY then
    return nil, problem(413, "EXEG-0105-413", "Payload too large", string.format(
      "The request body of %d bytes exceeds the limit of %d bytes.", size, M.MAX_BODY),
      { requestId = request_id, orgId = org_id })
  end
  local id = q.configId or q.dataStreamId or q.datastreamId
  if type(id) ~= "string" or id == "" then
    return nil, problem(400, "EXEG-0003-400", "Invalid datastream ID",
      "The request names no datastream: add ?" .. (version == 1 and "configId" or "dataStreamId") ..
      "=DATASTREAM_ID (POST /emulator/datastreams creates one).", { requestId = request_id, orgId = org_id })
  end
  local ds = datastreams.find(ctx.app.store, id)
  if not ds then
    return nil, problem(400, "EXEG-0003-400", "Invalid datastream ID",
      "The referenced Config '" .. id .. ":prod' doesn't exist. Update the reference and try again.",
      { requestId = request_id, orgId = org_id })
  end
  -- Authentication (help/server-api/authentication.md): a request may come without a token
  -- (edge.adobedc.net, the Web SDK); a token it brings must be valid, and a datastream that
  -- requires authentication takes none without one.
  local authz = req.headers["authorization"]
  if authz ~= nil or ds.authenticationRequired then
    local rec, why = auth.verify_bearer(ctx.app, authz)
    if rec and org_id and rec.org_id and rec.org_id ~= org_id then rec, why = nil, "invalid" end
    if not rec then
      return nil, problem(401, "EXEG-0500-401", "Invalid authorization token",
        why == "missing" and (ds.authenticationRequired and
          "The datastream requires authentication but the request has no 'Authorization: Bearer TOKEN' header."
          or "The authorization header value does not include the required Bearer token.")
        or "The provided authorization token is invalid or expired: get a new one from IMS.",
        { requestId = request_id, orgId = org_id })
    end
  end
  local payload = cjson_safe.decode(req.body or "")
  if type(payload) ~= "table" then
    return nil, invalid(request_id, org_id, { "The request body is not a JSON object" })
  end
  return { request_id = request_id, org_id = org_id, ds = ds, payload = payload,
           cookies = ident.cookies(req, payload), version = version }
end

-- The events of a request -> list | nil, errors
local function events_of(payload, single_ok)
  local list = payload.events
  if list == nil and single_ok and type(payload.event) == "table" then list = { payload.event } end
  if type(list) ~= "table" or list[1] == nil then
    return nil, { "The request has no events: send {\"events\": [{\"xdm\": {...}}]}" }
  end
  local errs = {}
  for i, ev in ipairs(list) do
    if type(ev) ~= "table" or type(ev.xdm) ~= "table" or ev.xdm[1] ~= nil then
      errs[#errs + 1] = string.format("Event at index %d has no xdm object", i - 1)
    end
  end
  if #errs > 0 then return nil, errs end
  return list
end

-- The device's ECID -> ecid, minted (boolean)
local function device_ecid(r, events)
  local ecid = ident.decode(r.cookies[ident.cookie_name(r.org_id, "identity")])
  if ecid then return ecid, false end
  for _, ev in ipairs(events or {}) do
    ecid = ident.from_xdm(ev.xdm)
    if ecid then return ecid, false end
  end
  local map = type(r.payload.xdm) == "table" and r.payload.xdm or nil
  -- a setConsent request carries its identityMap at the top (@adobe/alloy, createConsentRequestPayload)
  ecid = (map and ident.from_xdm(map)) or ident.from_xdm(r.payload)
  if ecid then return ecid, false end
  return ident.mint(), true
end

-- Collection allowed? -> true | false
local function consented(r)
  local c = ident.consent(r.cookies, r.org_id)
  if c then return c == "in" end
  return r.ds.defaultConsent ~= "out"
end

-- Records into the asynchronous pipeline, to one of the datastream's datasets ("event" or
-- "profile") -> number accepted | nil, why. fill(xdm, t) completes each record first.
local function accept_into(ctx, r, which, records, fill)
  local ds = r.ds
  local dataset_id = ds[which .. "Dataset"]
  local info = ingest.dataset(ctx, ds.sandbox, dataset_id)
  if not info then return nil, which .. " dataset " .. tostring(dataset_id) .. " of datastream " .. ds.id ..
    " no longer exists in sandbox " .. ds.sandbox end
  local t = math.floor((ctx.now or os.time()) * 1000)
  local rows = {}
  for i, xdm in ipairs(records) do
    fill(xdm, t)
    rows[i] = { ds.sandbox, info.id, "", "edge:" .. ds.id, r.request_id .. ":" .. (i - 1), t, cjson.encode(xdm) }
  end
  local store = ctx.app.store
  store.transaction(function() async_validation.accept(store, rows) end)
  return #rows
end

-- The events into the event dataset -> number accepted | nil, why
local function accept(ctx, r, events, ecid)
  local records = {}
  for i, ev in ipairs(events) do records[i] = ev.xdm end
  return accept_into(ctx, r, "event", records, function(xdm, t)
    ident.stitch(xdm, ecid)
    if xdm._id == nil then xdm._id = crypto.uuid4() end
    if xdm.timestamp == nil then xdm.timestamp = iso(t) end
  end)
end

-- The handles of an interactive answer
local function handles(r, ecid, extra_state)
  local org = r.org_id
  local state = {
    { key = ident.cookie_name(org, "identity"), value = ident.encode(ecid, os.time()),
      maxAge = ident.IDENTITY_MAX_AGE, attrs = { SameSite = "None" } },
    { key = ident.cookie_name(org, "cluster"), value = ident.HINT, maxAge = ident.CLUSTER_MAX_AGE,
      attrs = { SameSite = "None" } },
  }
  for _, s in ipairs(extra_state or {}) do state[#state + 1] = s end
  return {
    { type = "identity:result", payload = { { id = ecid, namespace = { code = "ECID" } } } },
    { type = "state:store", payload = state },
    { type = "locationHint:result", payload = {
      { scope = "EdgeNetwork", hint = ident.HINT, ttlSeconds = ident.CLUSTER_MAX_AGE } } },
  }
end

-- The identity cookie as a Set-Cookie header too (a first-party Edge domain sets it this way)
local function with_cookie(req, ctx, headers, r, ecid)
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  local secure = ctx.app.scheme == "https"
  h["Set-Cookie"] = ident.cookie_name(r.org_id, "identity") .. "=" .. ident.encode(ecid, os.time()) ..
    "; Path=/; Max-Age=" .. ident.IDENTITY_MAX_AGE .. (secure and "; SameSite=None; Secure" or "; SameSite=Lax")
  return h
end

local function interact(version)
  return function(req, ctx)
    local r, status, headers, body = admit(req, ctx, version)
    if not r then return status, headers, body end
    local events, errs = events_of(r.payload, version == 2)
    if not events then return invalid(r.request_id, r.org_id, errs) end
    ctx.message_count = #events
    local ecid = device_ecid(r, events)
    if consented(r) then
      local n, err = accept(ctx, r, events, ecid)
      if not n then return problem(422, "EXEG-0104-422", "Unprocessable entity", err,
        { requestId = r.request_id, orgId = r.org_id }) end
    end
    local answer = cjson.encode { requestId = r.request_id, handle = handles(r, ecid) }
    return 200, with_cookie(req, ctx, JSON, r, ecid), answer
  end
end

local function collect(version)
  return function(req, ctx)
    local r, status, headers, body = admit(req, ctx, version)
    if not r then return status, headers, body end
    local events, errs = events_of(r.payload, false)
    if not events then return invalid(r.request_id, r.org_id, errs) end
    ctx.message_count = #events
    local ecid = device_ecid(r, events)
    if consented(r) then
      local n, err = accept(ctx, r, events, ecid)
      if not n then return problem(422, "EXEG-0104-422", "Unprocessable entity", err,
        { requestId = r.request_id, orgId = r.org_id }) end
    end
    if version == 1 or (req.query and req.query.silent == "true") then return 204, {}, "" end
    return 202, JSON, cjson.encode { requestId = r.request_id }
  end
end

-- setConsent: {consent: [{standard: "Adobe", version: "1.0", value: {general: "in"|"out"}} |
-- {standard: "Adobe", version: "2.0", value: {collect: {val: "y"|"n"}}} | {standard: "IAB TCF", ...}]}
local function consent_value(list)
  local errs, general = {}, nil
  if type(list) ~= "table" or list[1] == nil then return nil, { "consent must be a non-empty array" } end
  for i, c in ipairs(list) do
    local at = " at index " .. (i - 1)
    if type(c) ~= "table" then
      errs[#errs + 1] = "Consent entry" .. at .. " is not an object"
    elseif c.standard == "Adobe" and c.version == "1.0" then
      local g = type(c.value) == "table" and c.value.general
      if g ~= "in" and g ~= "out" then errs[#errs + 1] = "Adobe 1.0 consent value.general must be 'in' or 'out'" .. at
      else general = g end
    elseif c.standard == "Adobe" and c.version == "2.0" then
      local v = type(c.value) == "table" and type(c.value.collect) == "table" and c.value.collect.val
      if v ~= "y" and v ~= "n" then errs[#errs + 1] = "Adobe 2.0 consent value.collect.val must be 'y' or 'n'" .. at
      else general = v == "y" and "in" or "out" end
    elseif c.standard == "IAB TCF" then
      if type(c.value) ~= "string" or c.value == "" then
        errs[#errs + 1] = "IAB consent string value must not be empty for standard 'IAB TCF'" .. at
      end
    else
      errs[#errs + 1] = "Unknown consent standard '" .. tostring(c.standard) .. "' version '" ..
        tostring(c.version) .. "'" .. at
    end
  end
  if #errs > 0 then return nil, errs end
  return general
end

-- The profile records of a setConsent: one per Adobe 2.0 entry, {identityMap, consents: value}
-- (help/landing/governance-privacy-security/consent/adobe/sdk.md: the value is "an XDM object that
-- conforms to the structure of the Profile-enabled dataset's consent fields"). Adobe 1.0 ({general})
-- and IAB TCF entries write no record (docs/web.md says why).
-- each record gets its own identityMap and lists (stitch appends the ECID to one)
local function copy_identity_map(map)
  if type(map) ~= "table" or map[1] ~= nil then return nil end
  local out = {}
  for ns, list in pairs(map) do
    if type(list) == "table" then
      local l = setmetatable({}, getmetatable(list))
      for i, item in ipairs(list) do l[i] = item end
      out[ns] = l
    else
      out[ns] = list
    end
  end
  return setmetatable(out, getmetatable(map))
end

local function consent_records(r)
  local out = {}
  for _, c in ipairs(r.payload.consent) do
    if c.standard == "Adobe" and c.version == "2.0" then
      out[#out + 1] = { identityMap = copy_identity_map(r.payload.identityMap), consents = c.value }
    end
  end
  return out
end

local function set_consent(req, ctx)
  local r, status, headers, body = admit(req, ctx, 1)
  if not r then return status, headers, body end
  local general, errs = consent_value(r.payload.consent)
  if errs then return invalid(r.request_id, r.org_id, errs) end
  local ecid = device_ecid(r, nil)
  local records = r.ds.profileDataset and consent_records(r) or {}
  if records[1] then
    local n, err = accept_into(ctx, r, "profile", records, function(xdm) ident.stitch(xdm, ecid) end)
    if not n then return problem(422, "EXEG-0104-422", "Unprocessable entity", err,
      { requestId = r.request_id, orgId = r.org_id }) end
  end
  local state = {}
  if general then
    state[1] = { key = ident.cookie_name(r.org_id, "consent"), value = "general=" .. general,
                 maxAge = ident.CONSENT_MAX_AGE, attrs = { SameSite = "None" } }
  end
  local answer = cjson.encode { requestId = r.request_id, handle = handles(r, ecid, state) }
  return 200, with_cookie(req, ctx, JSON, r, ecid), answer
end

-- getIdentity: POST /ee/v1/identity/acquire {query: {identity: {fetch: ["ECID"]}}} -> the handles
local function acquire(req, ctx)
  local r, status, headers, body = admit(req, ctx, 1)
  if not r then return status, headers, body end
  local ecid = device_ecid(r, nil)
  local answer = cjson.encode { requestId = r.request_id, handle = handles(r, ecid) }
  return 200, with_cookie(req, ctx, JSON, r, ecid), answer
end

---------------------------------------------------------------------------------------------
-- CORS: any page may send to the Edge Network, with its cookies

local function preflight(req)
  return 204, {
    ["Access-Control-Allow-Methods"] = "POST, OPTIONS",
    ["Access-Control-Allow-Headers"] = req.headers["access-control-request-headers"] or
      "Content-Type, Authorization, x-api-key, x-gw-ims-org-id",
    ["Access-Control-Max-Age"] = "600",
  }, ""
end

local function on_answer(req, route, status, headers, body)
  local origin = req.headers and req.headers["origin"]
  if not origin or (req.path or ""):sub(1, 4) ~= "/ee/" then return headers end
  local h = {}
  for k, v in pairs(headers or {}) do h[k] = v end
  h["Access-Control-Allow-Origin"] = origin
  h["Access-Control-Allow-Credentials"] = "true"
  h["Access-Control-Expose-Headers"] = "Retry-After"
  h["Vary"] = "Origin"
  return h
end
M.on_answer = on_answer

-- edge.install(app)
function M.install(app)
  ingest.setup(app.store)
  async_validation.setup(app.store)
  if app.on_answer then app:on_answer(on_answer) end
  local o = { auth = "none", max_body = M.MAX_BODY, own_too_large = true }
  for _, base in ipairs { "/ee", "/ee/:locationHint" } do
    app:route("POST", base .. "/v1/interact", interact(1), o)
    app:route("POST", base .. "/v1/collect", collect(1), o)
    app:route("POST", base .. "/v1/privacy/set-consent", set_consent, o)
    app:route("POST", base .. "/v1/identity/acquire", acquire, o)
    app:route("POST", base .. "/v2/interact", interact(2), o)
    app:route("POST", base .. "/v2/collect", collect(2), o)
    for _, p in ipairs { "/v1/interact", "/v1/collect", "/v1/privacy/set-consent", "/v1/identity/acquire",
                         "/v2/interact", "/v2/collect" } do
      app:route("OPTIONS", base .. p, preflight, { auth = "none" })
    end
  end
end

return M
