-- aep.emulator.large_files: batch ingestion's large-file upload (help/ingestion/batch-ingestion/
-- api-overview.md "Ingest large Parquet files"; batch-ingestion.yaml), for files above the
-- 256 MB a single PUT takes.
--   POST  .../batches/:b/datasets/:d/files/*name?action=INITIALIZE   201 {name, sizeInBytes = 0}
--   PATCH .../batches/:b/datasets/:d/files/*name  (Content-Range: bytes FIRST-LAST[/TOTAL])
--                                                                    200 {name, sizeInBytes}, Range
--   POST  .../batches/:b/datasets/:d/files/*name?action=COMPLETE     201 {name, sizeInBytes}
--   HEAD  .../batches/:b/datasets/:d/files/*name                     200, Range: bytes=0-N[,A-B...]
--
-- Each chunk is written durably (host.write_file: fsync + rename) to DATA_DIR/batches/<batchId>/
-- L<k>.<first>-<last>.part and recorded in SQLite, so an acknowledged chunk survives a kill; a
-- chunk sent again with the same range replaces itself (idempotent), and HEAD tells what has
-- arrived (the received byte ranges, merged), so a client resumes where it stopped. As AEP does
-- (troubleshooting.md "Why is the Large File Complete API call failing?"), ranges are checked
-- when the file is completed: overlapping or missing chunks answer 400 there. COMPLETE stitches
-- the chunks into the batch's file of that name (what a PUT would have stored) and drops them;
-- a file COMPLETE repeated after that answers 201 again. INITIALIZE starts the file afresh.
-- Choices the docs leave open (docs/EMULATOR-INTERNALS.md, "Large-file upload"): INITIALIZE and
-- COMPLETE answer the guide's 201 (the spec says 200) with the spec's File body; a batch
-- COMPLETE while a large file is still open answers 400 (its data would be lost otherwise).
local host = require "aep.host"
local errors = require "aep.emulator.errors"

local M = {}

-- The largest chunk: batch-ingestion.yaml, uploadLargeFilePart ("File sizes of between
-- 0-512000000 bytes are accepted").
M.MAX_CHUNK = 512000000
local SMALL_BODY = 64 * 1024
local COPY = 1024 * 1024

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS ingest_large_files (
  k INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL, dataset_id TEXT NOT NULL, name TEXT NOT NULL,
  UNIQUE (batch_id, dataset_id, name));
CREATE TABLE IF NOT EXISTS ingest_large_parts (
  k INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, path TEXT NOT NULL,
  PRIMARY KEY (k, first, last));
]]

local st, H -- prepared statements; batches.lua's helpers

local function setup(store)
  if st and st.store == store then return end
  store.db:exec(SCHEMA)
  local db = store.db
  st = {
    store = store,
    get = db:prepare("SELECT k FROM ingest_large_files WHERE batch_id = ? AND dataset_id = ? AND name = ?"),
    add = db:prepare("INSERT INTO ingest_large_files (batch_id, dataset_id, name) VALUES (?, ?, ?)"),
    drop = db:prepare("DELETE FROM ingest_large_files WHERE k = ?"),
    open_of = db:prepare("SELECT name FROM ingest_large_files WHERE batch_id = ? ORDER BY k LIMIT 1"),
    of_batch = db:prepare("SELECT k, dataset_id, name FROM ingest_large_files WHERE batch_id = ?"),
    part_put = db:prepare("INSERT INTO ingest_large_parts (k, first, last, path) VALUES (?, ?, ?, ?) " ..
      "ON CONFLICT (k, first, last) DO NOTHING"),
    parts = db:prepare("SELECT first, last, path FROM ingest_large_parts WHERE k = ? ORDER BY first, last"),
    parts_drop = db:prepare("DELETE FROM ingest_large_parts WHERE k = ?"),
  }
end

local function parts_of(k)
  local out = {}
  for r in st.parts:rows(k) do out[#out + 1] = { first = r[1], last = r[2], path = r[3] } end
  return out
end

-- Drop a large file's record and its chunks (rows first, then the files they named).
local function drop(k)
  local parts = parts_of(k)
  st.store.transaction(function()
    st.parts_drop:run(k)
    st.drop:run(k)
  end)
  for _, p in ipairs(parts) do os.remove(p.path) end
end

-- The received byte ranges, merged: { {first, last}, ... } and the bytes they hold.
local function received(parts)
  local out, total = {}, 0
  for _, p in ipairs(parts) do
    local cur = out[#out]
    if cur and p.first <= cur[2] + 1 then
      if p.last > cur[2] then cur[2] = p.last end
    else
      out[#out + 1] = { p.first, p.last }
    end
  end
  for _, r in ipairs(out) do total = total + r[2] - r[1] + 1 end
  return out, total
end

local function range_header(ranges)
  if #ranges == 0 then return nil end
  local t = {}
  for i, r in ipairs(ranges) do t[i] = r[1] .. "-" .. r[2] end
  return "bytes=" .. table.concat(t, ",")
end

local function file_body(name, size, range)
  local h = { ["Content-Type"] = errors.JSON_HEADERS["Content-Type"] }
  if range then h["Range"] = range end
  return h, { name = name, sizeInBytes = size }
end

local function not_initialized(row, name)
  return H.problem(404, "Not Found", "File [" .. name .. "] of batch [" .. row.id .. "] has no large-file upload " ..
    "in progress: POST .../files/" .. name .. "?action=INITIALIZE first", "INGEST-1111-404")
end

-- "bytes FIRST-LAST", "bytes FIRST-LAST/TOTAL|*" (also "bytes=") -> first, last | nil
local function parse_range(v)
  if type(v) ~= "string" then return nil end
  local a, b = v:match("^%s*bytes[%s=]+(%d+)%s*%-%s*(%d+)%s*/?%s*[%d%*]*%s*$")
  a, b = math.tointeger(tonumber(a)), math.tointeger(tonumber(b))
  if not a or not b or b < a then return nil end
  return a, b
