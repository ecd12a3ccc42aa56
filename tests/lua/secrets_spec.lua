-- Secret hygiene end to end (SECURITY.md): the whole workflow, a stream, the REPL and `aep config`
-- run with --verbose against an emulator, writing reports, manifests, reject files, a checkpoint
-- and REPL history; then every byte they printed or wrote is searched for the client secret,
-- the private key (any 40-character slice of its base64 body), every access token the emulator
-- issued and every JWT aep signed (the emulator's admin and console answers too). None may
-- appear. Also: aep warns about credential files that
-- others can read.
--
-- The emulator stores tokens only as SHA-256 digests (lua/aep/emulator/auth.lua), so the spec
-- starts it with LUA_INIT set to a file that wraps auth.issue and auth.exchange_jwt to note each
-- token and JWT in a capture file outside the searched tree; the digests in the store prove the
-- capture complete.
package.path = "tests/lua/?.lua;" .. package.path
local run = require "support.run"
local spawn = require "support.spawn"
local json = require "aep.json"
local host = require "aep.host"
local crypto = require "aep.crypto"
local sqlite = require "aep.sqlite"

local q = run.quote

local INSTRUMENT = [[
local capture = os.getenv("AEP_SPEC_CAPTURE")
local ok, auth = pcall(require, "aep.emulator.auth")
if capture and ok then
  local function note(kind, value)
    local f = assert(io.open(capture, "a"))
    f:write(kind, "\t", value, "\n")
    f:close()
  end
  local issue, exchange = auth.issue, auth.exchange_jwt
  auth.issue = function(...)
    local token, record, lifetime = issue(...)
    note("token", token)
    return token, record, lifetime
  end
  auth.exchange_jwt = function(req, ...)
    local jwt = auth.parse_form(req).jwt_token
    if jwt and jwt ~= "" then note("jwt", jwt) end
    return exchange(req, ...)
  end
end
]]

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, data, mode)
  assert(host.write_file(path, data, mode))
end

