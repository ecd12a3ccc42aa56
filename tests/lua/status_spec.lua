-- aep status against the emulator: after a stream with invalid records (validated after the
-- answer), it shows the dataflow's run and the dataset's batches with their counts, and with
-- --errors the failed records with AEP's codes and messages, through the public paths only.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local run = require "support.run"
local json = require "aep.json"
local host = require "aep.host"

describe("aep status", function()
  local emu, api, ids, answer, T

  -- the runs of the dataflow covering n records, once final (at most 20 s, 400 polls)
  local function wait_final(n)
    local deadline = host.now() + 20
    for _ = 1, 400 do
      local s, b = api:get("/data/foundation/flowservice/runs?property=" ..
        fixtures.url_encode("flowId==" .. ids.flow_id))
      fixtures.expect(s, 200, b, "runs")
      local total, open = 0, false
      for _, r in ipairs(b.items) do
        total = total + r.metrics.recordSummary.inputRecordCount
        if r.metrics.statusSummary.status == "inProgress" then open = true end
      end
      if total >= n and not open then return end
      if host.now() > deadline then break end
      host.sleep(0.05)
    end
    error("runs not final")
  end

  setup(function()
    emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--batch-window", "0.2" }, { dataflow = true })
    T = "_" .. ids.tenant
    local messages = {}
    for i = 1, 4 do messages[i] = fixtures.profile_message(ids, { loyaltyID = "st-" .. i .. "@example.com" }) end
    messages[2].body.xdmEntity[T].loyaltyID = nil
    messages[4].body.xdmEntity[T].loyaltyLevel = "Bronze"
    local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = messages }, { auth = false })
    answer = fixtures.expect(s, 207, b, "stream")
    wait_final(4)
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  it("reports the dataset's run, batches and failed records as JSON, exit 2", function()
    local r = run.aep({ "status", "--env", emu.env_file, "--dataset", ids.profile_dataset, "--errors", "--json" })
    assert.are.equal(2, r.status, r.stderr)
    local doc = json.decode(r.stdout)
    assert.are.equal(ids.profile_dataset, doc.dataset.id)
    assert.are.equal(1, #doc.flows)
    assert.are.equal(ids.flow_id, doc.flows[1].id)
    assert.are.equal(1, #doc.runs)
    local run1 = doc.runs[1]
    assert.are.equal("success", run1.status)
    assert.are.same({ 4, 2, 2 }, { run1.input, run1.output, run1.failed })
    assert.are.equal("CONNECTOR-2001-500", run1.errors[1].code)
    assert.are.equal(2, #doc.batches)
    local by_status = {}
    for _, b in ipairs(doc.batches) do by_status[b.status] = b end
    assert.are.same({ 2, 0 }, { by_status.success.records, by_status.success.failed })
    assert.are.same({ 0, 2 }, { by_status.failed.records, by_status.failed.failed })
    assert.are.equal(by_status.failed.id, doc.dataset.lastFailedBatch)
    assert.are.equal(2, doc.failed)
    assert.are.equal(2, #doc.failed_records)
    local want = {
      [answer.responses[2].xactionId] = { code = "INGEST-1555-400", message = "required key [loyaltyID] not found" },
      [answer.responses[4].xactionId] = { code = "INGEST-1201-400", message = "Bronze is not a valid enum value" },
    }
    for _, f in ipairs(doc.failed_records) do
      assert.are.equal(by_status.failed.id, f.batch)
      assert.are.same({ want[f.xactionId] }, f.errors)
      assert.are.equal("table", type(f.record[T]))
    end
  end)

  it("prints runs, batches and errors as text for a dataflow", function()
    local r = run.aep({ "status", "--env", emu.env_file, "--flow", ids.flow_id, "--errors" },
      { env = { NO_COLOR = "1" } })
    assert.are.equal(2, r.status, r.stderr)
    assert.truthy(r.stdout:find("4 in, 2 ingested, 2 failed", 1, true), r.stdout)
    assert.truthy(r.stdout:find("  CONNECTOR-2001-500 Error in processing (parsing, validation or transformation) " ..
      "the copied data.\n", 1, true), r.stdout)
    assert.truthy(r.stdout:find("failed records (2)\n", 1, true), r.stdout)
    assert.truthy(r.stdout:find("      INGEST-1555-400 required key [loyaltyID] not found\n", 1, true), r.stdout)
    assert.truthy(r.stdout:find("      INGEST-1201-400 Bronze is not a valid enum value\n", 1, true), r.stdout)
  end)

  it("reports every dataset a run manifest names", function()
    local path = emu.data_dir .. "/manifest.json"
    local f = assert(io.open(path, "wb"))
    f:write(json.encode { format = "aep-run-manifest/1", run_name = "aep", target = {}, variables = {},
      resources = { { var = "DATASET_ID_PROFILE", kind = "dataset", id = ids.profile_dataset, created = true },
                    { var = "DATASET_ID_EVENT", kind = "dataset", id = ids.event_dataset, created = true },
                    { var = "FLOW_ID_PROFILE", kind = "flow", id = ids.flow_id, created = true } } })
    f:close()
    local r = run.aep({ "status", "--env", emu.env_file, "--manifest", path, "--json" })
    assert.are.equal(2, r.status, r.stderr)
    local doc = json.decode(r.stdout)
    assert.are.equal(path, doc.manifest)
    assert.are.equal(2, doc.failed)
    assert.are.same({ ids.profile_dataset, ids.event_dataset }, { doc.datasets[1].dataset.id, doc.datasets[2].dataset.id })
    assert.are.same({ 2, 0 }, { doc.datasets[1].failed, doc.datasets[2].failed })
    assert.are.equal(0, #doc.datasets[2].runs)
    assert.are.equal(json.null, doc.datasets[1].failed_records)
  end)

  it("--watch refreshes the terminal until Ctrl-C", function()
    local tmux = require "support.tmux"
    local session = tmux.start(run.quote(run.bin) .. " status --env " .. run.quote(emu.env_file) .. " --flow " ..
      ids.flow_id .. " --watch; echo exit=$?; sleep 30", { env = { NO_COLOR = "1" }, width = 200 })
    local ok, err = pcall(function()
      session:wait_for("4 in, 2 ingested, 2 failed")
      session:wait_for("(refreshing every 2 s; Ctrl-C to stop)")
      -- a new invalid message: a second run shows up on a later refresh
      local bad = fixtures.profile_message(ids, { loyaltyID = "st-watch@example.com" })
      bad.body.xdmEntity[T].loyaltyLevel = "Bronze"
      local s = api:post("/collection/" .. ids.inlet_id, bad, { auth = false })
      assert.are.equal(200, s)
      session:wait_for("1 in, 0 ingested, 1 failed", 20)
      session:keys("C-c")
      session:wait_for("exit=2")
    end)
    session:kill()
    assert(ok, err)
  end)

  it("answers a usage error and an unknown dataset plainly", function()
    local r = run.aep({ "status", "--env", emu.env_file })
    assert.are.equal(64, r.status)
    assert.truthy(r.stderr:find("missing --dataset ID, --flow ID or --manifest FILE", 1, true), r.stderr)
    r = run.aep({ "status", "--env", emu.env_file, "--dataset", "no such dataset" })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("dataset 'no such dataset' not found (give its id or its name)", 1, true), r.stderr)
    r = run.aep({ "status", "--env", emu.env_file, "--flow", ids.flow_id, "--since", "yesterday" })
    assert.are.equal(64, r.status)
    r = run.aep({ "status", "--env", emu.env_file, "--flow", ids.flow_id, "--watch" })
    assert.are.equal(64, r.status)
    assert.truthy(r.stderr:find("--watch refreshes a terminal", 1, true), r.stderr)
  end)
end)
