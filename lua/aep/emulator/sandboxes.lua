-- aep.emulator.sandboxes: the Sandbox API (help/sandboxes/api/sandboxes.md, sandbox.yaml) over the
-- sandboxes the emulator knows (store.sandbox_names(): prod, those created here or with
-- POST /emulator/sandboxes, and any holding resources).
--   GET  /data/foundation/sandbox-management/                      the sandboxes available to the caller
--   GET  /data/foundation/sandbox-management/sandboxTypes          {"sandboxTypes": [...]}
--   GET  /data/foundation/sandbox-management/sandboxes             {"sandboxes": [...], _page, _links}
--   POST /data/foundation/sandbox-management/sandboxes             {"name", "title", "type"} -> 202
--   GET  /data/foundation/sandbox-management/sandboxes/{name}      one sandbox
--
-- A sandbox's title, type and creation time are kept in meta `sandbox.docs` (a JSON object by
-- name), so they survive a restart and /emulator/reset, as the sandboxes themselves do. A
-- sandbox created here exists at once: the create answer says "creating" (as the guide's example
-- does) and every later read says "active" (AEP takes ~30 s to provision; the emulator has
-- nothing to provision). Dates are ISO 8601 (the spec's date-time; the guide's examples print
-- "2019-09-04 04:57:24"). `eTag` is spelled as the guide's examples spell it.
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local ids = require "aep.emulator.ids"

local M = {}

local BASE = "/data/foundation/sandbox-management"
local JSON_HEADERS = errors.JSON_HEADERS
local REGION = "VA7"
local META = "sandbox.docs"
local EPOCH_ISO = "2019-01-01T00:00:00.000Z" -- prod's creation date: the org's default sandbox

local function iso(ms)
  return os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000) .. string.format(".%03dZ", ms % 1000)
end

local function docs(store)
  local t = json.decode(store.meta_get(META) or "{}")
  return type(t) == "table" and t or {}
end

local function remember(store, name, doc)
  local all = docs(store)
  all[name] = doc
  store.meta_put(META, json.encode(all))
end

local function title_of(name)
  if name == "prod" then return "Production" end
  return (name:gsub("^%l", string.upper))
end

-- sandboxes.view(store, name) -> the documented sandbox object, or nil when unknown
function M.view(store, name)
  if not store.sandbox_exists(name) then return nil end
  local d = docs(store)[name] or {}
  local created = d.createdDate or EPOCH_ISO
  return {
    name = name,
    title = d.title or title_of(name),
    state = "active",
    type = d.type or (name == "prod" and "production" or "development"),
    region = REGION,
    isDefault = name == "prod",
    eTag = d.eTag or 1,
    createdDate = created,
    lastModifiedDate = d.lastModifiedDate or created,
    createdBy = d.createdBy or "",
    modifiedBy = d.createdBy or "",
  }
end

local function problem(status, code, title)
  return errors.problem(status, title, title, "http://ns.adobe.com/aep/errors/" .. code)
end

local function int_query(q, name, default)
  local v = q[name]
  if v == nil or v == "" then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then return nil end
  return n
end

-- GET /sandboxes and GET / : limit/offset as the guide's request shows (default limit 50)
local function listing(req, ctx)
  local q = req.query or {}
  local limit, offset = int_query(q, "limit", 50), int_query(q, "offset", 0)
  if not limit or not offset or limit == 0 then
    return problem(400, "SMS-1001-400", "limit and offset must be non-negative integers (limit at least 1)")
  end
  local names = ctx.store.sandbox_names()
  local out = json.array {}
  for i = offset + 1, math.min(#names, offset + limit) do out[#out + 1] = M.view(ctx.store, names[i]) end
  local base = BASE .. "/sandboxes"
  local links = { page = { href = string.format("%s?offset=%d&limit=%d", base, offset, limit), templated = false } }
  if offset + limit < #names then
    links.next = { href = string.format("%s?offset=%d&limit=%d", base, offset + limit, limit), templated = false }
  end
  return 200, JSON_HEADERS, { sandboxes = out, _page = { limit = limit, count = #out }, _links = links }
end

local function types(req, ctx)
  return 200, JSON_HEADERS, { sandboxTypes = json.array {
    { id = "development", title = "Development" },
    { id = "production", title = "Production" },
  } }
end

local function get(req, ctx)
  local v = M.view(ctx.store, req.params.name)
  if not v then
    return problem(404, "SMS-1004-404", "Sandbox " .. req.params.name .. " not found")
  end
  return 200, JSON_HEADERS, v
end

local TYPES = { development = true, production = true }

local function create(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  if type(body) ~= "table" or json.is_array(body) then
    return problem(400, "SMS-1002-400", 'The request body must be a JSON object {"name", "title", "type"}')
  end
  local name, title, kind = body.name, body.title, body.type
  if type(name) ~= "string" or not name:match("^[a-z][a-z0-9%-]*$") or #name > 256 then
    return problem(400, "SMS-1002-400",
      "name is required: lowercase letters, digits and hyphens, starting with a letter (no spaces or special characters)")
  end
  if type(title) ~= "string" or title == "" then return problem(400, "SMS-1002-400", "title is required") end
  if type(kind) ~= "string" or not TYPES[kind] then
    return problem(400, "SMS-1002-400", "type must be development or production")
  end
  if ctx.store.sandbox_exists(name) then
    return problem(409, "SMS-1003-409", "Sandbox " .. name .. " already exists")
  end
  local now = iso(ids.now_ms())
  ctx.store.add_sandbox(name)
  remember(ctx.store, name, { title = title, type = kind, createdDate = now, lastModifiedDate = now, eTag = 1 })
  return 202, JSON_HEADERS, { name = name, title = title, state = "creating", type = kind, region = REGION }
end

function M.install(app)
  local o = { auth = "platform" }
  app:route("GET", BASE .. "/", listing, o)
  app:route("GET", BASE .. "/sandboxTypes", types, o)
  app:route("GET", BASE .. "/sandboxes", listing, o)
  app:route("POST", BASE .. "/sandboxes", create, { auth = "platform", body = "json" })
  app:route("GET", BASE .. "/sandboxes/:name", get, o)
end

return M
