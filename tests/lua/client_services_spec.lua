-- The service modules against the emulator, each on its happy path and its documented errors:
-- aep.schemas, aep.identity, aep.catalog, aep.flows, aep.inlet, aep.streaming_ingestion, aep.batches,
-- aep.profile. One emulator; each block uses resources it makes itself.
local config = require "aep.config"
local platform = require "aep.platform"
local schemas = require "aep.schemas"
local identity = require "aep.identity"
local catalog = require "aep.catalog"
local flows = require "aep.flows"
local inlet = require "aep.inlet"
local streaming = require "aep.streaming_ingestion"
local batches = require "aep.batches"
local profile = require "aep.profile"
local json = require "aep.json"
local emulator = require "tests.lua.support.emulator"

local emu, c, tenant, tkey

local function loyalty_field_group(title, class, props)
  return {
    type = "object", title = title, description = "test",
    ["meta:intendedToExtend"] = json.array({ class }),
    definitions = { loyalty = { type = "object", properties = { [tkey] = {
      type = "object", ["meta:xdmType"] = "object", required = json.array({ "loyaltyID" }), properties = props } } } },
    allOf = json.array({ { ["$ref"] = "#/definitions/loyalty" } }),
  }
end

local PROFILE_PROPS = function()
  return {
    loyaltyID = { type = "string", format = "email" },
    loyaltyLevel = { type = "string", enum = json.array({ "Silver", "Gold", "Platinum", "Diamond" }) },
    totalLoyaltyPoints = { type = "integer", ["meta:xdmType"] = "int" },
  }
end

local EVENT_PROPS = function()
  return {
    loyaltyID = { type = "string", format = "email" },
    loyaltyLevel = { type = "string", enum = json.array({ "Silver", "Gold", "Platinum", "Diamond" }) },
    totalPoints = { type = "integer", ["meta:xdmType"] = "int" },
    pointsEarned = { type = "integer", ["meta:xdmType"] = "int" },
  }
end