local function list(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

describe("secrets", function()
  local W, E, env, emu, capture, outputs, tmp_before

  local function aep(name, args, opts)
    opts = opts or {}
    local e = { HOME = W .. "/home", XDG_STATE_HOME = W .. "/state", XDG_CACHE_HOME = W .. "/cache",
                XDG_CONFIG_HOME = W .. "/config", NO_COLOR = "1" }
    for k, v in pairs(opts.env or {}) do e[k] = v end
    local r = run.aep(args, { env = e, stdin = opts.stdin })
    outputs[#outputs + 1] = { name = name .. " (stdout)", text = r.stdout }
    outputs[#outputs + 1] = { name = name .. " (stderr)", text = r.stderr }
    write(W .. "/out/" .. name .. ".stdout", r.stdout)
    write(W .. "/out/" .. name .. ".stderr", r.stderr)
    return r
  end

  setup(function()
    W = run.tmpdir()
    E = W .. "/emu"
    outputs = {}
    for _, d in ipairs { "home", "state", "cache", "config", "out", "spec" } do assert(host.mkdir(W .. "/" .. d)) end
    capture = W .. "/spec/captured.tsv"
    write(W .. "/spec/instrument.lua", INSTRUMENT)
    tmp_before = {}
    for _, f in ipairs(list("ls -d /tmp/lua_* 2>/dev/null")) do tmp_before[f] = true end

    -- the emulator, its output in files (searched too), tokens noted in the capture file
    local child = spawn.spawn({ "sh", "-c", "exec " .. q(run.bin) .. " emulator --port 0 --verbose --data-dir " ..
      q(E) .. " >" .. q(W .. "/out/emulator.stdout") .. " 2>" .. q(W .. "/out/emulator.stderr") }, nil,
      { env = { LUA_INIT = "@" .. W .. "/spec/instrument.lua", AEP_SPEC_CAPTURE = capture } })
    local url
    for _ = 1, 600 do
      url = (slurp(W .. "/out/emulator.stdout") or ""):match("listening on (%S+)\naep emulator: ready\n")
      if url then break end
      host.sleep(0.05)
    end
    assert(url, "the emulator did not start: " .. tostring(slurp(W .. "/out/emulator.stderr")))
    emu = { child = child, url = url }
    env = {}
    for _, v in ipairs(assert(json.decode(assert(slurp(E .. "/environment.json")))).values) do env[v.key] = v.value end
  end)

  teardown(function()
    if emu and not emu.child.done then emu.child:stop() end
    if W and not os.getenv("AEP_KEEP_TMP") then os.execute("rm -rf " .. q(W)) end
  end)

  it("never appear in what aep prints or writes", function()
    local input = W .. "/spec/input.jsonl"
    local records = assert(json.decode(assert(slurp("data/AEP_loyalty_profiles.json"))))
    local lines = {}
    for i = 1, 10 do lines[i] = json.encode(records[i]) end
    lines[#lines + 1] = '{"_exchangeinternal": {"loyaltyID": "broken@example.com", "totalLoyaltyPoints": "lots"}'
    lines[#lines + 1] = "this is not JSON"
    write(input, table.concat(lines, "\n") .. "\n")
    local manifest = W .. "/out/manifest.json"

    -- the whole workflow (OAuth), batch import included
    local r = aep("run", { "run", "realtime-import", "--batch-import", "--env", E, "--verbose", "--run-name", "sec",
                           "--manifest", manifest })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    -- the JWT exchange
    r = aep("run-jwt", { "run", "auth", "--jwt", "--env", E, "--verbose", "--manifest", W .. "/out/manifest-jwt.json" })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    -- a refused authentication, traced
    r = aep("run-refused", { "run", "auth", "--env", E, "--verbose", "--manifest", W .. "/out/manifest-refused.json" },
      { env = { AEP_API_KEY = "not-the-client-id" } })
    assert.are.equal(1, r.status)
    -- a stream with every file it can write, twice (JSON and JUnit reports), the second resumed
    local stream = { "stream", "--env", E, "--dataset", "DATASET_ID_PROFILE", "--manifest", manifest,
                     "--run-name", "sec", "--input", input, "--mapping", "mappings/loyalty_profile.lua", "--verbose",
                     "--reject-file", W .. "/out/rejects.jsonl", "--checkpoint", W .. "/out/checkpoint",
                     "--accepted-file", W .. "/out/accepted.tsv" }
    local s1 = { table.unpack(stream) }
    s1[#s1 + 1] = "--report"
    s1[#s1 + 1] = W .. "/out/report.json"
    r = aep("stream", s1)
    assert.are.equal(2, r.status, r.stdout .. r.stderr) -- the two bad records are rejected
    assert.truthy(slurp(W .. "/out/rejects.jsonl"):find("this is not JSON", 1, true))
    local s2 = { table.unpack(stream) }
    s2[#s2 + 1] = "--report"
    s2[#s2 + 1] = W .. "/out/report.xml"
    s2[#s2 + 1] = "--json"
    aep("stream-again", s2)
    -- the REPL, asked to show the configuration, the client and a token
    r = aep("repl", { "repl", "--env", E, "--verbose" }, { stdin = table.concat({
      'client:get("/data/foundation/schemaregistry/stats").status', "cfg", "client",
      'cfg:get("CLIENT_SECRET")', 'cfg:get("PRIVATE_KEY")', "client:auth():token()",
      "error(client:auth():token())", "" }, "\n") })
    assert.truthy(r.stdout:find("200", 1, true), r.stdout .. r.stderr)
    assert.truthy(slurp(W .. "/state/aep/history"), "no REPL history written")
    aep("config", { "config", "--env", E, "--verbose" })
    aep("config-json", { "config", "--env", E, "--json" })

    -- what the emulator itself answers about its state: admin endpoints and the console
    local http = require "aep.http"
    for _, path in ipairs { "/emulator/state", "/emulator/requests?limit=100000", "/emulator/faults",
                            "/emulator/health", "/emulator/ui", "/emulator/ui/api/overview",
                            "/emulator/ui/api/live", "/emulator/ui/api/batches" } do
      local resp = assert(http.request { url = emu.url .. path })
      assert(resp.status == 200 or resp.status == 404, path .. ": " .. resp.status)
      outputs[#outputs + 1] = { name = "GET " .. path, text = resp.body }
    end

    local _, how, code = emu.child:stop()
    assert.are.same({ "exit", 0 }, { how, code })

    -- what to look for
    local secret = assert(env.CLIENT_SECRET)
    local body = assert(env.PRIVATE_KEY:match("%-%-%-%-%-BEGIN [%u ]+%-%-%-%-%-(.-)%-%-%-%-%-END")):gsub("%s", "")
    local slices = {}
    for i = 1, #body - 39 do slices[body:sub(i, i + 39)] = true end
    local tokens, jwts = {}, {}
    for kind, value in (assert(slurp(capture), "nothing captured")):gmatch("(%a+)\t([^\n]+)\n") do
      if kind == "token" then tokens[#tokens + 1] = value else jwts[#jwts + 1] = value end
    end
    -- the capture holds every token the emulator issued: its store has exactly their digests
    local db = assert(sqlite.open(E .. "/emulator.db"))
    local stored = {}
    for row in db:prepare("SELECT hash FROM tokens"):rows() do stored[#stored + 1] = row[1] end
    db:close()
    local captured = {}
    for _, t in ipairs(tokens) do captured[#captured + 1] = crypto.sha256_hex(t) end
    table.sort(stored)
    table.sort(captured)
    assert.are.same(stored, captured)
    assert.is_true(#tokens >= 5, #tokens .. " tokens")
    assert.are.equal(1, #jwts)
    local needles = { ["client secret"] = secret }
    for i, t in ipairs(tokens) do
      local _, payload, sig = t:match("^([^.]+)%.([^.]+)%.([^.]+)$")
      needles["access token " .. i] = t
      needles["access token " .. i .. " payload"] = payload
      needles["access token " .. i .. " signature"] = sig
    end
    for i, j in ipairs(jwts) do
      needles["JWT " .. i] = j
      needles["JWT " .. i .. " signature"] = assert(j:match("%.([^.]+)$"))
    end

    local function leaks(text)
      local found = {}
      local forms = { text, (text:gsub("\\/", "/"):gsub("\\n", "\n")) }
      for _, t in ipairs(forms) do
        for what, needle in pairs(needles) do
          if t:find(needle, 1, true) then found[what] = true end
        end
        for run_ in t:gmatch("[%w+/]+") do
          if #run_ >= 40 then
            for i = 1, #run_ - 39 do
              if slices[run_:sub(i, i + 39)] then found["private key"] = true break end
            end
          end
        end
      end
      local names = {}
      for what in pairs(found) do names[#names + 1] = what end
      table.sort(names)
      return names
    end

    -- everything printed, and every file written under the work tree (the emulator's own
    -- credential store and environment file excepted: they hold the org's credentials by design,
    -- mode 0600), and any temporary file aep made and left
    local searched = {}
    for _, o in ipairs(outputs) do searched[#searched + 1] = o end
    local kinds = {}
    for _, f in ipairs(list("find " .. q(W) .. " -type f | sort")) do
      local rel = f:sub(#W + 2)
      local own = rel:match("^spec/") or rel == "emu/environment.json" or rel:match("^emu/emulator%.db")
      if own then
        if rel:match("^emu/") then assert.are.equal(tonumber("600", 8), host.stat(f).mode, rel) end
      else
        searched[#searched + 1] = { name = rel, text = assert(slurp(f)) }
        local k = rel:match("^out/") and "output" or rel:match("^state/") and "state" or rel:match("^emu/") and "emulator" or "other"
        kinds[k] = (kinds[k] or 0) + 1
      end
    end
    for _, f in ipairs(list("ls -d /tmp/lua_* 2>/dev/null")) do
      if not tmp_before[f] then
        local text = slurp(f)
        if text then searched[#searched + 1] = { name = f, text = text } end
      end
    end
    -- the things the issue names were there to be searched
    for _, name in ipairs { "out/manifest.json", "out/report.json", "out/report.xml", "out/rejects.jsonl",
                            "out/checkpoint", "out/accepted.tsv", "state/aep/history", "out/emulator.stderr" } do
      local present = false
      for _, s in ipairs(searched) do if s.name == name then present = true end end
      assert(present, name .. " was not written")
    end
    local bad = {}
    local bytes = 0
    for _, s in ipairs(searched) do
      bytes = bytes + #s.text
      local l = leaks(s.text)
      if #l > 0 then bad[#bad + 1] = s.name .. ": " .. table.concat(l, ", ") end
    end
    assert.are.same({}, bad)
    assert.is_true(bytes > 100000, "searched only " .. bytes .. " bytes") -- the verbose traces are there
    -- and the search does find what it looks for
    assert.are.same({ "client secret" }, leaks("x" .. secret .. "x"))
    assert.are.same({ "private key" }, leaks(body:sub(101, 140)))
    assert.are.same({ "access token 1", "access token 1 payload", "access token 1 signature" }, leaks(tokens[1]))
  end)

  it("writes files (manifests, reports, checkpoints) through a fresh temporary, never one planted there", function()
    local victim = W .. "/spec/victim"
    write(victim, "untouched")
    local target = W .. "/spec/report.json"
    assert(os.execute("ln -s " .. q(victim) .. " " .. q(target .. ".tmp")))
    assert(host.write_file(target, "secret-bearing data", tonumber("600", 8)))
    assert.are.equal("untouched", slurp(victim))
    assert.are.equal("secret-bearing data", slurp(target))
    assert.are.equal(tonumber("600", 8), host.stat(target).mode)
  end)

  it("makes aep warn about credential files others can read", function()
    local e = W .. "/spec/world-env.json"
    write(e, assert(slurp(E .. "/environment.json")), tonumber("644", 8))
    local r = aep("config-world", { "config", "--env", e })
    assert.are.equal(0, r.status)
    assert.are.equal("aep: warning: environment file " .. e .. " is readable by others (mode 644): chmod 600 " ..
      e .. "\n", r.stderr)
    host.chmod(e, tonumber("600", 8))
    assert.are.equal("", aep("config-private", { "config", "--env", e }).stderr)

    -- an environment file without secrets is no concern
    local plain = W .. "/spec/plain-env.json"
    write(plain, json.encode { PLATFORM_GATEWAY = emu.url, SANDBOX_NAME = "prod" }, tonumber("644", 8))
    assert.are.equal("", aep("config-plain", { "config", "--env", plain }).stderr)

    local key = W .. "/spec/key.pem"
    write(key, env.PRIVATE_KEY, tonumber("640", 8))
    r = aep("config-key", { "config", "--env", e, "--private-key", key })
    assert.are.equal("aep: warning: --private-key " .. key .. " is readable by others (mode 640): chmod 600 " ..
      key .. "\n", r.stderr)
    r = aep("config-key-env", { "config", "--env", e }, { env = { AEP_PRIVATE_KEY_FILE = key } })
    assert.are.equal("aep: warning: AEP_PRIVATE_KEY_FILE " .. key .. " is readable by others (mode 640): chmod 600 " ..
      key .. "\n", r.stderr)
    local secret_file = W .. "/spec/secret.txt"
    write(secret_file, env.CLIENT_SECRET .. "\n", tonumber("604", 8))
    r = aep("config-secret", { "config", "--env", e, "--client-secret-file", secret_file })
    assert.are.equal("aep: warning: --client-secret-file " .. secret_file ..
      " is readable by others (mode 604): chmod 600 " .. secret_file .. "\n", r.stderr)
    host.chmod(key, tonumber("600", 8))
    assert.are.equal("", aep("config-key-private", { "config", "--env", e, "--private-key", key }).stderr)
  end)
end)
