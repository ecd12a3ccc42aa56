-- The REPL's client answers what happened after AEP's answer: the dataflow's runs, the dataset's
-- batches, a batch's failed records with AEP's codes and messages, a person's failed records;
-- help() shows each method's signature. Against the emulator, after a stream with invalid records.
local fixtures = require "tests.lua.support.fixtures"
local config = require "aep.config"
local platform = require "aep.platform"
local session = require "aep.repl.session"
local repl_client = require "aep.repl.client"
local host = require "aep.host"

describe("the REPL's client after the answer", function()
  local emu, api, ids, c, T

  setup(function()
    emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--batch-window", "0.2" }, { dataflow = true })
    T = "_" .. ids.tenant
    local messages = {}
    for i = 1, 3 do messages[i] = fixtures.profile_message(ids, { loyaltyID = "rc-" .. i .. "@example.com" }) end
    messages[3].body.xdmEntity[T].loyaltyLevel = "Bronze"
    local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = messages }, { auth = false })
    fixtures.expect(s, 207, b, "stream")
    local cfg = config.load({ env_file = emu.env_file, flags = {}, getenv = function() return nil end })
    c = repl_client.attach(platform.new(cfg))
    -- the batches once final (bounded: 400 polls, 20 s)
    local deadline = host.now() + 20
    for _ = 1, 400 do
      local bs = c:batches{ dataset = ids.profile_dataset }
      local final = #bs == 2
      for _, x in ipairs(bs) do if x.status == "processing" then final = false end end
      if final then return end
      assert(host.now() < deadline, "batches not final")
      host.sleep(0.05)
    end
    error("batches not final")
  end)

  teardown(function() if emu then emu.cleanup() end end)

  it("lists runs, batches and failed records with AEP's errors", function()
    local bs = c:batches{ dataset = ids.profile_dataset }
    local by = {}
    for _, x in ipairs(bs) do by[x.status] = x end
    assert.are.same({ 2, 0 }, { by.success.recordCount, by.success.failedRecordCount })
    assert.are.same({ 0, 1 }, { by.failed.recordCount, by.failed.failedRecordCount })
    local runs = c:runs(ids.flow_id)
    assert.are.equal(1, #runs)
    assert.are.same({ 3, 2, 1 }, { runs[1].metrics.recordSummary.inputRecordCount,
      runs[1].metrics.recordSummary.outputRecordCount, runs[1].metrics.recordSummary.failedRecordCount })
    assert.are.equal(runs[1].id, c:run(runs[1].id).id)
    local failed = c:failed_records(by.failed.id)
    assert.are.equal(1, #failed)
    assert.are.same({ { code = "INGEST-1201-400", message = "Bronze is not a valid enum value" } }, failed[1].errors)
    local mine = c:failed_for(ids.profile_dataset, function(r) return r[T].loyaltyID == "rc-3@example.com" end)
    assert.are.equal(1, #mine)
    assert.are.equal("INGEST-1201-400 Bronze is not a valid enum value", mine[1].reason)
    assert.are.equal(0, #c:failed_for(ids.profile_dataset, function(r) return r[T].loyaltyID == "rc-1@example.com" end))
  end)

  it("help() shows each method's signature", function()
    local want = {
      runs = "client:runs(flow_id [, {since_ms = epoch ms}]) -> the dataflow's runs, newest first, each with",
      batches = "client:batches{dataset = ID, status = \"failed\", created_after = ms, limit = 100} -> batches",
      failed_records = "client:failed_records(batch_id [, {max = 1000}]) -> the batch's failed records as AEP wrote",
    }
    for name, sig in pairs(want) do
      assert.are.equal(sig, (session.describe(c[name], "client." .. name)))
    end
  end)
end)
