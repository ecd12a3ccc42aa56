-- aep.validate: offline validation of mapped records, for `try` in the REPL and `aep validate`.
-- Nothing is sent: a record goes through its mapping and the entity is checked with aep.xdm, the
-- validator the emulator runs on every streamed message, so the violations read exactly as the
-- emulator's (and AEP's) synchronous validation report them, plus AEP's size limits.
--
--   local target = validate.from_dataset(client, "DATASET_ID")   -- schema fetched once
--   local target = validate.from_file("schema.json")             -- or a schema file
--   local status, entity = validate.map(map, record, ctx)        -- "ok" | "skip" | "error"
--   local ok, problems = validate.check(target, entity)          -- problems: array of lines
--   print(validate.try(target, map, record))                     -- the REPL's report
local file = require "aep.file"
local json = require "aep.json"
local cjson = require "cjson"
local is_interrupt = require("aep.errors").is_interrupt

local M = {}

M.PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
M.EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"

-- Accept header for a schema resolved, with its descriptors (one request instead of two)
M.ACCEPT_FULL_DESC = "application/vnd.adobe.xed-full-desc+json; version=1"

-- validate.class_of(resolved) -> class $id | nil (meta:class, else the class in meta:extends)
function M.class_of(resolved)
  local class = resolved["meta:class"]
  if type(class) == "string" then return class end
  for _, e in ipairs(resolved["meta:extends"] or {}) do
    if e == M.PROFILE_CLASS or e == M.EVENT_CLASS then return e end
  end
  return nil
end

-- validate.tenant_of(schema_id | resolved) -> tenant id without underscore | nil
function M.tenant_of(s)
  if type(s) == "table" then
    local ns = s["meta:tenantNamespace"]
    if type(ns) == "string" and ns ~= "" then return (ns:gsub("^_", "")) end
    s = s["$id"]
  end
  local t = type(s) == "string" and s:match("^https?://ns%.adobe%.com/([^/]+)/") or nil
  if t == "xdm" or t == "experience" then return nil end
  return t
end

-- validate.primary_identity(descriptors, schema_id) -> {path=, namespace=} | nil
function M.primary_identity(descriptors, schema_id)
  for _, d in ipairs(descriptors or {}) do
    if type(d) == "table" and d["@type"] == "xdm:descriptorIdentity" and d["xdm:isPrimary"] == true
      and (schema_id == nil or d["xdm:sourceSchema"] == nil or d["xdm:sourceSchema"] == schema_id) then
      return { path = d["xdm:sourceProperty"], namespace = d["xdm:namespace"] }
    end
  end
  return nil
end

M.PLACEHOLDER_DATASET = string.rep("0", 24)
M.PLACEHOLDER_ORG = string.rep("0", 24) .. "@AdobeOrg"

local KIND = { [M.PROFILE_CLASS] = "profile", [M.EVENT_CLASS] = "event" }

-- validate.target(resolved, o) -> target: the compiled validator and what reports name.
-- o: schema_id, dataset_id, dataset_name, primary_identity, tenant, source (where it came from)
function M.target(resolved, o)
  o = o or {}
  local xdm = require "aep.xdm"
  local class = o.class or M.class_of(resolved)
  local t = {
    resolved = resolved, class = class, kind = KIND[class],
    schema_id = o.schema_id or resolved["$id"], title = resolved.title,
    dataset_id = o.dataset_id, dataset_name = o.dataset_name,
    primary_identity = o.primary_identity, source = o.source,
  }
  t.tenant = o.tenant or M.tenant_of(t.schema_id) or M.tenant_of(resolved)
  t.validate = xdm.compile(resolved, { primary_identity = t.primary_identity, class = class })
  -- the envelope the entity would travel in, for the request size check (without a dataset or
  -- an org, placeholders as long as Catalog's and IMS's ids)
  t.envelope = require("aep.streaming_ingestion").envelope_encoder({
    dataset_id = t.dataset_id or M.PLACEHOLDER_DATASET, schema_id = t.schema_id or "",
    ims_org = o.ims_org or M.PLACEHOLDER_ORG,
  })
  return t
end

