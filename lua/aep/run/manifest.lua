-- aep.run.manifest: what a workflow run created and learned, kept between runs as the
-- collection kept its environment variables (TENANT_ID, SCHEMA_ID_PROFILE, INLET_URL, ...).
--
-- File format (JSON, written atomically, mode 0600, never a secret in it):
--   { "format": "aep-run-manifest/1", "run_name": "aep",
--     "target": {"gateway": ..., "org": ..., "sandbox": ...},
--     "variables": {"TENANT_ID": "...", "SCHEMA_ID_PROFILE": "...", ...},
--     "resources": [ {"var": "SCHEMA_ID_PROFILE", "kind": "schema", "id": "...", "title": "...",
--                     "created": true, "step": "schemas"}, ... ],   -- in creation order
--     "updated": "2025-01-01T00:00:00Z" }
-- `created` is true when this workflow created the resource (then teardown deletes it), false
-- when it found one it did not make (teardown leaves it alone).
-- Several processes may share one manifest (`aep run` while `aep stream` records a dataflow, two
-- streams at once): m:save() re-reads the file under <manifest>.lock and applies this process's
-- changes since it loaded (set, record, forget) to what is there, so no one's entries are lost. `aep stream` records here the
-- connection, source and target connections and dataflow it creates for a dataset that had none
-- (vars STREAM_*_ID_<dataset id>, "step": "stream", "dataset": the dataset id; aep.stream.connection).
local crypto = require "aep.crypto"
local errors = require "aep.errors"
local file = require "aep.file"
local host = require "aep.host"
local json = require "aep.json"
local log = require "aep.log"

local M = {}

M.FORMAT = "aep-run-manifest/1"
-- seconds to wait for another process's hold on a manifest before giving up
M.LOCK_WAIT_S = 300

-- manifest.default_path(run_name, cfg) -> $XDG_STATE_HOME/aep/runs/<run>-<sandbox>-<org tag>.json,
-- where `aep run` keeps a run's manifest (and `aep stream` finds --dataset DATASET_ID_PROFILE)
function M.default_path(run_name, cfg)
  local org = tostring(cfg:get("IMS_ORG") or "noorg")
  local tag = crypto.sha256_hex(org):sub(1, 8)
  local safe = run_name == "" and "default" or run_name:gsub("[^%w%-_.]", "_")
  local sandbox = tostring(cfg:get("SANDBOX_NAME") or "prod"):gsub("[^%w%-_.]", "_")
  return file.state_dir() .. "/runs/" .. safe .. "-" .. sandbox .. "-" .. tag .. ".json"
end

local Manifest = {}
Manifest.__index = Manifest

-- manifest.new(path, run_name, target) -> manifest (not yet written)
function M.new(path, run_name, target)
  return setmetatable({
    path = path, changes = {},
    doc = { format = M.FORMAT, run_name = run_name, target = target or {}, variables = {}, resources = json.array() },
  }, Manifest)
end

-- the manifest document in a file -> doc | nil (no file) | false, err (not a manifest)
local function read_doc(path)
  local text = file.read(path)
  if not text then return nil end
  local doc, err = json.decode(text)
  if type(doc) ~= "table" then return false, "run manifest " .. path .. ": " .. tostring(err or "not a JSON object") end
  if doc.format ~= M.FORMAT then return false, "run manifest " .. path .. ": not an aep run manifest (format " .. tostring(doc.format) .. ")" end
  doc.variables = type(doc.variables) == "table" and doc.variables or {}
  doc.resources = json.array(type(doc.resources) == "table" and doc.resources or {})
  doc.target = type(doc.target) == "table" and doc.target or {}
  return doc
end

-- manifest.load(path [, run_name, target]) -> manifest (a new one when the file does not exist)
-- | nil, err when it exists but is not a manifest
function M.load(path, run_name, target)
  local doc, err = read_doc(path)
  if doc == nil then return M.new(path, run_name, target) end
  if not doc then return nil, err end
  return setmetatable({ path = path, doc = doc, existed = true, changes = {} }, Manifest)
end

