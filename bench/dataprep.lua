-- bench/dataprep.lua: how fast the Data Prep engine (aep.dataprep) maps records, on one core,
-- and whether its memory grows with the input (the Data Prep target: >= 50,000 records/s for a
-- 20-field mapping set with a few functions; no growth of memory with input size).
--
--   aep bench/dataprep.lua [--n 200000] [--runs 3] [--memory-n 10000,1000000] [--results FILE]
--
-- `./dev bench` (bench/run.sh, step 3) runs it with --results bench/RESULTS.md: the figures
-- replace the file's "Data Prep" section (between the dataprep markers; appended when the file
-- has none), leaving the rest of the file as it was.
--
-- In one run, on records shaped like data/AEP_loyalty_profiles.json (the generator of
-- bench/gen.lua, deterministic) and the collection's loyalty Profile schema resolved by aep.xdm
-- (so every value is converted to its field's type):
--   1. compiles the 20-mapping set below once (10 ATTRIBUTE, 6 EXPRESSION, 4 STATIC);
--   2. "engine": maps N decoded records with compiled:map, cycling through 256 of them so they
--      stay in the CPU's caches as a record just decoded by a stream does (N maps of N distinct
--      pre-decoded records would time cache misses on a heap of N records instead);
--   3. "line to entity": decodes each JSON line, maps it and encodes the entity (what a stream
--      does per record), on N distinct lines;
--   4. baseline, same run: step 3 with the collection's Lua mapping (mappings/loyalty_profile.lua,
--      a pass-through with the tenant key renamed) instead of the mapping set;
-- Every figure is records per CPU-second of this process (os.clock: the "one core" figure, robust
-- to a busy machine) and records per wall-clock second; the medians of --runs runs count.
--   5. memory: a child process maps each --memory-n count of generated records one at a time and
--      reports its peak RSS (VmHWM) and its Lua heap after a full collection.
local host = require "aep.host"
local json = require "aep.json"
local cjson = require "cjson"
local dataprep = require "aep.dataprep"
local xdm = require "aep.xdm"

local ROOT = (arg[0]:match("^(.*)/bench/[^/]*$")) or "."

local function opt(name, default)
  for i = 1, #arg do if arg[i] == "--" .. name then return arg[i + 1] end end
  return default
end

local N = math.tointeger(tonumber(opt("n", "200000")))
local RUNS = math.tointeger(tonumber(opt("runs", "3")))
local MEMORY_N = opt("memory-n", "10000,1000000")
local RESULTS = opt("results", nil)
local CHILD = opt("child-memory", nil)
local AEP = os.getenv("AEP") or host.executable()
local TARGET = 50000

