-- A newcomer's path, from the user's side, in a directory outside the repository: the built-in
-- samples and mappings by name, `aep init`, every command finding the default local emulator,
-- `aep schemas` / `aep datasets` / `aep flows`, `aep version` and `-V`.
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"
local emulator = require "tests.lua.support.emulator"
local json = require "aep.json"

-- A home of its own: the default emulator data dir, the run manifests and the built-in cache
-- live under it, and nothing from the machine's environment configures aep.
local function user_env(home)
  return { HOME = home, XDG_STATE_HOME = home .. "/.local/state", XDG_CACHE_HOME = home .. "/.cache",
           AEP_ENV = "", NO_COLOR = "1" }
end

local FIX = "configure with --env FILE (a Postman environment from Adobe's Developer Console, or a " ..
  "local emulator's data dir), flags or AEP_* variables; or start a local emulator with " ..
  "`aep emulator` (every command finds it on its default data dir, ~/.local/state/aep/emulator)"

local function lines_of(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("aep version", function()
  it("prints what --version prints, as do -V and -v", function()
    local want = run.aep({ "--version" })
    assert.are.equal(0, want.status)
    assert.matches("^aep %d+%.%d+%.%d+\nLua 5%.4", want.stdout)
    for _, args in ipairs({ { "version" }, { "-V" }, { "-v" } }) do
      local r = run.aep(args)
      assert.are.equal(0, r.status, table.concat(args, " "))
      assert.are.equal("", r.stderr)
      -- the first three lines are compile-time strings in both; OpenSSL's may differ in text
      local a, b = lines_of(r.stdout), lines_of(want.stdout)
      assert.are.same({ b[1], b[2], b[3] }, { a[1], a[2], a[3] })
      assert.are.equal(4, #a)
    end
    local r = run.aep({ "version", "--json" })
    assert.are.equal(0, r.status)
    local v = json.decode(r.stdout)
    assert.are.equal(lines_of(want.stdout)[1], "aep " .. v.aep)
    assert.are.equal("Lua 5.4", v.lua:sub(1, 7))
  end)
end)

describe("outside the repository, with no emulator running", function()
  local home, cwd, env
  setup(function()
    home, cwd = run.tmpdir(), run.tmpdir()
    env = user_env(home)
  end)
  teardown(function() os.execute("rm -rf " .. run.quote(home) .. " " .. run.quote(cwd)) end)

  it("reads the built-in sample and mapping by the README's names", function()
    local schema = files.write(cwd .. "/schema.json", json.encode({
      ["$id"] = "https://ns.adobe.com/acme/schemas/p", title = "p", type = "object",
      ["meta:class"] = "https://ns.adobe.com/xdm/context/profile",
      properties = { _acme = { type = "object", properties = { loyaltyID = { type = "string" } } } },
    }))
    local r = run.aep({ "validate", "--input", "data/AEP_loyalty_profiles.json", "--mapping", "mappings/loyalty_profile.lua",
      "--schema", schema }, { env = env, cwd = cwd })
    assert.are.equal("", r.stderr)
    assert.matches("aep validate: 25 records: ", r.stdout)
  end)

  it("names the built-ins when neither a file nor a built-in has the name", function()
    local r = run.aep({ "validate", "--input", "data/AEP_loyalty_profile.json", "--schema", "s.json" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.are.equal("aep: validate: cannot open data/AEP_loyalty_profile.json: No such file or directory, and no " ..
      "built-in sample of that name (built-in: data/AEP_loyalty_events.json, data/AEP_loyalty_profiles.json, " ..
      "mappings/loyalty_event.lua, " ..
      "mappings/loyalty_profile.lua, mappings/loyalty_profile.mapping-set.json)\n", r.stderr)
  end)

  it("says how to configure when nothing is configured", function()
    local r = run.aep({ "validate", "--input", "data/AEP_loyalty_profiles.json", "--dataset", "DATASET_ID_PROFILE" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("incomplete configuration for OAuth authentication; missing:\n", 1, true), r.stderr)
    assert.truthy(r.stderr:find("\n" .. FIX .. "\n", 1, true), r.stderr)
    r = run.aep({ "stream", "-d", "DATASET_ID_PROFILE", "-i", "data/AEP_loyalty_profiles.json" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.are.equal("aep: stream: CONFIG: no PLATFORM_GATEWAY configured: " .. FIX .. "\n", r.stderr)
    r = run.aep({ "status", "-d", "DATASET_ID_PROFILE" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("\n" .. FIX .. "\n", 1, true), r.stderr)
    r = run.aep({ "datasets" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("\n" .. FIX .. "\n", 1, true), r.stderr)
    r = run.aep({ "config" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status)
    assert.truthy(r.stdout:find("\nnothing is configured and no local emulator runs on " .. home ..
      "/.local/state/aep/emulator: `aep run` will start one; the other commands need `aep emulator` running, or --env FILE\n", 1, true), r.stdout)
  end)

  it("aep init writes a starter project and never overwrites one", function()
    local r = run.aep({ "init", "proj" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(table.concat({
      "wrote proj/data/AEP_loyalty_profiles.json", "wrote proj/data/AEP_loyalty_events.json",
      "wrote proj/mappings/loyalty_profile.lua", "wrote proj/mappings/loyalty_event.lua",
      "wrote proj/mappings/loyalty_profile.mapping-set.json", "wrote proj/environment.postman_environment.json",
      "wrote proj/README.md", "starter project in proj: next steps in proj/README.md" }, "\n") .. "\n", r.stdout)
    for _, name in ipairs({ "data/AEP_loyalty_profiles.json", "mappings/loyalty_profile.lua", "mappings/loyalty_profile.mapping-set.json" }) do
      assert.are.equal(files.read(name), files.read(cwd .. "/proj/" .. name), name)
    end
    local envf = cwd .. "/proj/environment.postman_environment.json"
    local vars = {}
    for _, v in ipairs(files.json(envf).values) do vars[v.key] = v.value end
    assert.are.same({ IMS = "ims-na1.adobelogin.com", IMS_ORG = "", API_KEY = "", CLIENT_SECRET = "",
      TECHNICAL_ACCOUNT_ID = "", META_SCOPE = "ent_dataservices_sdk", PRIVATE_KEY = "",
      PLATFORM_GATEWAY = "https://platform.adobe.io", SANDBOX_NAME = "prod" }, vars)
    assert.are.equal(tonumber("600", 8), require("aep.host").stat(envf).mode & tonumber("777", 8))
    r = run.aep({ "init", "proj" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.are.equal("aep: proj already holds data/AEP_loyalty_profiles.json, data/AEP_loyalty_events.json, " ..
      "mappings/loyalty_profile.lua, mappings/loyalty_event.lua, mappings/loyalty_profile.mapping-set.json, " ..
      "environment.postman_environment.json, README.md (--force overwrites them)\n", r.stderr)
  end)
end)

describe("with `aep emulator` running on its default data dir", function()
  local home, cwd, env, emu
  setup(function()
    home, cwd = run.tmpdir(), run.tmpdir()
    env = user_env(home)
    assert(os.execute("mkdir -p " .. run.quote(home .. "/.local/state/aep/emulator")))
    emu = emulator.start({ "--profile-lag", "0" }, { data_dir = home .. "/.local/state/aep/emulator" })
    local r = run.aep({ "run", "realtime-import", "-q" }, { env = env, cwd = cwd })
    assert(r.status == 0, r.stderr)
  end)
  teardown(function()
    if emu then emu.stop() end
    os.execute("rm -rf " .. run.quote(home) .. " " .. run.quote(cwd))
  end)

  it("aep config shows it and takes its settings", function()
    local r = run.aep({ "config" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status)
    assert.truthy(r.stdout:find("^local emulator: " .. emu.url:gsub("%p", "%%%0") .. " %(data dir " .. home:gsub("%p", "%%%0")), r.stdout)
    assert.truthy(r.stdout:find("\nPLATFORM_GATEWAY%s+" .. emu.url:gsub("%p", "%%%0") .. "%s+emulator "), r.stdout)
    local j = json.decode(run.aep({ "config", "--json" }, { env = env, cwd = cwd }).stdout)
    assert.are.equal(emu.url, j.local_emulator.url)
  end)

  it("aep validate and aep stream find it, with the README's names and DATASET_ID_PROFILE", function()
    local args = { "--input", "data/AEP_loyalty_profiles.json", "--mapping", "mappings/loyalty_profile.lua", "--dataset", "DATASET_ID_PROFILE" }
    local r = run.aep({ "validate", table.unpack(args) }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("aep validate: 25 records: 25 valid, 0 invalid, 0 skipped %(data/AEP_loyalty_profiles.json against dataset %x+%)", r.stdout)
    r = run.aep({ "stream", table.unpack(args) }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find("accepted 25   rejected 0   skipped 0   failed 0", 1, true), r.stdout)
  end)

  it("aep datasets lists them, shows one by variable and names close matches", function()
    local r = run.aep({ "datasets", "--json" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    local list = json.decode(r.stdout)
    local names = {}
    for _, d in ipairs(list) do names[#names + 1] = d.name; assert.is_true(d.profile) end
    assert.are.same({ "aep Loyalty Events", "aep Loyalty Profiles" }, names)
    r = run.aep({ "datasets" }, { env = env, cwd = cwd })
    assert.matches("^NAME                  PROFILE  SCHEMA  +ID\naep Loyalty Events    yes      https://", r.stdout)
    r = run.aep({ "datasets", "DATASET_ID_PROFILE", "--json" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    local d = json.decode(r.stdout)
    assert.are.equal("aep Loyalty Profiles", d.name)
    assert.are.equal(list[2].id, d.id)
    assert.is_true(d.profile)
    assert.is_true(d.identity)
    assert.are.equal(0, d.failed_records)
    assert.truthy(d.batches >= 1 and d.records >= 25, r.stdout)
    r = run.aep({ "datasets", "Loyalty Profiles" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.are.equal("aep: dataset 'Loyalty Profiles' not found (give its id or its name); close matches: aep Loyalty Profiles\n", r.stderr)
    r = run.aep({ "status", "--dataset", "Loyalty Profiles" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.are.equal("aep: status: dataset 'Loyalty Profiles' not found (give its id or its name); close matches: aep Loyalty Profiles\n", r.stderr)
    r = run.aep({ "status", "--dataset", "DATASET_ID_PROFILE", "--json" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(d.id, json.decode(r.stdout).dataset.id)
    r = run.aep({ "validate", "-i", "data/AEP_loyalty_profiles.json", "--dataset", "Loyalty Events" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.are.equal("aep: validate: dataset 'Loyalty Events' not found (give its id or its name); close matches: aep Loyalty Events\n", r.stderr)
  end)

  it("aep schemas lists them and shows one as a tree with its identity", function()
    local r = run.aep({ "schemas" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^TITLE                 CLASS            PROFILE  ID\naep Loyalty Events    experienceevent  yes      https://", r.stdout)
    r = run.aep({ "schemas", "aep Loyalty Profiles" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^aep Loyalty Profiles %(https://ns%.adobe%.com/[%w_]+/schemas/%x+, class profile, Profile enabled%)\n", r.stdout)
    assert.matches("\n_[%w]+/\n  loyaltyID +string%(email%)  required  identity Email %(primary%)\n  loyaltyLevel +string  enum Silver|Gold|Platinum|Diamond\n", r.stdout)
    local j = json.decode(run.aep({ "schemas", "aep Loyalty Profiles", "--json" }, { env = env, cwd = cwd }).stdout)
    local id_field
    for _, f in ipairs(j.fields) do if f.identity ~= json.null and f.identity then id_field = f end end
    assert.matches("^/_[%w]+/loyaltyID$", id_field.path)
    assert.are.same({ namespace = "Email", primary = true }, id_field.identity)
    r = run.aep({ "schemas", "Loyalty" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.are.equal("aep: schema 'Loyalty' not found (give its $id, meta:altId or title); close matches: aep Loyalty Events, aep Loyalty Profiles\n", r.stderr)
  end)

  it("aep flows lists the connection and the dataflow of each dataset", function()
    local datasets = json.decode(run.aep({ "datasets", "--json" }, { env = env, cwd = cwd }).stdout)
    local r = run.aep({ "flows", "--json" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    local j = json.decode(r.stdout)
    local written, seen = {}, {}
    for _, f in ipairs(j.flows) do
      if not seen[f.dataset] then seen[f.dataset] = true; written[#written + 1] = f.dataset end
    end
    table.sort(written)
    local want = { datasets[1].id, datasets[2].id }
    table.sort(want)
    assert.are.same(want, written)
    assert.matches("^" .. emu.url:gsub("%p", "%%%0") .. "/collection/", j.connections[1].inlet_url)
    r = run.aep({ "flows", j.flows[1].id }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status)
    assert.are.equal(j.flows[1].id, json.decode(r.stdout).id)
    r = run.aep({ "flows", "no-such-id" }, { env = env, cwd = cwd })
    assert.are.equal(1, r.status)
    assert.are.equal("aep: no dataflow or connection has id 'no-such-id' (`aep flows` lists them)\n", r.stderr)
  end)

  it("the starter project's README runs as shown", function()
    local r = run.aep({ "init", "proj" }, { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    local readme = files.read(cwd .. "/proj/README.md")
    -- `aep` on the PATH is the binary under test
    local bin = home .. "/bin"
    assert(os.execute("mkdir -p " .. run.quote(bin) .. " && ln -sf " .. run.quote(run.bin) .. " " .. run.quote(bin .. "/aep")))
    local path_env = {}
    for k, v in pairs(env) do path_env[k] = v end
    path_env.PATH = bin .. ":/usr/bin:/bin"
    local n = 0
    for line in readme:gmatch("\n    (aep [^\n]+)") do
      if line ~= "aep emulator" then -- it is running: the commands below use it
        n = n + 1
        local r2 = run.cmd({ "sh", "-c", line }, { env = path_env, cwd = cwd .. "/proj" })
        assert.are.equal(0, r2.status, line .. "\n" .. r2.stderr)
      end
    end
    assert.are.equal(6, n)
  end)
end)
