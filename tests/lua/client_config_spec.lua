-- aep.config and aep.log: precedence (flags > AEP_* > --env file > emulator > defaults), the
-- Postman environment as the Developer Console exports it and as the emulator writes it, plain
-- JSON configs, META_SCOPE in every form, IMS with or without a scheme, and secret redaction in
-- everything printed (`aep config` included).
local config = require "aep.config"
local log = require "aep.log"
local json = require "aep.json"
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"

local tmp

local function write(name, text) return files.write(tmp .. "/" .. name, text) end

local function getenv_from(t) return function(name) return t[name] end end

local function postman(values)
  local list = {}
  for _, kv in ipairs(values) do
    list[#list + 1] = { key = kv[1], value = kv[2], enabled = kv[3] ~= false, type = "default" }
  end
  return json.encode({ name = "test", values = list })
end

describe("aep.config", function()
  setup(function() tmp = run.tmpdir() end)
  teardown(function() os.execute("rm -rf " .. run.quote(tmp)) end)

  it("reads a Postman environment (disabled entries skipped, empty values unset)", function()
    local path = write("env.json", postman({
      { "IMS", "ims-na1.adobelogin.com" }, { "IMS_ORG", "ORG1@AdobeOrg" }, { "API_KEY", "key-1" },
      { "CLIENT_SECRET", "secret-from-file-1" }, { "SANDBOX_NAME", "dev1" }, { "PLATFORM_GATEWAY", "" },
      { "TECHNICAL_ACCOUNT_ID", "TA@techacct.adobe.com", false }, { "UNIQUE_ID", "demo-" },
    }))
    local cfg = config.load({ env_file = path, getenv = getenv_from({}) })
    assert.are.equal("ORG1@AdobeOrg", cfg:get("IMS_ORG"))
    assert.are.equal("dev1", cfg:get("SANDBOX_NAME"))
    assert.is_nil(cfg:get("TECHNICAL_ACCOUNT_ID"))
    assert.are.equal("https://platform.adobe.io", cfg:gateway()) -- derived from Adobe's IMS
    assert.are.equal("demo-", cfg.extra.UNIQUE_ID)
    local _, src = cfg:get("API_KEY")
    assert.are.same({ kind = "file", where = path }, src)
  end)

  it("puts flags over AEP_* variables over the --env file over defaults", function()
    local path = write("env2.json", postman({ { "SANDBOX_NAME", "from-file" }, { "API_KEY", "file-key" },
      { "IMS_ORG", "FILE@AdobeOrg" } }))
    local cfg = config.load({ env_file = path, flags = { sandbox = "from-flag" },
      getenv = getenv_from({ AEP_SANDBOX_NAME = "from-env", AEP_API_KEY = "env-key" }) })
    assert.are.equal("from-flag", cfg:get("SANDBOX_NAME"))
    assert.are.equal("env-key", cfg:get("API_KEY"))
    assert.are.equal("FILE@AdobeOrg", cfg:get("IMS_ORG"))
    assert.are.equal("oauth", cfg:get("AUTH"))
    local _, s1 = cfg:get("SANDBOX_NAME")
    local _, s2 = cfg:get("API_KEY")
    local _, s3 = cfg:get("AUTH")
    assert.are.same({ kind = "flag", where = "--sandbox" }, s1)
    assert.are.same({ kind = "env", where = "AEP_API_KEY" }, s2)
    assert.are.equal("default", s3.kind)
  end)

  it("reads a plain JSON config with other spellings (aepp's config file)", function()
    write("key.pem", "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEA\n-----END PRIVATE KEY-----\n")
    local path = write("aepp.json", json.encode({ org_id = "AEPP@AdobeOrg", client_id = "c1", secret = "shh-secret-1",
      ["sandbox-name"] = "dev", scopes = "openid,AdobeID", tech_id = "T@techacct.adobe.com", pathToKey = "key.pem" }))
    local cfg = config.load({ env_file = path, getenv = getenv_from({}) })
    assert.are.equal("AEPP@AdobeOrg", cfg:get("IMS_ORG"))
    assert.are.equal("c1", cfg:get("API_KEY"))
    assert.are.equal("shh-secret-1", cfg:get("CLIENT_SECRET"))
    assert.are.equal("dev", cfg:get("SANDBOX_NAME"))
    assert.are.equal("T@techacct.adobe.com", cfg:get("TECHNICAL_ACCOUNT_ID"))
    assert.truthy(cfg:get("PRIVATE_KEY"):find("BEGIN PRIVATE KEY", 1, true))
  end)

  it("takes an emulator's data directory as --env", function()
    write("environment.json", postman({ { "IMS", "127.0.0.1:9" }, { "PLATFORM_GATEWAY", "http://127.0.0.1:9" } }))
    local cfg = config.load({ env_file = tmp, getenv = getenv_from({}) })
    assert.are.equal(tmp .. "/environment.json", cfg.env_file)
    -- a bare IMS host that is the gateway's own host:port keeps the gateway's scheme
    assert.are.equal("http://127.0.0.1:9", cfg:ims_url())
    assert.are.equal("127.0.0.1:9", cfg:ims_host())
  end)

  it("takes IMS with or without a scheme", function()
    local a = config.load({ getenv = getenv_from({ AEP_IMS = "ims-na1.adobelogin.com" }) })
    local b = config.load({ getenv = getenv_from({ AEP_IMS = "https://ims-na1.adobelogin.com/" }) })
    assert.are.equal("https://ims-na1.adobelogin.com", a:ims_url())
    assert.are.equal("https://ims-na1.adobelogin.com", b:ims_url())
    assert.are.equal("ims-na1.adobelogin.com", a:ims_host())
    assert.are.equal("ims-na1.adobelogin.com", b:ims_host())
  end)

  it("splits META_SCOPE given as a string, a comma list, an array or a JSON array text", function()
    assert.are.same({ "ent_dataservices_sdk" }, config.split_list("ent_dataservices_sdk"))
    assert.are.same({ "a", "b", "c" }, config.split_list(" a , b,c ,"))
    assert.are.same({ "a", "b" }, config.split_list({ "a", "b" }))
    assert.are.same({ "a", "b", "c" }, config.split_list({ "a, b", "c" }))
    assert.are.same({ "x", "y" }, config.split_list('["x","y"]'))
  end)

  it("turns escaped newlines of a PEM in a variable into real ones", function()
    local cfg = config.load({ getenv = getenv_from({
      AEP_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\\nABCDEFGHIJKLMNOPQRSTUVWXYZ0123\\n-----END PRIVATE KEY-----" }) })
    assert.are.equal("-----BEGIN PRIVATE KEY-----\nABCDEFGHIJKLMNOPQRSTUVWXYZ0123\n-----END PRIVATE KEY-----", cfg:get("PRIVATE_KEY"))
  end)

  it("names what is missing for the chosen authentication", function()
    local cfg = config.load({ flags = { jwt = true }, getenv = getenv_from({ AEP_IMS = "ims-na1.adobelogin.com" }) })
    local names = {}
    for _, m in ipairs(cfg:missing()) do names[#names + 1] = m.name end
    assert.are.same({ "IMS_ORG", "API_KEY", "CLIENT_SECRET", "TECHNICAL_ACCOUNT_ID", "PRIVATE_KEY" }, names)
    local ok, err = pcall(cfg.check, cfg)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("incomplete configuration for JWT authentication", 1, true))
  end)

  it("knows when nothing is configured (aep run then starts an emulator)", function()
    assert.is_false(config.load({ getenv = getenv_from({}) }):has_credentials())
    assert.is_true(config.load({ getenv = getenv_from({ AEP_API_KEY = "k" }) }):has_credentials())
  end)

  it("registers secrets as soon as they are read", function()
    config.load({ getenv = getenv_from({ AEP_CLIENT_SECRET = "registered-on-load-42" }) })
    assert.are.equal("x [REDACTED] y", log.redact("x registered-on-load-42 y"))
  end)
end)

describe("aep.log", function()
  it("redacts a secret raw, JSON-escaped and URL-encoded", function()
    log.add_secret("p8e-a/b+c d")
    assert.are.equal("[REDACTED] [REDACTED] [REDACTED] [REDACTED]",
      log.redact('p8e-a/b+c d p8e-a\\/b+c d p8e-a%2Fb%2Bc%20d p8e-a%2Fb%2Bc+d'))
  end)

  it("redacts every line of a PEM body", function()
    local pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n"
    log.add_secret(pem)
    local out = log.redact("leak: BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj")
    assert.are.equal("leak: [REDACTED]", out)
  end)

  it("masks credential fields and the Authorization header in traces", function()
    assert.are.equal('{"access_token":"[REDACTED]","expires_in":1}', log.mask_fields('{"access_token":"abc.def","expires_in":1}'))
    assert.are.equal("grant_type=client_credentials&client_secret=[REDACTED]&scope=x",
      log.mask_fields("grant_type=client_credentials&client_secret=zz&scope=x"))
    assert.are.equal("Bearer [REDACTED]", log.redact_header("Authorization", "Bearer eyJhbGciOi"))
  end)

  it("writes the trace to stderr only under --verbose", function()
    local out = {}
    local po, pe = log.set_sinks(function(s) out[#out + 1] = s end, function(s) out[#out + 1] = s end)
    log.set_verbose(false)
    log.trace_request({ method = "GET", url = "http://x/", headers = { Authorization = "Bearer abc" } })
    assert.are.equal(0, #out)
    log.set_verbose(true)
    log.trace_request({ method = "GET", url = "http://x/", headers = { Authorization = "Bearer abc" } })
    log.set_verbose(false)
    log.set_sinks(po, pe)
    assert.are.equal("> GET http://x/\n> Authorization: Bearer [REDACTED]\n", table.concat(out))
  end)

  it("shows a server's control characters escaped, never raw on the terminal", function()
    local out = {}
    local po, pe = log.set_sinks(function(s) out[#out + 1] = s end, function(s) out[#out + 1] = s end)
    log.set_verbose(true)
    log.trace_response({ status = 200, headers = { ["x-evil"] = "a\rb\27[31m" }, body = "line1\nline2\r\0" })
    log.set_verbose(false)
    log.set_sinks(po, pe)
    assert.are.equal("< 200\n< x-evil: a\\x0db\\x1b[31m\n< line1\nline2\\x0d\\x00\n", table.concat(out))
  end)
end)

describe("aep config", function()
  setup(function() tmp = run.tmpdir() end)
  teardown(function() os.execute("rm -rf " .. run.quote(tmp)) end)

  it("shows each value and its source, secrets redacted", function()
    local path = write("env.json", postman({ { "IMS", "ims-na1.adobelogin.com" }, { "IMS_ORG", "ORG9@AdobeOrg" },
      { "API_KEY", "key-9" }, { "CLIENT_SECRET", "very-secret-value-9" } }))
    local r = run.aep({ "config", "--env", path, "--sandbox", "dev9" }, { env = { AEP_API_KEY = "env-key-9" } })
    assert.are.equal(0, r.status)
    assert.is_nil(r.stdout:find("very-secret-value-9", 1, true))
    assert.truthy(r.stdout:find("CLIENT_SECRET%s+%[REDACTED%]%s+file " .. path:gsub("%p", "%%%0")))
    assert.truthy(r.stdout:find("SANDBOX_NAME%s+dev9%s+flag %-%-sandbox"))
    assert.truthy(r.stdout:find("API_KEY%s+env%-key%-9%s+environment AEP_API_KEY"))
    assert.truthy(r.stdout:find("IMS_ORG%s+ORG9@AdobeOrg%s+file"))
    assert.truthy(r.stdout:find("authentication: OAuth Server-to-Server at https://ims-na1.adobelogin.com", 1, true))
  end)

  it("says so as JSON", function()
    local path = write("env.json", postman({ { "CLIENT_SECRET", "very-secret-value-10" }, { "API_KEY", "k10" } }))
    local r = run.aep({ "config", "--env", path, "--json" })
    assert.are.equal(0, r.status)
    assert.is_nil(r.stdout:find("very-secret-value-10", 1, true))
    local doc = assert(json.decode(r.stdout))
    local by = {}
    for _, s in ipairs(doc.settings) do by[s.name] = s end
    assert.are.equal("[REDACTED]", by.CLIENT_SECRET.value)
    assert.are.equal("k10", by.API_KEY.value)
    assert.are.same({ "PLATFORM_GATEWAY", "IMS", "IMS_ORG" }, doc.missing)
  end)

  it("with nothing configured, says that aep run starts an emulator and the others need one", function()
    local r = run.aep({ "config" }, { env = { HOME = tmp, XDG_STATE_HOME = tmp .. "/state" } })
    assert.are.equal(0, r.status)
    assert.truthy(r.stdout:find("\nnothing is configured and no local emulator runs on " .. tmp .. "/state/aep/emulator: " ..
      "`aep run` will start one; the other commands need `aep emulator` running, or --env FILE\n", 1, true), r.stdout)
  end)
end)
