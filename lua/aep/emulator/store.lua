-- aep.emulator.store: the emulator's durable state, SQLite in WAL mode under --data-dir.
-- Control-plane resources (schemas, datasets, connections, ...) live in one generic table and are
-- mirrored in memory, so reads on the hot path (inlet, dataset, schema lookups) never touch SQLite.
-- Every put/delete is committed (autocommit or store.transaction) before it returns: a kill -9
-- loses nothing that was answered. Docs handed out by get/list/find are shared: don't mutate them,
-- put a new table instead.
local sqlite = require "aep.sqlite"
local json = require "aep.json"

local M = {}

local EMPTY_ARRAY = "\1aep-empty-array\1"

-- Marked empty arrays don't survive a JSON round trip through cjson (they come back as {}):
-- store them as a sentinel string and turn that back into json.array{} on load.
local function freeze(v)
  if type(v) ~= "table" then return v end
  if next(v) == nil then
    if getmetatable(v) == json.array_mt then return EMPTY_ARRAY end
    return v
  end
  local out = {}
  for k, x in pairs(v) do out[k] = freeze(x) end
  return out
end

local function thaw(v)
  if v == EMPTY_ARRAY then return json.array({}) end
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if type(x) == "table" or x == EMPTY_ARRAY then v[k] = thaw(x) end
  end
  return v
end

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS resources (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sandbox TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
  UNIQUE (sandbox, kind, id));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
]]

