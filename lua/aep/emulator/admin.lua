-- aep.emulator.admin: the emulator's own endpoints (no auth):
--   GET  /emulator/health                 {"status":"ok", ...}
--   GET  /emulator/state                  org, sandboxes and their resource counts
--   POST /emulator/reset                  forget every resource and record (org and tokens stay)
--   GET  /emulator/datasets/:id/records   the records a dataset holds (ingest.records, emudata)
--   GET  /emulator/requests?since=SEQ     the request log (last 100k): seq, time, method, path,
--                                         status, messages, ms; filters path=PREFIX, method=,
--                                         since_time=EPOCH_S, limit=
--   GET|PUT /emulator/faults              {"spec": "...", "seed": N, "rules": {...}}
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
  for _, sb in ipairs(app.store.sandboxes()) do
    local counts = app.store.kinds(sb)
    if ingest and type(ingest.count) == "function" then
      local ok, n = pcall(ingest.count, { app = app, store = app.store, org = app.org, sandbox = sb })
      if ok and type(n) == "number" then counts.records = n end
    end
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
  if not ingest or type(ingest.records) ~= "function" then
    return 200, JSON_HEADERS, { dataset = id, sandbox = ctx.sandbox, count = 0, records = json.array {} }
  end
  local out, err = ingest.records(ctx, id, opts)
  if out == nil then return errors.problem(500, "Internal Server Error", tostring(err)) end
  local list = out.records or out
  if type(list) == "table" and next(list) == nil then list = json.array {} end
  local body = type(out.records) == "table" and out or { records = list }
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
  local o = { auth = "none", group = "emulator" }
  app:route("GET", "/emulator/health", health, o)
  app:route("GET", "/emulator/state", state, o)
  app:route("POST", "/emulator/reset", reset, o)
  app:route("GET", "/emulator/datasets/:id/records", records, o)
  app:route("GET", "/emulator/requests", requests, o)
  app:route("GET", "/emulator/faults", get_faults, o)
  app:route("PUT", "/emulator/faults", put_faults, o)
end

return M