-- A Profile-enabled schema + dataset pair, made with the library itself.
local function make_dataset(name, class, props, refs)
  local fg = schemas.create_field_group(c, loyalty_field_group(name .. " FG", class, props))
  local allOf = json.array({ { ["$ref"] = class } })
  for _, r in ipairs(refs or {}) do allOf[#allOf + 1] = { ["$ref"] = r } end
  allOf[#allOf + 1] = { ["$ref"] = fg["$id"] }
  local schema = schemas.create_schema(c, { type = "object", title = name .. " Schema", allOf = allOf })
  schemas.create_descriptor(c, schemas.identity_descriptor(schema["$id"], "/" .. tkey .. "/loyaltyID", "Email"))
  schemas.enable_profile(c, schema["$id"])
  local ds = catalog.create_dataset(c, catalog.dataset_body({ name = name .. " Dataset", schema_id = schema["$id"] }))
  return { field_group = fg["$id"], schema = schema["$id"], dataset = ds }
end

local function person(email, level, points)
  return { [tkey] = { loyaltyID = email, loyaltyLevel = level, totalLoyaltyPoints = points },
           person = { name = { firstName = "Ann", lastName = "Example" } },
           personalEmail = { address = email } }
end

local function event(id, email, earned, total)
  return { _id = id, eventType = "loyaltyBalanceUpdate", timestamp = "2020-03-03T06:34:55Z",
           [tkey] = { loyaltyID = email, pointsEarned = earned, totalPoints = total, loyaltyLevel = "Gold" } }
end

setup(function()
  emu = emulator.start()
  local cfg = config.load({ env_file = emu.env_file, getenv = function() return nil end })
  c = platform.new(cfg, { sleep = function() end })
  tenant = schemas.tenant_id(c)
  tkey = "_" .. tenant
end)
teardown(function() emu.cleanup() end)

describe("aep.schemas", function()
  it("reads the tenant id from /stats", function()
    assert.are.equal(emu.env.TENANT_ID, tenant)
  end)

  it("creates, finds, reads, enables and deletes field groups, schemas and descriptors", function()
    local fg = schemas.create_field_group(c, loyalty_field_group("S1 Loyalty Details", schemas.PROFILE_CLASS, PROFILE_PROPS()))
    assert.truthy(fg["$id"]:match("^https://ns%.adobe%.com/" .. tenant .. "/mixins/"))
    assert.are.equal(fg["$id"], schemas.find_by_title(c, "fieldgroups", "S1 Loyalty Details")["$id"])
    local s = schemas.create_schema(c, { type = "object", title = "S1 Loyalty Profiles",
      allOf = json.array({ { ["$ref"] = schemas.PROFILE_CLASS }, { ["$ref"] = fg["$id"] } }) })
    assert.are.equal(s["$id"], schemas.find_by_title(c, "schemas", "S1 Loyalty Profiles")["$id"])
    assert.is_nil(schemas.find_by_title(c, "schemas", "S1 Nothing"))
    local d = schemas.create_descriptor(c, schemas.identity_descriptor(s["$id"], "/" .. tkey .. "/loyaltyID", "Email"))
    assert.are.equal("string", type(d["@id"]))
    assert.are.equal(d["@id"], schemas.find_identity_descriptor(c, s["$id"], "/" .. tkey .. "/loyaltyID")["@id"])
    assert.is_false(schemas.is_profile_enabled(schemas.get(c, "schemas", s["$id"])))
    schemas.enable_profile(c, s["$id"])
    assert.is_true(schemas.is_profile_enabled(schemas.get(c, "schemas", s["$id"])))
    schemas.enable_profile(c, s["$id"]) -- already enabled: no second PATCH needed, no error
    assert.is_true(schemas.delete_descriptor(c, d["@id"]))
    assert.is_nil(schemas.find_identity_descriptor(c, s["$id"]))
    assert.is_true(schemas.delete(c, "schemas", s["$id"]))
    assert.is_nil(schemas.get(c, "schemas", s["$id"]))
    assert.is_true(schemas.delete(c, "fieldgroups", fg["$id"]))
    assert.is_true(schemas.delete(c, "fieldgroups", fg["$id"])) -- gone already: still true
  end)

  it("surfaces a duplicate title as AEP's 400 XDM-1521-400", function()
    schemas.create_field_group(c, loyalty_field_group("S2 Dup", schemas.PROFILE_CLASS, PROFILE_PROPS()))
    local ok, err = pcall(schemas.create_field_group, c, loyalty_field_group("S2 Dup", schemas.PROFILE_CLASS, PROFILE_PROPS()))
    assert.is_false(ok)
    assert.are.equal(400, err.status)
    assert.are.equal("XDM-1521-400", err.code)
  end)
end)

describe("aep.identity", function()
  it("lists the standard namespaces and finds Email whatever the case", function()
    local ns = identity.find_namespace(c, "email")
    assert.are.equal("Email", ns.code)
  end)

  it("creates a custom namespace once (409 on a duplicate code)", function()
    local body = { name = "Loyalty Member", code = "LoyaltyT1", idType = "Cross_device", description = "test" }
    local ns, how = identity.ensure_namespace(c, body)
    assert.are.equal("created", how)
    assert.are.equal("LoyaltyT1", ns.code)
    local again, how2 = identity.ensure_namespace(c, body)
    assert.are.equal("found", how2)
    assert.are.equal(ns.id, again.id)
    local ok, err = pcall(identity.create_namespace, c, body)
    assert.is_false(ok)
    assert.are.equal(409, err.status)
  end)
end)

describe("aep.catalog", function()
  it("creates a Profile-enabled dataset and finds, reads and deletes it", function()
    local ids = make_dataset("C1", schemas.PROFILE_CLASS, PROFILE_PROPS())
    local id = ids.dataset
    local d = catalog.get_dataset(c, id)
    assert.are.equal("C1 Dataset", d.name)
    assert.are.equal(ids.schema, d.schemaRef.id)
    assert.is_true(catalog.is_profile_enabled(d))
    assert.are.equal(id, catalog.find_dataset_by_name(c, "C1 Dataset").id)
    assert.is_nil(catalog.find_dataset_by_name(c, "C1 Nothing"))
    assert.is_true(catalog.delete_dataset(c, id))
    assert.is_nil(catalog.get_dataset(c, id))
  end)

  it("refuses a Profile-enabled dataset on a schema that is not enabled for Profile", function()
    local fg = schemas.create_field_group(c, loyalty_field_group("C2 FG", schemas.PROFILE_CLASS, PROFILE_PROPS()))
    local s = schemas.create_schema(c, { type = "object", title = "C2 Schema",
      allOf = json.array({ { ["$ref"] = schemas.PROFILE_CLASS }, { ["$ref"] = fg["$id"] } }) })
    local ok, err = pcall(catalog.create_dataset, c, catalog.dataset_body({ name = "C2 Dataset", schema_id = s["$id"] }))
    assert.is_false(ok)
    assert.are.equal(400, err.status)
    assert.are.equal("To enable profile datasets the schema should be valid", err.detail)
  end)
end)

describe("aep.flows and aep.inlet", function()
  it("creates an HTTP API streaming connection whose inlet has a 64-hex id", function()
    local id = flows.create_streaming_connection(c, { name = "F1 Streaming" })
    local conn = flows.get_connection(c, id)
    local i = flows.inlet_of(conn)
    assert.truthy(i.inlet_id:match("^%x+$"))
    assert.are.equal(64, #i.inlet_id)
    assert.are.equal(emu.url .. "/collection/" .. i.inlet_id, i.inlet_url)
    assert.is_false(i.authenticated)
    assert.are.equal(id, flows.find_by_name(c, "connections", "F1 Streaming").id)
    local ids = make_dataset("F1", schemas.PROFILE_CLASS, PROFILE_PROPS())
    local src = flows.create_source_connection(c, { name = "F1 Source", base_connection_id = id })
    local tgt = flows.create_target_connection(c, { name = "F1 Target", dataset_id = ids.dataset, schema_id = ids.schema })
    local flow = flows.create_flow(c, { name = "F1 Flow", source_id = src, target_id = tgt })
    assert.are.equal(flow, flows.find_by_name(c, "flows", "F1 Flow").id)
    for _, kv in ipairs({ { "flows", flow }, { "targetConnections", tgt }, { "sourceConnections", src }, { "connections", id } }) do
      assert.is_true(flows.delete(c, kv[1], kv[2]))
      assert.is_nil(flows.get(c, kv[1], kv[2]))
    end
  end)

  it("creates, lists and deletes a legacy inlet and event types", function()
    local created = inlet.create(c, { name = "I1 Streaming Loyalty data", source_id = "I1 LoyaltyIngest" })
    assert.are.equal("string", type(created.inletId))
    assert.are.equal("string", type(created.inletUrl))
    assert.are.equal(created.inletId, inlet.find_by_name(c, "I1 Streaming Loyalty data").inletId)
    local et = inlet.create_event_type(c, { id = "i1LoyaltyUpdate", title = "I1 Loyalty Update" })
    assert.are.equal("i1LoyaltyUpdate", et.id)
    assert.are.equal(emu.env.IMS_ORG, et.imsOrgId)
    assert.are.equal("i1LoyaltyUpdate", inlet.find_event_type(c, "i1LoyaltyUpdate").id)
    assert.is_true(inlet.delete(c, created.inletId))
    assert.is_nil(inlet.find_by_name(c, "I1 Streaming Loyalty data"))
  end)
end)

describe("aep.streaming_ingestion, aep.batches and aep.profile", function()
  local P, E, target, flow_p, flow_e

  setup(function()
    P = make_dataset("T1 Profiles", schemas.PROFILE_CLASS, PROFILE_PROPS(), {
      "https://ns.adobe.com/xdm/context/profile-person-details", "https://ns.adobe.com/xdm/context/profile-personal-details" })
    E = make_dataset("T1 Events", schemas.EVENT_CLASS, EVENT_PROPS())
    local conn = flows.create_streaming_connection(c, { name = "T1 Streaming" })
    target = flows.inlet_of(flows.get_connection(c, conn))
    local src = flows.create_source_connection(c, { name = "T1 Source", base_connection_id = conn })
    local tp = flows.create_target_connection(c, { name = "T1 P Target", dataset_id = P.dataset, schema_id = P.schema })
    local te = flows.create_target_connection(c, { name = "T1 E Target", dataset_id = E.dataset, schema_id = E.schema })
    flow_p = flows.create_flow(c, { name = "T1 P Flow", source_id = src, target_id = tp })
    flow_e = flows.create_flow(c, { name = "T1 E Flow", source_id = src, target_id = te })
  end)

  it("builds the envelope once per dataset, as documented", function()
    local info = streaming.dataset_info(c, P.dataset, { flow_id = flow_p })
    local wrap = streaming.envelope_encoder(info)
    local msg = json.decode(wrap('{"a":1}'))
    local ref = { id = P.schema, contentType = "application/vnd.adobe.xed-full+json;version=1" }
    assert.are.same({
      header = { schemaRef = ref, imsOrgId = emu.env.IMS_ORG, datasetId = P.dataset, flowId = flow_p },
      body = { xdmMeta = { schemaRef = ref }, xdmEntity = { a = 1 } },
    }, msg)
  end)

  it("streams one message with synchronous validation", function()
    local wrap = streaming.envelope_encoder(streaming.dataset_info(c, P.dataset, { flow_id = flow_p }))
    local ans = streaming.send(c, target, wrap(json.encode(person("st1@example.com", "Gold", 150000))),
      { sync_validation = true, flow_id = flow_p })
    assert.are.equal("string", type(ans.xactionId))
  end)

  it("surfaces a 400 validation report with its violations", function()
    local wrap = streaming.envelope_encoder(streaming.dataset_info(c, P.dataset, { flow_id = flow_p }))
    local bad = { _exchangeinternal = { loyaltyID = "st2@example.com" }, person = { name = { firstName = "B" } } }
    local ok, err = pcall(streaming.send, c, target, wrap(json.encode(bad)), { sync_validation = true, flow_id = flow_p })
    assert.is_false(ok)
    assert.are.equal(400, err.status)
    assert.are.equal("Invalid XDM Message Format", err.title)
    assert.is_true(#err.violations >= 1)
    local found = false
    for _, v in ipairs(err.violations) do
      if tostring(v.message):find("_exchangeinternal", 1, true) then found = true end
    end
    assert.is_true(found)
    assert.truthy(tostring(err):find("_exchangeinternal", 1, true))
  end)

  it("streams a batch and accounts for each message (207)", function()
    local info = streaming.dataset_info(c, P.dataset, { flow_id = flow_p })
    local wrap = streaming.envelope_encoder(info)
    local info_bad = {}
    for k, v in pairs(info) do info_bad[k] = v end
    info_bad.dataset_id = "000000000000000000000000" -- no such dataset: the envelope is refused
    local msgs = {
      wrap(json.encode(person("b1@example.com", "Silver", 10))),
      streaming.envelope_encoder(info_bad)(json.encode(person("b2@example.com", "Gold", 100000))),
      wrap(json.encode(person("b3@example.com", "Diamond", 400000))),
    }
    local r = streaming.send_batch(c, target, msgs, { flow_id = flow_p })
    assert.are.equal(207, r.status)
    assert.are.equal(2, #r.accepted)
    assert.are.equal(1, #r.rejected)
    assert.are.equal(2, r.rejected[1].index)
    assert.are.equal(400, r.rejected[1].status)
  end)

  it("cuts batches under the size and count limits", function()
    local msgs = {}
    for i = 1, 10 do msgs[i] = string.rep("x", 100) end
    local slices = {}
    for a, b in streaming.chunks(msgs, { max_bytes = 350, max_count = 4 }) do slices[#slices + 1] = { a, b } end
    assert.are.same({ { 1, 3 }, { 4, 6 }, { 7, 9 }, { 10, 10 } }, slices)
    slices = {}
    for a, b in streaming.chunks(msgs, { max_count = 4 }) do slices[#slices + 1] = { a, b } end
    assert.are.same({ { 1, 4 }, { 5, 8 }, { 9, 10 } }, slices)
  end)

  it("imports a batch and waits for its success", function()
    local id = batches.create(c, P.dataset)
    local body = "[" .. json.encode(person("bi1@example.com", "Platinum", 250000)) .. ",\n" ..
      json.encode(person("bi2@example.com", "Silver", 50000)) .. "]\n"
    batches.upload(c, id, P.dataset, "people.json", body)
    batches.complete(c, id)
    local b = batches.wait(c, id, { timeout = 60 })
    assert.are.equal("success", b.status)
  end)

  it("reads a profile and its events back by email identity", function()
    local wrap_p = streaming.envelope_encoder(streaming.dataset_info(c, P.dataset, { flow_id = flow_p }))
    local wrap_e = streaming.envelope_encoder(streaming.dataset_info(c, E.dataset, { flow_id = flow_e }))
    streaming.send(c, target, wrap_p(json.encode(person("rb1@example.com", "Gold", 123450))), { flow_id = flow_p })
    local evs = {}
    for i = 1, 3 do evs[i] = wrap_e(json.encode(event("rb1-e" .. i, "rb1@example.com", 50 * i, 123000 + i))) end
    local r = streaming.send_batch(c, target, evs, { flow_id = flow_e })
    assert.are.equal(3, #r.accepted)
    local rec = profile.wait(c, function() return profile.get(c, { id = "rb1@example.com" }) end, { timeout = 30 })
    assert.are.equal("Gold", rec.entity[tkey].loyaltyLevel)
    assert.are.equal(123450, math.tointeger(rec.entity[tkey].totalLoyaltyPoints))
    assert.are.equal("Ann", rec.entity.person.name.firstName)
    local got = profile.events(c, { id = "rb1@example.com", limit = 2 }) -- two pages
    assert.are.equal(3, #got)
    local ids = {}
    for _, ch in ipairs(got) do ids[#ids + 1] = ch.entityId end
    table.sort(ids)
    assert.are.same({ "rb1-e1", "rb1-e2", "rb1-e3" }, ids)
    assert.is_nil(profile.get(c, { id = "nobody@example.com" }))
  end)

  it("bounds the wait for a profile that never shows", function()
    local ok, err = pcall(profile.wait, c, function() return nil end, { timeout = 0, what = "the profile of x" })
    assert.is_false(ok)
    assert.are.equal("TIMEOUT", err.code)
    assert.are.equal("the profile of x not visible after 0 s", err.message)
  end)
end)