-- validate.from_dataset(client, dataset [, {manifest = FILE, run_name = NAME}]) -> target | raises
-- (a message, or an aep.platform error). dataset: an id, a name or a run-manifest variable,
-- resolved by aep.stream.target.find_dataset as `aep stream -d` resolves it. One Catalog request
-- and one Schema Registry request (the schema resolved, with its descriptors); fall back to
-- listing descriptors when the registry does not include them.
function M.from_dataset(c, ref, o)
  o = o or {}
  local platform = require "aep.platform"
  local schemas = require "aep.schemas"
  local found, ds = pcall(require("aep.stream.target").find_dataset, c, ref, o.manifest, c.cfg, o.run_name)
  if not found then
    if type(ds) == "table" and ds.code == "NOT_FOUND" and ds.message then error(ds.message, 0) end
    error(ds, 0)
  end
  local schema_id = ds.schemaRef and ds.schemaRef.id
  if not schema_id then error("dataset " .. tostring(ds.id) .. " has no schemaRef", 0) end
  local resp = c:get(schemas.BASE .. "/tenant/schemas/" .. platform.urlencode(schema_id),
    { accept = M.ACCEPT_FULL_DESC, allow = { [404] = true } })
  if resp.status == 404 then
    error("schema " .. schema_id .. " of dataset " .. tostring(ds.id) .. " not found", 0)
  end
  local resolved = resp.json
  if type(resolved) ~= "table" then error("the Schema Registry answered no schema for " .. schema_id, 0) end
  local descriptors = resolved["meta:descriptors"]
  if descriptors == nil then
    local d = schemas.find_identity_descriptor(c, schema_id)
    descriptors = d and { d } or {}
  end
  return M.target(resolved, {
    schema_id = schema_id, dataset_id = ds.id, dataset_name = ds.name,
    primary_identity = M.primary_identity(descriptors, schema_id),
    ims_org = c.cfg and c.cfg:get("IMS_ORG"), source = "dataset " .. tostring(ds.id),
  })
end

local function read_json(path)
  local text, err = file.read(path)
  if not text then return nil, "cannot read " .. path .. ": " .. tostring(err) end
  local v, jerr = json.decode(text)
  if v == nil then return nil, path .. ": " .. tostring(jerr) end
  return v
end

local function is_descriptor(d) return type(d["@type"]) == "string" end
local function is_fieldgroup(d)
  local rt = d["meta:resourceType"]
  return rt == "mixins" or rt == "fieldgroups" or d["meta:intendedToExtend"] ~= nil
end

