-- aep.stream.setup: what every `aep stream` run does around its loop (aep.stream.pipeline),
-- whatever source the records come from (lua/aep/stream/sources/): check the shared flags, find
-- the target, pace, send, account and report.
--
--   setup.check_flags(opts)
--   local s, status = setup.prepare(opts, input)   -- status: the exit status on failure
--   local ctx = setup.mapping_context(s)
--   ... the loop ...; s.t_stream / t_end from host.monotonic()
--   local status, stopped = setup.outcome(result, s.ledger.counts, interrupted_text)
--   local r = setup.report_fields(s, result, t_end, status, stopped)
--   return setup.conclude(s, r, report.summary(r), {json = opts.json, extra = {...}})
local cli = require "aep.cli"
local config = require "aep.config"
local log = require "aep.log"
local host = require "aep.host"

local M = {}

-- Pacing defaults. Against AEP: its documented ceilings (docs/AEP-API-FACTS.md §8.4). Against an inlet on
-- loopback (the local emulator, a bench sink) there is no ceiling to respect: unlimited.
M.AEP_REQUESTS_PER_S = 1000
M.AEP_MESSAGES_PER_S = 10000
-- Sync validation: AEP allows 60 requests a minute per inlet; one request every 1.05 s keeps any
-- minute at 58 or fewer even when requests are delayed unevenly on the way.
M.SYNC_INTERVAL_S = 1.05
M.MAX_REQUEST_BYTES = 1000000

-- setup.parse_rate(value, flag) -> requests or messages per second | nil (not given); raises a
-- usage error for anything but a positive number or 'unlimited' (0, none, inf)
function M.parse_rate(v, flag)
  if v == nil then return nil end
  local l = tostring(v):lower()
  if l == "0" or l == "unlimited" or l == "none" or l == "inf" then return math.huge end
  local n = tonumber((l:gsub("/s$", "")))
  if not n or n <= 0 then cli.usage_error("flag '--" .. flag .. "' needs a positive number or 'unlimited', got '" .. tostring(v) .. "'") end
  return n
end

-- setup.fail(message) -> the exit status of a run that could not run, after saying why
function M.fail(message)
  log.error("stream: %s", message)
  return cli.EXIT.ERROR
end

function M.iso_now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

-- setup.check_flags(opts): the usage errors every input shares
function M.check_flags(opts)
  if opts.to ~= nil and opts.to ~= "streaming" and opts.to ~= "edge" then
    cli.usage_error("--to takes 'streaming' or 'edge', got '" .. tostring(opts.to) .. "'")
  end
  if opts.to == "edge" then
    if not opts.datastream then cli.usage_error("--to edge needs --datastream ID") end
    if opts.sync_validation or opts.inlet then cli.usage_error("--to edge takes no --sync-validation nor --inlet") end
  elseif opts.datastream then
    cli.usage_error("--datastream needs --to edge")
  elseif not opts.dataset and not (opts.inlet and opts.schema) and not (opts.raw and opts.flow_id) then
    cli.usage_error("missing --dataset ID")
  end
  if opts.batch_size < 1 then cli.usage_error("--batch-size must be at least 1") end
  if opts.concurrency < 1 then cli.usage_error("--concurrency must be at least 1") end
  if opts.retries < 1 then cli.usage_error("--retries must be at least 1") end
end

-- Sync validation sends one record a request, one request at a time, at most one every
-- SYNC_INTERVAL_S; otherwise AEP's ceilings apply unless the inlet is on loopback.
local function pacing(opts, target, req_rate, msg_rate)
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
  return require("aep.stream.pacer").new(pacer_opts), batch_size, concurrency
end

