-- The emulator's Identity Service lookups (native XID, cluster members, v2 graph) over the
-- identities its records link, namespace updates and idType spellings, and the Sandbox API.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"
local profiles = require "aep.emulator.profiles"

local ID = "/data/core/identity"
local NS = "/data/core/idnamespace/identities"
local SBX = "/data/foundation/sandbox-management"
local ECID = "33333333333333333333333333333333333333"
local enc = fixtures.url_encode

describe("emulator identity graph", function()
  local emu, api, ids, batch_id

  setup(function()
    emu, api, ids = fixtures.start()
    local entity = fixtures.profile_entity(ids, { loyaltyID = "graph@example.com" })
    entity.identityMap = { ECID = { { id = ECID } } }
    local s, b = api:post("/collection/" .. ids.inlet_id .. "?syncValidation=true",
      fixtures.envelope(ids, ids.profile_schema, ids.profile_dataset, entity), { auth = false })
    fixtures.expect(s, 200, b, "stream")
    for _, r in ipairs(fixtures.records(api, ids.profile_dataset).records) do batch_id = r.batchId end
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  it("answers an identity's XID, by namespace code or id; 400 for an unknown namespace", function()
    local want = profiles.xid("Email", "graph@example.com")
    local s, b = api:get(ID .. "/identity?namespace=email&id=" .. enc("graph@example.com"))
    assert.are.equal(200, s)
    assert.are.same({ xid = want }, b)
    local s2, b2 = api:get(ID .. "/identity?nsid=6&id=" .. enc("graph@example.com"))
    assert.are.equal(200, s2)
    assert.are.same({ xid = want }, b2)
    local s3, b3, r3 = api:get(ID .. "/identity?namespace=nosuchns&id=x")
    assert.are.equal(400, s3)
    assert.are.equal("application/json", r3.headers["content-type"])
    assert.are.same({ title = "InvalidInput", status = 400,
      detail = "The provided namespace=nosuchns and id=x is invalid. Please provide a valid namespace and id in your request." }, b3)
  end)

  it("lists a cluster's members in the form asked: namespace, nsid, xid", function()
    local s, b = api:get(ID .. "/cluster/members?namespace=Email&id=" .. enc("graph@example.com"))
    assert.are.equal(200, s)
    assert.are.same({ version = "1.1.0", algo_type = "STITCH_ALL", unprocessedRecords = {}, clusters = {
      { compositeXid = { namespace = "Email", id = "graph@example.com" },
        members = { { namespace = "Email", id = "graph@example.com" }, { namespace = "ECID", id = ECID } } } } }, b)
    local s2, b2 = api:get(ID .. "/cluster/members?nsid=4&id=" .. ECID)
    assert.are.equal(200, s2)
    assert.are.same({ { nsid = 6, id = "graph@example.com" }, { nsid = 4, id = ECID } }, b2.clusters[1].members)
    local xid = profiles.xid("ECID", ECID)
    local s3, b3 = api:get(ID .. "/cluster/members?xid=" .. xid)
    assert.are.equal(200, s3)
    assert.are.same({ xid = xid, members = { profiles.xid("Email", "graph@example.com"), xid } }, b3.clusters[1])
    -- an identity nothing carries: a cluster without members
    local s4, b4 = api:get(ID .. "/cluster/members?namespace=Email&id=nobody%40example.com")
    assert.are.equal(200, s4)
    assert.are.same({}, b4.clusters[1].members)
    local s5, b5 = api:get(ID .. "/cluster/members")
    assert.are.equal(400, s5)
    assert.are.equal("Missing required query parameter - xid or (nsid,id)", b5.detail)
    local s6, b6 = api:get(ID .. "/cluster/members?namespace=Email&id=x&graph-type=abc")
    assert.are.equal(400, s6)
    assert.are.equal("The graph-type abc specified is invalid. Please provide a valid graph-type", b6.detail)
    local _, b7 = api:get(ID .. "/identity?namespace=Email")
    assert.are.equal("Missing required query parameter - id", b7.detail)
    local _, b8 = api:get(ID .. "/identity?id=x")
    assert.are.equal("Missing required query parameter - namespace", b8.detail)
  end)

  it("answers several clusters at once (POST clusters/members)", function()
    local s, b = api:post(ID .. "/clusters/members", { compositeXids = { { nsid = 6, id = "graph@example.com" },
      { nsid = 6, id = "nobody@example.com" } } })
    assert.are.equal(200, s)
    assert.are.equal(2, #b.clusters)
    assert.are.same({ { nsid = 6, id = "graph@example.com" }, { nsid = 4, id = ECID } }, b.clusters[1].members)
    assert.are.same({}, b.clusters[2].members)
    local s2, b2 = api:post(ID .. "/clusters/members", { nothing = true })
    assert.are.equal(400, s2)
    assert.are.equal("Missing required query parameter - xids or compositeXids", b2.detail)
    local many = {}
    for i = 1, 1001 do many[i] = "x" .. i end
    local s3, b3 = api:post(ID .. "/clusters/members", { xids = many })
    assert.are.equal(400, s3)
    assert.are.equal("There is a limit of 1000 XIDs in a single call", b3.detail)
  end)

  it("answers the v2 graph as a set or as vertices and edges (dataset and batch of the linking record)", function()
    local s, b, r = api:post(ID .. "/v2/graph", { composite_xids = { { ns = "Email", id = "graph@example.com" },
      { ns = "Email", id = "nobody@example.com" } }, projection_type = "set" })
    assert.are.equal(200, s)
    assert.are.equal("application/json;version=2.2.1;charset=utf-8", r.headers["content-type"])
    assert.are.same({ { composite_xid = { ns = "Email", id = "graph@example.com" },
      members = { { ns = "Email", id = "graph@example.com" }, { ns = "ECID", id = ECID } } } }, b.graphs)
    assert.are.same({ { ns = "Email", id = "nobody@example.com" } }, b.unprocessed_composite_xids)

    local s2, b2 = api:post(ID .. "/v2/graph", { composite_xids = { { nsid = 4, id = ECID } }, projection_type = "graph" })
    assert.are.equal(200, s2)
    local g = b2.graphs[1]
    assert.are.equal(2, #g.vertices)
    assert.are.same({ nsid = 6, id = "graph@example.com" }, g.vertices[1].composite_xid)
    assert.is_true(g.vertices[1].last_updated_ts > 0)
    assert.are.equal(1, #g.edges)
    local e = g.edges[1]
    assert.are.same({ { nsid = 6, id = "graph@example.com" }, { nsid = 4, id = ECID } }, e.composite_xid_pair)
    assert.are.same({ ids.profile_dataset }, e.dataset_ids)
    assert.are.same({ batch_id }, e.batch_ids)
    assert.are.equal(e.first_established_ts, e.last_established_ts)

    local s3, b3 = api:post(ID .. "/v2/graph", { xids = { "HHDAHDKYYD" }, projection_type = "tree" })
    assert.are.equal(400, s3)
    assert.are.equal("Graph Request Invalid - projection types available are [graph|set].", b3.message)
  end)

  it("spells idType as each answer documents it and updates a custom namespace (PUT)", function()
    local s, ns = api:post(NS, { name = "Members", code = "Members", idType = "cross_device" })
    assert.are.equal(200, s, json.encode(ns))
    assert.are.equal("Cross_device", ns.idType)
    local _, list = api:get(NS)
    local by_code = {}
    for _, n in ipairs(list) do by_code[n.code] = n end
    assert.are.equal("CROSS_DEVICE", by_code.Members.idType)
    assert.are.equal("Device", by_code.WAID.idType)
    assert.are.equal("COOKIE", by_code.ECID.idType)
    local _, one = api:get(NS .. "/" .. ns.id)
    assert.are.equal("Cross_device", one.idType)

    local s2, updated = api:put(NS .. "/" .. ns.id, { name = "Loyal members", code = "Members", idType = "Device",
                                                      description = "renamed" })
    assert.are.equal(200, s2, json.encode(updated))
    assert.are.equal(1, #updated)
    assert.are.equal("Loyal members", updated[1].name)
    assert.are.equal("Device", updated[1].idType)
    assert.are.equal("renamed", updated[1].description)
    assert.are.equal(ns.id, updated[1].id)
    emu.restart()
    api = fixtures.client(emu)
    local _, again = api:get(NS .. "/Members")
    assert.are.equal("Loyal members", again.name)

    local s3, b3 = api:put(NS .. "/" .. ns.id, { name = "x", code = "Other", idType = "Device" })
    assert.are.equal(400, s3)
    assert.are.equal("code is required and must stay Members (a namespace's code cannot change)", b3.report.message)
    local s4, b4 = api:put(NS .. "/6", { name = "x", code = "Email", idType = "Email" })
    assert.are.equal(400, s4)
    assert.are.equal("Namespace Email is a standard namespace: it cannot be updated", b4.report.message)
    assert.are.equal(404, (api:put(NS .. "/99999999", { name = "x", code = "x", idType = "Email" })))
    local s5, b5, r5 = api:request("POST", NS, "not json", { content_type = "text/plain" })
    assert.are.equal(400, s5)
    assert.are.equal("application/json", r5.headers["content-type"])
    assert.are.equal("INVALID_REQUEST", b5.error)
  end)

  it("lists, creates and reads sandboxes through the Sandbox API", function()
    local s, b = api:get(SBX .. "/sandboxes")
    assert.are.equal(200, s)
    local names = {}
    for _, sb in ipairs(b.sandboxes) do names[#names + 1] = sb.name end
    assert.are.same({ "prod" }, names)
    assert.is_true(b.sandboxes[1].isDefault)
    assert.are.equal("production", b.sandboxes[1].type)

    local s2, created = api:post(SBX .. "/sandboxes", { name = "acme-dev", title = "Acme dev", type = "development" })
    assert.are.equal(202, s2)
    assert.are.same({ name = "acme-dev", title = "Acme dev", state = "creating", type = "development", region = "VA7" }, created)
    local s3, got = api:get(SBX .. "/sandboxes/acme-dev")
    assert.are.equal(200, s3)
    assert.are.equal("active", got.state)
    assert.are.equal("Acme dev", got.title)
    assert.is_false(got.isDefault)
    -- usable at once as x-sandbox-name, and listed by the available-sandboxes endpoint
    api.sandbox = "acme-dev"
    assert.are.equal(200, (api:get("/data/foundation/catalog/dataSets")))
    api.sandbox = "prod"
    local _, avail = api:get(SBX .. "/")
    assert.are.equal(2, avail._page.count)
    local s4, dup = api:post(SBX .. "/sandboxes", { name = "acme-dev", title = "Again", type = "development" })
    assert.are.equal(409, s4)
    assert.are.equal("Sandbox acme-dev already exists", dup.detail)
    assert.are.equal(400, (api:post(SBX .. "/sandboxes", { name = "Bad Name", title = "x", type = "development" })))
    assert.are.equal(400, (api:post(SBX .. "/sandboxes", { name = "ok", title = "x", type = "staging" })))
    assert.are.equal(404, (api:get(SBX .. "/sandboxes/nope")))
    local _, types = api:get(SBX .. "/sandboxTypes")
    assert.are.same({ { id = "development", title = "Development" }, { id = "production", title = "Production" } },
      types.sandboxTypes)
    emu.restart()
    api = fixtures.client(emu)
    local _, kept = api:get(SBX .. "/sandboxes/acme-dev")
    assert.are.equal("Acme dev", kept.title)
  end)
end)
