-- aep with Data Prep mapping sets, against the emulator: `aep stream --mapping-set` stores what
-- the Lua mapping stores; a record whose expression fails is rejected with the engine's words;
-- `aep validate --mapping-set`; `--raw` to a dataflow with a mapping set ends in the same records
-- and Profile; `--upsert merge` changes only the fields sent; `aep mapping-sets` list/get/deploy;
-- the help examples of the new flags run.
local cjson = require "cjson"
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"

local SET = "mappings/loyalty_profile.mapping-set.json"
local SAMPLES = "data/AEP_loyalty_profiles.json"
local ENTITIES = "/data/core/ups/access/entities"

local emu, api, ids, dir

local function write(name, content) return files.write(dir .. "/" .. name, content) end

local function aep(args)
  local argv = {}
  for i, a in ipairs(args) do argv[i] = a end
  table.insert(argv, 2, "--env")
  table.insert(argv, 3, emu.env_file)
  return run.aep(argv)
end

local function poll(fn, what) return fixtures.poll(fn, what, 30) end

-- loyaltyID -> the stored entity, once the dataset holds n records
local function stored(dataset, n)
  return poll(function()
    local page = fixtures.records(api, dataset, "?limit=1000")
    if #page.records < n then return nil end
    local by = {}
    for _, rec in ipairs(page.records) do by[rec.entity._exchangeinternal.loyaltyID] = rec.entity end
    return by
  end, n .. " records in " .. dataset)
end

local function profile_of(id)
  return poll(function()
    local s, b = api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=" .. fixtures.url_encode(id) ..
      "&entityIdNS=Email")
    if s == 200 then
      local _, p = next(b)
      return p
    end
  end, "profile " .. id)
end

local ndataset = 0
local function fresh_dataset()
  ndataset = ndataset + 1
  return fixtures.dataset(api, "dataprep spec " .. ndataset, ids.profile_schema)
end

-- an HTTP API raw-data dataflow carrying mapping set `mapping_id` into `dataset`
local function raw_flow(mapping_id, dataset)
  local name = "raw flow " .. mapping_id .. " " .. dataset
  local spec = { id = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", version = "1.0" }
  local s, b = api:post("/data/foundation/flowservice/connections", { name = name, connectionSpec = spec,
    auth = { specName = "Streaming Connection", params = { dataType = "raw", name = name } } })
  fixtures.expect(s, 201, b, "connection")
  local s3, src = api:post("/data/foundation/flowservice/sourceConnections",
    { name = name .. " source", baseConnectionId = b.id, connectionSpec = spec })
  fixtures.expect(s3, 201, src, "source")
  local s4, tgt = api:post("/data/foundation/flowservice/targetConnections", { name = name .. " target",
    data = { schema = { id = ids.profile_schema } }, params = { dataSetId = dataset },
    connectionSpec = { id = "c604ff05-7f1a-43c0-8e18-33bf874cb11c", version = "1.0" } })
  fixtures.expect(s4, 201, tgt, "target")
  local s5, flow = api:post("/data/foundation/flowservice/flows", { name = name .. " flow",
    flowSpec = { id = "c1a19761-d2c7-4702-b9fa-fe91f0613e81", version = "1.0" },
    sourceConnectionIds = { src.id }, targetConnectionIds = { tgt.id },
    transformations = { { name = "Mapping", params = { mappingId = mapping_id, mappingVersion = 0 } } } })
  return fixtures.expect(s5, 201, flow, "flow").id
end

local function deploy(path)
  local r = aep({ "mapping-sets", "deploy", path, "--dataset", ids.profile_dataset, "--json" })
  assert.equal(0, r.status, r.stderr)
  return cjson.decode(r.stdout)
end

-- records shaped like the samples with ids "<tag><i>@example.com"
local function records(n, tag)
  local lines = {}
  for i = 1, n do
    local id = tag .. i .. "@example.com"
    lines[i] = cjson.encode({
      _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = i * 10, loyaltyLevel = "Silver" },
      person = { name = { firstName = "F" .. i, lastName = "L" .. i }, birthDate = "1980-01-0" .. i, gender = "female" },
      personalEmail = { primary = false, address = id, type = "personal", status = "active" },
    })
  end
  return table.concat(lines, "\n") .. "\n"
end

