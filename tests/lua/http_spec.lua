-- aep.http against a loopback aep.server running in a child process (tests/lua/support/test_server.lua).
package.path = "tests/lua/?.lua;" .. package.path
local http = require "aep.http"
local server = require "aep.server"
local cjson = require "cjson"
local spawn = require "support.spawn"
local run = require "support.run"

local SERVER = "tests/lua/support/test_server.lua"

local function start_server(extra)
  local argv = { spawn.aep, SERVER }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  return spawn.spawn(argv, "^listening on (%S+)")
end

-- A port nobody listens on: bind one, then close it.
local function closed_port()
  local srv = assert(server.listen {})
  local port = srv:port()
  srv:close()
  return port
end

-- Every byte value, repeated to n bytes.
local function binary(n)
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  local block = table.concat(t)
  return string.rep(block, n // 256) .. block:sub(1, n % 256)
end

describe("aep.http", function()
  local child, url

  setup(function()
    child = start_server()
    url = child.url
  end)

  teardown(function()
    if child then child:stop() end
  end)

  describe("request", function()
    it("GETs with query and headers, and returns status, headers, header_list, body and timing", function()
      local r = assert(http.request {
        url = url .. "/echo?a=1&a=2&b=x%20y",
        headers = { ["X-One"] = "1", ["X-Many"] = { "a", "b" }, ["X-Num"] = 42 },
      })
      assert.are.equal(200, r.status)
      assert.are.equal("application/json", r.headers["content-type"])
      local found = false
      for _, h in ipairs(r.header_list) do
        if h[1] == "content-type" and h[2] == "application/json" then found = true end
      end
      assert.is_true(found)
      assert.are.equal("number", type(r.timing.total))
      assert.are.equal("number", type(r.timing.connect))
      assert.are.equal("number", type(r.timing.ttfb))
      local echo = cjson.decode(r.body)
      assert.are.equal("GET", echo.method)
      assert.are.equal("/echo", echo.path)
      assert.are.same({ a = "2", b = "x y" }, echo.query)
      assert.are.same({ "1", "2" }, echo.query_all.a)
      assert.are.equal("1", echo.headers["x-one"])
      assert.are.equal("a, b", echo.headers["x-many"])
      assert.are.equal("42", echo.headers["x-num"])
      assert.are.equal("", echo.body)
    end)

    it("POSTs a body with its content type, and sends no content type unless asked", function()
      local r = assert(http.request {
        url = url .. "/echo", method = "POST", body = '{"a":1}',
        headers = { ["Content-Type"] = "application/json" },
      })
      local echo = cjson.decode(r.body)
      assert.are.equal("POST", echo.method)
      assert.are.equal('{"a":1}', echo.body)
      assert.are.equal("application/json", echo.headers["content-type"])
      assert.are.equal("7", echo.headers["content-length"])
      assert.is_nil(echo.headers["expect"])

      echo = cjson.decode(assert(http.request { url = url .. "/echo", method = "post", body = "x" }).body)
      assert.are.equal("POST", echo.method)
      assert.is_nil(echo.headers["content-type"])
    end)

    it("sends other methods as asked", function()
      for _, m in ipairs { "PUT", "PATCH", "DELETE", "OPTIONS" } do
        local echo = cjson.decode(assert(http.request { url = url .. "/echo", method = m, body = m == "DELETE" and nil or "b" }).body)
        assert.are.equal(m, echo.method)
      end
      local r = assert(http.request { url = url .. "/big?bytes=10", method = "HEAD" })
      assert.are.equal(200, r.status)
      assert.are.equal("", r.body)
      assert.are.equal("10", r.headers["content-length"])
    end)

    it("returns 404 and 500 as responses, not errors", function()
      local r = assert(http.request { url = url .. "/status/404" })
      assert.are.equal(404, r.status)
      assert.are.same({ status = 404 }, cjson.decode(r.body))
      r = assert(http.request { url = url .. "/error" })
      assert.are.equal(500, r.status)
      local body = cjson.decode(r.body)
      assert.are.equal("Internal Server Error", body.title)
      assert.are.equal(500, body.status)
      assert.truthy(body.detail:find("boom", 1, true))
    end)

    it("gives TIMEOUT when the server answers too late", function()
      local r, msg, code = http.request { url = url .. "/sleep?s=5", timeout = 0.2 }
      assert.is_nil(r)
      assert.are.equal("string", type(msg))
      assert.are.equal("TIMEOUT", code)
    end)

    it("gives CONNECT for a closed port", function()
      local r, msg, code = http.request { url = "http://127.0.0.1:" .. closed_port() .. "/" }
      assert.is_nil(r)
      assert.are.equal("string", type(msg))
      assert.are.equal("CONNECT", code)
    end)

    it("gives URL for a scheme other than http(s)", function()
      local r, _, code = http.request { url = "file:///etc/passwd" }
      assert.is_nil(r)
      assert.are.equal("URL", code)
    end)

    it("gives RECV when the server drops the connection", function()
      local r, _, code = http.request { url = url .. "/drop?when=before" }
      assert.is_nil(r)
      assert.are.equal("RECV", code)
      r, _, code = http.request { url = url .. "/drop?when=after" }
      assert.is_nil(r)
      assert.are.equal("RECV", code)
    end)

    it("gives RECV for a fresh connection closed or reset with zero answer bytes", function()
      for _, how in ipairs { "close", "reset" } do
        local pool <close> = http.pool { max_in_flight = 1 } -- its own connections: none to reuse
        pool:submit({ url = url .. "/drop?when=" .. how, method = "POST", body = "{}" }, how)
        local done = {}
        for _ = 1, 100 do
          for _, c in ipairs(pool:wait(0.1)) do done[#done + 1] = c end
          if #done > 0 then break end
        end
        assert.are.same({ how, "RECV", 0 }, { done[1].context, done[1].code, done[1].resent })
      end
    end)

    -- curl sends a request again by itself when a reused connection dies before any answer byte:
    -- aep.http counts it (`resent`), so a caller knows the server may hold two copies.
    it("counts curl's own resend of a POST on a reused connection that died", function()
      for _, how in ipairs { "close", "reset" } do
        local warm = assert(http.request { url = url .. "/status/200" }) -- a connection to reuse
        assert.are.same({ 200, 0 }, { warm.status, warm.resent })
        local r = assert(http.request { url = url .. "/drop-once?key=req-" .. how .. "&when=" .. how,
                                        method = "POST", body = "{}" })
        assert.are.same({ 200, 1, 2 }, { r.status, r.resent, cjson.decode(r.body).seen })
      end
    end)

    it("counts a resend to a server that died after taking the request", function()
      local srv = start_server()
      finally(function() srv:stop() end)
      local pool <close> = http.pool { max_in_flight = 1 }
      pool:submit({ url = srv.url .. "/status/200" }, "warm") -- a connection to reuse
      local warm = pool:wait(5)
      assert.are.same({ "warm", 200, 0 }, { warm[1].context, warm[1].response.status, warm[1].response.resent })
      -- the server takes the request, then kills itself (SIGKILL) instead of answering: curl sends
      -- the request again on a new connection, which is refused (CONNECT) or, when it was opened
      -- while the dying process still held its listening socket, closed (RECV); the first copy
      -- was taken either way and `resent` says so
      pool:submit({ url = srv.url .. "/drop?when=die&s=0.05", method = "POST", body = "{}" }, "taken")
      local done = {}
      for _ = 1, 100 do
        for _, c in ipairs(pool:wait(0.1)) do done[#done + 1] = c end
        if #done > 0 then break end
      end
      local _, how, sig = srv:wait()
      assert.are.same({ "signal", 9 }, { how, sig })
      assert.are.equal(1, #done)
      assert.are.same({ "taken", 1 }, { done[1].context, done[1].resent })
      assert.is_true(done[1].code == "CONNECT" or done[1].code == "RECV", done[1].code)
    end)

    it("round-trips a 5 MB body intact", function()
      local body = binary(5 * 1024 * 1024)
      local r = assert(http.request { url = url .. "/body", method = "POST", body = body,
                                      headers = { ["Content-Type"] = "application/octet-stream" } })
      assert.are.equal(200, r.status)
      assert.are.equal(#body, #r.body)
      assert.is_true(body == r.body)
    end)

    it("gives TOO_LARGE for a body over max_body", function()
      local r, msg, code = http.request { url = url .. "/big?bytes=100000", max_body = 1000 }
      assert.is_nil(r)
      assert.are.equal("response body exceeds max_body (1000 bytes)", msg)
      assert.are.equal("TOO_LARGE", code)
      r = assert(http.request { url = url .. "/big?bytes=100000", max_body = 100000 })
      assert.are.equal(100000, #r.body)
    end)

    it("keeps the connection alive between calls", function()
      local a = cjson.decode(assert(http.request { url = url .. "/echo" }).body)
      local b = cjson.decode(assert(http.request { url = url .. "/echo" }).body)
      assert.are.equal(a.remote_port, b.remote_port)
      assert.are.equal("127.0.0.1", a.remote)
    end)

    it("raises on misuse", function()
      assert.has_error(function() http.request {} end, "http: 'url' must be a string")
      assert.has_error(function() http.request { url = url, headers = { ["Bad Name"] = "x" } } end,
        "http: bad header name 'Bad Name'")
      assert.has_error(function() http.request { url = url, headers = { ["X-A"] = "a\r\nX-B: b" } } end,
        "http: header 'X-A' contains a NUL, CR or LF")
      assert.has_error(function() http.request { url = url, timeout = "soon" } end, "bad argument #1 to 'request' ('timeout' must be a number)")
      assert.has_error(function() http.request { url = url, body = {} } end, "http: 'body' must be a string")
    end)
  end)

  describe("pool", function()
    it("completes 1,000 requests with 64 in flight, each with its own context", function()
      local pool = http.pool { max_in_flight = 64 }
      for i = 1, 1000 do pool:submit({ url = url .. "/echo?i=" .. i }, i) end
      assert.are.equal(1000, pool:pending())
      local seen, n = {}, 0
      while pool:pending() > 0 do
        for _, c in ipairs(pool:wait()) do
          assert.is_nil(c.error)
          assert.are.equal(200, c.response.status)
          assert.are.equal(tostring(c.context), cjson.decode(c.response.body).query.i)
          assert.is_nil(seen[c.context])
          seen[c.context] = true
          n = n + 1
        end
      end
      assert.are.equal(1000, n)
      for i = 1, 1000 do assert.is_true(seen[i]) end
      pool:close()
    end)

    it("reports HTTP errors as responses and transport errors with a code", function()
      local pool = http.pool { max_in_flight = 2 }
      pool:submit({ url = url .. "/status/404" }, { name = "missing" })
      pool:submit({ url = "http://127.0.0.1:" .. closed_port() .. "/" }, "closed")
      pool:submit({ url = url .. "/body", method = "POST", body = string.rep("z", 300000) }, "upload")
      local got = {}
      while pool:pending() > 0 do
        for _, c in ipairs(pool:wait()) do got[type(c.context) == "table" and c.context.name or c.context] = c end
      end
      assert.are.equal(404, got.missing.response.status)
      assert.is_nil(got.missing.error)
      assert.is_nil(got.closed.response)
      assert.are.equal("CONNECT", got.closed.code)
      assert.are.equal("string", type(got.closed.error))
      assert.are.equal(string.rep("z", 300000), got.upload.response.body)
      pool:close()
    end)

    it("returns an empty list from wait when nothing is pending or nothing finished in time", function()
      local pool <close> = http.pool {}
      assert.are.same({}, pool:wait())
      pool:submit({ url = url .. "/sleep?s=5" }, "slow")
      assert.are.same({}, pool:wait(0.05))
      assert.are.equal(1, pool:pending())
    end)

    it("has an idempotent close, and raises when used closed", function()
      local pool = http.pool { max_in_flight = 2 }
      pool:submit({ url = url .. "/sleep?s=5" }, 1)
      pool:submit({ url = url .. "/echo" }, 2)
      pool:submit({ url = url .. "/echo" }, 3)
      pool:close()
      pool:close()
      assert.has_error(function() pool:submit({ url = url }, 4) end, "http: pool is closed")
      assert.has_error(function() pool:wait() end, "http: pool is closed")
      assert.has_error(function() pool:pending() end, "http: pool is closed")
      assert.are.equal("aep.http.Pool (closed)", tostring(pool))
    end)

    it("raises on a bad request at submit", function()
      local pool <close> = http.pool {}
      assert.has_error(function() pool:submit({ method = "GET" }, 1) end, "http: 'url' must be a string")
      assert.are.equal(0, pool:pending())
      assert.has_error(function() http.pool { max_in_flight = 0 } end,
        "http: 'max_in_flight' must be between 1 and 1024")
    end)
  end)

  describe("TLS", function()
    local dir, tls_child, tls_url

    setup(function()
      dir = run.tmpdir()
      assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost " ..
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 -keyout %s/key.pem -out %s/cert.pem " ..
        ">/dev/null 2>&1"):format(dir, dir)))
      tls_child = start_server { "--tls", dir .. "/cert.pem", dir .. "/key.pem" }
      tls_url = tls_child.url
    end)

    teardown(function()
      if tls_child then tls_child:stop() end
      if dir then os.execute("rm -rf " .. dir) end
    end)

    it("serves https", function()
      assert.are.equal("https://127.0.0.1:", tls_url:match("^https://127%.0%.0%.1:"))
    end)

    it("fails verification without cainfo", function()
      local r, msg, code = http.request { url = tls_url .. "/status/200" }
      assert.is_nil(r)
      assert.are.equal("string", type(msg))
      assert.are.equal("TLS", code)
    end)

    it("succeeds with the certificate as cainfo, by IP and by name", function()
      local r = assert(http.request { url = tls_url .. "/status/201", cainfo = dir .. "/cert.pem" })
      assert.are.equal(201, r.status)
      r = assert(http.request { url = tls_url:gsub("127%.0%.0%.1", "localhost") .. "/status/202",
                                cainfo = dir .. "/cert.pem" })
      assert.are.equal(202, r.status)
    end)

    it("succeeds without verification when insecure", function()
      assert.are.equal(203, assert(http.request { url = tls_url .. "/status/203", insecure = true }).status)
    end)

    it("verifies in a pool too, with cainfo as a pool default", function()
      local pool <close> = http.pool { max_in_flight = 4, cainfo = dir .. "/cert.pem" }
      for i = 1, 20 do pool:submit({ url = tls_url .. "/echo?i=" .. i }, i) end
      pool:submit({ url = tls_url .. "/echo", cainfo = "/nonexistent.pem" }, "bad")
      local ok, bad = 0, nil
      while pool:pending() > 0 do
        for _, c in ipairs(pool:wait()) do
          if c.context == "bad" then bad = c.code else ok = ok + (c.response.status == 200 and 1 or 0) end
        end
      end
      assert.are.equal(20, ok)
      assert.are.equal("TLS", bad)
    end)
  end)
end)
