-- aep.emulator.web_edge: the browser side of the Edge Network.
--   GET /emulator/web/alloy.js             Adobe's Web SDK, the standalone build of the @adobe/alloy
--                                          npm package installed by ./dev (tests/browser), never a
--                                          copy in the repository nor a download at run time
--   GET /emulator/demo/websdk?datastream=  the loyalty demo instrumented with the Web SDK
-- Where alloy.min.js is looked for: $AEP_ALLOY_JS, then node_modules/@adobe/alloy/dist/ under
-- tests/browser/ of the checkout the binary was built in (build/aep -> ..) and of the current
-- directory. Without it the script answers 404 naming the fix.
local host = require "aep.host"
local errors = require "aep.emulator.errors"
local web = require "aep.emulator.web"
local datastreams = require "aep.emulator.datastreams"

local M = {}

M.ALLOY = "tests/browser/node_modules/@adobe/alloy/dist/alloy.min.js"

local function readable(path)
  local f = path and io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- web_edge.alloy_path() -> the standalone alloy script's path | nil, the places looked at
function M.alloy_path()
  local tried = {}
  local candidates = {}
  local env = os.getenv("AEP_ALLOY_JS")
  if env and env ~= "" then candidates[#candidates + 1] = env end
  local exe = host.executable and host.executable()
  if exe then
    local dir = exe:match("^(.*)/[^/]+$")
    if dir then candidates[#candidates + 1] = dir .. "/../" .. M.ALLOY end
  end
  candidates[#candidates + 1] = M.ALLOY
  for _, p in ipairs(candidates) do
    tried[#tried + 1] = p
    local f = io.open(p, "rb")
    if f then
      f:close()
      return p
    end
  end
  return nil, tried
end

local function alloy(req, ctx)
  local path, tried = M.alloy_path()
  local body = path and readable(path)
  if not body then
    return errors.not_found("Adobe's Web SDK is not installed: run `npm ci --prefix tests/browser` " ..
      "(./dev test does) or set AEP_ALLOY_JS to @adobe/alloy's dist/alloy.min.js (looked at: " ..
      table.concat(tried or {}, ", ") .. ")")
  end
  return 200, { ["Content-Type"] = "text/javascript; charset=utf-8", ["Cache-Control"] = "no-cache",
                ["X-Content-Type-Options"] = "nosniff", ["Access-Control-Allow-Origin"] = "*" }, body
end

local function demo(req, ctx)
  local app = ctx.app
  local q = req.query or {}
  local state = { base = app.urls.base, member = q.member, leaveTo = app.urls.base .. "/emulator/ui" }
  if q.member and not q.member:match("^[^%s@]+@[^%s@]+$") then state.member = nil end
  if type(q.next) == "string" and (q.next:match("^https?://[^%s]+$") or q.next:match("^/[^/][^%s]*$")) then
    state.leaveTo = q.next
  end
  local ds = datastreams.find(app.store, q.datastream)
  if ds then
    local dataset = app.store.get(ds.sandbox, "dataset", ds.eventDataset)
    state.config = {
      datastreamId = ds.id, datastreamName = ds.name, orgId = app.org.org_id, tenant = app.org.tenant,
      sandbox = ds.sandbox, datasetId = ds.eventDataset, datasetName = dataset and dataset.name,
      -- alloy takes a bare domain (no port); the page maps it to the emulator's port (websdk.js)
      edgeDomain = (app.urls.host:gsub(":%d+$", "")), edgeBasePath = "ee", secure = app.scheme == "https",
      defaultConsent = ds.defaultConsent,
    }
  else
    if q.datastream and q.datastream ~= "" then state.error = "datastream " .. q.datastream .. " was not found" end
    state.datastreams = datastreams.list(app.store)
  end
  local body = web.page("websdk.html", { BASE = "", STATE = web.script_json(state) })
  if not body then return errors.not_found("websdk.html is missing from this build") end
  return web.html_answer(body)
end

-- web_edge.install(app)
function M.install(app)
  local o = { auth = "none", group = "emulator", log = false }
  app:route("GET", "/emulator/web/alloy.js", alloy, o)
  app:route("GET", "/emulator/demo/websdk", web.local_only(demo), o)
end

return M