end

-- PATCH: one chunk
local function patch(req, ctx)
  local row, answer = H.check_upload(req, ctx)
  if not row then return answer end
  local name = req.params.fileName
  local k = st.get:first(row.id, row.dataset_id, name)
  if not k then return not_initialized(row, name) end
  k = k[1]
  local first, last = parse_range(req.headers["content-range"])
  if not first then
    return H.problem(400, "Bad Request", "Content-Range must name the chunk's bytes as 'bytes FIRST-LAST' " ..
      "(0-based, LAST included), got [" .. tostring(req.headers["content-range"]) .. "]", "INGEST-1112-400")
  end
  local body = req.body or ""
  if #body ~= last - first + 1 then
    return H.problem(400, "Bad Request", string.format("Content-Range bytes %d-%d announces %d bytes; the body " ..
      "holds %d", first, last, last - first + 1, #body), "INGEST-1112-400")
  end
  local path = string.format("%s/batches/%s/L%d.%d-%d.part", H.data_dir(ctx), row.id, k, first, last)
  assert(host.mkdir(H.data_dir(ctx) .. "/batches"))
  assert(host.mkdir(H.data_dir(ctx) .. "/batches/" .. row.id))
  local ok, err = host.write_file(path, body, 384)
  if not ok then return H.problem(500, "Internal Server Error", "Could not store the chunk: " .. tostring(err)) end
  st.part_put:run(k, first, last, path)
  local ranges, total = received(parts_of(k))
  local h, b = file_body(name, total, range_header(ranges))
  return 200, h, b
end

-- Stitch the chunks (checked to cover 0..N once) into the batch's file of that name.
local function complete(ctx, row, name, k)
  local parts = parts_of(k)
  if #parts == 0 then
    return H.problem(400, "Bad Request", "File [" .. name .. "] has no chunks: PATCH them before COMPLETE",
      "INGEST-1113-400")
  end
  local expect = 0
  for _, p in ipairs(parts) do
    if p.first > expect then
      return H.problem(400, "Bad Request", string.format("Chunks of file [%s] are missing: bytes %d-%d were never " ..
        "uploaded", name, expect, p.first - 1), "INGEST-1113-400")
    elseif p.first < expect then
      return H.problem(400, "Bad Request", string.format("Chunks of file [%s] overlap: bytes %d-%d were uploaded " ..
        "more than once", name, p.first, math.min(p.last, expect - 1)), "INGEST-1113-400")
    end
    expect = p.last + 1
  end
  local path, seq = H.file_slot(ctx, row, name)
  local tmp = path .. ".stitch"
  local out = assert(io.open(tmp, "wb"))
  for _, p in ipairs(parts) do
    local f = assert(io.open(p.path, "rb"))
    while true do
      local chunk = f:read(COPY)
      if not chunk then break end
      out:write(chunk)
    end
    f:close()
  end
  assert(host.fsync(out))
  out:close()
  assert(os.rename(tmp, path))
  st.store.transaction(function() H.file_put(row.id, row.dataset_id, name, path, expect, seq) end)
  drop(k)
  local h, b = file_body(name, expect)
  return 201, h, b
end

-- POST ?action=INITIALIZE | COMPLETE
local function action(req, ctx)
  local row, answer = H.check_upload(req, ctx)
  if not row then return answer end
  local name = req.params.fileName
  local act = tostring(req.query and req.query.action or ""):upper()
  local k = st.get:first(row.id, row.dataset_id, name)
  if act == "INITIALIZE" then
    if k then drop(k[1]) end
    st.add:run(row.id, row.dataset_id, name)
    local h, b = file_body(name, 0)
    return 201, h, b
  elseif act == "COMPLETE" then
    if k then return complete(ctx, row, name, k[1]) end
    local done = H.file_get(row.id, row.dataset_id, name)
    if not done then return not_initialized(row, name) end
    local size = host.stat(done[1])
    local h, b = file_body(name, size and size.size or 0)
    return 201, h, b
  end
  return H.problem(400, "Bad Request", "Unknown action [" .. tostring(req.query and req.query.action) ..
    "]; use INITIALIZE or COMPLETE", "INGEST-1109-400")
end

-- HEAD: the bytes received so far (a completed or PUT file: all of it)
local function head(req, ctx)
  H.ready(ctx)
  local p = req.params
  local row = H.find_batch(ctx, p.batchId)
  if not row or row.source ~= "import" then return H.batch_not_found(p.batchId) end
  if row.dataset_id ~= p.datasetId then
    return H.problem(404, "Not Found", "Dataset [" .. tostring(p.datasetId) .. "] is not the dataset of batch [" ..
      row.id .. "]", "INGEST-1105-404")
  end
  local k = st.get:first(row.id, row.dataset_id, p.fileName)
  if k then
    local ranges = received(parts_of(k[1]))
    return 200, { Range = range_header(ranges) }, ""
  end
  local done = H.file_get(row.id, row.dataset_id, p.fileName)
  if not done then return not_initialized(row, p.fileName) end
  local s = host.stat(done[1])
  local size = s and s.size or 0
  return 200, { Range = size > 0 and ("bytes=0-" .. (size - 1)) or nil }, ""
end

-- large_files.open_file(batch_id) -> the name of a large file initialized and not completed | nil
function M.open_file(batch_id)
  local r = st and st.open_of:first(batch_id)
  return r and r[1]
end

-- large_files.discard(ctx, batch_id [, dataset_id, name]): drop the uploads in progress of a
-- batch (ABORT) or of one name (a PUT replaced it)
function M.discard(_, batch_id, dataset_id, name)
  if not st then return end
  if name then
    local k = st.get:first(batch_id, dataset_id, name)
    if k then drop(k[1]) end
    return
  end
  local ks = {}
  for r in st.of_batch:rows(batch_id) do ks[#ks + 1] = r[1] end
  for _, k in ipairs(ks) do drop(k) end
end

-- large_files.install(app, helpers): helpers from batches.lua (check_upload, find_batch, ...)
function M.install(app, helpers)
  H = helpers
  setup(app.store)
  local path = "/data/foundation/import/batches/:batchId/datasets/:datasetId/files/*fileName"
  app:route("PATCH", path, patch, { auth = "platform", max_body = M.MAX_CHUNK })
  app:route("POST", path, action, { auth = "platform", max_body = SMALL_BODY })
  app:route("HEAD", path, head, { auth = "platform", max_body = SMALL_BODY })
end

function M.reset(app)
  setup(app.store)
  for r in app.store.db:prepare("SELECT path FROM ingest_large_parts"):rows() do os.remove(r[1]) end
  app.store.db:exec("DELETE FROM ingest_large_parts; DELETE FROM ingest_large_files")
end

return M
