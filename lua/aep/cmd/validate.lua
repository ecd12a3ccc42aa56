-- aep validate: map and validate a whole file offline, as AEP's synchronous validation would,
-- without sending anything. The parts are aep.stream.readers (input), aep.stream.mapping (the
-- mapping), aep.validate (schema, aep.xdm validator, size limits) and aep.term (progress).
local cli = require "aep.cli"
local log = require "aep.log"

local M = {}

local SPEC = {
  { "mapping", "string", short = "m", metavar = "FILE", help = "Lua file returning function(record, ctx) -> XDM entity | nil (skip); without it records are checked as they are" },
  { "input", "string", short = "i", metavar = "FILE", help = "input file (.jsonl/.ndjson, .json, .csv, optionally .gz) or - for stdin" },
  { "dataset", "string", short = "d", metavar = "ID", help = "validate against this dataset's schema: id, name, or a run manifest variable (DATASET_ID_PROFILE); fetched once, needs a configuration" },
  { "manifest", "string", metavar = "FILE", help = "run manifest to resolve --dataset variables from (default: aep run's)" },
  { "run-name", "string", metavar = "NAME", help = "run name of that manifest (as aep run --run-name; default aep)" },
  { "schema", "string", metavar = "FILE", help = "validate against a schema file instead (see below; no configuration needed)" },
  { "format", "string", metavar = "FMT", help = "jsonl | json | csv (default: from the file name)" },
  { "delimiter", "string", metavar = "CHAR", help = "CSV field delimiter: , ; | or tab (default: detected from the header, as aep stream)" },
  { "mapping-set", "string", metavar = "FILE|ID", help = "a Data Prep mapping set (JSON file, or the id of one in the org) instead of --mapping" },
  { "tenant", "string", metavar = "NAME", help = "tenant id for the mapping's ctx.tenant (default: from the schema id)" },
  cli.common.env, cli.common.json, cli.common.quiet, cli.common.verbose,
}
for _, s in ipairs(require("aep.config").flag_spec()) do SPEC[#SPEC + 1] = s end

M.summary = "map and validate a file offline against a dataset's schema (nothing is sent)"

M.usage = [[
usage: aep validate --input FILE [--mapping FILE | --mapping-set FILE] (--dataset ID | --schema FILE) [flags]

Maps every record of FILE with the mapping and validates the entity offline, with the validator
the emulator runs on streamed messages, so each problem reads as AEP's synchronous validation
reports it: types, required fields, enums, patterns, formats, unknown fields, the primary
identity, _id and timestamp for events, and AEP's size limits (1 MB request, 100 KB profile
record, 10 KB experience event). Nothing is sent: checking a mapping this way costs none of the
60 synchronous-validation requests a minute AEP allows. Prints each invalid record's position
(record N, counted from 1, and its line) with its problems, then a summary. Exit status: 0 all
valid (or skipped by the mapping), 2 some invalid, 1 could not run, 64 usage error.

--dataset fetches the dataset's schema (resolved, with its identity descriptors) once, using the
configuration (--env FILE, AEP_* variables); it names the dataset as `aep stream -d` does: its id,
its name ("aep Loyalty Profiles"), or a variable of the run manifest `aep run` keeps
(DATASET_ID_PROFILE). A name not found lists the close matches. --schema FILE needs no configuration; the file holds
either one schema, resolved as the Schema Registry returns it with
Accept: application/vnd.adobe.xed-full+json (or ...xed-full-desc+json, whose descriptors give
the primary identity), or a JSON array of documents: the tenant schema, its field groups (as
returned with Accept: application/vnd.adobe.xed+json) and optionally its identity descriptors.
Adobe's standard classes and field groups are known to aep and need not be in the file.

--mapping-set FILE|ID maps with a Data Prep mapping set (the engine of docs/dataprep.md): the set
is first validated against the schema as the Data Prep API validates it (each failed mapping
named with its error, exit 1), then a record whose mapping fails is invalid with Data Prep's
error ("Data Prep: mapping SOURCE -> DESTINATION failed: ...").

Flags:
]] .. cli.flags_help(SPEC) .. [[


Examples:
  aep validate --env env.json --mapping mappings/loyalty_profile.lua \
      --input data/AEP_loyalty_profiles.json --dataset 5f1b0c3d2e4a
  aep validate -m mappings/loyalty_event.lua -i events.jsonl.gz --schema loyalty-events.json
  aep validate -i rejects.jsonl --dataset "aep Loyalty Profiles" --json | jq '.invalid_records'
  aep validate --mapping-set mappings/loyalty_profile.mapping-set.json \
      -i data/AEP_loyalty_profiles.json --dataset DATASET_ID_PROFILE
]]

local function fail(message)
  log.error("validate: %s", message)
  return cli.EXIT.ERROR
end