local function read(p)
  local f = assert(io.open(ROOT .. "/" .. p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function loyalty_schema()
  local vars = { TENANT_ID = "exchangeinternal", UNIQUE_ID = "" }
  local function fixture(name)
    return cjson.decode((read("tests/fixtures/xdm/" .. name):gsub("{{([%w_]+)}}", function(k) return vars[k] end)))
  end
  local pm = fixture("loyalty_profile_mixin.json")
  pm["$id"] = "https://ns.adobe.com/exchangeinternal/mixins/loyalty"
  vars.MIXIN_ID_PROFILE = pm["$id"]
  return assert(xdm.resolve(fixture("loyalty_profile_schema.json"), function(id)
    if id == pm["$id"] then return pm end
  end))
end

local function A(s, d) return { sourceType = "ATTRIBUTE", source = s, destination = d } end
local function E(s, d) return { sourceType = "EXPRESSION", source = s, destination = d } end
local function S(s, d) return { sourceType = "STATIC", source = s, destination = d } end
local MAPPING_SET = { xdmSchema = "https://ns.adobe.com/exchangeinternal/schemas/loyalty-profiles", xdmVersion = "1.0",
  mappings = {
    A("_exchangeinternal.loyaltyID", "_exchangeinternal.loyaltyID"),
    A("_exchangeinternal.totalLoyaltyPoints", "_exchangeinternal.totalLoyaltyPoints"),
    A("_exchangeinternal.loyaltyLevel", "_exchangeinternal.loyaltyLevel"),
    E("trim(person.name.firstName)", "person.name.firstName"),
    A("person.name.lastName", "person.name.lastName"),
    A("person.name.middleName", "person.name.middleName"),
    E('concat(person.name.firstName, " ", person.name.lastName)', "person.name.fullName"),
    A("person.birthDate", "person.birthDate"),
    E('date_part("year", date(person.birthDate, "yyyy-MM-dd"))', "person.birthYear"),
    E('iif(person.gender == "male", "male", "female")', "person.gender"),
    A("personalEmail.address", "personalEmail.address"),
    A("personalEmail.primary", "personalEmail.primary"),
    A("personalEmail.type", "personalEmail.type"),
    A("personalEmail.status", "personalEmail.status"),
    E("lower(personalEmail.address)", "identityMap.Email[0].id"),
    S(true, "identityMap.Email[0].primary"),
    S("ambiguous", "identityMap.Email[0].authenticatedState"),
    E("sha256(personalEmail.address)", "homeAddress.label"),
    S("active", "homeAddress.status"),
    S("San Jose", "homeAddress.city"),
  } }

-- the records of bench/gen.lua, one JSON line each
local levels = { "Silver", "Gold", "Platinum", "Diamond" }
local first = { "Timi", "Alexia", "Dorree", "Nisse", "Jan", "Maria", "Kofi", "Ana", "Li", "Sven" }
local last = { "Scrowby", "O'Dowling", "Corse", "Klug", "Coneley", "Silva", "Mensah", "Lopez", "Wei", "Berg" }
local domains = { "chicagotribune.com", "examiner.com", "youtu.be", "elpais.com", "t-online.de" }
local function line(i)
  local fi, la = first[i % 10 + 1], last[(i // 10) % 10 + 1]
  local email = string.format("%s.%s%d@%s", fi:lower(), la:lower():gsub("'", ""), i, domains[i % 5 + 1])
  return string.format(
    '{"_exchangeinternal":{"loyaltyID":"%s","totalLoyaltyPoints":%d,"loyaltyLevel":"%s"},' ..
    '"person":{"name":{"firstName":"%s","lastName":"%s","middleName":""},"birthDate":"19%02d-%02d-%02d","gender":"%s"},' ..
    '"personalEmail":{"primary":%s,"address":"%s","type":"personal","status":"active"}}',
    email, (i * 7919) % 500000, levels[i % 4 + 1], fi, la:gsub("'", "\\u0027"), 40 + i % 60, 1 + i % 12, 1 + i % 28,
    i % 2 == 0 and "male" or "female", i % 3 == 0 and "true" or "false", email)
end

local schema = loyalty_schema()
local compiled = assert(dataprep.compile(MAPPING_SET, { schema = schema }))

if CHILD then -- memory child: map CHILD records one at a time, report the peak RSS and the heap
  local n = math.tointeger(tonumber(CHILD))
  local failures = 0
  for i = 1, n do
    local entity, errors = compiled:map(json.decode(line(i)))
    if errors then failures = failures + 1 end
    json.encode(entity)
  end
  collectgarbage()
  local hwm = io.open("/proc/self/status"):read("a"):match("VmHWM:%s*(%d+) kB")
  io.stdout:write(string.format("%d %d %.0f\n", failures, tonumber(hwm), collectgarbage("count")))
  return
end

local function median(t)
  local s = { table.unpack(t) }
  table.sort(s)
  return s[(#s + 1) // 2]
end
local function fmt_int(n)
  local s = string.format("%d", math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end
local function capture(cmd)
  local p = io.popen(cmd)
  local s = p:read("a"):gsub("%s+$", "")
  p:close()
  return s
end

-- sanity: the first sample maps cleanly and validates against the schema
do
  local entity, errors = compiled:map(json.decode(line(1)))
  assert(errors == nil, errors and errors[1].exception)
  local validator = xdm.compile(schema)
  local ok, problems = validator(entity)
  assert(ok ~= false and (problems == nil or #problems == 0), "the mapped sample is not valid XDM: " .. json.encode(problems or {}))
end

local load0 = capture("cat /proc/loadavg")

io.stdout:write(string.format("aep dataprep bench: %d records per run, %d mappings, %d runs\n", N, #MAPPING_SET.mappings, RUNS))
local engine, pipeline, baseline, wall, failures = {}, {}, {}, {}, 0
local lua_mapping = dofile(ROOT .. "/mappings/loyalty_profile.lua")
local ctx = { tenant = "exchangeinternal" }
local POOL = 256
-- the engine first, with nothing else in memory (as in a stream, which holds a batch at most)
for run = 1, RUNS do
  local pool = {}
  for i = 1, POOL do pool[i] = json.decode(line((run - 1) * POOL + i)) end
  collectgarbage()
  local w0, t0 = host.monotonic(), os.clock()
  for i = 1, N do
    local _, errors = compiled:map(pool[i % POOL + 1])
    if errors then failures = failures + 1 end
  end
  engine[run], wall[run] = N / (os.clock() - t0), N / (host.monotonic() - w0)
end
local lines = {}
for i = 1, N do lines[i] = line(i) end
for run = 1, RUNS do
  collectgarbage()
  local t0 = os.clock()
  for i = 1, N do json.encode((compiled:map(json.decode(lines[i])))) end
  pipeline[run] = N / (os.clock() - t0)
  collectgarbage()
  t0 = os.clock()
  for i = 1, N do json.encode(lua_mapping(json.decode(lines[i]), ctx)) end
  baseline[run] = N / (os.clock() - t0)
  io.stdout:write(string.format("  run %d: engine %s records/CPU-s (%s wall); line to entity %s records/CPU-s; Lua mapping %s records/CPU-s\n",
    run, fmt_int(engine[run]), fmt_int(wall[run]), fmt_int(pipeline[run]), fmt_int(baseline[run])))
end
assert(failures == 0, failures .. " records had transformation errors")

local memory = {}
for n in MEMORY_N:gmatch("%d+") do
  local out = capture(string.format("%q %q --child-memory %s", AEP, ROOT .. "/bench/dataprep.lua", n))
  local f, hwm, heap = out:match("^(%d+) (%d+) (%d+)$")
  assert(f, "memory child failed: " .. out)
  memory[#memory + 1] = { n = tonumber(n), failures = tonumber(f), hwm = tonumber(hwm), heap = tonumber(heap) }
  io.stdout:write(string.format("  memory: %s records: peak RSS %.1f MB, Lua heap %.0f KB after a full collection\n",
    fmt_int(tonumber(n)), tonumber(hwm) / 1024, tonumber(heap)))
end

local e, p, b, ew = median(engine), median(pipeline), median(baseline), median(wall)
local verdict = e >= TARGET and "met" or "NOT met"
io.stdout:write(string.format("engine %s records per CPU-second (median; %s wall): %s (target %s)\n", fmt_int(e), fmt_int(ew), verdict, fmt_int(TARGET)))

if RESULTS then
  local rows = {}
  for run = 1, RUNS do
    rows[#rows + 1] = string.format("| %d | **%s** | %s | %s | %s |", run, fmt_int(engine[run]), fmt_int(wall[run]), fmt_int(pipeline[run]), fmt_int(baseline[run]))
  end
  local mem_rows = {}
  for _, m in ipairs(memory) do
    mem_rows[#mem_rows + 1] = string.format("| %s | %.1f MB | %.0f KB |", fmt_int(m.n), m.hwm / 1024, m.heap)
  end
  local command = { (os.getenv("AEP") and ("AEP=" .. os.getenv("AEP") .. " ") or "") .. "aep bench/dataprep.lua" }
  for i = 1, #arg do command[#command + 1] = arg[i] end
  local text = table.concat({
    "## Data Prep",
    "",
    string.format("Written by `bench/dataprep.lua` (step 3 of `./dev bench`) on %s; every figure comes from that one run.", os.date("!%Y-%m-%d %H:%M UTC")),
    "Target: >= 50,000 records/s on one core for a 20-field mapping set with a few functions; no growth of memory with input size.",
    "",
    string.format("- Machine: %s, %s cores (nproc); load average at the start: %s", capture("sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1"), capture("nproc"), load0),
    string.format("- Records: %s per run, shaped like data/AEP_loyalty_profiles.json (bench/gen.lua's generator); mapping set: 20 mappings (10 ATTRIBUTE, 6 EXPRESSION: trim, concat, date_part(date()), iif, lower, sha256; 4 STATIC), every value converted to its field's type in the collection's loyalty Profile schema (aep.xdm)", fmt_int(N)),
    "- engine: `compiled:map(record)` on decoded records (256 cycled, kept in cache as a just-decoded record is); line to entity: JSON decode + map + JSON encode of N distinct lines; baseline: the same with the Lua mapping mappings/loyalty_profile.lua (a pass-through)",
    "- records/CPU-s: records per CPU-second of the benchmark process (os.clock), the one-core figure; wall: records per wall-clock second",
    "",
    "| run | engine records/CPU-s | engine records/s wall | line to entity records/CPU-s | baseline (Lua mapping) records/CPU-s |",
    "|---:|---:|---:|---:|---:|",
    table.concat(rows, "\n"),
    "",
    string.format("- **%s records per CPU-second** engine (%s wall), %s line to entity (medians of %d runs); baseline %s, line to entity with the mapping set / with the Lua mapping = **%.2f**",
      fmt_int(e), fmt_int(ew), fmt_int(p), RUNS, fmt_int(b), p / b),
    string.format("- %s: >= %s records/s on one core (engine, per CPU-second: %.2fx)", verdict, fmt_int(TARGET), e / TARGET),
    "",
    "| records mapped (one process each) | peak RSS | Lua heap after a full collection |",
    "|---:|---:|---:|",
    table.concat(mem_rows, "\n"),
    "",
    "```",
    table.concat(command, " "),
    "```",
    "",
  }, "\n")
  dofile(ROOT .. "/bench/results_section.lua")(RESULTS, "dataprep", "bench/dataprep.lua", text)
end
