-- bench/stream.lua: the `aep stream` benchmark (bench/README.md). Run by bench/run.sh:
--   aep bench/stream.lua [--n N] [--memory-n "10000,1000000"] [--baseline-n N] [--runs K]
--                        [--worker-pairs K] [--newman PATH] [--out DIR] [--results FILE] [--no-emulator]
-- In one run, on the same generated records (bench/gen.lua, shaped like data/AEP_loyalty_profiles.json):
--   1. aep stream with the sample mapping into a trivial sink (bench/sink.lua) — records/s;
--   2. aep stream into the local emulator (aep emulator: XDM validation + SQLite) — records/s;
--   3. Newman running the collection's streaming request (R15) with the records as iteration data;
--   4. one curl process per record;
--   5. peak memory (/usr/bin/time -v, maximum RSS) of aep stream at each --memory-n size;
--   6. --workers 1 against the default (one worker per core) with the sample mapping and with a
--      CPU-heavy one (bench/heavy_mapping.lua), on --workers-n records, in --worker-pairs pairs of
--      runs (the speed-up: the median of the pairs' ratios).
-- Writes the figures, the machine and the commands to bench/RESULTS.md (or --results).
local host = require "aep.host"
local json = require "aep.json"

local function opt(name, default)
  for i = 1, #arg do
    if arg[i] == "--" .. name then return arg[i + 1] end
    if arg[i] == "--no-" .. name then return false end
  end
  return default
end

local ROOT = (arg[0]:match("^(.*)/bench/[^/]*$")) or "."
local AEP = os.getenv("AEP") or host.executable()
local OUT = opt("out", ROOT .. "/bench/out")
local RESULTS = opt("results", ROOT .. "/bench/RESULTS.md")
local N = tonumber(opt("n", "200000"))
local MEM_NS = {}
for v in tostring(opt("memory-n", "10000,1000000")):gmatch("%d+") do MEM_NS[#MEM_NS + 1] = tonumber(v) end
local BASE_N = tonumber(opt("baseline-n", "1000"))
local RUNS = tonumber(opt("runs", "3"))
-- --workers against --workers 1: pairs of runs (more than RUNS: a ratio of two noisy figures)
local WORKER_PAIRS = tonumber(opt("worker-pairs", "5"))
local NEWMAN = opt("newman", ROOT .. "/bench/node_modules/.bin/newman")
local WITH_EMULATOR = opt("emulator", true) ~= false
local WORKERS_N = tonumber(opt("workers-n", "100000"))
local MAPPING = ROOT .. "/mappings/loyalty_profile.lua"
local HEAVY_MAPPING = ROOT .. "/bench/heavy_mapping.lua"
local SCHEMA = "https://ns.adobe.com/exchangeinternal/schemas/bench"
local ORG = "BENCH0000000000000000000@AdobeOrg"

local function q(s)
  s = tostring(s)
  if s:match("^[%w%._/%-=:,@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  return ok, code
end

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local s = p:read("a")
  p:close()
  return s
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function log(fmt, ...)
  io.stderr:write(string.format("bench: " .. fmt .. "\n", ...))
  io.stderr:flush()
end

local function fmt_int(n)
  local s = tostring(math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function median(t)
  local c = { table.unpack(t) }
  table.sort(c)
  return c[(#c + 1) // 2]
end

host.mkdir(OUT)

-- A child that prints a line we wait for (the sink, the emulator).
local function start(cmd, pattern)
  local p = assert(io.popen("echo $$; exec " .. cmd, "r"))
  local pid = math.tointeger(tonumber(p:read("l")))
  local lines = {}
  while true do
    local l = p:read("l")
    if not l then error("bench: '" .. cmd .. "' ended before printing " .. pattern .. ":\n" .. table.concat(lines, "\n")) end
    lines[#lines + 1] = l
    local cap = l:match(pattern)
    if cap then return { pid = pid, fh = p, capture = cap, lines = lines } end
  end
end

local function stop(child)
  if not child then return end
  host.kill(child.pid, "TERM")
  child.fh:read("a")
  child.fh:close()
end

-- Run `aep stream ARGS` under /usr/bin/time -v; returns the report table, the peak RSS in KiB,
-- and the wall time.
local function stream(args, tag)
  local report = OUT .. "/report-" .. tag .. ".json"
  os.remove(report)
  local timefile = OUT .. "/time-" .. tag .. ".txt"
  local words = { "/usr/bin/time", "-v", "-o", q(timefile), q(AEP), "stream" }
  for _, a in ipairs(args) do words[#words + 1] = q(a) end
  words[#words + 1] = "--report"
  words[#words + 1] = q(report)
  words[#words + 1] = "--quiet"
  local cmd = table.concat(words, " ")
  local t0 = host.monotonic()
  local ok, code = sh(cmd .. " >" .. q(OUT .. "/stdout-" .. tag .. ".txt") .. " 2>&1")
  local wall = host.monotonic() - t0
  local rep = json.decode(slurp(report) or "") or {}
  local tv = slurp(timefile) or ""
  local rss = tonumber(tv:match("Maximum resident set size %(kbytes%): (%d+)"))
  local cpu = (tonumber(tv:match("User time %(seconds%): ([%d.]+)")) or 0) + (tonumber(tv:match("System time %(seconds%): ([%d.]+)")) or 0)
  rep.cpu_s = cpu
  if not ok then log("%s: aep stream exited %s: %s", tag, tostring(code), slurp(OUT .. "/stdout-" .. tag .. ".txt") or "") end
  return rep, rss, wall, cmd
end

local function gen(n, path)
  if host.stat(path) then return path end
  log("generating %s records -> %s", fmt_int(n), path)
  assert(sh(q(AEP) .. " " .. q(ROOT .. "/bench/gen.lua") .. " " .. n .. " " .. q(path)))
  return path
end

-- machine ---------------------------------------------------------------------------------------
local machine = {
  cpu = (capture("lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1"):gsub("%s+$", "")),
  cores = (capture("nproc"):gsub("%s+$", "")),
  mem = (capture("free -m | awk '/^Mem:/{print $2}'"):gsub("%s+$", "")),
  kernel = (capture("uname -sr"):gsub("%s+$", "")),
  os = (capture(". /etc/os-release 2>/dev/null && echo \"$PRETTY_NAME\""):gsub("%s+$", "")),
  versions = host.versions(),
  node = (capture("node --version 2>/dev/null"):gsub("%s+$", "")),
  curl = (capture("curl --version 2>/dev/null | head -1"):gsub("%s+$", "")),
  load = (capture("cat /proc/loadavg"):gsub("%s+$", "")),
}

local results = { n = N, runs = {}, memory = {}, commands = {} }
local data = gen(N, OUT .. "/records-" .. N .. ".jsonl")
local rec_bytes = host.stat(data).size / N

-- 1. the trivial sink -----------------------------------------------------------------------------
local sink = start(q(AEP) .. " " .. q(ROOT .. "/bench/sink.lua") .. " 0", "^listening on (%S+)")
local sink_url = sink.capture
local sink_args = function(input)
  return { "--input", input, "--inlet", sink_url .. "/collection/bench", "--dataset", "bench",
           "--schema", SCHEMA, "--org", ORG, "--mapping", MAPPING }
end
local ok_all, err_all = pcall(function()
  local rates = {}
  for i = 1, RUNS do
    local rep, rss, wall, cmd = stream(sink_args(data), "sink-" .. i)
    local rate = rep.rates and rep.rates.records_per_s or 0
    log("sink run %d: %s records/s (accepted %s, peak RSS %s KiB, %.2f s, client CPU %.2f s)", i, fmt_int(rate), tostring(rep.accepted), tostring(rss), wall, rep.cpu_s)
    rates[#rates + 1] = rate
    results.sink_cpu = results.sink_cpu or {}
    results.sink_cpu[#results.sink_cpu + 1] = rep.cpu_s / N * 1e6
    results.commands.sink = cmd
    results.sink_accepted = rep.accepted
    results.sink_requests = rep.requests
  end
  results.sink_rates = rates
  results.sink_rate = median(rates)
  -- the same without a mapping (records sent as read), for the cost of the mapping
  local args = sink_args(data)
  table.remove(args); table.remove(args)
  local nomap, nomap_cpu = {}, {}
  for i = 1, RUNS do
    local rep = stream(args, "sink-nomap-" .. i)
    nomap[i] = rep.rates and rep.rates.records_per_s or 0
    nomap_cpu[i] = rep.cpu_s / N * 1e6
    log("sink without mapping, run %d: %s records/s (client CPU %.2f s)", i, fmt_int(nomap[i]), rep.cpu_s)
  end
  results.sink_nomap_rate = median(nomap)
  results.sink_nomap_cpu = median(nomap_cpu)

  -- 6. --workers: one worker against the default, with the sample and the heavy mapping. The two
  -- run in pairs, one right after the other, and the speed-up is the median of the pairs' ratios:
  -- the machine is shared, and a slow spell then slows both runs of a pair instead of all the
  -- runs of one side.
  local wdata = gen(WORKERS_N, OUT .. "/records-" .. WORKERS_N .. ".jsonl")
  results.workers = {}
  for _, m in ipairs({ { "sample (mappings/loyalty_profile.lua)", MAPPING, "sample" },
                       { "CPU-heavy (bench/heavy_mapping.lua)", HEAVY_MAPPING, "heavy" } }) do
    local row = { name = m[1] }
    local rates, ratios, rss = { ["1"] = {}, default = {} }, {}, { ["1"] = 0, default = 0 }
    for i = 1, WORKER_PAIRS do
      for _, wk in ipairs({ "1", "default" }) do
        local wargs = sink_args(wdata)
        wargs[#wargs] = m[2]
        if wk ~= "default" then wargs[#wargs + 1] = "--workers"; wargs[#wargs + 1] = wk end
        local rep, r = stream(wargs, "workers-" .. m[3] .. "-" .. wk .. "-" .. i)
        rates[wk][i] = rep.rates and rep.rates.records_per_s or 0
        rss[wk] = math.max(rss[wk], r or 0)
        results.commands["workers-" .. m[3] .. "-" .. wk] = table.concat({ "aep stream", table.unpack(wargs) }, " ")
      end
      ratios[i] = rates.default[i] / math.max(rates["1"][i], 1)
    end
    for _, wk in ipairs({ "1", "default" }) do
      row[wk] = median(rates[wk])
      row["rss_" .. wk] = rss[wk]
      log("%s mapping, --workers %s: %s records/s (median of %d), peak RSS %d KiB", m[3], wk, fmt_int(row[wk]),
        WORKER_PAIRS, rss[wk])
    end
    row.ratio = median(ratios)
    log("%s mapping: speed-up %.2fx (median of %d paired runs)", m[3], row.ratio, WORKER_PAIRS)
    results.workers[#results.workers + 1] = row
  end

  -- 5. memory ---------------------------------------------------------------------------------------
  for _, n in ipairs(MEM_NS) do
    local input = gen(n, OUT .. "/records-" .. n .. ".jsonl")
    local rep, rss, wall, cmd = stream(sink_args(input), "mem-" .. n)
    results.memory[#results.memory + 1] = { n = n, rss_kib = rss, rate = rep.rates and rep.rates.records_per_s or 0,
      accepted = rep.accepted, wall = wall }
    results.commands["mem-" .. n] = cmd
    log("memory at %s records: peak RSS %s KiB (%s records/s)", fmt_int(n), tostring(rss), fmt_int(rep.rates and rep.rates.records_per_s or 0))
  end

  -- baselines on BASE_N records --------------------------------------------------------------------
  local base = gen(BASE_N, OUT .. "/records-" .. BASE_N .. ".jsonl")
  -- aep on the same small input, for a like-for-like ratio
  local rep_small = stream(sink_args(base), "sink-small")
  results.sink_small_rate = rep_small.rates and rep_small.rates.records_per_s or 0

  -- 3. Newman: the collection's R15 request (sync validation, one record per request), with the
  -- records as iteration data (each iteration's `entity` is one record's JSON text)
  local iter = OUT .. "/newman-data-" .. BASE_N .. ".json"
  do
    local f = assert(io.open(iter, "wb"))
    f:write("[")
    local i = 0
    for line in io.lines(base) do
      i = i + 1
      f:write(i > 1 and ",\n" or "", json.encode({ entity = line }))
    end
    f:write("]\n")
    f:close()
  end
  if NEWMAN and host.stat(NEWMAN) then
    local env = OUT .. "/newman-env.json"
    local f = assert(io.open(env, "wb"))
    f:write(json.encode({ name = "bench", values = {
      { key = "INLET_URL", value = sink_url .. "/collection/bench", enabled = true },
      { key = "SCHEMA_ID_PROFILE", value = SCHEMA, enabled = true },
      { key = "DATASET_ID_PROFILE", value = "bench", enabled = true },
      { key = "IMS_ORG", value = ORG, enabled = true },
      { key = "INLET_SOURCE_ID", value = "bench", enabled = true },
    } }))
    f:close()
    local export = OUT .. "/newman-run.json"
    os.remove(export)
    local cmd = string.format("%s run %s -e %s -d %s -r json --reporter-json-export %s",
      q(NEWMAN), q(ROOT .. "/bench/newman/streaming.postman_collection.json"), q(env), q(iter), q(export))
    local t0 = host.monotonic()
    local ok = sh(cmd .. " >" .. q(OUT .. "/newman.txt") .. " 2>&1")
    local wall = host.monotonic() - t0
    results.newman_wall_rate = ok and BASE_N / wall or nil
    results.newman_wall = wall
    -- Newman's own run timings leave out node's start-up: the fairer (higher) figure
    local doc = json.decode(slurp(export) or "") or {}
    local t = type(doc.run) == "table" and doc.run.timings or {}
    local stats = type(doc.run) == "table" and doc.run.stats or {}
    local reqs = stats.requests or {}
    if t.completed and t.started and t.completed > t.started then
      results.newman_rate = BASE_N / ((t.completed - t.started) / 1000)
    else
      results.newman_rate = results.newman_wall_rate
    end
    results.newman_requests = reqs.total
    results.newman_failed = reqs.failed
    results.commands.newman = cmd
    log("newman: %d records in %.2f s wall (%s records/s), %s records/s in its own run timings, %s requests, %s failed",
      BASE_N, wall, fmt_int(BASE_N / wall), fmt_int(results.newman_rate or 0), tostring(reqs.total), tostring(reqs.failed))
  else
    log("newman not found at %s (run bench/run.sh, which installs it): baseline skipped", tostring(NEWMAN))
  end

  -- 4. one curl per record (the same envelope aep sends, built beforehand)
  local msgs = OUT .. "/curl-msgs-" .. BASE_N .. ".jsonl"
  do
    local streaming = require "aep.streaming_ingestion"
    local enc = streaming.envelope_encoder({ dataset_id = "bench", schema_id = SCHEMA, ims_org = ORG })
    local f = assert(io.open(msgs, "wb"))
    for line in io.lines(base) do f:write(enc(line), "\n") end
    f:close()
  end
  local cmd = string.format("while IFS= read -r m; do curl -s -o /dev/null -X POST -H 'Content-Type: application/json' " ..
    "-H 'Cache-Control: no-cache' --data-binary \"$m\" %s; done < %s", q(sink_url .. "/collection/bench?syncValidation=true"), q(msgs))
  local t0 = host.monotonic()
  sh("bash -c " .. q(cmd))
  local wall = host.monotonic() - t0
  results.curl_rate = BASE_N / wall
  results.commands.curl = cmd
  log("curl per record: %d records in %.2f s: %s records/s", BASE_N, wall, fmt_int(BASE_N / wall))
end)
stop(sink)
if not ok_all then error(err_all, 0) end

-- 2. the emulator -----------------------------------------------------------------------------------
if WITH_EMULATOR then
  local ok, err = pcall(function()
    package.path = ROOT .. "/?.lua;" .. ROOT .. "/tests/lua/?.lua;" .. package.path
    local emulator = require "tests.lua.support.emulator"
    local fixtures = require "tests.lua.support.fixtures"
    local emu = emulator.start({ "--tenant", "exchangeinternal" })
    local ok2, err2 = pcall(function()
      local api = fixtures.client(emu)
      local ids = fixtures.loyalty(api, { dataflow = true })
      local args = { "--input", data, "--env", emu.env_file, "--dataset", ids.profile_dataset,
                     "--inlet", ids.inlet_url, "--mapping", MAPPING }
      if ids.flow_id then args[#args + 1] = "--flow-id"; args[#args + 1] = ids.flow_id end
      local rep, rss, wall, cmd = stream(args, "emulator")
      results.emulator_rate = rep.rates and rep.rates.records_per_s or 0
      results.emulator_accepted = rep.accepted
      results.emulator_rss = rss
      results.commands.emulator = cmd
      local recs = fixtures.records(api, ids.profile_dataset, "?limit=1")
      results.emulator_stored = recs.total or recs.count
      log("emulator: %s records/s (accepted %s, stored %s)", fmt_int(results.emulator_rate), tostring(rep.accepted), tostring(results.emulator_stored))
    end)
    emu.stop()
    emu.cleanup()
    if not ok2 then error(err2, 0) end
  end)
  if not ok then
    results.emulator_error = tostring(err)
    log("emulator run failed: %s", tostring(err))
  end
end

-- RESULTS.md ----------------------------------------------------------------------------------------
local function ratio(a, b)
  if not a or not b or b == 0 then return "n/a" end
  return string.format("%.0fx", a / b)
end
local mem_first, mem_last = results.memory[1], results.memory[#results.memory]
local lines = {}
local function w(s) lines[#lines + 1] = s or "" end
w("# aep stream benchmark results")
w()
w("Written by `./dev bench` (bench/run.sh -> bench/stream.lua) on " .. os.date("!%Y-%m-%d %H:%M UTC") .. ".")
w("Every figure below comes from one run of that command; ratios compare figures of the same run.")
w()
w("## Machine")
w()
w("- CPU: " .. machine.cpu .. ", " .. machine.cores .. " cores; memory " .. machine.mem .. " MiB; " .. machine.os .. ", " .. machine.kernel)
w("- aep " .. tostring(machine.versions.aep) .. ", " .. tostring(machine.versions.lua) .. ", libcurl " .. tostring(machine.versions.curl))
w("- node " .. machine.node .. "; " .. machine.curl)
w("- load average at the start: " .. machine.load .. "; at the end: " .. (capture("cat /proc/loadavg"):gsub("%s+$", "")) ..
  " (the machine is shared: other work on it shows up as spread between runs)")
w()
w("## Records")
w()
w(string.format("%s generated records shaped like data/AEP_loyalty_profiles.json (bench/gen.lua), %d bytes each on average, one per line; the mapping is mappings/loyalty_profile.lua (tenant key rewrite, skip rule).", fmt_int(N), math.floor(rec_bytes + 0.5)))
w()
w("## Throughput")
w()
w("| what | records | records/s |")
w("|---|---:|---:|")
w(string.format("| aep stream, mapping, into the trivial sink (median of %d) | %s | **%s** |", RUNS, fmt_int(N), fmt_int(results.sink_rate or 0)))
w(string.format("| aep stream, no mapping, into the trivial sink (median of %d) | %s | %s |", RUNS, fmt_int(N), fmt_int(results.sink_nomap_rate or 0)))
if results.emulator_rate then
  w(string.format("| aep stream, mapping, into the emulator (XDM validation, SQLite) | %s | %s |", fmt_int(N), fmt_int(results.emulator_rate)))
else
  w("| aep stream into the emulator | - | not measured: " .. tostring(results.emulator_error or "skipped") .. " |")
end
w(string.format("| aep stream, mapping, into the trivial sink | %s | %s |", fmt_int(BASE_N), fmt_int(results.sink_small_rate or 0)))
w(string.format("| Newman 6.2.2, the collection's R15 request, iteration data (its run timings; wall clock incl. node start-up: %s) | %s | %s |",
  results.newman_wall_rate and fmt_int(results.newman_wall_rate) or "-", fmt_int(BASE_N), results.newman_rate and fmt_int(results.newman_rate) or "not run"))
w(string.format("| one `curl` process per record | %s | %s |", fmt_int(BASE_N), fmt_int(results.curl_rate or 0)))
w()
w("Sink runs: " .. table.concat((function() local t = {} for i, r in ipairs(results.sink_rates or {}) do t[i] = fmt_int(r) end return t end)(), ", ") .. " records/s; " ..
  fmt_int(results.sink_requests or 0) .. " requests per run (batches of up to 500 messages, < 1 MB).")
w()
w(string.format("Client CPU time (user + system, /usr/bin/time) per record: %.1f µs with the mapping (median), %.1f µs without: " ..
  "about %s and %s records/s for one uncontended core, whatever else the machine is doing.",
  median(results.sink_cpu or { 0 }), results.sink_nomap_cpu or 0,
  fmt_int(1e6 / math.max(median(results.sink_cpu or { 1 }), 0.001)), fmt_int(1e6 / math.max(results.sink_nomap_cpu or 1, 0.001))))
w()
w("## Ratios (same run)")
w()
w(string.format("- aep stream (mapping, sink, %s records) / Newman: **%s** (target >= 50x)", fmt_int(N), ratio(results.sink_rate, results.newman_rate)))
w(string.format("- aep stream (mapping, sink, %s records) / Newman on the same %s records: %s", fmt_int(BASE_N), fmt_int(BASE_N), ratio(results.sink_small_rate, results.newman_rate)))
w(string.format("- aep stream / one curl per record: %s", ratio(results.sink_rate, results.curl_rate)))
w(string.format("- aep stream into the sink / AEP's documented ceiling of 10,000 messages/s: %.1fx (target >= 5x, i.e. 50,000 records/s)", (results.sink_rate or 0) / 10000))
if results.emulator_rate then
  w(string.format("- aep stream into the emulator / into the sink: %.2f", results.emulator_rate / (results.sink_rate or 1)))
end
w()
w("## Parallel mapping (--workers)")
w()
w(string.format("%s records into the trivial sink, %d pairs of runs (--workers 1, then the default, one right after " ..
  "the other); records/s are each side's median, the speed-up is the median of the pairs' ratios; the default is " ..
  "one worker per online core (%s here).", fmt_int(WORKERS_N), WORKER_PAIRS, machine.cores))
w()
w("| mapping | --workers 1 records/s | default records/s | speed-up | peak RSS (default) |")
w("|---|---:|---:|---:|---:|")
for _, row in ipairs(results.workers or {}) do
  w(string.format("| %s | %s | %s | **%.2fx** | %.1f MiB |", row.name, fmt_int(row["1"] or 0), fmt_int(row.default or 0),
    row.ratio or 0, (row.rss_default or 0) / 1024))
end
w()
w("## Peak memory (maximum RSS, /usr/bin/time -v, default workers)")
w()
w("| records | peak RSS | records/s |")
w("|---:|---:|---:|")
for _, m in ipairs(results.memory) do
  w(string.format("| %s | %.1f MiB | %s |", fmt_int(m.n), (m.rss_kib or 0) / 1024, fmt_int(m.rate or 0)))
end
if mem_first and mem_last and mem_first.rss_kib and mem_last.rss_kib then
  w()
  w(string.format("From %s to %s records the peak grows by %.1f MiB (%.0f%%); target: < 64 MB and flat.",
    fmt_int(mem_first.n), fmt_int(mem_last.n), (mem_last.rss_kib - mem_first.rss_kib) / 1024,
    100 * (mem_last.rss_kib - mem_first.rss_kib) / mem_first.rss_kib))
end
w()
w("## Targets")
w()
local function verdict(okv, text) w("- " .. (okv and "met: " or "MISSED: ") .. text) end
verdict((results.sink_rate or 0) >= 50000, string.format(">= 50,000 records/s with a mapping into the trivial sink: %s records/s%s",
  fmt_int(results.sink_rate or 0), (results.sink_rate or 0) < 50000 and string.format(" (%.0f%% short)", 100 * (1 - (results.sink_rate or 0) / 50000)) or ""))
if results.newman_rate then
  local r = (results.sink_rate or 0) / results.newman_rate
  verdict(r >= 50, string.format(">= 50x Newman: %.0fx", r))
else
  w("- not measured: >= 50x Newman (Newman not installed)")
end
local heavy = results.workers and results.workers[2]
if heavy and heavy["1"] and heavy["1"] > 0 then
  local r = heavy.ratio or 0
  verdict(r >= 1.8, string.format(">= 1.8x with the CPU-heavy mapping, default workers against --workers 1 (%s cores): %.3fx", machine.cores, r))
end
if mem_last and mem_last.rss_kib then
  verdict(mem_last.rss_kib < 64 * 1000, string.format("peak memory < 64 MB at %s records: %.1f MiB", fmt_int(mem_last.n), mem_last.rss_kib / 1024))
  local growth = mem_first and mem_first.rss_kib and (mem_last.rss_kib - mem_first.rss_kib) / mem_first.rss_kib or 0
  verdict(growth < 0.15, string.format("flat from %s to %s records: %+.0f%%", fmt_int(mem_first.n), fmt_int(mem_last.n), growth * 100))
end
w()
w("## Commands")
w()
w("```")
w("./dev bench            # = bash bench/run.sh: Release build, npm install newman into bench/node_modules, then:")
w("aep bench/stream.lua --n " .. N .. " --memory-n " .. table.concat(MEM_NS, ",") .. " --baseline-n " .. BASE_N .. " --runs " .. RUNS)
local keys = {}
for k in pairs(results.commands) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do w("# " .. k); w(results.commands[k]) end
w("```")
w()
local notes = slurp(ROOT .. "/bench/NOTES.md")
if notes then w(notes) end
-- the "Emulator ingest" section (bench/emulator_ingest.lua, run.sh's step 2) is carried over
local kept = (slurp(RESULTS) or ""):match("\n(<!%-%- emulator%-ingest: begin.-<!%-%- emulator%-ingest: end %-%->\n)")
if kept then w(); lines[#lines + 1] = (kept:gsub("\n$", "")) end
local f = assert(io.open(RESULTS, "wb"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
log("wrote %s", RESULTS)
io.stdout:write(table.concat(lines, "\n"), "\n")
