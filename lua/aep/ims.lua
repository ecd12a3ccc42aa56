-- aep.ims: Adobe IMS authentication and the access-token cache.
--
--   local session = ims.new(cfg, { client = platform_client })
--   session:token()        -- a valid access token, fetched or renewed as needed
--   session:invalidate()   -- forget it (aep.platform calls this on a 401, then asks again)
--
-- Two ways to get a token:
--   * OAuth Server-to-Server (default): POST {IMS}/ims/token/v3, form-encoded grant_type=
--     client_credentials, client_id, client_secret, scope. expires_in is in SECONDS.
--   * Legacy Service Account (JWT, --auth jwt): an RS256 JWT signed natively (aep.crypto) with the
--     collection's claims (exp, iss = IMS_ORG, sub = TECHNICAL_ACCOUNT_ID,
--     aud = https://{IMS}/c/{API_KEY}, one "https://{IMS}/s/{metascope}": true claim for every
--     META_SCOPE entry), exchanged at POST {IMS}/ims/exchange/jwt. expires_in is in MILLISECONDS.
-- Tokens live in memory only (never on disk), are registered as secrets with aep.log, and are
-- renewed before they expire. Adobe recommends a JWT lifetime of minutes, not the collection's
-- 24 h 10 min: the JWT is only a one-time proof for the exchange.
local json = require "aep.json"
local log = require "aep.log"
local errors = require "aep.errors"
local config = require "aep.config"

local M = {}

M.JWT_LIFETIME = 300 -- seconds
M.RENEW_MARGIN = 300 -- renew when less than this is left (or a tenth of the lifetime if shorter)

local Session = {}
Session.__index = Session

local function now_seconds(self)
  return self.now and self.now() or os.time()
end

-- ims.new(cfg, opts) -> session. opts: client (aep.platform client, for retries and the trace),
-- now() (seconds), crypto (module with sign_rs256, base64url_encode)
function M.new(cfg, opts)
  opts = opts or {}
  local self = setmetatable({}, Session)
  self.cfg = cfg
  self.client = opts.client
  if not self.client then error("ims.new: opts.client (an aep.platform client) is required", 2) end
  self.now = opts.now or self.client.now
  self.crypto = opts.crypto
  self.mode = cfg:auth_mode()
  self.token_value = nil
  self.expires_at = nil
  self.renewals = 0
  return self
end

