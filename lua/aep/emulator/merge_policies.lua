-- aep.emulator.merge_policies: Real-Time Customer Profile merge policies, read side
-- (help/profile/api/merge-policies.md, profile.yaml).
--   GET  /data/core/ups/config/mergePolicies            list (schema.name, default, limit, start)
--   GET  /data/core/ups/config/mergePolicies/{id}       one
--   POST /data/core/ups/config/mergePolicies/bulk-get   {"ids": [{"id": ...}]} -> 207 {"results": {...}}
--
-- Each sandbox has the one policy the emulator merges by: the default Profile merge policy, with
-- identity stitching on the private graph (pdg) and timestamp-ordered attributes, which is what
-- profiles.lua does (records sharing an identity form one profile, later records win). Its id is
-- derived from the org and the sandbox, so it is stable across restarts and /emulator/reset.
-- merge_policies.find(ctx, id) lets the Profile lookups honour `mergePolicyId`.
--
-- Unknown ids (Adobe documents 404 with no body): 404 application/json {"statusCode": "404",
-- "title", "status", "detail", "type": ".../UPS-1003-404"}, the NotFoundError shape of profile.yaml
-- plus the problem fields the emulator's other Profile errors carry.
local json = require "aep.json"
local crypto = require "aep.crypto"
local errors = require "aep.emulator.errors"

local M = {}

local BASE = "/data/core/ups/config/mergePolicies"
local JSON_HEADERS = errors.JSON_HEADERS
local UPDATE_EPOCH = 1546300800 -- the default policy has never been changed: the standard namespaces' epoch

local function org_id(ctx)
  local org = ctx.org or (ctx.app and ctx.app.org) or {}
  return org.org_id or org.id or ""
end

-- merge_policies.default_id(ctx) -> the sandbox's default policy id (a UUID-shaped digest)
function M.default_id(ctx)
  local h = crypto.sha256_hex("merge-policy\0" .. org_id(ctx) .. "\0" .. (ctx.sandbox or "prod"))
  return string.format("%s-%s-4%s-a%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), h:sub(18, 20), h:sub(21, 32))
end

-- merge_policies.default(ctx) -> the sandbox's default policy object
function M.default(ctx)
  local sandbox = ctx.sandbox or "prod"
  return {
    id = M.default_id(ctx),
    name = "Default Timebased",
    imsOrgId = org_id(ctx),
    sandbox = { sandboxId = crypto.sha256_hex("sandbox\0" .. sandbox):sub(1, 32), sandboxName = sandbox,
                type = sandbox == "prod" and "production" or "development", default = sandbox == "prod" },
    schema = { name = "_xdm.context.profile" },
    version = 1,
    identityGraph = { type = "pdg" },
    attributeMerge = { type = "timestampOrdered" },
    isActiveOnEdge = false,
    default = true,
    updateEpoch = UPDATE_EPOCH,
  }
end

-- merge_policies.find(ctx, id) -> policy | nil
function M.find(ctx, id)
  if id == M.default_id(ctx) then return M.default(ctx) end
  return nil
end

-- merge_policies.not_found(id) -> status, headers, body
function M.not_found(id)
  return 404, JSON_HEADERS, { type = "http://ns.adobe.com/aep/errors/UPS-1003-404", title = "Not Found",
    status = 404, statusCode = "404", detail = "Merge policy " .. tostring(id) .. " not found in this sandbox" }
end

local function list(req, ctx)
  local q = req.query or {}
  local p = M.default(ctx)
  local keep = true
  if q["schema.name"] and q["schema.name"] ~= "" and q["schema.name"] ~= p.schema.name then keep = false end
  if q.default == "false" then keep = false end
  if q["identityGraph.type"] and q["identityGraph.type"] ~= p.identityGraph.type then keep = false end
  if q["attributeMerge.type"] and q["attributeMerge.type"] ~= p.attributeMerge.type then keep = false end
  local start = math.tointeger(tonumber(q.start or "0")) or 0
  local children = json.array {}
  if keep and start == 0 then children[1] = p end
  return 200, JSON_HEADERS, { _page = { count = #children, totalCount = #children, pageSize = #children },
                              children = children, _links = {} }
end

local function get(req, ctx)
  local p = M.find(ctx, req.params.id)
  if not p then return M.not_found(req.params.id) end
  return 200, JSON_HEADERS, p
end

local function bulk_get(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  local list_ids = type(body) == "table" and body.ids
  if type(list_ids) ~= "table" or list_ids[1] == nil then
    return 400, JSON_HEADERS, { message = 'The body must be {"ids": [{"id": "<merge policy id>"}, ...]}',
                                statusCode = "400" }
  end
  local results = {}
  for _, item in ipairs(list_ids) do
    local id = type(item) == "table" and item.id
    if type(id) == "string" then
      local p = M.find(ctx, id)
      results[id] = p or { id = id, status = 404, statusCode = "404", detail = "Merge policy " .. id .. " not found" }
    end
  end
  return 207, JSON_HEADERS, { results = results }
end

function M.install(app)
  local o = { auth = "platform" }
  app:route("GET", BASE, list, o)
  app:route("GET", BASE .. "/:id", get, o)
  app:route("POST", BASE .. "/bulk-get", bulk_get, { auth = "platform", body = "json" })
end

return M
