-- Identity links are written in bulk (ingest.lua keeps them in a TEMP table until a lookup or
-- LINK_BATCH of them): a kill -9 loses the waiting ones, and start-up links every record after the
-- watermark again. These cases move the watermark backwards (reset, a deleted dataset), where
-- record seqs are given out again.
package.path = "tests/lua/?.lua;" .. package.path
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"

local ENTITIES = "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=email&entityId="

describe("emulator identity links", function()
  local emu

  after_each(function()
    if emu then emu.cleanup() end
    emu = nil
  end)

  local function stream(api, ids, emails)
    local messages = {}
    for i, email in ipairs(emails) do
      messages[i] = fixtures.profile_message(ids, { loyaltyID = email, points = i })
    end
    local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = messages }, { auth = false })
    assert.are.equal(207, s)
    for _, r in ipairs(b.responses) do assert.is_truthy(r.xactionId) end
  end

  local function profile_status(api, email)
    local s = api:get(ENTITIES .. fixtures.url_encode(email))
    return s
  end

  it("links records written after a reset, across kill -9", function()
    emu = emulator.start()
    local api = fixtures.client(emu)
    local ids = fixtures.loyalty(api)
    stream(api, ids, { "r1@example.com", "r2@example.com", "r3@example.com" })
    assert.are.equal(200, profile_status(api, "r2@example.com")) -- links flushed: watermark at 3
    assert.are.equal(200, (api:post("/emulator/reset", "", { auth = false })))
    ids = fixtures.loyalty(api)
    stream(api, ids, { "n1@example.com" }) -- seq 1 again
    emu.kill9()
    emu.restart()
    api = fixtures.client(emu)
    assert.are.equal(200, profile_status(api, "n1@example.com"))
    assert.are.equal(404, profile_status(api, "r2@example.com"))
  end)

  it("links records written after a deleted dataset freed the last seqs, across kill -9", function()
    emu = emulator.start()
    local api = fixtures.client(emu)
    local ids = fixtures.loyalty(api)
    stream(api, ids, { "p1@example.com", "p2@example.com" })
    for i = 1, 2 do
      local s = api:post("/collection/" .. ids.inlet_id,
        fixtures.event_message(ids, { loyaltyID = "p1@example.com", id = "ev-" .. i }), { auth = false })
      assert.are.equal(200, s)
    end
    assert.are.equal(200, profile_status(api, "p1@example.com")) -- watermark at 4
    local s = api:request("DELETE", "/data/foundation/catalog/dataSets/" .. ids.event_dataset)
    assert.are.equal(200, s)
    stream(api, ids, { "p3@example.com" }) -- seq 3 again
    emu.kill9()
    emu.restart()
    api = fixtures.client(emu)
    assert.are.equal(200, profile_status(api, "p3@example.com"))
    assert.are.equal(200, profile_status(api, "p1@example.com"))
  end)

  it("answers lookups at once for records still waiting to be linked", function()
    emu = emulator.start()
    local api = fixtures.client(emu)
    local ids = fixtures.loyalty(api)
    local emails = {}
    for i = 1, 300 do emails[i] = string.format("w%03d@example.com", i) end
    stream(api, ids, emails)
    assert.are.equal(200, profile_status(api, "w300@example.com"))
    stream(api, ids, { "w301@example.com" })
    assert.are.equal(200, profile_status(api, "w301@example.com"))
    emu.stop()
    emu.restart()
    api = fixtures.client(emu)
    assert.are.equal(200, profile_status(api, "w001@example.com"))
    assert.are.equal(200, profile_status(api, "w301@example.com"))
  end)
end)
