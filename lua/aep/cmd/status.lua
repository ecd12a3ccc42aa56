-- aep status: where ingested data went, after AEP's answer. For a dataset or a dataflow: the
-- recent dataflow runs (Flow Service) and Catalog batches with their counts and states, and with
-- --errors the failed records of the failed batches with AEP's codes and messages (Data Access
-- error diagnostics). Public Platform paths only: the same against AEP and `aep emulator`.
-- The parts: aep.catalog (datasets, batches), aep.flows (dataflows, runs), aep.diagnostics.
local cli = require "aep.cli"
local log = require "aep.log"

local M = {}

local SPEC = {
  { "dataset", "string", short = "d", metavar = "ID", help = "a dataset (id or name): the runs of the dataflows writing it and its batches" },
  { "flow", "string", metavar = "ID", help = "a dataflow: its runs and the batches they wrote" },
  { "manifest", "string", metavar = "FILE", help = "a run manifest (aep run): each dataset it names, as --dataset" },
  { "since", "string", default = "24h", metavar = "AGE", help = "runs and batches created in the last AGE (90s, 15m, 2h, 7d)" },
  { "limit", "integer", default = 10, metavar = "N", help = "at most N runs and N batches, newest first" },
  { "errors", "boolean", help = "list the failed records of the shown batches with their errors" },
  { "watch", "boolean", help = "on a terminal: refresh every 2 seconds until Ctrl-C" },
  cli.common.env, cli.common.json, cli.common.quiet, cli.common.verbose,
}
for _, s in ipairs(require("aep.config").flag_spec()) do SPEC[#SPEC + 1] = s end

M.summary = "show where ingested data went: dataflow runs, batches, failed records and their errors"

M.usage = [[
usage: aep status (--dataset ID | --flow ID | --manifest FILE) [--since AGE] [--limit N] [--errors]
                  [--watch | --json] [flags]

AEP answers a streamed message once it is received; validation comes after, and a record that
fails it lands in a failed batch of the dataset. This shows what happened after the answer: the
recent runs of the dataflows (records in, ingested, failed, and the run's errors) and the
dataset's Catalog batches (status, records ingested and failed, errors). --errors downloads the
failed records of those batches (Data Access error diagnostics) and prints each with AEP's codes
and messages. It reads only AEP's public APIs, so it works against AEP and `aep emulator` alike.
A run or batch still "processing" / "inProgress" is not final yet: run the command again later
(AEP documents up to 60 minutes for the data lake).

Exit status: 0 nothing failed, 2 some shown batch holds failed records, 1 could not run, 64 usage
error.

Flags:
]] .. cli.flags_help(SPEC) .. [[


Examples:
  aep status --env env.json --dataset "aep Loyalty Profiles"
  aep status --env env.json --flow 6a1b2c3d-0000-4000-8000-000000000000 --errors
  aep status --dataset 5f1b0c3d2e4a --since 2h --errors --json | jq '.failed_records[].errors'
  aep status --manifest ~/.local/state/aep/runs/aep-prod-ORG.json --errors
]]

local function fail(message)
  log.error("status: %s", message)
  return cli.EXIT.ERROR
end

-- "90s" | "15m" | "2h" | "7d" -> seconds | nil
local function age_seconds(s)
  local n, unit = tostring(s):match("^(%d+)([smhd]?)$")
  if not n then return nil end
  return tonumber(n) * ({ s = 1, m = 60, h = 3600, d = 86400, [""] = 1 })[unit]
end

local function iso(ms)
  if type(ms) ~= "number" then return "-" end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(ms / 1000))
end

local function int(v) return math.tointeger(tonumber(v) or 0) or math.floor(tonumber(v) or 0) end

-- what the command shows of a run
local function run_view(r)
  local m = type(r.metrics) == "table" and r.metrics or {}
  local rs, ds, ss = m.recordSummary or {}, m.durationSummary or {}, m.statusSummary or {}
  local errors = {}
  for _, e in ipairs(ss.errors or {}) do errors[#errors + 1] = { code = e.code, message = e.message } end
  for _, a in ipairs(r.activities or {}) do
    local ext = type(a.statusSummary) == "table" and a.statusSummary.extensions
    for _, e in ipairs(type(ext) == "table" and ext.errors or {}) do
      errors[#errors + 1] = { code = e.code, message = e.message, recordCount = e.recordCount }
    end
  end
  local batches = {}
  for _, a in ipairs(r.activities or {}) do
    for _, t in ipairs(a.targetInfo or {}) do
      local ref = type(t.reference) == "table" and t.reference
      if ref and ref.type == "Batch" then
        for _, id in ipairs(ref.ids or {}) do batches[#batches + 1] = id end
      end
    end
  end
  return { id = r.id, flowId = r.flowId, status = ss.status or r.state, started = ds.startedAtUTC,
           completed = ds.completedAtUTC, input = int(rs.inputRecordCount), output = int(rs.outputRecordCount),
           failed = int(rs.failedRecordCount), errors = errors, batches = batches }
end

local function batch_view(b)
  local m = type(b.metrics) == "table" and b.metrics or {}
  local failed = int(b.failedRecordCount or m.failedRecordCount)
  local errors = {}
  for _, e in ipairs(b.errors or {}) do
    errors[#errors + 1] = { code = e.code, description = e.description, recordCount = e.recordCount }
  end
  return { id = b.id, status = b.status, created = b.created, completed = b.completed,
           records = int(b.recordCount or m.outputRecordCount), failed = failed, errors = errors }
end

-- a short way to recognise a failed record: its _id, else the start of its JSON
local function record_label(json, rec)
  if type(rec) == "table" and rec._id ~= nil then return "_id " .. tostring(rec._id) end
  local text = type(rec) == "string" and rec or (rec ~= nil and json.encode(rec) or "(no record)")
  if #text > 70 then text = text:sub(1, 67) .. "..." end
  return text
end

-- gather(c, opts) -> report
local function gather(c, opts, since_ms)
  local catalog, flows = require "aep.catalog", require "aep.flows"
  local report = { runs = {}, batches = {}, failed_records = {}, flows = {} }
  local flow_list = {}
  if opts.dataset then
    -- an id, a name or a run-manifest variable, as `aep stream -d` takes it
    local found, ds = pcall(require("aep.stream.target").find_dataset, c, opts.dataset, nil, c.cfg)
    if not found then
      if type(ds) == "table" and ds.code == "NOT_FOUND" and ds.message then return nil, ds.message end
      error(ds, 0)
    end
    report.dataset = { id = ds.id, name = ds.name, lastBatchId = ds.lastBatchId, lastBatchStatus = ds.lastBatchStatus,
                       lastSuccessfulBatch = ds.lastSuccessfulBatch, lastFailedBatch = ds.lastFailedBatch }
    flow_list = flows.flows_to_dataset(c, ds.id)
  else
    local f = flows.get(c, "flows", opts.flow)
    if not f then return nil, "dataflow '" .. opts.flow .. "' was not found" end
    flow_list = { f }
  end
  for _, f in ipairs(flow_list) do
    report.flows[#report.flows + 1] = { id = f.id, name = f.name }
    for _, r in ipairs(flows.list_runs(c, f.id, { since_ms = since_ms })) do
      report.runs[#report.runs + 1] = run_view(r)
    end
  end
  table.sort(report.runs, function(a, b) return (a.started or 0) > (b.started or 0) end)
  while #report.runs > opts.limit do table.remove(report.runs) end
  if report.dataset then
    for _, b in ipairs(catalog.list_batches(c, { dataset = report.dataset.id, created_after = since_ms,
                                                 limit = opts.limit })) do
      report.batches[#report.batches + 1] = batch_view(b)
    end
  else
    local seen = {}
    for _, r in ipairs(report.runs) do
      for _, id in ipairs(r.batches) do
        if not seen[id] and #report.batches < opts.limit then
          seen[id] = true
          local b = catalog.get_batch(c, id)
          if b then report.batches[#report.batches + 1] = batch_view(b) end
        end
      end
    end
  end
  report.failed = 0
  for _, b in ipairs(report.batches) do report.failed = report.failed + b.failed end
  if opts.errors then
    local diagnostics = require "aep.diagnostics"
    for _, b in ipairs(report.batches) do
      if b.failed > 0 or b.status == "failed" then
        for _, line in ipairs(diagnostics.failed_records(c, b.id)) do
          local emu = type(line._emulator) == "table" and line._emulator or {}
          report.failed_records[#report.failed_records + 1] = {
            batch = b.id, file = line._file, line = line._line, record = diagnostics.record_of(line),
            errors = line.errors, xactionId = emu.xactionId,
          }
        end
      end
    end
  end
  return report
end

local function print_text(out, term, report, opts)
  local json = require "aep.json"
  local function paint(style, s) return term.paint(out, style, s) end
  local function state_style(s)
    s = tostring(s):lower()
    if s == "success" or s == "active" then return "green" end
    if s == "failed" or s == "failure" then return "red" end
    return "yellow"
  end
  if report.dataset then
    local d = report.dataset
    out:write(paint("bold", "dataset " .. tostring(d.name or d.id)), " (", d.id, ")\n")
    if d.lastBatchId then
      out:write(string.format("  last batch %s (%s); last successful %s; last failed %s\n", d.lastBatchId,
        tostring(d.lastBatchStatus), tostring(d.lastSuccessfulBatch or "-"), tostring(d.lastFailedBatch or "-")))
    end
  end
  local names = {}
  for _, f in ipairs(report.flows) do names[#names + 1] = f.id end
  out:write(paint("bold", "runs"), " (dataflow ", #names > 0 and table.concat(names, ", ") or "none",
    ", last ", opts.since, ")\n")
  if #report.runs == 0 then out:write("  none\n") end
  for _, r in ipairs(report.runs) do
    out:write(string.format("  %s  %s  %s  %d in, %d ingested, %d failed\n", r.id, iso(r.started),
      paint(state_style(r.status), tostring(r.status)), r.input, r.output, r.failed))
    for _, e in ipairs(r.errors) do
      out:write("      ", tostring(e.code), " ", tostring(e.message),
        e.recordCount and (" (" .. int(e.recordCount) .. " records)") or "", "\n")
    end
  end
  out:write(paint("bold", "batches"), "\n")
  if #report.batches == 0 then out:write("  none\n") end
  for _, b in ipairs(report.batches) do
    out:write(string.format("  %s  %s  %s  %d ingested, %d failed\n", b.id, iso(b.created),
      paint(state_style(b.status), tostring(b.status)), b.records, b.failed))
    for _, e in ipairs(b.errors) do
      out:write("      ", tostring(e.code), " ", tostring(e.description),
        e.recordCount and (" (" .. int(e.recordCount) .. " records)") or "", "\n")
    end
  end
  if opts.errors then
    out:write(paint("bold", "failed records"), " (", #report.failed_records, ")\n")
    for _, r in ipairs(report.failed_records) do
      out:write("  batch ", r.batch, " ", record_label(json, r.record), "\n")
      for _, e in ipairs(r.errors) do out:write("      ", tostring(e.code), " ", tostring(e.message), "\n") end
    end
  end
end

local function write_json(out, reports, failed, opts)
  local json = require "aep.json"
  local function arr(t)
    json.array(t)
    for _, v in ipairs(t) do
      if type(v) == "table" then
        for _, k in ipairs { "errors", "batches" } do if v[k] then json.array(v[k]) end end
      end
    end
    return t
  end
  local docs = {}
  for i, report in ipairs(reports) do
    docs[i] = {
      dataset = report.dataset or json.null, flows = arr(report.flows), runs = arr(report.runs),
      batches = arr(report.batches), failed = report.failed,
      failed_records = opts.errors and arr(report.failed_records) or json.null,
    }
  end
  if opts.manifest then
    out:write(json.encode_pretty({ manifest = opts.manifest, datasets = json.array(docs), failed = failed }), "\n")
  else
    out:write(json.encode_pretty(docs[1]), "\n")
  end
end

function M.run(args)
  local opts, positional = cli.parse(args, SPEC)
  if opts.verbose then log.set_verbose(true) end
  if opts.quiet then log.set_quiet(true) end
  if positional[1] then cli.usage_error("unexpected argument '" .. tostring(positional[1]) .. "'") end
  local given = (opts.dataset and 1 or 0) + (opts.flow and 1 or 0) + (opts.manifest and 1 or 0)
  if given == 0 then cli.usage_error("missing --dataset ID, --flow ID or --manifest FILE") end
  if given > 1 then cli.usage_error("--dataset, --flow and --manifest exclude each other") end
  local age = age_seconds(opts.since)
  if not age then cli.usage_error("--since needs an age such as 90s, 15m, 2h or 7d, got '" .. opts.since .. "'") end
  if opts.limit < 1 or opts.limit > 100 then cli.usage_error("--limit must be 1..100") end
  if opts.watch and opts.json then cli.usage_error("--watch and --json exclude each other") end
  if opts.watch and not require("aep.term").isatty(io.stdout) then
    cli.usage_error("--watch refreshes a terminal; without one, run the command again (or use --json)")
  end
  local host = require "aep.host"

  -- the datasets of a run manifest, before any Platform request
  local targets = { opts }
  if opts.manifest then
    local f = io.open(opts.manifest, "rb")
    if not f then return fail("cannot read run manifest " .. opts.manifest) end
    f:close()
    local m, merr = require("aep.run.manifest").load(opts.manifest)
    if not m then return fail(merr) end
    targets = {}
    for _, r in ipairs(m.doc.resources or {}) do
      if r.kind == "dataset" and r.id then
        targets[#targets + 1] = setmetatable({ dataset = r.id, manifest = false }, { __index = opts })
      end
    end
    if #targets == 0 then return fail("run manifest " .. opts.manifest .. " names no dataset") end
  end

  local client
  -- one look: -> reports | nil, message (the client is made once: a watch reuses its token)
  local function look()
    local reports = {}
    local ok, err = pcall(function()
      if not client then
        local cfg = require("aep.config").load_default({ flags = opts })
        cfg:check()
        client = require("aep.platform").new(cfg)
      end
      local since_ms = math.floor((host.now() - age) * 1000)
      for _, t in ipairs(targets) do
        local report, gerr = gather(client, t, since_ms)
        if not report then return gerr end
        reports[#reports + 1] = report
      end
    end)
    if not ok then
      if cli.is_interrupt(err) then error(err, 0) end
      return nil, tostring(err)
    end
    if err then return nil, err end
    return reports
  end

  local out = io.stdout
  local WATCH_S = 2
  -- one look, written out -> exit status | nil, message
  local function once()
    local reports, err = look()
    if not reports then return nil, err end
    local failed = 0
    for _, r in ipairs(reports) do failed = failed + r.failed end
    if opts.json then
      write_json(out, reports, failed, opts)
    elseif not opts.quiet then
      -- --watch: home the cursor and clear the screen before each refresh
      if opts.watch then out:write("\27[H\27[2J") end
      for i, report in ipairs(reports) do
        if i > 1 then out:write("\n") end
        print_text(out, require "aep.term", report, opts)
      end
    end
    if opts.watch then out:write(string.format("\n(refreshing every %d s; Ctrl-C to stop)\n", WATCH_S)) end
    out:flush()
    return failed > 0 and cli.EXIT.INCOMPLETE or cli.EXIT.OK
  end

  if not opts.watch then
    local status, err = once()
    if not status then return fail(err) end
    return status
  end
  -- Ctrl-C is how a watch ends: the last refresh's status, not "interrupted"
  local last = cli.EXIT.OK
  for _ = 1, math.huge do
    local ok, status, err = pcall(once)
    if not ok then
      if cli.is_interrupt(status) then return last end
      error(status, 0)
    end
    if not status then return fail(err) end
    last = status
    local slept_ok, slept = pcall(host.sleep, WATCH_S)
    if not slept_ok then
      if cli.is_interrupt(slept) then return last end
      error(slept, 0)
    end
    if slept == false then return last end
  end
end

return M
