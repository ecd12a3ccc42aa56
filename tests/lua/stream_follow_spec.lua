-- aep stream follows what AEP accepted through its asynchronous validation (the emulator's, as
-- AEP documents it): each accepted record ends ingested, failed after acceptance (AEP's code and
-- message, in the reject file at its input position, replayable) or unknown when the wait runs
-- out, which `aep status` resolves later. Faults on the streaming routes do not change the
-- counts. Exact outcomes; every wait is bounded in polls and seconds.
local json = require "aep.json"
local cjson = require "cjson"
local host = require "aep.host"
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"
local emulator = require "tests.lua.support.emulator"

local emu, api, ids, dir

local function write(name, content) return files.write(dir .. "/" .. name, content) end

-- the defects, by input position: what each breaks and what AEP (the emulator) says
local DEFECTS = {
  [2] = { what = "missing", code = "INGEST-1555-400", message = "required key [loyaltyID] not found" },
  [4] = { what = "enum", code = "INGEST-1201-400", message = "Bronze is not a valid enum value" },
  [5] = { what = "date", code = "INGEST-1201-400" },
  [7] = { what = "type", code = "INGEST-1201-400", message = "expected type: Number, found: String" },
  [9] = { what = "extra", code = "INGEST-1201-400", message = "extraneous key [workEmail] is not permitted" },
}
local N = 12

local function records(tag)
  local lines = {}
  for i = 1, N do
    local id = "f" .. i .. "-" .. tag .. "@example.com"
    local r = {
      _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = i * 10, loyaltyLevel = "Gold" },
      person = { name = { firstName = "F" .. i, lastName = "L" .. i }, birthDate = "1980-01-01" },
      personalEmail = { address = id },
      id = id, -- the input's own key: the mapping moves it (missing when broken)
    }
    local d = DEFECTS[i] and DEFECTS[i].what
    if d == "missing" then r._exchangeinternal.loyaltyID = nil
    elseif d == "enum" then r._exchangeinternal.loyaltyLevel = "Bronze"
    elseif d == "date" then r.person.birthDate = "1980-13-45"
    elseif d == "type" then r._exchangeinternal.totalLoyaltyPoints = "lots"
    elseif d == "extra" then r._exchangeinternal.workEmail = id end
    lines[i] = cjson.encode(r)
  end
  return table.concat(lines, "\n") .. "\n"
end

-- the broken mapping sends the record as it is (tenant renamed); the fixed one repairs each defect
local BROKEN = [[
return function(record, ctx)
  record["_" .. ctx.tenant], record._exchangeinternal = record._exchangeinternal, nil
  record.id = nil
  return record
end
]]
local FIXED = [[
return function(record, ctx)
  local t = record._exchangeinternal
  record["_" .. ctx.tenant], record._exchangeinternal = t, nil
  t.loyaltyID = t.loyaltyID or record.id
  if t.loyaltyLevel == "Bronze" then t.loyaltyLevel = "Silver" end
  if type(t.totalLoyaltyPoints) ~= "number" then t.totalLoyaltyPoints = 0 end
  t.workEmail = nil
  if record.person.birthDate == "1980-13-45" then record.person.birthDate = "1980-12-31" end
  record.id = nil
  return record
end
]]

local function stream(dataset, args)
  local argv = { "stream", "--env", emu.env_file, "--dataset", dataset }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return run.aep(argv)
end

-- loyaltyID -> how many ingested (valid) records of the dataset hold it, and their number
local function stored_ids(ds)
  local counts, total = {}, 0
  local page = fixtures.records(api, ds, "?status=success&limit=5000")
  for _, rec in ipairs(page.records or {}) do
    local id = rec.entity._exchangeinternal.loyaltyID
    counts[id] = (counts[id] or 0) + 1
    total = total + 1
  end
  return counts, total
end

local ndataset = 0
local function fresh_dataset()
  ndataset = ndataset + 1
  return fixtures.dataset(api, "follow spec " .. ndataset .. " " .. os.time(), ids.profile_schema, true)
end

setup(function()
  dir = run.tmpdir()
  emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--seed", "7", "--batch-window", "0.2" },
    { dataflow = false })
  write("broken.lua", BROKEN)
  write("fixed.lua", FIXED)
end)

teardown(function()
  if emu then emu.stop(); emu.cleanup() end
  if dir then os.execute("rm -rf " .. run.quote(dir)) end
end)

