-- The emulator under a streaming backlog: messages answered 207 are committed before the answer
-- and validated afterwards in bounded idle slices (async_validation.lua). A kill -9 right after the
-- last answer loses none of them, and /emulator/health keeps answering while thousands wait.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local http = require "aep.http"
local host = require "aep.host"
local json = require "aep.json"

local BATCHES, PER_BATCH, INVALID_EVERY = 12, 500, 50

-- BATCHES bodies of PER_BATCH profile messages; every INVALID_EVERY-th entity fails validation
-- (an extraneous field) after the answer. -> list of JSON bodies
local function bodies(ids, tag)
  local out = {}
  for b = 1, BATCHES do
    local messages = {}
    for i = 1, PER_BATCH do
      local n = (b - 1) * PER_BATCH + i
      local msg = fixtures.profile_message(ids, { loyaltyID = string.format("%s%05d@example.com", tag, n), points = n })
      if n % INVALID_EVERY == 0 then msg.body.xdmEntity.notInTheSchema = true end
      messages[i] = msg
    end
    out[b] = json.encode { messages = messages }
  end
  return out
end

-- Post every body, 4 at a time, with a GET /emulator/health submitted after each body; -> the
-- answered xactionIds (id -> "success" | "failed", what validation must make of it) and the
-- health answers' statuses
local function post_with_health(emu, ids, list)
  local pool = http.pool { max_in_flight = 4, timeout = 120 }
  local url = emu.url .. "/collection/batch/" .. ids.inlet_id
  for k, body in ipairs(list) do
    pool:submit({ method = "POST", url = url, headers = { ["Content-Type"] = "application/json" }, body = body },
      { kind = "batch", k = k })
    pool:submit({ method = "GET", url = emu.url .. "/emulator/health" }, { kind = "health" })
  end
  local want, health = {}, {}
  for _ = 1, 1000 do -- bounded: each wait is at most 5 s
    if pool:pending() == 0 then break end
    for _, c in ipairs(pool:wait(5)) do
      local r = assert(c.response, c.error)
      if c.context.kind == "health" then
        health[#health + 1] = r.status == 200 and json.decode(r.body).status or r.status
      else
        assert.are.equal(207, r.status)
        local doc = json.decode(r.body)
        assert.are.equal(PER_BATCH, #doc.responses)
        for i, x in ipairs(doc.responses) do
          assert.is_string(x.xactionId)
          local n = (c.context.k - 1) * PER_BATCH + i
          want[x.xactionId] = n % INVALID_EVERY == 0 and "failed" or "success"
        end
      end
    end
  end
  assert.are.equal(0, pool:pending())
  pool:close()
  return want, health
end

-- Every record of the dataset (pages of 1,000), once it holds `total`; -> xactionId -> status
local function all_records(api, dataset_id, total)
  for _ = 1, 600 do -- at most 600 polls, 0.1 s apart
    if fixtures.records(api, dataset_id, "?limit=1").count >= total then break end
    host.sleep(0.1)
  end
  local got = {}
  for offset = 0, total + 1000, 1000 do
    local page = fixtures.records(api, dataset_id, "?limit=1000&offset=" .. offset)
    for _, r in ipairs(page.records) do got[r.xactionId] = r.status end
    if #page.records < 1000 then break end
  end
  return got
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("emulator ingest backlog", function()
  local emu

  after_each(function()
    if emu then emu.cleanup() end
    emu = nil
  end)

  it("keeps every answered message across a kill -9 right after the last answer, then validates it", function()
    local api, ids
    emu, api, ids = fixtures.start()
    local want = post_with_health(emu, ids, bodies(ids, "k"))
    assert.are.equal(BATCHES * PER_BATCH, count(want))
    emu.kill9()
    emu.restart()
    api = fixtures.client(emu)
    local got = all_records(api, ids.profile_dataset, BATCHES * PER_BATCH)
    assert.are.equal(BATCHES * PER_BATCH, count(got))
    assert.are.same(want, got)
    local failed = fixtures.records(api, ids.profile_dataset, "?limit=1&status=failed")
    assert.are.equal(BATCHES * PER_BATCH // INVALID_EVERY, failed.count)
  end)

  it("answers /emulator/health while thousands of answered messages wait for validation", function()
    local api, ids
    emu, api, ids = fixtures.start()
    local want, health = post_with_health(emu, ids, bodies(ids, "h"))
    -- asked right after the last answer too, when the backlog is largest
    local s, b = api:get("/emulator/health", { auth = false })
    assert.are.equal(200, s)
    health[#health + 1] = b.status
    assert.are.equal(BATCHES + 1, #health)
    for _, st in ipairs(health) do assert.are.equal("ok", st) end
    local got = all_records(api, ids.profile_dataset, BATCHES * PER_BATCH)
    assert.are.same(want, got)
  end)
end)
