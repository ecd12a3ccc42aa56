-- aep stream against the local emulator: faults (429/503, dropped connections, latency) with
-- every record accounted for and in the dataset exactly once unless reported as possibly
-- duplicated; bad input; kill -9 and resume from the checkpoint; replay of a reject file; pacing
-- read from the emulator's request log; sync validation spacing; 413 splits; JUnit report.
-- Exact outcomes, no timings asserted except the pacing bounds the feature promises.
local json = require "aep.json"
local cjson = require "cjson"
local host = require "aep.host"
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"
local spawn = require "tests.lua.support.spawn"

local emu, api, ids, dir

local function write(name, content) return files.write(dir .. "/" .. name, content) end
local read, jsonl = files.read, files.json_lines

-- Records shaped like the samples (one per line), each with a unique loyaltyID "u<i>-<tag>@example.com".
local function records(n, tag, extra)
  local lines = {}
  for i = 1, n do
    local id = "u" .. i .. "-" .. tag .. "@example.com"
    local r = {
      _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = i * 10, loyaltyLevel = ({ "Silver", "Gold", "Platinum", "Diamond" })[i % 4 + 1] },
      person = { name = { firstName = "F" .. i, lastName = "L" .. i, middleName = "" }, birthDate = "1980-01-01", gender = "female" },
      personalEmail = { primary = false, address = id, type = "personal", status = "active" },
    }
    if extra then extra(i, r) end
    lines[i] = cjson.encode(r)
  end
  return table.concat(lines, "\n") .. "\n"
end

local MAPPING = "mappings/loyalty_profile.lua"

local function stream(args, opts)
  local argv = { "stream", "--env", emu.env_file, "--dataset", ids.profile_dataset }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return run.aep(argv, opts)
end

-- loyaltyID -> how many times the dataset holds it, and the total
local function stored_ids(dataset) return fixtures.stored_ids(api, dataset) end

local function set_faults(spec, seed) emu.faults(spec, seed or 7) end

-- the emulator's request log for the streaming routes since seq
local function log_since(seq, prefix)
  local s, b = api:get("/emulator/requests?since=" .. seq .. "&path=" .. (prefix or "/collection") .. "&limit=100000", { auth = false })
  assert(s == 200)
  return b.requests, b.last
end

local function log_last()
  local s, b = api:get("/emulator/requests?since=0&limit=1&path=/nothing", { auth = false })
  assert(s == 200)
  return b.total
end

-- a fresh dataset (with the same schema) for each test, so stored records are this test's alone
local ndataset = 0
local function fresh_dataset()
  ndataset = ndataset + 1
  return fixtures.dataset(api, "stream spec " .. ndataset .. " " .. os.time(), ids.profile_schema)
end

setup(function()
  dir = run.tmpdir()
  emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--seed", "7" }, { dataflow = false })
end)

teardown(function()
  if emu then emu.stop(); emu.cleanup() end
  if dir then os.execute("rm -rf " .. run.quote(dir)) end
end)

