-- aep.emulator.ingest: where accepted data lands. Streaming (streaming.lua) and batch ingestion
-- (batches.lua) both validate against a dataset's schema through M.dataset() and store every
-- record through M.insert(), inside one store.transaction per request: what was answered 200/207
-- is committed (SQLite WAL) before the answer goes out.
--
-- Tables:
--   ingest_records     one row per record, in ingestion order (seq): the entity as JSON text, its
--                      status ("success" or "failed" with its violations), and for records that
--                      reach Real-Time Customer Profile their kind ('p' profile, 'e' event) and
--                      their identities.
--   ingest_identities  identity -> record links ((sandbox, lower-case namespace, id) -> seq), the
--                      edges of the identity graph. The graph is walked at lookup time
--                      (profiles.lua). The links are derived from the records' idents, so they
--                      are written in bulk, not with each record: M.flush_links() links every
--                      record after the watermark (meta "ingest.linked_seq": the records up to
--                      that seq are linked) before any lookup, once LINK_BATCH records wait, and
--                      at start-up (after a kill -9). One random index insert per record, each
--                      dirtying a page the commit writes to the WAL, was half of storing it.
--   ingest_batches     Catalog batches: import batches (batches.lua) and the batches streaming
--                      writes into (one per request, dataset and outcome).
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local ingest_ids = require "aep.emulator.ingest_ids"

local M = {}

-- Text that may hold a number of 15 significant digits or more (15 digits and dots in a row): cjson
-- keeps 14 significant digits when it writes and reads every number as a double, so such text is
-- read and written through aep.json.
M.LONG_NUMBER = "%d" .. ("[%d%.]"):rep(14)

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS ingest_records (
  seq INTEGER PRIMARY KEY,
  sandbox TEXT NOT NULL,
  dataset_id TEXT NOT NULL,
  batch_id TEXT NOT NULL,
  xaction_id TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  entity TEXT,
  errors TEXT,
  kind TEXT,
  idents TEXT,
  event_id TEXT,
  event_ms INTEGER);
