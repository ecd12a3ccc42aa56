-- aep.emulator.errors: the error shapes AEP answers with (docs/AEP-API-FACTS.md §2, §10.1).
-- Every function returns status, headers, body (a table the router encodes), ready to `return`.
local json = require "aep.json"
local host = require "aep.host"
local crypto = require "aep.crypto"

local M = {}

local JSON_HEADERS = { ["Content-Type"] = "application/json" }
local PROBLEM_HEADERS = { ["Content-Type"] = "application/problem+json" }
M.JSON_HEADERS = JSON_HEADERS

local function iso_now()
  local t = host.now()
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%03dZ", math.floor((t % 1) * 1000))
end
M.iso_now = iso_now

-- Gateway header/auth errors: {"error_code":"403010","message":"..."}.
M.GATEWAY = {
  token_missing = { 401, "403010", "Oauth token is missing." },
  token_invalid = { 401, "401013", "Oauth token is not valid" },
  api_key_missing = { 403, "403000", "Api Key is required" },
  api_key_invalid = { 403, "403003", "Api Key is invalid" },
  org_missing = { 400, "400003", "Missing header" },
  org_wrong = { 403, "403027", "User region is missing" },
  not_entitled = { 403, "403025", "Profile is not valid" },
}

-- errors.gateway(name) -> status, headers, {error_code, message}
function M.gateway(name)
  local e = assert(M.GATEWAY[name], name)
  return e[1], JSON_HEADERS, { error_code = e[2], message = e[3] }
end

-- errors.problem(status, title, detail [, type_uri [, extra]]) -> RFC 7807-style problem details
function M.problem(status, title, detail, type_uri, extra)
  local body = { type = type_uri or ("http://ns.adobe.com/aep/errors/" .. tostring(status)),
                 title = title, status = status, detail = detail }
  if extra then for k, v in pairs(extra) do body[k] = v end end
  return status, PROBLEM_HEADERS, body
end

-- errors.xdm(code, title, detail [, sub_errors]) -> Schema Registry error, e.g. code "XDM-1521-400"
function M.xdm(code, title, detail, sub_errors)
  local status = tonumber(code:match("%-(%d%d%d)$")) or 400
  return status, PROBLEM_HEADERS, {
    type = "http://ns.adobe.com/aep/errors/" .. code,
    title = title,
    status = status,
    report = {
      registryRequestId = crypto.uuid4(),
      timestamp = iso_now(),
      ["detailed-message"] = detail,
      ["sub-errors"] = json.array(sub_errors or {}),
    },
    detail = detail,
  }
end

-- errors.ims(status, error, description) -> IMS's {"error":..., "error_description":...}
function M.ims(status, err, description)
  return status, JSON_HEADERS, { error = err, error_description = description }
end

-- errors.bad_json(service, message) -> 400 for a body that is not valid JSON, in the service's shape
function M.bad_json(service, message)
  local detail = "Invalid JSON in the request body: " .. tostring(message)
  if service == "schemas" then
    return M.xdm("XDM-1000-400", "Bad Request", detail)
  elseif service == "identity" then
    return M.problem(400, "Bad Request", detail, "http://ns.adobe.com/aep/errors/IDENTITY-400",
      { error = "INVALID_REQUEST", timestamp = iso_now(), report = { message = detail } })
  end
  return M.problem(400, "Bad Request", detail, "http://ns.adobe.com/aep/errors/" .. (service or "platform") .. "-400")
end

-- errors.content_type() -> 400 BadRequestError for a missing or unusable Content-Type
function M.content_type()
  return M.problem(400, "BadRequestError", "A valid content-type must be specified",
    "http://ns.adobe.com/aep/errors/BadRequestError")
end

function M.not_found(detail)
  return M.problem(404, "Not Found", detail or "The requested resource does not exist")
end

function M.method_not_allowed(allowed)
  local status, _, body = M.problem(405, "Method Not Allowed",
    "Use one of: " .. table.concat(allowed, ", "))
  return status, { ["Content-Type"] = "application/problem+json", Allow = table.concat(allowed, ", ") }, body
end

return M
