-- The emulator's web side over plain HTTP (no browser): CORS on the DCS endpoints (preflight
-- included), the tag and assets, the console's API (overview, live feed, batches, profile), the
-- demo page's configuration, and the local-only guard. The browser itself: browser_spec.lua.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local files = require "support.files"
local http = require "aep.http"
local json = require "aep.json"

local ORIGIN = "http://127.0.0.1:9"  -- a page's origin (never contacted)
local MEMBER = "tscrowby0@chicagotribune.com"

describe("emulator web", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start()
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  local function raw(method, path, headers, body)
    return assert(http.request { method = method, url = emu.url .. path, headers = headers or {}, body = body })
  end

  local function get_json(path, headers)
    local r = raw("GET", path, headers)
    return r.status, json.decode(r.body), r
  end

  local function event(o)
    return fixtures.event_message(ids, o)
  end

  describe("CORS on DCS", function()
    for _, p in ipairs { "/collection/", "/collection/batch/" } do
      it("answers the preflight of " .. p .. ":inlet", function()
        local r = raw("OPTIONS", p .. ids.inlet_id, {
          Origin = ORIGIN, ["Access-Control-Request-Method"] = "POST",
          ["Access-Control-Request-Headers"] = "content-type" })
        assert.are.equal(204, r.status)
        assert.are.equal("", r.body)
        assert.are.equal(ORIGIN, r.headers["access-control-allow-origin"])
        assert.are.equal("POST, OPTIONS", r.headers["access-control-allow-methods"])
        assert.are.equal("content-type", r.headers["access-control-allow-headers"])
        assert.are.equal("true", r.headers["access-control-allow-credentials"])
        assert.are.equal("600", r.headers["access-control-max-age"])
        assert.are.equal("Origin", r.headers["vary"])
      end)
    end

    it("adds the headers to the 207 of a batch, only when the request has an Origin", function()
      local body = json.encode { messages = { event { id = "cors-1" } } }
      local r = raw("POST", "/collection/batch/" .. ids.inlet_id,
        { Origin = ORIGIN, ["Content-Type"] = "application/json" }, body)
      assert.are.equal(207, r.status)
      assert.are.equal(ORIGIN, r.headers["access-control-allow-origin"])
      assert.are.equal("Retry-After", r.headers["access-control-expose-headers"])
      local r2 = raw("POST", "/collection/batch/" .. ids.inlet_id, { ["Content-Type"] = "application/json" },
        json.encode { messages = { event { id = "cors-2" } } })
      assert.are.equal(207, r2.status)
      assert.is_nil(r2.headers["access-control-allow-origin"])
    end)

    it("adds them to a 400 and to an injected 503 (so a page can read status and Retry-After)", function()
      local bad = event { id = "cors-bad" }
      bad.body.xdmEntity["_" .. ids.tenant].loyaltyLevel = "Bronze"
      local r = raw("POST", "/collection/" .. ids.inlet_id .. "?syncValidation=true",
        { Origin = ORIGIN, ["Content-Type"] = "application/json" }, json.encode(bad))
      assert.are.equal(400, r.status)
      assert.are.equal(ORIGIN, r.headers["access-control-allow-origin"])
      local s = api:put("/emulator/faults", { spec = "/collection/batch:503=1,retry_after=2" }, { auth = false })
      assert.are.equal(200, s)
      local r2 = raw("POST", "/collection/batch/" .. ids.inlet_id, { Origin = ORIGIN, ["Content-Type"] = "application/json" },
        json.encode { messages = { event { id = "cors-503" } } })
      api:put("/emulator/faults", { spec = "" }, { auth = false })
      assert.are.equal(503, r2.status)
      assert.are.equal("2", r2.headers["retry-after"])
      assert.are.equal(ORIGIN, r2.headers["access-control-allow-origin"])
    end)

    it("leaves the Platform APIs without CORS headers", function()
      local r = raw("GET", "/data/foundation/catalog/dataSets", { Origin = ORIGIN })
      assert.is_nil(r.headers["access-control-allow-origin"])
    end)
  end)

  describe("assets", function()
    it("serves the tag, the same file as web/aep-tag.js", function()
      local r = raw("GET", "/emulator/web/aep-tag.js")
      assert.are.equal(200, r.status)
      assert.are.equal("text/javascript; charset=utf-8", r.headers["content-type"])
      assert.are.equal("*", r.headers["access-control-allow-origin"])
      assert.are.equal(assert(files.read("lua/aep/emulator/web/aep-tag.js")), r.body)
      assert.are.equal(assert(files.read("web/aep-tag.js")), r.body)
    end)

    it("answers 404 for files it does not have and for paths that leave the folder", function()
      assert.are.equal(404, raw("GET", "/emulator/web/nope.js").status)
      assert.are.equal(404, raw("GET", "/emulator/web/..%2Fweb.lua").status)
      assert.are.equal(404, raw("GET", "/emulator/web/.hidden").status)
    end)

    it("serves the console page", function()
      local r = raw("GET", "/emulator/ui")
      assert.are.equal(200, r.status)
      assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
      assert.truthy(r.body:find("<title>aep emulator console</title>", 1, true))
      assert.are.equal(302, raw("GET", "/emulator").status)
    end)
  end)

  describe("local-only guard", function()
    it("refuses a Host that is not loopback (DNS rebinding)", function()
      for _, path in ipairs { "/emulator/ui", "/emulator/ui/api/overview", "/emulator/demo" } do
        local s, b = get_json(path, { Host = "attacker.example:80" })
        assert.are.equal(403, s)
        assert.truthy(b.detail:find("local-only", 1, true))
      end
      assert.are.equal(200, raw("GET", "/emulator/ui", { Host = "localhost:1234" }).status)
    end)
  end)

  describe("console API", function()
    local seq_before

    setup(function()
      api:post("/emulator/reset", "", { auth = false })
      ids = fixtures.loyalty(api)
      -- two accepted events, one that fails validation (async: a failed batch), one refused on
      -- the wire (sync validation), and the member's profile record
      local bad = event { id = "e-bad", loyaltyID = MEMBER }
      bad.body.xdmEntity["_" .. ids.tenant].loyaltyLevel = "Tin"
      local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = {
        event { id = "e-1", loyaltyID = MEMBER }, event { id = "e-2", loyaltyID = MEMBER }, bad } }, { auth = false })
      fixtures.expect(s, 207, b, "batch")
      local wire = event { id = "e-wire", loyaltyID = MEMBER }
      wire.body.xdmEntity["_" .. ids.tenant].loyaltyLevel = "Bronze"
      s, b = api:post("/collection/" .. ids.inlet_id .. "?syncValidation=true", wire, { auth = false })
      fixtures.expect(s, 400, b, "sync validation")
      s, b = api:post("/collection/" .. ids.inlet_id, fixtures.profile_message(ids,
        { loyaltyID = MEMBER, first = "Timi", last = "Scrowby" }), { auth = false })
      fixtures.expect(s, 200, b, "profile")
      local _, log = api:get("/emulator/requests?since=0&limit=1", { auth = false })
      seq_before = log.total
    end)

    it("overview: org, schemas with fields and identities, datasets with counts, inlets", function()
      local s, o = get_json("/emulator/ui/api/overview")
      assert.are.equal(200, s)
      assert.are.same({ imsOrg = ids.org, tenantId = ids.tenant }, o.org)
      assert.are.equal("prod", o.sandbox)
      assert.are.equal(2, #o.schemas)
      local ev
      for _, sc in ipairs(o.schemas) do if sc.id == ids.event_schema then ev = sc end end
      assert.are.equal("https://ns.adobe.com/xdm/context/experienceevent", ev.class)
      assert.are.same({ { path = "/_" .. ids.tenant .. "/loyaltyID", namespace = "Email", primary = true } }, ev.identities)
      assert.are.equal("_" .. ids.tenant, ev.fields[1].name)
      local names = {}
      for _, f in ipairs(ev.fields[1].fields) do names[#names + 1] = f.name end
      assert.are.same({ "loyaltyID", "loyaltyLevel", "pointsEarned", "totalPoints", "transactionID" }, names)
      local counts = {}
      for _, d in ipairs(o.datasets) do counts[d.id] = d.records end
      assert.are.same({ success = 2, failed = 1 }, counts[ids.event_dataset])
      assert.are.same({ success = 1, failed = 0 }, counts[ids.profile_dataset])
      assert.are.equal(1, #o.inlets)
      assert.are.equal(emu.url .. "/collection/" .. ids.inlet_id, o.inlets[1].url)
      assert.is_false(o.inlets[1].authenticationRequired)
    end)

    it("live: records with their validation results, wire rejections, counts; then nothing new", function()
      local s, l = get_json("/emulator/ui/api/live?records=0&rejects=0&requests=0")
      assert.are.equal(200, s)
      local got = {}
      for _, r in ipairs(l.records) do
        got[#got + 1] = { r.dataset, r.status, r.entity._id or "profile", r.violations and #r.violations or 0 }
      end
      assert.are.same({
        { ids.event_dataset, "success", "e-1", 0 }, { ids.event_dataset, "success", "e-2", 0 },
        { ids.event_dataset, "failed", "e-bad", 1 }, { ids.profile_dataset, "success", "profile", 0 } }, got)
      assert.truthy(l.records[3].violations[1].message:find("Tin", 1, true))
      assert.are.equal(1, #l.rejects)
      local rj = l.rejects[1]
      assert.are.equal(400, rj.status)
      assert.are.equal(ids.event_dataset, rj.dataset)
      assert.are.equal("e-wire", rj.entity._id)
      assert.are.equal("inletId: [" .. ids.inlet_id .. "] imsOrgId: [" .. ids.org .. "] Message is invalid", rj.message)
      assert.truthy(rj.violations[1].message:find("Bronze", 1, true))
      assert.are.same({ success = 2, failed = 1 }, l.counts[ids.event_dataset])
      local paths = {}
      for _, r in ipairs(l.requests) do paths[#paths + 1] = r.method .. " " .. r.path .. " " .. r.status end
      assert.truthy(table.concat(paths, "\n"):find("POST /collection/batch/" .. ids.inlet_id .. " 207", 1, true))
      local s2, l2 = get_json(string.format("/emulator/ui/api/live?records=%d&rejects=%d&requests=%d",
        l.cursors.records, l.cursors.rejects, l.cursors.requests))
      assert.are.equal(200, s2)
      assert.are.same({ 0, 0, 0 }, { #l2.records, #l2.rejects, #l2.requests })
      assert.are.equal(l.stamp, l2.stamp)
    end)

    it("keeps its own polling out of the request log", function()
      get_json("/emulator/ui/api/live")
      get_json("/emulator/ui/api/overview")
      local _, log = api:get("/emulator/requests?since=" .. seq_before, { auth = false })
      for _, r in ipairs(log.requests) do assert.is_nil(r.path:find("^/emulator/ui")) end
    end)

    it("profile: the merged profile and its events; a 404 for an unknown identity", function()
      local s, p = get_json("/emulator/ui/api/profile?ns=Email&id=" .. fixtures.url_encode(MEMBER))
      assert.are.equal(200, s)
      assert.are.equal("Timi", p.profile.entity.person.name.firstName)
      local evs = {}
      for _, c in ipairs(p.events.children) do evs[#evs + 1] = c.entityId end
      table.sort(evs)
      assert.are.same({ "e-1", "e-2" }, evs)
      local s2, e = get_json("/emulator/ui/api/profile?ns=Email&id=nobody%40example.com")
      assert.are.equal(404, s2)
      assert.are.equal("No profile found for entityId [nobody@example.com] in namespace [Email]", e.detail)
    end)

    it("batches: import batches with their Catalog status and metrics", function()
      local s, b = api:post("/data/foundation/import/batches",
        { datasetId = ids.profile_dataset, inputFormat = { format = "json" } })
      fixtures.expect(s, 201, b, "create batch")
      local line = json.encode(fixtures.profile_entity(ids, { loyaltyID = "b1@example.com" }))
      s = api:put("/data/foundation/import/batches/" .. b.id .. "/datasets/" .. ids.profile_dataset ..
        "/files/one.json", line, { content_type = "application/octet-stream" })
      assert.are.equal(200, s)
      s = api:post("/data/foundation/import/batches/" .. b.id .. "?action=COMPLETE", "")
      assert.are.equal(200, s)
      local s2, l = get_json("/emulator/ui/api/batches")
      assert.are.equal(200, s2)
      assert.are.equal(1, #l.batches)
      local x = l.batches[1]
      assert.are.same({ b.id, "success", ids.profile_dataset, 1, 1, 0 }, { x.id, x.status, x.datasetId,
        x.metrics.inputRecordCount, x.metrics.outputRecordCount, x.metrics.failedRecordCount or 0 })
    end)

    it("forgets the wire rejections on /emulator/reset", function()
      api:post("/emulator/reset", "", { auth = false })
      local _, l = get_json("/emulator/ui/api/live?records=0&rejects=0")
      assert.are.same({ 0, 0 }, { #l.records, #l.rejects })
    end)
  end)

  describe("demo page", function()
    setup(function()
      ids = fixtures.loyalty(api)
    end)

    local function state_of(html)
      local s = html:match('<script type="application/json" id="demo%-state">(.-)</script>')
      return assert(json.decode(s))
    end

    it("fills in the tag's configuration for a dataset and an inlet", function()
      local r = raw("GET", "/emulator/demo?dataset=" .. ids.event_dataset .. "&inlet=" .. ids.inlet_id)
      assert.are.equal(200, r.status)
      assert.is_nil(r.headers["access-control-allow-origin"])
      assert.truthy(r.body:find('src="' .. emu.url .. '/emulator/web/aep-tag.js"', 1, true))
      local st = state_of(r.body)
      assert.are.same({
        inletUrl = emu.url .. "/collection/" .. ids.inlet_id, datasetId = ids.event_dataset,
        schemaId = ids.event_schema, imsOrgId = ids.org, tenant = ids.tenant, sandbox = "prod",
        sourceId = nil }, {
        inletUrl = st.config.inletUrl, datasetId = st.config.datasetId, schemaId = st.config.schemaId,
        imsOrgId = st.config.imsOrgId, tenant = st.config.tenant, sandbox = st.config.sandbox })
    end)

    it("offers a choice, with the error, when the dataset is unknown", function()
      local r = raw("GET", "/emulator/demo?dataset=nope&inlet=" .. ids.inlet_id)
      assert.are.equal(200, r.status)
      local st = state_of(r.body)
      assert.is_nil(st.config)
      assert.are.equal("dataset nope was not found in sandbox prod", st.error)
      local found = false
      for _, d in ipairs(st.candidates.datasets) do if d.id == ids.event_dataset then found = true end end
      assert.is_true(found)
    end)
  end)
end)
