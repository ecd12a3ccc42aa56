-- aep.emulator.web: the emulator's browser side (the console's API is in web_api.lua).
--   GET  /emulator/web/:file              static assets of lua/aep/emulator/web/ (the tag, the
--                                         console's and the demo's HTML/CSS/JS)
--   GET  /emulator/web/aep-tag.js         the browser tag (also shipped as web/aep-tag.js)
--   GET  /emulator/ui                     the console (plain HTML/CSS/JS, polls the API below)
--   GET  /emulator/ui/api/overview        org, sandboxes, schemas (fields, identities), datasets
--                                         with record counts, inlets
--   GET  /emulator/ui/api/live            what changed since the client's cursors: new records
--                                         (with validation results), wire rejections, requests,
--                                         record counts, and a stamp that moves when resources do
--   GET  /emulator/ui/api/batches         Catalog view of the import batches (newest first)
--   GET  /emulator/ui/api/profile         a profile and its events, through profiles.lua
--   GET  /emulator/demo?dataset=&inlet=   a demo page sending loyalty events with the tag
--   OPTIONS /collection/..., CORS headers on every DCS answer (the browser side of DCS)
--
-- Assets are read from disk when this module itself was loaded from disk (AEP_LUA_PATH pointing
-- at a checkout, or ./lua), so they can be edited without a rebuild; else from the copy embedded
-- in the binary.
--
-- Who may use it: the console, the demo and their API are local-only tooling. They answer only
-- clients on loopback whose Host header names a loopback address (no DNS rebinding); they send
-- no CORS headers, so another origin's page cannot read them. Secrets (client secret, private
-- key, tokens) are never shown. The tag and the DCS endpoints are open to any origin, as DCS is.
local json = require "aep.json"
local host = require "aep.host"
local errors = require "aep.emulator.errors"
local api = require "aep.emulator.web_api"

local M = {}

M.PREFLIGHT_MAX_AGE = "600"

local WEB_PREFIX = "lua/aep/emulator/web/"
local sandbox_of, sctx, arr, class_of = api.sandbox_of, api.sctx, api.arr, api.class_of

local TYPES = {
  html = "text/html; charset=utf-8", css = "text/css; charset=utf-8",
  js = "text/javascript; charset=utf-8", mjs = "text/javascript; charset=utf-8",
  json = "application/json", svg = "image/svg+xml", png = "image/png", ico = "image/x-icon",
  txt = "text/plain; charset=utf-8",
}

---------------------------------------------------------------------------------------------
-- Assets

local disk_dir -- lua/aep/emulator/web/ on disk, when this module came from disk

local function find_disk_dir()
  local src = package.searchpath and package.searchpath("aep.emulator.web", package.path)
  if not src then return nil end
  local dir = src:gsub("%.lua$", "") .. "/"
  local f = io.open(dir .. "console.html", "rb")
  if not f then return nil end
  f:close()
  return dir
end

-- web.asset(name) -> contents | nil   (name: a file of lua/aep/emulator/web/, no slashes)
function M.asset(name)
  if type(name) ~= "string" or not name:match("^[%w][%w%-_%.]*$") or name:find("..", 1, true) then
    return nil
  end
  if disk_dir then
    local f = io.open(disk_dir .. name, "rb")
    if f then
      local s = f:read("a")
      f:close()
      return s
    end
  end
  return host.embedded(WEB_PREFIX .. name)
end

local function type_of(name)
  return TYPES[name:match("%.(%w+)$") or ""] or "application/octet-stream"
end

local NO_STORE = "no-cache"

local function serve_asset(req)
  local name = req.params.file
  local body = M.asset(name)
  if not body then return errors.not_found("No file " .. tostring(name) .. " in the emulator's web assets") end
  local h = { ["Content-Type"] = type_of(name), ["Cache-Control"] = NO_STORE,
              ["X-Content-Type-Options"] = "nosniff" }
  -- The tag is meant for any site; other assets are only fetched by the console and the demo.
  if name == "aep-tag.js" then h["Access-Control-Allow-Origin"] = "*" end
  return 200, h, body
end

---------------------------------------------------------------------------------------------
-- Local-only guard

local function loopback_ip(ip)
  if type(ip) ~= "string" then return false end
  ip = ip:gsub("^::ffff:", "")
  return ip:match("^127%.%d+%.%d+%.%d+$") ~= nil or ip == "::1"
end

local function loopback_host(h)
  if type(h) ~= "string" then return false end
  local name = h:match("^%[(.-)%]") or h:match("^([^:]+)") or h
  name = name:lower()
  return name == "localhost" or name:match("%.localhost$") ~= nil or loopback_ip(name)
