-- aep config: the effective configuration, every secret redacted, and where each value came from.
local cli = require "aep.cli"
local log = require "aep.log"
local json = require "aep.json"
local config = require "aep.config"

local M = {}

local spec = { cli.common.verbose, cli.common.env, cli.common.json }
for _, s in ipairs(config.flag_spec()) do spec[#spec + 1] = s end

M.usage = [[
usage: aep config [--env FILE] [--json] [flags]

Shows the configuration `aep run` would use: each setting, its value (secrets shown as
[REDACTED]) and where it came from: a flag, an AEP_* environment variable, the --env file (a
Postman environment or a plain JSON config), or a default. Precedence is in that order.
With nothing configured, `aep run` starts a local emulator and takes its settings from it.

Environment variables: AEP_<NAME> for every setting below (AEP_CLIENT_SECRET,
AEP_SANDBOX_NAME, ...), AEP_PRIVATE_KEY_FILE and AEP_CLIENT_SECRET_FILE for secrets kept in
files, AEP_ENV for the --env file.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep config
  aep config --env my-org.postman_environment.json
  AEP_SANDBOX_NAME=dev aep config --env my-org.postman_environment.json --json
]]

M.summary = "show the effective configuration and where each value came from (secrets redacted)"

-- config.run(args) -> exit status
function M.run(args)
  local opts = cli.parse(args, spec)
  if opts.verbose then log.set_verbose(true) end
  local ok, cfg = pcall(config.load_default, { flags = opts })
  if not ok then
    log.error("%s", tostring(cfg))
    return cli.EXIT.ERROR
  end
  local rows = cfg:describe()
  local missing = cfg:missing()
  local emulator = not cfg:has_credentials()
  if opts.json then
    local out = { settings = json.array(), missing = json.array(), env_file = cfg.env_file,
                  env_file_format = cfg.env_file_format, emulator = emulator,
                  local_emulator = cfg.emulator or json.null,
                  auth = cfg:auth_mode(), ims_url = cfg:ims_url(), gateway = cfg:gateway() }
    for _, r in ipairs(rows) do
      out.settings[#out.settings + 1] = { name = r.name, value = r.value or json.null, source = r.source, secret = r.secret }
    end
    for _, m in ipairs(missing) do out.missing[#out.missing + 1] = m.name end
    if cfg.extra and next(cfg.extra) then
      out.variables = {}
      for k, v in pairs(cfg.extra) do out.variables[k] = log.redact(tostring(v)) end
    end
    log.print("%s", json.encode_pretty(out))
    return cli.EXIT.OK
  end
  if cfg.env_file then
    log.print("environment file: %s (%s)", cfg.env_file, cfg.env_file_format == "postman" and "Postman environment" or "JSON config")
  end
  if cfg.emulator then
    log.print("local emulator: %s (data dir %s)", cfg.emulator.url, cfg.emulator.data_dir)
  end
  local w = 0
  for _, r in ipairs(rows) do w = math.max(w, #r.name) end
  for _, r in ipairs(rows) do
    local v = r.value
    if v and #v > 44 then v = v:sub(1, 41) .. "..." end
    log.print("%-" .. w .. "s  %-44s  %s", r.name, v or "-", r.source)
  end
  if cfg.extra and next(cfg.extra) then
    local keys = {}
    for k in pairs(cfg.extra) do keys[#keys + 1] = k end
    table.sort(keys)
    log.print("other variables in the environment file (available to workflow scripts): %s", table.concat(keys, ", "))
  end
  if emulator then
    log.print("nothing is configured and no local emulator runs on %s: `aep run` will start one; " ..
      "the other commands need `aep emulator` running, or --env FILE", require("aep.emulator_lock").default_dir())
  elseif #missing > 0 then
    local names = {}
    for _, m in ipairs(missing) do names[#names + 1] = m.name end
    log.print("missing for %s authentication: %s", cfg:auth_mode() == "jwt" and "JWT" or "OAuth", table.concat(names, ", "))
  else
    log.print("authentication: %s at %s", cfg:auth_mode() == "jwt" and "JWT exchange" or "OAuth Server-to-Server",
      tostring(cfg:ims_url()))
  end
  return cli.EXIT.OK
end

return M
