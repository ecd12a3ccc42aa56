-- aep.stream.mapping_set: a Data Prep mapping set (docs/dataprep.md) as a mapping of `aep stream`,
-- `aep validate` and the REPL's try: the same `function(record, ctx) -> entity` a Lua mapping
-- file gives (aep.stream.mapping), so batching, rejects and reports work unchanged.
--
--   local set, err = mapping_set.read("mappings/loyalty_profile.mapping-set.json")
--   local set, err = mapping_set.fetch(client, ID)                -- a set of the org (Data Prep API)
--   set = mapping_set.retarget(set, tenant, schema_id)            -- written for another tenant
--   local map, err = mapping_set.map_function(set, resolved, name)
--
-- The set is compiled once against the target schema with aep.dataprep and validated the way the
-- Data Prep API validates it: a mapping that fails (unknown destination, type mismatch, bad
-- expression) stops the run before anything is sent, naming each one with Data Prep's words. A
-- record whose mapping fails is rejected as a whole with Data Prep's error for each failed
-- mapping, in the words the emulator writes in failed batches for the same record mapped
-- server-side ("Data Prep: mapping SOURCE -> DESTINATION failed: EXCEPTION"): a partly mapped
-- record is not sent (AEP documents no streaming outcome for one).
local json = require "aep.json"
local dataprep = require "aep.dataprep"

local M = {}

-- mapping_set.looks_like_file(ref) -> whether ref names a file rather than a mapping set id
function M.looks_like_file(ref)
  if ref:match("%.json$") or ref:find("/", 1, true) then return true end
  local f = io.open(ref, "rb")
  if f then f:close(); return true end
  return false
end

-- mapping_set.read(path) -> set | nil, err: a file, else the built-in mapping set of that name
-- (mappings/loyalty_profile.mapping-set.json outside the repository, as the README names it)
function M.read(path)
  local text
  local f, oerr = io.open(path, "rb")
  if f then
    text = f:read("a")
    f:close()
  else
    text = require("aep.file").builtin(path)
    if not text then return nil, "cannot read mapping set " .. path .. ": " .. tostring(oerr) end
  end
  local set, err = json.decode(text)
  if set == nil then return nil, "mapping set " .. path .. " is not JSON: " .. tostring(err) end
  if type(set) ~= "table" or type(set.mappings) ~= "table" then
    return nil, "mapping set " .. path .. " has no \"mappings\" array (a mapping set as the Data Prep API stores it)"
  end
  return set
end

-- mapping_set.fetch(client, id [, version]) -> set | nil, err
function M.fetch(c, id, version)
  local set = require("aep.dataprep_api").get(c, id, version)
  if not set then return nil, "mapping set " .. id .. " not found (aep mapping-sets list shows the org's)" end
  return set
end

-- mapping_set.load(ref, client) -> set, name | nil, err: a file, or the id of a set of the org
function M.load(ref, client)
  if M.looks_like_file(ref) then
    local set, err = M.read(ref)
    return set, err or ref
  end
  if not client then return nil, "mapping set " .. ref .. " is not a file, and there is no Platform client to fetch it" end
  local set, err = M.fetch(client, ref)
  return set, err or ("mapping set " .. ref)
end

-- mapping_set.tenant_of(set) -> the tenant its xdmSchema names (without underscore) | nil
function M.tenant_of(set)
  local t = type(set.xdmSchema) == "string" and set.xdmSchema:match("^https?://ns%.adobe%.com/([^/]+)/") or nil
  if t == "xdm" or t == "experience" then return nil end
  return t
end