describe("aep stream into the emulator", function()
  before_each(function()
    set_faults("")
    ids.profile_dataset = fresh_dataset()
  end)

  it("finds or creates the dataset's streaming connection and dataflow, then reuses them", function()
    local input = write("small.jsonl", records(30, "small"))
    local r = stream({ "--input", input, "--mapping", MAPPING })
    assert.equal(0, r.status, r.stderr)
    assert.matches("created streaming connection [%w%-]+ and dataflow [%w%-]+ for dataset " .. ids.profile_dataset, r.stderr)
    assert.matches("30 records from .* to dataset " .. ids.profile_dataset, r.stdout)
    assert.matches("accepted 30   rejected 0   skipped 0   failed 0", r.stdout, 1, true)
    r = stream({ "--input", input, "--mapping", MAPPING, "--quiet" })
    assert.equal(0, r.status, r.stderr)
    assert.not_matches("created", r.stdout)
    local counts, total = stored_ids(ids.profile_dataset)
    assert.equal(60, total)
    assert.equal(2, counts["u1-small@example.com"])
  end)

  it("accounts for 20,000 records under 429/503, dropped connections and latency; the dataset holds each once unless reported", function()
    local n = 20000
    local input = write("faults.jsonl", records(n, "f"))
    set_faults("streaming:429=0.05,503=0.05,drop_before=0.005,drop_after=0.005,latency=0.1,delay=0.2,retry_after=1", 11)
    local seq0 = log_last()
    local report, accepted_file = dir .. "/faults-report.json", dir .. "/faults-accepted.tsv"
    local r = stream({ "--input", input, "--mapping", MAPPING, "--batch-size", "100", "--report", report,
                       "--accepted-file", accepted_file, "--reject-file", dir .. "/faults-rejects.jsonl", "--quiet",
                       "--timeout", "5" })
    set_faults("")
    local rep = assert(json.decode(read(report)))
    assert.equal(n, rep.accepted + rep.rejected + rep.skipped + rep.failed)
    assert.same({ n, 0, 0, 0 }, { rep.accepted, rep.rejected, rep.skipped, rep.failed })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- the faults happened
    local reqs = log_since(seq0)
    local faults = {}
    for _, e in ipairs(reqs) do if e.fault then faults[e.fault] = (faults[e.fault] or 0) + 1 end end
    assert.is_true((faults["429"] or 0) > 0 and (faults["503"] or 0) > 0, json.encode(faults))
    assert.is_true((faults.drop_before or 0) + (faults.drop_after or 0) > 0, json.encode(faults))
    assert.is_true(rep.retries > 0)
    -- every record is in the dataset; more than once only where aep stream said it might be
    local flagged, listed = {}, 0
    for line in io.lines(accepted_file) do
      local pos, _, dup = line:match("^(%d+)\t([^\t]*)\t?(.*)$")
      listed = listed + 1
      if dup == "possibly-duplicated" then flagged["u" .. pos .. "-f@example.com"] = true end
    end
    assert.equal(n, listed)
    local counts, total = stored_ids(ids.profile_dataset)
    local dups, nflagged = 0, 0
    for _ in pairs(flagged) do nflagged = nflagged + 1 end
    for i = 1, n do
      local id = "u" .. i .. "-f@example.com"
      local c = counts[id] or 0
      assert.is_true(c >= 1, id .. " is missing from the dataset")
      if c > 1 then
        assert.is_true(flagged[id] == true, id .. " is stored " .. c .. " times but was not reported as possibly duplicated")
        assert.equal(2, c)
        dups = dups + 1
      end
    end
    assert.equal(n + dups, total)
    assert.equal(nflagged, rep.possibly_duplicated)
    if (faults.drop_after or 0) > 0 then assert.is_true(dups > 0) end
  end)

  it("turns bad input into rejects with clear reasons and goes on", function()
    local good = records(6, "bad")
    local lines = {}
    for l in good:gmatch("[^\n]+") do lines[#lines + 1] = l end
    local input = write("bad.jsonl", table.concat({
      lines[1],
      '{"_exchangeinternal": {"loyaltyID": "broken@example.com"',          -- 2: malformed JSON
      lines[2],
      '{"_exchangeinternal":{"loyaltyID":"bad\255utf8@example.com"}}',      -- 4: invalid UTF-8
      lines[3],
      cjson.encode({ _exchangeinternal = { loyaltyID = "big@example.com" }, blob = string.rep("x", 1100000) }), -- 6: > 1 MB
      lines[4],
      cjson.encode({ _exchangeinternal = { loyaltyID = "raise@example.com" }, raise = true }), -- 8: mapping raises
      lines[5],
      cjson.encode({ person = { name = { firstName = "No id" } } }),          -- 10: skipped
      lines[6],
    }, "\n") .. "\n")
    local mapping = write("raising.lua", [[
      local base = dofile("mappings/loyalty_profile.lua")
      return function(record, ctx)
        if record.raise then error("no loyalty tier for " .. record._exchangeinternal.loyaltyID, 0) end
        return base(record, ctx)
      end]])
    local rejects, junit = dir .. "/bad-rejects.jsonl", dir .. "/bad-report.xml"
    local r = stream({ "--input", input, "--mapping", mapping, "--reject-file", rejects, "--report", junit })
    assert.equal(2, r.status, r.stderr)
    assert.matches("accepted 6   rejected 4   skipped 1   failed 0", r.stdout, 1, true)
    local got = {}
    for _, e in ipairs(jsonl(rejects)) do got[e.position] = e end
    assert.same({ 2, 4, 6, 8 }, (function() local t = {} for p in pairs(got) do t[#t + 1] = p end table.sort(t) return t end)())
    assert.matches("^invalid JSON at line 2: ", got[2].reason)
    assert.equal("invalid UTF-8 at byte 39 of the record", got[4].reason)
    assert.matches("^the message is %d+ bytes: over AEP's 1 MB request limit", got[6].reason)
    assert.equal("mapping error: no loyalty tier for raise@example.com", got[8].reason)
    assert.equal("raise@example.com", got[8].record._exchangeinternal.loyaltyID)
    assert.equal(json.null, got[8].entity)
    assert.equal("big@example.com", got[6].entity._exchangeinternal.loyaltyID)
    for _, e in pairs(got) do
      assert.equal("rejected", e.kind)
      assert.equal(input, e.input)
    end
    local counts, total = stored_ids(ids.profile_dataset)
    assert.equal(6, total)
    assert.equal(1, counts["u3-bad@example.com"])
    -- JUnit: one failing test case per rejected record, one passing case for the rest
    local xml = read(junit)
    assert.matches('<testsuite name="aep stream [^"]*" tests="5" failures="4"', xml)
    local _, failures = xml:gsub("<failure ", "")
    assert.equal(4, failures)
    assert.matches('name="record 8 %(line 8%)"', xml)
  end)

  it("rejects a CSV row with too many columns and streams the others", function()
    local input = write("rows.csv", "id,level,points\nc1@example.com,Gold,10\nc2@example.com,Silver,20,extra\n\"c3@example.com\",\"Dia\"\"mond\",30\n")
    local mapping = write("csv.lua", [[
      return function(row, ctx)
        return { ["_" .. ctx.tenant] = { loyaltyID = row.id, loyaltyLevel = row.level, totalLoyaltyPoints = tonumber(row.points) },
                 personalEmail = { address = row.id } }
      end]])
    local rejects = dir .. "/csv-rejects.jsonl"
    local r = stream({ "--input", input, "--mapping", mapping, "--reject-file", rejects })
    assert.equal(2, r.status, r.stderr)
    assert.matches("accepted 2   rejected 1   skipped 0   failed 0", r.stdout, 1, true)
    local e = jsonl(rejects)[1]
    assert.same({ 2, 3, "CSV row at line 3 has 4 fields, the header has 3", "c2@example.com,Silver,20,extra" },
      { e.position, e.line, e.reason, e.record })
    local counts = stored_ids(ids.profile_dataset)
    assert.same({ ["c1@example.com"] = 1, ["c3@example.com"] = 1 }, counts)
  end)

  it("reads stdin, gzip and JSON arrays of any layout", function()
    local text = records(5, "gz")
    local arr = {}
    for l in text:gmatch("[^\n]+") do arr[#arr + 1] = "  " .. l:gsub(",", ",\n    ", 2) end
    local path = write("arr.json", "[\n" .. table.concat(arr, "\n  ,\n") .. "\n]\n")
    assert(os.execute("gzip -f " .. run.quote(path)))
    local r = stream({ "--input", path .. ".gz", "--mapping", MAPPING, "--quiet" })
    assert.equal(0, r.status, r.stderr)
    r = stream({ "--input", "-", "--mapping", MAPPING, "--quiet" }, { stdin = records(4, "stdin") })
    assert.equal(0, r.status, r.stderr)
    local counts, total = stored_ids(ids.profile_dataset)
    assert.equal(9, total)
    assert.equal(1, counts["u5-gz@example.com"])
    assert.equal(1, counts["u4-stdin@example.com"])
  end)

  it("resumes after kill -9 from the checkpoint: every record ends accepted once (or reported)", function()
    local n = 3000
    local input = write("kill.jsonl", records(n, "k"))
    local cp, acc = dir .. "/kill.checkpoint", dir .. "/kill-accepted.tsv"
    local argv = { spawn.aep, "stream", "--env", emu.env_file, "--dataset", ids.profile_dataset, "--input", input,
                   "--mapping", MAPPING, "--batch-size", "50", "--rate", "20", "--checkpoint", cp,
                   "--accepted-file", acc, "--quiet" }
    local child = spawn.spawn(argv, nil, { stderr = dir .. "/kill.stderr" })
    -- wait until part of the input is acknowledged, then kill -9
    local prefix = 0
    for _ = 1, 200 do
      host.sleep(0.05)
      local doc = json.decode(read(cp) or "")
      prefix = doc and doc.prefix or 0
      if prefix >= 500 then break end
    end
    assert.is_true(prefix >= 500, "the checkpoint did not advance")
    child:kill("KILL")
    child:wait()
    local before = json.decode(read(cp))
    assert.is_true(before.prefix < n)
    -- the same command again (faster: pacing is not what this test is about)
    local args = { "--input", input, "--mapping", MAPPING, "--batch-size", "50", "--rate", "unlimited",
                   "--checkpoint", cp, "--accepted-file", acc, "--report", dir .. "/kill-report.json" }
    local r = stream(args)
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("resumed from checkpoint", r.stdout, 1, true)
    local rep = json.decode(read(dir .. "/kill-report.json"))
    assert.same({ n, 0, 0, 0 }, { rep.accepted, rep.rejected, rep.skipped, rep.failed })
    local doc = json.decode(read(cp))
    assert.is_true(doc.complete)
    assert.equal(n, doc.prefix)
    local listed, flagged = {}, {}
    for line in io.lines(acc) do
      local pos, _, dup = line:match("^(%d+)\t([^\t]*)\t?(.*)$")
      pos = tonumber(pos)
      assert.is_nil(listed[pos], "position " .. pos .. " listed twice")
      listed[pos] = true
      if dup == "possibly-duplicated" then flagged[pos] = true end
    end
    local counts, total = stored_ids(ids.profile_dataset)
    local extra = 0
    for i = 1, n do
      assert.is_true(listed[i], "position " .. i .. " not accepted")
      local c = counts["u" .. i .. "-k@example.com"] or 0
      assert.is_true(c >= 1, "record " .. i .. " is missing")
      if c > 1 then
        assert.is_true(flagged[i] == true, "record " .. i .. " stored " .. c .. " times, not reported")
        extra = extra + c - 1
      end
    end
    assert.equal(n + extra, total)
    -- a third run has nothing left to send
    local seq = log_last()
    r = stream(args)
    assert.equal(0, r.status)
    assert.equal(0, #log_since(seq))
  end)

  it("replays a reject file after the mapping is fixed", function()
    local input = write("replay.jsonl", records(40, "r"))
    local strict = write("strict.lua", [[
      local base = dofile("mappings/loyalty_profile.lua")
      return function(record, ctx)
        if record._exchangeinternal.loyaltyLevel == "Gold" then error("Gold is not mapped yet", 0) end
        return base(record, ctx)
      end]])
    local rejects = dir .. "/replay-rejects.jsonl"
    local r = stream({ "--input", input, "--mapping", strict, "--reject-file", rejects })
    assert.equal(2, r.status)
    assert.matches("accepted 30   rejected 10   skipped 0   failed 0", r.stdout, 1, true)
    assert.equal(10, #jsonl(rejects))
    local again = dir .. "/replay-rejects-2.jsonl"
    r = stream({ "--input", rejects, "--mapping", MAPPING, "--reject-file", again })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 10   rejected 0   skipped 0   failed 0", r.stdout, 1, true)
    assert.is_nil(read(again))
    local counts, total = stored_ids(ids.profile_dataset)
    assert.equal(40, total)
    for i = 1, 40 do assert.equal(1, counts["u" .. i .. "-r@example.com"]) end
  end)

  it("splits a batch the emulator refuses with 413 and delivers every record", function()
    local input = write("large.jsonl", records(24, "l", function(_, r) r.person.name.middleName = string.rep("m", 100000) end))
    local r = stream({ "--input", input, "--mapping", MAPPING, "--batch-size", "24", "--max-request-bytes", "8000000",
                       "--report", dir .. "/large.json" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local rep = json.decode(read(dir .. "/large.json"))
    assert.equal(24, rep.accepted)
    assert.is_true(rep.splits >= 2)
    assert.is_true(rep.statuses["413"] >= 2)
    local _, total = stored_ids(ids.profile_dataset)
    assert.equal(24, total)
  end)

  it("keeps to --rate (requests/s) and --message-rate, measured in the request log", function()
    local input = write("paced.jsonl", records(300, "p"))
    local seq = log_last()
    local r = stream({ "--input", input, "--mapping", MAPPING, "--batch-size", "10", "--rate", "10", "--quiet" })
    assert.equal(0, r.status, r.stderr)
    local reqs = log_since(seq)
    assert.equal(30, #reqs)
    local t = {}
    for i, e in ipairs(reqs) do t[i] = e.time end
    table.sort(t)
    -- in any 1-second window at most 10 requests (+1 for the window's edge, +1 for arrival jitter)
    for i = 1, #t do
      local k = 0
      for j = i, #t do if t[j] < t[i] + 1 then k = k + 1 end end
      assert.is_true(k <= 12, "requests in a second: " .. k)
    end
    assert.is_true(t[#t] - t[1] >= 29 / 10 * 0.9, "30 requests at 10/s took " .. (t[#t] - t[1]) .. " s")

    seq = log_last()
    r = stream({ "--input", input, "--mapping", MAPPING, "--batch-size", "20", "--message-rate", "200", "--quiet" })
    assert.equal(0, r.status, r.stderr)
    reqs = log_since(seq)
    assert.equal(15, #reqs)
    t = {}
    local msgs = 0
    for i, e in ipairs(reqs) do t[i] = e.time; msgs = msgs + e.messages end
    assert.equal(300, msgs)
    table.sort(t)
    -- 200 messages/s in batches of 20: one request per 0.1 s
    assert.is_true(t[#t] - t[1] >= 14 * 0.1 * 0.9, "took " .. (t[#t] - t[1]) .. " s")
  end)

  it("streams to an authenticated inlet, renewing the token when it expires", function()
    local conn = fixtures.streaming_connection(api, { authenticated = true, dataflow = true,
      dataset_id = ids.profile_dataset, schema_id = ids.profile_schema })
    local input = write("auth.jsonl", records(2000, "a"))
    set_faults("streaming:expire_token=0.1", 5)
    local report = dir .. "/auth.json"
    local r = stream({ "--input", input, "--mapping", MAPPING, "--inlet", conn.inlet_url, "--flow-id", conn.flow_id,
                       "--authenticated", "--batch-size", "50", "--report", report, "--quiet" })
    set_faults("")
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local rep = json.decode(read(report))
    assert.same({ 2000, 0, 0 }, { rep.accepted, rep.failed, rep.possibly_duplicated })
    assert.is_true((rep.statuses["401"] or 0) > 0)
    local counts, total = stored_ids(ids.profile_dataset)
    assert.equal(2000, total)
    assert.equal(1, counts["u2000-a@example.com"])
    -- without a token the inlet refuses every request: the run stops at once (what was read is
    -- counted failed) and says why
    r = stream({ "--input", input, "--mapping", MAPPING, "--inlet", conn.inlet_url, "--flow-id", conn.flow_id,
                 "--batch-size", "500", "--concurrency", "1" })
    assert.equal(1, r.status)
    assert.matches("accepted 0   rejected 0   skipped 0   failed [%d,]+", r.stdout)
    assert.matches("stopped early: HTTP 401: ", r.stdout, 1, true)
    assert.matches("needs --authenticated", r.stderr, 1, true)
  end)

  it("in sync-validation mode sends one record per request, at least a second apart", function()
    local input = write("sync.jsonl", records(3, "s"))
    local seq = log_last()
    local r = stream({ "--input", input, "--mapping", MAPPING, "--sync-validation", "--quiet" })
    assert.equal(0, r.status, r.stderr)
    local reqs = log_since(seq)
    assert.equal(3, #reqs)
    for _, e in ipairs(reqs) do
      assert.equal("POST", e.method)
      assert.matches("^/collection/%x+$", (e.path:gsub("%?.*$", "")))
      assert.equal(1, e.messages)
    end
    -- at most 60 a minute: consecutive requests >= 1 s apart (arrival times in the emulator's log)
    assert.is_true(reqs[2].time - reqs[1].time >= 1.0, "gap " .. (reqs[2].time - reqs[1].time))
    assert.is_true(reqs[3].time - reqs[2].time >= 1.0, "gap " .. (reqs[3].time - reqs[2].time))
    local counts = stored_ids(ids.profile_dataset)
    assert.equal(1, counts["u2-s@example.com"])
  end)
end)
