-- aep mapping-sets: Data Prep mapping sets between the org and files, so a set developed and
-- checked locally (aep validate --mapping-set, try in the REPL) is the very file deployed, and a
-- deployed one can be fetched back. The parts: aep.dataprep_api (the Data Prep API),
-- aep.stream.mapping_set (reading, tenant retargeting, validation words).
local cli = require "aep.cli"
local log = require "aep.log"

local M = {}

local SPEC = {
  { "output", "string", short = "o", metavar = "FILE", help = "get: write the mapping set to FILE instead of stdout" },
  { "version", "integer", metavar = "N", help = "get: that version instead of the latest" },
  { "id", "string", metavar = "ID", help = "deploy: update this mapping set (a new version) instead of creating one" },
  { "schema", "string", metavar = "ID", help = "deploy: the target schema ($id) instead of the file's xdmSchema" },
  { "dataset", "string", short = "d", metavar = "ID", help = "deploy: target this dataset's schema (id, name, or a run manifest variable such as DATASET_ID_PROFILE)" },
  { "tenant", "string", metavar = "NAME", help = "deploy: move the file's _TENANT destinations under this tenant (default: the org's)" },
  { "name", "string", metavar = "TEXT", help = "list: only sets of this name" },
  cli.common.env, cli.common.json, cli.common.quiet, cli.common.verbose,
}
for _, s in ipairs(require("aep.config").flag_spec()) do SPEC[#SPEC + 1] = s end

M.summary = "list, get and deploy Data Prep mapping sets (files <-> the org)"

M.usage = [[
usage: aep mapping-sets list [--name TEXT] [--json] [flags]
       aep mapping-sets get ID [--version N] [-o FILE] [flags]
       aep mapping-sets deploy FILE [--id ID] [--schema ID | --dataset ID] [--tenant NAME] [flags]

Moves Data Prep mapping sets (AEP's own mapping language; docs/dataprep.md) between the org's
Data Prep API and files. `list` shows the org's sets, newest update first. `get` writes one as a
file without the server's bookkeeping (ids, dates, versions), the same shape `deploy` takes, so
a set fetched, edited and checked offline (aep validate --mapping-set FILE) deploys as it is.
`deploy` creates the set, or with --id stores it as that set's next version; the Data Prep API
validates it against its target schema and a refused set prints each failed mapping with its
error. A file written for another tenant (mappings/loyalty_profile.mapping-set.json is written
for exchangeinternal) has its _TENANT destinations moved under the org's tenant (or --tenant),
and its xdmSchema replaced by --schema or the --dataset's schema. Exit status: 0 done, 1 could
not run or the set was refused, 64 usage error.

Flags:
]] .. cli.flags_help(SPEC) .. [[


Examples:
  aep mapping-sets list --env env.json
  aep mapping-sets deploy mappings/loyalty_profile.mapping-set.json --dataset DATASET_ID_PROFILE
  aep mapping-sets get 79a623960d3f4969835c9e00dc90c8df -o loyalty.mapping-set.json
  aep mapping-sets deploy loyalty.mapping-set.json --id 79a623960d3f4969835c9e00dc90c8df
]]

local function fail(message)
  log.error("mapping-sets: %s", message)
  return cli.EXIT.ERROR
end

-- the configuration every command finds (flags, --env, AEP_*, else the default local emulator)
local function client_for(opts)
  local cfg = require("aep.config").load_default({ flags = opts })
  cfg:check()
  return require("aep.platform").new(cfg), cfg
end

local function iso(ms)
  if type(ms) ~= "number" then return "-" end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(ms / 1000))
end

local function list(opts)
  local api = require "aep.dataprep_api"
  local json = require "aep.json"
  local sets = api.list((client_for(opts)), { name = opts.name })
  if opts.json then
    io.stdout:write(json.encode_pretty(json.array(sets)), "\n")
    return cli.EXIT.OK
  end
  for _, s in ipairs(sets) do
    io.stdout:write(string.format("%s  v%s  %s  %s\n", tostring(s.id), tostring(s.version),
      iso(s.modifiedDate or s.updatedAt), tostring(s.name or s.xdmSchema or "")))
  end
  if not opts.quiet then log.info("%d mapping set%s", #sets, #sets == 1 and "" or "s") end
  return cli.EXIT.OK
end

local function get(opts, id)
  local api = require "aep.dataprep_api"
  local json = require "aep.json"
  local set = api.get((client_for(opts)), id, opts.version)
  if not set then
    return fail("mapping set " .. id .. (opts.version and (" version " .. opts.version) or "") .. " not found")
  end
  local text = json.encode_pretty(api.for_file(set)) .. "\n"
  if opts.output then
    local ok, err = require("aep.host").write_file(opts.output, text)
    if not ok then return fail("cannot write " .. opts.output .. ": " .. tostring(err)) end
    if not opts.quiet then log.info("mapping set %s version %s written to %s", id, tostring(set.version), opts.output) end
  else
    io.stdout:write(text)
  end
  return cli.EXIT.OK
end

-- A refused set: one line per failed mapping (the Data Prep API's validationResponse).
local function refused_lines(e)
  local lines = {}
  local r = type(e.report) == "table" and e.report.validationResponse
  for i, v in ipairs(type(r) == "table" and r or {}) do
    if type(v) == "table" and v.status ~= "SUCCESS" then
      for _, x in ipairs(type(v.errors) == "table" and v.errors or {}) do
        lines[#lines + 1] = ("  mapping %d (%s -> %s): %s"):format(i, tostring(x.source), tostring(x.destination),
          tostring(x.exception))
      end
    end
  end
  return lines
end

local function deploy(opts, path)
  local api = require "aep.dataprep_api"
  local mapping_set = require "aep.stream.mapping_set"
  local platform = require "aep.platform"
  local set, err = mapping_set.read(path)
  if not set then return fail(err) end
  local c = client_for(opts)
  local schema_id = opts.schema
  if opts.dataset then
    -- an id, a name or a run-manifest variable, as `aep stream -d` takes it
    local found, ds = pcall(require("aep.stream.target").find_dataset, c, opts.dataset, nil, c.cfg)
    if not found then
      if type(ds) == "table" and ds.code == "NOT_FOUND" and ds.message then return fail(ds.message) end
      error(ds, 0)
    end
    schema_id = ds.schemaRef and ds.schemaRef.id
    if not schema_id then return fail("dataset " .. tostring(ds.id) .. " has no schemaRef") end
  end
  local tenant = opts.tenant or require("aep.schemas").tenant_id(c)
  set = mapping_set.retarget(set, tenant, schema_id or set.xdmSchema)
  set = api.for_file(set)
  local ok, answer = pcall(function()
    if opts.id then return api.update(c, opts.id, set) end
    return api.create(c, set)
  end)
  if not ok then
    if platform.is_error(answer) and answer.status == 400 then
      local lines = refused_lines(answer)
      return fail("the Data Prep API refused " .. path .. ": " .. tostring(answer.title or answer.detail or answer.message) ..
        (#lines > 0 and (":\n" .. table.concat(lines, "\n")) or ""))
    end
    error(answer, 0)
  end
  local id = type(answer) == "table" and answer.id or opts.id
  local version = type(answer) == "table" and answer.version
  if opts.json then
    io.stdout:write(require("aep.json").encode_pretty({ id = id, version = version, xdmSchema = set.xdmSchema }), "\n")
  else
    io.stdout:write(string.format("%s mapping set %s version %s from %s (schema %s)\n", opts.id and "updated" or "created",
      tostring(id), tostring(version), path, tostring(set.xdmSchema)))
  end
  return cli.EXIT.OK
end

function M.run(args)
  local opts, positional = cli.parse(args, SPEC)
  if opts.verbose then log.set_verbose(true) end
  if opts.quiet then log.set_quiet(true) end
  local action = positional[1]
  local want = { list = 0, get = 1, deploy = 1 }
  if not action then cli.usage_error("which action? list, get ID or deploy FILE") end
  if want[action] == nil then cli.usage_error("unknown action '" .. action .. "' (list, get ID or deploy FILE)") end
  if want[action] == 1 and not positional[2] then
    cli.usage_error(action == "get" and "get needs a mapping set ID" or "deploy needs a mapping set FILE")
  end
  if positional[want[action] + 2] then cli.usage_error("unexpected argument '" .. positional[want[action] + 2] .. "'") end
  if opts.schema and opts.dataset then cli.usage_error("--schema and --dataset exclude each other") end
  local ok, status = pcall(function()
    if action == "list" then return list(opts) end
    if action == "get" then return get(opts, positional[2]) end
    return deploy(opts, positional[2])
  end)
  if not ok then
    if cli.is_interrupt(status) then error(status, 0) end
    return fail(tostring(status))
  end
  return status
end

return M
