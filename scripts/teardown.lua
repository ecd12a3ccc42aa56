-- scripts/teardown.lua — deletes exactly what this workflow created, as its run manifest
-- recorded it, newest first (dataflows before connections, datasets before schemas,
-- descriptors before schemas, schemas before field groups). `aep stream` records there the
-- connection and dataflow it creates for a dataset (aep.stream.connection), so they go too.
-- Resources a run only found (made by someone else) are left alone. Deleting the datasets also deletes the data they hold; identity
-- namespaces are never created (Email is standard), and AEP cannot delete them anyway.
local wf = ...
local workflow = require "aep.run.workflow"
local platform = require "aep.platform"
local flows = require "aep.flows"
local stream_connection = require "aep.stream.connection"

local KIND_PATH = { flow = "flows", targetConnection = "targetConnections", sourceConnection = "sourceConnections",
                    connection = "connections" }

local c = wf.client
local m = wf.manifest
wf:heading("teardown: delete what this workflow created")

local resources = m:resources()
local todo = {}
for i = #resources, 1, -1 do todo[#todo + 1] = resources[i] end
if #todo == 0 then
  wf:line("ok", "nothing", "the run manifest " .. m.path .. " records no resources")
end

-- What an `aep stream` made before streams recorded their resources in the run manifest, for a
-- dataset this run created and is about to delete: named "aep stream <dataset id>", so identified
-- as stream's own for that dataset (nothing else is touched), and useless once the dataset is gone.
-- Deleted before anything else, the dataflow before its connections.
local recorded = {}
for _, r in ipairs(todo) do recorded[r.id] = true end
for _, r in ipairs(todo) do
  if r.kind == "dataset" and r.created then
    local name = stream_connection.NAME_PREFIX .. r.id
    for _, kind in ipairs({ "flow", "targetConnection", "sourceConnection", "connection" }) do
      local found = wf:step("teardown: look for " .. workflow.KIND_LABEL[kind] .. " '" .. name .. "'", function()
        return flows.find_by_name(c, KIND_PATH[kind], name)
      end)
      if found and not recorded[found.id] then
        wf:step("teardown: delete " .. workflow.KIND_LABEL[kind] .. " '" .. name .. "'", function()
          return workflow.DELETERS[kind](c, found.id)
        end)
        wf:line("deleted", workflow.KIND_LABEL[kind], name .. " (made by aep stream)", found.id)
        wf.counts.deleted = wf.counts.deleted + 1
      end
    end
  end
end

for _, r in ipairs(todo) do
  local label = workflow.KIND_LABEL[r.kind] or r.kind
  if not r.created then
    wf:line("kept", label, tostring(r.title), r.id)
    m:forget(r.var)
  else
    local del = workflow.DELETERS[r.kind]
    if not del then
      error(platform.error({ kind = "workflow", code = "UNKNOWN_KIND", message = "cannot delete a resource of kind " .. tostring(r.kind) }), 0)
    end
    local done = wf:step("teardown: delete " .. label .. " '" .. tostring(r.title) .. "'", function() return del(c, r.id) end)
    if done == false then
      wf:line("kept", label, tostring(r.title) .. " (the API offers no way to delete it)", r.id)
    else
      wf:line("deleted", label, tostring(r.title), r.id)
    end
    m:forget(r.var)
  end
  wf:save()
end

for _, var in ipairs({ "INLET_ID", "INLET_URL", "INLET_SOURCE_ID", "BATCH_ID_PROFILE", "BATCH_ID_EVENT",
                       "STREAMED_PROFILE", "STREAMED_EVENT" }) do
  m:set(var, nil)
end
wf:save()
