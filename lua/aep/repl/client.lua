-- aep.repl.client: what the REPL's `client` can answer about data after AEP's answer, as methods
-- (each a thin call of the service module, so help(client.NAME) shows its signature here):
-- the dataflow runs (Flow Service), the dataset's Catalog batches, a batch's failed records
-- (Data Access error diagnostics), and the follow-through's question "did these records fail?".
local M = {}

-- The dataset's id: an id, a name or a run-manifest variable, as `aep stream -d` takes it (a
-- name not found raises the close matches).
local function dataset_id(c, ref)
  if ref == nil then return nil end
  local ok, ds = pcall(require("aep.stream.target").find_dataset, c, ref, nil, c.cfg)
  if not ok then
    if type(ds) == "table" and ds.code == "NOT_FOUND" and ds.message then error(ds.message, 0) end
    error(ds, 0)
  end
  return ds.id
end

-- client:runs(flow_id [, {since_ms = epoch ms}]) -> the dataflow's runs, newest first, each with
-- metrics (recordSummary, statusSummary with errors) and activities (Flow Service /runs)
function M.runs(c, flow_id, o)
  return require("aep.flows").list_runs(c, flow_id, o)
end

-- client:run(run_id) -> one run (metrics, activities, the batches it wrote) | nil
function M.run(c, run_id)
  return require("aep.flows").get_run(c, run_id)
end

-- client:batches{dataset = ID, status = "failed", created_after = ms, limit = 100} -> batches
-- Catalog batches, newest first, each with .id, status, recordCount, failedRecordCount, errors;
-- also created_before = ms; status takes a comma list ("success,failed"); dataset: an id, a name
-- or a run-manifest variable ("DATASET_ID_PROFILE")
function M.batches(c, o)
  if type(o) == "table" and o.dataset ~= nil then
    local copy = {}
    for k, v in pairs(o) do copy[k] = v end
    copy.dataset = dataset_id(c, o.dataset)
    o = copy
  end
  return require("aep.catalog").list_batches(c, o)
end

-- client:failed_records(batch_id [, {max = 1000}]) -> the batch's failed records as AEP wrote
-- them, each with .errors = {{code, message}}; aep.diagnostics.record_of(r) is the record sent
function M.failed_records(c, batch_id, o)
  return require("aep.diagnostics").failed_records(c, batch_id, o)
end

-- client:failed_for(dataset, pred [, {since_ms = epoch ms (default a day ago)}]) -> the failed
-- records of the dataset's batches whose record satisfies pred(record): {{batch, record, errors,
-- reason}} (e.g. pred = function(r) return r.personalEmail.address == "x@example.com" end);
-- dataset: an id, a name or a run-manifest variable
function M.failed_for(c, dataset, pred, o)
  return require("aep.stream.follow").failed_matching(c, dataset_id(c, dataset), pred, o)
end

M.NAMES = { "runs", "run", "batches", "failed_records", "failed_for" }

-- client.attach(client) -> client, with the methods above (those it lacks)
function M.attach(c)
  for _, k in ipairs(M.NAMES) do
    if c[k] == nil then c[k] = M[k] end
  end
  return c
end

return M