CREATE INDEX IF NOT EXISTS ingest_records_dataset ON ingest_records (dataset_id, status, seq);
CREATE TABLE IF NOT EXISTS ingest_identities (
  sandbox TEXT NOT NULL, ns TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (sandbox, ns, id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingest_batches (
  id TEXT PRIMARY KEY,
  sandbox TEXT NOT NULL,
  dataset_id TEXT NOT NULL,
  source TEXT NOT NULL,
  status TEXT NOT NULL,
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ingest_batches_dataset ON ingest_batches (sandbox, dataset_id, created);
CREATE INDEX IF NOT EXISTS ingest_batches_sandbox ON ingest_batches (sandbox, created);
]]

M.PROFILE_LIMIT = 100 * 1024 -- bytes of a profile record Profile keeps
M.EVENT_LIMIT = 10 * 1024     -- bytes of an ExperienceEvent Profile keeps

local PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
local EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"

local S -- prepared statements, bound to one store
local load_dropping, save_dropping -- the deleted datasets' queue (see drop_dataset)
local bound_store

-- records with identities written before their links are flushed: the flush runs inside an idle
-- slice of validation, so it is kept small enough not to hold the server (20,000 took 0.2-1 s on a
-- busy 2-core machine; 2,000 a tenth of that, still one index pass per 2,000 records)
M.LINK_BATCH = 2000
local LINKED_KEY = "ingest.linked_seq"
local unlinked = 0 -- records with identities written since the last flush (a hint: the DB decides)

-- The links of records w < seq <= top, the common single-identity idents ("P<ns>\31<id>") in one
-- statement, the rest through decode_idents. SQLite's lower() is ASCII-only, as string.lower in
-- the C locale (the host never sets another; if it did, every record goes through Lua).
local LINK_SIMPLE = [[
INSERT OR IGNORE INTO ingest_identities (sandbox, ns, id, seq)
SELECT sandbox, lower(substr(idents, 2, p - 2)), substr(idents, p + 1), seq
FROM (SELECT seq, sandbox, idents, instr(idents, char(31)) AS p FROM ingest_records
      WHERE seq > ?1 AND seq <= ?2 AND idents IS NOT NULL AND substr(idents, 1, 1) <> '['
        AND instr(idents, char(30)) = 0)
WHERE p > 1
ORDER BY 2, 3, 4]]
local LINK_REST = "SELECT seq, sandbox, idents FROM ingest_records WHERE seq > ?1 AND seq <= ?2 AND " ..
  "idents IS NOT NULL AND (substr(idents, 1, 1) = '[' OR instr(idents, char(30)) > 0 OR instr(idents, char(31)) < 2)"
local LINK_ALL = "SELECT seq, sandbox, idents FROM ingest_records WHERE seq > ?1 AND seq <= ?2 AND idents IS NOT NULL"

local function link_range(w, top)
  local rest = S.link_rest
  if os.setlocale(nil, "ctype") == "C" then
    S.link_simple:run(w, top)
  else
    rest = S.link_all
  end
  local rows = {}
  for row in rest:rows(w, top) do rows[#rows + 1] = row end
  for _, row in ipairs(rows) do
    for _, ident in ipairs(M.decode_idents(row[3])) do
      S.link:run(row[2], ident[1]:lower(), ident[2], row[1])
    end
  end
end

local function top_seq()
  local row = S.max_seq:first()
  return row and row[1] or 0
end

-- ingest.setup(store): create the tables and prepare the statements (idempotent per store)
function M.setup(store)
  if bound_store == store then return end
  local db = store.db
  db:exec(SCHEMA)
  S = {
    insert = db:prepare("INSERT INTO ingest_records (sandbox, dataset_id, batch_id, xaction_id, " ..
      "received_ms, status, entity, errors, kind, idents, event_id, event_ms) " ..
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    link = db:prepare("INSERT OR IGNORE INTO ingest_identities (sandbox, ns, id, seq) VALUES (?, ?, ?, ?)"),
    batch_insert = db:prepare("INSERT INTO ingest_batches (id, sandbox, dataset_id, source, status, " ..
      "created, updated, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
    batch_update = db:prepare("UPDATE ingest_batches SET status = ?, updated = ?, doc = ? WHERE id = ?"),
    batch_get = db:prepare("SELECT id, sandbox, dataset_id, source, status, created, updated, doc " ..
      "FROM ingest_batches WHERE id = ?"),
    count_sandbox = db:prepare("SELECT count(*) FROM ingest_records WHERE sandbox = ? AND status <> 'upsert'"),
    count_ds = db:prepare("SELECT count(*) FROM ingest_records WHERE dataset_id = ? AND status <> 'upsert'"),
    count_ds_status = db:prepare("SELECT count(*) FROM ingest_records WHERE dataset_id = ? AND status = ?"),
    page_ds = db:prepare("SELECT seq, xaction_id, received_ms, status, entity, errors, batch_id " ..
      "FROM ingest_records WHERE dataset_id = ? AND status <> 'upsert' ORDER BY seq LIMIT ? OFFSET ?"),
    page_ds_status = db:prepare("SELECT seq, xaction_id, received_ms, status, entity, errors, batch_id " ..
      "FROM ingest_records WHERE dataset_id = ? AND status = ? ORDER BY seq LIMIT ? OFFSET ?"),
    -- identity graph (profiles.lua)
    ident_seqs = db:prepare("SELECT seq FROM ingest_identities WHERE sandbox = ? AND ns = ? AND id = ?"),
    record_by_seq = db:prepare("SELECT seq, dataset_id, received_ms, kind, idents, entity, event_id, event_ms " ..
      "FROM ingest_records WHERE seq = ?"),
    -- deferred links
    link_simple = db:prepare(LINK_SIMPLE),
    link_rest = db:prepare(LINK_REST),
    link_all = db:prepare(LINK_ALL),
    max_seq = db:prepare("SELECT max(seq) FROM ingest_records"),
    -- deleted datasets (drop_step)
    drop_page = db:prepare("SELECT seq, idents FROM ingest_records WHERE dataset_id = ? AND sandbox = ? LIMIT ?"),
    unlink = db:prepare("DELETE FROM ingest_identities WHERE sandbox = ? AND ns = ? AND id = ? AND seq = ?"),
    drop_record = db:prepare("DELETE FROM ingest_records WHERE seq = ?"),
  }
  M.S = S
  bound_store = store
  unlinked = 0
  if store.meta_get(LINKED_KEY) == nil then
    -- a store written before links were deferred: every record was linked as it was written
    store.meta_put(LINKED_KEY, tostring(top_seq()))
  end
  M.flush_links() -- the records a killed process wrote after the watermark
  load_dropping(store)
end

-- ingest.links_due() -> true when LINK_BATCH records or more wait for their links. A caller that
-- sets ingest.defer_links (the streaming slice: async_validation.lua) flushes them itself, as a
-- step of its own, so that a slice and a flush never hold the server together.
function M.links_due()
  return unlinked >= M.LINK_BATCH
end

-- ingest.flush_links(): link every record written after the watermark (profiles.lua calls it
-- before walking the graph). Transactional, inside a caller's transaction or on its own: the
-- watermark moves with the links, so a rollback leaves both as they were.
function M.flush_links()
  if not S then return end
  local store = bound_store
  if top_seq() <= (tonumber(store.meta_get(LINKED_KEY)) or 0) then
    unlinked = 0
    return
  end
  store.transaction(function()
    local w, top = tonumber(store.meta_get(LINKED_KEY)) or 0, top_seq()
    if top <= w then return end
    link_range(w, top)
    store.meta_put(LINKED_KEY, tostring(top))
  end)
  unlinked = 0
end

-- ingest.install(app): tables, and the idle job deleting deleted datasets' records; the routes
-- belong to streaming.lua, batches.lua, admin.lua
function M.install(app)
  M.setup(app.store)
  app:on_idle(function() return M.drop_step(app.store) end)
end

-- ingest.reset(app): forget every record, identity link and batch (/emulator/reset)
function M.reset(app)
  M.setup(app.store)
  app.store.db:exec("DELETE FROM ingest_records; DELETE FROM ingest_identities; DELETE FROM ingest_batches;")
  app.store.meta_put(LINKED_KEY, "0") -- seqs start again at 1
  M.dropping = {}
  save_dropping(app.store)
  unlinked = 0
  M.forget_validators()
end

-- Deleting a dataset's records: ingest_drop.lua (drop_dataset, drop_step, dropping)
load_dropping, save_dropping = require("aep.emulator.ingest_drop")(M, {
  S = function() return S end, top_seq = function() return top_seq() end, LINKED_KEY = LINKED_KEY })

-- Ids and times (ingest_ids.lua), here for the services that read them from ingest
M.new_batch_id = ingest_ids.new_batch_id
M.iso = ingest_ids.iso
M.parse_time = ingest_ids.parse_time

---------------------------------------------------------------------------------------------
-- Datasets: what a record needs to be validated and to reach Profile

local validators = {} -- [sandbox .. "\0" .. schema_id] = { key = freshness key, fn = validator }

-- ingest.forget_validators(): drop every compiled validator (schema changes, reset)
function M.forget_validators()
  for k in pairs(validators) do validators[k] = nil end
end

local function has_value(list, wanted)
  if type(list) ~= "table" then return false end
  for _, v in ipairs(list) do
    if v == wanted then return true end
  end
  return false
end

local function split_path(path)
  local segs = {}
  for seg in tostring(path):gmatch("[^/]+") do segs[#segs + 1] = seg end
  return segs
end

local function schema_class(full)
  local class = full["meta:class"]
  if class then return class end
  for _, e in ipairs(full["meta:extends"] or {}) do
    if e == PROFILE_CLASS or e == EVENT_CLASS then return e end
  end
  return nil
end

-- The validator for a schema, compiled once and kept until the schema or its primary identity
-- descriptor changes: registry.resolve_schema answers with the same table until the sandbox's
-- schemas, field groups or descriptors change, so that table is the freshness key.
local function validator_for(sandbox, schema_id, full, pid)
  local xdm = require "aep.xdm"
  local key = full
  local pkey = pid and (pid.path .. "\0" .. tostring(pid.namespace)) or ""
  local ckey = sandbox .. "\0" .. schema_id
  local c = validators[ckey]
  if c and c.key == key and c.pkey == pkey then return c.fn end
  local fn = xdm.compile(full, { primary_identity = pid })
  validators[ckey] = { key = key, pkey = pkey, fn = fn }
  return fn
end

-- ingest.dataset(ctx, sandbox, dataset_id) -> info | nil, "not_found" | "no_schema"
-- info = { id, sandbox, schema_id, dataset, validate = fn(entity) -> true | false, violations,
--          kind = "p" | "e" | nil (reaches Profile as a profile record or an event),
--          pid_path = {segments} | nil, pid_ns = "Email" | nil }
function M.dataset(ctx, sandbox, dataset_id)
  if type(dataset_id) ~= "string" or dataset_id == "" then return nil, "not_found" end
  local datasets = require "aep.emulator.datasets"
  local registry = require "aep.emulator.registry"
  local sctx = ctx
  if ctx.sandbox ~= sandbox then
    sctx = setmetatable({ sandbox = sandbox }, { __index = ctx })
  end
  local ds = datasets.get(sctx, dataset_id)
  if not ds then return nil, "not_found" end
  local schema_id = ds.schemaRef and ds.schemaRef.id
  if not schema_id then return nil, "no_schema" end
  local full = registry.resolve_schema(sctx, schema_id)
  if not full then return nil, "no_schema" end
  local pid = registry.primary_identity(sctx, schema_id)
  local info = {
    id = dataset_id, sandbox = sandbox, schema_id = schema_id, dataset = ds,
    validate = validator_for(sandbox, schema_id, full, pid),
  }
  local union = has_value(full["meta:immutableTags"], "union")
  if not union then
    local raw = registry.tenant(sandbox, "schema", schema_id)
    union = raw and has_value(raw["meta:immutableTags"], "union") or false
  end
  if union and datasets.profile_enabled(ds) then
    local class = schema_class(full)
    if class == PROFILE_CLASS then info.kind = "p" elseif class == EVENT_CLASS then info.kind = "e" end
  end
  if pid then
    info.pid_path = split_path(pid.path)
    info.pid_ns = pid.namespace
  end
  return info
end

---------------------------------------------------------------------------------------------
-- Writing

-- The identities a record carries: its primary identity field (descriptor) and its identityMap.
-- Returns an array of { ns, id, primary } (namespace codes as written), or nil.
local function add_identity(out, seen, ns, id, primary)
  if type(id) == "number" then id = string.format("%.17g", id):gsub("%.0$", "") end
  if type(ns) ~= "string" or type(id) ~= "string" or ns == "" or id == "" then return out, seen end
  local k = ns:lower() .. "\0" .. id
  out = out or {}
  seen = seen or {}
  local i = seen[k]
  if i then
    if primary then out[i][3] = true end
    return out, seen
  end
  out[#out + 1] = { ns, id, primary and true or false }
  seen[k] = #out
  return out, seen
end

local function identities_of(info, entity)
  local v
  local path = info.pid_path
  if path then
    v = entity
    for i = 1, #path do
      if type(v) ~= "table" then v = nil; break end
      v = v[path[i]]
    end
  end
  local map = entity.identityMap
  if type(map) ~= "table" then
    -- the common case, the primary identity field alone: no bookkeeping
    if v == nil then return nil end
    local out = add_identity(nil, nil, info.pid_ns, v, true)
    return out
  end
  local out, seen
  if v ~= nil then out, seen = add_identity(out, seen, info.pid_ns, v, true) end
  for ns, list in pairs(map) do
    if type(list) == "table" then
      for _, item in ipairs(list) do
        if type(item) == "table" then out, seen = add_identity(out, seen, ns, item.id, item.primary == true) end
      end
    end
  end
  return out
end
M.identities_of = identities_of

-- A record's identities, kept with it as text: "P<ns>\31<id>" (P: primary, "-": not) joined by
-- "\30" -- cheaper than JSON on the hot path; JSON (leading "[") when an id or a namespace holds
-- a separator (decode_idents gives back exactly what was linked: start-up relinks from it).
local function encode_idents(idents)
  local n = #idents
  if n == 1 then
    local ident = idents[1]
    local ns, id = ident[1], ident[2]
    if id:find("[\30\31]") or ns:find("[\30\31]") then return cjson.encode(idents) end
    return (ident[3] and "P" or "-") .. ns .. "\31" .. id
  end
  local parts = {}
  for i = 1, n do
    local ident = idents[i]
    local id = ident[2]
    if id:find("[\30\31]") or ident[1]:find("[\30\31]") then return cjson.encode(idents) end
    parts[i] = (ident[3] and "P" or "-") .. ident[1] .. "\31" .. id
  end
  return table.concat(parts, "\30")
end

-- ingest.decode_idents(text) -> array of { ns, id, primary }
function M.decode_idents(text)
  if not text or text == "" then return {} end
  if text:sub(1, 1) == "[" then return cjson_safe.decode(text) or {} end
  local out = {}
  for part in text:gmatch("[^\30]+") do
    local flag, ns, id = part:match("^(.)([^\31]*)\31(.*)$")
    if flag then out[#out + 1] = { ns, id, flag == "P" } end
  end
  return out
end

-- ingest.insert(info, batch_id, xaction_id, received_ms, status, entity, entity_json, violations)
-- Stores one record (call inside store.transaction). entity: the decoded xdmEntity (or nil);
-- entity_json: its JSON text when the caller has it (streaming stores the entity as the client
-- sent it); violations: array (failed records only).
-- Successful records of Profile-enabled datasets get their identity links.
function M.insert(info, batch_id, xaction_id, received_ms, status, entity, entity_json, violations)
  local size -- the size Profile's guardrail measures: the entity as cjson writes it
  if entity_json == nil and entity ~= nil then
    entity_json = require("aep.json").encode(entity) -- numbers exact (cjson: 14 digits)
    size = #entity_json
  end
  local kind, idents, idents_json, event_id, event_ms
  local ikind = info.kind
  -- Profile's hard guardrails (docs/AEP-API-FACTS.md §8.4): larger records and events stay in the
  -- data lake but are dropped from Profile.
  -- "upsert": a Data Prep partial update (dataprep_stream.lua), Profile's only: linked and merged
  -- like a success, left out of the data lake views below
  if ikind and (status == "success" or status == "upsert") and type(entity) == "table" then
    local limit = ikind == "e" and M.EVENT_LIMIT or M.PROFILE_LIMIT
    if not size then
      -- cjson's text of a decoded entity is at most 6 times the text it was decoded from (a raw
      -- control character becomes \u00XX): re-encode only when that could pass the limit
      size = #entity_json
      if size * 8 > limit then size = #cjson.encode(entity) end
    end
    if size <= limit then
      idents = identities_of(info, entity)
      if idents then
        kind = ikind
        idents_json = encode_idents(idents)
        if kind == "e" then
          local id = entity._id
          if type(id) == "number" then id = string.format("%.17g", id) end
          event_id = id
          event_ms = M.parse_time(entity.timestamp)
        end
      end
    end
  end
  S.insert:run(info.sandbox, info.id, batch_id, xaction_id, received_ms, status, entity_json,
    violations and cjson.encode(violations) or nil, kind, idents_json, event_id, event_ms)
  if idents then
    -- linked later, in bulk, from idents (M.flush_links)
    unlinked = unlinked + 1
    if unlinked >= M.LINK_BATCH and not M.defer_links then M.flush_links() end
  end
end

-- ingest.new_batch(info, source, status, now_ms, doc [, id]) -> id   (call inside a transaction)
-- doc: the Catalog fields kept as they are (inputFormat, tags, createdClient, ...).
function M.new_batch(info, source, status, now_ms, doc, id)
  id = id or M.new_batch_id(now_ms)
  S.batch_insert:run(id, info.sandbox, info.id, source, status, now_ms, now_ms, cjson.encode(doc or {}))
  return id
end

-- ingest.write_streaming(info, ok, now_ms, list) -> batch id   (call inside a transaction)
-- The records one streaming request brought to one dataset with one outcome, as one Catalog
-- batch ("success" or "failed"), its metrics and error counts written with it.
-- list: array of { xaction_id, entity (table | nil), violations (failed only), entity text (or
-- nil: encoded here) }
function M.write_streaming(info, ok, now_ms, list)
  local id = M.new_batch_id(now_ms)
  local status = ok and "success" or "failed"
  local codes
  for i = 1, #list do
    local r = list[i]
    M.insert(info, id, r[1], now_ms, status, r[2], r[4], r[3])
    if not ok then
      codes = codes or {}
      local code = M.violation_code(r[3])
      codes[code] = (codes[code] or 0) + 1
    end
  end
  local n = #list
  M.new_batch(info, "streaming", status, now_ms, {
    inputFormat = { format = "json" },
    metrics = { inputRecordCount = n, outputRecordCount = ok and n or 0, failedRecordCount = ok and 0 or n },
    codes = codes,
  }, id)
  return id
end

-- ingest.get_batch(id) -> row {id, sandbox, dataset_id, source, status, created, updated, doc} | nil
function M.get_batch(id)
  local row = S.batch_get:first(id)
  if not row then return nil end
  return { id = row[1], sandbox = row[2], dataset_id = row[3], source = row[4], status = row[5],
           created = row[6], updated = row[7], doc = cjson_safe.decode(row[8]) or {} }
end

-- ingest.update_batch(id, status, now_ms, doc)
function M.update_batch(id, status, now_ms, doc)
  S.batch_update:run(status, now_ms, cjson.encode(doc), id)
end

-- Catalog error codes for schema violations (batches.lua shows them; streaming counts them).
M.CODES = {
  required = "INGEST-1555-400",
  -- Not documented by Adobe: the emulator's code for the other schema violations (type, format,
  -- enum, pattern, range, unknown fields).
  invalid = "INGEST-1201-400",
}

local function walk_keywords(list, found)
  for _, v in ipairs(list or {}) do
    if type(v) == "table" then
      if v.keyword then found[v.keyword] = true end
      if v.causingExceptions then walk_keywords(v.causingExceptions, found) end
    end
  end
  return found
end

-- ingest.violation_code(violations) -> the Catalog code of one record's violations: a missing
-- required field (or a missing xdmEntity) wins, anything else is "invalid".
function M.violation_code(violations)
  local found = walk_keywords(violations, {})
  if found.required then return M.CODES.required end
  for _, v in ipairs(violations or {}) do
    if type(v) == "table" and not v.keyword and type(v.message) == "string" and v.message:find("missing", 1, true) then
      return M.CODES.required
    end
  end
  return M.CODES.invalid
end

---------------------------------------------------------------------------------------------
-- Reading: /emulator/datasets/:id/records

local function count_of(stmt, ...)
  local row = stmt:first(...)
  return row and row[1] or 0
end

-- ingest.count(ctx) -> number of records (any status) in ctx.sandbox  (/emulator/state)
function M.count(ctx)
  M.setup(ctx.store)
  local sandbox = ctx.sandbox or "prod"
  local n = count_of(S.count_sandbox, sandbox)
  for ds, sb in pairs(M.dropping) do -- deleted already, only not yet erased
    if sb == sandbox then n = n - count_of(S.count_ds, ds) end
  end
  return n
end

-- ingest.records(ctx, dataset_id, opts) -> { records = { {xactionId, receivedTimeMs, entity,
--   status, batchId [, errors]} ... }, count = total matching }
-- opts: limit (default 100), offset (default 0), status ("success" | "failed"), batch_id (one
-- Catalog batch). Records come in ingestion order. Profile lag does not apply here: this is the
-- data lake's view.
function M.records(ctx, dataset_id, opts)
  M.setup(ctx.store)
  opts = opts or {}
  local limit = math.tointeger(tonumber(opts.limit)) or 100
  local offset = math.tointeger(tonumber(opts.offset)) or 0
  if limit < 0 then limit = 0 end
  if offset < 0 then offset = 0 end
  local status = opts.status
  if status == "" then status = nil end
  local batch = opts.batch_id
  if batch == "" then batch = nil end
  local total, stmt, args, owned
  if batch then
    -- rare (a person looking at one batch): a statement of its own
    local where = "dataset_id = ? AND batch_id = ?" .. (status and " AND status = ?" or "")
    local base = { dataset_id, batch }
    if status then base[3] = status end
    local db = (ctx.store or ctx.app.store).db
    local c = db:prepare("SELECT count(*) FROM ingest_records WHERE " .. where)
    total = count_of(c, table.unpack(base))
    c:close()
    stmt = db:prepare("SELECT seq, xaction_id, received_ms, status, entity, errors, batch_id " ..
      "FROM ingest_records WHERE " .. where .. " ORDER BY seq LIMIT ? OFFSET ?")
    base[#base + 1] = limit
    base[#base + 1] = offset
    args, owned = base, true
  elseif status then
    total = count_of(S.count_ds_status, dataset_id, status)
    stmt, args = S.page_ds_status, { dataset_id, status, limit, offset }
  else
    total = count_of(S.count_ds, dataset_id)
    stmt, args = S.page_ds, { dataset_id, limit, offset }
  end
  local out = {}
  for row in stmt:rows(table.unpack(args)) do
    local rec = {
      xactionId = row[2],
      receivedTimeMs = row[3],
      status = row[4],
      entity = row[5] and (require("aep.json").decode(row[5])) or nil, -- numbers exact (cjson: doubles)
      batchId = row[7],
    }
    if row[6] then rec.errors = cjson_safe.decode(row[6]) end
    out[#out + 1] = rec
  end
  if owned then stmt:close() end
  return { records = out, count = total }
end

return M
