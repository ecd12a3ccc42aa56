-- The emulator's Real-Time Customer Profile: identity graph, merged profiles, experience events
-- (R25/R26 of the collection), paging, batch lookup, --profile-lag.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"

local ENTITIES = "/data/core/ups/access/entities"
local enc = fixtures.url_encode

describe("emulator profile", function()
  local emu, api, ids, T

  setup(function()
    emu, api, ids = fixtures.start()
    T = "_" .. ids.tenant
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  local function stream(msg)
    local s, b = api:post("/collection/" .. ids.inlet_id .. "?syncValidation=true", msg, { auth = false })
    return fixtures.expect(s, 200, b, "stream")
  end

  local function stream_batch(messages)
    local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = messages }, { auth = false })
    fixtures.expect(s, 207, b, "stream batch")
    for _, r in ipairs(b.responses) do assert.is_truthy(r.xactionId, json.encode(r)) end
    return b
  end

  local function profile(id, ns, extra)
    return api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=" .. enc(id) ..
      "&entityIdNS=" .. (ns or "email") .. (extra or ""))
  end

  local function only(map)
    local k, v = next(map)
    assert.is_nil(next(map, k))
    return k, v
  end

  describe("profiles", function()
    it("merges two records sharing an identity; later values win; email found as entityIdNS=email (R25)", function()
      stream(fixtures.profile_message(ids, { loyaltyID = "merge@example.com", points = 100, first = "Ann" }))
      local second = fixtures.profile_entity(ids, { loyaltyID = "merge@example.com", points = 200, level = "Gold" })
      second.person = nil
      second.identityMap = { ECID = { { id = "11111111111111111111111111111111111111" } } }
      stream(fixtures.envelope(ids, ids.profile_schema, ids.profile_dataset, second))

      local s, b = profile("merge@example.com")
      assert.are.equal(200, s)
      local key, p = only(b)
      assert.are.equal(key, p.entityId)
      assert.are.same({ ids.profile_dataset }, p.sources)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", p.lastModifiedAt)
      assert.are.equal(200, p.entity[T].totalLoyaltyPoints)
      assert.are.equal("Gold", p.entity[T].loyaltyLevel)
      assert.are.equal("Ann", p.entity.person.name.firstName)
      assert.are.same({ ECID = { { id = "11111111111111111111111111111111111111" } } }, p.entity.identityMap)
      assert.are.same({
        { id = "merge@example.com", namespace = { code = "email" }, primary = true },
        { id = "11111111111111111111111111111111111111", namespace = { code = "ecid" } },
      }, p.entity.identities)

      -- the same profile by its other identity, by the namespace's own spelling, and by its id
      local s2, b2 = profile("11111111111111111111111111111111111111", "ECID")
      assert.are.equal(200, s2)
      assert.are.same(b, b2)
      local s3, b3 = profile("merge@example.com", "Email")
      assert.are.equal(200, s3)
      assert.are.same(b, b3)
      local s4, b4 = api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=" .. key)
      assert.are.equal(200, s4)
      assert.are.same(b, b4)
    end)

    it("joins two graphs when a record links their identities", function()
      stream(fixtures.profile_message(ids, { loyaltyID = "left@example.com", first = "Left" }))
      stream(fixtures.profile_message(ids, { loyaltyID = "right@example.com", first = "Right" }))
      local _, l1 = profile("left@example.com")
      local _, r1 = profile("right@example.com")
      assert.are_not.equal((next(l1)), (next(r1)))
      local link = fixtures.profile_entity(ids, { loyaltyID = "right@example.com" })
      link.person = nil
      link.identityMap = { Email = { { id = "left@example.com" } } }
      stream(fixtures.envelope(ids, ids.profile_schema, ids.profile_dataset, link))
      local _, l2 = profile("left@example.com")
      local _, r2 = profile("right@example.com")
      assert.are.same(l2, r2)
      local key, p = only(l2)
      assert.are.equal((next(l1)), key) -- the id of the older graph stays
      assert.are.equal("Right", p.entity.person.name.firstName)
      assert.are.equal(2, #p.entity.identities)
    end)

    it("returns only the requested fields", function()
      stream(fixtures.profile_message(ids, { loyaltyID = "fields@example.com", points = 7 }))
      local s, b = profile("fields@example.com", "email", "&fields=identities," .. T .. ".totalLoyaltyPoints,person.name")
      assert.are.equal(200, s)
      local _, p = only(b)
      local keys = {}
      for k in pairs(p.entity) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.are.same({ T, "identities", "person" }, keys)
      assert.are.same({ totalLoyaltyPoints = 7 }, p.entity[T])
      assert.are.same({ "name" }, (function() local t = {} for k in pairs(p.entity.person) do t[#t + 1] = k end return t end)())
    end)

    it("answers 404 for an unknown identity", function()
      local s, b = profile("nobody@example.com")
      assert.are.equal(404, s)
      assert.are.same({ type = "http://ns.adobe.com/aep/errors/UPS-1001-404", title = "Not Found", status = 404,
                        detail = "No profile found for entityId [nobody@example.com] in namespace [email]" }, b)
    end)

    it("answers 400 without schema.name or entityIdNS", function()
      local s, b = api:get(ENTITIES .. "?entityId=a&entityIdNS=email")
      assert.are.equal(400, s)
      assert.are.equal("schema.name is required", b.detail)
      s, b = api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=a@b.c")
      assert.are.equal(400, s)
      assert.are.equal("entityIdNS is required unless entityId is an XID", b.detail)
    end)

    it("answers 422 when the graph links more than 50 identities", function()
      local e = fixtures.profile_entity(ids, { loyaltyID = "many@example.com" })
      local list = {}
      for i = 1, 50 do list[i] = { id = string.format("crm-%03d", i) } end
      e.identityMap = { CRMID = list }
      stream(fixtures.envelope(ids, ids.profile_schema, ids.profile_dataset, e))
      local s, b = profile("many@example.com")
      assert.are.equal(422, s)
      assert.are.equal(422, b.status)
      assert.are.equal("Too many related identities", b.detail)
    end)

    it("keeps records of datasets not enabled for Profile out of it", function()
      local ds = fixtures.dataset(api, "no profile " .. os.time(), ids.profile_schema, false)
      stream(fixtures.envelope(ids, ids.profile_schema, ds, fixtures.profile_entity(ids, { loyaltyID = "lake@example.com" })))
      assert.are.equal(1, fixtures.records(api, ds).count)
      assert.are.equal(404, (profile("lake@example.com")))
    end)

    it("looks up several identities with POST, unknown ones as empty entities", function()
      stream(fixtures.profile_message(ids, { loyaltyID = "post1@example.com" }))
      local s, b = api:post(ENTITIES, {
        schema = { name = "_xdm.context.profile" },
        fields = { T .. ".loyaltyID" },
        identities = { { entityId = "post1@example.com", entityIdNS = { code = "Email" } },
                       { entityId = "post2@example.com", entityIdNS = { code = "email" } } },
      })
      assert.are.equal(200, s)
      local found, empty
      for k, v in pairs(b) do
        assert.are.equal(k, v.entityId)
        if v.lastModifiedAt == "1970-01-01T00:00:00Z" then empty = v else found = v end
      end
      assert.are.same({ [T] = { loyaltyID = "post1@example.com" } }, found.entity)
      assert.are.same({ sources = { "" }, entity = {}, lastModifiedAt = "1970-01-01T00:00:00Z",
                        entityId = empty.entityId }, empty)
    end)
  end)

  describe("experience events", function()
    local who = "events@example.com"
    local times = { "2020-03-03T10:00:00Z", "2020-03-03T08:00:00Z", "2020-03-03T12:00:00Z",
                    "2020-03-03T09:00:00Z", "2020-03-03T11:00:00Z" }
    local ms = { 1583229600000, 1583222400000, 1583236800000, 1583226000000, 1583233200000 }

    setup(function()
      stream(fixtures.profile_message(ids, { loyaltyID = who }))
      local messages = {}
      for i, t in ipairs(times) do
        messages[i] = fixtures.event_message(ids, { loyaltyID = who, id = "ev-" .. i, timestamp = t, earned = i * 10 })
      end
      stream_batch(messages)
    end)

    local function events(query)
      return api:get(ENTITIES .. "?schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile" ..
        "&relatedEntityId=" .. enc(who) .. "&relatedEntityIdNS=email" .. (query or ""))
    end

    it("lists a profile's events in timestamp order", function()
      local s, b = events()
      assert.are.equal(200, s)
      local _, p = only(select(2, profile(who)))
      assert.are.same({ orderby = "timestamp", start = "ev-2", count = 5, next = "" }, b._page)
      assert.are.same({ next = { href = "" } }, b._links)
      local order = {}
      for i, c in ipairs(b.children) do
        order[i] = c.entityId
        assert.are.equal(p.entityId, c.relatedEntityId)
        assert.are.equal(c.entityId, c.entity._id)
      end
      assert.are.same({ "ev-2", "ev-4", "ev-1", "ev-5", "ev-3" }, order)
      assert.are.equal(ms[2], b.children[1].timestamp)
    end)

    it("pages with limit; _links.next works when followed as /data/core/ups/access + href", function()
      local s, b = events("&limit=2&orderby=-timestamp")
      assert.are.equal(200, s)
      local seen = {}
      local pages = 0
      while true do
        pages = pages + 1
        for _, c in ipairs(b.children) do seen[#seen + 1] = c.entityId end
        if b._links.next.href == "" then break end
        assert.matches("^/entities%?start=", b._links.next.href)
        s, b = api:get("/data/core/ups/access" .. b._links.next.href)
        assert.are.equal(200, s)
      end
      assert.are.equal(3, pages)
      assert.are.same({ "ev-3", "ev-5", "ev-1", "ev-4", "ev-2" }, seen)
      assert.are.same({ orderby = "-timestamp", start = "ev-2", count = 1, next = "" }, b._page)
    end)

    it("filters by startTime (inclusive) and endTime (exclusive), in ms", function()
      local s, b = events("&startTime=" .. ms[4] .. "&endTime=" .. ms[5])
      assert.are.equal(200, s)
      local got = {}
      for i, c in ipairs(b.children) do got[i] = c.entityId end
      assert.are.same({ "ev-4", "ev-1" }, got)
    end)

    it("answers the collection's form with entityId/entityIdNS (R26)", function()
      local s, b = api:get(ENTITIES .. "?schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile" ..
        "&entityId=" .. enc(who) .. "&entityIdNS=email&fields=" .. T .. ".pointsEarned")
      assert.are.equal(200, s)
      assert.are.equal(5, b._page.count)
      assert.are.same({ [T] = { pointsEarned = 20 } }, b.children[1].entity)
    end)

    it("answers 404 for events of an unknown identity", function()
      local s = api:get(ENTITIES .. "?schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile" ..
        "&relatedEntityId=ghost%40example.com&relatedEntityIdNS=email")
      assert.are.equal(404, s)
    end)

    it("keeps the latest of events re-ingested with the same _id", function()
      stream(fixtures.event_message(ids, { loyaltyID = who, id = "ev-1", timestamp = times[1], earned = 999 }))
      local _, b = events()
      assert.are.equal(5, b._page.count)
      for _, c in ipairs(b.children) do
        if c.entityId == "ev-1" then assert.are.equal(999, c.entity[T].pointsEarned) end
      end
    end)

    it("drops events over 10 KB from Profile, not from the dataset", function()
      local big = "big-event@example.com"
      stream(fixtures.profile_message(ids, { loyaltyID = big }))
      local r = stream(fixtures.event_message(ids, { loyaltyID = big, id = "big-1", transaction = string.rep("t", 10 * 1024) }))
      local recs = fixtures.records(api, ids.event_dataset, "?limit=1000")
      local stored
      for _, x in ipairs(recs.records) do if x.xactionId == r.xactionId then stored = x end end
      assert.are.equal("success", stored.status)
      local s, b = api:get(ENTITIES .. "?schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile" ..
        "&relatedEntityId=" .. enc(big) .. "&relatedEntityIdNS=email")
      assert.are.equal(200, s)
      assert.are.equal(0, b._page.count)
      assert.are.same({}, b.children)
    end)

    it("lists events of several profiles with POST", function()
      local s, b = api:post(ENTITIES, {
        schema = { name = "_xdm.context.experienceevent" }, relatedSchema = { name = "_xdm.context.profile" },
        identities = { { entityId = who, entityIdNS = { code = "email" } } },
        limit = 2,
      })
      assert.are.equal(200, s)
      local key, page = only(b)
      assert.are.equal(2, page._page.count)
      assert.are.equal("/entities", page._links.next.href)
      local payload = page._links.next.payload
      assert.are.same({ { relatedEntityId = key, start = page._page.next } }, payload.identities)
      s, b = api:post(ENTITIES, payload)
      assert.are.equal(200, s)
      local _, page2 = only(b)
      assert.are.equal(page._page.next, page2.children[1].entityId)
    end)
  end)
end)

describe("emulator profile lag", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start { "--profile-lag", "3600" }
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  it("hides fresh records from Profile but not from the dataset's records", function()
    local s = api:post("/collection/" .. ids.inlet_id, fixtures.profile_message(ids, { loyaltyID = "lag@example.com" }),
      { auth = false })
    assert.are.equal(200, s)
    assert.are.equal(1, fixtures.records(api, ids.profile_dataset).count)
    s = api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=lag%40example.com&entityIdNS=email")
    assert.are.equal(404, s)
  end)
end)