-- manifest.with_lock(path, fn) -> fn()'s results, run while this process holds <path>.lock (an
-- exclusive SQLite transaction on that file: the OS releases it when a process dies; nothing is
-- written in it). Re-entrant within a process. path nil: fn() alone.
local held = {}
function M.with_lock(path, fn)
  if not path or held[path] then return fn() end
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then M.mkdir_p(dir) end
  local lock = path .. ".lock"
  local db, err = require("aep.sqlite").open(lock)
  if not db then error(errors.new({ kind = "config", code = "LOCK", message = "cannot open " .. lock .. ": " .. tostring(err) }), 0) end
  db:busy_timeout(200)
  local t0 = host.monotonic()
  while true do
    local ok, e = pcall(db.exec, db, "BEGIN EXCLUSIVE")
    if ok then break end
    local busy = tostring(e):find("locked", 1, true) or tostring(e):find("busy", 1, true)
    if not busy then db:close(); error(e, 0) end
    if host.monotonic() - t0 > M.LOCK_WAIT_S then
      db:close()
      error(errors.new({ kind = "config", code = "LOCK", message = string.format(
        "another aep process has held the run manifest %s for %d s (lock %s)", path, M.LOCK_WAIT_S, lock) }), 0)
    end
    if host.sleep(0.05) == false then db:close(); error("interrupted", 0) end
  end
  held[path] = true
  local res = table.pack(pcall(fn))
  held[path] = nil
  pcall(db.exec, db, "COMMIT")
  db:close()
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- The changes a manifest is made of, applied to a document (this process's, or the file's as
-- another process left it).
local apply = {}
function apply.set(doc, var, value)
  doc.variables[var] = value
end

function apply.record(doc, var, entry)
  entry.var = var
  for i, r in ipairs(doc.resources) do
    if r.var == var then
      if r.id == entry.id and r.created then entry.created = true end
      doc.resources[i] = entry
      doc.variables[var] = entry.id
      return entry
    end
  end
  doc.resources[#doc.resources + 1] = entry
  doc.variables[var] = entry.id
  return entry
end

function apply.forget(doc, var)
  for i, r in ipairs(doc.resources) do
    if r.var == var then
      table.remove(doc.resources, i)
      break
    end
  end
  doc.variables[var] = nil
end

local function change(m, kind, var, value)
  m.changes[#m.changes + 1] = { kind, var, value }
  return apply[kind](m.doc, var, value)
end

-- m:get(var) -> value of a variable (or the id of a recorded resource)
function Manifest:get(var)
  local v = self.doc.variables[var]
  if v ~= nil then return v end
  local r = self:resource(var)
  return r and r.id or nil
end

-- m:set(var, value): a learned value (tenant id, inlet URL, ...)
function Manifest:set(var, value)
  change(self, "set", var, value)
end

-- m:resource(var) -> entry | nil
function Manifest:resource(var)
  for _, r in ipairs(self.doc.resources) do
    if r.var == var then return r end
  end
  return nil
end

-- m:record(var, entry): add or update the resource entry for var; keeps its position (creation
-- order) and its created flag when the same id is seen again
function Manifest:record(var, entry)
  return change(self, "record", var, entry)
end

-- m:forget(var): drop a resource and its variable (after teardown deleted it)
function Manifest:forget(var)
  change(self, "forget", var)
end

-- m:resources() -> entries in creation order
function Manifest:resources()
  return self.doc.resources
end

local function mkdir_p(dir)
  local path = ""
  for part in dir:gmatch("[^/]+") do
    path = path .. "/" .. part
    if dir:sub(1, 1) ~= "/" and path:sub(1, 1) == "/" then path = path:sub(2) end
    host.mkdir(path, tonumber("700", 8))
  end
end
M.mkdir_p = mkdir_p

-- m:save() -> true | raises. Under the manifest's lock: this process's changes since it loaded
-- (or last saved) are applied to the file as it is now, so what another process recorded
-- meanwhile stays; target and run name are this process's. Refuses to write anything that
-- contains a registered secret.
function Manifest:save()
  return M.with_lock(self.path, function()
    local doc = read_doc(self.path)
    if doc then
      doc.target, doc.run_name = self.doc.target, self.doc.run_name
      for _, c in ipairs(self.changes) do apply[c[1]](doc, c[2], c[3]) end
    else
      doc = self.doc -- no file (or not a manifest, which load refused): this process's document
    end
    doc.updated = os.date("!%Y-%m-%dT%H:%M:%SZ")
    local text = json.encode_pretty(doc) .. "\n"
    if log.redact(text) ~= text then
      error("refusing to write the run manifest " .. self.path .. ": it would contain a secret", 0)
    end
    local done, err = host.write_file(self.path, text, tonumber("600", 8))
    if not done then error("cannot write the run manifest " .. self.path .. ": " .. tostring(err), 0) end
    self.doc, self.changes, self.existed = doc, {}, true
    return true
  end)
end

return M
