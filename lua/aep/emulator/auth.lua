-- aep.emulator.auth: IMS (OAuth S2S token v3 and the legacy JWT exchange), the token table, and the
-- Platform gateway's header checks (aep-api-facts.md §1, §2; errata: JWT exp window, audience).
-- Tokens are looked up by one hash-table access per request; they are persisted (as SHA-256
-- digests, never in clear) so that clients keep working across an emulator restart.
local crypto = require "aep.crypto"
local json = require "aep.json"
local host = require "aep.host"
local errors = require "aep.emulator.errors"

local M = {}

M.TOKEN_LIFETIME = 86400          -- seconds, as IMS
M.JWT_MAX_AHEAD = 25 * 3600       -- errata: exp up to 25 h ahead (the collection signs now + 87,000 s)
M.IMS_HOST = "ims-na1.adobelogin.com"

local ALLOWED_SCOPES = {}
for s in ("openid,AdobeID,read_organizations,additional_info.projectedProductContext,session," ..
          "additional_info.roles,additional_info.job_function,profile,email,read_pc.dma_tartan," ..
          "read_client_secret,manage_client_secrets,event_receiver_api"):gmatch("[^,]+") do
  ALLOWED_SCOPES[s] = true
end

local live = {}      -- token string -> record (hot path)
local by_hash = {}   -- sha256 hex -> record (loaded from the store, promoted to `live` on use)
local st_insert, st_expire

