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
-- when it found one it did not make (teardown leaves it alone). `aep stream` records here the
-- connection, source and target connections and dataflow it creates for a dataset that had none
-- (vars STREAM_*_ID_<dataset id>, "step": "stream", "dataset": the dataset id; aep.stream.connection).
local crypto = require "aep.crypto"
local file = require "aep.file"
local host = require "aep.host"
local json = require "aep.json"
local log = require "aep.log"

local M = {}

M.FORMAT = "aep-run-manifest/1"

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
    path = path,
    doc = { format = M.FORMAT, run_name = run_name, target = target or {}, variables = {}, resources = json.array() },
  }, Manifest)
end

-- manifest.load(path [, run_name, target]) -> manifest (a new one when the file does not exist)
-- | nil, err when it exists but is not a manifest
function M.load(path, run_name, target)
  local text = file.read(path)
  if not text then return M.new(path, run_name, target) end
  local doc, err = json.decode(text)
  if type(doc) ~= "table" then return nil, "run manifest " .. path .. ": " .. tostring(err or "not a JSON object") end
  if doc.format ~= M.FORMAT then return nil, "run manifest " .. path .. ": not an aep run manifest (format " .. tostring(doc.format) .. ")" end
  doc.variables = type(doc.variables) == "table" and doc.variables or {}
  doc.resources = json.array(type(doc.resources) == "table" and doc.resources or {})
  doc.target = type(doc.target) == "table" and doc.target or {}
  local m = setmetatable({ path = path, doc = doc, existed = true }, Manifest)
  return m
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
  self.doc.variables[var] = value
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
  entry.var = var
  for i, r in ipairs(self.doc.resources) do
    if r.var == var then
      if r.id == entry.id and r.created then entry.created = true end
      self.doc.resources[i] = entry
      self.doc.variables[var] = entry.id
      return entry
    end
  end
  self.doc.resources[#self.doc.resources + 1] = entry
  self.doc.variables[var] = entry.id
  return entry
end

-- m:forget(var): drop a resource and its variable (after teardown deleted it)
function Manifest:forget(var)
  for i, r in ipairs(self.doc.resources) do
    if r.var == var then
      table.remove(self.doc.resources, i)
      break
    end
  end
  self.doc.variables[var] = nil
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

-- m:save() -> true | raises. Refuses to write anything that contains a registered secret.
function Manifest:save()
  self.doc.updated = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local text = json.encode_pretty(self.doc) .. "\n"
  if log.redact(text) ~= text then
    error("refusing to write the run manifest " .. self.path .. ": it would contain a secret", 0)
  end
  local dir = self.path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then mkdir_p(dir) end
  local done, err = host.write_file(self.path, text, tonumber("600", 8))
  if not done then error("cannot write the run manifest " .. self.path .. ": " .. tostring(err), 0) end
  self.existed = true
  return true
end

return M
