-- aep.emulator.async_validation: AEP's asynchronous streaming path (streaming-validation.md,
-- streaming-ingestion/troubleshooting.md). A message accepted by /collection (200/207) is only
-- received: it is written here, durably, before the answer goes out (table ingest_pending, in
-- the request's transaction) and validated afterwards, off the request path, by M.step, which
-- the serve loop calls between requests (app:on_idle) in bounded slices.
--
--   * A valid record reaches the dataset (ingest.insert: the data lake view and, for a
--     Profile-enabled dataset, Real-Time Customer Profile) in the first slice after its answer.
--   * An invalid one is written, with its everit violations, to the window's failed batch.
--   * Messages are grouped per (sandbox, dataset, dataflow) and time window of --batch-window
--     seconds (the emulator's choice: Adobe documents no window). Each window is one Flow
--     Service run (runs.lua) and up to two Catalog batches: one for the valid records (status
--     "success") and one for the invalid ones (status "failed"). Both stay "processing" until the
--     window has closed and every message received in it is validated; then they are final.
--
-- Tables:
--   ingest_pending  accepted, not yet validated messages (the xdmEntity as JSON text; NULL when
--                   the message had none). A kill -9 loses none: the next start resumes them.
--   ingest_windows  one row per window: its run id, its batches, its counters and error codes.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local ingest = require "aep.emulator.ingest"
local ids = require "aep.emulator.ids"
local host = require "aep.host"
local lines = require "aep.lines"
local dataprep_stream = require "aep.emulator.dataprep_stream"

local M = {}

M.WINDOW_S = 1      -- default window (aep emulator --batch-window)
-- An idle slice validates pending messages, read CHUNK at a time, up to SLICE of them, and stops
-- after the message that ends past SLICE_SECONDS -- but never before it has validated SLICE_MIN
-- messages or SLICE_MIN_BYTES of them, so that what one ordinary request brought (up to 500
-- messages, as the slices of 500 before) is validated before the next request is served, however
-- busy the machine. A request therefore waits at most about max(SLICE_SECONDS, the time to validate
-- SLICE_MIN_BYTES), whatever the backlog and the size of its messages.
M.SLICE = 5000
M.CHUNK = 100
M.SLICE_SECONDS = 0.02
M.SLICE_MIN = 500
M.SLICE_MIN_BYTES = 256 * 1024
-- --validation-delay SECONDS (default 0): a message is validated no earlier than that after it
-- was received (AEP documents minutes; tests of clients that wait use it)

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS ingest_pending (
  seq INTEGER PRIMARY KEY,
  sandbox TEXT NOT NULL, dataset_id TEXT NOT NULL, flow_id TEXT NOT NULL, inlet_id TEXT NOT NULL,
  xaction_id TEXT NOT NULL, received_ms INTEGER NOT NULL, entity TEXT);
CREATE TABLE IF NOT EXISTS ingest_windows (
  id TEXT PRIMARY KEY,
  sandbox TEXT NOT NULL, dataset_id TEXT NOT NULL, flow_id TEXT NOT NULL, inlet_id TEXT NOT NULL,
  window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
  state TEXT NOT NULL, ok_batch TEXT, failed_batch TEXT,
  created INTEGER NOT NULL, updated INTEGER NOT NULL, completed INTEGER,
  input INTEGER NOT NULL DEFAULT 0, output INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
  in_bytes INTEGER NOT NULL DEFAULT 0, out_bytes INTEGER NOT NULL DEFAULT 0,
  codes TEXT NOT NULL DEFAULT '{}',
  UNIQUE (sandbox, dataset_id, flow_id, window_start));
CREATE INDEX IF NOT EXISTS ingest_windows_flow ON ingest_windows (sandbox, flow_id, created);
CREATE INDEX IF NOT EXISTS ingest_windows_open ON ingest_windows (state, window_end);
]]

local S, bound_store

