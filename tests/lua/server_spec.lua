-- aep.server: in-process checks of the handle, and wire behaviour against the test server in a
-- child process (raw bytes go through bash's /dev/tcp, so no socket library is needed).
package.path = "tests/lua/?.lua;" .. package.path
local server = require "aep.server"
local http = require "aep.http"
local cjson = require "cjson"
local spawn = require "support.spawn"
local files = require "support.files"

local function write_tmp(bytes) return files.write(os.tmpname(), bytes) end

-- Send bytes on one fresh connection and return everything the server sent until it closed.
local function raw(port, bytes)
  local path = write_tmp(bytes)
  local p = assert(io.popen(("timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; cat %s >&3; cat <&3' 2>/dev/null")
    :format(port, path)))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

-- The same, in the background (for servers driven by this process): returns the output file.
local function raw_background(port, bytes)
  local path, out = write_tmp(bytes), os.tmpname()
  assert(os.execute(("(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; cat %s >&3; cat <&3' >%s 2>/dev/null; rm -f %s) &")
    :format(port, path, out, path)))
  return out
end

local function statuses(out)
  local t = {}
  for code in out:gmatch("HTTP/1%.1 (%d%d%d)") do t[#t + 1] = tonumber(code) end
  return t
end

describe("aep.server", function()
  describe("handle", function()
    it("listens on loopback, on a free port by default", function()
      local srv = assert(server.listen {})
      assert.is_true(srv:port() > 0)
      assert.are.equal("http://127.0.0.1:" .. srv:port(), srv:url())
      assert.are.equal("aep.server.Server (" .. srv:url() .. ")", tostring(srv))
      srv:close()
    end)

    it("gives LISTEN for a port in use and TLS for a bad key", function()
      local srv = assert(server.listen {})
      local s2, msg, code = server.listen { port = srv:port() }
      assert.is_nil(s2)
      assert.truthy(msg:find("Address already in use", 1, true))
      assert.are.equal("LISTEN", code)
      srv:close()
      s2, msg, code = server.listen { tls_cert = "not a certificate", tls_key = "not a key" }
      assert.is_nil(s2)
      assert.are.equal("string", type(msg))
      assert.are.equal("TLS", code)
    end)

    it("has an idempotent close, and raises when used closed", function()
      local srv = assert(server.listen {})
      srv:step(0, function() end)
      srv:close()
      srv:close()
      assert.has_error(function() srv:port() end, "server: server is closed")
      assert.has_error(function() srv:step(0, function() end) end, "server: server is closed")
      assert.are.equal("aep.server.Server (closed)", tostring(srv))
      do
        local s <close> = assert(server.listen {})
      end
    end)

    it("raises on misuse", function()
      assert.has_error(function() server.listen { port = 70000 } end, "server: bad 'port'")
      assert.has_error(function() server.listen { tls_cert = "x" } end, "server: 'tls_cert' and 'tls_key' go together")
      local srv <close> = assert(server.listen {})
      assert.has_error(function() srv:serve() end)
    end)

    it("serves in this process until a handler calls stop", function()
      local srv <close> = assert(server.listen {})
      local out = raw_background(srv:port(), "GET /first HTTP/1.1\r\nHost: x\r\n\r\n" ..
        "GET /stop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      local seen = {}
      local how = srv:serve(function(req)
        seen[#seen + 1] = req.path
        if req.path == "/stop" then srv:stop() end
        return 200, { ["Content-Type"] = "text/plain" }, "ok " .. req.path
      end, function() seen[#seen + 1] = "ready" end)
      assert.are.equal("stopped", how)
      assert.are.same({ "ready", "/first", "/stop" }, seen)
      os.remove(out)
    end)

    it("runs the idle hook between iterations: true again at once, a number as a wake-up without requests", function()
      local srv <close> = assert(server.listen {})
      local calls, answers = 0, { true, true, 0.01, 0.01 }
      local how = srv:serve(function() return 200, nil, "" end, nil, function()
        calls = calls + 1
        if calls > #answers then srv:stop(); return nil end
        return answers[calls]
      end)
      -- no request came: each call after the first was woken by the previous answer
      assert.are.equal("stopped", how)
      assert.are.equal(#answers + 1, calls)
    end)

    it("stops calling an idle hook that raises, and keeps serving", function()
      local srv <close> = assert(server.listen {})
      local out = raw_background(srv:port(), "GET /stop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      local calls = 0
      local how = srv:serve(function() srv:stop(); return 200, nil, "" end, nil, function()
        calls = calls + 1
        error("idle failed")
      end)
      assert.are.equal("stopped", how)
      assert.are.equal(1, calls)
      os.remove(out)
    end)

    it("can be closed from inside a handler", function()
      local srv = assert(server.listen {})
      local out = raw_background(srv:port(), "GET /close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      local calls = 0
      for _ = 1, 200 do
        if tostring(srv) == "aep.server.Server (closed)" then break end
        srv:step(0.05, function()
          calls = calls + 1
          srv:close()
          return 200, nil, "bye"
        end)
      end
      assert.are.equal(1, calls)
      assert.has_error(function() srv:url() end, "server: server is closed")
      os.remove(out)
    end)

    it("rejects re-entrant serve/step from a handler with a 500", function()
      local srv <close> = assert(server.listen {})
      local out = raw_background(srv:port(), "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      local err
      srv:serve(function()
        srv:stop()
        local ok, e = pcall(srv.step, srv, 0, function() end)
        err = e
        return 200, nil, ""
      end)
      assert.truthy(tostring(err):find("called from inside a handler", 1, true))
      os.remove(out)
    end)
  end)

  describe("on the wire", function()
    local child, url, port

    setup(function()
      child = spawn.spawn({ spawn.aep, "tests/lua/support/test_server.lua", "--max-body", "1000" },
        "^listening on (%S+)")
      url = child.url
      port = tonumber(url:match(":(%d+)$"))
    end)

    teardown(function()
      if child then child:stop() end
    end)

    it("passes method, decoded and raw path, query, headers, body and remote to the handler", function()
      local r = assert(http.request {
        url = url .. "/a%20b/c?x=1&x=2&y=%2F&flag", method = "PUT", body = "payload",
        headers = { ["X-Custom"] = "v" },
      })
      local echo = cjson.decode(r.body)
      assert.are.equal("PUT", echo.method)
      assert.are.equal("/a b/c", echo.path)
      assert.are.equal("/a%20b/c", echo.raw_path)
      assert.are.equal("x=1&x=2&y=%2F&flag", echo.raw_query)
      assert.are.same({ x = "2", y = "/", flag = "" }, echo.query)
      assert.are.same({ x = { "1", "2" }, y = { "/" }, flag = { "" } }, echo.query_all)
      assert.are.equal("v", echo.headers["x-custom"])
      assert.are.equal("payload", echo.body)
      assert.are.equal("127.0.0.1", echo.remote)
    end)

    it("lets the handler answer HEAD and OPTIONS", function()
      local r = assert(http.request { url = url .. "/echo", method = "OPTIONS" })
      assert.are.equal("OPTIONS", cjson.decode(r.body).method)
      r = assert(http.request { url = url .. "/status/204", method = "HEAD" })
      assert.are.equal(204, r.status)
      assert.are.equal("", r.body)
    end)

    it("answers 400 to a malformed request and closes, then keeps serving", function()
      assert.are.equal("", raw(port, "GARBAGE\r\n\r\n"))
      local out = raw(port, "GET /echo HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n")
      assert.are.same({ 400 }, statuses(out))
      out = raw(port, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
      assert.are.equal(400, statuses(out)[1])
      assert.are.equal(200, assert(http.request { url = url .. "/status/200" }).status)
    end)

    it("answers 413 to a body over max_body without calling the handler", function()
      local r = assert(http.request { url = url .. "/body", method = "POST", body = string.rep("a", 1001) })
      assert.are.equal(413, r.status)
      assert.are.same({ title = "Payload Too Large", status = 413, detail = "request body exceeds 1000 bytes" },
        cjson.decode(r.body))
      -- chunked: the size is only known while reading
      local chunk = string.rep("b", 600)
      local out = raw(port, "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" ..
        "258\r\n" .. chunk .. "\r\n258\r\n" .. chunk .. "\r\n0\r\n\r\n")
      assert.are.same({ 413 }, statuses(out))
      -- at the limit it passes
      r = assert(http.request { url = url .. "/body", method = "POST", body = string.rep("a", 1000) })
      assert.are.equal(200, r.status)
      assert.are.equal(string.rep("a", 1000), r.body)
    end)

    it("answers 500 with a JSON body when the handler raises, and serves the next request", function()
      local out = raw(port, "GET /error HTTP/1.1\r\nHost: x\r\n\r\nGET /status/201 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.are.same({ 500, 201 }, statuses(out))
      local body = cjson.decode(out:match('(%b{})'))
      assert.are.equal("Internal Server Error", body.title)
      assert.are.equal(500, body.status)
      assert.truthy(body.detail:match("^tests/lua/support/test_server%.lua:%d+: boom$"))
    end)

    it("keeps connections alive: several requests on one connection", function()
      local out = raw(port, "GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n" ..
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" ..
        "GET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.are.same({ 201, 200, 202 }, statuses(out))
      assert.truthy(out:find("\r\n\r\nabcHTTP/1.1 202", 1, true))
      local a = cjson.decode(assert(http.request { url = url .. "/echo" }).body)
      local b = cjson.decode(assert(http.request { url = url .. "/echo" }).body)
      assert.are.equal(a.remote_port, b.remote_port)
    end)

    it("answers a delayed request later without blocking other connections", function()
      local pool <close> = http.pool { max_in_flight = 4 }
      pool:submit({ url = url .. "/sleep?s=2" }, "slow")
      pool:submit({ url = url .. "/echo" }, "fast")
      local order = {}
      while pool:pending() > 0 do
        for _, c in ipairs(pool:wait()) do
          order[#order + 1] = c.context
          assert.are.equal(200, c.response.status)
          if c.context == "slow" then assert.are.equal("slept", c.response.body) end
        end
      end
      assert.are.same({ "fast", "slow" }, order)
    end)

    it("drops connections before or after answering", function()
      assert.are.equal("", raw(port, "GET /drop?when=before HTTP/1.1\r\nHost: x\r\n\r\n"))
      local out = raw(port, "GET /drop?when=after HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.are.same({ 200 }, statuses(out))
      assert.truthy(out:find("Content-Length: 14\r\n", 1, true))
      assert.are.equal("never c", out:match("\r\n\r\n(.*)$")) -- 7 of 14 bytes
      local r, _, code = http.request { url = url .. "/drop?when=before&s=0.1" }
      assert.is_nil(r)
      assert.are.equal("RECV", code)
      assert.are.equal(200, assert(http.request { url = url .. "/status/200" }).status)
    end)

    it("stops on SIGTERM and on /stop, returning how it ended", function()
      local c2 = spawn.spawn({ spawn.aep, "tests/lua/support/test_server.lua" }, "^listening on (%S+)")
      c2:kill("TERM")
      local ok, how, code = c2:wait()
      assert.are.same({ true, "exit", 0 }, { ok, how, code })
      assert.are.equal("test_server: signal", c2.lines[#c2.lines])
      c2 = spawn.spawn({ spawn.aep, "tests/lua/support/test_server.lua" }, "^listening on (%S+)")
      assert.are.equal("stopping", assert(http.request { url = c2.url .. "/stop" }).body)
      ok = c2:wait()
      assert.is_true(ok)
      assert.are.equal("test_server: stopped", c2.lines[#c2.lines])
    end)
  end)
end)
