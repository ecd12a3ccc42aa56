-- aep.platform: the Platform request helper. First against a scripted transport (exact
-- sequences of answers, no clock), then against the emulator with injected faults: 429/503 are
-- retried on GETs and not blindly on POSTs, a POST whose answer was lost is OUTCOME_UNKNOWN,
-- AEP's error shapes become error objects, secrets never show.
local platform = require "aep.platform"
local config = require "aep.config"
local log = require "aep.log"
local json = require "aep.json"
local http = require "aep.http"
local emulator = require "tests.lua.support.emulator"

local function cfg_with(values)
  return config.load({ getenv = function(name) return values[name] end })
end

local BASE_ENV = {
  AEP_PLATFORM_GATEWAY = "http://gw.test", AEP_IMS = "ims.test", AEP_IMS_ORG = "ORG@AdobeOrg",
  AEP_API_KEY = "client-id-1", AEP_CLIENT_SECRET = "s3cret-value-xyz", AEP_SANDBOX_NAME = "dev",
}

-- A transport that answers from a script and records every request.
local function scripted(answers)
  local t = { requests = {} }
  function t.request(req)
    t.requests[#t.requests + 1] = req
    local a = table.remove(answers, 1)
    assert(a, "unexpected request " .. req.method .. " " .. req.url)
    if a.error then return nil, a.error, a.code, a.resent or 0 end
    return { status = a.status, headers = a.headers or {}, body = a.body or "", resent = a.resent or 0 }
  end
  return t
end

local function fake_session()
  local s = { tokens = 0, invalidated = 0 }
  function s:token()
    if not self.current then
      self.tokens = self.tokens + 1
      self.current = "tok-" .. self.tokens .. "-abcdef"
      log.add_secret(self.current)
    end
    return self.current
  end
  function s:invalidate() self.invalidated = self.invalidated + 1; self.current = nil end
  return s
end

local function client_for(answers, opts)
  local t = scripted(answers)
  local sleeps = {}
  opts = opts or {}
  local c = platform.new(cfg_with(BASE_ENV), {
    http = t, session = opts.session or fake_session(),
    sleep = function(s) sleeps[#sleeps + 1] = s end, random = function() return 0.5 end,
  })
  return c, t, sleeps
end

describe("aep.platform with a scripted transport", function()
  it("sends the standard headers and decodes JSON", function()
    local c, t = client_for({ { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"tenantId":"acme"}' } })
    local resp = c:get("/data/foundation/schemaregistry/stats", { accept = "application/vnd.adobe.xed+json" })
    assert.are.equal("acme", resp.json.tenantId)
    local req = t.requests[1]
    assert.are.equal("GET", req.method)
    assert.are.equal("http://gw.test/data/foundation/schemaregistry/stats", req.url)
    assert.are.equal("Bearer tok-1-abcdef", req.headers.Authorization)
    assert.are.equal("client-id-1", req.headers["x-api-key"])
    assert.are.equal("ORG@AdobeOrg", req.headers["x-gw-ims-org-id"])
    assert.are.equal("dev", req.headers["x-sandbox-name"])
    assert.are.equal("application/vnd.adobe.xed+json", req.headers.Accept)
  end)

  it("retries a GET on 503 and 429, honouring Retry-After", function()
    local c, t, sleeps = client_for({
      { status = 503, headers = { ["retry-after"] = "3" }, body = "{}" },
      { status = 429, body = "{}" },
      { status = 200, body = "{}" },
    })
    local resp = c:get("/x")
    assert.are.equal(200, resp.status)
    assert.are.equal(3, #t.requests)
    assert.are.equal(2, #sleeps)
    assert.are.equal(3.05, sleeps[1])        -- Retry-After + jitter (random = 0.5 -> 0.05 s)
    assert.are.equal(0.75, sleeps[2])        -- 2nd backoff 1 s; jitter between half and all of it
  end)

  it("gives up after max_attempts with the last status", function()
    local answers = {}
    for i = 1, 5 do answers[i] = { status = 502, body = '{"title":"Bad Gateway","status":502}' } end
    local c, t = client_for(answers)
    local ok, err = pcall(c.get, c, "/x")
    assert.is_false(ok)
    assert.is_true(platform.is_error(err))
    assert.are.equal(502, err.status)
    assert.are.equal(5, err.attempts)
    assert.are.equal(5, #t.requests)
  end)

  it("retries a GET on 500", function()
    local c, t = client_for({ { status = 500, body = "{}" }, { status = 200, body = "{}" } })
    assert.are.equal(200, c:get("/x").status)
    assert.are.equal(2, #t.requests)
  end)

  it("repeats a POST answered 503 or 429 (not processed), honouring Retry-After", function()
    for _, status in ipairs({ 503, 429 }) do
      local c, t, sleeps = client_for({ { status = status, headers = { ["retry-after"] = "1" }, body = "{}" },
                                        { status = 201, body = '{"id":"a"}' } })
      assert.are.equal(201, c:post("/create", { json = { a = 1 } }).status)
      assert.are.equal(2, #t.requests)
      assert.are.same({ 1.05 }, sleeps)
    end
  end)

  it("raises OUTCOME_UNKNOWN for a POST answered 500, 502 or 504, and does not repeat it", function()
    for _, status in ipairs({ 500, 502, 504 }) do
      local c, t, sleeps = client_for({ { status = status, body = "{}" } })
      local ok, err = pcall(c.post, c, "/create", { json = { a = 1 } })
      assert.is_false(ok)
      assert.are.same({ "OUTCOME_UNKNOWN", status, 1, 0 }, { err.code, err.status, #t.requests, #sleeps })
    end
  end)

  -- curl sent the POST twice by itself (aep.http's resent): the first copy may have been processed
  it("raises OUTCOME_UNKNOWN for a POST curl resent, whatever the second copy's answer or fate", function()
    local c, t = client_for({ { status = 400, body = '{"title":"Title not unique"}', resent = 1 } })
    local ok, err = pcall(c.post, c, "/create", { json = {} })
    assert.is_false(ok)
    assert.are.same({ "OUTCOME_UNKNOWN", 1 }, { err.code, #t.requests })
    local c2, t2 = client_for({ { error = "Connection refused", code = "CONNECT", resent = 1 } })
    ok, err = pcall(c2.post, c2, "/create", { json = {} })
    assert.is_false(ok)
    assert.are.same({ "OUTCOME_UNKNOWN", "CONNECT", 1 }, { err.code, err.transport_code, #t2.requests })
  end)

  it("retries a POST marked idempotent", function()
    local c, t = client_for({ { status = 503, body = "{}" }, { status = 201, body = '{"id":"a"}' } })
    local resp = c:post("/create", { json = { a = 1 }, idempotent = true })
    assert.are.equal(201, resp.status)
    assert.are.equal(2, #t.requests)
  end)

  it("raises OUTCOME_UNKNOWN for a POST whose answer was lost, and does not repeat it", function()
    local c, t = client_for({ { error = "Connection reset by peer", code = "RECV" } })
    local ok, err = pcall(c.post, c, "/create", { json = {} })
    assert.is_false(ok)
    assert.are.equal("OUTCOME_UNKNOWN", err.code)
    assert.are.equal("RECV", err.transport_code)
    assert.are.equal(1, #t.requests)
  end)

  it("repeats any request that never left (connection refused)", function()
    local c, t = client_for({ { error = "Connection refused", code = "CONNECT" }, { status = 201, body = "{}" } })
    assert.are.equal(201, c:post("/create", { json = {} }).status)
    assert.are.equal(2, #t.requests)
  end)

  it("retries a GET after a transport error, and not after a TLS failure", function()
    local c, t = client_for({ { error = "timed out", code = "TIMEOUT" }, { status = 200, body = "{}" } })
    assert.are.equal(200, c:get("/x").status)
    assert.are.equal(2, #t.requests)
    local c2, t2 = client_for({ { error = "certificate verify failed", code = "TLS" } })
    local ok, err = pcall(c2.get, c2, "/x")
    assert.is_false(ok)
    assert.are.equal("TLS", err.code)
    assert.are.equal(1, #t2.requests)
  end)

  it("re-authenticates once on 401, then gives up", function()
    local session = fake_session()
    local c, t = client_for({
      { status = 401, body = '{"error_code":"401013","message":"Oauth token is not valid"}' },
      { status = 200, body = "{}" },
    }, { session = session })
    assert.are.equal(200, c:post("/create", { json = {} }).status)
    assert.are.equal(1, session.invalidated)
    assert.are.equal("Bearer tok-1-abcdef", t.requests[1].headers.Authorization)
    assert.are.equal("Bearer tok-2-abcdef", t.requests[2].headers.Authorization)

    local c2 = client_for({
      { status = 401, body = '{"error_code":"401013","message":"Oauth token is not valid"}' },
      { status = 401, body = '{"error_code":"401013","message":"Oauth token is not valid"}' },
    })
    local ok, err = pcall(c2.get, c2, "/x")
    assert.is_false(ok)
    assert.are.equal(401, err.status)
    assert.are.equal("401013", err.code)
    assert.are.equal("Oauth token is not valid", err.title)
  end)
end)

describe("aep.platform error shapes", function()
  it("reads the gateway shape", function()
    local e = platform.parse_error(403, '{"error_code":"403010","message":"Oauth token is missing."}')
    assert.are.equal("403010", e.code)
    assert.are.equal("Oauth token is missing.", e.title)
  end)

  it("reads problem details with an XDM code and report", function()
    local e = platform.parse_error(400, json.encode({
      type = "http://ns.adobe.com/aep/errors/XDM-1521-400", title = "Title not unique", status = 400,
      detail = "Another resource has the title x", report = { registryRequestId = "r1" } }))
    assert.are.equal("XDM-1521-400", e.code)
    assert.are.equal("Title not unique", e.title)
    assert.are.equal("Another resource has the title x", e.detail)
    assert.are.equal("r1", e.report.registryRequestId)
  end)

  it("reads Flow Service's etag conflicts and IMS errors", function()
    local e = platform.parse_error(412, '{"errorMessage":"Supplied version=[1] does not match the current version on entity=[f]"}')
    assert.are.equal("ETAG_MISMATCH", e.code)
    local i = platform.parse_error(401, '{"error":"invalid_client","error_description":"invalid client_secret parameter"}')
    assert.are.equal("invalid_client", i.code)
    assert.are.equal("invalid client_secret parameter", i.title)
  end)

  it("lists the violations of a streaming validation report", function()
    local e = platform.parse_error(400, json.encode({
      type = "http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet", status = 400,
      title = "Invalid XDM Message Format",
      report = { message = "Message is invalid", cause = { _streamingValidation = { {
        schemaLocation = "#", pointerToViolation = "#", message = "2 schema violations found",
        causingExceptions = {
          { keyword = "additionalProperties", pointerToViolation = "#", message = "extraneous key [_exchangeinternal] is not permitted" },
          { keyword = "required", pointerToViolation = "#", message = "required key [_id] not found" },
        } } } } } }))
    assert.are.equal(2, #e.violations)
    assert.are.equal("additionalProperties", e.violations[1].keyword)
    assert.are.equal("extraneous key [_exchangeinternal] is not permitted", e.violations[1].message)
    local err = platform.error({ kind = "http", status = 400, title = e.title, violations = e.violations,
      request = { method = "POST", url = "http://dcs/collection/x" } })
    assert.are.equal(table.concat({
      "POST http://dcs/collection/x: 400 Invalid XDM Message Format",
      "  - #: extraneous key [_exchangeinternal] is not permitted (additionalProperties)",
      "  - #: required key [_id] not found (required)" }, "\n"), tostring(err))
  end)

  it("never shows a registered secret in an error", function()
    log.add_secret("hunter2-secret-token")
    local c = client_for({ { status = 400, body = '{"title":"bad","detail":"token hunter2-secret-token refused"}' } })
    local ok, err = pcall(c.get, c, "/x", { query = { access_token = "hunter2-secret-token" } })
    assert.is_false(ok)
    local text = tostring(err)
    assert.is_nil(text:find("hunter2", 1, true))
    assert.truthy(text:find("[REDACTED]", 1, true))
  end)

  it("parses Retry-After as seconds or an HTTP date", function()
    assert.are.equal(7, platform.retry_after({ ["retry-after"] = "7" }))
    local now = os.time()
    local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", now + 30)
    assert.are.equal(30, platform.retry_after({ ["retry-after"] = date }, now))
    assert.is_nil(platform.retry_after({}))
  end)
end)

describe("aep.platform against the emulator", function()
  local emu, cfg

  local function faults(spec) emu.faults(spec, 1) end

  local function requests_since(seq, prefix)
    local resp = assert(http.request({ url = emu.url .. "/emulator/requests?since=" .. seq .. "&path=" .. prefix }))
    return json.decode(resp.body)
  end

  local function last_seq()
    return json.decode(assert(http.request({ url = emu.url .. "/emulator/requests?since=0&limit=1" })).body).total
  end

  setup(function()
    emu = emulator.start()
    cfg = config.load({ env_file = emu.env_file, getenv = function() return nil end })
  end)
  teardown(function() emu.cleanup() end)
  after_each(function() faults("") end)

  local function client(opts)
    opts = opts or {}
    local sleeps = {}
    local c = platform.new(cfg, { sleep = function(s)
      sleeps[#sleeps + 1] = s
      if opts.on_sleep then opts.on_sleep(#sleeps) end
    end })
    return c, sleeps
  end

  it("retries a GET answered 503 until the service is back", function()
    local c, sleeps = client({ on_sleep = function() faults("") end })
    c:auth():token()
    faults("catalog:503=1")
    local seq = last_seq()
    local resp = c:get("/data/foundation/catalog/dataSets")
    assert.are.equal(200, resp.status)
    assert.are.equal(1, #sleeps)
    assert.is_true(sleeps[1] >= 1 and sleeps[1] < 1.1) -- the emulator's Retry-After: 1
    local log_ = requests_since(seq, "/data/foundation/catalog")
    assert.are.equal(2, log_.count)
    assert.are.equal(503, log_.requests[1].status)
    assert.are.equal(200, log_.requests[2].status)
  end)

  it("retries a GET answered 429", function()
    local c, sleeps = client({ on_sleep = function() faults("") end })
    c:auth():token()
    faults("catalog:429=1")
    assert.are.equal(200, c:get("/data/foundation/catalog/dataSets").status)
    assert.are.equal(1, #sleeps)
  end)

  it("repeats a POST answered 503 or 429 (not processed) up to max_attempts, and nothing is created", function()
    local c, sleeps = client()
    c:auth():token()
    for i, status in ipairs({ "503", "429" }) do
      faults("catalog:" .. status .. "=1")
      local seq = last_seq()
      local ok, err = pcall(c.post, c, "/data/foundation/catalog/dataSets", { json = { name = "x" .. status } })
      assert.is_false(ok)
      assert.are.same({ tonumber(status), c.max_attempts }, { err.status, err.attempts })
      assert.are.equal(i * (c.max_attempts - 1), #sleeps)
      assert.are.equal(c.max_attempts, requests_since(seq, "/data/foundation/catalog").count)
    end
    faults("")
    local list = c:get("/data/foundation/catalog/dataSets").json
    assert.are.same({}, list)
  end)

  it("reports OUTCOME_UNKNOWN when the answer to a POST is lost, having sent it once", function()
    local c = client()
    c:auth():token()
    faults("catalog:drop_after=1")
    local seq = last_seq()
    local ok, err = pcall(c.post, c, "/data/foundation/catalog/dataSets", { json = { name = "lost-answer" } })
    assert.is_false(ok)
    assert.are.equal("OUTCOME_UNKNOWN", err.code)
    assert.are.equal(1, requests_since(seq, "/data/foundation/catalog").count)
    faults("")
    -- the dataset was created exactly once, although nobody heard about it
    local n = 0
    for _, d in pairs(c:get("/data/foundation/catalog/dataSets").json) do
      if type(d) == "table" and d.name == "lost-answer" then n = n + 1 end
    end
    assert.are.equal(1, n)
  end)

  it("turns a gateway error into an error object naming the request", function()
    local c = client()
    local ok, err = pcall(c.get, c, "/data/foundation/catalog/dataSets", { headers = { ["x-api-key"] = "wrong" } })
    assert.is_false(ok)
    assert.are.equal(403, err.status)
    assert.are.equal("403003", err.code)
    assert.are.equal("GET", err.request.method)
    assert.are.equal(emu.url .. "/data/foundation/catalog/dataSets", err.request.url)
  end)
end)

describe("aep.platform over HTTPS", function()
  local emu, dir, cert_path

  setup(function()
    local crypto = require "aep.crypto"
    local run = require "tests.lua.support.run"
    dir = run.tmpdir()
    local keys = assert(crypto.generate_rsa({ bits = 2048, cn = "localhost", san = { "DNS:localhost", "IP:127.0.0.1" } }))
    cert_path = dir .. "/cert.pem"
    local key_path = dir .. "/key.pem"
    for path, data in pairs({ [cert_path] = keys.certificate, [key_path] = keys.private_key }) do
      local f = assert(io.open(path, "wb"))
      f:write(data)
      f:close()
    end
    emu = emulator.start({ "--tls-cert", cert_path, "--tls-key", key_path })
  end)
  teardown(function()
    emu.cleanup()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function stats(env)
    local cfg = config.load({ env_file = emu.env_file, getenv = function(n) return env[n] end })
    local c = platform.new(cfg, { sleep = function() end, max_attempts = 1, quiet_insecure = true })
    return pcall(c.get, c, "/data/foundation/schemaregistry/stats")
  end

  it("verifies the server with --cacert, fails without it, and --insecure skips the check", function()
    assert.truthy(emu.url:match("^https://"))
    local ok, resp = stats({ AEP_CACERT = cert_path })
    assert.is_true(ok, tostring(resp))
    assert.are.equal(200, resp.status)
    local ok2, err = stats({})
    assert.is_false(ok2)
    assert.are.equal("TLS", err.code)
    local ok3, resp3 = stats({ AEP_INSECURE = "1" })
    assert.is_true(ok3, tostring(resp3))
    assert.are.equal(200, resp3.status)
  end)

  it("warns when TLS verification is off", function()
    local out = {}
    local po, pe = log.set_sinks(nil, function(s) out[#out + 1] = s end)
    platform.new(config.load({ getenv = function(n) return ({ AEP_INSECURE = "true" })[n] end }))
    log.set_sinks(po, pe)
    assert.are.equal("aep: warning: TLS certificate verification is off (--insecure): use only against a test server\n",
      table.concat(out))
  end)
end)
