-- fuzz_jwt: the emulator's legacy JWT exchange (POST /ims/exchange/jwt, lua/aep/emulator/auth.lua):
-- form parsing, JWT splitting, base64url and JSON decoding of the parts, RS256 verification
-- against the org's certificate (aep.crypto), then the claim checks and the token issue.
-- Byte 1 picks the form: even = the rest is the jwt_token (sent with the right client id and
-- secret, url-encoded); 1 = the rest is the whole url-encoded body; 3 = the whole multipart body.
-- The org is fixed (tests/fuzz/keys/jwt_cert.pem; its private key signed the seeds and was thrown
-- away), and so is the clock, so seeds stay valid. Must hold: the handler never raises; it answers
-- 200 with a token only for a JWT signed by the org's key, else 400/401 with an IMS error body.
local auth = require "aep.emulator.auth"
local sqlite = require "aep.sqlite"
local host = require "aep.host"
local crypto = require "aep.crypto"

local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local NOW = 1767225600 -- 2026-01-01T00:00:00Z; the seeds' exp is NOW + 300
host.now = function() return NOW + 0.5 end

local org = {
  org_id = "0123456789ABCDEF01234567@AdobeOrg",
  client_id = "0123456789abcdef0123456789abcdef",
  client_secret = "p8e-fuzz-client-secret-0123456789",
  technical_account_id = "89ABCDEF0123456789ABCDEF@techacct.adobe.com",
  tenant = "fuzz",
  meta_scopes = { "ent_dataservices_sdk" },
  scopes = "openid,AdobeID",
  certificate = read(dir .. "/keys/jwt_cert.pem"),
}
local app = { org = org, store = { db = assert(sqlite.open(":memory:")) },
              urls = { base = "http://127.0.0.1:8080", host = "127.0.0.1:8080" } }
function app.route() end
auth.install(app)

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function check(status, headers, body, jwt)
  assert(math.type(status) == "integer", "status is " .. tostring(status))
  assert(type(body) == "table", "body is a " .. type(body))
  if status == 200 then
    assert(type(body.access_token) == "string" and body.token_type == "bearer", "200 without a token")
    -- only a JWT the org's key signed gets a token
    local h, p, sig = tostring(jwt):match("^([%w_%-]+)%.([%w_%-]+)%.([%w_%-=]+)$")
    assert(h and crypto.verify_rs256(org.certificate, h .. "." .. p, crypto.base64url_decode(sig)),
      "a token for a JWT the org did not sign")
  else
    assert(status == 400 or status == 401, "status " .. status)
    assert(type(body.error) == "string", "IMS error without 'error'")
  end
end

fuzz.cover_lua() -- the code under test is mostly Lua: make its lines count as coverage

local n = 0
return function(s)
  if #s < 1 then return end
  local b = s:byte(1)
  local rest = s:sub(2)
  local req = { method = "POST", path = "/ims/exchange/jwt", query = {}, headers = {} }
  local jwt
  if b % 2 == 0 then
    jwt = rest
    req.headers["content-type"] = "application/x-www-form-urlencoded"
    req.body = "client_id=" .. org.client_id .. "&client_secret=" .. urlencode(org.client_secret) ..
      "&jwt_token=" .. urlencode(rest)
  elseif b % 4 == 1 then
    req.headers["content-type"] = "application/x-www-form-urlencoded"
    req.body = rest
  else
    req.headers["content-type"] = "multipart/form-data; boundary=XyZzy"
    req.body = rest
  end
  if not jwt then jwt = auth.parse_form(req).jwt_token end
  local status, headers, body = auth.exchange_jwt(req)
  check(status, headers, body, jwt)
  n = n + 1
  if n % 5000 == 0 then app.store.db:exec("DELETE FROM tokens") end
end
