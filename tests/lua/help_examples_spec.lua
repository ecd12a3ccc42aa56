-- Every command's --help examples, run as a user would: from a directory outside the
-- repository, `aep` on the PATH, a local emulator on its default data dir (after `aep run
-- realtime-import`, so DATASET_ID_PROFILE and the sample datasets exist). The examples' stand-in
-- names are given real things: the files they name are made in the directory, and the ids,
-- paths and data dirs that only an emulator run can know are replaced by that run's (SUBST).
-- A line shown after the REPL's prompt ("> try(...)") is typed into `aep repl`; an `aep emulator`
-- example is started, must say it is ready, and must stop cleanly on SIGTERM (with a home and a
-- data dir of its own: the emulator the other examples use holds the default one; on a free port
-- when it names none); `aep init`
-- examples write into a directory of their own, so no other example finds the starter project's
-- files there. An example that cannot run here would be listed in SKIP with why: none is.
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"
local newcomer = require "tests.lua.support.newcomer"
local spawn = require "tests.lua.support.spawn"
local json = require "aep.json"

local SKIP = {}

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
  local user, home, cwd, env, emu, subst = nil, nil, nil, nil, nil, {}
  setup(function()
    -- the emulator runs with the tenant of the sample files, so records.jsonl (the samples as they
    -- are) validates
    user = newcomer.start { env = { MANPAGER = "cat", PAGER = "cat" } }
    home, cwd, env, emu = user.home, user.cwd, user.env, user.emu
    -- the raw-data dataflow (with the sample mapping set) the --raw examples send through
    local r = run.aep({ "run", "raw-streaming", "-q" }, { env = env, cwd = cwd })
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
    -- the mapping set raw-streaming deployed, and a copy of it as `mapping-sets get -o` writes it
    local sets = json.decode(run.aep({ "mapping-sets", "list", "--json" }, { env = env, cwd = cwd }).stdout)
    local set_id = assert(sets[1] and sets[1].id, "no mapping set in the org")
    r = run.aep({ "mapping-sets", "get", set_id, "-o", "loyalty.mapping-set.json" }, { env = env, cwd = cwd })
    assert(r.status == 0, r.stderr)
    local manifests = io.popen("ls " .. run.quote(home .. "/.local/state/aep/runs") .. "/aep-prod-*.json"):read("l")
    subst = {
      { "5f1b0c3d2e4a", profile_ds },
      { "6a1b2c3d-0000-4000-8000-000000000000", flows.flows[1].id },
      { "79a623960d3f4969835c9e00dc90c8df", set_id },
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
    if user then user.stop() end
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
          local own = nil -- a home and working directory of the example's own
          if name == "emulator" or name == "init" then
            own = run.tmpdir()
            line = line:gsub("/tmp/aep%-emu", own .. "/data")
          end
          for _, s in ipairs(subst) do line = line:gsub(shell_quote_pattern(s[1]), (s[2]:gsub("%%", "%%%%"))) end
          local run_env, run_cwd = env, cwd
          if own then
            run_env = {}
            for k, v in pairs(env) do run_env[k] = v end
            run_env.HOME, run_env.XDG_STATE_HOME, run_env.XDG_CACHE_HOME = own, own .. "/.local/state", own .. "/.cache"
            run_cwd = own
          end
          local typed = line:match("^> (.*)$")
          if typed then
            local r = run.cmd({ "timeout", "120", "aep", "repl" }, { env = env, cwd = cwd, stdin = typed .. "\n" })
            assert.are.equal(0, r.status, line .. "\n" .. r.stderr)
            assert.are.equal("", r.stderr, line)
          elseif name == "emulator" then
            -- the default port (8080) may be held by the emulator a developer keeps running (as
            -- the README has a user start one): an example naming no port listens on a free one
            if not line:find("--port", 1, true) then line = line .. " --port 0" end
            -- exec all the way down: the pid spawn knows is the emulator's, and SIGTERM reaches it
            local child = spawn.spawn({ "bash", "-c", "cd " .. run.quote(run_cwd) .. " && exec " .. line },
              "^aep emulator: ready$", { env = run_env, stderr = own .. "/stderr.log" })
            local ok, how, code = child:stop()
            assert.are.same({ true, "exit", 0 }, { ok, how, code }, line .. "\n" .. (files.read(own .. "/stderr.log") or ""))
          else
            local r = run.cmd({ "timeout", "120", "bash", "-o", "pipefail", "-c", line }, { env = run_env, cwd = run_cwd })
            assert.are.equal(0, r.status, line .. "\n" .. r.stderr .. r.stdout:sub(1, 2000))
          end
          if own then os.execute("rm -rf " .. run.quote(own)) end
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
