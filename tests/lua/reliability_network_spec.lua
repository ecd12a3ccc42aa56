-- Delivery under network faults after the emulator has committed a batch: the connection closed
-- with zero answer bytes, reset, the emulator killed before answering, and its graceful shutdown.
-- Each case runs `aep stream` from the command line against `aep emulator --faults ...` and
-- compares what the dataset holds with the report: every record stored twice must be reported as
-- possibly duplicated, every record must be stored. Bounded: a few thousand records, a fixed seed.
local json = require "aep.json"
local cjson = require "cjson"
local host = require "aep.host"
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"

local MAPPING = "mappings/loyalty_profile.lua"

local dir

local function records(n, tag)
  local lines = {}
  for i = 1, n do
    local id = "u" .. i .. "-" .. tag .. "@example.com"
    lines[i] = cjson.encode {
      _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = i * 10, loyaltyLevel = "Gold" },
      person = { name = { firstName = "F" .. i, lastName = "L" .. i, middleName = "" }, birthDate = "1980-01-01", gender = "female" },
      personalEmail = { primary = false, address = id, type = "personal", status = "active" },
    }
  end
  return table.concat(lines, "\n") .. "\n"
end

-- argv of `aep stream` for n records tagged tag into ids' dataset
local function stream_argv(emu, ids, tag, n)
  local input = files.write(dir .. "/" .. tag .. ".jsonl", records(n, tag))
  return { run.bin, "stream", "--env", emu.env_file, "--dataset", ids.profile_dataset, "--input", input,
           "--mapping", MAPPING, "--batch-size", "20", "--concurrency", "8", "--timeout", "5",
           "--report", dir .. "/" .. tag .. "-report.json", "--accepted-file", dir .. "/" .. tag .. "-accepted.tsv",
           "--reject-file", dir .. "/" .. tag .. "-rejects.jsonl", "--quiet" }
end