function M.run(args)
  local opts, positional = cli.parse(args, SPEC)
  if opts.verbose then log.set_verbose(true) end
  if opts.quiet then log.set_quiet(true) end
  local input = opts.input or positional[1]
  if not input then cli.usage_error("missing --input FILE (or - for stdin)") end
  if positional[2] or (opts.input and positional[1]) then
    cli.usage_error("unexpected argument '" .. tostring(positional[opts.input and 1 or 2]) .. "'")
  end
  if not opts.dataset and not opts.schema then cli.usage_error("missing --dataset ID or --schema FILE") end
  if opts.dataset and opts.schema then cli.usage_error("--dataset and --schema exclude each other") end
  if opts.mapping and opts.mapping_set then cli.usage_error("--mapping and --mapping-set exclude each other") end

  local offline = require "aep.validate"
  local term = require "aep.term"
  local readers = require "aep.stream.readers"
  local json = require "aep.json"

  -- input and mapping first: a typo there should not cost a Platform round trip
  local delimiter = "auto"
  if opts.delimiter then
    local derr
    delimiter, derr = require("aep.stream.csv").parse_delimiter(opts.delimiter)
    if not delimiter then cli.usage_error(derr) end
  end
  local reader, rerr = readers.open(input, { format = opts.format, delimiter = delimiter })
  if not reader then return fail(rerr) end
  if reader.delimiter_note and not opts.json then log.info("aep validate: %s: %s", input, reader.delimiter_note) end
  local map = function(record) return record end
  if opts.mapping then
    local m, merr = require("aep.stream.mapping").load(opts.mapping)
    if not m then reader:close(); return fail(merr) end
    map = m
  end

  local target, client
  if opts.schema then
    local t, err = offline.from_file(opts.schema, { tenant = opts.tenant })
    if not t then reader:close(); return fail(err) end
    target = t
  else
    local ok, t = pcall(function()
      local cfg = require("aep.config").load_default({ flags = opts })
      cfg:check()
      client = require("aep.platform").new(cfg)
      return offline.from_dataset(client, opts.dataset, { manifest = opts.manifest, run_name = opts.run_name })
    end)
    if not ok then
      reader:close()
      if cli.is_interrupt(t) then error(t, 0) end
      return fail(tostring(t))
    end
    target = t
  end

  if opts.mapping_set then
    -- a Data Prep mapping set, compiled and validated against the target schema (AEP's words)
    local mapping_set = require "aep.stream.mapping_set"
    if not client and not mapping_set.looks_like_file(opts.mapping_set) then
      local ok, c = pcall(function()
        local cfg = require("aep.config").load_default({ flags = opts })
        cfg:check()
        return require("aep.platform").new(cfg)
      end)
      if not ok then reader:close(); return fail(tostring(c)) end
      client = c
    end
    local m, merr = mapping_set.for_target(opts.mapping_set, { client = client, resolved = target.resolved,
      schema_id = target.schema_id, tenant = opts.tenant or target.tenant })
    if not m then reader:close(); return fail(merr) end
    map = m
  end

  local out = io.stdout
  local function paint(style, s) return term.paint(out, style, s) end
  local ctx = { input = input, dataset_id = target.dataset_id, schema_id = target.schema_id,
                tenant = opts.tenant or target.tenant }
  local counts = { records = 0, valid = 0, invalid = 0, skipped = 0 }
  local invalid = json.array {}
  local progress <close> = term.progress { label = "aep validate", total = reader.size, quiet = opts.quiet or opts.json, delay = 0.5 }

  local function report(position, line, problems)
    counts.invalid = counts.invalid + 1
    if opts.json then
      invalid[#invalid + 1] = { position = position, line = line or json.null, problems = json.array(problems) }
      return
    end
    if opts.quiet then return end
    progress:finish()
    local where = "record " .. position .. (line and (" (line " .. line .. ")") or "")
    if #problems == 1 then
      out:write(paint("bold", where), ": ", problems[1], "\n")
    else
      out:write(paint("bold", where), ": ", #problems, " problems\n")
      for _, p in ipairs(problems) do out:write("  ", p, "\n") end
    end
  end

  local read_error
  while true do
    local ok, value, _, lineno = reader:next()
    if ok == nil then read_error = value; break end
    counts.records = counts.records + 1
    local position = counts.records
    if not ok then
      report(position, lineno, { tostring(value) })
    else
      ctx.position, ctx.line = position, lineno
      local status, entity = offline.map(map, value, ctx)
      if status == "skip" then
        counts.skipped = counts.skipped + 1
      elseif status == "error" then
        report(position, lineno, { entity })
      else
        local valid, problems = offline.check(target, entity)
        if valid then counts.valid = counts.valid + 1 else report(position, lineno, problems) end
      end
    end
    local bytes = reader:progress()
    progress:update(bytes, string.format("%s records, %s invalid", term.count(counts.records), term.count(counts.invalid)))
  end
  progress:finish()
  reader:close()

  local against = target.dataset_id and ("dataset " .. target.dataset_id) or (target.source or "the schema")
  if opts.json then
    local doc = {
      input = input, mapping = opts.mapping or opts.mapping_set or json.null,
      dataset_id = target.dataset_id or json.null, schema_id = target.schema_id or json.null,
      schema_file = opts.schema or json.null,
      records = counts.records, valid = counts.valid, invalid = counts.invalid, skipped = counts.skipped,
      invalid_records = invalid,
    }
    if read_error then doc.error = read_error end
    out:write(json.encode_pretty(doc), "\n")
  else
    local summary = string.format("aep validate: %s records: %s valid, %s invalid, %s skipped (%s against %s)",
      term.count(counts.records), term.count(counts.valid), term.count(counts.invalid), term.count(counts.skipped),
      input == "-" and "stdin" or input, against)
    out:write(paint(counts.invalid == 0 and "green" or "red", summary), "\n")
  end
  out:flush()
  if read_error then return fail(input .. ": " .. tostring(read_error)) end
  return counts.invalid == 0 and cli.EXIT.OK or cli.EXIT.INCOMPLETE
end

return M
