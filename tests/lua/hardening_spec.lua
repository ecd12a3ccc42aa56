-- Regression tests for findings of the hardening work (SECURITY.md) that no other spec covers.
-- Several were undefined behaviour (a double converted to an integer type it does not fit): the
-- ASan + UBSan stage (`./dev asan`) is where they fail if they come back.
local lines = require "aep.lines"
local host = require "aep.host"
local http = require "aep.http"
local spawn = require "tests.lua.support.spawn"

describe("hardening regressions", function()
  it("aep.lines refuses limits that would wrap around as sizes", function()
    -- a negative max_record used to become SIZE_MAX: no limit at all on a record's memory
    assert.has_error(function() lines.open("/dev/null", { max_record = -1 }) end,
      "bad argument #2 to 'open' (max_record must be at least 1)")
    assert.has_error(function() lines.open("/dev/null", { max_record = 0 }) end,
      "bad argument #2 to 'open' (max_record must be at least 1)")
    assert.has_error(function() lines.open("/dev/null", { buffer = -1 }) end,
      "bad argument #2 to 'open' (buffer must be between 0 and 1 GiB)")
    assert.has_error(function() lines.open("/dev/null", { buffer = math.maxinteger }) end,
      "bad argument #2 to 'open' (buffer must be between 0 and 1 GiB)")
    local r = assert(lines.open("/dev/null", { max_record = 1, buffer = 0 }))
    assert.is_nil(r:line())
    r:close()
  end)

  it("host.sleep takes NaN and negative durations as zero", function()
    assert.is_true(host.sleep(0 / 0))
    assert.is_true(host.sleep(-5))
    assert.is_true(host.sleep(-math.huge))
  end)

  it("aep.kafka takes a NaN timeout as zero", function()
    local kafka = require "aep.kafka"
    local mock = assert(kafka.mock_cluster { brokers = 1, partitions = 1 })
    assert(mock:create_topic("hardening", 1))
    local c = assert(kafka.consumer { brokers = mock:bootstrap(), group = "hardening", topics = { "hardening" } })
    assert.are.equal("table", type(c:poll_batch(1, 0 / 0)))
    local p = assert(kafka.producer { brokers = mock:bootstrap() })
    assert.are.equal(0, p:flush(0 / 0))
    p:close()
    c:close()
    mock:close()
  end)

  it("http.request takes absurdly long timeouts", function()
    local resp, _, code = http.request { url = "http://127.0.0.1:1/", timeout = 1e300, connect_timeout = math.huge }
    assert.is_nil(resp)
    assert.are.equal("CONNECT", code)
  end)

  it("aep.server refuses a NaN delay and survives a near-infinite one", function()
    local script = [[
      local server = require "aep.server"
      local srv = assert(server.listen { port = 0 })
      srv:serve(function(req)
        if req.path == "/delay" then return { status = 200, body = "late", delay = req.query.s == "nan" and 0 / 0 or tonumber(req.query.s) } end
        return 200, {}, "ok"
      end, function() print("listening on " .. srv:url()); io.stdout:flush() end)
    ]]
    local child = spawn.spawn({ spawn.aep, "-e", script }, "^listening on (%S+)")
    local ok, err = pcall(function()
      local nan = assert(http.request { url = child.url .. "/delay?s=nan" })
      assert.are.equal(500, nan.status)
      assert.matches("'delay' must be a number >= 0", nan.body)
      -- 1e300 s: the connection waits (the client gives up), the server goes on serving
      local resp, _, code = http.request { url = child.url .. "/delay?s=1e300", timeout = 0.3 }
      assert.is_nil(resp)
      assert.are.equal("TIMEOUT", code)
      assert.are.equal("ok", assert(http.request { url = child.url .. "/" }).body)
    end)
    child:stop()
    assert(ok, err)
  end)
end)