end

-- local_only(handler) -> handler answering 403 to anything but a loopback client naming a
-- loopback host
local function local_only(handler)
  return function(req, ctx)
    if not loopback_ip(req.remote) or not loopback_host(req.headers["host"]) then
      return errors.problem(403, "Forbidden",
        "The emulator console is local-only tooling: open it from this machine over loopback " ..
        "(http://127.0.0.1:PORT/emulator/ui)")
    end
    return handler(req, ctx)
  end
end

---------------------------------------------------------------------------------------------
-- CORS on DCS (the answer hook) and preflights

local ALLOW_HEADERS = "Content-Type, Authorization, x-api-key, x-gw-ims-org-id, x-sandbox-name, " ..
  "x-adobe-flow-id, Cache-Control"

local function is_dcs(path)
  return path:sub(1, 12) == "/collection/" or path:sub(1, 35) == "/data/foundation/import/collection/"
end
M.is_dcs = is_dcs

local function add_cors(req, headers)
  local origin = req.headers["origin"]
  if not origin then return headers end
  local h = {}
  for k, v in pairs(headers or {}) do h[k] = v end
  -- The page's origin echoed, with credentials allowed: navigator.sendBeacon sends with
  -- credentials, which a "*" answer would not let through a preflight.
  h["Access-Control-Allow-Origin"] = origin
  h["Access-Control-Allow-Credentials"] = "true"
  h["Access-Control-Expose-Headers"] = "Retry-After"
  h["Vary"] = "Origin"
  return h
end

local function preflight(req, ctx)
  local h = {
    ["Access-Control-Allow-Methods"] = "POST, OPTIONS",
    ["Access-Control-Allow-Headers"] = req.headers["access-control-request-headers"] or ALLOW_HEADERS,
    ["Access-Control-Max-Age"] = M.PREFLIGHT_MAX_AGE,
    ["Content-Length"] = nil,
  }
  return 204, h, ""
end

-- The answer hook: every emulator answer passes here (init.lua). Cheap for anything not DCS.
local function on_answer(req, route, status, headers, body)
  local path = req.path or ""
  if not is_dcs(path) then return headers end
  if req.method == "POST" and type(body) == "string" then
    if status == 400 or (status == 207 and body:find('"statusCode"', 1, true)) then
      local ok, err = pcall(api.note_rejections, req, status, body)
      if not ok then io.stderr:write("aep emulator: web: ", tostring(err), "\n") end
    end
  end
  return add_cors(req, headers)
end
M.on_answer = on_answer

---------------------------------------------------------------------------------------------
-- Pages

local function page(name, subs)
  local body = M.asset(name)
  if not body then return nil end
  return (body:gsub("{{(%w+)}}", function(k) return subs[k] or "" end))
end

local function html_answer(body)
  return 200, { ["Content-Type"] = TYPES.html, ["Cache-Control"] = NO_STORE,
                ["X-Content-Type-Options"] = "nosniff" }, body
end

M.local_only = local_only -- the Web SDK demo (web_edge.lua) is local-only tooling too

local function console(req, ctx)
  local body = page("console.html", {})
  if not body then return errors.not_found("console.html is missing from this build") end
  return html_answer(body)
end

-- JSON for a <script type="application/json"> element: no "</" can end the element early.
local function script_json(v)
  return (json.encode(v):gsub("</", "<\\/"):gsub("<!%-%-", "<\\!--"))
end

M.page, M.html_answer, M.script_json = page, html_answer, script_json

-- The demo's configuration for a dataset and an inlet -> config | nil, message
function M.demo_config(ctx, sandbox, dataset_id, inlet_id)
  local app = ctx.app
  local store = app.store
  local ds = store.get(sandbox, "dataset", dataset_id)
  if not ds then return nil, "dataset " .. dataset_id .. " was not found in sandbox " .. sandbox end
  local schema_id = ds.schemaRef and ds.schemaRef.id
  if not schema_id then return nil, "dataset " .. dataset_id .. " has no schema" end
  local flows = require "aep.emulator.flows"
  local inlet = flows.find_inlet(inlet_id)
  if not inlet then return nil, "inlet " .. inlet_id .. " was not found" end
  local flow_id
  for _, fid in ipairs(inlet.flow_ids or {}) do
    local f = inlet.flows and inlet.flows[fid]
    local targets = f and f.dataset_ids or {}
    if #targets == 0 then flow_id = flow_id or fid end
    for _, t in ipairs(targets) do if t == dataset_id then flow_id = fid end end
  end
  if inlet.flow_ids and #inlet.flow_ids > 0 and not flow_id then
    return nil, "no dataflow of inlet " .. inlet_id .. " targets dataset " .. dataset_id
  end
  return {
    inletUrl = app.urls.base .. "/collection/" .. inlet_id,
    datasetId = dataset_id, datasetName = ds.name, schemaId = schema_id,
    imsOrgId = app.org.org_id, flowId = flow_id, sourceName = inlet.source_id,
    tenant = app.org.tenant, sandbox = sandbox,
    authenticationRequired = inlet.authentication_required or nil,
  }
