-- aep.stream.target: where `aep stream` sends — the dataset, its streaming inlet and dataflow, the
-- envelope encoder — found (or created) with the client library: aep.config, aep.platform,
-- aep.catalog, aep.stream.connection, aep.streaming_ingestion, aep.run.manifest.
--
--   local t = target.resolve(opts)
--   t.dataset_id, t.schema_id, t.flow_id, t.inlet_url, t.url (batch or sync endpoint),
--   t.headers, t.auth (session for an authenticated inlet) | nil, t.encoder, t.is_local,
--   t.created (what was created this time, for the log)
--
-- With only --dataset (an id, a dataset name, or a variable of the run manifest such as
-- DATASET_ID_PROFILE), the streaming connection and dataflow are the ones that already write the
-- dataset (the run manifest's, e.g. the workflow's, then Flow Service's), created and recorded in
-- the run manifest only when there are none (aep.stream.connection). --inlet URL (with --flow-id)
-- uses an existing inlet; with --schema too, no Platform call is made at all (a sink, a bench).
local streaming = require "aep.streaming_ingestion"

local M = {}

-- target.is_loopback(url) -> true when the URL's host is this machine (the emulator, a test sink)
function M.is_loopback(url)
  local hostpart = tostring(url):match("^%a[%w+.-]*://([^/?#]+)") or ""
  hostpart = hostpart:gsub("^.*@", "")
  local h = hostpart:match("^%[([^%]]+)%]") or hostpart:gsub(":%d+$", "")
  h = h:lower()
  return h == "localhost" or h == "::1" or h:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

local function client_for(cfg)
  return require("aep.platform").new(cfg)
end

-- The run name `aep run` would use with this configuration (--run-name, AEP_RUN_NAME, the --env
-- file's UNIQUE_ID, else "aep").
local function run_name_of(cfg, run_name)
  return run_name or os.getenv("AEP_RUN_NAME") or (cfg and cfg.extra and cfg.extra.UNIQUE_ID) or "aep"
end

-- The run manifest `aep run` keeps for this target (its default path), for --dataset VARIABLE.
local function default_manifest(cfg, run_name)
  if not cfg then return nil end
  return require("aep.run.manifest").default_path(run_name_of(cfg, run_name), cfg)
end
M.default_manifest = default_manifest

-- A reference that reads as a run-manifest variable (DATASET_ID_PROFILE) rather than an id or a name.
local function is_variable(ref)
  return ref:match("^[A-Z][A-Z0-9_]+$") ~= nil
end

-- What the run manifest says about a variable it could not resolve: the fix to name in the error.
local function manifest_note(m, merr, path, var)
  if not m then return merr end
  if not m.existed then
    return "no run manifest " .. path .. " holds " .. var .. " (`aep run realtime-import` writes it; for " ..
      "another run name give --run-name NAME or set AEP_RUN_NAME)"
  end
  local vars = {}
  for _, r in ipairs(m:resources()) do
    if r.kind == "dataset" and r.var then vars[#vars + 1] = r.var end
  end
  table.sort(vars)
  return "the run manifest " .. path .. " has no " .. var ..
    (#vars > 0 and (" (its datasets: " .. table.concat(vars, ", ") .. ")") or " (it records no dataset)")
end

-- Find the dataset: an id, a name, or a manifest variable.
local function find_dataset(c, ref, manifest_path, cfg, run_name)
  local catalog = require "aep.catalog"
  if type(ref) ~= "string" or ref == "" then
    local message = "which dataset? give its id, its name or a run-manifest variable (DATASET_ID_PROFILE)"
    error(require("aep.platform").error({ kind = "aep", code = "NOT_FOUND", status = 404, message = message,
      title = message }), 0)
  end
  if not manifest_path and is_variable(ref) then manifest_path = default_manifest(cfg, run_name) end
  local asked, note = ref, nil
  if manifest_path then
    local m, merr = require("aep.run.manifest").load(manifest_path)
    local v = m and m.existed and m:get(ref)
    if type(v) == "string" and v ~= "" then
      ref = v
    elseif is_variable(ref) then
      note = manifest_note(m, merr, manifest_path, ref)
    end
  end
  local d = catalog.get_dataset(c, ref)
  if d then return d end
  d = catalog.find_dataset_by_name(c, ref)
  if d then return d end
  -- a name a little off ("Loyalty Profiles" for "aep Loyalty Profiles"): say which exist
  local names = {}
  for _, x in ipairs(catalog.list_datasets(c, { properties = "name" })) do names[#names + 1] = x.name end
  local close = require("aep.inspect").close_matches(ref, names)
  local message = "dataset '" .. ref .. "'" ..
    (asked ~= ref and (" (" .. asked .. " of the run manifest " .. manifest_path .. ")") or "") ..
    " not found (give its id or its name)" ..
    (#close > 0 and ("; close matches: " .. table.concat(close, ", ")) or "") ..
    (note and ("; " .. note) or "")
  error(require("aep.platform").error({ kind = "aep", code = "NOT_FOUND", status = 404, message = message,
    title = message }), 0)
end

-- target.find_dataset(client, ref [, manifest_path, cfg, run_name]) -> dataset | raises NOT_FOUND
-- (naming the close matches): an id, a name, or a run-manifest variable (DATASET_ID_PROFILE).
-- `aep stream -d`, `aep validate --dataset` and `aep datasets` resolve datasets this way.
M.find_dataset = find_dataset

-- target.tenant_of(schema_id) -> the tenant a tenant schema's id names | nil (a standard schema)
function M.tenant_of(schema_id)
  local tenant = tostring(schema_id):match("^https?://ns%.adobe%.com/([^/]+)/")
  if tenant == "xdm" then return nil end
  return tenant
end

-- target.resolve(o) -> target | raises
-- o: cfg (aep.config), dataset, inlet, flow_id, schema, org, manifest, run_name, sync (sync
-- validation), log, client (a platform client, for tests), before_connection(client, dataset)
-- (raises to stop before a connection or dataflow is looked for or created: a mapping set that
-- does not fit the dataset's schema)
function M.resolve(o)
  local cfg = o.cfg
  local t = { created = {} }
  local c = o.client
  local function client()
    c = c or client_for(cfg)
    return c
  end
  local info
  if o.inlet then
    t.inlet_url = o.inlet
    t.flow_id = o.flow_id
    t.authenticated = o.authenticated or false
    if o.schema then
      info = { dataset_id = o.dataset, schema_id = o.schema, content_type = streaming.CONTENT_TYPE,
               ims_org = o.org or (cfg and cfg:get("IMS_ORG")), flow_id = o.flow_id }
    else
      local dataset = find_dataset(client(), o.dataset, o.manifest, cfg, o.run_name)
      info = streaming.dataset_info(client(), dataset, { flow_id = o.flow_id, ims_org = o.org })
    end
  else
    local dataset = find_dataset(client(), o.dataset, o.manifest, cfg, o.run_name)
    if o.before_connection then o.before_connection(client(), dataset) end
    local run_name = run_name_of(cfg, o.run_name)
    local got = require("aep.stream.connection").for_dataset(client(), dataset, {
      manifest_path = o.manifest or default_manifest(cfg, run_name), manifest_flag = o.manifest ~= nil,
      run_name = run_name, target = cfg and cfg:target(), log = o.log })
    local inlet = got.inlet
    t.inlet_url, t.flow_id, t.created = inlet.inlet_url, o.flow_id or got.flow_id, got.created
    t.authenticated = inlet.authenticated
    info = streaming.dataset_info(client(), dataset, { flow_id = t.flow_id, ims_org = o.org })
  end
  t.info = info
  t.dataset_id, t.schema_id = info.dataset_id, info.schema_id
  if not t.schema_id then
    error(require("aep.platform").error({ kind = "aep", code = "BAD_ANSWER",
      message = "dataset " .. tostring(t.dataset_id) .. " has no schemaRef" }), 0)
  end
  t.tenant = M.tenant_of(t.schema_id)
  t.encoder = streaming.envelope_encoder(info)
  t.is_local = M.is_loopback(t.inlet_url)
  if o.sync then
    t.url = t.inlet_url .. (t.inlet_url:find("?", 1, true) and "&" or "?") .. "syncValidation=true"
  else
    t.url = streaming.batch_url(t.inlet_url)
  end
  local h = { ["Content-Type"] = "application/json" }
  if t.flow_id then h["x-adobe-flow-id"] = t.flow_id end
  local sandbox = cfg and cfg:get("SANDBOX_NAME")
  if sandbox then h["x-sandbox-name"] = sandbox end
  if t.authenticated then
    h["x-api-key"] = cfg and cfg:get("API_KEY")
    h["x-gw-ims-org-id"] = cfg and cfg:get("IMS_ORG")
    t.auth = client():auth()
  end
  t.headers = h
  t.client = c
  return t
end

return M
