-- Every command's --help examples, run as a user would: from a directory outside the
-- repository, `aep` on the PATH, a local emulator on its default data dir (after `aep run
-- realtime-import`, so DATASET_ID_PROFILE and the sample datasets exist). The examples' stand-in
-- names are given real things: the files they name are made in the directory, and the ids,
-- paths and data dirs that only an emulator run can know are replaced by that run's (SUBST).
-- The ones that cannot run here are in SKIP, each with why.
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"
local emulator = require "tests.lua.support.emulator"
local json = require "aep.json"

local SKIP = {
  ["aep emulator --port 0 --data-dir /tmp/aep-emu"] = "serves until stopped (emulator specs start it)",
  ["aep emulator --tenant exchangeinternal --seed 7 --faults 'streaming:503=0.05'"] = "serves until stopped, on the default port",
  ["aep emulator --port 0 --data-dir /tmp/aep-emu --batch-window 60 --validation-delay 5"] = "serves until stopped",
  ["> help()"] = "a line typed in the REPL, not a command (the REPL specs run help())",
  ['> try("mappings/loyalty_profile.lua", records("data/AEP_loyalty_profiles.json")[1], DATASET_ID)'] =
    "a line typed in the REPL, not a command; DATASET_ID is not defined there (REPL examples are another change)",
  ["aep run lookup --set PROFILE_ID=jdoe@example.com"] =
    "looks up a person the samples do not hold: waits for Profile up to 15 minutes (lookup progress is another change)",
  ["aep validate -i rejects.jsonl --dataset \"Loyalty Profiles\" --json | jq '.invalid_records'"] =
    "the workflow names the dataset 'aep Loyalty Profiles' (documented names are another change)",
}