-- ---------------------------------------------------------------------------------------------
-- Forms: application/x-www-form-urlencoded and multipart/form-data (the collection's JWT call)

local function url_unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function parse_urlencoded(body, out)
  for pair in body:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k and k ~= "" then out[url_unescape(k)] = url_unescape(v) end
  end
  return out
end

local function parse_multipart(body, boundary, out)
  local delim = "--" .. boundary
  local pos = body:find(delim, 1, true)
  while pos do
    local start = pos + #delim
    if body:sub(start, start + 1) == "--" then break end
    local next_pos = body:find(delim, start, true)
    if not next_pos then break end
    local part = body:sub(start, next_pos - 1):gsub("^\r?\n", ""):gsub("\r?\n$", "")
    local head, value = part:match("^(.-)\r?\n\r?\n(.*)$")
    if head then
      local name = head:match('[Nn]ame="([^"]*)"') or head:match("[Nn]ame=([^;%s]+)")
      if name and not head:lower():find("content%-disposition:[^\n]*filename=") then out[name] = value end
    end
    pos = next_pos
  end
  return out
end

-- auth.parse_form(req) -> table of fields (query string first, body fields win)
function M.parse_form(req)
  local out = {}
  for k, v in pairs(req.query or {}) do out[k] = v end
  local body = req.body or ""
  if body == "" then return out end
  local ct = (req.headers["content-type"] or ""):lower()
  if ct:find("multipart/form-data", 1, true) then
    local boundary = (req.headers["content-type"]):match('[Bb]oundary="?([^";]+)"?')
    if boundary then parse_multipart(body, boundary, out) end
  else
    parse_urlencoded(body, out)
  end
  return out
end

-- ---------------------------------------------------------------------------------------------
-- Tokens

local function b64url_json(t) return crypto.base64url_encode(json.encode(t)) end

-- auth.issue(app, kind, scope) -> token, record   (kind: "oauth" | "jwt")
function M.issue(app, kind, scope)
  local org = app.org
  local now = host.now()
  local lifetime = M.TOKEN_LIFETIME
  local header = b64url_json { alg = "RS256", x5u = "ims_na1-key-at-1.cer", kid = "ims_na1-key-at-1", itt = "at" }
  local payload = b64url_json {
    id = crypto.uuid4(), type = "access_token", client_id = org.client_id,
    user_id = org.technical_account_id, as = "ims-na1", ctp = 0, sid = crypto.uuid4(),
    created_at = tostring(math.floor(now * 1000)), expires_in = tostring(lifetime * 1000),
    scope = scope or org.scopes,
  }
  local unsigned = header .. "." .. payload
  local token = unsigned .. "." .. crypto.base64url_encode(crypto.hmac_sha256(org.client_secret, unsigned))
  -- "tokens that expire early" (faults token_ttl): IMS still announces the full lifetime.
  local ttl = app.faults and app.faults.token_ttl and app.faults.token_ttl() or nil
  local record = {
    client_id = org.client_id, org_id = org.org_id, kind = kind, issued = now,
    expires_at = now + math.min(lifetime, ttl or lifetime),
  }
  record.hash = crypto.sha256_hex(token)
  st_insert:run(record.hash, record.client_id, record.org_id, record.kind, record.issued, record.expires_at)
  live[token] = record
  return token, record, lifetime
end

-- auth.lookup(token) -> record | nil   (expired ones included; callers check expires_at)
function M.lookup(token)
  local rec = live[token]
  if rec then return rec end
  rec = by_hash[crypto.sha256_hex(token)]
  if rec then live[token] = rec end
  return rec
end

-- auth.expire(record): end a token now (the expire_token fault)
function M.expire(record)
  record.expires_at = host.now() - 1
  st_expire:run(record.expires_at, record.hash)
end

-- auth.bearer(authorization_header_value) -> token | nil   ("Bearer" in any letter case)
local function bearer(value)
  if not value or #value < 8 then return nil end
  if value:sub(1, 7):lower() ~= "bearer " then return nil end
  local token = value:sub(8):match("^%s*(.-)%s*$")
  if token == "" then return nil end
  return token
end
M.bearer = bearer

-- auth.verify_bearer(app, authorization_value) -> record | nil, "missing" | "invalid"
-- For authenticated streaming inlets (streaming.lua) and anything else needing a live token.
function M.verify_bearer(app, value)
  local token = bearer(value)
  if not token then return nil, "missing" end
  local rec = M.lookup(token)
  if not rec or rec.expires_at <= host.now() then return nil, "invalid" end
  return rec
end

-- auth.check_platform(app, req, expire_now) -> nil (ok) | status, headers, body
-- The gateway's checks, in its order: token, API key, org. expire_now: the expire_token fault.
function M.check_platform(app, req, expire_now)
  local h = req.headers
  local token = bearer(h["authorization"])
  if not token then return errors.gateway("token_missing") end
  local rec = live[token] or M.lookup(token)
  if not rec then return errors.gateway("token_invalid") end
  if expire_now then M.expire(rec) end
  if rec.expires_at <= host.now() then return errors.gateway("token_invalid") end
  local key = h["x-api-key"]
  if not key or key == "" then return errors.gateway("api_key_missing") end
  if key ~= rec.client_id then return errors.gateway("api_key_invalid") end
  local org = h["x-gw-ims-org-id"]
  if not org or org == "" then return errors.gateway("org_missing") end
  if org ~= rec.org_id then return errors.gateway("org_wrong") end
  return nil, rec
end

-- ---------------------------------------------------------------------------------------------
-- IMS endpoints

local function check_client(app, f)
  local org = app.org
  if not f.client_id or f.client_id == "" then
    return errors.ims(400, "invalid_request", "missing client_id parameter")
  end
  if f.client_id ~= org.client_id then
    return errors.ims(400, "invalid_client", "invalid client_id parameter")
  end
  if not f.client_secret or f.client_secret == "" then
    return errors.ims(400, "invalid_request", "missing client_secret parameter")
  end
  if f.client_secret ~= org.client_secret then
    return errors.ims(401, "invalid_client", "invalid client_secret parameter")
  end
end

-- POST /ims/token/v3 (and v2): OAuth server-to-server, expires_in in SECONDS
function M.token_v3(req)
  local app = M.app
  local f = M.parse_form(req)
  if not f.grant_type or f.grant_type == "" then
    return errors.ims(400, "invalid_request", "missing grant_type parameter")
  end
  if f.grant_type ~= "client_credentials" then
    return errors.ims(400, "unsupported_grant_type", "unsupported grant_type parameter")
  end
  local s, h, b = check_client(app, f)
  if s then return s, h, b end
  if not f.scope or f.scope:match("^%s*$") then
    return errors.ims(400, "invalid_scope", "missing scope parameter")
  end
  local scopes = {}
  for sc in f.scope:gmatch("[^,%s]+") do
    if not ALLOWED_SCOPES[sc] then return errors.ims(400, "invalid_scope", "invalid scope (" .. sc .. ")") end
    scopes[#scopes + 1] = sc
  end
  local token, _, lifetime = M.issue(app, "oauth", table.concat(scopes, ","))
  return 200, errors.JSON_HEADERS, { access_token = token, token_type = "bearer", expires_in = lifetime - 1 }
end

local function allowed_ims_host(app, h)
  return h == M.IMS_HOST or h == app.urls.host
end

local function decode_part(s)
  local raw = crypto.base64url_decode(s)
  if not raw then return nil end
  local v = json.decode(raw)
  if type(v) ~= "table" then return nil end
  return v
end

local function is_integer(v) return type(v) == "number" and v == math.floor(v) end

-- POST /ims/exchange/jwt[/]: legacy service-account JWT, expires_in in MILLISECONDS
function M.exchange_jwt(req)
  local app, org = M.app, M.app.org
  local f = M.parse_form(req)
  local s, h, b = check_client(app, f)
  if s then return s, h, b end
  local jwt = f.jwt_token
  if not jwt or jwt == "" then return errors.ims(400, "invalid_token", "missing jwt_token parameter") end
  local h64, p64, s64 = jwt:match("^([%w_%-]+)%.([%w_%-]+)%.([%w_%-=]+)$")
  local header = h64 and decode_part(h64)
  local claims = p64 and decode_part(p64)
  local sig = s64 and crypto.base64url_decode(s64)
  if not header or not claims or not sig then
    return errors.ims(400, "invalid_token", "Could not decode the JWT")
  end
  if header.alg ~= "RS256" then
    return errors.ims(400, "invalid_token", "JWT algorithm must be RS256")
  end
  if not crypto.verify_rs256(org.certificate, h64 .. "." .. p64, sig) then
    return errors.ims(400, "invalid_signature", "JWT signature does not match the certificate")
  end
  if claims.exp == nil then return errors.ims(400, "invalid_token", "JWT exp claim is missing") end
  if not is_integer(claims.exp) then return errors.ims(400, "invalid_token", "JWT exp claim is not an integer") end
  if claims.jti ~= nil and not is_integer(claims.jti) then
    return errors.ims(400, "invalid_token", "JWT jti claim is not an integer")
  end
  local now = host.now()
  if claims.exp <= now then return errors.ims(400, "invalid_token", "JWT token is expired") end
  if claims.exp > now + M.JWT_MAX_AHEAD then
    return errors.ims(400, "invalid_token", "JWT exp is too far in the future")
  end
  if claims.iss ~= org.org_id then
    return errors.ims(400, "invalid_token", "JWT iss does not name the client's organization")
  end
  if claims.sub ~= org.technical_account_id then
    return errors.ims(400, "invalid_token", "JWT sub does not name the client's technical account")
  end
  local aud_host, aud_client = tostring(claims.aud or ""):match("^https?://([^/]+)/c/([^/]+)$")
  if not aud_host or not allowed_ims_host(app, aud_host) then
    return errors.ims(400, "invalid_client", "JWT aud is not this IMS")
  end
  if aud_client ~= f.client_id then
    return errors.ims(400, "invalid_client", "client_id does not match the JWT aud")
  end
  local granted = 0
  local allowed_scope = {}
  for _, m in ipairs(org.meta_scopes) do allowed_scope[m] = true end
  for k, v in pairs(claims) do
    local sh, scope = tostring(k):match("^https?://([^/]+)/s/(.+)$")
    if sh then
      if v ~= true or not allowed_ims_host(app, sh) or not allowed_scope[scope] then
        return errors.ims(400, "invalid_scope", "metascope " .. tostring(k) .. " is not bound to this integration")
      end
      granted = granted + 1
    end
  end
  if granted == 0 then return errors.ims(400, "invalid_scope", "no metascope in the JWT") end
  local token, _, lifetime = M.issue(app, "jwt")
  return 200, errors.JSON_HEADERS, { token_type = "bearer", access_token = token, expires_in = lifetime * 1000 - 8 }
end

-- ---------------------------------------------------------------------------------------------

function M.install(app)
  M.app = app
  local db = app.store.db
  db:exec([[CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY, client_id TEXT, org_id TEXT,
    kind TEXT, issued REAL, expires_at REAL)]])
  local now = host.now()
  db:prepare("DELETE FROM tokens WHERE expires_at < ?"):run(now - 86400)
  for row in db:prepare("SELECT hash, client_id, org_id, kind, issued, expires_at FROM tokens"):rows() do
    by_hash[row[1]] = { hash = row[1], client_id = row[2], org_id = row[3], kind = row[4],
                        issued = row[5], expires_at = row[6] }
  end
  st_insert = db:prepare("INSERT OR REPLACE INTO tokens (hash, client_id, org_id, kind, issued, expires_at) " ..
    "VALUES (?, ?, ?, ?, ?, ?)")
  st_expire = db:prepare("UPDATE tokens SET expires_at = ? WHERE hash = ?")
  for _, path in ipairs { "/ims/token/v3", "/ims/token/v2" } do
    app:route("POST", path, M.token_v3, { auth = "none" })
  end
  app:route("POST", "/ims/exchange/jwt", M.exchange_jwt, { auth = "none" })
end

-- auth.count() -> number of live (unexpired) tokens known
function M.count()
  local n, now = 0, host.now()
  local seen = {}
  for _, rec in pairs(live) do if rec.expires_at > now then seen[rec.hash] = true end end
  for h, rec in pairs(by_hash) do if rec.expires_at > now then seen[h] = true end end
  for _ in pairs(seen) do n = n + 1 end
  return n
end

return M