-- mapping_set.retarget(set, tenant, schema_id) -> set | a copy for the tenant and schema:
-- destinations under `_<the set's tenant>` move under `_<tenant>` (the sources are the records'
-- own fields and stay as they are), and xdmSchema becomes schema_id. A set written for the
-- tenant already is returned as it is (with xdmSchema set).
function M.retarget(set, tenant, schema_id)
  local from = M.tenant_of(set)
  local copy = json.decode(json.encode(set))
  if schema_id then copy.xdmSchema = schema_id end
  if not from or not tenant or from == tenant then return copy end
  local old, new = "_" .. from, "_" .. tenant
  for _, m in ipairs(copy.mappings) do
    for _, k in ipairs({ "destination", "destinationXdmPath" }) do
      local d = m[k]
      if type(d) == "string" and (d == old or d:sub(1, #old + 1) == old .. ".") then
        m[k] = new .. d:sub(#old + 1)
      end
    end
  end
  return copy
end

-- mapping_set.error_text(err) -> "Data Prep: mapping SOURCE -> DESTINATION failed: EXCEPTION"
function M.error_text(e)
  return ("Data Prep: mapping %s -> %s failed: %s"):format(tostring(e.source), tostring(e.destination),
    tostring(e.exception))
end

-- mapping_set.validation_problems(set, resolved) -> nil | lines, one per failed mapping
-- (dataprep.validate: the Data Prep API's /mappingSets/validate)
function M.validation_problems(set, resolved)
  local ok, response = dataprep.validate(set, resolved)
  local lines = {}
  for i, r in ipairs(type(response) == "table" and response.validationResponse or {}) do
    if r.status ~= "SUCCESS" then
      for _, e in ipairs(type(r.errors) == "table" and r.errors or {}) do
        lines[#lines + 1] = ("mapping %d (%s -> %s): %s"):format(i, tostring(e.source), tostring(e.destination),
          tostring(e.exception))
      end
    end
  end
  if ok and #lines == 0 then return nil end
  if #lines == 0 then lines[1] = "the mapping set does not validate" end
  return lines
end

-- mapping_set.map_function(set, resolved, name) -> function(record, ctx) -> entity | nil, err
-- resolved: the target schema (aep.xdm resolved, xed-full). The function raises the reject reason.
function M.map_function(set, resolved, name)
  local problems = M.validation_problems(set, resolved)
  if problems then
    return nil, (name or "the mapping set") .. " does not validate against the target schema:\n  " ..
      table.concat(problems, "\n  ")
  end
  local compiled, errs = dataprep.compile(set, { schema = resolved })
  if not compiled then
    return nil, (name or "the mapping set") .. " does not compile: " .. tostring(errs and errs[1] and errs[1].exception)
  end
  local error_text = M.error_text
  return function(record)
    if type(record) ~= "table" then error("Data Prep: the record is not a JSON object", 0) end
    local entity, errors = compiled:map(record)
    if errors then
      local parts = {}
      for i, e in ipairs(errors) do parts[i] = error_text(e) end
      error(table.concat(parts, "; "), 0)
    end
    return entity
  end
end

-- mapping_set.fetch_schema(client, schema_id) -> resolved schema (xed-full) | raises
function M.fetch_schema(c, schema_id)
  local platform = require "aep.platform"
  local resp = c:get("/data/foundation/schemaregistry/tenant/schemas/" .. platform.urlencode(schema_id),
    { accept = "application/vnd.adobe.xed-full+json;version=1", allow = { [404] = true } })
  if resp.status == 404 or type(resp.json) ~= "table" then error("schema " .. schema_id .. " not found", 0) end
  return resp.json
end

-- mapping_set.for_target(ref, o) -> map | nil, err
-- o: client, resolved (the target schema) or schema_id (fetched with client), tenant (the
-- target's: a set written for another tenant is retargeted), log, set (ref already read), keep (a
-- table that gets the set as mapped, the resolved schema and the name: what worker threads load)
function M.for_target(ref, o)
  local set, name = o.set, ref
  if not set then set, name = M.load(ref, o.client) end
  if not set then return nil, name end
  local resolved = o.resolved
  if not resolved then
    if not o.client then return nil, "a mapping set needs the target schema: give --dataset (or --schema ID with a Platform configuration)" end
    local ok, r = pcall(M.fetch_schema, o.client, o.schema_id)
    if not ok then return nil, tostring(r) end
    resolved = r
  end
  local from = M.tenant_of(set)
  if o.tenant and from and from ~= o.tenant then
    if o.log then o.log.info("aep: %s is written for tenant %s: its _%s destinations go under _%s", name, from, from, o.tenant) end
  end
  set = M.retarget(set, o.tenant, o.schema_id or resolved["$id"])
  if o.keep then o.keep.set, o.keep.resolved, o.keep.name = set, resolved, name end
  return M.map_function(set, resolved, name)
end

return M