function M.setup(store)
  if bound_store == store then return end
  ingest.setup(store)
  local db = store.db
  db:exec(SCHEMA)
  dataprep_stream.migrate(db) -- raw data and upserts: what Data Prep needs (NULL for XDM messages)
  S = {
    pend = db:prepare("INSERT INTO ingest_pending (sandbox, dataset_id, flow_id, inlet_id, xaction_id, " ..
      "received_ms, entity, dataprep) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
    slice = db:prepare("SELECT seq, sandbox, dataset_id, flow_id, inlet_id, xaction_id, received_ms, entity, dataprep " ..
      "FROM ingest_pending WHERE received_ms <= ? ORDER BY seq LIMIT ?"),
    -- the rows of one chunk validated so far: those between its first and last seq that the
    -- slice's query returned (received by the cutoff); one statement per chunk, not per row
    unpend = db:prepare("DELETE FROM ingest_pending WHERE seq BETWEEN ? AND ? AND received_ms <= ?"),
    any_pending = db:prepare("SELECT min(received_ms) FROM ingest_pending"),
    pending_before = db:prepare("SELECT 1 FROM ingest_pending WHERE received_ms < ? LIMIT 1"),
    count_pending = db:prepare("SELECT count(*) FROM ingest_pending"),
    win_get = db:prepare("SELECT id, ok_batch, failed_batch, input, output, failed, in_bytes, out_bytes, codes, " ..
      "created, window_end FROM ingest_windows WHERE sandbox = ? AND dataset_id = ? AND flow_id = ? AND window_start = ?"),
    win_new = db:prepare("INSERT INTO ingest_windows (id, sandbox, dataset_id, flow_id, inlet_id, window_start, " ..
      "window_end, state, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)"),
    win_put = db:prepare("UPDATE ingest_windows SET ok_batch = ?, failed_batch = ?, input = ?, output = ?, " ..
      "failed = ?, in_bytes = ?, out_bytes = ?, codes = ?, updated = ? WHERE id = ?"),
    win_due = db:prepare("SELECT id, window_end, ok_batch, failed_batch " ..
      "FROM ingest_windows WHERE state = 'open' AND window_end <= ? ORDER BY window_end LIMIT 100"),
    win_done = db:prepare("UPDATE ingest_windows SET state = 'done', completed = ?, updated = ? WHERE id = ?"),
    win_next = db:prepare("SELECT min(window_end) FROM ingest_windows WHERE state = 'open'"),
  }
  bound_store = store
end

local function window_ms(app)
  local w = tonumber(app and app.config and app.config.batch_window) or M.WINDOW_S
  if w <= 0 then w = 0.001 end
  return math.max(1, math.floor(w * 1000 + 0.5))
end

-- async_validation.accept(store, list)   (inside the request's transaction)
-- list: array of { sandbox, dataset_id, flow_id or "", inlet_id, xaction_id, received_ms,
-- entity JSON text or nil [, Data Prep's part: dataprep_stream.route's dp_text] }
function M.accept(store, list)
  M.setup(store)
  local pend = S.pend
  for i = 1, #list do
    local r = list[i]
    pend:run(r[1], r[2], r[3] or "", r[4], r[5], r[6], r[7], r[8])
  end
end

-- async_validation.pending_count(store) -> accepted messages not validated yet
function M.pending_count(store)
  M.setup(store)
  local row = S.count_pending:first()
  return row and row[1] or 0
end

local MISSING_ENTITY = { message = "Payload body is missing xdmEntity" }

-- Entities the request decoded, kept in memory (by xactionId) for the slice that validates them,
-- so that a message is decoded once, not twice: at most REMEMBER of them (past that, and after a
-- restart, the slice decodes the stored text, which is that entity encoded).
M.REMEMBER = 10000
local remembered, nremembered = {}, 0

-- async_validation.remember(xaction_id, entity): the decoded entity of an accepted message
function M.remember(xaction, entity)
  if nremembered >= M.REMEMBER or type(entity) ~= "table" then return end
  remembered[xaction] = entity
  nremembered = nremembered + 1
end

local function recall(xaction)
  local e = remembered[xaction]
  if e ~= nil then
    remembered[xaction] = nil
    nremembered = nremembered - 1
  end
  return e
end

-- the batch docs of a window: Catalog fields kept with the batch (batches.catalog_view shows them)
local function batch_doc(app, w, ok, t)
  return {
    inputFormat = { format = "json" }, started = t, imsOrg = app.org and app.org.org_id,
    createdClient = app.org and app.org.client_id, createdUser = app.org and app.org.technical_account_id,
    metrics = { inputRecordCount = 0, outputRecordCount = 0, failedRecordCount = 0 },
    codes = {}, runId = w.id, flowId = w.flow_id ~= "" and w.flow_id or nil,
    failedBatchLocation = nil, ok = ok,
  }
end

local function load_window(ctx, windows, sandbox, ds, flow, inlet, start, wms, t)
  local key = sandbox .. "\0" .. ds .. "\0" .. flow .. "\0" .. start
  local w = windows[key]
  if w then return w end
  local row = S.win_get:first(sandbox, ds, flow, start)
  if not row then
    local h = ids.hex(16)
    local id = h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) .. "-" .. h:sub(21)
    S.win_new:run(id, sandbox, ds, flow, inlet, start, start + wms, t, t)
    row = { id, nil, nil, 0, 0, 0, 0, 0, "{}", t, start + wms }
  end
  w = { id = row[1], ok_batch = row[2], failed_batch = row[3], input = row[4], output = row[5], failed = row[6],
        in_bytes = row[7], out_bytes = row[8], codes = cjson_safe.decode(row[9]) or {},
        sandbox = sandbox, dataset_id = ds, flow_id = flow, app = ctx.app }
  windows[key] = w
  return w
end

local function batch_for(w, ok, t)
  local field = ok and "ok_batch" or "failed_batch"
  if w[field] then return w[field] end
  local id = ingest.new_batch_id(t)
  local doc = batch_doc(w.app, w, ok, t)
  if not ok then
    doc.failedBatchLocation = w.app.urls and (w.app.urls.base .. "/data/foundation/export/batches/" .. id .. "/failed")
  end
  ingest.new_batch({ sandbox = w.sandbox, id = w.dataset_id }, "streaming", "processing", t, doc, id)
  w[field] = id
  return id
end

-- the keyword categories of the Observability metrics (validation.category.*.count)
local CATEGORY = { required = "presence", enum = "enum", format = "format", type = "type",
                   pattern = "pattern", minimum = "range", maximum = "range", exclusiveMinimum = "range",
                   exclusiveMaximum = "range", minLength = "range", maxLength = "range" }

local function leaf_keywords(list, out)
  for _, v in ipairs(list or {}) do
    if type(v) == "table" then
      if v.causingExceptions and #v.causingExceptions > 0 then
        leaf_keywords(v.causingExceptions, out)
      else
        out[#out + 1] = v.keyword or false
      end
    end
  end
  return out
end

-- async_validation.category(violations) -> "presence" | "enum" | ... | "unclassified"
-- (an extraneous field, additionalProperties, is "unclassified": Adobe names no category for it)
function M.category(violations)
  for _, k in ipairs(leaf_keywords(violations, {})) do
    if k and CATEGORY[k] then return CATEGORY[k] end
  end
  return "unclassified"
end

local function save_window(w, t)
  S.win_put:run(w.ok_batch, w.failed_batch, w.input, w.output, w.failed, w.in_bytes, w.out_bytes,
    cjson.encode(w.codes), t, w.id)
  for _, field in ipairs { "ok_batch", "failed_batch" } do
    local id = w[field]
    if id then
      local row = ingest.get_batch(id)
      local doc = row and row.doc
      local n = field == "ok_batch" and w.output or w.failed
      if doc then doc.metrics = { inputRecordCount = n, outputRecordCount = field == "ok_batch" and n or 0,
                      failedRecordCount = field == "ok_batch" and 0 or n,
                      inputByteSize = field == "ok_batch" and w.out_bytes or (w.in_bytes - w.out_bytes) } end
      if doc and field == "failed_batch" then doc.codes = w.codes.catalog or {} end
      if row then ingest.update_batch(id, row.status, t, doc) end
    end
  end
end

local function delay_ms(app)
  local d = tonumber(app and app.config and app.config.validation_delay) or 0
  return math.max(0, math.floor(d * 1000 + 0.5))
end

local function next_rows(cutoff, n)
  local rows = {}
  for r in S.slice:rows(cutoff, n) do rows[#rows + 1] = r end
  return rows
end

-- One slice: validate pending messages, read in chunks of CHUNK, until `limit` are done, none is
-- left or the slice is over (M.SLICE_SECONDS, M.SLICE_MIN, M.SLICE_MIN_BYTES: checked after each
-- message, so a slice of big or slow records stops early; the rest of its chunk stays pending), all
-- in one transaction (one commit per slice, not per chunk). -> number validated
local function validate_slice(app, limit, t)
  local cutoff = t - delay_ms(app)
  local rows = next_rows(cutoff, math.min(M.CHUNK, limit))
  if #rows == 0 then return 0 end
  local deadline = host.monotonic() + M.SLICE_SECONDS
  local store = app.store
  local wms = window_ms(app)
  local done, bytes, over = 0, 0, false
  store.transaction(function()
    local infos, windows, ctxs = {}, {}, {}
    while #rows > 0 do
      local last
      for _, r in ipairs(rows) do
        local seq, sandbox, ds, flow, inlet, xaction, received, text, dp = table.unpack(r, 1, 9)
        local ikey = sandbox .. "\0" .. ds
        local info = infos[ikey]
        -- one context per sandbox and slice (read, never written, by what it is passed to)
        local ctx = ctxs[sandbox]
        if not ctx then
          ctx = { app = app, store = store, org = app.org, config = app.config, sandbox = sandbox }
          ctxs[sandbox] = ctx
        end
        if info == nil then
          local why
          info, why = ingest.dataset(ctx, sandbox, ds)
          -- a dataset whose schema is gone since the answer: its messages fail, none is lost
          if not info and why == "no_schema" then
            info = { id = ds, sandbox = sandbox, validate = function()
              return false, { { message = "Dataset [" .. ds .. "] has no schema to validate the message against" } }
            end }
          end
          info = info or false
          infos[ikey] = info
        end
        -- a dataset deleted since the answer: its data goes with it, as in AEP
        if not info then recall(xaction) end
        if info then
          local start = received - received % wms
          local w = load_window(ctx, windows, sandbox, ds, flow, inlet, start, wms, t)
          local entity = recall(xaction)
          if entity == nil and text then
            entity = lines.has_long_number(text) and json.decode(text) or cjson_safe.decode(text)
          end
          local ok, violations, ops
          local size = text and #text or 0 -- the bytes received (a raw record before its mapping)
          if dp then entity, text, violations, ops = dataprep_stream.prepare(ctx, sandbox, dp, entity) end
          if violations then
            ok = false
          elseif type(entity) == "table" then
            -- a validator that raises must not stop every later message: this one fails
            local pok, a, b = pcall(info.validate, entity)
            if pok then ok, violations = a, b
              if ops and not ok then
                violations = dataprep_stream.partial_violations(violations)
                ok = violations == nil
              end
            else ok, violations = false, { { message = "The message could not be validated: " .. tostring(a) } } end
          else
            entity, text, ok, violations = nil, nil, false, { MISSING_ENTITY }
          end
          w.input, w.in_bytes = w.input + 1, w.in_bytes + size
          if ok and ops then
            ok, violations = dataprep_stream.apply_upsert(ctx, info, ops, xaction, received, entity, text)
            if ok then w.output = w.output + 1 end
          end
          if ok and ops then -- applied to Profile only: no data lake batch
          elseif ok then
            w.output, w.out_bytes = w.output + 1, w.out_bytes + size
            ingest.insert(info, batch_for(w, true, t), xaction, received, "success", entity, text)
          else
            w.failed = w.failed + 1
            local code = ingest.violation_code(violations)
            local cat = M.category(violations)
            w.codes.catalog = w.codes.catalog or {}
            w.codes.catalog[code] = (w.codes.catalog[code] or 0) + 1
            w.codes.category = w.codes.category or {}
            w.codes.category[cat] = (w.codes.category[cat] or 0) + 1
            ingest.insert(info, batch_for(w, false, t), xaction, received, "failed", entity, text, violations)
          end
        end
        last = seq
        done, bytes = done + 1, bytes + (text and #text or 0)
        if host.monotonic() >= deadline and (done >= M.SLICE_MIN or bytes >= M.SLICE_MIN_BYTES) then
          over = true
          break
        end
      end
      S.unpend:run(rows[1][1], last, cutoff)
      if over or done >= limit then break end
      rows = next_rows(cutoff, math.min(M.CHUNK, limit - done))
    end
    for _, w in pairs(windows) do save_window(w, t) end
  end)
  return done
end

-- Close the windows that have ended and have no message left to validate.
-- (ingest_pending has no index on received_ms, which would cost every message two more index
-- writes: "is one of them older than the window's end?" stops at the first such row, which in
-- seq order is nearly always the first; min(received_ms) read them all, at every idle step.)
local function close_windows(app, t)
  local due = {}
  for r in S.win_due:rows(t) do due[#due + 1] = r end
  if #due == 0 then return end
  app.store.transaction(function()
    for _, r in ipairs(due) do
      local id, end_ms, ok_batch, failed_batch = r[1], r[2], r[3], r[4]
      if not S.pending_before:first(end_ms) then
        for _, b in ipairs { { ok_batch, "success" }, { failed_batch, "failed" } } do
          if b[1] then
            local batch = ingest.get_batch(b[1])
            if batch and batch.status == "processing" then
              batch.doc.completed = t
              ingest.update_batch(b[1], b[2], t, batch.doc)
            end
          end
        end
        S.win_done:run(t, t, id)
      end
    end
  end)
end

-- async_validation.step(app [, limit]) -> true (more to do now) | seconds until the next window
-- closes | nil (nothing to do). The serve loop's idle hook.
function M.step(app, limit)
  M.setup(app.store)
  -- the identity links of the records the last slices stored: a step of their own
  if ingest.links_due() then
    ingest.flush_links()
    return true
  end
  local t = ids.now_ms()
  ingest.defer_links = true
  local ok, n = pcall(validate_slice, app, limit or M.SLICE, t)
  ingest.defer_links = false
  if not ok then error(n, 0) end
  close_windows(app, t)
  if n > 0 then return true end
  -- the next thing due: the oldest pending message (after --validation-delay) or a window's end
  local due
  local p = S.any_pending:first()
  if p and p[1] then due = p[1] + delay_ms(app) end
  local nx = S.win_next:first()
  if nx and nx[1] and (not due or nx[1] < due) then due = nx[1] end
  if not due then return nil end
  local wait = (due - ids.now_ms()) / 1000
  return wait > 0 and wait + 0.001 or true
end

-- async_validation.drain(app) -> validate everything pending and close every due window
-- (tests and the emulator's shutdown do not need it: the idle loop does this)
function M.drain(app)
  for _ = 1, 100000 do
    if M.step(app) ~= true then return end
  end
end

function M.install(app)
  M.setup(app.store)
  if app.on_idle then app:on_idle(function() return M.step(app) end) end
end

function M.reset(app)
  M.setup(app.store)
  remembered, nremembered = {}, 0
  app.store.db:exec("DELETE FROM ingest_pending; DELETE FROM ingest_windows;")
end

return M
