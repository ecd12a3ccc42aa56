-- The Edge Network on the emulator (lua/aep/emulator/edge.lua, datastreams.lua) over plain HTTP:
-- datastreams, /ee/v2/interact and /ee/v2/collect (Server API), /ee/v1/* (the Web SDK's), the
-- kndctr identity cookie, consent, and the documented error shapes (help/server-api/
-- error-handling.md; EXEG-0003-400 as the Edge Network answers an unknown datastream).
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"
local http = require "aep.http"

local MEMBER = "edge.member@example.com"

describe("emulator: Edge Network", function()
  local emu, api, ids, ds

  local function post(path, body, headers)
    local h = { ["Content-Type"] = "text/plain;charset=UTF-8" }
    for k, v in pairs(headers or {}) do h[k] = v end
    local resp = assert(http.request { method = "POST", url = emu.url .. path, headers = h,
                                       body = type(body) == "table" and json.encode(body) or body })
    return resp.status, resp.body ~= "" and json.decode(resp.body) or nil, resp
  end

  local function drain(dataset, want, status)
    local got
    for _ = 1, 100 do
      got = fixtures.records(api, dataset, status and ("?status=" .. status) or "")
      if got.count >= want then return got end
      os.execute("sleep 0.05")
    end
    return got
  end

  local function event(o)
    o = o or {}
    return { xdm = { eventType = "loyaltyBalanceUpdate", _id = o.id, timestamp = o.timestamp,
                     ["_" .. ids.tenant] = { loyaltyID = o.member or MEMBER, pointsEarned = o.points or 10,
                                             transactionID = "t-" .. tostring(o.id), loyaltyLevel = o.level } },
             data = { note = "ignored by Platform" } }
  end

  setup(function()
    emu, api, ids = fixtures.start()
    local s, b = api:post("/emulator/datastreams", { name = "Loyalty web", eventDataset = ids.event_dataset,
                                                     profileDataset = ids.profile_dataset }, { auth = false })
    assert.are.equal(201, s, json.encode(b))
    ds = b
  end)

  teardown(function() if emu then emu.cleanup() end end)

  it("creates and lists datastreams; refuses an unknown dataset and a non-JSON POST", function()
    assert.are.equal("prod", ds.sandbox)
    assert.are.equal("in", ds.defaultConsent)
    assert.are.equal(ids.event_dataset, ds.eventDataset)
    local s, b = api:get("/emulator/datastreams", { auth = false })
    assert.are.equal(200, s)
    assert.are.equal(1, #b.datastreams)
    assert.are.equal(ds.id, b.datastreams[1].id)
    s, b = api:post("/emulator/datastreams", { eventDataset = "nope" }, { auth = false })
    assert.are.equal(400, s)
    assert.are.equal("eventDataset 'nope' is not a dataset of sandbox prod", b.detail)
    s = api:post("/emulator/datastreams", "{}", { auth = false, content_type = "text/plain" })
    assert.are.equal(403, s)
  end)

  it("answers an unknown or missing datastream with EXEG-0003-400", function()
    local s, b, resp = post("/ee/v2/interact?dataStreamId=bogus&requestId=r-1", { event = event { id = "x" } })
    assert.are.equal(400, s)
    assert.are.equal("application/problem+json", resp.headers["content-type"])
    assert.are.same({ type = "https://ns.adobe.com/aep/errors/EXEG-0003-400", status = 400,
      title = "Invalid datastream ID",
      detail = "The referenced Config 'bogus:prod' doesn't exist. Update the reference and try again.",
      report = { requestId = "r-1", orgId = ids.org } }, b)
    s, b = post("/ee/v1/interact", { events = { event { id = "x" } } })
    assert.are.equal(400, s)
    assert.are.equal("https://ns.adobe.com/aep/errors/EXEG-0003-400", b.type)
  end)

  it("refuses requests without events or xdm with EXEG-0104-422 and report.errors", function()
    local s, b = post("/ee/v2/collect?dataStreamId=" .. ds.id .. "&requestId=r-2",
      { events = { { xdm = { eventType = "a" } }, { data = { a = 1 } } } })
    assert.are.equal(422, s)
    assert.are.same({ type = "https://ns.adobe.com/aep/errors/EXEG-0104-422", status = 422,
      title = "Unprocessable entity",
      detail = "Invalid request (report attached). Please check your input and try again.",
      report = { errors = { "Event at index 1 has no xdm object" }, requestId = "r-2", orgId = ids.org } }, b)
    s, b = post("/ee/v2/interact?dataStreamId=" .. ds.id, "not json")
    assert.are.equal(422, s)
    assert.are.same({ "The request body is not a JSON object" }, b.report.errors)
    s, b = post("/ee/v2/interact?dataStreamId=" .. ds.id, {})
    assert.are.equal(422, s)
    assert.are.same({ "The request has no events: send {\"events\": [{\"xdm\": {...}}]}" }, b.report.errors)
  end)

  it("v2/interact: an ECID minted, returned as identity:result, state:store and a cookie; the event stored", function()
    local s, b, resp = post("/ee/v2/interact?dataStreamId=" .. ds.id .. "&requestId=r-3",
      { event = event { id = "e-1", timestamp = "2024-01-01T00:00:00Z" } }, { ["Content-Type"] = "application/json" })
    assert.are.equal(200, s, json.encode(b))
    assert.are.equal("r-3", b.requestId)
    assert.are.equal(3, #b.handle)
    assert.are.equal("identity:result", b.handle[1].type)
    local ecid = b.handle[1].payload[1].id
    assert.matches("^%d+$", ecid)
    assert.are.equal(38, #ecid)
    assert.are.same({ code = "ECID" }, b.handle[1].payload[1].namespace)
    assert.are.equal("state:store", b.handle[2].type)
    local cookie = "kndctr_" .. ids.org:gsub("@", "_") .. "_identity"
    assert.are.equal(cookie, b.handle[2].payload[1].key)
    assert.are.equal(34128000, b.handle[2].payload[1].maxAge)
    assert.are.same({ SameSite = "None" }, b.handle[2].payload[1].attrs)
    assert.are.same({ type = "locationHint:result",
      payload = { { scope = "EdgeNetwork", hint = "or2", ttlSeconds = 1800 } } }, b.handle[3])
    assert.matches("^" .. cookie:gsub("%-", "%%-") .. "=", resp.headers["set-cookie"])
    local value = b.handle[2].payload[1].value
    -- the cookie brings the same ECID back, under the location hint's path too
    s, b = post("/ee/or2/v1/interact?configId=" .. ds.id, { events = { event { id = "e-2" } } },
      { Cookie = cookie .. "=" .. value })
    assert.are.equal(200, s)
    assert.are.equal(ecid, b.handle[1].payload[1].id)
    local got = drain(ids.event_dataset, 2)
    assert.are.equal(2, got.count)
    local e1
    for _, rec in ipairs(got.records) do if rec.entity._id == "e-1" then e1 = rec.entity end end
    assert.are.same({ { id = ecid, authenticatedState = "ambiguous", primary = true } }, e1.identityMap.ECID)
    assert.are.equal("2024-01-01T00:00:00Z", e1.timestamp)
    -- Profile: the ECID finds the member's events (stitched with the loyaltyID's Email)
    local st, prof = api:get("/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent" ..
      "&relatedSchema.name=_xdm.context.profile&relatedEntityId=" .. ecid .. "&relatedEntityIdNS=ECID")
    assert.are.equal(200, st, json.encode(prof))
    assert.are.equal(2, #prof.children)
  end)

  it("v2/collect answers 202 {requestId} (204 when silent); invalid XDM goes to a failed batch", function()
    local s, b = post("/ee/v2/collect?dataStreamId=" .. ds.id .. "&requestId=r-4",
      { events = { event { id = "c-1" }, event { id = "c-2", level = "Wood" } } })
    assert.are.equal(202, s)
    assert.are.same({ requestId = "r-4" }, b)
    local s2, b2 = post("/ee/v2/collect?dataStreamId=" .. ds.id .. "&silent=true", { events = { event { id = "c-3" } } })
    assert.are.equal(204, s2)
    assert.is_nil(b2)
    local failed = drain(ids.event_dataset, 1, "failed")
    assert.are.equal(1, failed.count)
    assert.are.equal("c-2", failed.records[1].entity._id)
    assert.matches("Wood", json.encode(failed.records[1].errors))
    -- the failed batch in Catalog and Data Access, as for streamed records
    local batch = fixtures.final_batch(api, failed.records[1].batchId)
    assert.are.equal("failed", batch.status)
    assert.are.equal(1, batch.failedRecordCount)
    local sl, listing = api:get("/data/foundation/export/batches/" .. failed.records[1].batchId .. "/failed")
    assert.are.equal(200, sl, json.encode(listing))
    assert.are.equal(2, #listing.data) -- _SUCCESS and the failed records' JSON Lines file
    local bid = failed.records[1].batchId
    local sf, text = api:get("/data/foundation/export/batches/" .. bid .. "/failed?path=part-00000-" ..
      bid:lower() .. "-c000.json")
    assert.are.equal(200, sf)
    assert.matches('"_id":"c%-2"', type(text) == "string" and text or json.encode(text))
    assert.are.equal(4, drain(ids.event_dataset, 4, "success").count)
  end)

  it("setConsent out drops events; in collects again; v1/collect answers 204", function()
    local s, b = post("/ee/v1/privacy/set-consent?configId=" .. ds.id,
      { consent = { { standard = "Adobe", version = "1.0", value = { general = "out" } } } })
    assert.are.equal(200, s, json.encode(b))
    local consent
    for _, item in ipairs(b.handle[2].payload) do if item.key:match("_consent$") then consent = item end end
    assert.are.equal("general=out", consent.value)
    local before = fixtures.records(api, ids.event_dataset).count
    local jar = consent.key .. "=" .. consent.value
    s = post("/ee/v1/collect?configId=" .. ds.id, { events = { event { id = "o-1" } } }, { Cookie = jar })
    assert.are.equal(204, s)
    s, b = post("/ee/v1/interact?configId=" .. ds.id, { events = { event { id = "o-2" } } }, { Cookie = jar })
    assert.are.equal(200, s)
    s, b = post("/ee/v1/privacy/set-consent?configId=" .. ds.id,
      { consent = { { standard = "Adobe", version = "2.0", value = { collect = { val = "maybe" } } } } })
    assert.are.equal(422, s)
    assert.are.same({ "Adobe 2.0 consent value.collect.val must be 'y' or 'n' at index 0" }, b.report.errors)
    s = post("/ee/v1/collect?configId=" .. ds.id, { events = { event { id = "o-3" } } },
      { Cookie = consent.key .. "=general=in" })
    assert.are.equal(204, s)
    local got = drain(ids.event_dataset, before + 1)
    assert.are.equal(before + 1, got.count)
    for _, rec in ipairs(got.records) do
      assert.is_not.equal("o-1", rec.entity._id)
      assert.is_not.equal("o-2", rec.entity._id)
    end
  end)

  it("a datastream whose defaultConsent is out drops events until the visitor opts in", function()
    local s, out = api:post("/emulator/datastreams", { eventDataset = ids.event_dataset, defaultConsent = "out" },
      { auth = false })
    assert.are.equal(201, s, json.encode(out))
    s = select(1, api:post("/emulator/datastreams", { eventDataset = ids.event_dataset, defaultConsent = "maybe" },
      { auth = false }))
    assert.are.equal(400, s)
    local before = drain(ids.event_dataset, 0).count
    s = post("/ee/v2/collect?dataStreamId=" .. out.id, { events = { event { id = "d-1" } } })
    assert.are.equal(202, s)
    local cookie = "kndctr_" .. ids.org:gsub("@", "_") .. "_consent"
    s = post("/ee/v2/collect?dataStreamId=" .. out.id, { events = { event { id = "d-2" } },
      meta = { state = { entries = { { key = cookie, value = "general=in" } } } } })
    assert.are.equal(202, s)
    local got = drain(ids.event_dataset, before + 1)
    assert.are.equal(before + 1, got.count)
    local last = got.records[#got.records].entity._id
    assert.are.equal("d-2", last)
  end)

  it("takes requests without a token, refuses a bad one, and requires one where the datastream says", function()
    local s, b = post("/ee/v2/collect?dataStreamId=" .. ds.id .. "&requestId=r-5", { events = { event { id = "a-1" } } },
      { Authorization = "Bearer nope" })
    assert.are.equal(401, s)
    assert.are.same({ type = "https://ns.adobe.com/aep/errors/EXEG-0500-401", status = 401,
      title = "Invalid authorization token",
      detail = "The provided authorization token is invalid or expired: get a new one from IMS.",
      report = { requestId = "r-5", orgId = ids.org } }, b)
    local s2, locked = api:post("/emulator/datastreams", { eventDataset = ids.event_dataset,
                                                           authenticationRequired = true }, { auth = false })
    assert.are.equal(201, s2, json.encode(locked))
    s, b = post("/ee/v2/collect?dataStreamId=" .. locked.id, { events = { event { id = "a-2" } } })
    assert.are.equal(401, s)
    assert.are.equal("The datastream requires authentication but the request has no 'Authorization: " ..
      "Bearer TOKEN' header.", b.detail)
    s, b = post("/ee/v2/collect?dataStreamId=" .. locked.id, { events = { event { id = "a-3" } } },
      { Authorization = "Bearer " .. api.token })
    assert.are.equal(202, s, json.encode(b))
  end)

  it("answers browsers with CORS and credentials, and preflights", function()
    local s, _, resp = post("/ee/v1/interact?configId=" .. ds.id, { events = { event { id = "cors-1" } } },
      { Origin = "https://shop.example" })
    assert.are.equal(200, s)
    assert.are.equal("https://shop.example", resp.headers["access-control-allow-origin"])
    assert.are.equal("true", resp.headers["access-control-allow-credentials"])
    local pre = assert(http.request { method = "OPTIONS", url = emu.url .. "/ee/v2/interact",
      headers = { Origin = "https://shop.example", ["Access-Control-Request-Method"] = "POST",
                  ["Access-Control-Request-Headers"] = "content-type" } })
    assert.are.equal(204, pre.status)
    assert.are.equal("POST, OPTIONS", pre.headers["access-control-allow-methods"])
    assert.are.equal("content-type", pre.headers["access-control-allow-headers"])
  end)
end)

describe("emulator: Edge Network events survive kill -9", function()
  local emu, api, ids

  setup(function() emu, api, ids = fixtures.start { "--validation-delay", "600" } end)
  teardown(function() if emu then emu.cleanup() end end)

  it("keeps an answered event pending across a kill -9 and validates it after the restart", function()
    local s, ds = api:post("/emulator/datastreams", { eventDataset = ids.event_dataset }, { auth = false })
    assert.are.equal(201, s, json.encode(ds))
    local resp = assert(http.request { method = "POST", url = emu.url .. "/ee/v2/collect?dataStreamId=" .. ds.id,
      headers = { ["Content-Type"] = "application/json" }, body = json.encode { events = { { xdm = {
        _id = "k-1", timestamp = "2024-01-01T00:00:00Z", eventType = "loyaltyBalanceUpdate",
        ["_" .. ids.tenant] = { loyaltyID = MEMBER, transactionID = "k-1" } } } } } })
    assert.are.equal(202, resp.status)
    assert.are.equal(0, fixtures.records(api, ids.event_dataset).count)
    emu.kill9()
    emu.restart {}
    api = fixtures.client(emu)
    local got
    for _ = 1, 200 do
      got = fixtures.records(api, ids.event_dataset)
      if got.count > 0 then break end
      os.execute("sleep 0.05")
    end
    assert.are.equal(1, got.count)
    assert.are.equal("k-1", got.records[1].entity._id)
    assert.are.equal("success", got.records[1].status)
  end)
end)
