-- aep.emulator.schema_views: how the Schema Registry answers reads (docs/AEP-API-FACTS.md §2,
-- §3): the Accept variants (xed-id, xed, xed-full, xed-notext, xed-full-desc, ...),
-- listings with property filters, orderby and paging, and its 404. Shared by the schema and
-- descriptor services.
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"

local M = {}

local JSON_HEADERS = errors.JSON_HEADERS
local deepcopy = registry.deepcopy

-- ---------------------------------------------------------------------------------------------
-- Accept header: application/vnd.adobe.<kind>+json[; version=1]

local function parse_accept(value)
  if not value then return nil end
  local kind = value:match("application/vnd%.adobe%.(x[ed][dm][%w%-]*)%+json")
  if not kind then return nil end
  local version = value:match("version%s*=%s*\"?([%d%.]+)")
  return { kind = kind, version = version }
end

local SINGLE_KINDS = { xed = true, ["xed-full"] = true, ["xed-notext"] = true, ["xed-full-notext"] = true,
                       ["xed-full-desc"] = true, ["xed-deprecatefield"] = true }

local function pack_err(status, headers, body)
  return { status, headers, body, status = status, headers = headers, body = body }
end

local function accept_error(detail)
  return pack_err(errors.xdm("XDM-1006-400", "Bad Request", detail))
end

-- list_accept(req) -> "xed-id" | "xed" | nil, error response...
local function list_accept(req)
  local a = parse_accept(req.headers["accept"])
  if not a then
    return nil, accept_error("An Accept header such as application/vnd.adobe.xed-id+json is required")
  end
  if a.kind == "xed-id" then return "xed-id" end
  if a.kind:sub(1, 3) == "xed" then return "xed" end
  return nil, accept_error("Unsupported Accept header for a listing: " .. req.headers["accept"])
end

local function single_accept(req)
  local a = parse_accept(req.headers["accept"])
  if not a or not SINGLE_KINDS[a.kind] then
    return nil, accept_error("An Accept header such as application/vnd.adobe.xed+json; version=1 is required")
  end
  if not a.version then
    return nil, pack_err(errors.xdm("XDM-1007-400", "Bad Request",
      "The Accept header must carry a version, e.g. application/vnd.adobe.xed+json; version=1"))
  end
  if a.version:match("^(%d+)") ~= "1" then
    return nil, pack_err(errors.xdm("XDM-1008-400", "Bad Request", "Unknown major version " .. a.version))
  end
  return a.kind
end

local function strip_text(v)
  if type(v) ~= "table" then return v end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do
    if k ~= "title" and k ~= "description" then out[k] = strip_text(x)
    elseif type(x) == "table" then out[k] = strip_text(x) end -- a field named "title"
  end
  return out
end


-- ---------------------------------------------------------------------------------------------
-- Presenting resources

local function id_entry(doc)
  return { ["$id"] = doc["$id"], ["meta:altId"] = doc["meta:altId"], version = doc.version, title = doc.title }
end

local function present(ctx, doc, kind)
  if kind == "xed" then return doc end
  if kind == "xed-notext" then return strip_text(doc) end
  local full, rerr = registry.resolve(ctx.sandbox, doc)
  if not full then return errors.xdm("XDM-1012-400", "Bad Request", rerr) end
  if kind == "xed-full-desc" then
    full = deepcopy(full)
    local descs = json.array {}
    for _, d in ipairs(ctx.store.list(ctx.sandbox, "descriptor")) do
      if d["xdm:sourceSchema"] == doc["$id"] then descs[#descs + 1] = d end
    end
    full["meta:descriptors"] = descs
  end
  if kind == "xed-full-notext" then return strip_text(full) end
  return full
end

-- property filters: ?property=meta:intendedToExtend==ID, title!=X, or a bare name (exists)
local function filters(req)
  local list = req.query_all and req.query_all.property or (req.query.property and { req.query.property })
  local out = {}
  for _, p in ipairs(list or {}) do
    for item in p:gmatch("[^,]+") do
      local name, op, value = item:match("^%s*([^=!<>~]+)%s*([=!]=)%s*(.-)%s*$")
      if name then out[#out + 1] = { name = name, op = op, value = value }
      else out[#out + 1] = { name = item:match("^%s*(.-)%s*$"), op = "exists" } end
    end
  end
  return out
end

local function matches(doc, fs)
  for _, f in ipairs(fs) do
    local v = doc[f.name]
    if f.op == "exists" then
      if v == nil then return false end
    else
      local hit = false
      if type(v) == "table" then
        for _, x in ipairs(v) do if tostring(x) == f.value then hit = true end end
      elseif v ~= nil then
        hit = tostring(v) == f.value
      end
      if (f.op == "==") ~= hit then return false end
    end
  end
  return true
end

local function listing(ctx, req, docs)
  local kind, err = list_accept(req)
  if not kind then return err end
  local fs = filters(req)
  local selected = {}
  for _, d in ipairs(docs) do
    if matches(d, fs) then selected[#selected + 1] = d end
  end
  if req.query.orderby then
    local key = req.query.orderby:gsub("^[+-]", "")
    local desc = req.query.orderby:sub(1, 1) == "-"
    table.sort(selected, function(a, b)
      local x, y = tostring(a[key] or ""), tostring(b[key] or "")
      if desc then return x > y end
      return x < y
    end)
  end
  local limit = math.min(tonumber(req.query.limit) or 300, 300)
  local start = tonumber(req.query.start) or 0
  local results = json.array {}
  for i = start + 1, math.min(#selected, start + limit) do
    results[#results + 1] = kind == "xed-id" and id_entry(selected[i]) or selected[i]
  end
  local nxt = (start + limit < #selected) and tostring(start + limit) or json.null
  local links = {}
  if nxt ~= json.null then
    links.next = { href = req.path .. "?start=" .. nxt .. "&limit=" .. limit }
  end
  return 200, JSON_HEADERS, {
    results = results,
    _page = { orderby = req.query.orderby or "", next = nxt, count = #results },
    _links = links,
  }
end

local function not_found(what, id)
  return errors.xdm("XDM-1010-404", "Not Found",
    string.format("The requested %s '%s' was not found", what, tostring(id)))
end

M.parse_accept = parse_accept
M.single_accept = single_accept
M.present = present
M.listing = listing
M.not_found = not_found

return M
