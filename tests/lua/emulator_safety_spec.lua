-- The emulator's safety (SECURITY.md): where it listens, who may read its files, what an upload's
-- file name can reach, how much memory one request may take, and a storm of malformed requests.
-- Raw requests go through tests/lua/support/rawhttp.pl (curl would normalise or refuse them).
package.path = "tests/lua/?.lua;" .. package.path
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"
local spawn = require "support.spawn"
local run = require "support.run"
local json = require "aep.json"
local host = require "aep.host"
local http = require "aep.http"

local RAW = "tests/lua/support/rawhttp.pl"
local IMPORT = "/data/foundation/import/batches"

local function perl(args, stdin)
  local argv = { "perl", RAW }
  for _, a in ipairs(args) do argv[#argv + 1] = tostring(a) end
  local r = run.cmd(argv, { stdin = stdin })
  assert(r.status == 0 and r.stderr == "", "rawhttp.pl: " .. r.stderr)
  return r.stdout
end

local function status_of(response) return tonumber(response:match("^HTTP/1%.[01] (%d%d%d)")) end

-- Listening TCP sockets on `port`, as "ADDR:PORT" hex strings from /proc/net/tcp{,6}.
local function listeners(port)
  local out = {}
  for _, f in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    local fh = io.open(f, "r")
    if fh then
      for line in fh:lines() do
        local addr, p, st = line:match("^%s*%d+:%s+(%x+):(%x+)%s+%x+:%x+%s+(%x%x)")
        if addr and tonumber(p, 16) == port and st == "0A" then out[#out + 1] = addr end
      end
      fh:close()
    end
  end
  table.sort(out)
  return out
end

local function proc_status(pid, field)
  local fh = assert(io.open("/proc/" .. pid .. "/status", "r"))
  local text = fh:read("a")
  fh:close()
  return tonumber(text:match(field .. ":%s*(%d+)"))
end

local function open_fds(pid)
  local p = assert(io.popen("ls /proc/" .. pid .. "/fd | wc -l"))
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

local function files_under(dir)
  local p = assert(io.popen("find " .. run.quote(dir) .. " -type f | sort"))
  local list = {}
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

describe("emulator safety", function()
  it("listens on 127.0.0.1 only, unless --host says otherwise", function()
    local emu = emulator.start()
    local ok, err = pcall(function()
      assert.are.equal("http://127.0.0.1:" .. emu.port, emu.url)
      assert.are.same({ "0100007F" }, listeners(emu.port))
    end)
    emu.cleanup()
    assert(ok, err)

    local any = emulator.start { "--host", "0.0.0.0" }
    ok, err = pcall(function() assert.are.same({ "00000000" }, listeners(any.port)) end)
    any.cleanup()
    assert(ok, err)
  end)

  it("keeps its credentials owner-only: data directory 0700, environment.json and the store 0600", function()
    local emu = emulator.start()
    local ok, err = pcall(function()
      assert.are.equal(tonumber("700", 8), host.stat(emu.data_dir).mode)
      local seen = {}
      for _, name in ipairs { "environment.json", "emulator.db", "emulator.db-wal", "emulator.db-shm" } do
        local st = host.stat(emu.data_dir .. "/" .. name)
        if st then
          seen[#seen + 1] = name
          assert.are.equal(tonumber("600", 8), st.mode, name)
        end
      end
      assert.are.same({ "environment.json", "emulator.db" }, { seen[1], seen[2] })
    end)
    emu.cleanup()
    assert(ok, err)
  end)

  describe("with data", function()
    local parent, emu, api, ids, batch

    setup(function()
      parent = run.tmpdir()
      assert(host.mkdir(parent .. "/data", tonumber("700", 8))) -- the helper puts stderr.log there
      emu = emulator.start({}, { data_dir = parent .. "/data" })
      api = fixtures.client(emu)
      ids = fixtures.loyalty(api)
      local s, b = api:post(IMPORT, { datasetId = ids.profile_dataset, inputFormat = { format = "json" } })
      batch = fixtures.expect(s, 201, b, "create batch").id
    end)

    teardown(function()
      if emu then emu.stop() end
      if parent then os.execute("rm -rf " .. run.quote(parent)) end
    end)

    -- A PUT of a batch file, sent raw so the name reaches the emulator exactly as written.
    local function put_file(name, body)
      local h = api:headers { ["Content-Type"] = "application/octet-stream" }
      local lines = { "PUT " .. IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset .. "/files/" ..
        name .. " HTTP/1.1", "Host: 127.0.0.1:" .. emu.port, "Content-Length: " .. #body, "Connection: close" }
      for k, v in pairs(h) do lines[#lines + 1] = k .. ": " .. v end
      return status_of(perl({ "raw", emu.port }, table.concat(lines, "\r\n") .. "\r\n\r\n" .. body))
    end

    it("stores uploaded files inside the data directory whatever their names", function()
      local names = {
        "../../escaped-1.json", "..%2F..%2Fescaped-2.json", "%2e%2e%2f%2e%2e%2fescaped-3.json",
        "..%252F..%252Fescaped-4.json", "%2Ftmp%2Fescaped-5.json", "/..//..//escaped-6.json",
        "..%5C..%5Cescaped-7.json", "a/../../../../escaped-8.json", "escaped-9.json%00.png",
        "....//....//escaped-10.json", "%c0%ae%c0%ae%2fescaped-11.json", "..",
      }
      local statuses = {}
      for i, name in ipairs(names) do
        local body = '{"n":' .. i .. "}"
        local s = put_file(name, body)
        statuses[#statuses + 1] = s
        assert(s == 200 or s == 400 or s == 404, name .. ": status " .. tostring(s))
      end
      assert.are.equal(200, put_file("plain.json", '{"n":0}'))
      -- nothing outside DATA_DIR, and under DATA_DIR/batches only the emulator's own file names
      for _, f in ipairs(files_under(parent)) do
        assert.are.equal(parent .. "/data/", f:sub(1, #parent + 6), f)
        if f:find("/batches/", 1, true) then
          assert.matches("^" .. (parent .. "/data/batches/"):gsub("%p", "%%%0") .. "[%w]+/%d+%.upload$", f)
        end
        assert.is_nil(f:find("escaped", 1, true), f)
      end
      assert.is_nil(host.stat("/tmp/escaped-5.json"))
      assert.is_true(#files_under(parent .. "/data/batches") >= 2)
      for _, f in ipairs(files_under(parent .. "/data/batches")) do
        assert.are.equal(tonumber("600", 8), host.stat(f).mode, f)
      end
    end)

    it("refuses a request body over max_body before reading it, and keeps serving", function()
      local max = require("aep.emulator").MAX_BODY
      local fds = open_fds(emu.pid)
      local hwm = proc_status(emu.pid, "VmHWM")
      local resp = perl({ "raw", emu.port }, "PUT " .. IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset ..
        "/files/big.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: " ..
        (max + 1) .. "\r\n\r\n" .. string.rep("x", 65536))
      assert.are.equal(413, status_of(resp))
      resp = perl({ "raw", emu.port }, "POST /collection/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n")
      assert.are.equal(413, status_of(resp))
      -- neither was buffered: the high-water mark of resident memory did not move by a body's worth
      assert.is_true(proc_status(emu.pid, "VmHWM") - hwm < 64 * 1024, "VmHWM grew")
      assert.are.equal(fds, open_fds(emu.pid))
      local s = api:get("/data/foundation/catalog/dataSets/" .. ids.profile_dataset)
      assert.are.equal(200, s)
    end)

    -- libmicrohttpd's epoll mode missed this EOF and kept the connection until the idle timeout
    -- (aep.server now drives it with select): a storm of these ran the process out of descriptors.
    it("closes at once a connection whose client left in the middle of a body", function()
      local fds = open_fds(emu.pid)
      local resp = perl({ "raw", emu.port }, "POST /collection/abc HTTP/1.1\r\nHost: x\r\n" ..
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"short\":")
      assert.are.equal("", resp)
      assert.are.equal(fds, open_fds(emu.pid))
    end)

    it("keeps serving, with its data intact, through 10,000 malformed requests", function()
      local _, before = api:get("/emulator/state")
      local _, datasets_before = api:get("/data/foundation/catalog/dataSets")
      local fds = open_fds(emu.pid)
      local out = perl { "storm", emu.port, 10000 }
      local sent, answered, silent, stuck = out:match("sent (%d+) answered (%d+) silent (%d+) stuck (%d+)")
      assert.are.equal("10000", sent, out)
      assert.are.equal("0", stuck, out)
      assert.are.equal(10000, tonumber(answered) + tonumber(silent))
      for code in out:gmatch("status (%d+) %d+") do
        assert(tonumber(code) < 500 or code == "505", "the storm got a " .. code .. ":\n" .. out)
      end
      assert.is_truthy(host.kill(emu.pid, "0"))
      assert.are.equal(fds, open_fds(emu.pid)) -- every connection closed
      local s, after = api:get("/emulator/state")
      assert.are.equal(200, s)
      assert.are.same(before.sandboxes, after.sandboxes)
      assert.are.same(before.org, after.org)
      local s2, datasets_after = api:get("/data/foundation/catalog/dataSets")
      assert.are.equal(200, s2)
      assert.are.same(datasets_before, datasets_after)
      assert.are.equal("", (emu.stderr():gsub("[^\n]*warning[^\n]*\n", "")))
    end)
  end)

  it("holds at most max_body of a chunked body in memory (aep.server)", function()
    local script = [[
      local server = require "aep.server"
      local srv = assert(server.listen { port = 0, max_body = 1048576 })
      srv:serve(function(req) return 200, {}, tostring(#req.body) end,
        function() print("listening on " .. srv:url()); io.stdout:flush() end)
    ]]
    local child = spawn.spawn({ spawn.aep, "-e", script }, "^listening on (%S+)")
    local ok, err = pcall(function()
      local port = tonumber(child.url:match(":(%d+)$"))
      local hwm = proc_status(child.pid, "VmHWM")
      assert.are.equal(413, status_of(perl { "chunked", port, "/big", 64 * 1024 * 1024 }))
      assert.are.equal(200, status_of(perl { "chunked", port, "/small", 1048576 }))
      local grown = proc_status(child.pid, "VmHWM") - hwm
      assert.is_true(grown < 16 * 1024, "64 MB sent, VmHWM grew by " .. grown .. " kB")
    end)
    child:stop()
    assert(ok, err)
  end)
end)
