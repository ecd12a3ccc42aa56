-- What the emulator acknowledged (200, 207, a completed batch) survives kill -9 and a restart.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"

describe("emulator durability", function()
  local emu

  teardown(function()
    if emu then emu.cleanup() end
  end)

  it("loses no acknowledged record, batch or identity link across kill -9", function()
    local api, ids
    emu, api, ids = fixtures.start()
    local T = "_" .. ids.tenant

    -- streaming: a 207 batch (valid and async-invalid records) and a single message
    local messages, want_success, want_failed = {}, {}, {}
    for i = 1, 40 do
      local msg = fixtures.profile_message(ids, { loyaltyID = string.format("d%02d@example.com", i), points = i })
      if i % 10 == 0 then msg.body.xdmEntity.bad = true end
      messages[i] = msg
    end
    local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = messages }, { auth = false })
    assert.are.equal(207, s)
    for i, r in ipairs(b.responses) do
      assert.is_truthy(r.xactionId)
      if i % 10 == 0 then want_failed[r.xactionId] = true else want_success[r.xactionId] = true end
    end
    local s1, single = api:post("/collection/" .. ids.inlet_id,
      fixtures.event_message(ids, { loyaltyID = "d01@example.com", id = "dur-1" }), { auth = false })
    assert.are.equal(200, s1)

    -- batch ingestion, completed
    local s2, batch = api:post("/data/foundation/import/batches",
      { datasetId = ids.event_dataset, inputFormat = { format = "json" } })
    assert.are.equal(201, s2)
    assert.are.equal(200, (api:put("/data/foundation/import/batches/" .. batch.id .. "/datasets/" .. ids.event_dataset ..
      "/files/e.json", require("aep.json").encode(fixtures.event_entity(ids, { loyaltyID = "d02@example.com", id = "dur-2" })),
      { content_type = "application/octet-stream" })))
    assert.are.equal(200, (api:post("/data/foundation/import/batches/" .. batch.id .. "?action=COMPLETE", "")))

    emu.kill9()
    emu.restart()
    api = fixtures.client(emu)

    local recs = fixtures.records(api, ids.profile_dataset, "?limit=1000")
    assert.are.equal(40, recs.count)
    local got_success, got_failed = {}, {}
    for _, r in ipairs(recs.records) do
      if r.status == "success" then got_success[r.xactionId] = true else got_failed[r.xactionId] = true end
    end
    assert.are.same(want_success, got_success)
    assert.are.same(want_failed, got_failed)

    local ev = fixtures.records(api, ids.event_dataset, "?limit=1000")
    assert.are.equal(2, ev.count)
    assert.are.equal(single.xactionId, ev.records[1].xactionId)

    local s3, st = api:get("/data/foundation/catalog/batch/" .. batch.id)
    assert.are.equal(200, s3)
    assert.are.equal("success", st[batch.id].status)
    assert.are.equal(1, st[batch.id].metrics.outputRecordCount)

    local s4, p = api:get("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=d07%40example.com&entityIdNS=email")
    assert.are.equal(200, s4)
    local _, prof = next(p)
    assert.are.equal(7, prof.entity[T].totalLoyaltyPoints)
    local s5, e = api:get("/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent" ..
      "&relatedSchema.name=_xdm.context.profile&relatedEntityId=d02%40example.com&relatedEntityIdNS=email")
    assert.are.equal(200, s5)
    assert.are.equal("dur-2", e.children[1].entityId)
  end)
end)
