-- scripts/list.lua — collection folder X "Supplementary calls" (R27, R28, R31-R33): what the
-- sandbox holds: tenant schemas and field groups, datasets, streaming connections and dataflows,
-- legacy inlets and Profile event types. Entries this run's manifest recorded are marked "*".
local wf = ...
local schemas = require "aep.schemas"
local catalog = require "aep.catalog"
local flows = require "aep.flows"
local inlet = require "aep.inlet"
local platform = require "aep.platform"

local c = wf.client
wf:heading("list: sandbox " .. tostring(wf.cfg:get("SANDBOX_NAME")))

local ours = {}
for _, r in ipairs(wf.manifest and wf.manifest:resources() or {}) do ours[tostring(r.id)] = true end

local function show(label, items, name_of, id_of)
  wf:line("ok", label, string.format("%d", #items))
  for _, it in ipairs(items) do
    local id = tostring(id_of(it))
    local log_line = string.format("  %s %s", ours[id] and "*" or " ", tostring(name_of(it) or ""))
    wf:line("", "", log_line, id)
  end
end

local function try(label, fn)
  local ok, err = pcall(fn)
  if not ok then
    if platform.is_error(err) and (err.status == 404 or err.status == 405) then
      wf:line("n/a", label, "not offered by this server")
    else
      error(err, 0)
    end
  end
end

try("schemas", function()
  show("schemas", schemas.list(c, "schemas"), function(s) return s.title end, function(s) return s["$id"] end)
end)
try("field groups", function()
  show("field groups", schemas.list(c, "fieldgroups"), function(s) return s.title end, function(s) return s["$id"] end)
end)
try("datasets", function()
  show("datasets", catalog.list_datasets(c, { properties = "name,schemaRef,tags" }), function(d) return d.name end, function(d) return d.id end)
end)
try("connections", function()
  show("connections", flows.list(c, "connections"), function(x) return x.name end, function(x) return x.id end)
end)
try("dataflows", function()
  show("dataflows", flows.list(c, "flows"), function(x) return x.name end, function(x) return x.id end)
end)
try("inlets", function()
  show("inlets", inlet.list(c), function(x) return x.name or x.inletName end, function(x) return x.inletId or x.id end)
end)
try("event types", function()
  show("event types", inlet.list_event_types(c), function(x) return x.title or x.id end, function(x) return x.id end)
end)
