-- aep stream: fast, paced, lossless bulk streaming of records through a Lua mapping into a dataset.
-- The parts live in lua/aep/stream/ (readers, mapping, batcher, pacer, sender, ledger, progress,
-- report, target, pipeline, setup); where records come from is a source, one module each under
-- lua/aep/stream/sources/, listed in SOURCES below. This file owns --from, merges each source's
-- flags and usage into the command's, and turns the outcome into an exit status.
local cli = require "aep.cli"
local config = require "aep.config"
local log = require "aep.log"
local host = require "aep.host"
local setup = require "aep.stream.setup"

local M = {}

-- Where records come from: `--from NAME` picks one; `file` when not given. A source is one module
-- under lua/aep/stream/sources/ (the interface: docs/ARCHITECTURE.md, "Stream sources"); adding
-- one is that file plus its line here.
local SOURCES = {
  (require("aep.stream.sources.file")),
  (require("aep.stream.sources.kafka")),
}
local DEFAULT_SOURCE = "file"
M.SOURCES = SOURCES

local COMMON = {
  { "dataset", "string", short = "d", metavar = "ID", help = "target dataset: id, name, or a run manifest variable (DATASET_ID_PROFILE)" },
  { "mapping", "string", short = "m", metavar = "FILE", help = "Lua file returning function(record, ctx) -> XDM entity | nil (skip)" },
  { "mapping-set", "string", metavar = "FILE|ID", help = "a Data Prep mapping set (JSON file, or the id of one in the org) mapping records locally, instead of --mapping" },
  { "raw", "boolean", help = "send records as they are to a dataflow with a mapping set (--flow-id, or the one writing --dataset): AEP maps them" },
  { "upsert", "string", metavar = "OP", help = "send Data Prep upserts to Profile: create, merge or delete (operations.data)" },
  { "identity-dataset", "string", metavar = "ID", help = "with --upsert: also create the record's identities through this dataset (operations.identity create)" },
  { "mapping-timeout", "integer", metavar = "MS", help = "time budget of one mapping call; a record that takes longer is rejected (default 1000, 0 = none)" },
  { "workers", "integer", metavar = "N", help = "threads that decode, map and encode records, each with its own Lua state and copy of the mapping (default: the number of online cores; 1 = all in the main thread; --from file only)" },
  { "reject-file", "string", metavar = "FILE", help = "write rejected and failed records here (JSON Lines; replayable as --input)" },
  { "report", "string", metavar = "FILE", help = "write a report: JSON, or JUnit XML when FILE ends in .xml" },
  { "accepted-file", "string", metavar = "FILE", help = "write 'position<TAB>xactionId[<TAB>possibly-duplicated]' per accepted record" },
  { "batch-size", "integer", default = 500, metavar = "N", help = "messages per batch request (also capped at 1 MB)" },
  { "concurrency", "integer", default = 8, metavar = "N", help = "requests in flight" },
  { "rate", "string", metavar = "N", help = "requests per second (default 1000 against AEP, unlimited on loopback; 0 = unlimited)" },
  { "message-rate", "string", metavar = "N", help = "messages per second (default 10000 against AEP, unlimited on loopback)" },
  { "follow", "boolean", default = true, help = "after sending, wait for AEP's validation and report each accepted record as ingested, failed after acceptance or unknown (--no-follow: stop at AEP's answer)" },
  { "wait", "string", metavar = "DURATION", help = "how long the follow-through waits (90s, 15m, 1h; default 60s against the emulator, 60m against AEP)" },
  { "sync-validation", "boolean", help = "validate each record synchronously: one per request, at most 60 requests a minute" },
  { "retries", "integer", default = 8, metavar = "N", help = "attempts per request before its records fail" },
  { "timeout", "number", default = 60, metavar = "SECONDS", help = "per-request timeout" },
  { "to", "string", metavar = "TARGET", help = "streaming (default: the dataset's streaming inlet) or edge (Edge Network Server API events, with --datastream)" },
  { "datastream", "string", metavar = "ID", help = "datastream id (or run manifest variable DATASTREAM_ID) for --to edge" },
  { "edge-url", "string", metavar = "URL", help = "Edge Network base URL for --to edge (default https://server.adobedc.net; the gateway on loopback)" },
  { "inlet", "string", metavar = "URL", help = "use this streaming inlet instead of finding the dataset's connection" },
  { "flow-id", "string", metavar = "ID", help = "dataflow id for the envelope (with --inlet)" },
  { "authenticated", "boolean", help = "the --inlet needs a bearer token (authenticationRequired connection)" },
  { "schema", "string", metavar = "ID", help = "schema id for the envelope (with --inlet: no Platform call at all)" },
  { "manifest", "string", metavar = "FILE", help = "run manifest: --dataset variables, and what stream creates, for teardown (default: aep run's)" },
  { "run-name", "string", metavar = "NAME", help = "run name of that manifest (as aep run --run-name; default aep)" },
  { "tenant", "string", metavar = "NAME", help = "tenant id for the mapping's ctx.tenant (default: from the schema id)" },
  { "max-request-bytes", "integer", default = setup.MAX_REQUEST_BYTES, metavar = "N", help = "request body limit" },
  { "progress-interval", "number", metavar = "SECONDS", help = "seconds between progress lines when not on a terminal (default 10)" },
  cli.common.env, cli.common.json, cli.common.quiet, cli.common.verbose,
}
for _, s in ipairs(config.flag_spec()) do
  if s[1] ~= "org" then COMMON[#COMMON + 1] = s end
end
COMMON[#COMMON + 1] = { "org", "string", metavar = "ORG", help = "IMS organization id (...@AdobeOrg)" }
local names = {}
for i, src in ipairs(SOURCES) do
  names[i] = src.name .. (src.name == DEFAULT_SOURCE and " (default)" or "")
end
COMMON[#COMMON + 1] = { "from", "string", metavar = "SOURCE", help = "where records come from: " ..
  table.concat(names, ", ", 1, #names - 1) .. " or " .. names[#names] }

-- Each source's flags join the command's; the usage lists them under the source.
local SPEC = table.move(COMMON, 1, #COMMON, 1, {})
local owner = {}  -- option key -> the source that owns the flag
local source_help = {}
for _, src in ipairs(SOURCES) do
  for _, f in ipairs(src.flags) do
    SPEC[#SPEC + 1] = f
    owner[(f[1]:gsub("%-", "_"))] = src
  end
  source_help[#source_help + 1] = "\nFlags of --from " .. src.name .. (src.name == DEFAULT_SOURCE and " (the default)" or "") ..
    ", " .. src.summary .. ":\n" .. cli.flags_help(src.flags) .. "\n\n" .. src.usage
end

M.usage = [[
usage: aep stream --dataset ID --input FILE [--mapping FILE | --mapping-set FILE|ID | --raw] [flags]

Streams every record of FILE into the dataset through AEP's streaming batch endpoint, at up to
AEP's documented rate (1,000 requests/s, 10,000 messages/s; unlimited against the local emulator),
and accounts for each one: accepted, rejected (with AEP's reason), skipped by the mapping, or
failed after retries. AEP validates accepted records afterwards (unless --sync-validation): by
default aep then waits (--wait) until the dataset's batches covering them are final and reports
each accepted record as ingested, failed after acceptance (with AEP's code and message, written to
the reject file for a replay) or unknown when the wait ran out (with the `aep status` command that
finishes the check). Exit status: 0 all accepted or skipped (and none failed after acceptance), 2
some rejected, failed or failed after acceptance, 1 could not run.

The records go through the HTTP API dataflow that already writes the dataset: the run manifest's
(the one `aep run realtime-import` made), else one Flow Service lists. Only when there is none is
one created, named "aep stream <dataset id>", and recorded in the run manifest (--manifest, or the
one aep run keeps for --run-name) so that `aep run teardown` deletes it. One line on stderr says
which dataflow is used, or what was created.

Flags:
]] .. cli.flags_help(COMMON) .. [[


A mapping is a Lua file returning function(record, ctx) that gives the XDM entity (a table, or
the JSON text of one object, checked before it is sent), nil to skip the record, or raises (the
record is rejected with the message). A call that runs longer than --mapping-timeout is rejected
("mapping exceeded N ms"); a mapping that calls os.exit stops the run with exit status 1 and a
report naming the record. Without --mapping, records are sent as they are. A reject file can be
given back as --input to replay it.

--mapping-set FILE|ID maps with a Data Prep mapping set instead (AEP's own mapping language, run
locally by the engine of docs/dataprep.md): it is validated against the dataset's schema before
anything is sent, and a record whose mapping fails is rejected with Data Prep's error. A set
written for another tenant (its xdmSchema) has its _TENANT destinations moved to the dataset's.
--workers N maps on N threads (default: one per online core), each with its own Lua state and
its own copy of the mapping (the file's top-level code runs once in each); records are read,
batched, sent and accounted in input order on the main thread, so every output is the same as
with --workers 1. A mapping that keeps state across records (counters, a cache it relies on,
dedup) sees only the records its worker got: run it with --workers 1. Only --from file inputs of
JSON Lines, JSON arrays and CSV use workers; a replayed reject file and --from kafka map in the
main thread (for Kafka, run one consumer per core in the same --group: docs/kafka.md).

--raw sends the records as they are, one per request, to an HTTP API dataflow that carries a
mapping set (x-adobe-flow-id: --flow-id, or the one such dataflow writing --dataset): AEP maps
them, and `aep status --errors` shows the records its mapping failed. --upsert OP sends Data
Prep upserts (operations.data create, merge or delete; --identity-dataset ID adds identity
create): partial Profile updates, the body being the locally mapped entity, or the record as it
is with --raw.
]] .. table.concat(source_help) .. [[

Examples:
  aep stream --env env.json --dataset DATASET_ID_PROFILE --input data/AEP_loyalty_profiles.json \
      --mapping mappings/loyalty_profile.lua
  aep stream -d 5f1b0c3d2e4a -i big.jsonl.gz -m my_mapping.lua --reject-file rejects.jsonl --checkpoint run.ckpt
  aep stream -d 5f1b0c3d2e4a -i rejects.jsonl -m my_mapping.lua     (replay what was rejected)
  aep stream -d 5f1b0c3d2e4a -i - --report report.xml < records.jsonl
  aep run auth schemas datasets web       (a datastream on the local emulator: docs/web.md)
  aep stream --to edge --datastream DATASTREAM_ID -i data/AEP_loyalty_events.json \
      -m mappings/loyalty_event.lua
  aep validate -d 5f1b0c3d2e4a -i big.jsonl.gz -m my_mapping.lua    (check offline first)
  aep stream -d DATASET_ID_PROFILE -i data/AEP_loyalty_profiles.json \
      --mapping-set mappings/loyalty_profile.mapping-set.json
  aep stream --raw -d DATASET_ID_PROFILE -i data/AEP_loyalty_profiles.json
  aep stream --raw --upsert merge -d DATASET_ID_PROFILE -i changes.jsonl
]]

M.summary = "stream a file of records through a mapping into a dataset: paced, accounted, resumable"

local function source_named(name)
  local quoted = {}
  for i, src in ipairs(SOURCES) do
    if src.name == name then return src end
    quoted[i] = "'" .. src.name .. "'"
  end
  cli.usage_error("--from takes " .. table.concat(quoted, ", ", 1, #quoted - 1) .. " or " .. quoted[#quoted] ..
    ", got '" .. tostring(name) .. "'")
end

-- After the answer: follow what was accepted to its outcome (aep.stream.follow), write the
-- failures as reject entries and tell the source (aep.stream.outcomes)
local function follow_through(s, source, tracker, opts)
  local follow = require "aep.stream.follow"
  local target = s.target
  local wait = follow.default_wait(target)
  if opts.wait then wait = follow.parse_duration(opts.wait) end
  if tracker.n > 0 and not opts.quiet then
    log.info("aep stream: following %d accepted records through AEP's validation (waiting up to %s s)",
      tracker.n, tostring(wait))
  end
  local outcome = follow.run{
    client = target.client, dataset_id = target.dataset_id, since_ms = s.since_ms, tracker = tracker,
    wait = wait, is_local = target.is_local,
    entity_of = require("aep.stream.pipeline").entity_extractor(target.encoder),
  }
  return require("aep.stream.outcomes").apply{
    ledger = s.ledger, outcome = outcome, source = source, input = source.input, env = opts.env,
    dataset_id = target.dataset_id, wait = wait,
    since = math.max(1, math.ceil((host.now() * 1000 - s.since_ms) / 60000) + 15) .. "m",
  }
end

-- The worker threads of --workers (aep.stream.workers) -> feed | false (map in-process) | nil, err
local function start_workers(s, src, source, ctx)
  local opts = s.opts
  local workers = require "aep.stream.workers"
  local n = opts.workers or workers.default_count()
  if n <= 1 or not s.map or src.name ~= "file" then return false end
  local set = s.map_set or {}
  local feed, why = workers.start(source, {
    n = n, ledger = s.ledger, mapping = opts.mapping, timeout_ms = opts.mapping_timeout,
    set = set.set, schema = set.resolved, set_name = set.name, ctx = ctx,
  })
  if feed == false then log.debug("aep stream: mapping in the main thread: %s", why) end
  return feed, why
end

function M.run(args)
  local opts, positional = cli.parse(args, SPEC)
  if opts.verbose then log.set_verbose(true) end
  if opts.json then opts.quiet = true end -- stdout holds the JSON report and nothing else
  if opts.quiet then log.set_quiet(true) end
  local src = source_named(opts.from or DEFAULT_SOURCE)
  -- a flag of another source: the source says why it takes none, or name the --from it needs
  for _, s in ipairs(SPEC) do
    local key = s[1]:gsub("%-", "_")
    local o = owner[key]
    local v = opts[key]
    if o and o ~= src and v ~= nil and v ~= false and v ~= s.default and not (type(v) == "table" and #v == 0) then
      cli.usage_error(src.refuses and src.refuses[key] or ("--" .. s[1] .. " needs --from " .. o.name))
    end
  end
  local problem = src.check(opts, positional)
  if problem then cli.usage_error(problem) end
  if opts.mapping and opts.mapping_set then cli.usage_error("--mapping and --mapping-set exclude each other") end
  local raw_problem = require("aep.stream.raw").check(opts)
  if raw_problem then cli.usage_error(raw_problem) end
  setup.check_flags(opts)
  if opts.wait and not require("aep.stream.follow").parse_duration(opts.wait) then
    cli.usage_error("--wait takes a duration such as 90s, 15m or 1h, got '" .. tostring(opts.wait) .. "'")
  end
  if opts.mapping_timeout and opts.mapping_timeout < 0 then cli.usage_error("--mapping-timeout must be 0 or more") end
  if opts.workers and opts.workers < 1 then cli.usage_error("--workers must be 1 or more") end

  local source, serr = src.open(opts)
  if not source then return setup.fail(serr) end
  local s, status = setup.prepare(opts, source.input)
  if not s then
    source:close()
    return status
  end
  local ledger, pacer, target = s.ledger, s.pacer, s.target
  local progress = require("aep.stream.progress").new({
    quiet = opts.quiet, interval = opts.progress_interval,
  })
  if not opts.quiet then
    log.info("aep stream: %s -> dataset %s via %s (%s%s)", source.title,
      tostring(target.dataset_id), target.url, pacer:describe(),
      ledger.resumed and (", resuming from " .. opts.checkpoint) or "")
  end
  s.t_stream = host.monotonic()
  local ctx = setup.mapping_context(s)
  if source.start then source:start(ctx) end
  -- SIGTERM (a service manager, a container stop) ends the run as Ctrl-C does: stop reading,
  -- write what is settled, the checkpoint and the report, exit 143; unless the source drains on
  -- it (Kafka: it stops taking records, and what is in flight is answered and committed)
  local term_requested
  if source.sigterm ~= "drain" then
    host.trap_term()
    term_requested = host.term_requested
  end
  -- no follow-through with --sync-validation (answers are final) or without a Platform client
  -- (--inlet with --schema: nothing to read outcomes from)
  local follower = opts.follow and not opts.sync_validation and target.client and
    require("aep.stream.follow").tracker() or nil
  s.since_ms = math.floor(host.now() * 1000)
  local feed, ferr = start_workers(s, src, source, ctx)
  if feed == nil then
    ledger:close()
    source:close()
    s.pool:close()
    return setup.fail(ferr)
  end
  local ok_run, result = pcall(require("aep.stream.pipeline").run, {
    feed = feed or nil,
    on_accept = follower and follower.on_accept,
    source = source, map = s.map, encoder = target.encoder, ledger = ledger, sender = s.sender,
    progress = progress, input = source.input, ctx = ctx,
    max_bytes = opts.max_request_bytes, max_count = s.batch_size,
    max_outstanding = s.concurrency + 1, mapping_path = opts.mapping, term_requested = term_requested,
  })
  if feed then feed:close() end
  if not ok_run then error(result, 0) end
  local t_end = host.monotonic()
  progress:finish()
  local finished = not result.interrupted and not result.fatal and not result.read_error
  local followed
  if follower and finished then followed = follow_through(s, source, follower, opts) end
  ledger:save(finished)
  ledger:close()
  source:close()
  s.pool:close()

  local exit_status, stopped = setup.outcome(result, ledger.counts, source.interrupted_text)
  if followed and followed.failed_after_acceptance > 0 and exit_status == cli.EXIT.OK then
    exit_status = cli.EXIT.INCOMPLETE
  end
  if followed and followed.stop and not stopped then stopped = followed.stop end
  local terminated = result.interrupted and term_requested and term_requested()
  if terminated then
    exit_status = 143
    stopped = "stopped by SIGTERM (the checkpoint, if any, lets the same command resume)"
  end
  local r = setup.report_fields(s, result, t_end, exit_status, stopped)
  r.checkpoint, r.resumed, r.resumed_records = opts.checkpoint, ledger.resumed, result.resumed_records
  r.follow = followed
  local more, extra
  if source.report then more, extra = source:report(r, result) end
  local report = require "aep.stream.report"
  return setup.conclude(s, r, report.summary(r) .. (more or ""), { json = opts.json, extra = extra })
end

return M
