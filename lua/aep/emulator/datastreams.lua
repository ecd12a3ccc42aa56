-- aep.emulator.datastreams: the emulator's datastreams (Adobe's Data Collection UI / Datastreams
-- settings the Edge Network needs: datastream-overview.md, configure.md of the datastreams docs).
--   POST /emulator/datastreams        {"name", "sandbox", "eventDataset", "profileDataset",
--                                      "defaultConsent", "authenticationRequired"} -> 201 the datastream
--   GET  /emulator/datastreams        {"datastreams": [...]} (all sandboxes; ?sandbox= filters)
--   GET  /emulator/datastreams/:id    one datastream
--   DELETE /emulator/datastreams/:id  204
-- A datastream belongs to one sandbox and sends to Experience Platform: its event dataset (an
-- ExperienceEvent dataset, required) and optionally its profile dataset. `defaultConsent` is what
-- the Edge Network assumes before a visitor's setConsent: "in" (Adobe's default: collect) or
-- "pending" (the Web SDK's defaultConsent "pending" keeps events on the page; the Edge Network
-- collects what reaches it) -- "out" drops every event until the visitor opts in. Adobe creates
-- datastreams in its UI, not through a public API; this admin endpoint stands in for it (the
-- admin guard applies: loopback, JSON Content-Type).
-- Kept as store resources of kind "datastream" in their sandbox (they survive restarts and are
-- dropped by /emulator/reset, like the other resources).
local json = require "aep.json"
local crypto = require "aep.crypto"
local errors = require "aep.emulator.errors"

local M = {}

M.KIND = "datastream"
M.CONSENT = { ["in"] = true, pending = true, out = true }

local JSON = { ["Content-Type"] = "application/json" }

-- datastreams.find(store, id) -> datastream, sandbox | nil
function M.find(store, id)
  if type(id) ~= "string" or id == "" then return nil end
  return store.find_any(M.KIND, id)
end

-- datastreams.list(store [, sandbox]) -> array of datastreams (creation order, per sandbox)
function M.list(store, sandbox)
  local out = json.array {}
  local names = sandbox and { sandbox } or store.sandbox_names()
  for _, sb in ipairs(names) do
    for _, doc in ipairs(store.list(sb, M.KIND)) do out[#out + 1] = doc end
  end
  return out
end

local function bad(detail)
  return errors.problem(400, "Bad Request", detail)
end

local function event_dataset_ok(store, sandbox, id, what)
  if type(id) ~= "string" or id == "" then return nil, what .. " is required: the id of a dataset of sandbox " .. sandbox end
  if not store.get(sandbox, "dataset", id) then
    return nil, what .. " '" .. id .. "' is not a dataset of sandbox " .. sandbox
  end
  return true
end

-- datastreams.create(app, spec) -> datastream | nil, message   (spec: the POST body)
function M.create(app, spec)
  local store = app.store
  if type(spec) ~= "table" then return nil, "the body must be a JSON object" end
  local sandbox = spec.sandbox or "prod"
  if type(sandbox) ~= "string" or not store.sandbox_exists(sandbox) then
    return nil, "sandbox '" .. tostring(sandbox) .. "' does not exist (POST /emulator/sandboxes creates one)"
  end
  local ok, err = event_dataset_ok(store, sandbox, spec.eventDataset, "eventDataset")
  if not ok then return nil, err end
  if spec.profileDataset ~= nil then
    ok, err = event_dataset_ok(store, sandbox, spec.profileDataset, "profileDataset")
    if not ok then return nil, err end
  end
  local consent = spec.defaultConsent or "in"
  if not M.CONSENT[consent] then
    return nil, "defaultConsent must be \"in\", \"pending\" or \"out\", not " .. json.encode(consent)
  end
  if spec.name ~= nil and type(spec.name) ~= "string" then return nil, "name must be a string" end
  if spec.authenticationRequired ~= nil and type(spec.authenticationRequired) ~= "boolean" then
    return nil, "authenticationRequired must be true or false"
  end
  local id = spec.id
  if id ~= nil then
    if type(id) ~= "string" or not id:match("^[%w][%w%-_]*$") then
      return nil, "id must be letters, digits, '-' and '_'"
    end
    if M.find(store, id) then return nil, "datastream " .. id .. " exists already" end
  else
    id = crypto.uuid4()
  end
  local now = math.floor((require "aep.host").now() * 1000)
  local doc = {
    id = id, name = spec.name or ("Datastream " .. id:sub(1, 8)), sandbox = sandbox,
    orgId = app.org and app.org.org_id,
    eventDataset = spec.eventDataset, profileDataset = spec.profileDataset,
    defaultConsent = consent, authenticationRequired = spec.authenticationRequired == true, created = now,
  }
  store.transaction(function() store.put(sandbox, M.KIND, id, doc) end)
  return doc
end

local function create(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  local doc, msg = M.create(ctx.app, body)
  if not doc then return bad(msg) end
  return 201, JSON, json.encode(doc)
end

local function list(req, ctx)
  local sb = req.query and req.query.sandbox
  if sb == "" then sb = nil end
  return 200, JSON, json.encode { datastreams = M.list(ctx.app.store, sb) }
end

local function get(req, ctx)
  local doc = M.find(ctx.app.store, req.params.id)
  if not doc then return errors.not_found("No datastream " .. tostring(req.params.id)) end
  return 200, JSON, json.encode(doc)
end

local function delete(req, ctx)
  local store = ctx.app.store
  local doc, sandbox = M.find(store, req.params.id)
  if not doc then return errors.not_found("No datastream " .. tostring(req.params.id)) end
  store.transaction(function() store.delete(sandbox, M.KIND, doc.id) end)
  return 204, {}, ""
end

-- datastreams.install(app)
function M.install(app)
  local o = { auth = "none", group = "emulator" }
  app:route("POST", "/emulator/datastreams", create, o)
  app:route("GET", "/emulator/datastreams", list, o)
  app:route("GET", "/emulator/datastreams/:id", get, o)
  app:route("DELETE", "/emulator/datastreams/:id", delete, o)
end

return M
