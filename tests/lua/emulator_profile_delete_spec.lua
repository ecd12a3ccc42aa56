-- The emulator's Profile deletes and merge policies: DELETE /ups/access/entities (202, the
-- profile and its identities gone from lookups, the data lake untouched), system delete jobs
-- (/ups/system/jobs: create, list, get, delete; NEW -> COMPLETED through the idle loop; a
-- dataset's Profile data removed), merge policies (list, get, bulk-get; lookups honour
-- mergePolicyId), all persisted across a restart.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"

local ENTITIES = "/data/core/ups/access/entities"
local JOBS = "/data/core/ups/system/jobs"
local POLICIES = "/data/core/ups/config/mergePolicies"
local enc = fixtures.url_encode

describe("emulator profile deletes", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start()
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  local function stream(entity_opts)
    local s, b = api:post("/collection/" .. ids.inlet_id .. "?syncValidation=true",
      fixtures.profile_message(ids, entity_opts), { auth = false })
    return fixtures.expect(s, 200, b, "stream")
  end

  local function profile(id, extra)
    return api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=" .. enc(id) .. "&entityIdNS=email" .. (extra or ""))
  end

  -- poll a job until it leaves NEW/PROCESSING: bounded in count (the idle loop runs between requests)
  local function settle(job_id)
    local s, b
    for _ = 1, 200 do
      s, b = api:get(JOBS .. "/" .. job_id)
      assert.are.equal(200, s, json.encode(b))
      if b.status ~= "NEW" and b.status ~= "PROCESSING" then return b end
    end
    error("job " .. job_id .. " still " .. tostring(b and b.status))
  end

  it("deletes an entity with its identities: 202 without a body, then 404 by any of its identities", function()
    local entity = fixtures.profile_entity(ids, { loyaltyID = "gone@example.com" })
    entity.identityMap = { ECID = { { id = "22222222222222222222222222222222222222" } } }
    local s0, b0 = api:post("/collection/" .. ids.inlet_id .. "?syncValidation=true",
      fixtures.envelope(ids, ids.profile_schema, ids.profile_dataset, entity), { auth = false })
    fixtures.expect(s0, 200, b0, "stream")
    stream({ loyaltyID = "kept@example.com" })
    assert.are.equal(200, (profile("gone@example.com")))

    local s, b, resp = api:request("DELETE", ENTITIES .. "?schema.name=_xdm.context.profile&entityId=" ..
      enc("gone@example.com") .. "&entityIdNS=email")
    assert.are.equal(202, s)
    assert.are.equal("", resp.body)
    local s2, b2 = profile("gone@example.com")
    assert.are.equal(404, s2)
    assert.are.equal("http://ns.adobe.com/aep/errors/UPS-1001-404", b2.type)
    assert.are.equal(404, (api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=22222222222222222222222222222222222222&entityIdNS=ECID")))
    -- the other profile stays, and the data lake keeps every record
    assert.are.equal(200, (profile("kept@example.com")))
    local held = fixtures.records(api, ids.profile_dataset)
    local found = 0
    for _, r in ipairs(held.records) do
      if r.entity["_" .. ids.tenant].loyaltyID == "gone@example.com" then found = found + 1 end
    end
    assert.are.equal(1, found)
    -- a second delete finds nothing
    local s3, b3 = api:request("DELETE", ENTITIES .. "?schema.name=_xdm.context.profile&entityId=" ..
      enc("gone@example.com") .. "&entityIdNS=email")
    assert.are.equal(404, s3)
    assert.are.equal("No profile found for entityId [gone@example.com] in namespace [email]", b3.detail)
    -- and the profile comes back when a new record carries the identity
    stream({ loyaltyID = "gone@example.com", points = 7 })
    local s4, b4 = profile("gone@example.com")
    assert.are.equal(200, s4)
    local _, p = next(b4)
    assert.are.equal(7, p.entity["_" .. ids.tenant].totalLoyaltyPoints)
  end)

  it("refuses an entity delete without the profile schema or the entity, as application/json", function()
    local s, b, resp = api:request("DELETE", ENTITIES .. "?entityId=x&entityIdNS=email")
    assert.are.equal(400, s)
    assert.are.equal("application/json", resp.headers["content-type"])
    assert.matches("schema.name is required", b.detail)
    s, b = api:request("DELETE", ENTITIES .. "?schema.name=_xdm.context.profile")
    assert.are.equal(400, s)
    assert.are.equal("entityId is required", b.detail)
  end)

  it("runs a system delete job on a dataset: NEW, then COMPLETED with its metrics; the dataset's profiles are gone", function()
    stream({ loyaltyID = "job1@example.com" })
    stream({ loyaltyID = "job2@example.com" })
    local s, job = api:post(JOBS, { dataSetId = ids.profile_dataset })
    assert.are.equal(200, s, json.encode(job))
    assert.are.equal("NEW", job.status)
    assert.are.equal("DELETE", job.jobType)
    assert.are.equal(ids.profile_dataset, job.dataSetId)
    assert.are.equal(ids.org, job.imsOrgId)
    assert.is_number(job.createEpoch)
    assert.is_nil(job._processed)

    local done = settle(job.id)
    assert.are.equal("COMPLETED", done.status)
    local m = json.decode(done.metrics)
    assert.is_true(m.recordsProcessed >= 2, done.metrics)
    assert.are.equal(404, (profile("job1@example.com")))
    assert.are.equal(404, (profile("job2@example.com")))
    assert.is_true(#fixtures.records(api, ids.profile_dataset).records >= 2)

    -- listed, in creation order, with the documented page; deleted: 404 afterwards
    local s2, list = api:get(JOBS)
    assert.are.equal(200, s2)
    assert.are.equal(#list.children, list._page.count)
    assert.are.equal(job.id, list.children[#list.children].id)
    local s3, _, resp3 = api:request("DELETE", JOBS .. "/" .. job.id)
    assert.are.equal(200, s3)
    assert.are.equal("", resp3.body)
    local s4, b4 = api:get(JOBS .. "/" .. job.id)
    assert.are.equal(404, s4)
    assert.are.equal("Delete request " .. job.id .. " not found", b4.detail)
    assert.are.equal(404, (api:request("DELETE", JOBS .. "/" .. job.id)))
  end)

  it("refuses a job without a known dataset or batch (400)", function()
    local s, b = api:post(JOBS, {})
    assert.are.equal(400, s)
    assert.are.equal('The body must be {"dataSetId": "..."} or {"batchId": "..."}', b.message)
    s, b = api:post(JOBS, { dataSetId = "0123456789abcdef01234567" })
    assert.are.equal(400, s)
    assert.are.equal("Dataset 0123456789abcdef01234567 was not found in sandbox prod", b.message)
  end)

  it("ends a batch job on a record dataset in ERROR (only ExperienceEvent batches can be deleted)", function()
    stream({ loyaltyID = "batchjob@example.com" })
    local batch_id
    for _, r in ipairs(fixtures.records(api, ids.profile_dataset).records) do
      if r.entity["_" .. ids.tenant].loyaltyID == "batchjob@example.com" then batch_id = r.batchId end
    end
    assert.is_truthy(batch_id)
    local s, job = api:post(JOBS, { batchId = batch_id })
    assert.are.equal(200, s, json.encode(job))
    assert.are.equal(batch_id, job.batchId)
    assert.are.equal("ERROR", settle(job.id).status)
    assert.are.equal(200, (profile("batchjob@example.com"))) -- nothing was deleted
  end)

  it("deletes an ExperienceEvent batch from Profile with a batch job; the profile keeps its other events", function()
    stream({ loyaltyID = "events@example.com" })
    local function send_event(id)
      local s, b = api:post("/collection/" .. ids.inlet_id .. "?syncValidation=true",
        fixtures.event_message(ids, { loyaltyID = "events@example.com", id = id }), { auth = false })
      fixtures.expect(s, 200, b, "event")
    end
    send_event("ev-keep")
    -- streamed messages share a batch per --batch-window: ev-drop goes out once ev-keep's is final
    for _, r in ipairs(fixtures.records(api, ids.event_dataset).records) do
      if r.entity._id == "ev-keep" then fixtures.final_batch(api, r.batchId) end
    end
    send_event("ev-drop")
    local batch_id
    for _, r in ipairs(fixtures.records(api, ids.event_dataset).records) do
      if r.entity._id == "ev-drop" then batch_id = r.batchId end
    end
    assert.is_truthy(batch_id)
    local s, job = api:post(JOBS, { batchId = batch_id, datasetId = ids.event_dataset })
    assert.are.equal(200, s, json.encode(job))
    local done = settle(job.id)
    assert.are.equal("COMPLETED", done.status)
    assert.are.equal(1, json.decode(done.metrics).recordsProcessed)
    local s2, b2 = api:get(ENTITIES .. "?schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile" ..
      "&relatedEntityId=" .. enc("events@example.com") .. "&relatedEntityIdNS=email")
    assert.are.equal(200, s2)
    assert.are.equal(1, #b2.children)
    assert.are.equal("ev-keep", b2.children[1].entityId)
    -- once the first job is done, another for the same batch is accepted (422 only while one is pending)
    local s3 = api:post(JOBS, { batchId = batch_id })
    assert.are.equal(200, s3)
  end)

  it("puts merge policies and system jobs in the profile fault group, the Sandbox API in its own", function()
    emu.faults("profile:500=1;sandboxes:503=1", 1)
    assert.are.equal(500, (api:get(JOBS)))
    assert.are.equal(500, (api:get(POLICIES)))
    assert.are.equal(503, (api:get("/data/foundation/sandbox-management/sandboxes")))
    emu.faults("", 1)
    assert.are.equal(200, (api:get(JOBS)))
  end)

  it("has one default merge policy per sandbox; lookups refuse an unknown mergePolicyId with its 404", function()
    local s, list = api:get(POLICIES)
    assert.are.equal(200, s)
    assert.are.equal(1, list._page.count)
    local p = list.children[1]
    assert.is_true(p.default)
    assert.are.same({ name = "_xdm.context.profile" }, p.schema)
    assert.are.same({ type = "pdg" }, p.identityGraph)
    assert.are.same({ type = "timestampOrdered" }, p.attributeMerge)
    local s2, one = api:get(POLICIES .. "/" .. p.id)
    assert.are.equal(200, s2)
    assert.are.same(p, one)
    local s3, none = api:get(POLICIES .. "?default=false")
    assert.are.equal(200, s3)
    assert.are.equal(0, #none.children)
    local s4, bulk = api:post(POLICIES .. "/bulk-get", { ids = { { id = p.id }, { id = "nope" } } })
    assert.are.equal(207, s4)
    assert.are.same(p, bulk.results[p.id])
    assert.are.equal(404, bulk.results.nope.status)

    stream({ loyaltyID = "policy@example.com" })
    assert.are.equal(200, (profile("policy@example.com", "&mergePolicyId=" .. p.id)))
    local s5, b5, r5 = profile("policy@example.com", "&mergePolicyId=0bf16e61-90e9-4204-b8fa-ad250360957b")
    assert.are.equal(404, s5)
    assert.are.equal("application/json", r5.headers["content-type"])
    assert.are.equal("Merge policy 0bf16e61-90e9-4204-b8fa-ad250360957b not found in this sandbox", b5.detail)
    assert.are.equal(404, (api:get(POLICIES .. "/0bf16e61-90e9-4204-b8fa-ad250360957b")))
    local s6 = api:post(ENTITIES, { schema = { name = "_xdm.context.profile" }, mergePolicyId = "x",
      identities = { { entityId = "policy@example.com", entityIdNS = { code = "email" } } } })
    assert.are.equal(404, s6)

    -- the same id after a restart; another sandbox has its own
    emu.restart()
    api = fixtures.client(emu)
    local s7, again = api:get(POLICIES .. "/" .. p.id)
    assert.are.equal(200, s7)
    assert.are.same(p, again)
    emu.sandbox("dev")
    api.sandbox = "dev"
    local _, dev = api:get(POLICIES)
    api.sandbox = "prod"
    assert.are_not.equal(p.id, dev.children[1].id)
    assert.are.equal("dev", dev.children[1].sandbox.sandboxName)
  end)

  it("empties a dataset larger than one slice, each slice resuming after the last", function()
    local before = fixtures.records(api, ids.profile_dataset, "?limit=1&status=success").count
    local n = 0
    for batch = 1, 2 do
      local messages = {}
      for i = 1, 1250 do
        n = n + 1
        messages[i] = fixtures.profile_message(ids, { loyaltyID = "bulk" .. n .. "@example.com" })
      end
      local s = api:post("/collection/batch/" .. ids.inlet_id, { messages = messages }, { auth = false })
      assert.are.equal(207, s)
    end
    -- validated after the answers, between requests: wait until all 2,500 are in
    local total = fixtures.poll(function()
      local c = fixtures.records(api, ids.profile_dataset, "?limit=1&status=success").count
      return c == before + n and c
    end, "the 2,500 records")
    assert.are.equal(200, (profile("bulk1@example.com")))
    local s, job = api:post(JOBS, { dataSetId = ids.profile_dataset })
    assert.are.equal(200, s)
    local done = settle(job.id)
    assert.are.equal("COMPLETED", done.status)
    assert.are.equal(total, json.decode(done.metrics).recordsProcessed)
    assert.are.equal(404, (profile("bulk1@example.com")))
    assert.are.equal(404, (profile("bulk2500@example.com")))
  end)

  it("forgets its jobs on /emulator/reset; sandboxes and the merge policy stay", function()
    local _, before = api:get(JOBS)
    assert.is_true(#before.children > 0)
    local _, policies = api:get(POLICIES)
    assert.are.equal(200, (api:post("/emulator/reset", {}, { auth = false })))
    local s, after = api:get(JOBS)
    assert.are.equal(200, s)
    assert.are.same({ _page = { count = 0 }, children = {} }, after)
    assert.are.equal(200, (api:get("/data/foundation/sandbox-management/sandboxes/dev")))
    local _, again = api:get(POLICIES)
    assert.are.same(policies, again)
  end)
end)
