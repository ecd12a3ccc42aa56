-- aep.emulator: the local AEP. emulator.start(opts) opens the store, creates or loads the org,
-- listens, writes the environment file, installs every service module and serves.
-- The request path is kept cheap: one route-tree walk, one token-table lookup, no per-request JSON
-- of the org, faults decided from a per-group cache, a ring buffer for the request log.
local json = require "aep.json"
local host = require "aep.host"
local emulator_lock = require "aep.emulator_lock"
local read_file = require("aep.file").read
local router_mod = require "aep.emulator.router"
local store_mod = require "aep.emulator.store"
local org_mod = require "aep.emulator.org"
local errors = require "aep.emulator.errors"
local faults_mod = require "aep.emulator.faults"
local auth = require "aep.emulator.auth"
local services = require "aep.emulator.services"
local admin_mod = require "aep.emulator.admin"

local M = {}

M.MAX_BODY = 256 * 1024 * 1024 -- bytes of one request body (batch file uploads)
-- The listener's ceiling: a large-file chunk (PATCH, large_files.MAX_CHUNK, the spec's 512000000);
-- every route's own limit (below) is at most this.
M.LARGEST_BODY = 512000000

-- Service modules, installed in this order: the list is services.lua (each service and its
-- fault groups, in one place).
M.MODULES = services.modules()

M.REQUEST_LOG_SIZE = 100000

-- Body limits by route group, refused (413) from the headers, before the body is read. Batch
-- ingestion takes whole files in one PUT; streaming has DCS's 1 MB (streaming.lua); the admin
-- endpoints take small JSON; the rest (control-plane JSON) DEFAULT_ROUTE_BODY. A route's
-- opts.max_body overrides.
M.DEFAULT_ROUTE_BODY = 10 * 1024 * 1024
M.GROUP_BODY = { batches = M.MAX_BODY, streaming = 1048576, emulator = 64 * 1024, ims = 64 * 1024 }
M.LOCK_FILE = emulator_lock.LOCK_FILE

-- ---------------------------------------------------------------------------------------------
-- Requests

local JSON_CT = "application/json"

local req_methods = {}
local REQ_MT = { __index = req_methods }

