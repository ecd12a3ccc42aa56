-- aep.ims against the emulator's IMS: OAuth Server-to-Server (expires_in in seconds), the legacy
-- JWT exchange with PKCS#8 and PKCS#1 keys (expires_in in milliseconds), every META_SCOPE entry
-- sent, a wrong client secret surfaced as IMS's error, renewal before expiry, and a token that
-- dies early renewed in the middle of a run.
local ims = require "aep.ims"
local config = require "aep.config"
local platform = require "aep.platform"
local json = require "aep.json"
local emulator = require "tests.lua.support.emulator"
local run = require "tests.lua.support.run"

-- an IMS session over its own Platform client, as platform.new builds one
local function new_session(c, opts)
  opts = opts or {}
  opts.client = platform.new(c, { session = false, quiet_insecure = true })
  return ims.new(c, opts)
end

local function getenv_from(t) return function(name) return t[name] end end

local function b64url_json(part)
  return json.decode(require("aep.crypto").base64url_decode(part))
end

describe("aep.ims", function()
  local emu, tmp

  local function cfg(extra_env)
    return config.load({ env_file = emu.env_file, getenv = getenv_from(extra_env or {}) })
  end

  local function faults(spec) emu.faults(spec, 1) end

  setup(function()
    emu = emulator.start()
    tmp = run.tmpdir()
  end)
  teardown(function()
    emu.cleanup()
    os.execute("rm -rf " .. run.quote(tmp))
  end)
  after_each(function() faults("") end)

  it("gets an OAuth Server-to-Server token, its expires_in read as seconds", function()
    local t = 1000000
    local s = new_session(cfg(), { now = function() return t end })
    local token = s:token()
    assert.are.equal("string", type(token))
    assert.are.equal("oauth", s:info().mode)
    assert.are.equal(86399, s:info().expires_in)
    -- the token works on the Platform gateway
    local c = platform.new(cfg(), { session = s })
    assert.are.equal(200, c:get("/data/foundation/schemaregistry/stats").status)
  end)

  it("caches the token and renews it before it expires", function()
    local t = 1000000
    local s = new_session(cfg(), { now = function() return t end })
    local first = s:token()
    t = t + 86399 - ims.RENEW_MARGIN - 1
    assert.are.equal(first, s:token())
    assert.are.equal(1, s.renewals)
    t = t + 2 -- now inside the renewal margin
    local second = s:token()
    assert.are_not.equal(first, second)
    assert.are.equal(2, s.renewals)
  end)

  it("surfaces IMS's error for a wrong client secret, without the secret", function()
    local wrong = "wrong-secret-value-123"
    local s = new_session(cfg({ AEP_CLIENT_SECRET = wrong }))
    local ok, err = pcall(s.token, s)
    assert.is_false(ok)
    assert.is_true(platform.is_error(err))
    assert.are.equal("auth", err.kind)
    assert.are.equal(401, err.status)
    assert.are.equal("invalid_client", err.code)
    assert.are.equal("invalid client_secret parameter", err.title)
    local text = tostring(err)
    assert.are.equal("POST " .. emu.url .. "/ims/token/v3: 401 invalid_client invalid client_secret parameter\n" ..
      "IMS refused the client credentials: check API_KEY and CLIENT_SECRET", text)
    assert.is_nil(text:find(wrong, 1, true))
  end)

  it("builds the collection's JWT claims with every metascope", function()
    local c = config.load({ getenv = getenv_from({ AEP_IMS = "https://ims-na1.adobelogin.com", AEP_IMS_ORG = "O@AdobeOrg",
      AEP_TECHNICAL_ACCOUNT_ID = "T@techacct.adobe.com", AEP_API_KEY = "key1",
      AEP_META_SCOPE = '["ent_dataservices_sdk", "ent_other_sdk"]' }) })
    local claims, order = ims.jwt_claims(c, 1000)
    assert.are.same({ "exp", "iss", "sub", "aud", "https://ims-na1.adobelogin.com/s/ent_dataservices_sdk",
      "https://ims-na1.adobelogin.com/s/ent_other_sdk" }, order)
    assert.are.equal(1000 + ims.JWT_LIFETIME, claims.exp)
    assert.are.equal("O@AdobeOrg", claims.iss)
    assert.are.equal("T@techacct.adobe.com", claims.sub)
    assert.are.equal("https://ims-na1.adobelogin.com/c/key1", claims.aud)
    assert.is_true(claims["https://ims-na1.adobelogin.com/s/ent_other_sdk"])
  end)

  it("exchanges a JWT signed with the PKCS#8 key, expires_in read as milliseconds", function()
    local c = cfg({ AEP_AUTH = "jwt" })
    assert.truthy(c:get("PRIVATE_KEY"):find("-----BEGIN PRIVATE KEY-----", 1, true))
    local t = require("aep.host").now()
    local s = new_session(c, { now = function() return t end })
    local token = s:token()
    assert.are.equal("jwt", s:info().mode)
    assert.are.equal(86399, s:info().expires_in) -- 86399992 ms, not 86399992 s
    local p = platform.new(c, { session = s })
    assert.are.equal(200, p:get("/data/foundation/schemaregistry/stats").status)
    assert.are.equal("string", type(token))
  end)

  it("exchanges a JWT signed with the same key in PKCS#1 form", function()
    local c8 = cfg()
    local k8 = tmp .. "/k8.pem"
    local f = assert(io.open(k8, "wb"))
    f:write((c8:get("PRIVATE_KEY")))
    f:close()
    local k1 = tmp .. "/k1.pem"
    assert.is_true(os.execute("openssl rsa -in " .. k8 .. " -traditional -out " .. k1 .. " 2>/dev/null") == true)
    local c = cfg({ AEP_AUTH = "jwt", AEP_PRIVATE_KEY_FILE = k1 })
    assert.truthy(c:get("PRIVATE_KEY"):find("-----BEGIN RSA PRIVATE KEY-----", 1, true))
    local s = new_session(c)
    assert.are.equal("string", type(s:token()))
    assert.are.equal("jwt", s:info().mode)
  end)

  it("sends the JWT with the IMS host whether IMS has a scheme or not", function()
    for _, ims_value in ipairs({ emu.env.IMS, emu.url }) do
      local s = new_session(cfg({ AEP_AUTH = "jwt", AEP_IMS = ims_value }))
      assert.are.equal("string", type(s:token()))
    end
    local c = cfg({ AEP_IMS = emu.url })
    local jwt = ims.build_jwt(c, require("aep.host").now())
    local claims = b64url_json(jwt:match("^[^.]+%.([^.]+)%."))
    assert.are.equal("https://" .. emu.env.IMS .. "/c/" .. emu.env.API_KEY, claims.aud)
    assert.is_true(claims["https://" .. emu.env.IMS .. "/s/ent_dataservices_sdk"])
  end)

  it("sends every META_SCOPE entry (IMS refuses one that is not bound)", function()
    local s = new_session(cfg({ AEP_AUTH = "jwt", AEP_META_SCOPE = "ent_dataservices_sdk, ent_unbound_sdk" }))
    local ok, err = pcall(s.token, s)
    assert.is_false(ok)
    assert.are.equal("invalid_scope", err.code)
    assert.truthy(err.title:find("ent_unbound_sdk", 1, true))
  end)

  it("reports a bad private key without printing it", function()
    local s = new_session(cfg({ AEP_AUTH = "jwt", AEP_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\\nnot-a-key-at-all\\n-----END PRIVATE KEY-----" }))
    local ok, err = pcall(s.token, s)
    assert.is_false(ok)
    assert.are.equal("BAD_KEY", err.code)
    assert.is_nil(tostring(err):find("not-a-key-at-all", 1, true))
  end)

  it("renews a token that expired early, in the middle of a run, once", function()
    local c = cfg()
    local s = new_session(c)
    local p = platform.new(c, { session = s })
    assert.are.equal(200, p:get("/data/foundation/schemaregistry/stats").status)
    assert.are.equal(1, s.renewals)
    -- the next Platform request finds its token expired (401 401013); the client mints a new
    -- one and repeats the request once
    faults("schemas:expire_token=1")
    local invalidate = s.invalidate
    s.invalidate = function(self)
      faults("") -- the fault was for one request
      return invalidate(self)
    end
    assert.are.equal(200, p:get("/data/foundation/schemaregistry/stats").status)
    assert.are.equal(2, s.renewals)
    assert.are.equal(1, p.stats.reauth)
  end)
end)