-- `aep stream` in the background: returns a function that waits for it and gives its exit status
local function stream_background(argv)
  local words = {}
  for _, a in ipairs(argv) do words[#words + 1] = run.quote(a) end
  local fh = assert(io.popen("timeout 90 " .. table.concat(words, " ") .. " >" .. run.quote(dir .. "/bg.out") ..
    " 2>&1; echo $?"))
  return function()
    local status = tonumber(fh:read("l"))
    fh:close()
    return status, files.read(dir .. "/bg.out") or ""
  end
end

-- The report and the dataset agree: all n records stored; those stored twice were reported.
-- Returns the number of records stored twice and the number reported.
local function check_accounting(api, ids, tag, n)
  local rep = assert(json.decode(assert(files.read(dir .. "/" .. tag .. "-report.json"))))
  assert.same({ n, 0, 0, 0 }, { rep.accepted, rep.rejected, rep.skipped, rep.failed })
  local flagged, nflagged = {}, 0
  for line in io.lines(dir .. "/" .. tag .. "-accepted.tsv") do
    local pos, _, dup = line:match("^(%d+)\t([^\t]*)\t?(.*)$")
    if dup == "possibly-duplicated" then
      flagged["u" .. pos .. "-" .. tag .. "@example.com"] = true
      nflagged = nflagged + 1
    end
  end
  assert.equal(nflagged, rep.possibly_duplicated)
  local counts, total = fixtures.stored_ids(api, ids.profile_dataset)
  local twice = 0
  for i = 1, n do
    local id = "u" .. i .. "-" .. tag .. "@example.com"
    local c = counts[id] or 0
    assert.is_true(c >= 1, id .. " is missing from the dataset")
    if c > 1 then
      assert.is_true(flagged[id] == true, id .. " is stored " .. c .. " times but was not reported as possibly duplicated")
      twice = twice + c - 1
    end
  end
  assert.equal(n + twice, total)
  return twice, nflagged
end

-- the emulator's streaming request log: total POSTs, and fault name -> count
local function streaming_log(api)
  local s, b = api:get("/emulator/requests?since=0&path=/collection&limit=100000", { auth = false })
  assert.equal(200, s)
  local faults = {}
  for _, e in ipairs(b.requests) do if e.fault then faults[e.fault] = (faults[e.fault] or 0) + 1 end end
  return #b.requests, faults
end

local function start(faults)
  return fixtures.start({ "--tenant", "exchangeinternal", "--seed", "5", "--faults", faults }, { dataflow = false })
end

setup(function() dir = run.tmpdir() end)
teardown(function() if dir then os.execute("rm -rf " .. run.quote(dir)) end end)

describe("possibly duplicated covers every record stored twice", function()
  -- Each fault hits requests on reused keep-alive connections, where curl sends the request again
  -- by itself; aep learns of it from the body rewind (aep.http's `resent`).
  for _, fault in ipairs { "close_after", "reset_after" } do
    it("when the emulator commits a batch then " .. (fault == "close_after" and "closes with zero bytes" or "resets the connection"), function()
      local emu, api, ids = start("streaming:" .. fault .. "=0.05")
      local ok, err = pcall(function()
        local n = 2000
        local r = run.cmd(stream_argv(emu, ids, fault, n))
        assert.equal(0, r.status, r.stdout .. r.stderr)
        local posts, faults = streaming_log(api)
        assert.is_true((faults[fault] or 0) > 0, json.encode(faults))
        local twice, flagged = check_accounting(api, ids, fault, n)
        -- the fault produced stored duplicates (the case is real), and all were reported
        assert.is_true(twice > 0, "no record stored twice: the fault did not reproduce the case")
        assert.is_true(posts > n // 20)
      end)
      emu.cleanup()
      assert(ok, err)
    end)
  end

  it("when the emulator is killed after committing batches and before answering them", function()
    -- every answer held 0.5 s; the first die_after draw (after the connections are reused) kills the emulator with the held answers unsent
    local emu, api, ids = start("streaming:die_after=0.03,latency=1,delay=0.5")
    local ok, err = pcall(function()
      local n, tag = 2000, "die"
      local wait_stream = stream_background(stream_argv(emu, ids, tag, n))
      local _, how, code = emu.child:wait() -- it kills itself
      assert.same({ "signal", 9 }, { how, code })
      emu.restart({ "--tenant", "exchangeinternal" }) -- same port and data, no faults
      local status, out = wait_stream()
      assert.equal(0, status, out)
      local twice = check_accounting(fixtures.client(emu), ids, tag, n)
      assert.is_true(twice > 0, "no record stored twice: the kill did not reproduce the case")
    end)
    emu.cleanup()
    assert(ok, err)
  end)

  it("when the emulator is stopped by SIGTERM with answers in flight: it answers them before exiting", function()
    local emu, api, ids = start("streaming:latency=1,delay=1")
    local ok, err = pcall(function()
      local n, tag = 2000, "term"
      local wait_stream = stream_background(stream_argv(emu, ids, tag, n))
      -- wait (bounded) until batches are being held, then stop the emulator
      local deadline = host.monotonic() + 20
      while streaming_log(api) < 8 and host.monotonic() < deadline do host.sleep(0.05) end
      assert.is_true(streaming_log(api) >= 8)
      emu.child:kill("TERM")
      local _, how, code = emu.child:wait()
      assert.same({ "exit", 0 }, { how, code })
      emu.restart({ "--tenant", "exchangeinternal" })
      local status, out = wait_stream()
      assert.equal(0, status, out)
      -- every request the emulator took was answered: nothing stored twice
      local twice = check_accounting(fixtures.client(emu), ids, tag, n)
      assert.equal(0, twice)
    end)
    emu.cleanup()
    assert(ok, err)
  end)
end)

describe("numbers through the emulator", function()
  -- cjson 2.1.0 alone keeps 14 significant digits: 1234567890123456 became 1.2345678901235e+15.
  -- The values exceed the schema's int range: the records are stored as failed, with their entity.
  it("keeps every digit: integers up to 2^63-1 and doubles, stored and served exactly", function()
    local emu, api, ids = start("")
    local ok, err = pcall(function()
      local values = { 1234567890123456, 123456789012345, 9007199254740993, math.maxinteger, math.pi, 0.1 + 0.2 }
      for i, v in ipairs(values) do
        local msg = fixtures.profile_message(ids, { loyaltyID = "n" .. i .. "@example.com", points = v })
        local s, body = api:post("/collection/" .. ids.inlet_id, msg, { auth = false })
        assert.equal(200, s, json.encode(body))
      end
      local page = fixtures.records(api, ids.profile_dataset, "?limit=100")
      local got = {}
      for _, rec in ipairs(page.records) do
        local l = rec.entity["_" .. ids.tenant]
        got[l.loyaltyID] = l.totalLoyaltyPoints
      end
      for i, v in ipairs(values) do
        local back = got["n" .. i .. "@example.com"]
        assert.are.equal(math.type(v), math.type(back), tostring(v))
        assert.is_true(back == v, string.format("%s came back as %s", tostring(v), tostring(back)))
      end
    end)
    emu.cleanup()
    assert(ok, err)
  end)
end)
