-- What `aep run` tells its user, from the user's side (the command and what it prints): a
-- summary whose counts equal the lines printed, -q keeping the final result, --json printing one
-- document and nothing else on stdout, and `aep run lookup` by any identity namespace, saying on
-- stderr what it waits for.
local json = require "aep.json"
local workflow = require "aep.run.workflow"
local poll = require "aep.poll"
local emulator = require "tests.lua.support.emulator"
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"

local emu, tmp

setup(function()
  emu = emulator.start()
  tmp = run.tmpdir()
end)
teardown(function()
  emu.cleanup()
  os.execute("rm -rf " .. run.quote(tmp))
end)

-- `aep run ARGS` against the spec's emulator, in sandbox SANDBOX with its own manifest
local function aep_run(sandbox, args)
  emu.sandbox(sandbox)
  local argv = { "run", "--env", emu.env_file, "--sandbox", sandbox, "--manifest", tmp .. "/" .. sandbox .. ".json", "--wait", "30" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end -- a later --wait wins
  return run.aep(argv, { env = { NO_COLOR = "1", AEP_ENV = "" } })
end

-- lines of stdout starting with each status word
local function status_lines(out)
  local n = { created = 0, found = 0, updated = 0, deleted = 0, kept = 0 }
  for line in out:gmatch("[^\n]+") do
    local w = line:match("^(%a+) ")
    if w and n[w] then n[w] = n[w] + 1 end
  end
  return n
end

-- The sample person realtime-import shows at the end, as -q prints it
local PROFILE_BLOCK = table.concat({
  "ok        profile            aodowling1@examiner.com  ZW1haWwAYW9kb3dsaW5nMUBleGFtaW5lci5jb20",
  "            name             Alexia O'Dowling",
  "            loyalty level    Diamond",
  "            loyalty points   480650",
  "            events           1",
  "                             2020-03-03T06:53:53Z  loyaltyLevelUpdate  +900 points, total 416450, Diamond  (_id 10867499)",
}, "\n") .. "\n"

describe("aep run's summary", function()
  it("counts exactly the created, found, updated and deleted lines it printed", function()
    local r = aep_run("sum", { "realtime-import" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.same({ created = 16, found = 1, updated = 2, deleted = 0, kept = 0 }, status_lines(r.stdout))
    assert.truthy(r.stdout:find("\ndone: 16 created, 1 found, 2 updated\n", 1, true), r.stdout)

    r = aep_run("sum", { "realtime-import" })
    assert.are.equal(0, r.status, r.stderr)
    -- 14 resources, 2 batches already imported, the Email namespace
    assert.are.same({ created = 0, found = 17, updated = 0, deleted = 0, kept = 0 }, status_lines(r.stdout))
    assert.truthy(r.stdout:find("\ndone: 0 created, 17 found\n", 1, true), r.stdout)

    r = aep_run("sum", { "teardown" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.same({ created = 0, found = 0, updated = 0, deleted = 14, kept = 0 }, status_lines(r.stdout))
    assert.truthy(r.stdout:find("\ndone: 0 created, 0 found, 14 deleted\n", 1, true), r.stdout)
  end)
end)

describe("aep run -q", function()
  it("prints the final result: the profile looked up and the summary, nothing else", function()
    local r = aep_run("quiet", { "realtime-import", "-q" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("", r.stderr)
    assert.are.equal(PROFILE_BLOCK .. "done: 16 created, 1 found, 2 updated\n", r.stdout)
  end)
end)

describe("aep run --json", function()
  it("prints one document on stdout: steps done, what was created and found, counts, exit status, the profile", function()
    local r = aep_run("js", { "realtime-import", "--json" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("", r.stderr)
    local doc = json.decode(r.stdout)
    assert.are.equal("aep run", doc.tool)
    assert.are.equal(0, doc.exit_status)
    assert.are.same({ "realtime-import" }, doc.scripts)
    assert.are.same({ { script = "auth", status = "done" }, { script = "schemas", status = "done" },
      { script = "datasets", status = "done" }, { script = "streaming", status = "done" },
      { script = "batch-import", status = "done" }, { script = "lookup", status = "done" },
      { script = "realtime-import", status = "done" } }, doc.steps)
    assert.are.same({ created = 16, found = 1, updated = 2, deleted = 0, kept = 0 }, doc.counts)
    assert.are.equal(16, #doc.created)
    assert.are.same({ script = "schemas", kind = "namespace", name = "Email", id = "6" }, doc.found[1])
    local kinds = {}
    for _, c in ipairs(doc.created) do kinds[c.kind] = (kinds[c.kind] or 0) + 1; assert.is_string(c.id) end
    assert.are.same({ ["field group"] = 2, schema = 2, identity = 2, dataset = 2, connection = 1,
      ["source connection"] = 1, ["target connection"] = 2, dataflow = 2, batch = 2 }, kinds)
    assert.are.equal("done: 16 created, 1 found, 2 updated", doc.summary)
    assert.are.same({ namespace = "email", id = "aodowling1@examiner.com" }, doc.lookup.identity)
    assert.are.same({ firstName = "Alexia", middleName = "", lastName = "O'Dowling" }, doc.lookup.profile.person.name)
    assert.are.equal(1, #doc.lookup.events)
    assert.are.equal("10867499", doc.lookup.events[1].entityId)
    assert.are.equal("loyaltyLevelUpdate", doc.lookup.events[1].entity.eventType)
    assert.are.equal(25, doc.lookup.verified)
    assert.are.same({}, doc.lookup.mismatches)
    assert.are.equal("js", doc.target.sandbox)
  end)

  it("still prints the document when the run fails, with the error and exit status 1", function()
    local r = aep_run("js", { "lookup", "--json", "--person", "nobody@example.com", "--wait", "1" })
    assert.are.equal(1, r.status, r.stderr)
    local doc = json.decode(r.stdout)
    assert.are.equal(1, doc.exit_status)
    assert.are.same({ { script = "lookup", status = "failed" } }, doc.steps)
    assert.are.same({ code = "TIMEOUT", kind = "timeout", step = "lookup: profile of nobody@example.com",
      message = "the profile of nobody@example.com not visible after 1 s (--wait 1)" }, doc.error)
    assert.is_nil(doc.lookup)
    assert.truthy(r.stderr:find("TIMEOUT: the profile of nobody@example.com not visible after 1 s (--wait 1)\n", 1, true), r.stderr)
  end)
end)

describe("aep run lookup", function()
  local ECID = "44332211009988776655443322110099887766"

  setup(function()
    local r = aep_run("look", { "realtime-import", "-q", "--no-verify", "--no-batch-import" })
    assert(r.status == 0, r.stderr)
    local m = json.decode(files.read(tmp .. "/look.json"))
    -- a person known by an ECID in their identityMap besides their email
    local input = files.write(tmp .. "/ecid.jsonl", json.encode({
      _exchangeinternal = { loyaltyID = "ecid.person@example.com", loyaltyLevel = "Gold", totalLoyaltyPoints = 7 },
      person = { name = { firstName = "E", lastName = "Cid" } }, personalEmail = { address = "ecid.person@example.com" },
      identityMap = { ECID = { { id = ECID, primary = false } } },
    }) .. "\n")
    r = run.aep({ "stream", "--env", emu.env_file, "--sandbox", "look", "--dataset", m.variables.DATASET_ID_PROFILE,
      "--inlet", m.variables.INLET_URL, "--flow-id", m.variables.FLOW_ID_PROFILE,
      "--input", input, "--mapping", "mappings/loyalty_profile.lua", "--wait", "30s" })
    assert(r.status == 0, r.stderr)
  end)

  it("finds a person by any identity namespace with --identity NS:VALUE", function()
    local r = aep_run("look", { "lookup", "--identity", "ECID:" .. ECID, "-q" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("", r.stderr)
    assert.are.equal(table.concat({
      "ok        profile            ECID:" .. ECID .. "  ZW1haWwAZWNpZC5wZXJzb25AZXhhbXBsZS5jb20",
      "            name             E Cid",
      "            loyalty level    Gold",
      "            loyalty points   7",
      "            events           0",
      "done: 0 created, 0 found" }, "\n") .. "\n", r.stdout)
  end)

  it("prints the profile entity and the events as JSON with --json, nothing else on stdout", function()
    local r = aep_run("look", { "lookup", "--identity", "ECID:" .. ECID, "--json" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("", r.stderr)
    local doc = json.decode(r.stdout)
    assert.are.same({ namespace = "ECID", id = ECID }, doc.lookup.identity)
    assert.are.equal("ZW1haWwAZWNpZC5wZXJzb25AZXhhbXBsZS5jb20", doc.lookup.entityId)
    assert.are.same({ firstName = "E", lastName = "Cid" }, doc.lookup.profile.person.name)
    assert.are.same({ address = "ecid.person@example.com" }, doc.lookup.profile.personalEmail)
    assert.truthy(r.stdout:find('"events": []', 1, true), r.stdout)
    assert.are.equal("Default Timebased", doc.lookup.merge_policy.name)
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", doc.lookup.merge_policy.id)
  end)

  it("says on stderr what it waits for, in which merge policy, and for how long", function()
    local r = aep_run("look", { "lookup", "--person", "nobody@example.com", "--wait", "2" })
    assert.are.equal(1, r.status)
    local first = r.stderr:match("^[^\n]*")
    assert.truthy(first:match("^waiting for the profile of nobody@example%.com in Real%-Time Customer Profile " ..
      "%(merge policy Default Timebased%), %d+ s of 2 s$"), r.stderr)
    assert.truthy(r.stderr:find("\naep: step 'lookup: profile of nobody@example.com' failed:\n" ..
      "  TIMEOUT: the profile of nobody@example.com not visible after 2 s (--wait 2)\n", 1, true), r.stderr)
  end)

  it("refuses an --identity without a namespace, and --person with --identity", function()
    local r = aep_run("look", { "lookup", "--identity", ECID })
    assert.are.equal(64, r.status)
    assert.truthy(r.stderr:find("--identity needs NS:VALUE, the identity namespace code and the value " ..
      "(e.g. ECID:12345, Email:a@b.com), got '" .. ECID .. "'", 1, true), r.stderr)
    r = aep_run("look", { "lookup", "--identity", "ECID:1", "--person", "a@b.com" })
    assert.are.equal(64, r.status)
    assert.truthy(r.stderr:find("--person and --identity exclude each other (--person a@b.com is --identity Email:a@b.com)", 1, true), r.stderr)
  end)
end)

describe("aep run lookup of a person whose record AEP fails while the lookup waits", function()
  it("stops with AEP's reason instead of waiting out --wait", function()
    -- AEP validates streamed records after its answer: here 4 s after it, so the lookup starts
    -- before the failure is known and learns it while waiting
    local slow = emulator.start({ "--validation-delay", "4" })
    local ok, err = pcall(function()
      local function slow_run(args)
        local argv = { "run", "--env", slow.env_file, "--manifest", tmp .. "/slow.json", "--wait", "120" }
        for _, a in ipairs(args) do argv[#argv + 1] = a end
        return run.aep(argv, { env = { NO_COLOR = "1", AEP_ENV = "" } })
      end
      local r = slow_run({ "auth", "schemas", "datasets", "streaming", "-q" })
      assert(r.status == 0, r.stderr)
      local m = json.decode(files.read(tmp .. "/slow.json"))
      local input = files.write(tmp .. "/bronze.jsonl", json.encode({
        _exchangeinternal = { loyaltyID = "bronze@example.com", loyaltyLevel = "Bronze", totalLoyaltyPoints = 1 },
        person = { name = { firstName = "B", lastName = "Z" } }, personalEmail = { address = "bronze@example.com" },
      }) .. "\n")
      r = run.aep({ "stream", "--env", slow.env_file, "--dataset", m.variables.DATASET_ID_PROFILE,
        "--inlet", m.variables.INLET_URL, "--flow-id", m.variables.FLOW_ID_PROFILE,
        "--input", input, "--mapping", "mappings/loyalty_profile.lua", "--wait", "0" })
      assert(r.status == 0, r.stderr)
      r = slow_run({ "lookup", "--person", "bronze@example.com" })
      assert.are.equal(1, r.status, r.stderr)
      assert.truthy(r.stderr:find("aep: step 'lookup: profile of bronze@example.com' failed:\n  FAILED_AFTER_ACCEPTANCE: " ..
        "the profile record of bronze@example.com was accepted but failed AEP's validation (batch ", 1, true), r.stderr)
      assert.truthy(r.stderr:find("): INGEST-1201-400 Bronze is not a valid enum value; it never reaches Profile", 1, true), r.stderr)
    end)
    slow.cleanup()
    if not ok then error(err, 0) end
  end)
end)

describe("the progress of a wait", function()
  -- a fake clock: now() as set by the test
  local function clock()
    local t = { now = 0 }
    return t, function() return t.now end
  end

  local function waiting(tty)
    local out = {}
    local t, now = clock()
    local wf = workflow.new({ options = {} })
    local p = wf:waiting("the profile of a@b.com", 900, { tty = tty, now = now, out = function(s) out[#out + 1] = s end })
    return p, out, t
  end

  it("on a terminal, is one line redrawn in place and cleared at the end", function()
    local p, out, t = waiting(true)
    for s = 0, 2 do t.now = s; p(s) end
    p.finish()
    assert.are.same({ "\r\27[Kwaiting for the profile of a@b.com, 0 s of 900 s",
                      "\r\27[Kwaiting for the profile of a@b.com, 1 s of 900 s",
                      "\r\27[Kwaiting for the profile of a@b.com, 2 s of 900 s", "\r\27[K" }, out)
  end)

  it("off a terminal, is a plain line at most every 10 s", function()
    local p, out, t = waiting(false)
    for s = 0, 25 do t.now = s; p(s) end
    p.finish()
    assert.are.same({ "waiting for the profile of a@b.com, 0 s of 900 s\n",
                      "waiting for the profile of a@b.com, 10 s of 900 s\n",
                      "waiting for the profile of a@b.com, 20 s of 900 s\n" }, out)
  end)

  it("is told at least once a second though the checks grow 30 s apart", function()
    local t = 0
    local c = { now = function() return t end, sleep = function(d) t = t + d end }
    local seen, checks = {}, 0
    local ok, err = pcall(poll.wait, c, function() checks = checks + 1; return nil end,
      { timeout = 60, what = "x", on_wait = function(w) seen[#seen + 1] = w end })
    assert.is_false(ok)
    assert.are.equal("TIMEOUT", err.code)
    assert.are.equal(0, seen[1])
    for i = 2, #seen do assert.is_true(seen[i] - seen[i - 1] <= 1, "gap before " .. seen[i]) end
    assert.are.equal(60, seen[#seen])
    assert.are.equal(10, checks) -- 1, 1.5, 2.25 ... s apart: the slices do not add checks
  end)
end)
