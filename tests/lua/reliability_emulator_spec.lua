-- aep emulator under attack: no request or client may keep the others out (health answers within
-- a 1 s client timeout throughout), bodies are refused before they are read, one emulator per data
-- directory, and the admin surface answers only its own callers.
package.path = "tests/lua/?.lua;" .. package.path
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"
local spawn = require "support.spawn"
local http = require "aep.http"
local json = require "aep.json"
local host = require "aep.host"
local sqlite = require "aep.sqlite"

local function health(emu)
  local ok, resp = pcall(http.request, { url = emu.url .. "/emulator/health", timeout = 1, connect_timeout = 1 })
  return ok and resp and resp.status == 200
end

local function rss_kb(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)"))
end

local function req(emu, method, path, headers, body)
  local resp = assert(http.request { method = method, url = emu.url .. path, headers = headers or {}, body = body,
                                     timeout = 10 })
  return resp.status, json.decode(resp.body) or resp.body, resp
end

-- Run the command in the background; its stdout goes to the returned file.
local function background(cmd)
  local out = os.tmpname()
  os.execute("( " .. cmd .. " ) >" .. out .. " 2>&1 &")
  return out
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

describe("emulator reliability", function()
  it("deletes a 50,000-record dataset while health keeps answering, and the data is gone", function()
    local emu, api, ids = fixtures.start()
    local ok, err = pcall(function()
      local ds = ids.profile_dataset
      emu.stop()
      -- 50k stored records with one identity each, written as ingest.insert writes them
      local db = assert(sqlite.open(emu.data_dir .. "/emulator.db"))
      db:exec("BEGIN")
      local ins = db:prepare("INSERT INTO ingest_records (sandbox, dataset_id, batch_id, xaction_id, received_ms, " ..
        "status, entity, kind, idents) VALUES ('prod', ?, 'B1', ?, 1, 'success', '{}', 'p', ?)")
      for i = 1, 50000 do ins:run(ds, "x" .. i, "PEmail\31u" .. i .. "@example.com") end
      ins:close()
      db:exec("COMMIT")
      db:close()
      emu.restart()
      local state = select(2, req(emu, "GET", "/emulator/state"))
      assert.are.equal(50000, state.sandboxes.prod.records)

      local h = {}
      for k, v in pairs(api:headers()) do h[#h + 1] = "-H " .. spawn.quote(k .. ": " .. v) end
      local out = background("curl -s -o /dev/null -w '%{http_code}' -X DELETE " .. table.concat(h, " ") .. " " ..
        spawn.quote(emu.url .. "/data/foundation/catalog/dataSets/" .. ds))
      -- what the store still holds: records of the dataset, their identity links
      local function left()
        local rdb = assert(sqlite.open(emu.data_dir .. "/emulator.db"))
        local st = rdb:prepare("SELECT (SELECT count(*) FROM ingest_records WHERE dataset_id = ?), " ..
          "(SELECT count(*) FROM ingest_identities WHERE id LIKE 'u%@example.com')")
        local row = st:first(ds)
        st:close()
        rdb:close()
        return row[1] + row[2]
      end
      local deadline = host.monotonic() + 60
      while host.monotonic() < deadline do
        assert(health(emu), "health did not answer within 1 s during the delete")
        if slurp(out) == "200" and left() == 0 then break end
        host.sleep(0.05)
      end
      assert.are.equal("200", slurp(out))
      os.remove(out)
      assert.are.equal(0, left())
      state = select(2, req(emu, "GET", "/emulator/state"))
      assert.are.equal(0, state.sandboxes.prod.records or 0)
      local s = req(emu, "GET", "/emulator/datasets/" .. ds .. "/records")
      assert.are.equal(404, s)
    end)
    emu.cleanup()
    assert(ok, err)
  end)

  it("keeps answering health while 300 slow clients hold connections open (descriptor limit 256)", function()
    local emu = emulator.start({}, { nofile = 256 })
    local loris
    local ok, err = pcall(function()
      loris = spawn.spawn({ "perl", "tests/lua/support/slowloris.pl", emu.port, 300, 5, 60 }, "^open %d+ refused %d+$")
      for _ = 1, 5 do
        assert.is_true(health(emu), "health did not answer within 1 s")
      end
      local s = req(emu, "GET", "/emulator/state")
      assert.are.equal(200, s)
    end)
    if loris then loris:stop() end
    emu.cleanup()
    assert(ok, err)
  end)

  it("refuses a 50 MB body to a 1 MB route from its headers, without reading it", function()
    local emu, _, ids = fixtures.start()
    local ok, err = pcall(function()
      local before = rss_kb(emu.pid)
      local body = string.rep("x", 50 * 1024 * 1024)
      local resp = assert(http.request { method = "POST", url = emu.url .. "/collection/" .. ids.inlet_id,
        headers = { ["Content-Type"] = "application/json" }, body = body, timeout = 20 })
      assert.are.equal(413, resp.status)
      local b = json.decode(resp.body)
      assert.are.equal(string.format("inletId: [%s] Request payload of %d bytes exceeds the limit of 1048576 bytes",
        ids.inlet_id, #body), b.report and b.report.message or b.detail)
      local grown = rss_kb(emu.pid) - before
      assert(grown < 8 * 1024, "RSS grew by " .. grown .. " kB")
      -- admin bodies: 64 KiB
      local big = json.encode { spec = string.rep(" ", 1024 * 1024) }
      local s, p = req(emu, "PUT", "/emulator/faults", { ["Content-Type"] = "application/json" }, big)
      assert.are.equal(413, s)
      assert.are.equal("Request body of " .. #big .. " bytes exceeds the limit of 65536 bytes for PUT /emulator/faults",
        p.detail)
      assert.is_true(health(emu))
    end)
    emu.cleanup()
    assert(ok, err)
  end)

  it("lets one emulator hold a data directory: a second start names it; a stale lock is taken over", function()
    local emu = emulator.start()
    local ok, err = pcall(function()
      local lock = json.decode(slurp(emu.data_dir .. "/emulator.lock"))
      assert.are.same({ pid = emu.pid, url = emu.url }, { pid = math.tointeger(lock.pid), url = lock.url })
      local p = io.popen(spawn.quote(spawn.aep) .. " emulator --port 0 --data-dir " .. spawn.quote(emu.data_dir) .. " 2>&1")
      local text = p:read("a")
      local _, _, code = p:close()
      assert.are.equal(1, code)
      assert.are.equal(string.format("aep emulator: %s is in use by the emulator with pid %d at %s " ..
        "(stop it, or use another --data-dir)\n", emu.data_dir, emu.pid, emu.url), text)
      -- `aep run` reuses it
      local found = require("aep.run.emulator").find_running(emu.data_dir)
      assert.are.equal(emu.url, found and found.url)
      -- a lock left by a dead process
      emu.kill9()
      local dead = io.popen("sh -c 'echo $$'"):read("l")
      local f = assert(io.open(emu.data_dir .. "/emulator.lock", "w"))
      f:write(json.encode { pid = tonumber(dead), url = "http://127.0.0.1:1" })
      f:close()
      emu.restart()
      assert.is_true(health(emu))
      lock = json.decode(slurp(emu.data_dir .. "/emulator.lock"))
      assert.are.equal(emu.pid, math.tointeger(lock.pid))
    end)
    emu.cleanup()
    assert(ok, err)
  end)

  it("says which port is in use", function()
    local emu = emulator.start()
    local dir = os.tmpname()
    os.remove(dir)
    local p = io.popen(spawn.quote(spawn.aep) .. " emulator --port " .. emu.port .. " --data-dir " .. dir .. " 2>&1")
    local text = p:read("a")
    local _, _, code = p:close()
    os.execute("rm -rf " .. dir)
    emu.cleanup()
    assert.are.equal(1, code)
    assert.are.equal("aep emulator: port " .. emu.port .. " is in use (another emulator? use --port 0 for a free one)\n", text)
  end)

  describe("admin surface", function()
    local emu
    setup(function() emu = emulator.start() end)
    teardown(function() emu.cleanup() end)

    it("answers only Host names of this emulator", function()
      local s, b = req(emu, "GET", "/emulator/state", { Host = "evil.example:" .. emu.port })
      assert.are.equal(403, s)
      assert.are.equal("Host 'evil.example:" .. emu.port .. "' is not this emulator: its /emulator/ endpoints are " ..
        "local-only, call them as " .. emu.url, b.detail)
      assert.are.equal(403, (req(emu, "POST", "/emulator/reset", { Host = "evil.example", ["X-Aep-Admin"] = "1" })))
      assert.are.equal(403, (req(emu, "GET", "/emulator/requests", { Host = "127.0.0.1.evil.example" })))
      assert.are.equal(200, (req(emu, "GET", "/emulator/state", { Host = "localhost:" .. emu.port })))
      assert.are.equal(200, (req(emu, "GET", "/emulator/faults", { Host = "[::1]:" .. emu.port })))
    end)

    it("refuses simple and cross-origin requests that change state", function()
      local s, b = req(emu, "POST", "/emulator/reset", { ["Content-Type"] = "text/plain" }, "")
      assert.are.equal(403, s)
      assert.are.equal("POST /emulator/reset changes the emulator's state: send it with 'Content-Type: " ..
        "application/json' or an 'X-Aep-Admin: 1' header", b.detail)
      s, b = req(emu, "POST", "/emulator/reset", { ["Content-Type"] = "application/json",
        Origin = "http://evil.example" }, "{}")
      assert.are.equal(403, s)
      assert.are.equal("Origin 'http://evil.example' may not call the emulator's admin endpoints", b.detail)
      assert.are.equal(200, (req(emu, "POST", "/emulator/reset", { ["X-Aep-Admin"] = "1" })))
      assert.are.equal(200, (req(emu, "POST", "/emulator/reset", { ["Content-Type"] = "application/json",
        Origin = emu.url }, "{}")))
    end)

    it("answers an empty record list as a JSON array", function()
      local api = fixtures.client(emu)
      local s, sc = api:post("/data/foundation/schemaregistry/tenant/schemas", { type = "object", title = "Empty",
        allOf = { { ["$ref"] = "https://ns.adobe.com/xdm/context/profile" } } },
        { headers = { Accept = "application/vnd.adobe.xed+json" } })
      assert.are.equal(201, s)
      local ds = fixtures.dataset(api, "Empty DS", sc["$id"], false)
      local _, _, resp = req(emu, "GET", "/emulator/datasets/" .. ds .. "/records")
      assert.truthy(resp.body:find('"records":[]', 1, true), resp.body)
    end)

    it("refuses an unknown x-sandbox-name until the sandbox is created", function()
      local api = fixtures.client(emu)
      api.sandbox = "nosuch"
      local s, b = api:get("/data/foundation/catalog/dataSets")
      assert.are.equal(403, s)
      assert.are.equal("Sandbox 'nosuch' does not exist in this org (create it with POST /emulator/sandboxes " ..
        "{\"name\": \"nosuch\"} or use prod)", b.detail)
      s = req(emu, "POST", "/emulator/sandboxes", { ["Content-Type"] = "application/json" }, '{"name":"nosuch"}')
      assert.are.equal(201, s)
      s = api:get("/data/foundation/catalog/dataSets")
      assert.are.equal(200, s)
      s = req(emu, "POST", "/emulator/sandboxes", { ["Content-Type"] = "application/json" }, '{"name":"nosuch"}')
      assert.are.equal(200, s)
    end)
  end)

  it("with --host 0.0.0.0: prints the bind address, warns, and writes an admin token (0600, not printed)", function()
    local emu = emulator.start { "--host", "0.0.0.0" }
    local ok, err = pcall(function()
      assert.are.equal("aep emulator: bound to 0.0.0.0:" .. emu.port, emu.lines[1])
      local token = emu.env.EMULATOR_ADMIN_TOKEN
      assert.are.equal(48, #token)
      assert.are.equal(tonumber("600", 8), host.stat(emu.env_file).mode)
      local stderr = emu.stderr()
      assert.truthy(stderr:find("aep emulator: warning: listening on 0.0.0.0:" .. emu.port .. ", not only on loopback", 1, true))
      assert.falsy(stderr:find(token, 1, true))
      assert.falsy(table.concat(emu.lines, "\n"):find(token, 1, true))
      assert.are.equal(200, (req(emu, "GET", "/emulator/state")))
    end)
    emu.cleanup()
    assert(ok, err)
  end)

  it("needs the admin token or an org token for admin calls from other machines", function()
    local admin = require "aep.emulator.admin"
    local app = { admin_token = string.rep("a", 48), env_file = "/d/environment.json", port = 8080, scheme = "http",
                  bind_host = "0.0.0.0", urls = { base = "http://127.0.0.1:8080" }, org = {} }
    local route = { pattern = "/emulator/reset" }
    local function call(headers)
      return admin.guard(app, { remote = "192.0.2.7", method = "POST", headers = headers }, route)
    end
    local s, _, b = call { ["content-type"] = "application/json", host = "emu.example:8080" }
    assert.are.equal(403, s)
    assert.are.equal("Emulator admin calls from 192.0.2.7 need 'Authorization: Bearer TOKEN' with " ..
      "EMULATOR_ADMIN_TOKEN from /d/environment.json or an access token of the org", b.detail)
    assert.are.equal(403, (call { ["content-type"] = "application/json", authorization = "Bearer " .. string.rep("b", 48) }))
    assert.is_nil((call { ["content-type"] = "application/json", authorization = "Bearer " .. string.rep("a", 48) }))
    assert.are.equal(403, (call { authorization = "Bearer " .. string.rep("a", 48) })) -- still non-simple only
  end)
end)
