-- aep init DIR: a starter project to begin from (aep.starter writes it). The command is named
-- `init`; its module is cmd/init_project.lua because cmd/init.lua is the dispatcher.
local starter = require "aep.starter"
local command = {}
local cli = require "aep.cli"
local log = require "aep.log"

local spec = {
  { "force", "boolean", help = "overwrite files of the same names in DIR" },
  cli.common.quiet,
}

command.usage = [[
usage: aep init DIR [--force]

Writes a starter project into DIR (created if missing): the sample data (data/), the sample
mappings (mappings/, Lua and the Data Prep mapping set), an environment template with the
Postman collection's variable names and empty secrets (environment.postman_environment.json,
mode 0600) and a README.md of next steps whose commands run from DIR as shown. Files already
in DIR are never overwritten without --force. The same samples and mappings are built in:
`--input data/AEP_loyalty_profiles.json` works from any directory without them.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep init my-project
  aep init . --force
]]

command.summary = "write a starter project: samples, mappings, environment template, next steps"

function command.run(args)
  local opts, positional = cli.parse(args, spec)
  if opts.quiet then log.set_quiet(true) end
  local dir = positional[1]
  if not dir then cli.usage_error("which directory? e.g. `aep init my-project`") end
  if positional[2] then cli.usage_error("unexpected argument '" .. positional[2] .. "'") end
  local written, err = starter.write(dir, { force = opts.force })
  if not written then
    log.error("%s", err)
    return cli.EXIT.ERROR
  end
  for _, p in ipairs(written) do log.info("wrote %s", p) end
  log.print("starter project in %s: next steps in %s/README.md", dir, dir)
  return cli.EXIT.OK
end

return command
