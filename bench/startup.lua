-- bench/startup.lua: aep's start-up beside `lua5.4 -e ''`, measured with hyperfine: `aep -e ''`
-- (the host alone: no plugin is loaded), `aep version` (loads libcurl and OpenSSL to name their
-- versions) and `aep stream --help` (the command's Lua modules). Target: `aep -e ''` within 2x of
-- `lua5.4 -e ''` (median wall time).
--   aep bench/startup.lua [--runs K] [--warmup W] [--results FILE] [--out DIR] [--compare BIN LABEL]
-- --compare adds `BIN -e ''` as a row named LABEL (e.g. a build of an earlier commit).
-- `./dev bench` (bench/run.sh, step 5) runs it with --results bench/RESULTS.md: the section
-- between the "startup" markers is replaced (or appended).
local host = require "aep.host"
local json = require "aep.json"

local function opt(name, default)
  for i = 1, #arg do if arg[i] == "--" .. name then return arg[i + 1] end end
  return default
end

local ROOT = (arg[0]:match("^(.*)/bench/[^/]*$")) or "."
local AEP = os.getenv("AEP") or host.executable()
local OUT = opt("out", ROOT .. "/bench/out")
local RESULTS = opt("results", nil)
local RUNS = tonumber(opt("runs", "300"))
local WARMUP = tonumber(opt("warmup", "20"))
local HYPERFINE = os.getenv("HYPERFINE") or "hyperfine"
local COMPARE, COMPARE_LABEL
for i = 1, #arg do
  if arg[i] == "--compare" then COMPARE, COMPARE_LABEL = arg[i + 1], arg[i + 2] end
end

local function q(s)
  s = tostring(s)
  if s:match("^[%w%._/%-=:,@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
local function capture(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p:read("a") or ""
  p:close()
  return (s:gsub("%s+$", ""))
end

if not os.execute("command -v " .. q(HYPERFINE) .. " >/dev/null") then
  io.stderr:write("bench: hyperfine not found (apt-get install hyperfine): start-up not measured\n")
  os.exit(0)
end
if not os.execute("command -v lua5.4 >/dev/null") then
  io.stderr:write("bench: lua5.4 not found (apt-get install lua5.4): start-up not measured\n")
  os.exit(0)
end

-- name shown in RESULTS.md, command line hyperfine runs (no shell: -N)
local CASES = {
  { "lua5.4 -e ''", "lua5.4 -e ''" },
  { "aep -e ''", q(AEP) .. " -e ''" },
  { "aep version", q(AEP) .. " version" },
  { "aep stream --help", q(AEP) .. " stream --help" },
}
if COMPARE then CASES[#CASES + 1] = { "aep -e '' (" .. COMPARE_LABEL .. ")", q(COMPARE) .. " -e ''" } end

host.mkdir(OUT)
local export = OUT .. "/startup.json"
local words = { q(HYPERFINE), "-N", "--style", "basic", "--warmup", WARMUP, "--runs", RUNS, "--export-json", q(export) }
for _, c in ipairs(CASES) do words[#words + 1] = q(c[2]) end
local cmd = table.concat(words, " ")
io.stderr:write("bench: ", cmd, "\n")
local load_before = capture("cat /proc/loadavg")
assert(os.execute(cmd .. " >&2"), "hyperfine failed")
local f = assert(io.open(export, "rb"))
local data = json.decode(f:read("a"))
f:close()

local rows = {}
for i, r in ipairs(data.results) do
  rows[i] = { name = CASES[i][1], median = r.median * 1000, mean = r.mean * 1000, sd = r.stddev * 1000,
              min = r.min * 1000, cpu = (r.user + r.system) * 1000 }
end
local lua, aep = rows[1], rows[2]
local ratio, cpu_ratio = aep.median / lua.median, aep.cpu / lua.cpu

local L = {}
L[#L + 1] = "## Start-up (bench/startup.lua)"
L[#L + 1] = ""
L[#L + 1] = string.format("hyperfine, %d runs after %d warm-up runs each, no shell (`-N`); load average " ..
  "before: %s. Wall times in ms; CPU = user + system ms per run (steadier than wall time when other " ..
  "processes share the machine).", RUNS, WARMUP, load_before)
L[#L + 1] = ""
L[#L + 1] = "| command | median | mean ± σ | min | CPU | vs lua5.4 (median) |"
L[#L + 1] = "|---|---:|---:|---:|---:|---:|"
for _, r in ipairs(rows) do
  L[#L + 1] = string.format("| `%s` | %.1f | %.1f ± %.1f | %.1f | %.1f | %.2fx |", r.name, r.median, r.mean,
    r.sd, r.min, r.cpu, r.median / lua.median)
end
L[#L + 1] = ""
L[#L + 1] = string.format("`aep -e ''` / `lua5.4 -e ''`: **%.2fx** median wall time, %.2fx CPU (target: at most " ..
  "2x: %s).", ratio, cpu_ratio, ratio <= 2 and "met" or "NOT met")
L[#L + 1] = ""
L[#L + 1] = "The modules that link librdkafka, libmicrohttpd, SQLite, PCRE2, readline, libcurl, OpenSSL " ..
  "and zlib are plugins loaded on first require (docs/ARCHITECTURE.md, \"Plugins\"): `aep -e ''` " ..
  "maps liblua, libc and libm only, as `lua5.4` does."
L[#L + 1] = ""
L[#L + 1] = "Command: `" .. cmd .. "`"
L[#L + 1] = ""
local text = table.concat(L, "\n")
if not RESULTS then io.stdout:write(text) end

if RESULTS then
  dofile(ROOT .. "/bench/results_section.lua")(RESULTS, "startup", "bench/startup.lua", text)
  io.stderr:write("bench: wrote the Start-up section of ", RESULTS, "\n")
end
