-- aep.emulator.flow_updates: Flow Service updates and searches (flow-service.yaml;
-- help/sources/tutorials/api/update.md, update-dataflows.md; help/dataflows/api/...):
--   PATCH /flowservice/{connections,sourceConnections,targetConnections,flows}/:id
--         JSON Patch body ([{op: add|replace|remove, path, value}], op in any case), If-Match: the
--         object's current etag (a stale one answers 412, none 400) -> 200 {id, etag} (a new etag)
--   POST  /flowservice/flows/:id/action?op=enable|disable  (If-Match optional) -> 200 {id, etag};
--         the flow's `state` becomes "enabled" / "disabled"
--   POST  /flowservice/connections/search, /flowservice/flows/search {queryString, limit, count}
--         -> {items} | {count} (flow_query.lua: the property= expressions)
-- A connection's auth.params of the HTTP API (name, authenticationRequired) follow to its inlet.
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local flows = require "aep.emulator.flows"
local flow_query = require "aep.emulator.flow_query"
local ids = require "aep.emulator.ids"

local M = {}

local BASE = "/data/foundation/flowservice"
local KINDS = { connections = "connection", sourceConnections = "sourceConnection",
                targetConnections = "targetConnection", flows = "flow" }
-- fields the server owns: a patch cannot touch them
local OWNED = { id = true, etag = true, version = true, createdAt = true, updatedAt = true,
  createdBy = true, updatedBy = true, createdClient = true, updatedClient = true, sandboxId = true,
  sandboxName = true, imsOrgId = true, state = true, inheritedAttributes = true }

local function problem(status, title, detail)
  return errors.problem(status, title, detail, "https://ns.adobe.com/aep/errors/FLOW-" .. status)
end

local function new_etag() return "\"" .. ids.hex(8) .. "-0000-0200-0000-" .. ids.hex(6) .. "\"" end

local function strip(tag)
  tag = tostring(tag):gsub("^%s*W/", ""):gsub("^%s+", ""):gsub("%s+$", "")
  return (tag:gsub('^"(.*)"$', "%1"))
end

-- nil when If-Match names the current etag; else the error answer (required: 400 when absent)
local function precondition(req, doc, required)
  local h = req.headers and (req.headers["if-match"] or req.headers["If-Match"])
  if h == nil or h == "" then
    if not required then return nil end
    return problem(400, "Bad Request", "The If-Match header is required: send the object's current etag")
  end
  if strip(h) ~= strip(doc.etag) then
    return problem(412, "Precondition Failed", "If-Match " .. h .. " does not match the current etag " ..
      tostring(doc.etag) .. ": read the object again and retry with its etag")
  end
end

local function touch(ctx, doc)
  doc.etag = new_etag()
  doc.version = doc.etag
  doc.updatedAt = ids.now_ms()
  doc.updatedBy, doc.updatedClient = ctx.org.technical_account_id, ctx.org.client_id
end

-- the HTTP API connection's inlet follows its auth.params
local function sync_inlet(ctx, doc)
  local p = type(doc.auth) == "table" and type(doc.auth.params) == "table" and doc.auth.params
  if not (p and p.inletId) then return end
  local inlet = ctx.store.get(ctx.sandbox, "inlet", p.inletId)
  if not inlet then return end
  inlet.name = p.name or inlet.name
  inlet.inletName = inlet.name
  inlet.description = doc.description
  inlet.inletDescription = doc.description
  inlet.authenticationRequired = p.authenticationRequired == true
  inlet.modifiedDate = ids.now_ms()
  inlet.modifiedBy = ctx.org.technical_account_id
  ctx.store.put(ctx.sandbox, "inlet", inlet.inletId, inlet)
end