-- setup.prepare(opts, input) -> session | nil, exit status
-- input: what the run reads (the source's input). session: {opts, input, started, t0, map, cfg,
-- target, reject_file, temp_rejects, ledger, pacer, pool, sender, batch_size, concurrency}
function M.prepare(opts, input)
  local req_rate = M.parse_rate(opts.rate, "rate")
  local msg_rate = M.parse_rate(opts.message_rate, "message-rate")
  local s = { opts = opts, input = input, started = M.iso_now(), t0 = host.monotonic() }

  if opts.mapping then
    local m, merr = require("aep.stream.mapping").load(opts.mapping, { timeout_ms = opts.mapping_timeout })
    if not m then return nil, M.fail(merr) end
    s.map = m
  end

  -- a mapping set file is read before any Platform call (a typo costs no round trip); it is
  -- compiled once the target's schema is known
  local set_file
  if opts.mapping_set and require("aep.stream.mapping_set").looks_like_file(opts.mapping_set) then
    local set, serr = require("aep.stream.mapping_set").read(opts.mapping_set)
    if not set then return nil, M.fail(serr) end
    set_file = set
  end

  local ok_cfg, cfg = pcall(config.load_default, { flags = opts })
  if not ok_cfg then return nil, M.fail(tostring(cfg)) end
  s.cfg = cfg
  -- --raw / --upsert: messages the dataflow maps or applies (aep.stream.raw); --to edge: Edge
  -- Network Server API events (aep.stream.edge_target)
  local resolve = require("aep.stream.target").resolve
  if opts.to == "edge" then
    resolve = require("aep.stream.edge_target").resolve
  elseif opts.raw or opts.upsert then
    resolve = function(ro) return require("aep.stream.raw").resolve(opts, ro) end
  end
  local function compile_set(client, schema_id, tenant)
    -- compiled against the dataset's schema once it is known (aep.stream.mapping_set)
    s.map_set = {} -- the set, schema and name worker threads load (aep.stream.workers)
    local m, merr = require("aep.stream.mapping_set").for_target(opts.mapping_set, {
      client = client, schema_id = schema_id, tenant = opts.tenant or tenant, log = log, set = set_file,
      keep = s.map_set })
    if not m then error(merr, 0) end
    s.map = m
  end
  local ok_t, target = pcall(resolve, {
    cfg = cfg, datastream = opts.datastream, edge_url = opts.edge_url, helpers = require("aep.stream.target"),
    dataset = opts.dataset, inlet = opts.inlet, flow_id = opts.flow_id, schema = opts.schema,
    authenticated = opts.authenticated,
    org = opts.org, manifest = opts.manifest, run_name = opts.run_name, sync = opts.sync_validation, log = log,
    -- a mapping set that does not fit the dataset stops the run before a dataflow is created for it
    before_connection = opts.mapping_set and function(client, dataset)
      local schema_id = type(dataset.schemaRef) == "table" and dataset.schemaRef.id
      if schema_id then compile_set(client, schema_id, require("aep.stream.target").tenant_of(schema_id)) end
    end or nil,
  })
  if not ok_t then
    if cli.is_interrupt(target) then return nil, cli.EXIT.INTERRUPTED end
    -- a dataset not found reads as `aep validate` and the REPL's try say it (target.find_dataset)
    if type(target) == "table" and target.code == "NOT_FOUND" and target.kind == "aep" then return nil, M.fail(target.message) end
    return nil, M.fail(tostring(target))
  end
  s.target = target
  if opts.mapping_set and not s.map then
    local ok_m, merr = pcall(compile_set, target.client, target.schema_id, target.tenant)
    if not ok_m then return nil, M.fail(tostring(merr)) end
  end
  -- aep.platform warns about --insecure when it makes a client; a stream given --inlet and
  -- --schema makes none, and must say it all the same (SECURITY.md)
  if cfg:insecure() and not target.client then
    log.warn("TLS certificate verification is off (--insecure): use only against a test server")
  end

  -- JUnit needs the reject entries back at the end: keep them in a temporary file if no
  -- --reject-file was given
  s.reject_file = opts.reject_file
  if not s.reject_file and opts.report and opts.report:lower():match("%.xml$") then
    s.temp_rejects = os.tmpname()
    s.reject_file = s.temp_rejects
  end
  local ledger, lerr = require("aep.stream.ledger").new({
    checkpoint = opts.checkpoint, reject_file = s.reject_file, accepted_file = opts.accepted_file,
    input = input, dataset = target.dataset_id, mapping = opts.mapping or opts.mapping_set,
  })
  if not ledger then return nil, M.fail(lerr) end
  s.ledger = ledger

  s.pacer, s.batch_size, s.concurrency = pacing(opts, target, req_rate, msg_rate)
  if target.one_per_request then s.batch_size = 1 end
  s.pool = require("aep.http").pool({
    max_in_flight = s.concurrency, timeout = opts.timeout, connect_timeout = 10,
    cainfo = cfg:cacert(), insecure = cfg:insecure() or nil,
  })
  s.sender = require("aep.stream.sender").new({
    pool = s.pool, url = target.url, sync = opts.sync_validation or target.one_per_request, headers = target.headers,
    pacer = s.pacer, ledger = ledger, auth = target.auth, concurrency = s.concurrency,
    frame = target.frame, on_status = target.on_status,
    max_attempts = opts.retries,
  })
  return s
