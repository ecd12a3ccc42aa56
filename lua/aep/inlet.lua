-- aep.inlet: the legacy streaming inlet API (/data/core/edge/inlet) and Profile's custom event
-- types (/data/core/ups/config/eventTypes), as the collection's folder 0 uses them.
-- Today's path is a Flow Service connection (aep.flows); `aep run ... --legacy-inlet` uses these.
--
--   inlet.create(c, {name=, source_id=, authenticated=}) -> {inletId, inletUrl, sourceId, ...}
--   inlet.list(c) -> inlets;  inlet.find_by_name(c, name);  inlet.get(c, id);  inlet.delete(c, id)
--   inlet.create_event_type(c, {id=, title=, description=, org=}) -> event type
--   inlet.list_event_types(c);  inlet.find_event_type(c, id);  inlet.delete_event_type(c, id)
local platform = require "aep.platform"

local M = {}

M.BASE = "/data/core/edge/inlet"
M.EVENT_TYPES = "/data/core/ups/config/eventTypes"

local enc = platform.urlencode

local function list_of(doc)
  if type(doc) ~= "table" then return {} end
  for _, k in ipairs({ "data", "items", "results", "children" }) do
    if type(doc[k]) == "table" then return doc[k] end
  end
  if doc[1] then return doc end
  return {}
end

-- inlet.create(c, o) -> inlet {inletId, inletUrl, sourceId, ...}
function M.create(c, o)
  return c:post(M.BASE, { json = {
    name = o.name, description = o.description or "Collects streaming data",
    sourceId = o.source_id or o.name, dataType = "xdm",
    authenticationRequired = o.authenticated and true or false,
  } }).json
end

-- inlet.list(c) -> array of inlets
function M.list(c)
  return list_of(c:get(M.BASE).json)
end

-- inlet.get(c, id) -> inlet | nil
function M.get(c, id)
  local resp = c:get(M.BASE .. "/" .. enc(id), { allow = { [404] = true } })
  if resp.status == 404 then return nil end
  return resp.json
end

-- inlet.find_by_name(c, name) -> inlet | nil
function M.find_by_name(c, name)
  for _, it in ipairs(M.list(c)) do
    if type(it) == "table" and (it.name == name or it.inletName == name) then return it end
  end
  return nil
end

-- inlet.delete(c, id) -> true (404 included)
function M.delete(c, id)
  c:delete(M.BASE .. "/" .. enc(id), { allow = { [404] = true } })
  return true
end

-- inlet.create_event_type(c, {id, title, description, org}) -> event type
function M.create_event_type(c, o)
  return c:post(M.EVENT_TYPES, { json = {
    id = o.id, imsOrgId = o.org or c.cfg:get("IMS_ORG"), title = o.title,
    description = o.description or "", global = o.global ~= false,
  } }).json
end

-- inlet.list_event_types(c) -> array of event types
function M.list_event_types(c)
  return list_of(c:get(M.EVENT_TYPES).json)
end

-- inlet.find_event_type(c, id) -> event type | nil
function M.find_event_type(c, id)
  for _, et in ipairs(M.list_event_types(c)) do
    if type(et) == "table" and et.id == id then return et end
  end
  return nil
end

-- inlet.delete_event_type(c, id) -> true (404 included) | false when the server offers no
-- DELETE for event types (405; Adobe documents none)
function M.delete_event_type(c, id)
  local resp = c:delete(M.EVENT_TYPES .. "/" .. enc(id), { allow = { [404] = true, [405] = true } })
  return resp.status ~= 405
end

return M
