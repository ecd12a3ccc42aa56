-- `aep validate --dataset`, `aep stream -d` and the REPL's try(mapping, record, dataset) take the
-- same names for a dataset (its id, its name, a run-manifest variable) and say the same thing
-- when one does not resolve, from a directory outside the repository against a local emulator
-- on its default data dir after `aep run realtime-import`.
local run = require "tests.lua.support.run"
local newcomer = require "tests.lua.support.newcomer"
local json = require "aep.json"

describe("a dataset named to validate, stream and try", function()
  local user, home, cwd, env, profile_ds, manifest
  setup(function()
    user = newcomer.start()
    home, cwd, env = user.home, user.cwd, user.env
    profile_ds = newcomer.profile_dataset(user)
    manifest = io.popen("ls " .. run.quote(home .. "/.local/state/aep/runs") .. "/aep-prod-*.json"):read("l")
    assert(manifest)
  end)
  teardown(function()
    if user then user.stop() end
  end)

  local INPUT, MAPPING = "data/AEP_loyalty_profiles.json", "mappings/loyalty_profile.lua"

  local function with(extra)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  -- the three ways, each given ref: {validate = r, stream = r, try = r}
  local function each_way(ref, extra)
    local e = with(extra)
    return {
      validate = run.aep({ "validate", "-i", INPUT, "-m", MAPPING, "--dataset", ref }, { env = e, cwd = cwd }),
      stream = run.aep({ "stream", "-q", "-i", INPUT, "-m", MAPPING, "-d", ref }, { env = e, cwd = cwd }),
      try = run.aep({ "repl" }, { env = e, cwd = cwd,
        stdin = string.format("try(%q, records(%q)[1], %q)\n", MAPPING, INPUT, ref) }),
    }
  end

  for _, case in ipairs({ { "its id" }, { "its name", "aep Loyalty Profiles" }, { "a run-manifest variable", "DATASET_ID_PROFILE" } }) do
    it("finds it by " .. case[1], function()
      local r = each_way(case[2] or profile_ds)
      assert.are.equal("", r.validate.stderr)
      assert.are.equal(0, r.validate.status)
      assert.matches("^aep validate: 25 records: 25 valid, 0 invalid, 0 skipped %(" .. INPUT:gsub("%p", "%%%0") ..
        " against dataset " .. profile_ds .. "%)\n$", r.validate.stdout)
      assert.are.equal("", r.stream.stderr)
      assert.are.equal(0, r.stream.status)
      assert.matches("^aep stream: 25 records from " .. INPUT:gsub("%p", "%%%0") .. " to dataset " .. profile_ds ..
        " in ", r.stream.stdout)
      assert.are.equal("", r.try.stderr)
      assert.matches("\nvalid: profile entity of 348 bytes for dataset " .. profile_ds .. "\n", r.try.stdout)
    end)
  end

  local function assert_same_error(r, message)
    assert.are.equal(1, r.validate.status)
    assert.are.equal("aep: validate: " .. message .. "\n", r.validate.stderr)
    assert.are.equal(1, r.stream.status)
    assert.are.equal("aep: stream: " .. message .. "\n", r.stream.stderr)
    assert.are.equal(message .. "\n", r.try.stderr)
  end

  it("lists the close matches of a name a little off", function()
    assert_same_error(each_way("Loyalty Profiles"),
      "dataset 'Loyalty Profiles' not found (give its id or its name); close matches: aep Loyalty Profiles")
  end)

  it("names the run manifest and its datasets for a variable it does not hold", function()
    assert_same_error(each_way("DATASET_ID_PROFILES"),
      "dataset 'DATASET_ID_PROFILES' not found (give its id or its name); the run manifest " .. manifest ..
      " has no DATASET_ID_PROFILES (its datasets: DATASET_ID_EVENT, DATASET_ID_PROFILE)")
  end)

  it("says which run manifest is missing for another run name", function()
    local other = manifest:gsub("/aep%-prod%-", "/demo2-prod-")
    assert_same_error(each_way("DATASET_ID_PROFILE", { AEP_RUN_NAME = "demo2" }),
      "dataset 'DATASET_ID_PROFILE' not found (give its id or its name); no run manifest " .. other ..
      " holds DATASET_ID_PROFILE (`aep run realtime-import` writes it; for another run name give --run-name NAME" ..
      " or set AEP_RUN_NAME)")
    -- validate takes --run-name and --manifest as stream does
    local r = run.aep({ "validate", "-i", INPUT, "-m", MAPPING, "-d", "DATASET_ID_PROFILE", "--run-name", "demo2" },
      { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.matches("no run manifest " .. other:gsub("%p", "%%%0") .. " holds DATASET_ID_PROFILE", r.stderr)
    r = run.aep({ "validate", "-i", INPUT, "-m", MAPPING, "-d", "DATASET_ID_PROFILE", "--manifest", manifest },
      { env = with({ AEP_RUN_NAME = "demo2" }), cwd = cwd })
    assert.are.equal("", r.stderr)
    assert.are.equal(0, r.status)
  end)

  it("says which variable pointed at a dataset that is gone", function()
    -- a manifest of its own, whose variable names a dataset the emulator does not hold
    local f = assert(io.open(manifest)); local doc = json.decode(f:read("a")); f:close()
    doc.variables.DATASET_ID_PROFILE = "0123456789abcdef01234567"
    for _, res in ipairs(doc.resources) do
      if res.var == "DATASET_ID_PROFILE" then res.id = "0123456789abcdef01234567" end
    end
    local stale = manifest:gsub("/aep%-prod%-", "/stale-prod-")
    f = assert(io.open(stale, "w")); f:write(json.encode(doc)); f:close()
    assert_same_error(each_way("DATASET_ID_PROFILE", { AEP_RUN_NAME = "stale" }),
      "dataset '0123456789abcdef01234567' (DATASET_ID_PROFILE of the run manifest " .. stale ..
      ") not found (give its id or its name)")
  end)
end)
