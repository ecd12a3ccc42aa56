-- TLS end to end (SECURITY.md): the emulator serving HTTPS with a self-signed certificate made by
-- aep.crypto.generate_rsa; clients verify by default, accept it with --cacert (or AEP_CACERT), and
-- --insecure turns verification off with a warning.
package.path = "tests/lua/?.lua;" .. package.path
local emulator = require "support.emulator"
local run = require "support.run"
local crypto = require "aep.crypto"
local host = require "aep.host"
local http = require "aep.http"

local WARNING = "aep: warning: TLS certificate verification is off (--insecure): use only against a test server\n"

describe("TLS", function()
  local dir, emu, cert, env

  setup(function()
    dir = run.tmpdir()
    local keys = assert(crypto.generate_rsa { bits = 2048, cn = "localhost" })
    cert = dir .. "/emulator-cert.pem"
    assert(host.write_file(cert, keys.certificate))
    assert(host.write_file(dir .. "/emulator-key.pem", keys.private_key, tonumber("600", 8)))
    emu = emulator.start { "--tls-cert", cert, "--tls-key", dir .. "/emulator-key.pem" }
    env = { XDG_STATE_HOME = dir .. "/state" }
  end)

  teardown(function()
    if emu then emu.cleanup() end
    if dir then os.execute("rm -rf " .. run.quote(dir)) end
  end)

  local function aep(args, extra_env)
    local e = { XDG_STATE_HOME = env.XDG_STATE_HOME }
    for k, v in pairs(extra_env or {}) do e[k] = v end
    return run.aep(args, { env = e })
  end

  it("serves HTTPS; aep.http verifies it against the CA it is given, and only that one", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", emu.url)
    local url = emu.url .. "/emulator/health"
    local resp, msg, code = http.request { url = url }
    assert.is_nil(resp)
    assert.are.equal("TLS", code)
    assert.matches("self%-signed certificate", msg)
    assert.are.equal(200, assert(http.request { url = url, cainfo = cert }).status)
    assert.are.equal(200, assert(http.request { url = url, insecure = true }).status)
    -- another self-signed certificate for the same name does not vouch for this server
    local other = dir .. "/other-cert.pem"
    assert(host.write_file(other, assert(crypto.generate_rsa { bits = 1024 }).certificate))
    resp, msg, code = http.request { url = url, cainfo = other }
    assert.is_nil(resp)
    assert.are.equal("TLS", code)
    -- and the environment file the emulator wrote points clients at https
    assert.are.equal(emu.url, emu.env.PLATFORM_GATEWAY)
  end)

  it("aep run fails with a TLS error without the CA and passes with --cacert or AEP_CACERT", function()
    local r = aep { "run", "auth", "--env", emu.data_dir }
    assert.are.equal(1, r.status)
    assert.matches("TLS: SSL certificate problem: self%-signed certificate", r.stderr)
    r = aep { "run", "auth", "--env", emu.data_dir, "--cacert", cert }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("", r.stderr)
    assert.matches("ok +IMS token", r.stdout)
    r = aep({ "run", "auth", "--env", emu.data_dir }, { AEP_CACERT = cert })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("", r.stderr)
  end)

  it("aep run --insecure passes and warns", function()
    local r = aep { "run", "auth", "--env", emu.data_dir, "--insecure" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(WARNING, r.stderr)
  end)

  it("aep stream fails with a TLS error without the CA, and warns with --insecure", function()
    local input = dir .. "/one.jsonl"
    assert(host.write_file(input, '{"a":1}\n'))
    -- an inlet and a schema given: the stream makes no Platform call, only the inlet's requests
    local base = { "stream", "--env", emu.data_dir, "--inlet", emu.url .. "/collection/nosuchinlet",
                   "--schema", "https://ns.adobe.com/x/schemas/1", "--dataset", "0123", "--input", input }
    -- no retry: a certificate that fails verification fails again; the run stops and says why
    local r = aep(base)
    assert.are.equal(1, r.status)
    assert.matches("TLS: SSL certificate problem: self%-signed certificate", r.stdout .. r.stderr)
    assert.matches("give the CA with %-%-cacert FILE, or %-%-insecure", r.stderr)
    assert.matches("accepted 0   rejected 0   skipped 0   failed 1", r.stdout, 1, true)
    assert.matches("1 requests, 0 retries", r.stdout, 1, true)
    local args = { table.unpack(base) }
    args[#args + 1] = "--insecure"
    r = aep(args)
    assert.matches("Inlet not found", r.stdout .. r.stderr) -- the request got through
    assert.are.equal(WARNING, r.stderr:match("aep: warning: TLS[^\n]*\n"))
  end)
end)