-- store.open(path) -> store | nil, message
function M.open(path)
  local db, err = sqlite.open(path)
  if not db then return nil, err end
  db:busy_timeout(5000)
  db:exec("PRAGMA journal_mode=WAL")
  db:exec("PRAGMA synchronous=NORMAL")
  db:exec(SCHEMA)

  local S = { db = db, path = path }
  -- cache[sandbox][kind] = { order = {id...}, docs = {id = doc} }; where[kind][id] = sandbox
  local cache, where = {}, {}

  local function bucket(sandbox, kind, create)
    local sb = cache[sandbox]
    if not sb then
      if not create then return nil end
      sb = {}; cache[sandbox] = sb
    end
    local b = sb[kind]
    if not b and create then b = { order = {}, docs = {} }; sb[kind] = b end
    return b
  end

  local function remember(sandbox, kind, id, doc)
    local b = bucket(sandbox, kind, true)
    if b.docs[id] == nil then b.order[#b.order + 1] = id end
    b.docs[id] = doc
    where[kind] = where[kind] or {}
    where[kind][id] = sandbox
  end

  for row in db:prepare("SELECT sandbox, kind, id, doc FROM resources ORDER BY seq"):rows() do
    local doc = json.decode(row[4])
    if doc ~= nil then remember(row[1], row[2], row[3], thaw(doc)) end
  end

  local st_put = db:prepare("INSERT INTO resources (sandbox, kind, id, doc) VALUES (?, ?, ?, ?) " ..
    "ON CONFLICT (sandbox, kind, id) DO UPDATE SET doc = excluded.doc")
  local st_del = db:prepare("DELETE FROM resources WHERE sandbox = ? AND kind = ? AND id = ?")
  local st_meta_get = db:prepare("SELECT value FROM meta WHERE key = ?")
  local st_meta_put = db:prepare("INSERT INTO meta (key, value) VALUES (?, ?) " ..
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value")

  -- store.put(sandbox, kind, id, doc): insert or replace (a replaced doc keeps its list position)
  function S.put(sandbox, kind, id, doc)
    assert(type(id) == "string" and id ~= "", "store.put: id must be a non-empty string")
    st_put:run(sandbox, kind, id, json.encode(freeze(doc)))
    remember(sandbox, kind, id, doc)
    return doc
  end

  -- store.get(sandbox, kind, id) -> doc | nil
  function S.get(sandbox, kind, id)
    local b = bucket(sandbox, kind)
    return b and b.docs[id]
  end

  -- store.list(sandbox, kind) -> array of docs in creation order
  function S.list(sandbox, kind)
    local b = bucket(sandbox, kind)
    local out = {}
    if not b then return out end
    for i, id in ipairs(b.order) do out[i] = b.docs[id] end
    return out
  end

  -- store.ids(sandbox, kind) -> array of ids in creation order (shared: don't mutate)
  function S.ids(sandbox, kind)
    local b = bucket(sandbox, kind)
    return b and b.order or {}
  end

  -- store.count(sandbox, kind) -> number
  function S.count(sandbox, kind)
    local b = bucket(sandbox, kind)
    return b and #b.order or 0
  end

  -- store.delete(sandbox, kind, id) -> true if it existed
  function S.delete(sandbox, kind, id)
    local b = bucket(sandbox, kind)
    if not b or b.docs[id] == nil then return false end
    st_del:run(sandbox, kind, id)
    b.docs[id] = nil
    for i, x in ipairs(b.order) do
      if x == id then table.remove(b.order, i); break end
    end
    if where[kind] then where[kind][id] = nil end
    return true
  end

  -- store.find(sandbox, kind, field, value) -> first doc whose doc[field] == value, or nil
  function S.find(sandbox, kind, field, value)
    local b = bucket(sandbox, kind)
    if not b then return nil end
    for _, id in ipairs(b.order) do
      local doc = b.docs[id]
      if doc[field] == value then return doc, id end
    end
    return nil
  end

  -- store.find_any(kind, id) -> doc, sandbox | nil   (a resource looked up without its sandbox,
  -- e.g. an inlet from its URL)
  function S.find_any(kind, id)
    local sandbox = where[kind] and where[kind][id]
    if not sandbox then return nil end
    return S.get(sandbox, kind, id), sandbox
  end

  -- store.sandboxes() -> sorted array of sandbox names holding something (always "prod")
  function S.sandboxes()
    local out, seen = { "prod" }, { prod = true }
    for name in pairs(cache) do
      if not seen[name] then seen[name] = true; out[#out + 1] = name end
    end
    table.sort(out)
    return out
  end

  -- store.kinds(sandbox) -> { kind = count }
  function S.kinds(sandbox)
    local out = {}
    for kind, b in pairs(cache[sandbox] or {}) do
      if #b.order > 0 then out[kind] = #b.order end
    end
    return out
  end

  local depth = 0
  -- store.transaction(fn, ...) -> fn's results; BEGIN/COMMIT around fn (ROLLBACK and re-raise
  -- on error). Nested calls join the outer transaction.
  function S.transaction(fn, ...)
    if depth > 0 then return fn(...) end
    db:exec("BEGIN IMMEDIATE")
    depth = 1
    local res = table.pack(pcall(fn, ...))
    depth = 0
    if not res[1] then
      pcall(db.exec, db, "ROLLBACK")
      error(res[2], 0)
    end
    db:exec("COMMIT")
    return table.unpack(res, 2, res.n)
  end

  -- store.meta_get(key) -> string | nil ; store.meta_put(key, value)
  function S.meta_get(key)
    st_meta_get:bind(key)
    local row = st_meta_get:step()
    st_meta_get:reset()
    return row and row[1]
  end
  function S.meta_put(key, value)
    st_meta_put:run(key, value)
  end

  -- Sandboxes exist once created (POST /emulator/sandboxes); "prod" always does, and so does a
  -- sandbox that holds resources (a store written before sandboxes had to be created).
  local created_sandboxes
  local function load_sandboxes()
    if created_sandboxes then return created_sandboxes end
    created_sandboxes = { prod = true }
    local list = json.decode(S.meta_get("sandboxes") or "[]")
    for _, name in ipairs(type(list) == "table" and list or {}) do created_sandboxes[name] = true end
    return created_sandboxes
  end

  -- store.sandbox_exists(name) -> boolean
  function S.sandbox_exists(name)
    return load_sandboxes()[name] == true or cache[name] ~= nil
  end

  -- store.add_sandbox(name) -> true if created, false if it existed
  function S.add_sandbox(name)
    if S.sandbox_exists(name) then return false end
    local set = load_sandboxes()
    set[name] = true
    local list = {}
    for n in pairs(set) do list[#list + 1] = n end
    table.sort(list)
    S.meta_put("sandboxes", json.encode(list))
    return true
  end

  -- store.sandbox_names() -> sorted array of every existing sandbox
  function S.sandbox_names()
    local seen, out = {}, {}
    for n in pairs(load_sandboxes()) do seen[n] = true end
    for n in pairs(cache) do seen[n] = true end
    for n in pairs(seen) do out[#out + 1] = n end
    table.sort(out)
    return out
  end

  -- store.reset(): forget every resource of every sandbox (the org in meta stays)
  function S.reset()
    db:exec("DELETE FROM resources")
    for k in pairs(cache) do cache[k] = nil end
    for k in pairs(where) do where[k] = nil end
  end

  function S.close()
    db:close()
  end

  return S
end

return M
