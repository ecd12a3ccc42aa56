-- aep version: the same lines as `aep --version` and `aep -V` (core/main.c prints those before
-- any Lua runs), for people who type the command form.
local cli = require "aep.cli"
local json = require "aep.json"

local M = {}

local spec = { cli.common.json }

M.usage = [[
usage: aep version [--json]

Prints aep's version and the versions of the libraries it runs on: Lua, libcurl and OpenSSL,
one per line, as `aep --version` and `aep -V` do. Quote these lines in a bug report. With
--json, one object {aep, lua, curl, openssl}.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep version
  aep version --json
]]

M.summary = "show aep's version and its libraries' (same as --version and -V)"

function M.run(args)
  local opts, positional = cli.parse(args, spec)
  if positional[1] then cli.usage_error("unexpected argument '" .. positional[1] .. "'") end
  local v = require("aep.host").versions()
  if opts.json then
    io.stdout:write(json.encode_pretty({ aep = v.aep, lua = v.lua, curl = v.curl, openssl = v.openssl }), "\n")
  else
    io.stdout:write("aep ", v.aep, "\n", v.lua, "\nlibcurl ", v.curl, "\n", v.openssl, "\n")
  end
  return cli.EXIT.OK
end

return M
