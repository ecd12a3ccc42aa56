-- aep.emulator.admin: the emulator's own endpoints (no auth):
--   GET  /emulator/health                 {"status":"ok", ...}
--   GET  /emulator/state                  org, sandboxes and their resource counts
--   POST /emulator/reset                  forget every resource and record (org and tokens stay)
--   GET  /emulator/datasets/:id/records   the records a dataset holds (ingest.records, emudata)
--   GET  /emulator/requests?since=SEQ     the request log (last 100k): seq, time, method, path,
--                                         status, messages, ms; filters path=PREFIX, method=,
--                                         since_time=EPOCH_S, limit=
--   GET|PUT /emulator/faults              {"spec": "...", "seed": N, "rules": {...}}
--   POST /emulator/sandboxes              {"name": "dev"}: create a sandbox (prod always exists)
--
-- Every /emulator/* call but health passes M.guard first: the emulator's admin surface must not
-- be reachable from a web page the user visits (DNS rebinding, cross-site "simple" requests) nor
-- from the network when it listens on more than loopback.
local json = require "aep.json"
local host = require "aep.host"
local errors = require "aep.emulator.errors"
local auth = require "aep.emulator.auth"

local M = {}

local JSON_HEADERS = errors.JSON_HEADERS

local function health(req, ctx)
  local app = ctx.app
  return 200, JSON_HEADERS, { status = "ok", uptime = host.now() - app.started,
    version = require("aep.host").versions().aep, url = app.urls.base }
end

local function state(req, ctx)
  local app = ctx.app
  local sandboxes = {}
  local ingest = app:module("ingest")
  for _, sb in ipairs(app.store.sandbox_names()) do
    local counts = app.store.kinds(sb)
    counts.records = ingest.count({ app = app, store = app.store, org = app.org, sandbox = sb })
    sandboxes[sb] = counts
  end
  return 200, JSON_HEADERS, {
    org = { imsOrg = app.org.org_id, tenantId = app.org.tenant, clientId = app.org.client_id,
            technicalAccountId = app.org.technical_account_id },
    urls = app.urls,
    sandboxes = sandboxes,
    tokens = auth.count(),
    requests = app.log.seq,
    faults = app.faults.describe(),
  }
end

-- ---------------------------------------------------------------------------------------------
-- The admin guard

M.ADMIN_HEADER = "x-aep-admin" -- any value: makes a request "non-simple" (CORS preflight needed)
M.MAX_BODY = 64 * 1024          -- bytes of an admin request body

local function loopback_ip(ip)
  if type(ip) ~= "string" then return false end
  ip = ip:gsub("^::ffff:", "")
  return ip:match("^127%.%d+%.%d+%.%d+$") ~= nil or ip == "::1"
end
M.loopback_ip = loopback_ip

-- host_name("[::1]:8080") -> "::1", "8080"
local function host_name(h)
  local name, port = h:match("^%[(.-)%]:?(%d*)$")
  if not name then name, port = h:match("^([^:]+):?(%d*)$") end
  return name and name:lower(), port
end

-- The names a loopback client may call the emulator by: loopback names, and the --host name.
local function host_allowed(app, h)
  if type(h) ~= "string" then return false end
  local name = host_name(h) -- any port: a loopback name is this machine, whatever proxy is between
  if not name then return false end
  if name == "localhost" or name == "127.0.0.1" or name == "::1" then return true end
  local bind = app.bind_host and app.bind_host:lower()
  return bind ~= nil and name == bind and bind ~= "0.0.0.0" and bind ~= "::"
end

local function same_origin(app, origin)
  local scheme, h = origin:match("^(https?)://([^/]+)$")
  return scheme == app.scheme and host_allowed(app, h)
end

local function bearer(req)
  local a = req.headers["authorization"]
  return type(a) == "string" and a:match("^[Bb]earer%s+(%S+)$") or nil
end

local function forbidden(detail)
  return errors.problem(403, "Forbidden", detail, "http://ns.adobe.com/aep/errors/EMULATOR-ADMIN-FORBIDDEN")
end

-- admin.guard(app, req, route) -> nil (go on) | status, headers, body
function M.guard(app, req, route)
  local h = req.headers
  if not loopback_ip(req.remote) then
    -- From the network: the admin token (environment file, EMULATOR_ADMIN_TOKEN) or a token of
    -- the org (IMS). Host is not checked: the client names this machine as it knows it.
    local tok = bearer(req)
    local ok = tok ~= nil and app.admin_token ~= nil and #tok == #app.admin_token and tok == app.admin_token
    if not ok and tok then ok = auth.verify_bearer(app, h["authorization"]) ~= nil end
    if not ok then
      return forbidden("Emulator admin calls from " .. tostring(req.remote) .. " need 'Authorization: Bearer " ..
        "TOKEN' with EMULATOR_ADMIN_TOKEN from " .. app.env_file .. " or an access token of the org")
    end
  elseif not host_allowed(app, h["host"]) then
    return forbidden("Host '" .. tostring(h["host"]) .. "' is not this emulator: its /emulator/ endpoints are " ..
      "local-only, call them as " .. app.urls.base)
  end
  local origin = h["origin"]
  if origin ~= nil and not same_origin(app, origin) then
    return forbidden("Origin '" .. tostring(origin) .. "' may not call the emulator's admin endpoints")
  end
  local m = req.method
  if m ~= "GET" and m ~= "HEAD" and m ~= "OPTIONS" then
    local ct = h["content-type"]
    if not (type(ct) == "string" and ct:lower():find("json", 1, true)) and h[M.ADMIN_HEADER] == nil then
      return forbidden(m .. " " .. route.pattern .. " changes the emulator's state: send it with " ..
        "'Content-Type: application/json' or an 'X-Aep-Admin: 1' header")
    end
  end
  return nil
end

local function reset(req, ctx)
  ctx.app:reset()
  return 200, JSON_HEADERS, { reset = true }
end

local function records(req, ctx)
  local app = ctx.app
  local id = req.params.id
  if not app.store.get(ctx.sandbox, "dataset", id) then
    return errors.problem(404, "Not Found", "Dataset " .. id .. " was not found in sandbox " .. ctx.sandbox)
  end
  local q = req.query
  local opts = { limit = tonumber(q.limit), offset = tonumber(q.offset or q.start), batch_id = q.batch,
                 status = q.status }
  local ingest = app:module("ingest")
  local out, err = ingest.records(ctx, id, opts)
  if out == nil then return errors.problem(500, "Internal Server Error", tostring(err)) end
  local list = out.records or out
  if type(list) == "table" and next(list) == nil then list = json.array {} end
  local body = type(out.records) == "table" and out or {}
  body.records = list -- an empty list stays a JSON array
  body.dataset = id
  body.sandbox = ctx.sandbox
  body.count = body.count or #list
  return 200, JSON_HEADERS, body
end

local function requests(req, ctx)
  local q = req.query
  local since = tonumber(q.since) or 0
  local entries = ctx.app.log.query(since, { since_time = tonumber(q.since_time), prefix = q.path,
                                             method = q.method, limit = tonumber(q.limit) })
  local out = json.array {}
  for i, e in ipairs(entries) do out[i] = e end
  local last = #entries > 0 and entries[#entries].seq or math.max(since, 0)
  if #entries == 0 then last = ctx.app.log.seq end
  return 200, JSON_HEADERS, { requests = out, count = #out, last = last, total = ctx.app.log.seq }
end

local function get_faults(req, ctx)
  return 200, JSON_HEADERS, ctx.app.faults.describe()
end

local function create_sandbox(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  local name = type(body) == "table" and body.name
  if type(name) ~= "string" or not name:match("^[a-z][a-z0-9%-]*$") or #name > 256 then
    return errors.problem(400, "Bad Request",
      'POST /emulator/sandboxes takes {"name": "dev"}: lowercase letters, digits and hyphens, starting with a letter')
  end
  local created = ctx.store.add_sandbox(name)
  return created and 201 or 200, JSON_HEADERS, { name = name, created = created,
    sandboxes = json.array(ctx.store.sandbox_names()) }
end

local function put_faults(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  if type(body) ~= "table" or json.is_array(body) then
    return errors.problem(400, "Bad Request", 'PUT /emulator/faults takes {"spec": "...", "seed": N} or {"rules": {...}}')
  end
  local seed = body.seed
  if seed ~= nil and (type(seed) ~= "number" or seed ~= math.floor(seed)) then
    return errors.problem(400, "Bad Request", "seed must be an integer")
  end
  local new = body.spec
  if new == nil and body.rules ~= nil then new = body.rules end
  if new == nil then new = ctx.app.faults.rules end
  local ok, msg = ctx.app.faults.set(new, seed and math.tointeger(seed))
  if not ok then return errors.problem(400, "Bad Request", msg) end
  return 200, JSON_HEADERS, ctx.app.faults.describe()
end

function M.install(app)
  local o = { auth = "none", group = "emulator", max_body = M.MAX_BODY }
  app:route("GET", "/emulator/health", health, { auth = "none", group = "emulator", max_body = M.MAX_BODY, open = true })
  app:route("GET", "/emulator/state", state, o)
  app:route("POST", "/emulator/reset", reset, o)
  app:route("GET", "/emulator/datasets/:id/records", records, o)
  app:route("GET", "/emulator/requests", requests, o)
  app:route("GET", "/emulator/faults", get_faults, o)
  app:route("PUT", "/emulator/faults", put_faults, o)
  app:route("POST", "/emulator/sandboxes", create_sandbox, o)
end

return M
