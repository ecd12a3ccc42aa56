-- aep datasets [ID|NAME|VARIABLE]: the sandbox's datasets, or one dataset: its schema, Profile
-- and Identity flags and what was ingested into it (Catalog batches and their record counts).
local cli = require "aep.cli"
local config = require "aep.config"
local json = require "aep.json"
local log = require "aep.log"
local inspect = require "aep.inspect"

local M = {}

local spec = { cli.common.verbose, cli.common.env, cli.common.json,
  { "manifest", "string", metavar = "FILE", help = "run manifest for a VARIABLE such as DATASET_ID_PROFILE (default: aep run's)" },
}
for _, s in ipairs(config.flag_spec()) do spec[#spec + 1] = s end

M.usage = [[
usage: aep datasets [ID | NAME | VARIABLE] [--env FILE] [--json]

Without an argument, lists the sandbox's datasets: name, whether Profile is enabled, the
schema and the id. With a dataset's id, its name or a variable of `aep run`'s manifest
(DATASET_ID_PROFILE: resolved as `aep stream --dataset` does), shows the dataset: schema,
Profile and Identity flags, and its Catalog batches (the newest 100): how many, by status,
and the records they hold. A name not found lists the close matches. --json prints the same
as one object. Against the local emulator when nothing else is configured.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep datasets
  aep datasets DATASET_ID_PROFILE
  aep datasets "aep Loyalty Profiles" --json
]]

M.summary = "list datasets, or show one: schema, Profile flags, batch and record counts"

local function tag_on(d, name)
  local tags = type(d.tags) == "table" and d.tags[name]
  if type(tags) ~= "table" then return false end
  for _, t in ipairs(tags) do
    if tostring(t):match("^enabled:%s*true") then return true end
  end
  return false
end

function M.run(args)
  local opts, positional = cli.parse(args, spec)
  if opts.verbose then log.set_verbose(true) end
  if positional[2] then cli.usage_error("unexpected argument '" .. positional[2] .. "'") end
  local ref = positional[1]
  return inspect.run(function()
    local c = inspect.client(opts)
    local catalog = require "aep.catalog"
    if not ref then
      local list = catalog.list_datasets(c)
      table.sort(list, function(a, b) return tostring(a.name) < tostring(b.name) end)
      if opts.json then
        local out = json.array()
        for _, d in ipairs(list) do
          out[#out + 1] = { id = d.id, name = d.name or json.null, profile = catalog.is_profile_enabled(d),
                            schema = d.schemaRef and d.schemaRef.id or json.null }
        end
        io.stdout:write(json.encode_pretty(out), "\n")
        return cli.EXIT.OK
      end
      local rows = {}
      for _, d in ipairs(list) do
        rows[#rows + 1] = { d.name, catalog.is_profile_enabled(d) and "yes" or "no", d.schemaRef and d.schemaRef.id, d.id }
      end
      io.stdout:write(inspect.columns(rows, { "NAME", "PROFILE", "SCHEMA", "ID" }), "\n")
      return cli.EXIT.OK
    end
    local found, d = pcall(require("aep.stream.target").find_dataset, c, ref, opts.manifest, c.cfg)
    if not found then
      if type(d) == "table" and d.code == "NOT_FOUND" and d.message then
        log.error("%s", d.message)
        return cli.EXIT.ERROR
      end
      error(d, 0)
    end
    local batches = catalog.list_batches(c, { dataset = d.id })
    local by_status, records, failed = {}, 0, 0
    for _, b in ipairs(batches) do
      local st = tostring(b.status or "unknown")
      by_status[st] = (by_status[st] or 0) + 1
      local m = type(b.metrics) == "table" and b.metrics or {}
      records = records + (tonumber(m.recordCount) or tonumber(m.outputRecordCount) or 0)
      failed = failed + (tonumber(m.failedRecordCount) or 0)
    end
    local out = {
      id = d.id, name = d.name or json.null, schema = d.schemaRef and d.schemaRef.id or json.null,
      profile = catalog.is_profile_enabled(d), identity = tag_on(d, "unifiedIdentity"),
      batches = #batches, batches_by_status = next(by_status) and by_status or json.null,
      records = records, failed_records = failed,
    }
    if opts.json then
      io.stdout:write(json.encode_pretty(out), "\n")
      return cli.EXIT.OK
    end
    local statuses = {}
    for st, n in pairs(by_status) do statuses[#statuses + 1] = n .. " " .. st end
    table.sort(statuses)
    io.stdout:write(string.format("%s (%s)\n  schema    %s\n  Profile   %s\n  Identity  %s\n  batches   %d%s\n  records   %d (failed %d)\n",
      tostring(d.name), d.id, tostring(out.schema), out.profile and "enabled" or "not enabled",
      out.identity and "enabled" or "not enabled", #batches,
      #statuses > 0 and (": " .. table.concat(statuses, ", ")) or "", records, failed))
    return cli.EXIT.OK
  end)
end

return M
