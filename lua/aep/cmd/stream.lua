-- aep stream: fast, paced, lossless bulk streaming of a file through a Lua mapping into a dataset.
-- The parts live in lua/aep/stream/ (readers, mapping, batcher, pacer, sender, ledger, progress,
-- report, target, pipeline); the set-up and the ending it shares with Kafka input are in
-- aep.stream.setup. This file turns flags into them and the outcome into an exit status.
local cli = require "aep.cli"
local config = require "aep.config"
local log = require "aep.log"
local host = require "aep.host"
local setup = require "aep.stream.setup"

local M = {}

local SPEC = {
  { "input", "string", short = "i", metavar = "FILE", help = "input file (.jsonl/.ndjson, .json, .csv, optionally .gz) or - for stdin" },
  { "dataset", "string", short = "d", metavar = "ID", help = "target dataset: id, name, or a run manifest variable (DATASET_ID_PROFILE)" },
  { "mapping", "string", short = "m", metavar = "FILE", help = "Lua file returning function(record, ctx) -> XDM entity | nil (skip)" },
  { "format", "string", metavar = "FMT", help = "jsonl | json | csv | rejects (default: from the file name)" },
  { "mapping-timeout", "integer", metavar = "MS", help = "time budget of one mapping call; a record that takes longer is rejected (default 1000, 0 = none)" },
  { "csv-max-field", "integer", metavar = "BYTES", help = "longest CSV record a quoted field may make (default 1048576)" },
  { "csv-max-lines", "integer", metavar = "N", help = "most lines a quoted CSV field may span (default 100)" },
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
  { "max-request-bytes", "integer", default = setup.MAX_REQUEST_BYTES, metavar = "N", help = "request body limit" },
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


A mapping is a Lua file returning function(record, ctx) that gives the XDM entity (a table, or
the JSON text of one object, checked before it is sent), nil to skip the record, or raises (the
record is rejected with the message). A call that runs longer than --mapping-timeout is rejected
("mapping exceeded N ms"); a mapping that calls os.exit stops the run with exit status 1 and a
report naming the record. Without --mapping, records are sent as they are. A reject file can be
given back as --input to replay it.

Input rules, the same for every format: A UTF-8 byte order mark at the start is skipped. An empty
input is 0 records (exit 0, with a warning). Text after the closing ']' of a JSON array is an
error naming its line. A CSV quoted field may span at most --csv-max-lines lines and
--csv-max-field bytes: a row whose quote does not close is rejected alone, with its line, and
reading goes on at the next line. A truncated gzip input fails the run (exit 1) with the position
reached; the records before it are accounted as usual. SIGTERM stops a run as Ctrl-C does: what
is settled is written, with the checkpoint and the report, and the exit status is 143.
A --checkpoint belongs to its input (size and content of the bytes it saw) and mapping: resuming
with another input or mapping is refused (an input that was only appended to resumes).
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

function M.run(args)
  local opts, positional = cli.parse(args, SPEC)
  if opts.verbose then log.set_verbose(true) end
  if opts.json then opts.quiet = true end -- stdout holds the JSON report and nothing else
  if opts.quiet then log.set_quiet(true) end
  local kafka_status = kafka_input.dispatch(opts, positional) -- nil unless --from kafka
  if kafka_status then return kafka_status end
  local input = opts.input or positional[1]
  if not input then cli.usage_error("missing --input FILE (or - for stdin)") end
  if positional[2] or (opts.input and positional[1]) then cli.usage_error("unexpected argument '" .. tostring(positional[opts.input and 1 or 2]) .. "'") end
  setup.check_flags(opts)

  if opts.mapping_timeout and opts.mapping_timeout < 0 then cli.usage_error("--mapping-timeout must be 0 or more") end
  if opts.csv_max_field and opts.csv_max_field < 1 then cli.usage_error("--csv-max-field must be at least 1") end
  if opts.csv_max_lines and opts.csv_max_lines < 1 then cli.usage_error("--csv-max-lines must be at least 1") end

  local s, status = setup.prepare(opts, input, true)
  if not s then return status end
  local reader, ledger, pacer, target = s.reader, s.ledger, s.pacer, s.target
  local progress = require("aep.stream.progress").new({
    quiet = opts.quiet, interval = opts.progress_interval,
  })
  if not opts.quiet then
    log.info("aep stream: %s -> dataset %s via %s (%s%s)", input == "-" and "stdin" or input,
      tostring(target.dataset_id), target.url, pacer:describe(),
      ledger.resumed and (", resuming from " .. opts.checkpoint) or "")
  end
  s.t_stream = host.monotonic()
  -- SIGTERM (a service manager, a container stop) ends the run as Ctrl-C does: stop reading,
  -- write what is settled, the checkpoint and the report, exit 143
  host.trap_term()
  local result = require("aep.stream.pipeline").run({
    reader = reader, map = s.map, encoder = target.encoder, ledger = ledger, sender = s.sender,
    progress = progress, input = input, ctx = setup.mapping_context(s),
    max_bytes = opts.max_request_bytes, max_count = s.batch_size,
    max_outstanding = s.concurrency + 1, mapping_path = opts.mapping, term_requested = host.term_requested,
  })
  local t_end = host.monotonic()
  progress:finish()
  local finished = not result.interrupted and not result.fatal and not result.read_error
  ledger:save(finished)
  ledger:close()
  reader:close()
  s.pool:close()

  local exit_status, stopped = setup.outcome(result, ledger.counts,
    "interrupted (the checkpoint, if any, lets the same command resume)")
  local terminated = result.interrupted and host.term_requested()
  if terminated then
    exit_status = 143
    stopped = "stopped by SIGTERM (the checkpoint, if any, lets the same command resume)"
  end
  if result.read == 0 and result.resumed_records == 0 and not result.read_error and not result.interrupted then
    log.warn("stream: %s holds no records (0 read)", input == "-" and "stdin" or input)
  end
  local r = setup.report_fields(s, result, t_end, exit_status, stopped)
  r.format = reader.format
  r.last_position = result.last_position -- the last input position read (where a run that stopped early stopped)
  r.checkpoint, r.resumed, r.resumed_records = opts.checkpoint, ledger.resumed, result.resumed_records
  return setup.conclude(s, r, require("aep.stream.report").summary(r), { json = opts.json })
end

return M
