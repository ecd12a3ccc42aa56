-- aep.dataprep_api: the Data Prep API (/data/foundation/conversion): mapping sets as AEP stores
-- them (help/data-prep/api/mapping-set.md, ../shared/reference/openapi/data-prep.yaml), so a
-- mapping set developed as a file is the one deployed, and a deployed one can be fetched to a file.
--
--   dataprep_api.list(c [, {limit=, start=, name=}]) -> sets (newest update first)
--   dataprep_api.get(c, id [, version]) -> set | nil
--   dataprep_api.create(c, set) -> {id, version, createdDate, ...}
--   dataprep_api.update(c, id, set) -> the new version's answer
--   dataprep_api.validate(c, set) -> {validationResponse = {...}}
--   dataprep_api.for_file(set) -> the set without the server's bookkeeping (id, dates, versions)
--
-- A refused create or update raises the aep.platform error; its `report.validationResponse`
-- holds one entry per mapping (status, errors: Data Prep's TransformErrorInfo).
local platform = require "aep.platform"

local M = {}

M.BASE = "/data/foundation/conversion"

local enc = platform.urlencode

-- dataprep_api.list(c [, o]) -> sets: every page (limit per page, default 100)
function M.list(c, o)
  o = o or {}
  local limit = o.limit or 100
  local out = {}
  local start = o.start or 0
  for _ = 1, 1000 do
    local query = { limit = tostring(limit), start = tostring(start) }
    if o.name then query.name = o.name end
    local doc = c:get(M.BASE .. "/mappingSets", { query = query }).json
    local data = type(doc) == "table" and type(doc.data) == "table" and doc.data or {}
    for _, s in ipairs(data) do out[#out + 1] = s end
    if #data < limit or o.one_page then break end
    start = start + #data
  end
  return out
end

-- dataprep_api.get(c, id [, version]) -> set | nil (404)
function M.get(c, id, version)
  local resp = c:get(M.BASE .. "/mappingSets/" .. enc(id), {
    query = version and { version = tostring(version) } or nil, allow = { [404] = true } })
  if resp.status == 404 then return nil end
  return resp.json
end

-- dataprep_api.create(c, set) -> answer {id, version, ...}
function M.create(c, set)
  return c:post(M.BASE .. "/mappingSets", { json = set }).json
end

-- dataprep_api.update(c, id, set) -> answer (the new version)
function M.update(c, id, set)
  return c:put(M.BASE .. "/mappingSets/" .. enc(id), { json = set }).json
end

-- dataprep_api.validate(c, set) -> {validationResponse = {...}} (200 even when mappings fail)
function M.validate(c, set)
  return c:post(M.BASE .. "/mappingSets/validate", { json = set, idempotent = true }).json
end

-- What the server adds to a stored set and its mappings: left out of a file, so the file can be
-- deployed again (elsewhere too) as it is.
local SET_BOOKKEEPING = { "id", "version", "createdDate", "modifiedDate", "createdBy", "modifiedBy",
  "createdAt", "updatedAt", "imsOrgId", "sandboxId", "sandboxName", "etag" }
local MAPPING_BOOKKEEPING = { "id", "version", "createdDate", "modifiedDate", "createdBy", "modifiedBy",
  "sourceAttribute", "destinationXdmPath" }

-- dataprep_api.for_file(set) -> a copy without the server's bookkeeping
function M.for_file(set)
  local json = require "aep.json"
  local copy = json.decode(json.encode(set))
  for _, k in ipairs(SET_BOOKKEEPING) do copy[k] = nil end
  -- what the server fills in with its defaults, or repeats from xdmSchema
  for _, k in ipairs({ "outputSchema", "schemaRef" }) do
    local ref = type(copy[k]) == "table" and (copy[k].schemaRef or copy[k])
    if type(ref) == "table" and (ref.id == copy.xdmSchema or copy.xdmSchema == nil) then
      copy.xdmSchema = copy.xdmSchema or ref.id
      copy[k] = nil
    end
  end
  if copy.strictMapping == false then copy.strictMapping = nil end
  if copy.allowNullValues == false then copy.allowNullValues = nil end
  if copy.status == "PUBLISHED" then copy.status = nil end
  copy.supportVersion = nil
  for _, m in ipairs(type(copy.mappings) == "table" and copy.mappings or {}) do
    -- the stored shape repeats source/destination as sourceAttribute/destinationXdmPath
    if m.source == nil then m.source = m.sourceAttribute end
    if m.destination == nil then m.destination = m.destinationXdmPath end
    for _, k in ipairs(MAPPING_BOOKKEEPING) do m[k] = nil end
    if m.identity == false then m.identity = nil end
    if m.primaryIdentity == false then m.primaryIdentity = nil end
  end
  return copy
end

return M
