-- aep.catalog: Catalog Service (/data/foundation/catalog): datasets and batch status.
--
--   catalog.create_dataset(c, body) -> dataset id   (AEP answers ["@/dataSets/{id}"])
--   catalog.dataset_body{name=, schema_id=, description=, profile = true} -> body
--   catalog.get_dataset(c, id) -> dataset (with .id) | nil
--   catalog.list_datasets(c [, {name = , properties = }]) -> {dataset, ...} (each with .id)
--   catalog.find_dataset_by_name(c, name) -> dataset | nil
--   catalog.enable_profile(c, id) -> true  (unifiedProfile + unifiedIdentity tags)
--   catalog.delete_dataset(c, id) -> true
--   catalog.get_batch(c, id) -> batch (with .id) | nil
--   catalog.list_batches(c, {dataset=, status=, created_after=, created_before=, limit=}) -> batches, newest first
local platform = require "aep.platform"
local json = require "aep.json"

local M = {}

M.BASE = "/data/foundation/catalog"
M.CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1"

local enc = platform.urlencode

-- catalog.id_from_ref("@/dataSets/abc") -> "abc"
function M.id_from_ref(ref)
  if type(ref) ~= "string" then return nil end
  return ref:match("^@/%a+/(.+)$") or ref
end

-- catalog.dataset_body{name, schema_id, description, profile} -> body for create_dataset
function M.dataset_body(o)
  local body = {
    name = o.name,
    description = o.description,
    schemaRef = { id = o.schema_id, contentType = o.content_type or M.CONTENT_TYPE },
    fileDescription = { persisted = true, containerFormat = "parquet", format = "parquet" },
  }
  if o.profile ~= false then
    body.tags = { unifiedIdentity = json.array({ "enabled:true" }), unifiedProfile = json.array({ "enabled:true" }) }
  end
  return body
end

-- catalog.create_dataset(c, body) -> dataset id
function M.create_dataset(c, body)
  local resp = c:post(M.BASE .. "/dataSets", { json = body })
  local doc = resp.json
  local ref = type(doc) == "table" and doc[1]
  local id = M.id_from_ref(ref)
  if not id and resp.headers and resp.headers.location then
    id = resp.headers.location:match("/dataSets/([^/?]+)")
  end
  if not id then
    error(platform.error({ kind = "aep", code = "BAD_ANSWER", status = resp.status,
      message = "Catalog created a dataset but answered no id", request = { method = "POST", url = M.BASE .. "/dataSets" } }), 0)
  end
  return id
end

-- Catalog answers objects keyed by id; give each value its id.
local function keyed(doc)
  local out = {}
  if type(doc) ~= "table" then return out end
  local keys = {}
  for k, v in pairs(doc) do if type(v) == "table" and type(k) == "string" and k:sub(1, 1) ~= "_" then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = doc[k]
    v.id = v.id or k
    out[#out + 1] = v
  end
  return out
end

-- catalog.get_dataset(c, id) -> dataset | nil
function M.get_dataset(c, id)
  local resp = c:get(M.BASE .. "/dataSets/" .. enc(id), { allow = { [404] = true } })
  if resp.status == 404 then return nil end
  local list = keyed(resp.json)
  for _, d in ipairs(list) do if d.id == id then return d end end
  return list[1]
end

-- catalog.list_datasets(c [, opts]) -> array of datasets; opts.name filters (server side where
-- supported, always client side), opts.properties limits the fields
function M.list_datasets(c, opts)
  opts = opts or {}
  local out, start, limit = {}, 0, 100
  for _ = 1, 1000 do
    local query = { { "limit", limit }, { "start", start } }
    if opts.name then query[#query + 1] = { "name", opts.name } end
    if opts.properties then query[#query + 1] = { "properties", opts.properties } end
    local page = keyed(c:get(M.BASE .. "/dataSets", { query = query }).json)
    for _, d in ipairs(page) do
      if opts.name == nil or d.name == opts.name then out[#out + 1] = d end
    end
    if #page < limit then break end
    start = start + limit
  end
  return out
end

-- catalog.find_dataset_by_name(c, name) -> dataset | nil
function M.find_dataset_by_name(c, name)
  return M.list_datasets(c, { name = name })[1]
end

-- catalog.is_profile_enabled(dataset) -> boolean
function M.is_profile_enabled(d)
  local tags = type(d) == "table" and d.tags
  local up = type(tags) == "table" and tags.unifiedProfile
  if type(up) ~= "table" then return false end
  for _, v in ipairs(up) do if tostring(v):match("^enabled:true") then return true end end
  return false
end

-- catalog.enable_profile(c, id) -> true
function M.enable_profile(c, id)
  c:patch(M.BASE .. "/dataSets/" .. enc(id), {
    json = { { op = "add", path = "/tags/unifiedProfile", value = json.array({ "enabled:true" }) },
             { op = "add", path = "/tags/unifiedIdentity", value = json.array({ "enabled:true" }) } },
    content_type = "application/json-patch+json", idempotent = true,
  })
  return true
end

-- catalog.delete_dataset(c, id) -> true (404 included)
function M.delete_dataset(c, id)
  c:delete(M.BASE .. "/dataSets/" .. enc(id), { allow = { [404] = true } })
  return true
end

-- catalog.get_batch(c, id) -> batch | nil
function M.get_batch(c, id)
  local resp = c:get(M.BASE .. "/batches/" .. enc(id), { allow = { [404] = true } })
  if resp.status == 404 then return nil end
  local doc = resp.json
  if type(doc) == "table" and doc.status and not doc[id] then
    doc.id = doc.id or id
    return doc
  end
  local list = keyed(doc)
  for _, b in ipairs(list) do if b.id == id then return b end end
  return list[1]
end

-- catalog.list_batches(c [, opts]) -> batches (each with .id), newest first. opts: dataset (id),
-- status ("failed" or "success,failed"), created_after / created_before (epoch ms, exclusive),
-- limit (at most this many; default 100). Catalog's filters (filter-data.md): dataSet, status,
-- createdAfter, createdBefore, orderBy=desc:created, limit (at most 100 a page), start.
function M.list_batches(c, opts)
  opts = opts or {}
  local want = opts.limit or 100
  local out, start = {}, 0
  for _ = 1, 1000 do
    local page_size = math.min(100, want - #out)
    if page_size <= 0 then break end
    local query = { { "orderBy", "desc:created" }, { "limit", page_size }, { "start", start } }
    if opts.dataset then query[#query + 1] = { "dataSet", opts.dataset } end
    if opts.status then query[#query + 1] = { "status", opts.status } end
    if opts.created_after then query[#query + 1] = { "createdAfter", math.floor(opts.created_after) } end
    if opts.created_before then query[#query + 1] = { "createdBefore", math.floor(opts.created_before) } end
    local page = keyed(c:get(M.BASE .. "/batches", { query = query }).json)
    for _, b in ipairs(page) do out[#out + 1] = b end
    if #page < page_size then break end
    start = start + #page
  end
  table.sort(out, function(a, b)
    local x, y = tonumber(a.created) or 0, tonumber(b.created) or 0
    if x ~= y then return x > y end
    return tostring(a.id) > tostring(b.id)
  end)
  return out
end

return M