-- examples(usage) -> the lines after "Examples:", continuation lines joined, the trailing
-- "(what it does)" remark dropped
local function examples(usage)
  local block = usage:match("\nExamples:\n(.*)$") or ""
  local out, pending = {}, nil
  for line in block:gmatch("[^\n]+") do
    local text = line:gsub("^%s+", "")
    if pending then text = pending .. " " .. text; pending = nil end
    if text:match("\\$") then
      pending = text:gsub("%s*\\$", "")
    else
      text = text:gsub("%s%s%s+%(.-%)$", "")
      out[#out + 1] = text
    end
  end
  return out
end

local function commands()
  local r = run.aep({ "help" })
  local names = {}
  for name in r.stdout:gmatch("\n  ([a-z][a-z-]*)  ") do names[#names + 1] = name end
  return names
end

local function shell_quote_pattern(s) return (s:gsub("%p", "%%%0")) end

describe("every --help example", function()
  local home, cwd, env, emu, subst = nil, nil, nil, nil, {}
  setup(function()
    home, cwd = run.tmpdir(), run.tmpdir()
    local bin = home .. "/bin"
    assert(os.execute("mkdir -p " .. run.quote(bin) .. " " .. run.quote(home .. "/.local/state/aep/emulator") ..
      " && ln -s " .. run.quote(run.bin) .. " " .. run.quote(bin .. "/aep")))
    env = { HOME = home, XDG_STATE_HOME = home .. "/.local/state", XDG_CACHE_HOME = home .. "/.cache",
            AEP_ENV = "", NO_COLOR = "1", PATH = bin .. ":/usr/bin:/bin", MANPAGER = "cat", PAGER = "cat" }
    -- the tenant of the sample files, so records.jsonl (the samples as they are) validates
    emu = emulator.start({ "--profile-lag", "0", "--tenant", "exchangeinternal" },
      { data_dir = home .. "/.local/state/aep/emulator" })
    local r = run.aep({ "run", "realtime-import", "-q" }, { env = env, cwd = cwd })
    assert(r.status == 0, r.stderr)
    -- the raw-data dataflow (with the sample mapping set) the --raw examples send through
    r = run.aep({ "run", "raw-streaming", "-q" }, { env = env, cwd = cwd })
    assert(r.status == 0, r.stderr)
    -- the files the examples name
    local envtext = files.read(emu.env_file)
    files.write(cwd .. "/env.json", envtext)
    files.write(cwd .. "/my-org.postman_environment.json", envtext)
    os.execute("chmod 600 " .. run.quote(cwd .. "/env.json") .. " " .. run.quote(cwd .. "/my-org.postman_environment.json"))
    local profiles = files.json("data/AEP_loyalty_profiles.json")
    local jl = {}
    for _, p in ipairs(profiles) do jl[#jl + 1] = json.encode(p) end
    files.write(cwd .. "/records.jsonl", table.concat(jl, "\n") .. "\n")
    files.write(cwd .. "/big.jsonl", table.concat(jl, "\n") .. "\n")
    local events = files.json("data/AEP_loyalty_events.json")
    local el = {}
    for _, e in ipairs(events) do el[#el + 1] = json.encode(e) end
    files.write(cwd .. "/events.jsonl", table.concat(el, "\n") .. "\n")
    assert(os.execute("cd " .. run.quote(cwd) .. " && gzip big.jsonl events.jsonl"))
    files.write(cwd .. "/my_mapping.lua", files.read("mappings/loyalty_profile.lua"))
    files.write(cwd .. "/rejects.jsonl", "")
    -- an upsert: one sample person's record as sent raw, for the mapping set to map
    files.write(cwd .. "/changes.jsonl", json.encode(profiles[1]) .. "\n")
    -- the ids and paths only this emulator run knows
    local ds = json.decode(run.aep({ "datasets", "--json" }, { env = env, cwd = cwd }).stdout)
    local schemas = json.decode(run.aep({ "schemas", "--json" }, { env = env, cwd = cwd }).stdout)
    local flows = json.decode(run.aep({ "flows", "--json" }, { env = env, cwd = cwd }).stdout)
    local profile_ds, events_schema
    for _, d in ipairs(ds) do if d.name == "aep Loyalty Profiles" then profile_ds = d.id end end
    for _, s in ipairs(schemas) do if s.title == "aep Loyalty Events" then events_schema = s.id end end
    local manifests = io.popen("ls " .. run.quote(home .. "/.local/state/aep/runs") .. "/aep-prod-*.json"):read("l")
    subst = {
      { "5f1b0c3d2e4a", profile_ds },
      { "6a1b2c3d-0000-4000-8000-000000000000", flows.flows[1].id },
      { "/tmp/aep-emu", home .. "/.local/state/aep/emulator" },
      { "~/.local/state/aep/runs/aep-prod-ORG.json", manifests },
    }
    -- --schema takes a schema file: the events schema as the registry resolves it
    local script = files.write(home .. "/get_schema.lua", [[
      local platform = require "aep.platform"
      local c = platform.new(require("aep.config").load_default({}))
      io.write(c:get("/data/foundation/schemaregistry/tenant/schemas/" .. platform.urlencode(arg[1]),
        { accept = "application/vnd.adobe.xed-full+json; version=1" }).body)]])
    local r2 = run.cmd({ "sh", "-c", "aep " .. run.quote(script) .. " " .. run.quote(events_schema) .. " > loyalty-events.json" },
      { env = env, cwd = cwd })
    assert(r2.status == 0, r2.stderr)
  end)
  teardown(function()
    if emu then emu.stop() end
    os.execute("rm -rf " .. run.quote(home) .. " " .. run.quote(cwd))
  end)

  local skipped = {}
  for _, name in ipairs(commands()) do
    local usage = run.aep({ "help", name }).stdout
    for _, ex in ipairs(examples(usage)) do
      if SKIP[ex] then
        skipped[#skipped + 1] = ex
      else
        it(name .. ": " .. ex, function()
          local line = ex
          for _, s in ipairs(subst) do line = line:gsub(shell_quote_pattern(s[1]), (s[2]:gsub("%%", "%%%%"))) end
          local r = run.cmd({ "timeout", "120", "bash", "-o", "pipefail", "-c", line }, { env = env, cwd = cwd })
          assert.are.equal(0, r.status, line .. "\n" .. r.stderr .. r.stdout:sub(1, 2000))
        end)
      end
    end
  end

  it("skips only the examples listed in SKIP, each with a reason", function()
    local listed = 0
    for _ in pairs(SKIP) do listed = listed + 1 end
    assert.are.equal(listed, #skipped)
  end)
end)