-- a mapping set whose expression fails on a record with non-numeric points
local POINTS_SET = {
  xdmSchema = "https://ns.adobe.com/exchangeinternal/schemas/loyalty-profiles",
  mappings = {
    { sourceType = "ATTRIBUTE", source = "email", destination = "_exchangeinternal.loyaltyID" },
    { sourceType = "ATTRIBUTE", source = "email", destination = "personalEmail.address" },
    { sourceType = "EXPRESSION", source = "to_integer(points)", destination = "_exchangeinternal.totalLoyaltyPoints" },
  },
}
local POINTS_ERROR = "Data Prep: mapping to_integer(points) -> _exchangeinternal.totalLoyaltyPoints failed: " ..
  "to_integer: 'lots' is not a number"

setup(function()
  dir = run.tmpdir()
  emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--batch-window", "0.2" }, { dataflow = false })
end)

teardown(function()
  if emu then emu.stop(); emu.cleanup() end
  if dir then os.execute("rm -rf " .. run.quote(dir)) end
end)

describe("aep stream --mapping-set", function()
  it("stores the same entities as the Lua mapping of the samples", function()
    local a, b = fresh_dataset(), fresh_dataset()
    local r1 = aep({ "stream", "--dataset", a, "--input", SAMPLES, "--mapping-set", SET, "--json" })
    assert.equal(0, r1.status, r1.stderr)
    assert.equal(25, cjson.decode(r1.stdout).accepted)
    local r2 = aep({ "stream", "--dataset", b, "--input", SAMPLES, "--mapping", "mappings/loyalty_profile.lua", "--json" })
    assert.equal(0, r2.status, r2.stderr)
    local from_set, from_lua = stored(a, 25), stored(b, 25)
    local n = 0
    for id, e in pairs(from_lua) do
      n = n + 1
      assert.same(e, from_set[id], id)
    end
    assert.equal(25, n)
  end)

  it("rejects a record whose expression fails with the engine's error", function()
    local set = write("points.mapping-set.json", cjson.encode(POINTS_SET))
    local input = write("points.jsonl", '{"email":"ok-points@example.com","points":"12"}\n' ..
      '{"email":"bad-points@example.com","points":"lots"}\n')
    local rejects = dir .. "/points.rejects.jsonl"
    local ds = fresh_dataset()
    local r = aep({ "stream", "--dataset", ds, "--input", input, "--mapping-set", set, "--reject-file", rejects, "--json" })
    assert.equal(2, r.status, r.stderr)
    local doc = cjson.decode(r.stdout)
    assert.same({ 1, 1 }, { doc.accepted, doc.rejected })
    local entries = files.json_lines(rejects)
    assert.equal(1, #entries)
    assert.equal(2, entries[1].position)
    assert.equal("mapping error: " .. POINTS_ERROR, entries[1].reason)
    assert.equal(12, stored(ds, 1)["ok-points@example.com"]._exchangeinternal.totalLoyaltyPoints)
  end)

  it("refuses a mapping set that does not validate before sending anything", function()
    local set = write("bad.mapping-set.json", cjson.encode({ mappings = {
      { sourceType = "ATTRIBUTE", source = "a", destination = "person.name.nickname" } } }))
    local r = aep({ "stream", "--dataset", ids.profile_dataset, "--input", SAMPLES, "--mapping-set", set })
    assert.equal(1, r.status)
    assert.equal("aep: stream: " .. set .. " does not validate against the target schema:\n" ..
      "  mapping 1 (a -> person.name.nickname): destination 'person.name.nickname' is not a field of the target schema\n",
      r.stderr)
    -- a missing file is found before any Platform call (the dataset is not even looked up)
    r = aep({ "stream", "--dataset", "no-such-dataset", "--input", SAMPLES, "--mapping-set", dir .. "/none.json" })
    assert.equal(1, r.status)
    assert.equal("aep: stream: cannot read mapping set " .. dir .. "/none.json: " .. dir ..
      "/none.json: No such file or directory\n", r.stderr)
  end)
end)

describe("aep validate --mapping-set", function()
  it("previews and validates offline, with Data Prep's words", function()
    local set = write("points2.mapping-set.json", cjson.encode(POINTS_SET))
    local input = write("points2.jsonl", '{"email":"a@example.com","points":"12"}\n' ..
      '{"email":"b@example.com","points":"lots"}\n')
    local r = aep({ "validate", "--mapping-set", set, "--input", input, "--dataset", ids.profile_dataset })
    assert.equal(2, r.status, r.stderr)
    assert.equal("record 2 (line 2): mapping error: " .. POINTS_ERROR .. "\n" ..
      "aep validate: 2 records: 1 valid, 1 invalid, 0 skipped (" .. input .. " against dataset " ..
      ids.profile_dataset .. ")\n", r.stdout)
    r = aep({ "validate", "--mapping-set", set, "--input", input, "--dataset", ids.profile_dataset, "--json" })
    local doc = cjson.decode(r.stdout)
    assert.same({ 2, 1, 1, set }, { doc.records, doc.valid, doc.invalid, doc.mapping })
    assert.same({ "mapping error: " .. POINTS_ERROR }, doc.invalid_records[1].problems)
  end)
end)

describe("aep stream --raw and --upsert", function()
  local set_id, flow, ds

  setup(function()
    set_id = deploy(SET).id
    ds = fresh_dataset()
    flow = raw_flow(set_id, ds)
  end)

  it("sends the records as they are to the dataflow, which maps them to the Lua mapping's entities", function()
    local input = write("raw.jsonl", records(4, "raw"))
    local r = aep({ "stream", "--raw", "--flow-id", flow, "--input", input, "--json" })
    assert.equal(0, r.status, r.stderr)
    local doc = cjson.decode(r.stdout)
    assert.same({ 4, 4 }, { doc.accepted, doc.requests })
    -- found by the dataset too: the one dataflow with a mapping set writing it
    local input2 = write("raw2.jsonl", records(2, "rawds"))
    local r2 = aep({ "stream", "--raw", "--dataset", ds, "--input", input2, "--json" })
    assert.equal(0, r2.status, r2.stderr)
    local got = stored(ds, 6)
    local lua_mapping = dofile("mappings/loyalty_profile.lua")
    for line in (records(4, "raw") .. records(2, "rawds")):gmatch("[^\n]+") do
      local rec = cjson.decode(line)
      local want = cjson.decode(cjson.encode(lua_mapping(rec, { tenant = "exchangeinternal" })))
      assert.same(want, got[rec._exchangeinternal.loyaltyID])
    end
    local p = profile_of("raw2@example.com").entity
    p.identities = nil
    assert.same(got["raw2@example.com"], p)
  end)

  it("--upsert merge changes only the fields sent", function()
    local id = "upsert1@example.com"
    local r0 = aep({ "stream", "--raw", "--flow-id", flow, "--input", write("up0.jsonl", records(1, "upsert")) })
    assert.equal(0, r0.status, r0.stderr)
    local before = profile_of(id).entity
    local lake = #fixtures.records(api, ds, "?limit=1000").records
    local change = write("up1.jsonl", cjson.encode({ _exchangeinternal = { loyaltyID = id, loyaltyLevel = "Gold" } }) .. "\n")
    local r = aep({ "stream", "--raw", "--upsert", "merge", "--flow-id", flow, "--input", change, "--json" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(1, cjson.decode(r.stdout).accepted)
    local after = poll(function()
      local e = profile_of(id).entity
      if e._exchangeinternal.loyaltyLevel == "Gold" then return e end
    end, "the upsert")
    before._exchangeinternal.loyaltyLevel = "Gold"
    assert.same(before, after)
    assert.equal(lake, #fixtures.records(api, ds, "?limit=1000").records)
    -- mapped locally by the mapping set, sent to the dataset's own dataflow as an upsert
    local change2 = write("up2.jsonl", cjson.encode({ _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = 77 } }) .. "\n")
    r = aep({ "stream", "--upsert", "merge", "--mapping-set", SET, "--dataset", ds, "--input", change2, "--json" })
    assert.equal(0, r.status, r.stderr)
    local after2 = poll(function()
      local e = profile_of(id).entity
      if e._exchangeinternal.totalLoyaltyPoints == 77 then return e end
    end, "the second upsert")
    before._exchangeinternal.totalLoyaltyPoints = 77
    assert.same(before, after2)
    assert.equal(lake, #fixtures.records(api, ds, "?limit=1000").records)
  end)

  it("--identity-dataset adds identity create: the record reaches the identity dataset too", function()
    local identity_ds = fixtures.dataset(api, "dataprep spec identity", ids.profile_schema, false)
    local id = "identity1@example.com"
    local input = write("ident.jsonl", cjson.encode({ _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = 5 } }) .. "\n")
    local r = aep({ "stream", "--raw", "--upsert", "merge", "--identity-dataset", identity_ds, "--flow-id", flow,
      "--input", input, "--json" })
    assert.equal(0, r.status, r.stderr)
    local page = poll(function()
      local p = fixtures.records(api, identity_ds)
      if p.count == 1 then return p end
    end, "the identity dataset's record")
    assert.same({ _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = 5 } }, page.records[1].entity)
    local e = profile_of(id).entity
    e.identities = nil
    assert.same({ _exchangeinternal = { loyaltyID = id, totalLoyaltyPoints = 5 } }, e)
  end)

  it("a record AEP's mapping fails is accepted on the wire and shown by aep status --errors", function()
    local points = write("points3.mapping-set.json", cjson.encode(POINTS_SET))
    local pid = deploy(points).id
    local pds = fresh_dataset()
    local pflow = raw_flow(pid, pds)
    local input = write("points3.jsonl", '{"email":"ok3@example.com","points":"3"}\n{"email":"bad3@example.com","points":"lots"}\n')
    local r = aep({ "stream", "--raw", "--flow-id", pflow, "--input", input, "--json" })
    -- both accepted on the wire; the follow-through then finds AEP's mapping failure (exit 2)
    assert.equal(2, r.status, r.stderr)
    local report = cjson.decode(r.stdout)
    assert.equal(2, report.accepted)
    assert.equal(1, report.ingested)
    assert.equal(1, report.failed_after_acceptance)
    poll(function() return #fixtures.records(api, pds, "?status=failed").records == 1 end, "the failed record")
    local st = poll(function()
      local s2 = aep({ "status", "--dataset", pds, "--errors" })
      if s2.stdout:find(POINTS_ERROR, 1, true) then return s2 end
    end, "aep status --errors naming the mapping failure")
    assert.equal(2, st.status)
  end)

  it("refuses flags that do not go together", function()
    local cases = {
      { { "--raw", "--input", SAMPLES }, "--raw needs --flow-id ID (a dataflow with a mapping set) or --dataset ID" },
      { { "--raw", "--flow-id", "f", "--input", SAMPLES, "--mapping-set", SET },
        "--raw sends the records as they are for the dataflow's mapping set to map: leave out --mapping/--mapping-set" },
      { { "--dataset", "d", "--upsert", "replace", "--input", SAMPLES },
        "--upsert takes create, merge or delete (Data Prep's operations.data), got 'replace'" },
      { { "--dataset", "d", "--identity-dataset", "x", "--input", SAMPLES }, "--identity-dataset needs --upsert" },
    }
    for _, c in ipairs(cases) do
      local argv = { "stream" }
      for _, a in ipairs(c[1]) do argv[#argv + 1] = a end
      local r = run.aep(argv)
      assert.equal(64, r.status)
      assert.equal("aep stream: " .. c[2], (r.stderr:match("^[^\n]*")))
    end
  end)
end)

describe("aep mapping-sets", function()
  it("deploys a file, lists it, gets it back as the same file and deploys a new version", function()
    local created = deploy(SET)
    assert.equal(0, created.version)
    assert.equal(32, #created.id)
    local r = aep({ "mapping-sets", "list", "--json" })
    assert.equal(0, r.status, r.stderr)
    local found
    for _, s in ipairs(cjson.decode(r.stdout)) do if s.id == created.id then found = s end end
    assert.truthy(found)
    local out = dir .. "/got.mapping-set.json"
    r = aep({ "mapping-sets", "get", created.id, "-o", out })
    assert.equal(0, r.status, r.stderr)
    local got, file = files.json(out), files.json(SET)
    file.xdmSchema = ids.profile_schema
    assert.same(file, got)
    r = aep({ "mapping-sets", "deploy", out, "--id", created.id, "--json" })
    assert.equal(0, r.status, r.stderr)
    assert.same({ created.id, 1 }, (function(d) return { d.id, d.version } end)(cjson.decode(r.stdout)))
    -- the deployed set by its id maps like the file
    local ds = fresh_dataset()
    r = aep({ "stream", "--dataset", ds, "--input", SAMPLES, "--mapping-set", created.id, "--json" })
    assert.equal(0, r.status, r.stderr)
    assert.equal(25, cjson.decode(r.stdout).accepted)
    r = aep({ "stream", "--dataset", ds, "--input", SAMPLES, "--mapping-set", "0123456789abcdef0123456789abcdef" })
    assert.equal(1, r.status)
    assert.equal("aep: stream: mapping set 0123456789abcdef0123456789abcdef not found (aep mapping-sets list shows the org's)\n",
      r.stderr)
    r = aep({ "mapping-sets", "get", "nope" })
    assert.equal(1, r.status)
    assert.equal("aep: mapping-sets: mapping set nope not found\n", r.stderr)
  end)

  it("prints each mapping the Data Prep API refuses", function()
    local bad = write("refused.mapping-set.json", cjson.encode({ xdmSchema = ids.profile_schema, mappings = {
      { sourceType = "ATTRIBUTE", source = "a", destination = "person.name.firstName" },
      { sourceType = "STATIC", source = "lots", destination = "_exchangeinternal.totalLoyaltyPoints" } } }))
    local r = aep({ "mapping-sets", "deploy", bad })
    assert.equal(1, r.status)
    assert.equal("aep: mapping-sets: the Data Prep API refused " .. bad .. ": Invalid mapping set:\n" ..
      "  mapping 2 (lots -> _exchangeinternal.totalLoyaltyPoints): type mismatch: cannot convert string 'lots' to an integer\n",
      r.stderr)
  end)

  it("moves a set written for another tenant under the target tenant", function()
    local ms = require "aep.stream.mapping_set"
    local set = files.json(SET)
    local moved = ms.retarget(set, "acme", "https://ns.adobe.com/acme/schemas/x")
    assert.equal("https://ns.adobe.com/acme/schemas/x", moved.xdmSchema)
    assert.same({ "_exchangeinternal.loyaltyID", "_acme.loyaltyID" }, { moved.mappings[1].source, moved.mappings[1].destination })
    assert.equal("person.name.firstName", moved.mappings[4].destination)
    assert.equal("_exchangeinternal.loyaltyID", set.mappings[1].destination) -- the original is kept
  end)
end)

describe("the REPL's try with a mapping set", function()
  it("maps with the set (a file or a table) and validates against the dataset's schema", function()
    local repl_session = require "aep.repl.session"
    local cfg = require("aep.config").load({ flags = { env = emu.env_file } })
    local client = require("aep.platform").new(cfg)
    local session = { mappings = {}, targets = {}, client = function() return client end }
    local rec = cjson.decode(records(1, "try"):match("[^\n]+"))
    local r = repl_session.try(session, SET, rec, ids.profile_dataset)
    assert.same({ true, "try1@example.com" }, { r.ok, r.entity._exchangeinternal.loyaltyID })
    assert.equal("valid", tostring(r):match("^%a+"))
    r = repl_session.try(session, POINTS_SET, { email = "c@example.com", points = "lots" })
    assert.same({ false, { "mapping error: " .. POINTS_ERROR } }, { r.ok, r.problems })
  end)
end)

describe("aep run raw-streaming", function()
  it("deploys the sample mapping set for the org's tenant and streams the samples raw through it", function()
    local other = require("tests.lua.support.emulator").start({ "--tenant", "acme" })
    local ok, err = pcall(function()
      local manifest = dir .. "/raw-run.json"
      local r = run.aep({ "run", "schemas", "datasets", "raw-streaming", "--env", other.env_file, "--manifest", manifest,
        "--run-name", "rawrun" })
      assert.equal(0, r.status, r.stderr .. r.stdout)
      assert.truthy(r.stdout:find("25 raw profiles: 25 accepted, 0 rejected", 1, true), r.stdout)
      local m = files.json(manifest)
      local vars = m.vars or m.variables or m
      local ds = vars.DATASET_ID_PROFILE
      ds = type(ds) == "table" and ds.id or ds
      local http = require "aep.http"
      local page = poll(function()
        local resp = http.request({ url = other.url .. "/emulator/datasets/" .. ds .. "/records?limit=100" })
        local doc = cjson.decode(resp.body)
        if doc.count == 25 then return doc end
      end, "the raw records")
      local by = {}
      for _, rec in ipairs(page.records) do by[rec.entity._acme.loyaltyID] = rec.entity end
      local lua_mapping = dofile("mappings/loyalty_profile.lua")
      for _, rec in ipairs(files.json(SAMPLES)) do
        local want = cjson.decode(cjson.encode(lua_mapping(rec, { tenant = "acme" })))
        assert.same(want, by[rec._exchangeinternal.loyaltyID])
      end
      -- run again: everything found, nothing created
      r = run.aep({ "run", "raw-streaming", "--env", other.env_file, "--manifest", manifest, "--run-name", "rawrun" })
      assert.equal(0, r.status, r.stderr .. r.stdout)
      assert.truthy(r.stdout:find("done: 0 created, 5 found", 1, true), r.stdout)
    end)
    other.cleanup()
    if not ok then error(err, 0) end
  end)
end)

describe("the help examples of mapping sets", function()
  it("run as shown (the emulator's ids for the placeholders)", function()
    local r = aep({ "validate", "--mapping-set", SET, "-i", SAMPLES, "--dataset", ids.profile_dataset })
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find("25 records: 25 valid, 0 invalid", 1, true), r.stdout)
    r = aep({ "mapping-sets", "deploy", SET, "--dataset", ids.profile_dataset })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^created mapping set %x+ version 0 from " .. SET:gsub("%p", "%%%0") .. " %(schema ", r.stdout)
    r = aep({ "mapping-sets", "list" })
    assert.equal(0, r.status, r.stderr)
    r = aep({ "stream", "-d", fresh_dataset(), "-i", SAMPLES, "--mapping-set", SET, "--quiet" })
    assert.equal(0, r.status, r.stderr)
  end)
end)