end

-- setup.mapping_context(session) -> the ctx a mapping gets (the loop adds position and such)
function M.mapping_context(s)
  local target, opts = s.target, s.opts
  local ctx = { input = s.input, dataset_id = target.dataset_id, schema_id = target.schema_id,
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
  return ctx
end

-- setup.outcome(result, counts, interrupted_text) -> exit status, why the run stopped early | nil
-- result: the loop's {interrupted, fatal, read_error}
function M.outcome(result, c, interrupted_text)
  local exit_status
  if result.interrupted then exit_status = cli.EXIT.INTERRUPTED
  elseif result.fatal or result.read_error then exit_status = cli.EXIT.ERROR
  elseif c.rejected + c.failed > 0 then exit_status = cli.EXIT.INCOMPLETE
  else exit_status = cli.EXIT.OK end
  local stopped
  if result.interrupted then stopped = interrupted_text
  elseif result.fatal then stopped = result.fatal
  elseif result.read_error then stopped = result.read_error end
  return exit_status, stopped
end

-- setup.report_fields(session, result, t_end, exit_status, stopped) -> r for aep.stream.report
-- (session.t_stream: when the loop started)
function M.report_fields(s, result, t_end, exit_status, stopped)
  local sender, ledger, target = s.sender, s.ledger, s.target
  local statuses = {}
  for k, v in pairs(sender.stats.statuses) do statuses[tostring(k)] = v end
  return {
    input = s.input, dataset_id = target.dataset_id, inlet_url = target.inlet_url,
    counts = ledger.counts, this_run = ledger.this_run, this_run_records = result.read,
    duration = t_end - s.t0, setup_duration = s.t_stream - s.t0, stream_duration = t_end - s.t_stream,
    started = s.started, finished = M.iso_now(),
    requests = sender.stats.requests, retries = sender.stats.retries, splits = sender.stats.splits,
    bytes = sender.stats.bytes, statuses = statuses, pacing = s.pacer:describe(),
    reject_file = s.opts.reject_file, sample_reasons = result.samples, exit_status = exit_status,
    stopped = stopped,
  }
end

-- setup.conclude(session, r, summary_text[, {json = bool, extra = {key = value}}]) -> exit status
-- Writes --report (extra: more keys for a JSON report), prints the summary (json: the JSON report
-- instead; --quiet: its first two lines) and says why the run stopped early.
function M.conclude(s, r, text, o)
  o = o or {}
  local opts = s.opts
  local report = require "aep.stream.report"
  if opts.report then
    local ok, err = report.write(opts.report, r, s.reject_file, o.extra)
    if not ok then log.error("stream: cannot write the report %s: %s", opts.report, tostring(err)) end
  end
  if s.temp_rejects then os.remove(s.temp_rejects) end
  if o.json then
    io.stdout:write(log.redact(require("aep.json").encode_pretty(report.json_doc(r, o.extra))), "\n")
    io.stdout:flush()
  elseif opts.quiet then
    log.print("%s", (text:match("^[^\n]*\n[^\n]*")))
  else
    io.stdout:write(log.redact(text))
    io.stdout:flush()
  end
  if r.stopped and r.exit_status ~= cli.EXIT.INTERRUPTED then log.error("stream: %s", r.stopped) end
  return r.exit_status
end

return M
