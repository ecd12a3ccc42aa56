-- aep stream: fast, paced, lossless bulk streaming of a file through a Lua mapping into a dataset.
-- The parts live in lua/aep/stream/ (readers, mapping, batcher, pacer, sender, ledger, progress,
-- report, target, pipeline); this file turns flags into them and the outcome into an exit status.
local cli = require "aep.cli"
local config = require "aep.config"
local log = require "aep.log"
local host = require "aep.host"

local M = {}

-- Pacing defaults. Against AEP: its documented ceilings (aep-api-facts §8.4). Against an inlet on
-- loopback (the local emulator, a bench sink) there is no ceiling to respect: unlimited.
M.AEP_REQUESTS_PER_S = 1000
M.AEP_MESSAGES_PER_S = 10000
-- Sync validation: AEP allows 60 requests a minute per inlet; one request every 1.05 s keeps any
-- minute at 58 or fewer even when requests are delayed unevenly on the way.
M.SYNC_INTERVAL_S = 1.05
M.MAX_REQUEST_BYTES = 1000000

local SPEC = {
  { "input", "string", short = "i", metavar = "FILE", help = "input file (.jsonl/.ndjson, .json, .csv, optionally .gz) or - for stdin" },
  { "dataset", "string", short = "d", metavar = "ID", help = "target dataset: id, name, or a run manifest variable (DATASET_ID_PROFILE)" },
  { "mapping", "string", short = "m", metavar = "FILE", help = "Lua file returning function(record, ctx) -> XDM entity | nil (skip)" },
  { "format", "string", metavar = "FMT", help = "jsonl | json | csv | rejects (default: from the file name)" },
  { "reject-file", "string", metavar = "FILE", help = "write rejected and failed records here (JSON Lines; replayable as --input)" },
  { "checkpoint", "string", metavar = "FILE", help = "resume file: how far the input is acknowledged (same command resumes)" },
  { "report", "string", metavar = "FILE", help = "write a report: JSON, or JUnit XML when FILE ends in .xml" },
  { "accepted-file", "string", metavar = "FILE", help = "write 'position<TAB>xactionId[<TAB>possibly-duplicated]' per accepted record" },
  { "batch-size", "integer", default = 500, metavar = "N", help = "messages per batch request (also capped at 1 MB)" },
  { "concurrency", "integer", default = 8, metavar = "N", help = "requests in flight" },
  { "rate", "string", metavar = "N", help = "requests per second (default 1000 against AEP, unlimited on loopback; 0 = unlimited)" },
  { "message-rate", "string", metavar = "N", help = "messages per second (default 10000 against AEP, unlimited on loopback)" },
  { "sync-validation", "boolean", help = "validate each record synchronously: one per request, at most 60 requests a minute" },
  { "retries", "integer", default = 8, metavar = "N", help = "attempts per request before its records fail" },
  { "timeout", "number", default = 60, metavar = "SECONDS", help = "per-request timeout" },
  { "inlet", "string", metavar = "URL", help = "use this streaming inlet instead of finding the dataset's connection" },
  { "flow-id", "string", metavar = "ID", help = "dataflow id for the envelope (with --inlet)" },
  { "authenticated", "boolean", help = "the --inlet needs a bearer token (authenticationRequired connection)" },
  { "schema", "string", metavar = "ID", help = "schema id for the envelope (with --inlet: no Platform call at all)" },
  { "manifest", "string", metavar = "FILE", help = "run manifest to resolve --dataset variables from (default: aep run's)" },
  { "run-name", "string", metavar = "NAME", help = "run name of that manifest (as aep run --run-name; default aep)" },
  { "tenant", "string", metavar = "NAME", help = "tenant id for the mapping's ctx.tenant (default: from the schema id)" },
  { "max-request-bytes", "integer", default = M.MAX_REQUEST_BYTES, metavar = "N", help = "request body limit" },
  { "progress-interval", "number", metavar = "SECONDS", help = "seconds between progress lines when not on a terminal (default 10)" },
  cli.common.env, cli.common.json, cli.common.quiet, cli.common.verbose,
}
for _, s in ipairs(config.flag_spec()) do
  if s[1] ~= "org" then SPEC[#SPEC + 1] = s end
end
SPEC[#SPEC + 1] = { "org", "string", metavar = "ORG", help = "IMS organization id (...@AdobeOrg)" }
-- Kafka input (--from kafka): its flags, usage and loop live in lua/aep/stream/kafka.lua.
local kafka_input = require "aep.stream.kafka"
for _, s in ipairs(kafka_input.SPEC) do SPEC[#SPEC + 1] = s end

M.usage = [[
usage: aep stream --dataset ID --input FILE [--mapping FILE] [flags]

Streams every record of FILE into the dataset through AEP's streaming batch endpoint, at up to
AEP's documented rate (1,000 requests/s, 10,000 messages/s; unlimited against the local emulator),
and accounts for each one: accepted, rejected (with AEP's reason), skipped by the mapping, or
failed after retries. Exit status: 0 all accepted or skipped, 2 some rejected or failed, 1 could
not run.

Flags:
]] .. cli.flags_help(SPEC) .. [[


A mapping is a Lua file returning function(record, ctx) that gives the XDM entity (a table), nil
to skip the record, or raises (the record is rejected with the message). Without --mapping,
records are sent as they are. A reject file can be given back as --input to replay it.
]]
M.usage = M.usage .. kafka_input.USAGE .. [[

Examples:
  aep stream --env env.json --dataset DATASET_ID_PROFILE --input data/AEP_loyalty_profiles.json \
      --mapping mappings/loyalty_profile.lua
  aep stream -d 5f1b0c3d2e4a -i big.jsonl.gz -m my_mapping.lua --reject-file rejects.jsonl --checkpoint run.ckpt
  aep stream -d 5f1b0c3d2e4a -i rejects.jsonl -m my_mapping.lua     (replay what was rejected)
  aep stream -d 5f1b0c3d2e4a -i - --report report.xml < records.jsonl
  aep validate -d 5f1b0c3d2e4a -i big.jsonl.gz -m my_mapping.lua    (check offline first)
]]

M.summary = "stream a file of records through a mapping into a dataset: paced, accounted, resumable"

local function parse_rate(v, flag)
  if v == nil then return nil end
  local l = tostring(v):lower()
  if l == "0" or l == "unlimited" or l == "none" or l == "inf" then return math.huge end
  local n = tonumber((l:gsub("/s$", "")))
  if not n or n <= 0 then cli.usage_error("flag '--" .. flag .. "' needs a positive number or 'unlimited', got '" .. tostring(v) .. "'") end
  return n
end

local function fail(message)
  log.error("stream: %s", message)
  return cli.EXIT.ERROR
end

local function iso_now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

function M.run(args)
  local opts, positional = cli.parse(args, SPEC)
  if opts.verbose then log.set_verbose(true) end
  if opts.json then opts.quiet = true end -- stdout holds the JSON report and nothing else
  if opts.quiet then log.set_quiet(true) end
  local kafka_status = kafka_input.dispatch(opts, positional, M) -- nil unless --from kafka
  if kafka_status then return kafka_status end
  local input = opts.input or positional[1]
  if not input then cli.usage_error("missing --input FILE (or - for stdin)") end
  if positional[2] or (opts.input and positional[1]) then cli.usage_error("unexpected argument '" .. tostring(positional[opts.input and 1 or 2]) .. "'") end
  if not opts.dataset and not (opts.inlet and opts.schema) then
    cli.usage_error("missing --dataset ID")
  end
  if opts.batch_size < 1 then cli.usage_error("--batch-size must be at least 1") end
  if opts.concurrency < 1 then cli.usage_error("--concurrency must be at least 1") end
  if opts.retries < 1 then cli.usage_error("--retries must be at least 1") end
  local req_rate = parse_rate(opts.rate, "rate")
  local msg_rate = parse_rate(opts.message_rate, "message-rate")

  local started_wall, t0 = iso_now(), host.monotonic()
  local readers = require "aep.stream.readers"
  local ledger_mod = require "aep.stream.ledger"

  -- input and mapping first: a typo there should not cost a Platform round trip
  local reader, rerr = readers.open(input, { format = opts.format })
  if not reader then return fail(rerr) end
  local map
  if opts.mapping then
    local m, merr = require("aep.stream.mapping").load(opts.mapping)
    if not m then return fail(merr) end
    map = m
  end

  local ok_cfg, cfg = pcall(config.load, { flags = opts })
  if not ok_cfg then return fail(tostring(cfg)) end

  local ok_t, target = pcall(require("aep.stream.target").resolve, {
    cfg = cfg, dataset = opts.dataset, inlet = opts.inlet, flow_id = opts.flow_id, schema = opts.schema,
    authenticated = opts.authenticated,
    org = opts.org, manifest = opts.manifest, run_name = opts.run_name, sync = opts.sync_validation, log = log,
  })
  if not ok_t then
    if type(target) == "string" and target:match("interrupted$") then return cli.EXIT.INTERRUPTED end
    return fail(tostring(target))
  end

  -- JUnit needs the reject entries back at the end: keep them in a temporary file if no
  -- --reject-file was given
  local reject_file = opts.reject_file
  local temp_rejects
  if not reject_file and opts.report and opts.report:lower():match("%.xml$") then
    temp_rejects = os.tmpname()
    reject_file = temp_rejects
  end
  local ledger, lerr = ledger_mod.new({
    checkpoint = opts.checkpoint, reject_file = reject_file, accepted_file = opts.accepted_file,
    input = input, dataset = target.dataset_id,
  })
  if not ledger then return fail(lerr) end

  -- pacing
  local pacer_opts = {}
  local batch_size, concurrency = opts.batch_size, opts.concurrency
  if opts.sync_validation then
    pacer_opts.requests = 1 / M.SYNC_INTERVAL_S
    if req_rate and req_rate < pacer_opts.requests then pacer_opts.requests = req_rate end
    batch_size, concurrency = 1, 1
  else
    pacer_opts.requests = req_rate or (target.is_local and math.huge or M.AEP_REQUESTS_PER_S)
    pacer_opts.messages = msg_rate or (target.is_local and math.huge or M.AEP_MESSAGES_PER_S)
  end
  local pacer = require("aep.stream.pacer").new(pacer_opts)

  local http = require "aep.http"
  local pool = http.pool({
    max_in_flight = concurrency, timeout = opts.timeout, connect_timeout = 10,
    cainfo = cfg:cacert(), insecure = cfg:insecure() or nil,
  })
  local sender = require("aep.stream.sender").new({
    pool = pool, url = target.url, sync = opts.sync_validation, headers = target.headers,
    pacer = pacer, ledger = ledger, auth = target.auth, concurrency = concurrency,
    max_attempts = opts.retries,
  })
  local progress = require("aep.stream.progress").new({
    quiet = opts.quiet, interval = opts.progress_interval,
  })
  if not opts.quiet then
    log.info("aep stream: %s -> dataset %s via %s (%s%s)", input == "-" and "stdin" or input,
      tostring(target.dataset_id), target.url, pacer:describe(),
      ledger.resumed and (", resuming from " .. opts.checkpoint) or "")
  end
  local t_stream = host.monotonic()
  local ctx = { input = input, dataset_id = target.dataset_id, schema_id = target.schema_id,
                tenant = opts.tenant or target.tenant }
  if ctx.tenant == nil and target.client then
    -- asked for only when a mapping reads it (the sample mappings put fields under _<tenant>)
    setmetatable(ctx, { __index = function(t, k)
      if k ~= "tenant" then return nil end
      local ok, tenant = pcall(require("aep.schemas").tenant_id, target.client)
      rawset(t, "tenant", ok and tenant or false)
      return rawget(t, "tenant") or nil
    end })
  end
  local result = require("aep.stream.pipeline").run({
    reader = reader, map = map, encoder = target.encoder, ledger = ledger, sender = sender,
    progress = progress, input = input, ctx = ctx,
    max_bytes = opts.max_request_bytes, max_count = batch_size,
    max_outstanding = concurrency + 1,
  })
  local t_end = host.monotonic()
  progress:finish()
  local finished = not result.interrupted and not result.fatal and not result.read_error
  ledger:save(finished)
  ledger:close()
  reader:close()
  pool:close()

  local c = ledger.counts
  local exit_status
  if result.interrupted then exit_status = cli.EXIT.INTERRUPTED
  elseif result.fatal or result.read_error then exit_status = cli.EXIT.ERROR
  elseif c.rejected + c.failed > 0 then exit_status = cli.EXIT.INCOMPLETE
  else exit_status = cli.EXIT.OK end

  local stopped
  if result.interrupted then stopped = "interrupted (the checkpoint, if any, lets the same command resume)"
  elseif result.fatal then stopped = result.fatal
  elseif result.read_error then stopped = result.read_error end
  local statuses = {}
  for k, v in pairs(sender.stats.statuses) do statuses[tostring(k)] = v end
  local r = {
    input = input, format = reader.format, dataset_id = target.dataset_id, inlet_url = target.inlet_url,
    counts = c, this_run = ledger.this_run, this_run_records = result.read,
    duration = t_end - t0, setup_duration = t_stream - t0, stream_duration = t_end - t_stream,
    started = started_wall, finished = iso_now(),
    requests = sender.stats.requests, retries = sender.stats.retries, splits = sender.stats.splits,
    bytes = sender.stats.bytes, statuses = statuses, pacing = pacer:describe(),
    reject_file = opts.reject_file, checkpoint = opts.checkpoint,
    resumed = ledger.resumed, resumed_records = result.resumed_records,
    sample_reasons = result.samples, exit_status = exit_status, stopped = stopped,
  }
  if opts.report then
    local ok, err = require("aep.stream.report").write(opts.report, r, reject_file)
    if not ok then log.error("stream: cannot write the report %s: %s", opts.report, tostring(err)) end
  end
  if temp_rejects then os.remove(temp_rejects) end
  local text = require("aep.stream.report").summary(r)
  if opts.json then
    io.stdout:write(log.redact(require("aep.json").encode_pretty(require("aep.stream.report").json_doc(r))), "\n")
    io.stdout:flush()
  elseif opts.quiet then
    log.print("%s", (text:match("^[^\n]*\n[^\n]*")))
  else
    io.stdout:write(log.redact(text))
    io.stdout:flush()
  end
  if stopped and not result.interrupted then log.error("stream: %s", stopped) end
  return exit_status
end

return M