-- validate.from_file(path [, o]) -> target | nil, err
-- The file holds either
--   * one schema: as the Schema Registry returns it resolved (Accept: ...xed-full+json, or
--     ...xed-full-desc+json, whose meta:descriptors give the primary identity), or a tenant
--     schema whose allOf refers only to Adobe's standard classes and field groups; or
--   * an array of documents: the tenant schema, its field groups (as the registry returns
--     them, Accept: ...xed+json) and, optionally, its identity descriptors (the primary one is
--     checked as AEP checks it).
-- o.primary_identity overrides the descriptors.
function M.from_file(path, o)
  o = o or {}
  local doc, err = read_json(path)
  if not doc then return nil, err end
  local docs = json.is_array(doc) and doc or { doc }
  local schema, others, descriptors = nil, {}, {}
  for _, d in ipairs(docs) do
    if type(d) ~= "table" then return nil, path .. ": expected schema documents (JSON objects)" end
    if is_descriptor(d) then descriptors[#descriptors + 1] = d
    elseif schema == nil and not is_fieldgroup(d) then schema = d
    else others[#others + 1] = d end
  end
  if not schema then return nil, path .. ": no schema in the file (only field groups or descriptors)" end
  for _, d in ipairs(type(schema["meta:descriptors"]) == "table" and schema["meta:descriptors"] or {}) do
    descriptors[#descriptors + 1] = d
  end
  local resolved = schema
  if schema.allOf ~= nil or schema["$ref"] ~= nil then
    local xdm = require "aep.xdm"
    local by_id = {}
    for _, d in ipairs(others) do
      if d["$id"] then by_id[d["$id"]] = d end
      if d["meta:altId"] then by_id[d["meta:altId"]] = d end
    end
    -- Adobe's standard resources are aep.xdm's own fallback
    local function lookup(id)
      return by_id[id] or by_id[(tostring(id):gsub("/fieldgroups/", "/mixins/"))]
    end
    local ok, r, rerr = pcall(xdm.resolve, schema, lookup)
    if not ok or r == nil then return nil, path .. ": " .. tostring(ok and rerr or r) end
    resolved = r
  end
  local schema_id = schema["$id"]
  local ok, t = pcall(M.target, resolved, {
    schema_id = schema_id, primary_identity = o.primary_identity or M.primary_identity(descriptors, schema_id),
    tenant = o.tenant, source = "schema file " .. path,
  })
  if not ok then return nil, path .. ": " .. tostring(t) end
  return t
end

-- validate.map(map, record, ctx) -> "ok", entity | "skip" | "error", reason
-- The mapping's errors become "mapping error: ..." (the words `aep stream` rejects them with).
function M.map(map, record, ctx)
  local ok, entity = pcall(map, record, ctx)
  if not ok then
    if is_interrupt(entity) then error(entity, 0) end
    return "error", require("aep.stream.mapping").reason(entity)
  end
  if entity == nil then return "skip" end
  if type(entity) == "string" then
    local v, err = json.decode(entity)
    if type(v) ~= "table" then return "error", "mapping error: it returned text that is not a JSON object (" .. tostring(err or type(v)) .. ")" end
    entity = v
  end
  if type(entity) ~= "table" then
    return "error", "mapping error: it returned a " .. type(entity) .. ", not an entity (a table)"
  end
  return "ok", entity
end

-- validate.encode(entity) -> JSON text as `aep stream` would send it
function M.encode(entity)
  return cjson.encode(entity)
end

-- AEP's request limit (docs/AEP-API-FACTS.md §8.4): a streaming request carries at most 1 MB; DCS
-- answers 413 above it (read as 1 MiB, the emulator's reading). Profile's record and event
-- guardrails are aep.xdm's (entity_size_check), so the emulator and this say them alike.
M.REQUEST_LIMIT = 1048576

-- validate.size_problems(target, entity_text) -> array of lines (empty when within AEP's limits)
function M.size_problems(target, text)
  local out = {}
  local message = target.envelope(text)
  if #message > M.REQUEST_LIMIT then
    out[#out + 1] = string.format("Request payload of %d bytes exceeds the limit of %d bytes", #message, M.REQUEST_LIMIT)
  end
  local guardrail = require("aep.xdm").entity_size_check(text, target.class)
  if guardrail then out[#out + 1] = guardrail end
  return out
end

-- validate.violation_lines(violations) -> array of "#/pointer: message" lines: the innermost
-- violations of AEP's report, in its order and words (aep.xdm.describe)
function M.violation_lines(violations)
  local xdm = require "aep.xdm"
  local out = {}
  for l in tostring(xdm.describe(violations)):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- validate.check(target, entity) -> ok, problems (array of lines), size (bytes of the entity)
function M.check(target, entity)
  local ok, violations = target.validate(entity)
  local problems = {}
  if not ok then problems = M.violation_lines(violations) end
  local text = M.encode(entity)
  for _, p in ipairs(M.size_problems(target, text)) do problems[#problems + 1] = p end
  return #problems == 0, problems, #text, violations
end

-- ---------------------------------------------------------------------------------------------
-- The REPL's try

local Result = {}
Result.__index = Result
Result.__name = "aep.validate.Result"

function Result.__tostring(r)
  local term = require "aep.term"
  local out = {}
  local function paint(style, s) return term.paint(io.stdout, style, s) end
  if r.status == "skip" then
    out[1] = paint("yellow", "skipped") .. ": the mapping returned nil (aep stream counts this record as skipped)"
  elseif r.status == "error" then
    out[1] = paint("red", "invalid") .. ": " .. r.problems[1]
  elseif r.ok then
    out[1] = string.format("%s: %s entity of %s bytes for %s", paint("green", "valid"), r.kind or "XDM",
      term.count(r.size), r.target_name)
  else
    out[1] = string.format("%s: %d problem%s for %s", paint("red", "invalid"), #r.problems,
      #r.problems == 1 and "" or "s", r.target_name)
    for _, p in ipairs(r.problems) do out[#out + 1] = "  " .. p end
  end
  return table.concat(out, "\n")
end

-- validate.try(target, map, record [, ctx]) -> result {ok, status, entity, problems, size, violations}
-- (printed, it is the report)
function M.try(target, map, record, ctx)
  ctx = ctx or {}
  ctx.tenant = ctx.tenant or target.tenant
  ctx.dataset_id = ctx.dataset_id or target.dataset_id
  ctx.schema_id = ctx.schema_id or target.schema_id
  ctx.position = ctx.position or 1
  ctx.line = ctx.line or 1
  ctx.input = ctx.input or "(repl)"
  local r = setmetatable({ target_name = target.dataset_id and ("dataset " .. target.dataset_id) or
    (target.title and ("schema '" .. target.title .. "'")) or (target.source or "the schema") }, Result)
  local status, entity = M.map(map, record, ctx)
  r.status = status
  if status == "skip" then r.ok = true; r.problems = {}; return r end
  if status == "error" then r.ok = false; r.problems = { entity }; return r end
  r.entity = entity
  r.kind = target.kind
  r.ok, r.problems, r.size, r.violations = M.check(target, entity)
  return r
end

return M
