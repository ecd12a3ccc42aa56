-- aep schemas [ID|TITLE]: the sandbox's schemas, or one schema's fields as a tree (types,
-- required, identities), from the Schema Registry (aep.schemas) and aep.xdm's field list.
local cli = require "aep.cli"
local config = require "aep.config"
local json = require "aep.json"
local log = require "aep.log"
local inspect = require "aep.inspect"

local M = {}

local spec = { cli.common.verbose, cli.common.env, cli.common.json }
for _, s in ipairs(config.flag_spec()) do spec[#spec + 1] = s end

M.usage = [[
usage: aep schemas [ID | TITLE] [--env FILE] [--json]

Without an argument, lists the tenant's schemas: title, class, whether Profile is enabled
(the union tag) and $id. With a schema's $id, meta:altId or exact title, shows its fields as
a tree, resolved through its class and field groups: each field's XDM type, whether it is
required, its enum when short, and the identity descriptors (namespace, primary). --json
prints the list, or {schema, fields: [{path, type, required, identity}]}. Against the local
emulator when nothing else is configured.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep schemas
  aep schemas "aep Loyalty Profiles"
  aep schemas --json
]]

M.summary = "list schemas, or show one as a tree of fields (types, required, identities)"

local function profile_enabled(s)
  for _, t in ipairs(type(s["meta:immutableTags"]) == "table" and s["meta:immutableTags"] or {}) do
    if t == "union" then return true end
  end
  return false
end

local function class_name(id)
  return tostring(id or "-"):gsub("^https://ns%.adobe%.com/xdm/context/", "")
end

local function find(c, ref)
  local schemas = require "aep.schemas"
  local list = schemas.list(c, "schemas", { full = true })
  for _, s in ipairs(list) do
    if s["$id"] == ref or s["meta:altId"] == ref or s.title == ref then return s["$id"], list end
  end
  return nil, list
end

function M.run(args)
  local opts, positional = cli.parse(args, spec)
  if opts.verbose then log.set_verbose(true) end
  if positional[2] then cli.usage_error("unexpected argument '" .. positional[2] .. "'") end
  local ref = positional[1]
  return inspect.run(function()
    local c = inspect.client(opts)
    local id, list = find(c, ref or "")
    if not ref then
      table.sort(list, function(a, b) return tostring(a.title) < tostring(b.title) end)
      if opts.json then
        local out = json.array()
        for _, s in ipairs(list) do
          out[#out + 1] = { id = s["$id"], title = s.title, class = s["meta:class"] or json.null,
                            profile = profile_enabled(s) }
        end
        io.stdout:write(json.encode_pretty(out), "\n")
        return cli.EXIT.OK
      end
      local rows = {}
      for _, s in ipairs(list) do
        rows[#rows + 1] = { s.title, class_name(s["meta:class"]), profile_enabled(s) and "yes" or "no", s["$id"] }
      end
      io.stdout:write(inspect.columns(rows, { "TITLE", "CLASS", "PROFILE", "ID" }), "\n")
      return cli.EXIT.OK
    end
    if not id then
      local titles = {}
      for _, s in ipairs(list) do titles[#titles + 1] = s.title end
      local close = inspect.close_matches(ref, titles)
      log.error("schema '%s' not found (give its $id, meta:altId or title)%s", ref,
        #close > 0 and ("; close matches: " .. table.concat(close, ", ")) or "")
      return cli.EXIT.ERROR
    end
    local schemas = require "aep.schemas"
    local resp = c:get(schemas.BASE .. "/tenant/schemas/" .. require("aep.platform").urlencode(id),
      { accept = require("aep.validate").ACCEPT_FULL_DESC })
    local resolved = resp.json
    local descriptors = resolved["meta:descriptors"]
    if descriptors == nil then descriptors = schemas.list_descriptors(c) end
    local fields = inspect.schema_fields(resolved, descriptors)
    if opts.json then
      local out = json.array()
      for _, f in ipairs(fields) do
        out[#out + 1] = { path = f.path, type = f.type, required = f.required, format = f.format,
                          identity = f.identity or json.null }
      end
      io.stdout:write(json.encode_pretty({ schema = { id = id, title = resolved.title,
        class = resolved["meta:class"] or json.null, profile = profile_enabled(resolved) }, fields = out }), "\n")
      return cli.EXIT.OK
    end
    io.stdout:write(string.format("%s (%s, class %s, Profile %s)\n", tostring(resolved.title), id,
      class_name(resolved["meta:class"]), profile_enabled(resolved) and "enabled" or "not enabled"))
    io.stdout:write(inspect.tree(fields), "\n")
    return cli.EXIT.OK
  end)
end

return M
