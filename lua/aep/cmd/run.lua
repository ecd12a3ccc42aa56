-- aep run: run a workflow script (scripts/NAME.lua, or a path) against AEP or a local emulator.
local cli = require "aep.cli"
local log = require "aep.log"
local config = require "aep.config"
local platform = require "aep.platform"
local workflow = require "aep.run.workflow"
local manifest_mod = require "aep.run.manifest"
local run_report = require "aep.run.report"
local json = require "aep.json"

local M = {}

local spec = {
  cli.common.verbose, cli.common.quiet, cli.common.env, cli.common.json,
  { "run-name", "string", metavar = "NAME", help = "prefix of every title, as the collection's UNIQUE_ID (default: UNIQUE_ID of the --env file, AEP_RUN_NAME, or \"aep\")" },
  { "manifest", "string", metavar = "FILE", help = "run manifest (default: $XDG_STATE_HOME/aep/runs/<run>-<sandbox>-<org>.json)" },
  { "emulator", "boolean", help = "start a local emulator and run against it (--no-emulator: never start one; default: start one only when nothing is configured)" },
  { "emulator-dir", "string", metavar = "DIR", help = "data directory of the emulator aep starts (default: $XDG_STATE_HOME/aep/emulator)" },
  { "legacy-inlet", "boolean", help = "stream through the legacy edge inlet + event types (the collection's path) instead of a Flow Service connection" },
  { "batch-import", "boolean", help = "realtime-import: batch-import the samples too (default; --no-batch-import skips it)" },
  { "reimport", "boolean", help = "batch-import: import again even if this run's batch already succeeded" },
  { "verify", "boolean", help = "lookup: check every person of the source data (realtime-import: on; --no-verify to skip)" },
  { "person", "string", metavar = "EMAIL", help = "lookup: whose profile to show, by email (default: PROFILE_ID, else the first sample person with events)" },
  { "identity", "string", metavar = "NS:VALUE", help = "lookup: whose profile to show, by any identity: the namespace code as Profile's entityIdNS takes it, a colon, the value (ECID:123..., Email:a@b.com)" },
  { "profiles", "string", metavar = "FILE", help = "profile records (default data/AEP_loyalty_profiles.json)" },
  { "events", "string", metavar = "FILE", help = "event records (default data/AEP_loyalty_events.json)" },
  { "profile-mapping", "string", metavar = "FILE", help = "profile mapping (default mappings/loyalty_profile.lua)" },
  { "event-mapping", "string", metavar = "FILE", help = "event mapping (default mappings/loyalty_event.lua)" },
  { "mapping", "string", metavar = "FILE", help = "batch-import: the mapping of the one file given with --profiles or --events (as aep stream's --mapping)" },
  { "format", "string", metavar = "FORMAT", help = "batch-import: input format jsonl, json, csv or rejects (default: from the file name, as aep stream)" },
  { "delimiter", "string", metavar = "CHAR", help = "batch-import: CSV delimiter , ; | or tab (default: detected from the header, as aep stream)" },
  { "reject-file", "string", metavar = "FILE", help = "batch-import: write rejected rows here (aep stream's reject format; replay with --format rejects)" },
  { "wait", "number", metavar = "SECONDS", help = "bound on waiting for Profile / batch status (default 900 / 600)" },
  { "batch-size", "integer", metavar = "N", help = "messages per streaming batch request (default 500; 1 MB at most)" },
  { "retries", "integer", metavar = "N", help = "attempts per request that is safe to repeat (default 5)" },
  { "set", "list", metavar = "KEY=VALUE", help = "a workflow variable (e.g. PROFILE_ID=a@b.com); repeatable" },
  { "list", "boolean", help = "list the workflow scripts and exit" },
}
for _, s in ipairs(config.flag_spec()) do spec[#spec + 1] = s end

M.usage = [[
usage: aep run NAME... [flags]

Runs the workflow script scripts/NAME.lua (or a path to a .lua file); several names run in order
in one run. The scripts reimplement Adobe's "Real-time import" Postman collection:
  auth             IMS token and tenant id                        (folder 0)
  schemas          field groups, schemas, identity descriptors     (folders 1a/1b)
  datasets         Profile-enabled datasets                        (folders 2a/2b)
  streaming        streaming connection, stream the samples        (folders 3a/3b)
  raw-streaming    a dataflow with a Data Prep mapping set, the samples sent as raw data
  batch-import     batch ingestion of --profiles/--events FILE (default: the samples), read,
                   mapped and validated row by row as aep stream does  (folders 4a/4b)
  lookup           profile and events read back, --verify          (folders 5a/5b)
  list             what the sandbox holds                          (folder X)
  web              a datastream for the events dataset (emulator only)
  teardown         delete exactly what this workflow created
  realtime-import  the whole flow, ending with a sample person's profile

Configuration: flags, then AEP_* environment variables, then --env FILE (a Postman environment
as the Developer Console exports it or as `aep emulator` writes it, a directory holding an
environment.json, or a plain JSON config), then a local emulator. With nothing configured,
`aep run` starts `aep emulator` itself and stops it at the end (--emulator forces that,
--no-emulator forbids it). To use an emulator that is already running: --env DATA_DIR.
`aep config` shows the effective configuration.

What a run creates and learns is kept in a run manifest (JSON), so scripts can run separately
and teardown deletes exactly that. Every step finds what an earlier run created (by title,
prefixed with --run-name) before creating anything: running again is safe, and is how a failed
run resumes.

Output: one line per step on stdout, then a summary counting those lines by status
("done: 16 created, 1 found, 2 updated"). -q prints only errors and the final result (the
summary, and the profile a lookup shows); --json prints one JSON document at the end instead
(steps, what was created/found, counts, exit status, a lookup's profile and events) and nothing
else on stdout. lookup finds a person by --person EMAIL or --identity NS:VALUE (any identity
namespace); while the profile is not visible yet it says on stderr what it waits for, up to
--wait, and stops early when the person's records failed validation after acceptance.

Exit status: 0 done; 2 done, but records were rejected or profiles did not match; 1 failed;
64 usage error.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep run realtime-import                       (against a local emulator aep starts)
  aep run realtime-import --env my-org.postman_environment.json --run-name demo1
  aep run schemas datasets --env /tmp/aep-emu   (an emulator already running on that data dir)
  aep run lookup --set PROFILE_ID=tscrowby0@chicagotribune.com   (a person of the sample data)
  aep run lookup --person aodowling1@examiner.com --json
  aep run lookup --identity Email:aodowling1@examiner.com -q
  aep run teardown --run-name demo1
  aep run --list
]]

M.summary = "run a workflow script: the collection's steps, or the whole real-time import"

local default_manifest = require("aep.run.manifest").default_path

local function parse_sets(list)
  local vars = {}
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then cli.usage_error("--set needs KEY=VALUE, got '" .. kv .. "'") end
    vars[k] = v
  end
  return vars
end

local function report_error(err, names, opts)
  if platform.is_error(err) then
    local text = tostring(err)
    if err.step then
      local first, rest = text:match("^step '(.-)': (.*)$")
      if first then
        log.error("step '%s' failed:\n  %s", first, rest:gsub("\n", "\n  "))
      else
        log.error("%s", text)
      end
    else
      log.error("%s", text)
    end
    if err.kind == "config" or err.kind == "auth" then return end
    local cmd = "aep run " .. table.concat(names, " ")
    if opts.run_name then cmd = cmd .. " --run-name " .. opts.run_name end
    if opts.manifest then cmd = cmd .. " --manifest " .. opts.manifest end
    if opts.env then cmd = cmd .. " --env " .. opts.env end
    if opts.person then cmd = cmd .. " --person " .. opts.person end
    if opts.identity then cmd = cmd .. " --identity " .. opts.identity end
    log.error("to resume, run `%s` again: what was done is found, not redone", cmd)
  else
    log.error("%s", tostring(err))
  end
end

-- run.run(args) -> exit status
function M.run(args)
  local opts, names = cli.parse(args, spec)
  if opts.verbose then log.set_verbose(true) end
  if opts.quiet or opts.json then log.set_quiet(true) end -- --json: stdout holds the document only
  if opts.list then
    for _, n in ipairs(workflow.list_scripts()) do log.print("%s", n) end
    return cli.EXIT.OK
  end
  if #names == 0 then cli.usage_error("which workflow? e.g. `aep run realtime-import` (--list shows them)") end
  if opts.emulator and opts.env then cli.usage_error("--emulator and --env exclude each other") end
  if opts.person and opts.identity then cli.usage_error("--person and --identity exclude each other (--person a@b.com is --identity Email:a@b.com)") end
  if opts.identity and not opts.identity:match("^[^:]+:.+$") then
    cli.usage_error("--identity needs NS:VALUE, the identity namespace code and the value (e.g. ECID:12345, Email:a@b.com), got '" .. opts.identity .. "'")
  end
  for _, name in ipairs(names) do
    local text, err = workflow.script_source(name)
    if not text then cli.usage_error(err) end
  end
  local vars = parse_sets(opts.set)

  local emu, wf, run_info = nil, nil, {}
  local ok, result = xpcall(function()
    local cfg = config.load({ flags = opts })
    local start_emulator = opts.emulator == true or (opts.emulator == nil and not cfg:has_credentials())
    if start_emulator then
      local emulator = require "aep.run.emulator"
      local dir = opts.emulator_dir or emulator.default_dir()
      emu = emulator.find_running(dir)
      if emu then
        log.info("== emulator: using the one already running on %s (data in %s)", emu.url, dir)
      else
        log.info("== emulator: starting `aep emulator` (data in %s)", dir)
        emu = emulator.start({ data_dir = dir })
        log.info("%-9s %-18s %s  %s", "ok", "emulator", emu.url or "?", "pid " .. tostring(emu.pid))
      end
      cfg:add_emulator_layer(emu.env_file)
      for _, name in ipairs({ "PLATFORM_GATEWAY", "IMS", "API_KEY", "CLIENT_SECRET", "IMS_ORG" }) do
        local _, src = cfg:get(name)
        if src and (src.kind == "env" or src.kind == "flag") then
          log.warn("%s from %s overrides the emulator's", name, tostring(src.where))
        end
      end
    end
    cfg:check()
    local client = platform.new(cfg, { max_attempts = opts.retries })
    for k, v in pairs(cfg.extra or {}) do if vars[k] == nil then vars[k] = v end end
    local run_name = opts.run_name or os.getenv("AEP_RUN_NAME") or (cfg.extra and cfg.extra.UNIQUE_ID) or "aep"
    local mpath = opts.manifest or default_manifest(run_name, cfg)
    local target = cfg:target()
    local m, merr = manifest_mod.load(mpath, run_name, target)
    if not m then error(config.error(merr), 0) end
    local prev = m.doc.target or {}
    if m.existed and ((prev.org and prev.org ~= target.org) or (prev.sandbox and prev.sandbox ~= target.sandbox)) then
      error(config.error(string.format("run manifest %s belongs to org %s, sandbox %s; this configuration targets org %s, sandbox %s (use another --manifest)",
        mpath, tostring(prev.org), tostring(prev.sandbox), tostring(target.org), tostring(target.sandbox))), 0)
    end
    m.doc.target = target
    m.doc.run_name = run_name
    run_info = { run_name = run_name, manifest = mpath, target = target }
    wf = workflow.new({ cfg = cfg, client = client, run_name = run_name, manifest = m, options = opts, vars = vars })
    log.info("run '%s' on %s, sandbox %s (manifest %s)", run_name, tostring(target.gateway), tostring(target.sandbox), mpath)
    for _, name in ipairs(names) do wf:run_script(name) end
    -- the final result: shown under --quiet too (log.print); --json prints the document instead
    if not opts.json then log.print("%s", run_report.summary(wf)) end
    return wf.exit_code
  end, function(e)
    if log.is_verbose() and type(e) == "string" and not cli.is_interrupt(e) then return debug.traceback(e, 2) end
    return e
  end)
  if emu and not emu.reused then
    emu:stop()
    log.info("%-9s %-18s %s", "ok", "emulator", "stopped")
  end
  local status = ok and result or cli.EXIT.ERROR
  if not ok then
    if cli.is_interrupt(result) then error(result, 0) end
    if type(result) == "table" and result.usage_error then error(result, 0) end
    report_error(result, names, opts)
  end
  if opts.json then
    local doc = run_report.json_doc({ wf = wf, names = names, run_name = run_info.run_name, manifest = run_info.manifest,
      target = run_info.target, exit_status = status, error = (not ok) and result or nil })
    log.print("%s", json.encode_pretty(doc))
  end
  return status
end

return M
