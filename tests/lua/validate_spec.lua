-- aep validate: the sample data (all valid, exit 0) and files holding one record per kind of
-- violation (each reported in AEP's words, exit 2), against a dataset of a started emulator and
-- against schema files (resolved, and tenant schema + field group + descriptor), --json, errors.
-- Also aep.term's colour decision.
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"
local json = require "aep.json"
local cjson = require "cjson"

local SCHEMAS = "/data/foundation/schemaregistry/tenant"

local write = files.write

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- JSON Lines of the records (a string is written as it is: a broken line)
local function jsonl(records)
  local lines = {}
  for i, r in ipairs(records) do lines[i] = type(r) == "string" and r or cjson.encode(r) end
  return table.concat(lines, "\n") .. "\n"
end

describe("aep validate", function()
  local emu, api, ids, dir, T, env
  local profiles, events = files.json("data/AEP_loyalty_profiles.json"), files.json("data/AEP_loyalty_events.json")

  setup(function()
    emu, api, ids = fixtures.start()
    T = "_" .. ids.tenant
    env = emu.env_file
    dir = run.tmpdir()
  end)

  teardown(function()
    if emu then emu.cleanup() end
    os.execute("rm -rf " .. run.quote(dir))
  end)

  local function validate(args)
    local argv = { "validate" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return run.aep(argv, { env = { NO_COLOR = "1" } })
  end

  -- entity sizes as the mappings make them (cjson text, as aep stream would send it)
  local function profile_size(rec)
    local e = copy(rec)
    e[T], e._exchangeinternal = e._exchangeinternal, nil
    return #cjson.encode(e)
  end

  local function event_entity(rec)
    local e = copy(rec)
    e[T], e._exchangeinternal = e._exchangeinternal, nil
    e._id = string.format("%d", rec._id)
    return e
  end

  local function message_size(entity, dataset_id, schema_id, org)
    local enc = require("aep.streaming_ingestion").envelope_encoder({ dataset_id = dataset_id, schema_id = schema_id, ims_org = org })
    return #enc(cjson.encode(entity))
  end

  describe("on the sample data", function()
    it("finds every profile and event valid, exit 0", function()
      local r = validate({ "--env", env, "--mapping", "mappings/loyalty_profile.lua",
                           "--input", "data/AEP_loyalty_profiles.json", "--dataset", ids.profile_dataset })
      assert.are.equal("", r.stderr)
      assert.are.equal("aep validate: 25 records: 25 valid, 0 invalid, 0 skipped " ..
        "(data/AEP_loyalty_profiles.json against dataset " .. ids.profile_dataset .. ")\n", r.stdout)
      assert.are.equal(0, r.status)
      r = validate({ "--env", env, "-m", "mappings/loyalty_event.lua",
                     "-i", "data/AEP_loyalty_events.json", "-d", ids.event_dataset })
      assert.are.equal("aep validate: 20 records: 20 valid, 0 invalid, 0 skipped " ..
        "(data/AEP_loyalty_events.json against dataset " .. ids.event_dataset .. ")\n", r.stdout)
      assert.are.equal(0, r.status)
    end)

    it("finds a dataset by name too, and says so when there is none", function()
      local s, ds = api:get("/data/foundation/catalog/dataSets/" .. ids.profile_dataset)
      assert.are.equal(200, s)
      local name = ds[ids.profile_dataset].name
      local r = validate({ "--env", env, "-m", "mappings/loyalty_profile.lua", "-i", "data/AEP_loyalty_profiles.json",
                           "--dataset", name, "-q" })
      assert.are.equal(0, r.status)
      assert.matches("^aep validate: 25 records: 25 valid,", r.stdout)
      r = validate({ "--env", env, "-i", "data/AEP_loyalty_profiles.json", "--dataset", "no-such-dataset" })
      assert.are.equal("aep: validate: dataset 'no-such-dataset' not found (give its id or its name)\n", r.stderr)
      assert.are.equal("", r.stdout)
      assert.are.equal(1, r.status)
    end)
  end)

  describe("on one record per kind of violation", function()
    local pfile, efile, big_profile, big_event, huge_event
    local profile_lines, event_lines

    setup(function()
      local base = profiles[1]
      local function p(f) local r = copy(base); f(r); return r end
      big_profile = p(function(r) r.person.name.firstName = string.rep("x", 110000) end)
      write(dir .. "/profiles.jsonl", jsonl {
        base,                                                                        -- 1 valid
        p(function(r) r.workEmail = { address = "x@example.com" } end),              -- 2 unknown field
        p(function(r) r._exchangeinternal.totalLoyaltyPoints = "12000" end),         -- 3 type
        p(function(r) r._exchangeinternal.loyaltyLevel = "Bronze" end),              -- 4 enum
        p(function(r) r._exchangeinternal.loyaltyID = "not-an-email" end),           -- 5 email format
        p(function(r) r.person.birthDate = "1980-13-45" end),                        -- 6 date format
        p(function(r) r._exchangeinternal.loyaltyID = nil end),                      -- 7 skipped by the mapping
        big_profile,                                                                 -- 8 over 100 KB
        '{"person": ',                                                               -- 9 not JSON
        p(function(r) r._exchangeinternal.loyaltyID = "x"; r._exchangeinternal.loyaltyLevel = "Tin" end), -- 10 two
      })
      pfile = dir .. "/profiles.jsonl"
      profile_lines = {
        "record 2 (line 2): #: extraneous key [workEmail] is not permitted",
        "record 3 (line 3): #/" .. T .. "/totalLoyaltyPoints: expected type: Number, found: String",
        "record 4 (line 4): #/" .. T .. "/loyaltyLevel: Bronze is not a valid enum value",
        "record 5 (line 5): #/" .. T .. "/loyaltyID: [not-an-email] is not a valid email address",
        "record 6 (line 6): #/person/birthDate: [1980-13-45] is not a valid date. Expected [yyyy-MM-dd]",
        string.format("record 8 (line 8): profile record of %d bytes exceeds Profile's 100 KB limit (102400 bytes)",
          profile_size(big_profile)),
        "record 9 (line 9): invalid JSON at line 9: Expected value but found T_END at character 12",
        "record 10 (line 10): 2 problems",
        "  #/" .. T .. "/loyaltyID: [x] is not a valid email address",
        "  #/" .. T .. "/loyaltyLevel: Tin is not a valid enum value",
      }

      local ev = events[1]
      local function e(f) local r = copy(ev); f(r); return r end
      big_event = e(function(r) r.eventType = string.rep("y", 11000) end)
      huge_event = e(function(r) r.eventType = string.rep("z", 1100000) end)
      write(dir .. "/events.jsonl", jsonl {
        ev,                                                                          -- 1 valid
        e(function(r) r.timestamp = nil end),                                        -- 2 required timestamp
        e(function(r) r.timestamp = "2018-00-10T22:07:56Z" end),                     -- 3 date-time format
        e(function(r) r._exchangeinternal.loyaltyID = nil end),                      -- 4 primary identity
        e(function(r) r._exchangeinternal.pointsEarned = 1.5 end),                   -- 5 integer
        big_event,                                                                   -- 6 over 10 KB
        huge_event,                                                                  -- 7 over 1 MB
      })
      efile = dir .. "/events.jsonl"
      local big_size = #cjson.encode(event_entity(big_event))
      local huge = event_entity(huge_event)
      event_lines = {
        "record 2 (line 2): #: required key [timestamp] not found",
        "record 3 (line 3): #/timestamp: [2018-00-10T22:07:56Z] is not a valid date-time. Expected " ..
          "[yyyy-MM-dd'T'HH:mm:ssZ, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1-9}Z, yyyy-MM-dd'T'HH:mm:ss[+-]HH:mm, " ..
          "yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,9}[+-]HH:mm]",
        "record 4 (line 4): #/" .. T .. ": required key [loyaltyID] not found",
        "record 5 (line 5): #/" .. T .. "/pointsEarned: expected type: Integer, found: Double",
        string.format("record 6 (line 6): ExperienceEvent of %d bytes exceeds Profile's 10 KB limit (10240 bytes)", big_size),
        "record 7 (line 7): 2 problems",
        string.format("  Request payload of %d bytes exceeds the limit of 1048576 bytes",
          message_size(huge, ids.event_dataset, ids.event_schema, ids.org)),
        string.format("  ExperienceEvent of %d bytes exceeds Profile's 10 KB limit (10240 bytes)", #cjson.encode(huge)),
      }
    end)

    it("reports each invalid profile with its position and AEP's words, exit 2", function()
      local r = validate({ "--env", env, "-m", "mappings/loyalty_profile.lua", "-i", pfile, "-d", ids.profile_dataset })
      assert.are.equal("", r.stderr)
      assert.are.equal(table.concat(profile_lines, "\n") .. "\n" ..
        "aep validate: 10 records: 1 valid, 8 invalid, 1 skipped (" .. pfile .. " against dataset " .. ids.profile_dataset .. ")\n",
        r.stdout)
      assert.are.equal(2, r.status)
    end)

    it("reports each invalid event, the required fields and size limits included", function()
      local r = validate({ "--env", env, "-m", "mappings/loyalty_event.lua", "-i", efile, "-d", ids.event_dataset })
      assert.are.equal("", r.stderr)
      assert.are.equal(table.concat(event_lines, "\n") .. "\n" ..
        "aep validate: 7 records: 1 valid, 6 invalid, 0 skipped (" .. efile .. " against dataset " .. ids.event_dataset .. ")\n",
        r.stdout)
      assert.are.equal(2, r.status)
    end)

    it("prints only the summary with --quiet", function()
      local r = validate({ "--env", env, "-m", "mappings/loyalty_profile.lua", "-i", pfile, "-d", ids.profile_dataset, "-q" })
      assert.are.equal("aep validate: 10 records: 1 valid, 8 invalid, 1 skipped (" .. pfile .. " against dataset " ..
        ids.profile_dataset .. ")\n", r.stdout)
      assert.are.equal(2, r.status)
    end)

    it("writes one JSON document with --json", function()
      local r = validate({ "--env", env, "-m", "mappings/loyalty_profile.lua", "-i", pfile, "-d", ids.profile_dataset, "--json" })
      assert.are.equal(2, r.status)
      assert.are.equal("", r.stderr)
      local doc = assert(json.decode(r.stdout))
      assert.are.equal(pfile, doc.input)
      assert.are.equal("mappings/loyalty_profile.lua", doc.mapping)
      assert.are.equal(ids.profile_dataset, doc.dataset_id)
      assert.are.equal(ids.profile_schema, doc.schema_id)
      assert.are.equal(json.null, doc.schema_file)
      assert.are.same({ 10, 1, 8, 1 }, { doc.records, doc.valid, doc.invalid, doc.skipped })
      local got = {}
      for _, rec in ipairs(doc.invalid_records) do
        got[#got + 1] = { rec.position, rec.line, rec.problems }
      end
      assert.are.same({
        { 2, 2, { "#: extraneous key [workEmail] is not permitted" } },
        { 3, 3, { "#/" .. T .. "/totalLoyaltyPoints: expected type: Number, found: String" } },
        { 4, 4, { "#/" .. T .. "/loyaltyLevel: Bronze is not a valid enum value" } },
        { 5, 5, { "#/" .. T .. "/loyaltyID: [not-an-email] is not a valid email address" } },
        { 6, 6, { "#/person/birthDate: [1980-13-45] is not a valid date. Expected [yyyy-MM-dd]" } },
        { 8, 8, { profile_lines[6]:match("^record 8 %(line 8%): (.*)$") } },
        { 9, 9, { "invalid JSON at line 9: Expected value but found T_END at character 12" } },
        { 10, 10, { "#/" .. T .. "/loyaltyID: [x] is not a valid email address",
                    "#/" .. T .. "/loyaltyLevel: Tin is not a valid enum value" } },
      }, got)
    end)
  end)

  describe("with --schema FILE", function()
    local full_file, bundle_file, pfile

    setup(function()
      local accept = function(a) return { headers = { Accept = a } } end
      local enc = fixtures.url_encode
      -- the schema resolved, with its descriptors (as the Schema Registry returns it)
      local s, full = api:get(SCHEMAS .. "/schemas/" .. enc(ids.profile_schema),
        accept("application/vnd.adobe.xed-full-desc+json; version=1"))
      assert.are.equal(200, s)
      full_file = dir .. "/profile-full.json"
      write(full_file, json.encode(full))
      -- the tenant schema, its field group and its descriptor, unresolved
      local s1, schema = api:get(SCHEMAS .. "/schemas/" .. enc(ids.profile_schema), accept("application/vnd.adobe.xed+json; version=1"))
      local s2, fg = api:get(SCHEMAS .. "/fieldgroups/" .. enc(ids.profile_mixin), accept("application/vnd.adobe.xed+json; version=1"))
      local s3, descs = api:get(SCHEMAS .. "/descriptors", accept("application/vnd.adobe.xdm+json"))
      assert.are.same({ 200, 200, 200 }, { s1, s2, s3 })
      local bundle = { schema, fg }
      for _, d in ipairs(descs["xdm:descriptorIdentity"]) do
        if d["xdm:sourceSchema"] == ids.profile_schema then bundle[#bundle + 1] = d end
      end
      assert.are.equal(3, #bundle)
      bundle_file = dir .. "/profile-bundle.json"
      write(bundle_file, json.encode(json.array(bundle)))
      local base = profiles[2]
      local function p(f) local r = copy(base); f(r); return r end
      pfile = dir .. "/some.jsonl"
      write(pfile, jsonl {
        base,
        p(function(r) r._exchangeinternal.loyaltyLevel = "Bronze" end),
        p(function(r) r.personalEmail.address = "nope" end),
      })
    end)

    local expected = function(file)
      return "record 2 (line 2): #/" .. T .. "/loyaltyLevel: Bronze is not a valid enum value\n" ..
        "record 3 (line 3): #/personalEmail/address: [nope] is not a valid email address\n" ..
        "aep validate: 3 records: 1 valid, 2 invalid, 0 skipped (" .. pfile .. " against schema file " .. file .. ")\n"
    end

    it("takes a resolved schema (xed-full-desc), no configuration needed", function()
      local r = validate({ "-m", "mappings/loyalty_profile.lua", "-i", pfile, "--schema", full_file })
      assert.are.equal("", r.stderr)
      assert.are.equal(expected(full_file), r.stdout)
      assert.are.equal(2, r.status)
      r = validate({ "-m", "mappings/loyalty_profile.lua", "-i", "data/AEP_loyalty_profiles.json", "--schema", full_file })
      assert.are.equal("aep validate: 25 records: 25 valid, 0 invalid, 0 skipped (data/AEP_loyalty_profiles.json " ..
        "against schema file " .. full_file .. ")\n", r.stdout)
      assert.are.equal(0, r.status)
    end)

    it("takes the tenant schema, its field groups and descriptors, resolved like the registry does", function()
      local r = validate({ "-m", "mappings/loyalty_profile.lua", "-i", pfile, "--schema", bundle_file })
      assert.are.equal("", r.stderr)
      assert.are.equal(expected(bundle_file), r.stdout)
      assert.are.equal(2, r.status)
      -- the primary identity comes from the descriptor: a mapping that drops it is caught
      local drop = dir .. "/drop.lua"
      write(drop, "return function(r, ctx) local l = r._exchangeinternal; l.loyaltyID = nil; " ..
        "return { ['_' .. ctx.tenant] = l } end\n")
      r = validate({ "-m", drop, "-i", pfile, "--schema", bundle_file, "--json" })
      local doc = assert(json.decode(r.stdout))
      assert.are.same({ "#/" .. T .. ": required key [loyaltyID] not found" }, doc.invalid_records[1].problems)
      assert.are.equal(bundle_file, doc.schema_file)
      assert.are.equal(2, r.status)
    end)

    it("says what is wrong with a schema file, exit 1", function()
      write(dir .. "/fg-only.json", json.encode(json.array { { ["meta:intendedToExtend"] = {}, title = "x" } }))
      local r = validate({ "-i", pfile, "--schema", dir .. "/fg-only.json" })
      assert.are.equal("aep: validate: " .. dir .. "/fg-only.json: no schema in the file (only field groups or descriptors)\n", r.stderr)
      assert.are.equal(1, r.status)
      r = validate({ "-i", pfile, "--schema", dir .. "/missing.json" })
      assert.are.equal("aep: validate: cannot read " .. dir .. "/missing.json: " .. dir ..
        "/missing.json: No such file or directory\n", r.stderr)
      assert.are.equal(1, r.status)
    end)
  end)

  describe("mapping outcomes and inputs", function()
    it("counts a mapping's nil as skipped and its errors as invalid, with the error", function()
      local m = dir .. "/picky.lua"
      write(m, "return function(r, ctx) if r.fail == '1' then error('no member id', 0) end " ..
        "if r.skip == '1' then return nil end return { ['_' .. ctx.tenant] = { loyaltyID = r.id } } end\n")
      write(dir .. "/in.csv", "id,fail,skip\na@example.com,,\n,1,\n,,1\n")
      local r = validate({ "--env", env, "-m", m, "-i", dir .. "/in.csv", "-d", ids.profile_dataset })
      assert.are.equal("record 2 (line 3): mapping error: no member id\n" ..
        "aep validate: 3 records: 1 valid, 1 invalid, 1 skipped (" .. dir .. "/in.csv against dataset " ..
        ids.profile_dataset .. ")\n", r.stdout)
      assert.are.equal(2, r.status)
    end)

    it("fails with exit 1 on an unreadable input or mapping", function()
      local r = validate({ "-i", dir .. "/none.jsonl", "--schema", dir .. "/x.json" })
      assert.are.equal(1, r.status)
      assert.matches("^aep: validate: .*none%.jsonl", r.stderr)
      write(dir .. "/bad.lua", "return 42\n")
      r = validate({ "-m", dir .. "/bad.lua", "-i", "data/AEP_loyalty_profiles.json", "--schema", dir .. "/x.json" })
      assert.are.equal("aep: validate: mapping " .. dir .. "/bad.lua must return a function(record, ctx) (it returned number)\n", r.stderr)
      assert.are.equal(1, r.status)
    end)
  end)
end)

describe("aep.term", function()
  local term = require "aep.term"
  local saved_getenv, saved_isatty

  before_each(function()
    saved_getenv, saved_isatty = term.getenv, term.isatty
    term.set_color(nil)
  end)
  after_each(function()
    term.getenv, term.isatty = saved_getenv, saved_isatty
  end)

  local function with(env, tty)
    term.getenv = function(k) return env[k] end
    term.isatty = function() return tty end
  end

  it("colours only a terminal, never with NO_COLOR or TERM=dumb", function()
    with({ TERM = "xterm" }, true)
    assert.are.equal("\27[1;31mbad\27[0m", term.paint(io.stdout, "bold+red", "bad"))
    with({ TERM = "xterm" }, false)
    assert.are.equal("bad", term.paint(io.stdout, "red", "bad"))
    with({ TERM = "xterm", NO_COLOR = "1" }, true)
    assert.are.equal("bad", term.paint(io.stdout, "red", "bad"))
    with({ TERM = "xterm", NO_COLOR = "" }, true)
    assert.are.equal("\27[31mbad\27[0m", term.paint(io.stdout, "red", "bad"))
    with({ TERM = "dumb" }, true)
    assert.are.equal("bad", term.paint(io.stdout, "red", "bad"))
  end)

  it("draws progress in place on a terminal and plain lines elsewhere", function()
    local out, t = {}, 0
    local p = term.progress { label = "aep validate", total = 200, tty = true, interval = 0.2,
                              out = function(s) out[#out + 1] = s end, now = function() return t end }
    t = 0.1; p:update(50, "50 records")
    assert.are.same({}, out)                       -- not before the interval
    t = 0.3; p:update(50, "50 records")
    assert.are.same({ "\r\27[Kaep validate  25% [======                  ]  50 records" }, out)
    p:finish()
    assert.are.equal("\r\27[K", out[2])
    out = {}
    p = term.progress { label = "aep validate", tty = false, interval = 10,
                        out = function(s) out[#out + 1] = s end, now = function() return t end }
    t = 10.5; p:update(7, "7 records")
    assert.are.same({ "aep validate: 7 records\n" }, out)
    p = term.progress { quiet = true, out = function(s) out[#out + 1] = s end }
    p:update(1, "x", true)
    assert.are.equal(1, #out)
  end)
end)