-- req:json_body() -> value | nil, response   (response: a 400 in the route's service shape,
-- in the router's table form, so a handler can `return err` as it is)
function req_methods.json_body(req)
  local cached = rawget(req, "_json")
  if cached ~= nil then return cached end
  local body = req.body
  local value, err
  if body == nil or body:match("^%s*$") then
    err = "the request body is empty"
  else
    value, err = json.decode(body)
  end
  if value == nil then
    local service = req.route and req.route.group
    local status, headers, b = errors.bad_json(service, err)
    return nil, { status, headers, b, status = status, headers = headers, body = b }
  end
  rawset(req, "_json", value)
  return value
end

local function wants_json_ct(ct)
  if not ct then return false end
  ct = ct:lower()
  return ct:find("json", 1, true) ~= nil
end

-- ---------------------------------------------------------------------------------------------
-- The request log: a ring of the last REQUEST_LOG_SIZE requests.

local function new_log(size)
  local L = { size = size, seq = 0, ring = {} }
  function L.add(entry)
    L.seq = L.seq + 1
    entry.seq = L.seq
    L.ring[(L.seq - 1) % size + 1] = entry
  end
  -- L.since(seq, opts) -> entries with seq > since (oldest first), up to opts.limit
  function L.query(since, opts)
    local first = math.max(since + 1, L.seq - size + 1, 1)
    local out, n = {}, 0
    local limit = opts.limit or size
    for s = first, L.seq do
      local e = L.ring[(s - 1) % size + 1]
      if (not opts.since_time or e.time >= opts.since_time)
         and (not opts.prefix or e.path:sub(1, #opts.prefix) == opts.prefix)
         and (not opts.method or e.method == opts.method) then
        n = n + 1
        out[n] = e
        if n >= limit then break end
      end
    end
    return out
  end
  function L.clear() L.ring = {}; L.seq = 0 end
  return L
end

-- ---------------------------------------------------------------------------------------------
-- App

local App = {}
App.__index = App

-- app:route(method, pattern, handler, opts) -- opts.auth = "platform" | "none" | "inlet";
-- opts.body = "json" (POST/PUT/PATCH need a JSON Content-Type); opts.group overrides the fault group.
function App:route(method, pattern, handler, opts)
  opts = opts or {}
  local route = self.router:add(method, pattern, handler, opts)
  route.group = opts.group or faults_mod.group_of(pattern)
  route.auth = opts.auth or "platform"
  route.check_ct = opts.body == "json" and (method == "POST" or method == "PUT" or method == "PATCH")
  route.max_body = opts.max_body or M.GROUP_BODY[route.group] or M.DEFAULT_ROUTE_BODY
  route.admin = pattern:sub(1, 9) == "/emulator" and not opts.open
  return route
end

local function response(status, headers, body, delay, drop)
  return { status, headers, body, status = status, headers = headers, body = body, delay = delay, drop = drop }
end

local function encode_body(status, headers, body)
  headers = headers or {}
  if type(body) == "table" then
    body = json.encode(body)
    if not headers["Content-Type"] and not headers["content-type"] then
      local h = {}
      for k, v in pairs(headers) do h[k] = v end
      h["Content-Type"] = JSON_CT
      headers = h
    end
  end
  return status, headers, body or ""
end

-- The request log's fault name for each response.drop.
local DROP_FAULT = { before = "drop_before", after = "drop_after", close = "close_after",
                     reset = "reset_after", die = "die_after" }

local function fault_answer(d)
  local status = tonumber(d.outcome)
  local titles = { [429] = "Too Many Requests", [500] = "Internal Server Error", [503] = "Service Unavailable" }
  local _, headers, body = errors.problem(status, titles[status], "Injected fault (aep emulator --faults)",
    "http://ns.adobe.com/aep/errors/EMULATOR-FAULT-" .. status)
  headers = { ["Content-Type"] = headers["Content-Type"] }
  if status ~= 500 then headers["Retry-After"] = tostring(math.floor(d.retry_after + 0.5)) end
  return status, headers, body
end

-- app:on_answer(fn): fn(req, route, status, headers, body) -> headers | nil, run on every answer
-- (web.lua adds DCS's CORS headers); headers may be shared: return a new table, never mutate it.
function App:on_answer(fn)
  self.answer_hooks[#self.answer_hooks + 1] = fn
end

-- app:body_limit(method, raw_path) -> bytes the route takes (aep.server asks from the headers)
function App:body_limit(method, raw_path)
  local route = self.router:match(method, raw_path)
  return route and route.max_body or M.DEFAULT_ROUTE_BODY
end

local function too_large(req, route)
  return errors.problem(413, "Payload Too Large", string.format(
    "Request body of %d bytes exceeds the limit of %d bytes for %s %s", req.body_size or 0,
    req.body_limit or route.max_body, req.method, route.pattern))
end

-- An unknown x-sandbox-name is refused as AEP refuses a sandbox the credentials do not reach
-- (docs/EMULATOR-INTERNALS.md, "Sandboxes").
local function unknown_sandbox(name)
  return errors.problem(403, "Forbidden", "Sandbox '" .. name .. "' does not exist in this org " ..
    "(create it with POST /emulator/sandboxes {\"name\": \"" .. name .. "\"} or use prod)",
    "http://ns.adobe.com/aep/errors/EMULATOR-SANDBOX-NOT-FOUND")
end

-- app:handle(req) -> response table for aep.server
function App:handle(req)
  local t0 = host.now()
  local method = req.method
  local raw = req.raw_path or req.path
  local route, params = self.router:match(method, raw)
  local log_path = router_mod.normalize(req.path or raw)
  local status, headers, body, delay, drop
  local ctx, fault_outcome
  if not route then
    if params then
      status, headers, body = errors.method_not_allowed(params)
    else
      status, headers, body = errors.not_found("No route for " .. method .. " " .. log_path)
    end
  else
    setmetatable(req, REQ_MT)
    req.params = params
    req.route = route
    local d = self.faults.decide(route.group, log_path)
    if d and d.outcome == "drop_before" then
      self.log.add { time = t0, method = method, path = log_path, status = 0, messages = 0,
                     fault = "drop_before", ms = 0 }
      return response(503, {}, "", nil, "before") -- never sent: the connection is closed
    end
    if d and d.expire_token then fault_outcome = "expire_token" end
    if d and d.outcome and not faults_mod.DROP_AFTER_COMMIT[d.outcome] then
      fault_outcome = d.outcome
      status, headers, body = fault_answer(d)
    else
      local h = req.headers
      ctx = { app = self, store = self.store, org = self.org, config = self.config,
              sandbox = h["x-sandbox-name"] or "prod", now = t0, route = route }
      if ctx.sandbox == "" then ctx.sandbox = "prod" end
      if route.admin then
        status, headers, body = admin_mod.guard(self, req, route)
      end
      if not status and req.too_large and not route.opts.own_too_large then
        status, headers, body = too_large(req, route)
      end
      if status then -- refused above
      elseif route.auth == "platform" then
        status, headers, body = auth.check_platform(self, req, d and d.expire_token)
        if not status then ctx.token = headers; headers = nil end
        if not status and not self.store.sandbox_exists(ctx.sandbox) then
          status, headers, body = unknown_sandbox(ctx.sandbox)
        end
      elseif d and d.expire_token then
        local rec = auth.verify_bearer(self, req.headers["authorization"])
        if rec then auth.expire(rec) end
      end
      if not status and route.check_ct and not wants_json_ct(req.headers["content-type"]) then
        status, headers, body = errors.content_type()
      end
      if not status then
        local ok, s, hh, bb = pcall(route.handler, req, ctx)
        if not ok then
          io.stderr:write("aep emulator: ", method, " ", log_path, ": ", tostring(s), "\n")
          status, headers, body = errors.problem(500, "Internal Server Error", tostring(s))
        elseif type(s) == "table" then
          status, headers, body = s.status or s[1], s.headers or s[2], s.body or s[3]
          delay, drop = s.delay, s.drop
        else
          status, headers, body = s, hh, bb
        end
      end
    end
    if d then
      if d.delay then delay = (delay or 0) + d.delay end
      if faults_mod.DROP_AFTER_COMMIT[d.outcome] then drop = faults_mod.DROP_AFTER_COMMIT[d.outcome] end
    end
  end
  status, headers, body = encode_body(status, headers, body)
  for i = 1, #self.answer_hooks do headers = self.answer_hooks[i](req, route, status, headers, body) or headers end
  local fault_name = drop and DROP_FAULT[drop] or (route and fault_outcome) or nil
  if not (method == "GET" and log_path == "/emulator/requests") and not (route and route.opts.log == false) then
    local messages = ctx and ctx.message_count
    if messages == nil then
      messages = 0
      if route and route.auth == "inlet" then
        local j = rawget(req, "_json")
        messages = (type(j) == "table" and type(j.messages) == "table") and #j.messages or 1
      end
    end
    local entry = { time = t0, method = method, path = log_path, status = status, messages = messages,
                    ms = math.floor((host.now() - t0) * 1e6) / 1e3, delay = delay,
                    fault = fault_name, sandbox = ctx and ctx.sandbox }
    if self.log.bodies then
      -- The whole request, for checking what a client sends against the API contract
      -- (tests/contract); opt-in, as a ring of 100k request bodies can hold gigabytes.
      entry.raw_path, entry.query = raw:match("^[^?#]*"), req.raw_query
      entry.content_type, entry.body = req.headers["content-type"], req.body
      -- header names only: values may be credentials
      local names = {}
      for name in pairs(req.headers) do names[#names + 1] = name end
      table.sort(names)
      entry.header_names = names
      -- and the answer, checked against the response schemas the same way
      entry.response_content_type = headers["Content-Type"] or headers["content-type"]
      if type(body) == "string" then entry.response_body = body end
    end
    self.log.add(entry)
  end
  return response(status, headers, body, delay, drop)
end

-- app:reset(): forget every resource and record (the org, its credentials and tokens stay)
function App:reset()
  self.store.transaction(function()
    self.store.reset()
    for _, mod in ipairs(self.modules) do
      if type(mod.reset) == "function" then mod.reset(self) end
    end
  end)
  self.log.clear()
end

-- app:module(name) -> installed module table | nil  (e.g. app:module("ingest"))
function App:module(name)
  return self.by_name[name]
end


-- emulator.create(opts) -> app | nil, message
-- opts: port, host, data_dir, seed, tls_cert, tls_key (file paths), profile_lag, faults, tenant
function M.create(opts)
  local server = require "aep.server"
  local data_dir = opts.data_dir
  local ok, err = true, nil
  local prefix = data_dir:sub(1, 1) == "/" and "" or "."
  for part in data_dir:gmatch("[^/]+") do
    prefix = prefix .. "/" .. part
    ok, err = host.mkdir(prefix, tonumber("700", 8))
    if not ok then break end
  end
  if not ok then return nil, "cannot create data directory " .. data_dir .. ": " .. tostring(err) end
  local holder = M.lock_holder(data_dir)
  if holder then
    return nil, string.format("%s is in use by the emulator with pid %d at %s (stop it, or use another --data-dir)",
      data_dir, holder.pid, tostring(holder.url))
  end
  local store, serr = store_mod.open(data_dir .. "/emulator.db")
  if not store then return nil, "cannot open the store: " .. tostring(serr) end
  -- It holds the org's secret and key: owner-only before the org is written, and so are the WAL
  -- and shared-memory files open() made (SQLite gives later ones the database's mode).
  for _, suffix in ipairs { "", "-wal", "-shm" } do
    host.chmod(data_dir .. "/emulator.db" .. suffix, tonumber("600", 8))
  end
  local org, _, warning = org_mod.load_or_create(store, { tenant = opts.tenant })
  if warning then io.stderr:write("aep emulator: warning: ", warning, "\n") end

  local faults, ferr = faults_mod.new(opts.seed or math.floor(host.now() * 1000) % 2147483647, opts.faults)
  if not faults then return nil, "--faults: " .. ferr end

  -- Batch ingestion takes files in one PUT (AEP's batch API, before its large-file API); the
  -- streaming routes enforce their own 1 MB limit. One request is held in memory at most this big.
  local app -- the body limit is asked from the headers, once the app exists
  local listen = { host = opts.host or "127.0.0.1", port = opts.port or 8080,
                   max_body = opts.max_body or M.LARGEST_BODY,
                   body_limit = function(method, path) return app and app:body_limit(method, path) end }
  if opts.tls_cert or opts.tls_key then
    if not (opts.tls_cert and opts.tls_key) then return nil, "--tls-cert and --tls-key go together" end
    local cert, e1 = read_file(opts.tls_cert)
    if not cert then return nil, "cannot read --tls-cert: " .. tostring(e1) end
    local key, e2 = read_file(opts.tls_key)
    if not key then return nil, "cannot read --tls-key: " .. tostring(e2) end
    listen.tls_cert, listen.tls_key = cert, key
  end
  local srv, lerr = server.listen(listen)
  if not srv then
    if tostring(lerr):find("Failed to bind", 1, true) and listen.port ~= 0 then
      return nil, string.format("port %d is in use (another emulator? use --port 0 for a free one)", listen.port)
    end
    return nil, "cannot listen on " .. listen.host .. ":" .. tostring(listen.port) .. ": " .. tostring(lerr)
  end

  local port = srv:port()
  local url_host = listen.host
  if url_host == "0.0.0.0" or url_host == "::" or url_host == "" then url_host = "127.0.0.1" end
  if url_host:find(":", 1, true) then url_host = "[" .. url_host .. "]" end
  local scheme = listen.tls_cert and "https" or "http"
  app = setmetatable({
    server = srv, store = store, org = org, faults = faults, router = router_mod.new(),
    config = opts, data_dir = data_dir, env_file = data_dir .. "/environment.json",
    urls = { base = scheme .. "://" .. url_host .. ":" .. port, host = url_host .. ":" .. port },
    log = new_log(opts.request_log_size or M.REQUEST_LOG_SIZE),
    modules = {}, by_name = {}, started = host.now(), answer_hooks = {}, idle_jobs = {},
    port = port, bind_host = listen.host, scheme = scheme,
    admin_token = require("aep.crypto").random_bytes(24):gsub(".", function(c) return string.format("%02x", c:byte()) end),
  }, App)
  app.lock_file = data_dir .. "/" .. M.LOCK_FILE
  local lok, lerr2 = host.write_file(app.lock_file, json.encode { pid = host.getpid(), url = app.urls.base } .. "\n",
    tonumber("600", 8))
  if not lok then return nil, "cannot write " .. app.lock_file .. ": " .. tostring(lerr2) end

  -- AEP_EMULATOR_LOG_BODIES=1: the request log keeps each request's raw path, query string,
  -- Content-Type, body and header names, and the answer's Content-Type and body too (GET
  -- /emulator/requests shows them).
  app.log.bodies = os.getenv("AEP_EMULATOR_LOG_BODIES") == "1"

  local wok, werr = org_mod.write_environment(org, app.env_file, app.urls, app.admin_token)
  if not wok then return nil, "cannot write " .. app.env_file .. ": " .. tostring(werr) end

  for _, name in ipairs(M.MODULES) do
    local mod = require(name)
    if type(mod.install) == "function" then mod.install(app) end
    app.modules[#app.modules + 1] = mod
    app.by_name[name:match("[^.]+$")] = mod
  end
  return app
end

-- app:serve([ready]) -> "signal" | "stopped". ready() runs once SIGINT/SIGTERM are caught, so a
-- signal sent on seeing the ready line ends the server cleanly.

-- app:on_idle(fn): fn() -> true while it has more work, a number of seconds until it next has
-- work, or nil; run between requests (long work done in slices, so the server keeps answering)
function App:on_idle(fn)
  self.idle_jobs[#self.idle_jobs + 1] = fn
end

function App:serve(ready)
  local handle = function(req) return self:handle(req) end
  local jobs = self.idle_jobs
  local idle = function()
    local wait
    for i = 1, #jobs do
      local ok, more = pcall(jobs[i])
      if not ok then io.stderr:write("aep emulator: ", tostring(more), "\n") end
      if ok and more == true then more = 0 end
      if ok and type(more) == "number" and (wait == nil or more < wait) then wait = more end
    end
    return wait
  end
  return self.server:serve(handle, ready, idle)
end

function App:close()
  if self.server then self.server:close() end
  if self.store then self.store.close() end
  if self.lock_file then
    local holder = M.read_lock(self.data_dir)
    if holder and holder.pid == host.getpid() then os.remove(self.lock_file) end
  end
end

-- emulator.loopback_bind(host) -> true when --host reaches this machine only
function M.loopback_bind(h)
  h = (h or "127.0.0.1"):lower()
  return h == "localhost" or h == "::1" or h:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- emulator.read_lock(data_dir), emulator.lock_holder(data_dir): aep.emulator_lock's, which
-- commands use without loading the emulator
M.read_lock = emulator_lock.read
M.lock_holder = emulator_lock.holder

-- emulator.start(opts, on_ready) -> exit status. on_ready(app) is called once listening.
function M.start(opts, on_ready)
  local app, err = M.create(opts)
  if not app then
    io.stderr:write("aep emulator: ", err, "\n")
    return 1
  end
  app:serve(on_ready and function() on_ready(app) end)
  app:close()
  return 0
end

return M
