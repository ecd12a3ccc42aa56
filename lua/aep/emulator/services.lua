-- aep.emulator.services: the one list of the emulator's services. A service is one module with
-- install(app) (its routes: app:route(...)) and optionally reset(app) (/emulator/reset); adding a
-- service is writing that module and adding its entry here.
--
-- Each entry:
--   module   the module's name; emulator.create installs the modules in this order, and
--            app:module("<last part of the name>") finds an installed one
--   faults   fault groups (aep emulator --faults SELECTOR) -> the path prefixes they cover. A
--            route's group is the one of the longest prefix its pattern starts with ("other" when
--            none does); a service whose routes sit under another's prefixes declares none.
-- This module is a plain table on purpose: faults.lua reads the groups before any service loads.
local M = {}

M.SERVICES = {
  { module = "aep.emulator.auth", faults = { ims = { "/ims/" } } },
  { module = "aep.emulator.schemas", faults = { schemas = { "/data/foundation/schemaregistry" } } },
  { module = "aep.emulator.descriptors" },
  { module = "aep.emulator.classes" },
  { module = "aep.emulator.unions" },
  { module = "aep.emulator.sampledata" },
  { module = "aep.emulator.identity", faults = { identity = { "/data/core/idnamespace" } } },
  { module = "aep.emulator.catalog", faults = { catalog = { "/data/foundation/catalog" } } },
  { module = "aep.emulator.catalog_v2" },
  { module = "aep.emulator.flows", faults = {
      flows = { "/data/foundation/flowservice", "/data/core/edge" },
      ups = { "/data/core/ups/config" } } },
  { module = "aep.emulator.dataprep_api", faults = {
      dataprep = { "/data/foundation/conversion", "/data/foundation/mappingSets" } } },
  { module = "aep.emulator.flow_specs" },
  { module = "aep.emulator.flow_updates" },
  { module = "aep.emulator.admin", faults = { emulator = { "/emulator" } } },
  { module = "aep.emulator.ingest" },
  { module = "aep.emulator.streaming", faults = {
      streaming = { "/data/foundation/import/collection", "/collection" } } },
  { module = "aep.emulator.async_validation" },
  { module = "aep.emulator.datastreams" },
  { module = "aep.emulator.edge", faults = { edge = { "/ee/" } } },
  { module = "aep.emulator.batches", faults = { batches = { "/data/foundation/import" } } },
  { module = "aep.emulator.catalog_batches" },
  { module = "aep.emulator.last_batches" },
  { module = "aep.emulator.runs" },
  { module = "aep.emulator.diagnostics" },
  { module = "aep.emulator.export_files" },
  { module = "aep.emulator.metrics" },
  { module = "aep.emulator.profiles", faults = { profile = { "/data/core/ups/access" } } },
  { module = "aep.emulator.merge_policies", faults = { profile = { "/data/core/ups/config/mergePolicies" } } },
  { module = "aep.emulator.profile_jobs", faults = { profile = { "/data/core/ups/system" } } },
  { module = "aep.emulator.identity_graph", faults = { identity = { "/data/core/identity/" } } },
  { module = "aep.emulator.sandboxes", faults = { sandboxes = { "/data/foundation/sandbox-management" } } },
  { module = "aep.emulator.web" },
  { module = "aep.emulator.web_edge" },
}

-- services.modules() -> the module names, in installation order
function M.modules()
  local out = {}
  for i, s in ipairs(M.SERVICES) do out[i] = s.module end
  return out
end

-- services.fault_groups() -> { {prefix, group}, ... }, longest prefix first (so the first prefix
-- a path starts with is the most specific one)
function M.fault_groups()
  local out = {}
  for _, s in ipairs(M.SERVICES) do
    for group, prefixes in pairs(s.faults or {}) do
      for _, prefix in ipairs(prefixes) do out[#out + 1] = { prefix, group } end
    end
  end
  table.sort(out, function(a, b)
    if #a[1] ~= #b[1] then return #a[1] > #b[1] end
    return a[1] < b[1]
  end)
  return out
end

return M