-- application/x-www-form-urlencoded body from {{k, v}, ...}, RFC 3986 unreserved characters kept
-- (platform.form; repeated here so that aep.ims needs nothing of aep.platform)
local function form(fields)
  local parts = {}
  for _, kv in ipairs(fields) do
    parts[#parts + 1] = (tostring(kv[1]):gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
      .. "=" .. (tostring(kv[2]):gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
  end
  return table.concat(parts, "&")
end

local function crypto(self)
  self.crypto = self.crypto or require("aep.crypto")
  return self.crypto
end

local function need(cfg, names)
  local missing = {}
  for _, n in ipairs(names) do
    if cfg:get(n) == nil then missing[#missing + 1] = n end
  end
  if #missing > 0 then
    error(errors.new({ kind = "config", code = "CONFIG",
      message = "cannot authenticate: missing " .. table.concat(missing, ", ") ..
        " (see `aep config`; set them in the --env file or as AEP_<NAME>)" }), 0)
  end
end

-- ims.jwt_claims(cfg, now) -> claims table and an array of its keys in the collection's order
function M.jwt_claims(cfg, now)
  local host = cfg:ims_host()
  local claims = {
    exp = math.floor(now + M.JWT_LIFETIME),
    iss = cfg:get("IMS_ORG"),
    sub = cfg:get("TECHNICAL_ACCOUNT_ID"),
    aud = "https://" .. host .. "/c/" .. cfg:get("API_KEY"),
  }
  local order = { "exp", "iss", "sub", "aud" }
  for _, scope in ipairs(cfg:meta_scopes()) do
    local key = scope:match("^https?://") and scope or ("https://" .. host .. "/s/" .. scope)
    if claims[key] == nil then
      claims[key] = true
      order[#order + 1] = key
    end
  end
  return claims, order
end

local function encode_claims(claims, order)
  local parts = {}
  for _, k in ipairs(order) do
    local v = claims[k]
    local text
    if math.type(v) == "integer" then text = string.format("%d", v) else text = json.encode(v) end
    parts[#parts + 1] = json.encode(k) .. ":" .. text
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- ims.build_jwt(cfg, now [, crypto]) -> compact JWS (RS256) | raises on a bad key
function M.build_jwt(cfg, now, c)
  c = c or require("aep.crypto")
  local claims, order = M.jwt_claims(cfg, now)
  local header = c.base64url_encode('{"alg":"RS256"}')
  local payload = c.base64url_encode(encode_claims(claims, order))
  local signing_input = header .. "." .. payload
  local sig, err, code = c.sign_rs256(cfg:get("PRIVATE_KEY"), signing_input)
  if not sig then
    error(errors.new({ kind = "config", code = code or "BAD_KEY",
      message = "cannot sign the JWT with PRIVATE_KEY: " .. log.redact(tostring(err)) ..
        " (expected a PEM private key, PKCS#1 or PKCS#8)" }), 0)
  end
  local jwt = signing_input .. "." .. c.base64url_encode(sig)
  log.add_secret(jwt)
  return jwt, claims
end

local function auth_error(e, what)
  if errors.is_error(e) and e.kind == "http" then
    e.kind = "auth"
    local hint = "IMS refused the " .. what
    if e.code == "invalid_client" then
      hint = hint .. ": check API_KEY and CLIENT_SECRET"
    elseif e.code == "invalid_scope" then
      hint = hint .. ": check " .. (what == "JWT" and "META_SCOPE" or "SCOPES")
    elseif e.code == "invalid_signature" then
      hint = hint .. ": PRIVATE_KEY does not match the certificate of the credential"
    elseif e.code == "invalid_token" then
      hint = hint .. ": the JWT was rejected (expired clock? wrong claims?)"
    end
    e.hint = hint
  end
  return e
end

function Session:_oauth()
  local cfg = self.cfg
  need(cfg, { "IMS", "API_KEY", "CLIENT_SECRET" })
  local url = cfg:ims_url() .. "/ims/token/v3"
  local body = form({
    { "grant_type", "client_credentials" },
    { "client_id", cfg:get("API_KEY") },
    { "client_secret", cfg:get("CLIENT_SECRET") },
    { "scope", cfg:scopes() },
  })
  local ok, resp = pcall(self.client.send, self.client, {
    method = "POST", url = url, body = body, idempotent = true, auth = false, timeout = 30,
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Accept"] = "application/json" },
  })
  if not ok then error(auth_error(resp, "client credentials"), 0) end
  return resp, 1 -- expires_in in seconds
end

function Session:_jwt()
  local cfg = self.cfg
  need(cfg, { "IMS", "IMS_ORG", "API_KEY", "CLIENT_SECRET", "TECHNICAL_ACCOUNT_ID", "PRIVATE_KEY" })
  local jwt = M.build_jwt(cfg, now_seconds(self), crypto(self))
  local url = cfg:ims_url() .. "/ims/exchange/jwt"
  local body = form({
    { "client_id", cfg:get("API_KEY") },
    { "client_secret", cfg:get("CLIENT_SECRET") },
    { "jwt_token", jwt },
  })
  local ok, resp = pcall(self.client.send, self.client, {
    method = "POST", url = url, body = body, idempotent = true, auth = false, timeout = 30,
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Accept"] = "application/json" },
  })
  if not ok then error(auth_error(resp, "JWT"), 0) end
  return resp, 0.001 -- expires_in in milliseconds
end

-- session:authenticate() -> token: always asks IMS for a new one
function Session:authenticate()
  local t0 = now_seconds(self)
  local resp, unit
  if self.mode == "jwt" then resp, unit = self:_jwt() else resp, unit = self:_oauth() end
  local doc = resp.json
  if type(doc) ~= "table" or type(doc.access_token) ~= "string" or doc.access_token == "" then
    error(errors.new({ kind = "auth", code = "BAD_IMS_ANSWER", status = resp.status,
      message = "IMS answered without an access_token" }), 0)
  end
  log.add_secret(doc.access_token)
  local lifetime = tonumber(doc.expires_in) and tonumber(doc.expires_in) * unit or 3600
  self.token_value = doc.access_token
  self.lifetime = lifetime
  self.expires_at = t0 + lifetime
  self.renewals = self.renewals + 1
  log.debug("IMS: new %s token, expires in %d s", self.mode == "jwt" and "JWT-exchanged" or "OAuth", math.floor(lifetime))
  return self.token_value
end

-- session:token() -> a token valid for a while yet (cached; renewed before expiry)
function Session:token()
  if self.token_value then
    local margin = math.min(M.RENEW_MARGIN, (self.lifetime or 0) / 10)
    if now_seconds(self) < self.expires_at - margin then return self.token_value end
    log.debug("IMS: token close to expiry, renewing")
  end
  return self:authenticate()
end

-- session:invalidate(): drop the cached token
function Session:invalidate()
  self.token_value = nil
  self.expires_at = nil
end

-- session:info() -> {mode=, expires_in=, renewals=} (no token)
function Session:info()
  return { mode = self.mode, expires_in = self.expires_at and math.floor(self.expires_at - now_seconds(self)) or nil,
           renewals = self.renewals }
end

M.split_list = config.split_list

return M
