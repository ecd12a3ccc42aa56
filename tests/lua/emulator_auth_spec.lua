-- aep emulator: IMS (token v3, JWT exchange) and the Platform gateway's header checks.
package.path = "tests/lua/?.lua;" .. package.path
local http = require "aep.http"
local json = require "aep.json"
local crypto = require "aep.crypto"
local host = require "aep.host"
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"

local function form(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = k .. "=" .. fixtures.url_encode(tostring(v)) end
  return table.concat(parts, "&")
end

local function post_form(url, fields, multipart)
  local headers, body
  if multipart then
    local b = "----aepspec" .. crypto.uuid4()
    local parts = {}
    for _, kv in ipairs(fields) do
      parts[#parts + 1] = "--" .. b .. "\r\nContent-Disposition: form-data; name=\"" .. kv[1] .. "\"\r\n\r\n" .. kv[2] .. "\r\n"
    end
    body = table.concat(parts) .. "--" .. b .. "--\r\n"
    headers = { ["Content-Type"] = "multipart/form-data; boundary=" .. b }
  else
    local t = {}
    for _, kv in ipairs(fields) do t[kv[1]] = kv[2] end
    body = form(t)
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  end
  local resp = assert(http.request { method = "POST", url = url, headers = headers, body = body })
  return resp.status, json.decode(resp.body), resp
end

local function jwt(env, claims, key)
  local header = crypto.base64url_encode(json.encode { alg = "RS256" })
  local payload = crypto.base64url_encode(json.encode(claims))
  local sig = assert(crypto.sign_rs256(key or env.PRIVATE_KEY, header .. "." .. payload))
  return header .. "." .. payload .. "." .. crypto.base64url_encode(sig)
end

local function claims(env, over)
  local ims = "https://" .. env.IMS
  local c = { exp = math.floor(host.now()) + 87000, iss = env.IMS_ORG, sub = env.TECHNICAL_ACCOUNT_ID,
              aud = ims .. "/c/" .. env.API_KEY, [ims .. "/s/ent_dataservices_sdk"] = true }
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end

describe("aep emulator auth", function()
  local emu, env

  setup(function()
    emu = emulator.start()
    env = emu.env
  end)
  teardown(function() emu.cleanup() end)

  it("writes a Postman environment with the collection's variables, mode 0600", function()
    assert.equals(emu.data_dir .. "/environment.json", emu.env_file)
    assert.equals(tonumber("600", 8), host.stat(emu.env_file).mode & tonumber("777", 8))
    for _, k in ipairs { "IMS", "IMS_ORG", "API_KEY", "CLIENT_SECRET", "TECHNICAL_ACCOUNT_ID", "META_SCOPE",
                         "PRIVATE_KEY", "PLATFORM_GATEWAY", "SANDBOX_NAME", "TENANT_ID" } do
      assert.is_not_nil(env[k], k)
    end
    assert.equals(emu.url, env.PLATFORM_GATEWAY)
    assert.equals(emu.url:gsub("^https?://", ""), env.IMS)
    assert.same({ "ent_dataservices_sdk" }, env.META_SCOPE)
    assert.equals("prod", env.SANDBOX_NAME)
    assert.matches("@AdobeOrg$", env.IMS_ORG)
    assert.matches("@techacct%.adobe%.com$", env.TECHNICAL_ACCOUNT_ID)
    assert.matches("BEGIN PRIVATE KEY", env.PRIVATE_KEY)
  end)

  describe("POST /ims/token/v3", function()
    it("issues a bearer token with expires_in in seconds", function()
      local s, b = post_form(emu.url .. "/ims/token/v3", { { "grant_type", "client_credentials" },
        { "client_id", env.API_KEY }, { "client_secret", env.CLIENT_SECRET }, { "scope", env.SCOPES } })
      assert.equals(200, s)
      assert.equals("bearer", b.token_type)
      assert.equals(86399, b.expires_in)
      assert.is_string(b.access_token)
    end)

    it("answers 401 invalid_client for a wrong client secret", function()
      local s, b = post_form(emu.url .. "/ims/token/v3", { { "grant_type", "client_credentials" },
        { "client_id", env.API_KEY }, { "client_secret", "p8e-wrong" }, { "scope", env.SCOPES } })
      assert.equals(401, s)
      assert.same({ error = "invalid_client", error_description = "invalid client_secret parameter" }, b)
    end)

    it("answers 400 for an unknown client, a missing grant type and an unknown scope", function()
      local s, b = post_form(emu.url .. "/ims/token/v3", { { "grant_type", "client_credentials" },
        { "client_id", "nobody" }, { "client_secret", env.CLIENT_SECRET }, { "scope", env.SCOPES } })
      assert.equals(400, s)
      assert.equals("invalid_client", b.error)
      s, b = post_form(emu.url .. "/ims/token/v3", { { "client_id", env.API_KEY },
        { "client_secret", env.CLIENT_SECRET }, { "scope", env.SCOPES } })
      assert.equals(400, s)
      assert.equals("invalid_request", b.error)
      s, b = post_form(emu.url .. "/ims/token/v3", { { "grant_type", "client_credentials" },
        { "client_id", env.API_KEY }, { "client_secret", env.CLIENT_SECRET }, { "scope", "openid,root" } })
      assert.equals(400, s)
      assert.equals("invalid_scope", b.error)
    end)
  end)

  describe("POST /ims/exchange/jwt", function()
    local function exchange(token, path, multipart)
      return post_form(emu.url .. (path or "/ims/exchange/jwt"), { { "client_id", env.API_KEY },
        { "client_secret", env.CLIENT_SECRET }, { "jwt_token", token } }, multipart)
    end

    it("exchanges a JWT signed with the org's key (multipart, trailing slash; expires_in in ms)", function()
      local s, b = exchange(jwt(env, claims(env)), "/ims/exchange/jwt/", true)
      assert.equals(200, s)
      assert.equals("bearer", b.token_type)
      assert.equals(86399992, b.expires_in)
      -- the token works on the Platform
      local api = fixtures.client(emu)
      api.token = b.access_token
      local st, stats = api:get("/data/foundation/schemaregistry/stats")
      assert.equals(200, st)
      assert.equals(env.TENANT_ID, stats.tenantId)
    end)

    it("accepts urlencoded fields and the ims-na1 audience", function()
      local ims = "https://ims-na1.adobelogin.com"
      local c = claims(env, { aud = ims .. "/c/" .. env.API_KEY })
      c["https://" .. env.IMS .. "/s/ent_dataservices_sdk"] = nil
      c[ims .. "/s/ent_dataservices_sdk"] = true
      local s = exchange(jwt(env, c))
      assert.equals(200, s)
    end)

    it("rejects a tampered JWT with invalid_signature", function()
      local token = jwt(env, claims(env))
      local h, p, sig = token:match("^([^.]+)%.([^.]+)%.(.+)$")
      local forged = crypto.base64url_encode(json.encode(claims(env, { sub = "someone@techacct.adobe.com" })))
      local s, b = exchange(h .. "." .. forged .. "." .. sig)
      assert.equals(400, s)
      assert.equals("invalid_signature", b.error)
      -- and one signed by another key
      local other = crypto.generate_rsa { bits = 2048 }
      s, b = exchange(jwt(env, claims(env), other.private_key))
      assert.equals(400, s)
      assert.equals("invalid_signature", b.error)
      assert.equals(p, p)
    end)

    it("rejects expired JWTs, exp too far ahead, and a garbled token with invalid_token", function()
      local s, b = exchange(jwt(env, claims(env, { exp = math.floor(host.now()) - 10 })))
      assert.equals(400, s)
      assert.same({ error = "invalid_token", error_description = "JWT token is expired" }, b)
      s, b = exchange(jwt(env, claims(env, { exp = math.floor(host.now()) + 26 * 3600 })))
      assert.equals(400, s)
      assert.equals("invalid_token", b.error)
      s, b = exchange("not-a-jwt")
      assert.equals(400, s)
      assert.equals("invalid_token", b.error)
    end)

    it("rejects a foreign audience, a missing metascope and a wrong client secret", function()
      local s, b = exchange(jwt(env, claims(env, { aud = "https://ims-eu1.example.com/c/" .. env.API_KEY })))
      assert.equals(400, s)
      assert.equals("invalid_client", b.error)
      local c = claims(env)
      c["https://" .. env.IMS .. "/s/ent_dataservices_sdk"] = nil
      s, b = exchange(jwt(env, c))
      assert.equals(400, s)
      assert.equals("invalid_scope", b.error)
      s, b = post_form(emu.url .. "/ims/exchange/jwt", { { "client_id", env.API_KEY },
        { "client_secret", "wrong" }, { "jwt_token", jwt(env, claims(env)) } })
      assert.equals(401, s)
      assert.equals("invalid_client", b.error)
    end)
  end)

  it("serves HTTPS on the same port with --tls-cert/--tls-key", function()
    local keys = assert(crypto.generate_rsa { bits = 2048, cn = "localhost", san = { "DNS:localhost", "IP:127.0.0.1" } })
    local dir = emu.data_dir .. "/tls"
    assert(host.mkdir(dir))
    assert(host.write_file(dir .. "/cert.pem", keys.certificate))
    assert(host.write_file(dir .. "/key.pem", keys.private_key, tonumber("600", 8)))
    local tls = emulator.start { "--tls-cert", dir .. "/cert.pem", "--tls-key", dir .. "/key.pem" }
    assert.matches("^https://127%.0%.0%.1:%d+$", tls.url)
    assert.equals(tls.url, tls.env.PLATFORM_GATEWAY)
    local resp = assert(http.request { url = tls.url .. "/emulator/health", cainfo = dir .. "/cert.pem" })
    assert.equals(200, resp.status)
    resp = assert(http.request { method = "POST", url = tls.url .. "/ims/token/v3", cainfo = dir .. "/cert.pem",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
      body = form { grant_type = "client_credentials", client_id = tls.env.API_KEY,
                    client_secret = tls.env.CLIENT_SECRET, scope = tls.env.SCOPES } })
    assert.equals(200, resp.status)
    tls.cleanup()
  end)

  describe("Platform gateway checks", function()
    local api
    setup(function() api = fixtures.client(emu) end)
    local STATS = "/data/foundation/schemaregistry/stats"

    it("answers 401 403010 without a token and 401 401013 with a bad one", function()
      local s, b = api:get(STATS, { headers = { Authorization = "" } })
      assert.equals(401, s)
      assert.same({ error_code = "403010", message = "Oauth token is missing." }, b)
      s, b = api:get(STATS, { headers = { Authorization = "Bearer nope" } })
      assert.equals(401, s)
      assert.same({ error_code = "401013", message = "Oauth token is not valid" }, b)
    end)

    it("accepts the bearer scheme in any letter case", function()
      for _, scheme in ipairs { "bearer", "Bearer", "BEARER" } do
        local s = api:get(STATS, { headers = { Authorization = scheme .. " " .. api.token } })
        assert.equals(200, s)
      end
    end)

    it("answers 403 403000 without an API key and 403 403003 with another one", function()
      local s, b = api:get(STATS, { headers = { ["x-api-key"] = "" } })
      assert.equals(403, s)
      assert.same({ error_code = "403000", message = "Api Key is required" }, b)
      s, b = api:get(STATS, { headers = { ["x-api-key"] = "someoneelse" } })
      assert.equals(403, s)
      assert.equals("403003", b.error_code)
    end)

    it("answers 400 400003 without the org header and 403 403027 for another org", function()
      local s, b = api:get(STATS, { headers = { ["x-gw-ims-org-id"] = "" } })
      assert.equals(400, s)
      assert.same({ error_code = "400003", message = "Missing header" }, b)
      s, b = api:get(STATS, { headers = { ["x-gw-ims-org-id"] = "0000@AdobeOrg" } })
      assert.equals(403, s)
      assert.same({ error_code = "403027", message = "User region is missing" }, b)
    end)

    it("answers 400 for invalid JSON and for a missing Content-Type", function()
      local s, b = api:post("/data/foundation/catalog/dataSets", "{not json")
      assert.equals(400, s)
      assert.equals(400, b.status)
      assert.matches("Invalid JSON", b.detail)
      s, b = api:request("POST", "/data/foundation/catalog/dataSets", '{"name":"x"}', { content_type = "text/plain" })
      assert.equals(400, s)
      assert.equals("A valid content-type must be specified", b.detail)
    end)

    it("isolates sandboxes named by x-sandbox-name", function()
      assert.equals(201, (api:post("/emulator/sandboxes", { name = "dev1" }, { auth = false })))
      local s = api:post("/data/core/idnamespace/identities",
        { name = "Loyalty", code = "Loyalty", idType = "CROSS_DEVICE" }, { headers = { ["x-sandbox-name"] = "dev1" } })
      assert.equals(200, s)
      local _, prod = api:get("/data/core/idnamespace/identities")
      local _, dev = api:get("/data/core/idnamespace/identities", { headers = { ["x-sandbox-name"] = "dev1" } })
      assert.equals(#prod + 1, #dev)
    end)

    it("answers 404 for an unknown path and 405 for a wrong method", function()
      local s = api:get("/data/foundation/nothing-here")
      assert.equals(404, s)
      s = api:request("DELETE", STATS)
      assert.equals(405, s)
    end)
  end)
end)
