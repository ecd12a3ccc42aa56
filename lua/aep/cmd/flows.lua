-- aep flows [ID]: the sandbox's streaming connections and dataflows (Flow Service, aep.flows),
-- or one of them by id with where it comes from and which dataset it writes.
local cli = require "aep.cli"
local config = require "aep.config"
local json = require "aep.json"
local log = require "aep.log"
local inspect = require "aep.inspect"

local M = {}

local spec = { cli.common.verbose, cli.common.env, cli.common.json }
for _, s in ipairs(config.flag_spec()) do spec[#spec + 1] = s end

M.usage = [[
usage: aep flows [ID] [--env FILE] [--json]

Without an argument, lists the base connections (for HTTP API streaming: the inlet URL) and
the dataflows (state, source and target connections, the dataset the target writes). With a
connection's or a dataflow's id, shows that one; --json prints it as Flow Service answered
it. Against the local emulator when nothing else is configured.

Flags:
]] .. cli.flags_help(spec) .. [[


Examples:
  aep flows
  aep flows --json
]]

M.summary = "list streaming connections and dataflows, or show one by id"

-- The dataset a dataflow writes: its target connection's params.dataSetId.
local function dataset_of(targets, flow)
  for _, tid in ipairs(type(flow.targetConnectionIds) == "table" and flow.targetConnectionIds or {}) do
    local t = targets[tid]
    local params = t and type(t.params) == "table" and t.params
    if params and params.dataSetId then return params.dataSetId end
  end
  return nil
end

function M.run(args)
  local opts, positional = cli.parse(args, spec)
  if opts.verbose then log.set_verbose(true) end
  if positional[2] then cli.usage_error("unexpected argument '" .. positional[2] .. "'") end
  local ref = positional[1]
  return inspect.run(function()
    local c = inspect.client(opts)
    local flows = require "aep.flows"
    if ref then
      local item = flows.get(c, "flows", ref) or flows.get(c, "connections", ref)
        or flows.get(c, "sourceConnections", ref) or flows.get(c, "targetConnections", ref)
      if not item then
        log.error("no dataflow or connection has id '%s' (`aep flows` lists them)", ref)
        return cli.EXIT.ERROR
      end
      io.stdout:write(json.encode_pretty(item), "\n")
      return cli.EXIT.OK
    end
    local conns = flows.list(c, "connections")
    local fl = flows.list(c, "flows")
    local targets = {}
    for _, t in ipairs(flows.list(c, "targetConnections")) do targets[t.id] = t end
    if opts.json then
      local out = { connections = json.array(), flows = json.array() }
      for _, cn in ipairs(conns) do
        local inlet = flows.inlet_of(cn)
        out.connections[#out.connections + 1] = { id = cn.id, name = cn.name or json.null,
          inlet_url = inlet and inlet.inlet_url or json.null }
      end
      for _, f in ipairs(fl) do
        out.flows[#out.flows + 1] = { id = f.id, name = f.name or json.null, state = f.state or json.null,
          source_connections = f.sourceConnectionIds or json.array(), target_connections = f.targetConnectionIds or json.array(),
          dataset = dataset_of(targets, f) or json.null }
      end
      io.stdout:write(json.encode_pretty(out), "\n")
      return cli.EXIT.OK
    end
    local rows = {}
    for _, cn in ipairs(conns) do
      local inlet = flows.inlet_of(cn)
      rows[#rows + 1] = { cn.name, inlet and inlet.inlet_url, cn.id }
    end
    io.stdout:write("connections\n", inspect.columns(rows, { "NAME", "INLET", "ID" }), "\n\n")
    rows = {}
    for _, f in ipairs(fl) do rows[#rows + 1] = { f.name, f.state, dataset_of(targets, f), f.id } end
    io.stdout:write("dataflows\n", inspect.columns(rows, { "NAME", "STATE", "DATASET", "ID" }), "\n")
    return cli.EXIT.OK
  end)
end

return M
