-- aep.identity: Identity Service namespaces (/data/core/idnamespace). AEP serves it from a
-- regional host (platform-va7 / platform-nld2); set IDENTITY_GATEWAY for that, otherwise the
-- Platform gateway is used.
--
--   identity.list_namespaces(c) -> {{code=, id=, name=, idType=, custom=}, ...}
--   identity.find_namespace(c, code) -> namespace | nil   (code matched without regard to case)
--   identity.create_namespace(c, {name=, code=, idType=, description=}) -> namespace
--   identity.ensure_namespace(c, body) -> namespace, "found" | "created"
local platform = require "aep.platform"

local M = {}

M.BASE = "/data/core/idnamespace"

-- identity.list_namespaces(c) -> array of namespaces (standard and custom)
function M.list_namespaces(c)
  local doc = c:get(M.BASE .. "/identities", { base = "identity" }).json
  if type(doc) ~= "table" then return {} end
  if doc[1] == nil and type(doc.results) == "table" then doc = doc.results end
  return doc
end

-- identity.find_namespace(c, code) -> namespace | nil
function M.find_namespace(c, code)
  local want = tostring(code):lower()
  for _, ns in ipairs(M.list_namespaces(c)) do
    if type(ns) == "table" and type(ns.code) == "string" and ns.code:lower() == want then return ns end
  end
  return nil
end

-- identity.create_namespace(c, body) -> namespace (409 NAMESPACE_CODE_CONFLICT when taken)
function M.create_namespace(c, body)
  return c:post(M.BASE .. "/identities", { base = "identity", json = body }).json
end

-- identity.ensure_namespace(c, body) -> namespace, "found" | "created"
function M.ensure_namespace(c, body)
  local ns = M.find_namespace(c, body.code)
  if ns then return ns, "found" end
  local ok, res = pcall(M.create_namespace, c, body)
  if ok then return res, "created" end
  if platform.is_error(res) and (res.status == 409 or res.code == "OUTCOME_UNKNOWN") then
    ns = M.find_namespace(c, body.code)
    if ns then return ns, "found" end
  end
  error(res, 0)
end

return M
