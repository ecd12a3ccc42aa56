-- aep.emulator.web_api: the JSON API the console polls (web.lua serves the pages and routes it,
-- local-only):
--   overview   org, sandboxes, schemas (fields as a tree, identities), datasets with record
--              counts, inlets
--   live       what changed since the client's cursors: new records (with validation results),
--              wire rejections, requests, record counts, and a stamp that moves when resources do
--   batches    Catalog view of the import batches (newest first)
--   profile    a profile and its events, through profiles.lua
-- It also keeps what DCS refused on the wire (note_rejections, fed by web.lua's answer hook).
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local host = require "aep.host"
local errors = require "aep.emulator.errors"

local M = {}

M.FEED_LIMIT = 200      -- records per live answer (a fast stream shows its latest records)
M.REJECTS_KEPT = 1000   -- wire rejections remembered in memory
M.REQUESTS_KEPT = 100   -- request-log entries per live answer

local PROFILE = "_xdm.context.profile"
local EVENT = "_xdm.context.experienceevent"
M.EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"
local EVENT_CLASS = M.EVENT_CLASS
local PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"

-- the sandbox a console request asks about (?sandbox=, else the request's)
local function sandbox_of(req, ctx)
  local sb = req.query and req.query.sandbox
  if type(sb) == "string" and sb:match("^[%w%-_]+$") then return sb end
  return ctx.sandbox or "prod"
end

local function sctx(ctx, sandbox)
  return { app = ctx.app, store = ctx.store, org = ctx.org, config = ctx.config, sandbox = sandbox,
           now = host.now() }
end

local function arr(t) return json.array(t or {}) end

---------------------------------------------------------------------------------------------
-- Record counts per dataset, kept incrementally (a count over every record at each poll would
-- slow a large stream down): rows with seq above the last one counted are added on each call.

local counts = { seq = 0, by = {} }
local st -- prepared statements (prepare, at install)

local function prepare(app)
  app:module("ingest").setup(app.store)
  local db = app.store.db
  st = {
    counts_since = db:prepare("SELECT dataset_id, status, count(*), max(seq) FROM ingest_records " ..
      "WHERE seq > ? GROUP BY dataset_id, status"),
    max_seq = db:prepare("SELECT max(seq) FROM ingest_records"),
    feed = db:prepare("SELECT seq, dataset_id, batch_id, xaction_id, received_ms, status, entity, errors " ..
      "FROM ingest_records WHERE sandbox = ? AND seq > ? ORDER BY seq DESC LIMIT ?"),
    import_batches = db:prepare("SELECT id FROM ingest_batches WHERE sandbox = ? AND source <> 'streaming' " ..
      "ORDER BY created DESC, id DESC LIMIT ?"),
    batch_stamp = db:prepare("SELECT count(*), max(updated) FROM ingest_batches WHERE sandbox = ? " ..
      "AND source <> 'streaming'"),
    streaming_batches = db:prepare("SELECT status, count(*) FROM ingest_batches WHERE sandbox = ? " ..
      "AND source = 'streaming' GROUP BY status"),
  }
end

local function first(stmt, ...)
  stmt:bind(...)
  local row = stmt:step()
  stmt:reset()
  return row
end

local function update_counts()
  local row = first(st.max_seq)
  local max = row and math.tointeger(row[1]) or 0
  if max < counts.seq then counts.seq, counts.by = 0, {} end -- records were forgotten (reset)
  if max == counts.seq then return counts.by end
  local rows = {}
  for r in st.counts_since:rows(counts.seq) do rows[#rows + 1] = r end
  for _, r in ipairs(rows) do
    local c = counts.by[r[1]]
    if not c then c = { success = 0, failed = 0 }; counts.by[r[1]] = c end
    c[r[2]] = (c[r[2]] or 0) + math.tointeger(r[3])
    local top = math.tointeger(r[4])
    if top > counts.seq then counts.seq = top end
  end
  if max > counts.seq then counts.seq = max end
  return counts.by
end

---------------------------------------------------------------------------------------------
-- Schemas: fields as a tree, identities

local function type_name(node)
  local t = node["meta:xdmType"] or node.type
  if type(t) == "table" then t = table.concat(t, "|") end
  return t
end

local function field_tree(node, path, depth, required)
  local out = arr()
  if type(node) ~= "table" or depth > 12 then return out end
  local props = node.properties
  if type(props) ~= "table" then return out end
  local names = {}
  for k in pairs(props) do names[#names + 1] = k end
  table.sort(names, function(a, b)
    -- tenant fields (_tenant) first, then the rest alphabetically
    local ta, tb = a:sub(1, 1) == "_" and a ~= "_id", b:sub(1, 1) == "_" and b ~= "_id"
    if ta ~= tb then return ta end
    return a < b
  end)
  local req_set = {}
  for _, r in ipairs(required or node.required or {}) do req_set[r] = true end
  for _, name in ipairs(names) do
    local p = props[name]
    if type(p) == "table" then
      local fpath = path .. "/" .. name
      local f = { name = name, path = fpath, type = type_name(p), title = p.title, format = p.format,
                  required = req_set[name] or nil }
      if type(p.enum) == "table" then f.enum = arr(p.enum) end
      local inner = p
      if p.type == "array" and type(p.items) == "table" then
        inner = p.items
        f.items = type_name(inner)
      end
      local children = field_tree(inner, fpath, depth + 1)
      if #children > 0 then f.fields = children end
      out[#out + 1] = f
    end
  end
  return out
end

local function class_of(full, raw)
  local c = full and full["meta:class"] or raw["meta:class"]
  if c then return c end
  for _, e in ipairs((full and full["meta:extends"]) or raw["meta:extends"] or {}) do
    if e == PROFILE_CLASS or e == EVENT_CLASS then return e end
  end
  for _, a in ipairs(raw.allOf or {}) do
    local r = type(a) == "table" and a["$ref"]
    if r == PROFILE_CLASS or r == EVENT_CLASS then return r end
  end
  return nil
end

local function schema_view(ctx, raw)
  local registry = require "aep.emulator.registry"
  local id = raw["$id"]
  local ok, full, err = pcall(registry.resolve_schema, ctx, id)
  if not ok then full, err = nil, full end
  local idents = arr()
  local okd, descs = pcall(registry.identity_descriptors, ctx, id)
  for _, d in ipairs(okd and descs or {}) do
    idents[#idents + 1] = { path = d["xdm:sourceProperty"], namespace = d["xdm:namespace"],
                            primary = d["xdm:isPrimary"] == true }
  end
  local tags = raw["meta:immutableTags"]
  local union = false
  for _, t in ipairs(type(tags) == "table" and tags or {}) do if t == "union" then union = true end end
  return {
    id = id, title = raw.title, description = raw.description, version = raw.version,
    class = class_of(full, raw), profile = union, identities = idents,
    fields = full and field_tree(full, "", 1) or arr(),
    error = (not full) and tostring(err or "cannot resolve the schema") or nil,
  }
end

---------------------------------------------------------------------------------------------
-- API: overview

local function overview(req, ctx)
  local app = ctx.app
  local sandbox = sandbox_of(req, ctx)
  local c = sctx(ctx, sandbox)
  local catalog = require "aep.emulator.catalog"
  local flows = require "aep.emulator.flows"
  local store = app.store
  local sandboxes = store.sandboxes()
  local has = false
  for _, s in ipairs(sandboxes) do if s == sandbox then has = true end end
  if not has then table.insert(sandboxes, 1, sandbox) end
  table.sort(sandboxes, function(a, b)
    if (a == "prod") ~= (b == "prod") then return a == "prod" end
    return a < b
  end)

  local schemas, titles = arr(), {}
  for _, raw in ipairs(store.list(sandbox, "schema")) do
    local v = schema_view(c, raw)
    schemas[#schemas + 1] = v
    titles[v.id] = v.title
  end

  local by = update_counts()
  local datasets = arr()
  for _, id in ipairs(store.ids(sandbox, "dataset")) do
    local ds = store.get(sandbox, "dataset", id)
    local sid = ds.schemaRef and ds.schemaRef.id
    local n = by[id] or { success = 0, failed = 0 }
    datasets[#datasets + 1] = {
      id = id, name = ds.name, description = ds.description, schemaId = sid,
      schemaTitle = sid and titles[sid], created = ds.created,
      profile = catalog.profile_enabled(ds), identity = catalog.identity_enabled(ds),
      records = { success = n.success or 0, failed = n.failed or 0 },
    }
  end

  local inlets = arr()
  for _, doc in ipairs(store.list(sandbox, "inlet")) do
    local rec = flows.find_inlet(doc.inletId) or {}
    local fl = arr()
    for _, fid in ipairs(rec.flow_ids or {}) do
      fl[#fl + 1] = { id = fid, datasetIds = arr(rec.flows and rec.flows[fid] and rec.flows[fid].dataset_ids) }
    end
    inlets[#inlets + 1] = {
      id = doc.inletId, name = doc.inletName or doc.name, url = doc.inletUrl or (app.urls.base .. "/collection/" .. doc.inletId),
      sourceId = doc.sourceId, authenticationRequired = doc.authenticationRequired == true,
      connectionId = doc.connectionId, flows = fl,
    }
  end

  return 200, errors.JSON_HEADERS, {
    org = { imsOrg = app.org.org_id, tenantId = app.org.tenant },
    emulator = { url = app.urls.base, uptime = host.now() - app.started, dataDir = app.data_dir,
                 version = host.versions and host.versions().aep or nil,
                 profileLag = tonumber(app.config and app.config.profile_lag) or 0,
                 faults = app.faults and app.faults.describe and app.faults.describe().spec or nil },
    sandbox = sandbox, sandboxes = arr(sandboxes),
    schemas = schemas, datasets = datasets, inlets = inlets,
    datastreams = (require "aep.emulator.datastreams").list(store, sandbox),
    dataPlane = st ~= nil,
  }
end

---------------------------------------------------------------------------------------------
-- Wire rejections: what DCS refused on the wire (sync validation 400s, envelope errors inside a
-- 207). Such messages are never stored, so the answer hook keeps them here for the console.

local rejects = { seq = 0, ring = {} }

local function remember_reject(e)
  rejects.seq = rejects.seq + 1
  e.seq = rejects.seq
  rejects.ring[(rejects.seq - 1) % M.REJECTS_KEPT + 1] = e
end

local function flatten_causes(list, out)
  for _, v in ipairs(type(list) == "table" and list or {}) do
    if type(v) == "table" then
      if type(v.causingExceptions) == "table" and v.causingExceptions[1] ~= nil then
        flatten_causes(v.causingExceptions, out)
      else
        out[#out + 1] = { message = v.message, keyword = v.keyword,
                          pointer = v.pointerToViolation or v.path, schemaLocation = v.schemaLocation }
      end
    end
  end
  return out
end

local function entity_summary(msg)
  if type(msg) ~= "table" then return nil, nil end
  local header = type(msg.header) == "table" and msg.header or {}
  local body = type(msg.body) == "table" and msg.body or {}
  local entity = type(body.xdmEntity) == "table" and body.xdmEntity or nil
  return header.datasetId, entity
end

local function note_rejections(req, status, body)
  local now = math.floor(host.now() * 1000)
  local inlet = req.params and req.params.inletId
  local rec = inlet and require("aep.emulator.flows").find_inlet(inlet)
  local sandbox = rec and rec.sandbox or "prod"
  if status == 400 then
    local ans = cjson_safe.decode(body)
    if type(ans) ~= "table" then return end
    local report = type(ans.report) == "table" and ans.report or {}
    local msg = #(req.body or "") <= 262144 and cjson_safe.decode(req.body or "") or nil
    local ds, entity = entity_summary(msg)
    local causes = {}
    if type(report.cause) == "table" then flatten_causes(report.cause._streamingValidation, causes) end
    remember_reject { time = now, inlet = inlet, sandbox = sandbox, dataset = ds, status = 400, title = ans.title,
                      message = report.message or ans.detail, violations = arr(causes), entity = entity }
  elseif status == 207 then
    local ans = cjson_safe.decode(body)
    if type(ans) ~= "table" or type(ans.responses) ~= "table" then return end
    local doc
    for i, r in ipairs(ans.responses) do
      if type(r) == "table" and r.statusCode then
        if doc == nil then
          doc = #(req.body or "") <= 1048576 and cjson_safe.decode(req.body or "") or false
        end
        local msg = type(doc) == "table" and type(doc.messages) == "table" and doc.messages[i] or nil
        local ds, entity = entity_summary(msg)
        remember_reject { time = now, inlet = inlet, sandbox = sandbox, dataset = ds, status = r.statusCode, index = i - 1,
                          batchId = ans.batchId, message = r.message, violations = arr(), entity = entity }
      end
    end
  end
end

---------------------------------------------------------------------------------------------
-- API: live

local function stamp(app, sandbox)
  local parts = { sandbox }
  for _, kind in ipairs { "schema", "fieldgroup", "descriptor", "dataset", "inlet", "flow", "connection" } do
    parts[#parts + 1] = tostring(app.store.count(sandbox, kind))
  end
  parts[#parts + 1] = tostring(#app.store.sandboxes())
  if st then
    local row = first(st.batch_stamp, sandbox)
    parts[#parts + 1] = tostring(row and row[1] or 0) .. ":" .. tostring(row and row[2] or 0)
  end
  return table.concat(parts, "/")
end

local function dataset_names(app, sandbox)
  local names = {}
  for _, id in ipairs(app.store.ids(sandbox, "dataset")) do
    names[id] = app.store.get(sandbox, "dataset", id).name or id
  end
  return names
end

local function live(req, ctx)
  local app = ctx.app
  local q = req.query or {}
  local sandbox = sandbox_of(req, ctx)
  local since = math.tointeger(tonumber(q.records)) or 0
  local rsince = math.tointeger(tonumber(q.rejects)) or 0
  local lsince = math.tointeger(tonumber(q.requests)) or 0
  local names = dataset_names(app, sandbox)
  local out = { sandbox = sandbox, stamp = stamp(app, sandbox) }

  -- records (newest FEED_LIMIT above the cursor, oldest first)
  local records, latest = arr(), since
  if st then
    local rows = {}
    for r in st.feed:rows(sandbox, since, M.FEED_LIMIT) do rows[#rows + 1] = r end
    for i = #rows, 1, -1 do
      local r = rows[i]
      local seq = math.tointeger(r[1])
      if seq > latest then latest = seq end
      local rec = { seq = seq, dataset = r[2], datasetName = names[r[2]], batchId = r[3], xactionId = r[4],
                    receivedTimeMs = math.tointeger(r[5]), status = r[6],
                    entity = r[7] and cjson_safe.decode(r[7]) or nil }
      if r[8] then rec.violations = arr(flatten_causes(cjson_safe.decode(r[8]) or {}, {})) end
      records[#records + 1] = rec
    end
    local row = first(st.max_seq)
    local max = row and math.tointeger(row[1]) or 0
    if max < since then latest = max; out.reset = true end -- the store was reset: start over
  end
  out.records = records

  -- wire rejections
  local list = arr()
  if rsince > rejects.seq then rsince = 0; out.reset = true end
  local from = math.max(rsince + 1, rejects.seq - M.REJECTS_KEPT + 1, rejects.seq - M.FEED_LIMIT + 1, 1)
  for s = from, rejects.seq do
    local e = rejects.ring[(s - 1) % M.REJECTS_KEPT + 1]
    if e and e.sandbox == sandbox then
      local v = {}
      for k, x in pairs(e) do v[k] = x end
      v.datasetName = e.dataset and names[e.dataset] or nil
      list[#list + 1] = v
    end
  end
  out.rejects = list

  -- the request log, without the emulator's own endpoints
  local reqs = arr()
  local log = app.log
  if lsince > log.seq then lsince = 0 end
  local start = math.max(lsince, log.seq - 2000)
  local entries = log.query(start, { limit = 2000 })
  local kept = {}
  for _, e in ipairs(entries) do
    if e.path:sub(1, 10) ~= "/emulator/" then kept[#kept + 1] = e end
  end
  for i = math.max(1, #kept - M.REQUESTS_KEPT + 1), #kept do reqs[#reqs + 1] = kept[i] end
  out.requests = reqs

  local by = update_counts()
  local cnt = {}
  for id in pairs(names) do
    local c = by[id]
    cnt[id] = { success = c and c.success or 0, failed = c and c.failed or 0 }
  end
  out.counts = cnt
  if st then
    local sb = { success = 0, failed = 0 }
    for r in st.streaming_batches:rows(sandbox) do sb[r[1]] = math.tointeger(r[2]) end
    out.streamingBatches = sb
  end
  out.cursors = { records = latest, rejects = rejects.seq, requests = log.seq }
  out.time = math.floor(host.now() * 1000)
  return 200, errors.JSON_HEADERS, out
end

---------------------------------------------------------------------------------------------
-- API: batches, profile

local function batches(req, ctx)
  local app = ctx.app
  local sandbox = sandbox_of(req, ctx)
  local ingest = app:module("ingest")
  local bmod = app:module("batches")
  local names = dataset_names(app, sandbox)
  local ids = {}
  for r in st.import_batches:rows(sandbox, 50) do ids[#ids + 1] = r[1] end
  local out = arr()
  for _, id in ipairs(ids) do
    local row = ingest.get_batch(id)
    if row then
      local view = bmod.catalog_view(row)
      view.datasetId = row.dataset_id
      view.datasetName = names[row.dataset_id]
      out[#out + 1] = view
    end
  end
  return 200, errors.JSON_HEADERS, { batches = out, available = true }
end

local function profile(req, ctx)
  local app = ctx.app
  local q = req.query or {}
  local profiles = app:module("profiles")
  local id, ns = q.id, q.ns
  if not id or id == "" then return errors.problem(400, "Bad Request", "Give an identity value (id=...)") end
  if not ns or ns == "" then ns = "Email" end
  local c = sctx(ctx, sandbox_of(req, ctx))
  local function call(query)
    local r = { query = query, query_all = {}, headers = {}, params = {}, method = "GET",
                path = "/data/core/ups/access/entities" }
    local s, h, b = profiles.get(r, c)
    if type(s) == "table" then s, h, b = s.status or s[1], s.headers or s[2], s.body or s[3] end
    if type(b) == "string" then b = cjson_safe.decode(b) or b end
    return s, b
  end
  local s, p = call { ["schema.name"] = PROFILE, entityId = id, entityIdNS = ns }
  if s ~= 200 then return s, errors.JSON_HEADERS, p end
  local es, ev = call { ["schema.name"] = EVENT, ["relatedSchema.name"] = PROFILE, relatedEntityId = id,
                        relatedEntityIdNS = ns, orderby = "-timestamp", limit = tostring(q.limit or 100) }
  local xid, view = next(p)
  return 200, errors.JSON_HEADERS, {
    entityId = xid, profile = view,
    events = es == 200 and ev or { children = arr(), error = ev },
  }
end

M.sandbox_of = sandbox_of
M.sctx = sctx
M.arr = arr
M.class_of = class_of
M.note_rejections = note_rejections
M.overview = overview
M.live = live
M.batches = batches
M.profile = profile

-- web_api.setup(app): prepare the statements over the data plane's tables, counts from zero
function M.setup(app)
  prepare(app)
  counts.seq, counts.by = 0, {}
end

-- web_api.reset(): forget the wire rejections and the counts (/emulator/reset)
function M.reset()
  rejects.seq, rejects.ring = 0, {}
  counts.seq, counts.by = 0, {}
end

return M