local function patch(kind)
  local patch_op = require("aep.emulator.schemas").patch_op
  return function(req, ctx)
    local old = ctx.store.get(ctx.sandbox, kind, req.params.id)
    if not old then return problem(404, "Not Found", kind .. " " .. req.params.id .. " was not found") end
    local body, err = req:json_body()
    if body == nil then return err end
    if type(body) ~= "table" or not json.is_array(body) or #body == 0 then
      return problem(400, "Bad Request", "The body must be a JSON Patch array: [{\"op\": \"replace\", \"path\": \"/name\", \"value\": ...}]")
    end
    local s, h, b = precondition(req, old, true)
    if s then return s, h, b end
    local doc = json.decode(json.encode(old))
    for i, op in ipairs(body) do
      if type(op) ~= "table" or type(op.op) ~= "string" or type(op.path) ~= "string" then
        return problem(400, "Bad Request", "patch operation " .. i .. " needs op and path")
      end
      local verb = op.op:lower()
      if verb ~= "add" and verb ~= "replace" and verb ~= "remove" then
        return problem(400, "Bad Request", "patch operation " .. i .. ": op must be add, replace or remove")
      end
      local top = op.path:match("^/([^/]+)")
      if top and OWNED[top] then
        return problem(400, "Bad Request", "patch operation " .. i .. ": " .. op.path .. " cannot be changed")
      end
      local ok, why = patch_op(doc, { op = verb, path = op.path, value = op.value })
      if not ok then return problem(400, "Bad Request", "patch operation " .. i .. ": " .. tostring(why)) end
    end
    if type(doc.name) ~= "string" or doc.name == "" then return problem(400, "Bad Request", "name is required") end
    local check = flows.CHECKS[kind]
    if check then
      s, h, b = check(ctx, doc)
      if s then return s, h, b end
    end
    touch(ctx, doc)
    ctx.store.transaction(function()
      ctx.store.put(ctx.sandbox, kind, doc.id, doc)
      if kind == "connection" then sync_inlet(ctx, doc) end
    end)
    flows.reindex(ctx.sandbox)
    return 200, errors.JSON_HEADERS, { id = doc.id, etag = doc.etag }
  end
end

local function action(req, ctx)
  local doc = ctx.store.get(ctx.sandbox, "flow", req.params.id)
  if not doc then return problem(404, "Not Found", "flow " .. req.params.id .. " was not found") end
  local op = tostring(req.query and req.query.op or ""):lower()
  if op ~= "enable" and op ~= "disable" then
    return problem(400, "Bad Request", "op must be enable or disable (got '" .. op .. "')")
  end
  local s, h, b = precondition(req, doc, false)
  if s then return s, h, b end
  doc.state = op == "enable" and "enabled" or "disabled"
  touch(ctx, doc)
  ctx.store.put(ctx.sandbox, "flow", doc.id, doc)
  flows.reindex(ctx.sandbox)
  return 200, errors.JSON_HEADERS, { id = doc.id, etag = doc.etag }
end

local function search(kind)
  return function(req, ctx)
    local body, err = req:json_body()
    if body == nil then return err end
    local filters, bad = flow_query.from_search(body)
    if not filters then return problem(400, "Bad Request", bad) end
    local docs = ctx.store.list(ctx.sandbox, kind)
    -- the inlet URL follows the emulator's current address, as in GET /connections
    for _, d in ipairs(docs) do
      local p = type(d.auth) == "table" and type(d.auth.params) == "table" and d.auth.params
      if p and p.inletId then p.inletUrl = (ctx.app.urls and ctx.app.urls.base or "") .. "/collection/" .. p.inletId end
    end
    return 200, errors.JSON_HEADERS, flow_query.answer(flow_query.select(docs, filters), body)
  end
end

function M.install(app)
  local o = { auth = "platform", body = "json" }
  for path, kind in pairs(KINDS) do
    app:route("PATCH", BASE .. "/" .. path .. "/:id", patch(kind), o)
  end
  app:route("POST", BASE .. "/flows/:id/action", action, { auth = "platform" })
  app:route("POST", BASE .. "/connections/search", search("connection"), o)
  app:route("POST", BASE .. "/flows/search", search("flow"), o)
end


return M