describe("aep stream follows accepted records", function()
  before_each(function() emu.faults("") end)

  it("counts ingested and failed after acceptance, with AEP's codes, the reject file and a replay", function()
    local ds = fresh_dataset()
    local input = write("in1.jsonl", records("a"))
    local rejects = dir .. "/rejects1.jsonl"
    local r = stream(ds, { "--input", input, "--mapping", dir .. "/broken.lua", "--reject-file", rejects,
                           "--json", "--wait", "30s" })
    assert.are.equal(2, r.status, r.stderr)
    local doc = json.decode(r.stdout)
    local invalid = 0
    for _ in pairs(DEFECTS) do invalid = invalid + 1 end
    assert.are.same({ N, 0, 0, 0 }, { doc.accepted, doc.rejected, doc.skipped, doc.failed })
    assert.are.same({ N - invalid, invalid, 0 }, { doc.ingested, doc.failed_after_acceptance, doc.unknown })
    assert.are.equal("final", doc.follow.state)
    assert.are.equal(0, doc.follow.unmatched)
    local entries = files.json_lines(rejects)
    assert.are.equal(invalid, #entries)
    local prev = 0
    for _, e in ipairs(entries) do
      local d = DEFECTS[e.position]
      assert.truthy(d, "unexpected position " .. tostring(e.position))
      assert.is_true(e.position > prev)
      prev = e.position
      assert.are.equal("failed_after_acceptance", e.kind)
      assert.are.equal(e.position, e.line)
      assert.are.equal(d.code, e.errors[1].code)
      if d.message then assert.are.equal(d.message, e.errors[1].message) end
      assert.are.equal(d.code .. " " .. e.errors[1].message, e.reason)
      assert.are.equal("table", type(e.record._exchangeinternal))
    end
    -- Profile and the dataset hold the valid records only
    local stored, total = stored_ids(ds)
    assert.are.equal(N - invalid, total)
    for i = 1, N do
      local id = "f" .. i .. "-a@example.com"
      assert.are.equal(not DEFECTS[i] and 1 or nil, stored[id], id)
    end
    local function profile_status(id)
      local st = api:get("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=" ..
        id:gsub("@", "%%40") .. "&entityIdNS=email")
      return st
    end
    assert.are.equal(200, profile_status("f1-a@example.com"))
    assert.are.equal(404, profile_status("f4-a@example.com"))
    assert.are.equal(404, profile_status("f9-a@example.com"))
    -- the replay with the fixed mapping ingests them, at their original positions
    local r2 = stream(ds, { "--input", rejects, "--mapping", dir .. "/fixed.lua", "--json", "--wait", "30s" })
    assert.are.equal(0, r2.status, r2.stderr)
    local doc2 = json.decode(r2.stdout)
    assert.are.same({ invalid, invalid, 0, 0 }, { doc2.accepted, doc2.ingested, doc2.failed_after_acceptance, doc2.unknown })
    -- the first run's failures, in batches the replay also looks at, are not the replay's
    assert.are.equal(0, doc2.follow.unmatched)
    stored, total = stored_ids(ds)
    assert.are.equal(N, total)
    for i = 1, N do assert.are.equal(1, stored["f" .. i .. "-a@example.com"]) end
    assert.are.equal(200, profile_status("f4-a@example.com"))
  end)

  it("says it in the summary and JUnit; --no-follow keeps the answer's view", function()
    local ds = fresh_dataset()
    local input = write("in2.jsonl", records("b"))
    local xml = dir .. "/report2.xml"
    local r = stream(ds, { "--input", input, "--mapping", dir .. "/broken.lua", "--report", xml, "--wait", "30s" })
    assert.are.equal(2, r.status, r.stderr)
    assert.truthy(r.stdout:find("  after acceptance: ingested 7   failed 5   unknown 0\n", 1, true), r.stdout)
    assert.truthy(r.stdout:find("    record 2: INGEST-1555-400 required key [loyaltyID] not found\n", 1, true), r.stdout)
    local x = files.read(xml)
    assert.truthy(x:find('tests="6" failures="5"', 1, true), x)
    assert.truthy(x:find('<property name="ingested" value="7"/><property name="failed_after_acceptance" value="5"/>', 1, true), x)
    assert.truthy(x:find('type="failed_after_acceptance" message="INGEST-1201-400 Bronze is not a valid enum value"', 1, true), x)
    local r3 = stream(fresh_dataset(), { "--input", input, "--mapping", dir .. "/broken.lua", "--no-follow", "--json" })
    assert.are.equal(0, r3.status, r3.stderr)
    local doc3 = json.decode(r3.stdout)
    assert.are.equal(N, doc3.accepted)
    assert.is_nil(doc3.ingested)
    assert.is_nil(doc3.failed_after_acceptance)
  end)

  it("counts each record exactly once under 429/503/drop faults", function()
    local ds = fresh_dataset()
    local input = write("in3.jsonl", records("c"))
    emu.faults("streaming:429=0.2,503=0.2,drop_before=0.1", 11)
    local r = stream(ds, { "--input", input, "--mapping", dir .. "/broken.lua", "--batch-size", "2",
                           "--json", "--wait", "30s" })
    emu.faults("")
    local doc = json.decode(r.stdout)
    assert.truthy(doc, r.stderr)
    assert.are.equal(N, doc.accepted + doc.rejected + doc.failed)
    assert.are.equal(0, doc.possibly_duplicated, r.stdout)
    assert.are.equal(doc.accepted, doc.ingested + doc.failed_after_acceptance + doc.unknown)
    assert.are.same({ 0, 0 }, { doc.unknown, doc.follow.unmatched })
    local stored, total = stored_ids(ds)
    assert.are.equal(doc.ingested, total)
    local n = 0
    for _, c in pairs(stored) do assert.are.equal(1, c); n = n + 1 end
    assert.are.equal(doc.ingested, n)
  end)
end)

describe("aep stream follow-through that runs out of time", function()
  local slow, sapi, sids
  setup(function()
    slow, sapi, sids = fixtures.start({ "--tenant", "exchangeinternal", "--batch-window", "0.2",
                                        "--validation-delay", "4" }, { dataflow = false })
  end)
  teardown(function() if slow then slow.stop(); slow.cleanup() end end)

  it("reports unknown, names the aep status command, and aep status resolves it later", function()
    local ds = fixtures.dataset(sapi, "follow slow " .. os.time(), sids.profile_schema, true)
    local input = write("in4.jsonl", records("d"))
    local r = run.aep({ "stream", "--env", slow.env_file, "--dataset", ds, "--input", input,
                        "--mapping", dir .. "/broken.lua", "--wait", "1s", "--json" })
    assert.are.equal(0, r.status, r.stderr)
    local doc = json.decode(r.stdout)
    assert.are.same({ N, 0, 0, N }, { doc.accepted, doc.ingested, doc.failed_after_acceptance, doc.unknown })
    assert.are.equal("timeout", doc.follow.state)
    assert.are.equal("aep status --env " .. slow.env_file .. " --dataset " .. ds, doc.follow.status_command:match("^(.-) %-%-since"))
    -- later (bounded: 40 tries, 20 s): aep status shows the records' fate
    local deadline, st = host.now() + 20, nil
    for _ = 1, 40 do
      st = run.aep({ "status", "--env", slow.env_file, "--dataset", ds, "--errors", "--json" })
      local sdoc = json.decode(st.stdout)
      local done = sdoc and #sdoc.batches == 2
      for _, b in ipairs(done and sdoc.batches or {}) do if b.status == "processing" then done = false end end
      if done then
        assert.are.equal(2, st.status, st.stderr)
        assert.are.equal(5, sdoc.failed)
        assert.are.equal(5, #sdoc.failed_records)
        return
      end
      if host.now() > deadline then break end
      host.sleep(0.5)
    end
    error("aep status did not resolve the run: " .. tostring(st and st.stdout))
  end)
end)

describe("aep stream --from kafka follow-through", function()
  local kafka = require "aep.kafka"
  local kafka_mock = require "tests.lua.support.kafka_mock"
  local mock
  setup(function()
    mock = kafka_mock.start{ partitions = 2, topics = { "follow", "follow-dead" } }
  end)
  teardown(function() if mock then mock.stop() end end)

  it("dead-letters an accepted message that failed validation, with the reason", function()
    local ds = fresh_dataset()
    local p = assert(kafka.producer{ brokers = mock.bootstrap })
    local values = {}
    for line in records("k"):gmatch("[^\n]+") do values[#values + 1] = line end
    for i, v in ipairs(values) do assert(p:produce("follow", v, "k" .. i)) end
    assert.are.equal(#values, p:flush(10))
    p:close()
    local argv = { "stream", "--from", "kafka", "--brokers", mock.bootstrap, "--topic", "follow", "--group", "gf",
                   "--dead-letter-topic", "follow-dead", "--idle-exit", "4", "--env", emu.env_file,
                   "--dataset", ds, "--mapping", dir .. "/broken.lua", "--json", "--wait", "30s" }
    for k, v in pairs(kafka_mock.session_config) do
      argv[#argv + 1] = "--kafka-config"
      argv[#argv + 1] = k .. "=" .. v
    end
    local r = run.aep(argv)
    assert.are.equal(2, r.status, r.stderr)
    local doc = json.decode(r.stdout)
    assert.are.same({ N, 7, 5, 0, 5 }, { doc.accepted, doc.ingested, doc.failed_after_acceptance, doc.unknown,
                                         doc.kafka.dead_lettered })
    local c = assert(kafka.consumer{ brokers = mock.bootstrap, group = "gf-dead", topics = { "follow-dead" },
                                     config = kafka_mock.session_config })
    local dead, n = {}, 0
    for _ = 1, 600 do
      for _, e in ipairs(c:poll_batch(10, 0.1)) do
        if e.event == "assign" then assert(c:assign(e.partitions))
        elseif e.event == nil then
          local rec = cjson.decode(e.value)
          dead[rec.id] = e.headers
          n = n + 1
        end
      end
      if n >= 5 then break end
    end
    c:close()
    assert.are.equal(5, n)
    assert.are.equal("failed after acceptance: INGEST-1201-400 Bronze is not a valid enum value",
      dead["f4-k@example.com"]["aep.error.reason"])
    assert.are.equal("failed after acceptance: INGEST-1555-400 required key [loyaltyID] not found",
      dead["f2-k@example.com"]["aep.error.reason"])
    assert.are.equal("follow", dead["f2-k@example.com"]["aep.source.topic"])
  end)
end)
