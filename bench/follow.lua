-- bench/follow.lua: `aep stream` into the local emulator with and without the follow-through
-- (waiting for AEP's asynchronous validation and reading each record's outcome), on the same
-- generated records (bench/gen.lua). The send phase (the report's streaming_s: loop start to the
-- last answer) must not slow down; the follow-through's own cost is the report's total minus it.
--   aep bench/follow.lua [--n N] [--runs K] [--results FILE] [--out DIR]
-- `./dev bench` (bench/run.sh, step 4) runs it with --results bench/RESULTS.md: the section
-- between the "stream-follow" markers is replaced (or appended).
local host = require "aep.host"
local json = require "aep.json"

local function opt(name, default)
  for i = 1, #arg do if arg[i] == "--" .. name then return arg[i + 1] end end
  return default
end

local ROOT = (arg[0]:match("^(.*)/bench/[^/]*$")) or "."
package.path = ROOT .. "/?.lua;" .. ROOT .. "/tests/lua/?.lua;" .. package.path
local AEP = os.getenv("AEP") or host.executable()
local OUT = opt("out", ROOT .. "/bench/out")
local RESULTS = opt("results", nil)
local N = tonumber(opt("n", "50000"))
local RUNS = tonumber(opt("runs", "3"))
local MAPPING = ROOT .. "/mappings/loyalty_profile.lua"

local function q(s)
  s = tostring(s)
  if s:match("^[%w%._/%-=:,@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
local function log(fmt, ...) io.stderr:write(string.format("bench: " .. fmt .. "\n", ...)) end
local function median(t)
  local c = { table.unpack(t) }
  table.sort(c)
  return c[(#c + 1) // 2]
end
local function fmt_int(n)
  local s = tostring(math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

host.mkdir(OUT)
local data = OUT .. "/follow-" .. N .. ".jsonl"
assert(os.execute(q(AEP) .. " " .. q(ROOT .. "/bench/gen.lua") .. " " .. N .. " " .. q(data)))

local emulator = require "tests.lua.support.emulator"
local fixtures = require "tests.lua.support.fixtures"
local emu = emulator.start({ "--tenant", "exchangeinternal" })
local results = { follow = {}, nofollow = {} }
local cmds = {}
local ok, err = pcall(function()
  local api = fixtures.client(emu)
  local ids = fixtures.loyalty(api, { dataflow = true })
  for run = 1, RUNS do
    for _, mode in ipairs({ "nofollow", "follow" }) do
      -- a dataset per run: the follow-through reads only this run's batches
      local ds = fixtures.dataset(api, "bench follow " .. mode .. " " .. run .. " " .. os.time(), ids.profile_schema)
      local report = OUT .. "/follow-report-" .. mode .. ".json"
      os.remove(report)
      local words = { q(AEP), "stream", "--input", q(data), "--env", q(emu.env_file), "--dataset", q(ds),
                      "--mapping", q(MAPPING), "--report", q(report), "--quiet" }
      if mode == "nofollow" then words[#words + 1] = "--no-follow" end
      local cmd = table.concat(words, " ")
      cmds[mode] = cmd
      os.execute(cmd .. " >/dev/null")
      local rep = assert(json.decode(assert(io.open(report)):read("a")), "no report for " .. mode)
      local r = results[mode]
      r.send = r.send or {}
      r.total = r.total or {}
      r.send[#r.send + 1] = rep.durations.streaming_s
      r.total[#r.total + 1] = rep.durations.total_s
      r.accepted, r.ingested = rep.accepted, rep.ingested
      log("%s run %d: send %.2f s, total %.2f s (accepted %s, ingested %s)", mode, run,
        rep.durations.streaming_s, rep.durations.total_s, tostring(rep.accepted), tostring(rep.ingested))
    end
  end
end)
emu.stop()
emu.cleanup()
if not ok then error(err, 0) end

local nf, f = results.nofollow, results.follow
local ns, fs, nt, ft = median(nf.send), median(f.send), median(nf.total), median(f.total)
local text = table.concat({
  "## aep stream: follow-through after the answer",
  "",
  string.format("%s generated records (bench/gen.lua) with mappings/loyalty_profile.lua into `aep emulator` " ..
    "(default --batch-window 1 s), a fresh dataset per run; median of %d runs each, the two modes alternating. " ..
    "Send = the report's `streaming_s` (loop start to the last answer); total = `total_s` (with the " ..
    "follow-through: waiting until the dataset's batches are final, then reading the failed records).", fmt_int(N), RUNS),
  "",
  "| mode | send (s) | records/s while sending | total (s) | accepted | ingested |",
  "|---|---|---|---|---|---|",
  string.format("| --no-follow | %.2f | %s | %.2f | %s | - |", ns, fmt_int(N / ns), nt, fmt_int(nf.accepted)),
  string.format("| follow (default) | %.2f | %s | %.2f | %s | %s |", fs, fmt_int(N / fs), ft, fmt_int(f.accepted), fmt_int(f.ingested or 0)),
  "",
  string.format("Send phase with follow-through / without: %.2f. The follow-through adds %.2f s after the last answer " ..
    "(the emulator's validation of the last window and its close, then one Catalog read per 0.1 s).", fs / ns, ft - fs - (nt - ns)),
  "",
  "```",
  cmds.nofollow or "",
  cmds.follow or "",
  "```",
  "",
}, "\n")
io.stdout:write(text)
if RESULTS then
  dofile(ROOT .. "/bench/results_section.lua")(RESULTS, "stream-follow", "bench/follow.lua", text)
end