end

-- What the demo can be pointed at: ExperienceEvent datasets and the sandbox's inlets.
local function demo_candidates(ctx, sandbox)
  local registry = require "aep.emulator.registry"
  local store = ctx.app.store
  local c = sctx(ctx, sandbox)
  local datasets, inlets = arr(), arr()
  for _, id in ipairs(store.ids(sandbox, "dataset")) do
    local ds = store.get(sandbox, "dataset", id)
    local sid = ds.schemaRef and ds.schemaRef.id
    local raw = sid and registry.tenant(sandbox, "schema", sid)
    local ok, full = pcall(registry.resolve_schema, c, sid)
    if raw and class_of(ok and full or nil, raw) == api.EVENT_CLASS then
      datasets[#datasets + 1] = { id = id, name = ds.name, schemaTitle = raw.title }
    end
  end
  for _, doc in ipairs(store.list(sandbox, "inlet")) do
    inlets[#inlets + 1] = { id = doc.inletId, name = doc.inletName or doc.name }
  end
  return { datasets = datasets, inlets = inlets }
end

local function demo(req, ctx)
  local q = req.query or {}
  local sandbox = sandbox_of(req, ctx)
  local state = { base = ctx.app.urls.base, sandbox = sandbox, member = q.member,
                  leaveTo = ctx.app.urls.base .. "/emulator/ui" }
  if type(q.next) == "string" and (q.next:match("^https?://[^%s]+$") or q.next:match("^/[^/][^%s]*$")) then
    state.leaveTo = q.next
  end
  if q.member and not q.member:match("^[^%s@]+@[^%s@]+$") then state.member = nil end
  local wait = math.tointeger(tonumber(q.wait))
  if wait and wait >= 0 and wait <= 60000 then state.batchWaitMs = wait end
  if q.dataset and q.dataset ~= "" and q.inlet and q.inlet ~= "" then
    local cfg, err = M.demo_config(ctx, sandbox, q.dataset, q.inlet)
    if cfg then
      state.config = cfg
    else
      state.error = err
    end
  end
  if not state.config then state.candidates = demo_candidates(ctx, sandbox) end
  local body = page("demo.html", { BASE = ctx.app.urls.base, STATE = script_json(state) })
  if not body then return errors.not_found("demo.html is missing from this build") end
  return html_answer(body)
end

local function redirect(to)
  return function() return 302, { Location = to }, "" end
end

---------------------------------------------------------------------------------------------

-- web.reset(app): forget the wire rejections and the counts (/emulator/reset)
function M.reset(app)
  api.reset()
end

-- web.install(app)
function M.install(app)
  disk_dir = find_disk_dir()
  api.setup(app)
  if app.on_answer then app:on_answer(on_answer) end
  -- log = false: the console's polling stays out of /emulator/requests
  local o = { auth = "none", group = "emulator", log = false }
  app:route("GET", "/emulator/web/:file", serve_asset, o)
  app:route("GET", "/emulator/ui", local_only(console), o)
  app:route("GET", "/emulator", redirect("/emulator/ui"), o)
  app:route("GET", "/emulator/ui/api/overview", local_only(api.overview), o)
  app:route("GET", "/emulator/ui/api/live", local_only(api.live), o)
  app:route("GET", "/emulator/ui/api/batches", local_only(api.batches), o)
  app:route("GET", "/emulator/ui/api/profile", local_only(api.profile), o)
  app:route("GET", "/emulator/demo", local_only(demo), o)
  -- Preflights of the DCS endpoints (auth "none": a preflight carries no credentials)
  for _, base in ipairs { "/collection", "/data/foundation/import/collection" } do
    app:route("OPTIONS", base .. "/batch/:inletId", preflight, { auth = "none" })
    app:route("OPTIONS", base .. "/:inletId", preflight, { auth = "none" })
  end
end

return M
