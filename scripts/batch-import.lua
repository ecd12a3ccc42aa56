-- scripts/batch-import.lua — collection folders 4a/4b "Batch import" (R17-R24).
-- Imports the files named by --profiles FILE and --events FILE (the samples when neither is
-- given) into their datasets by batch ingestion. Each input is read, mapped and validated offline
-- as `aep stream` does it (aep.run.batch_rows: JSON Lines, JSON, CSV, gzip, reject files; the
-- mapping's guards; the dataset's schema): a row that fails is rejected with its position and
-- reason (into --reject-file, replayable), the good rows go up as one JSON Lines file, the batch
-- is completed and followed (bounded) to its final Catalog status, and each record the platform
-- still fails is reported once with its row. A batch that an earlier run of this manifest
-- imported successfully from the same input is found, not imported again (--reimport forces it).
local wf = ...
local batches = require "aep.batches"
local batch_rows = require "aep.run.batch_rows"
local mapping = require "aep.stream.mapping"
local validate = require "aep.validate"
local workflow = require "aep.run.workflow"
local host = require "aep.host"

local c = wf.client
local m = wf.manifest
local o = wf.options
wf:heading("batch-import: batch ingestion")

-- What is imported: the files named, else both samples.
local kinds = {}
if o.profiles then kinds[#kinds + 1] = "profile" end
if o.events then kinds[#kinds + 1] = "event" end
local samples = #kinds == 0
if samples then kinds = { "profile", "event" } end
if o.mapping and #kinds > 1 then
  error("--mapping maps the one file given with --profiles or --events; for two files give "
    .. "--profile-mapping FILE and --event-mapping FILE", 0)
end

-- One reject file for the run (entries name their input); opened when the first row is rejected.
local reject_fh
local function reject_file()
  if not o.reject_file then return nil end
  if not reject_fh then
    local err
    reject_fh, err = io.open(o.reject_file, "w")
    if not reject_fh then error("cannot write --reject-file " .. o.reject_file .. ": " .. tostring(err), 0) end
  end
  return reject_fh
end

-- A path on disk for a built-in sample (the readers and the mapping loader read files): the file
-- itself, or the built-in of that name copied out under its own name (aep.file.resolve), so its
-- format still follows from its name.
local function on_disk(path)
  local st = host.stat(path)
  if st and st.type == "file" then return path end
  local real, err = require("aep.file").resolve(path)
  if not real then error(err, 0) end
  return real
end

local function input_signature(path)
  local st = host.stat(path)
  return string.format("%s:%s:%s", path, st and st.size or "?", st and st.mtime or "?")
end

-- The batch an earlier run imported into this dataset from the same input, if it succeeded.
local function earlier_success(KIND, dataset_id, signature)
  local id = m:get("BATCH_ID_" .. KIND)
  local input = m:get("BATCH_INPUT_" .. KIND)
  -- a manifest written before inputs were recorded imported the samples
  if input == nil and samples then input = signature end
  if not id or o.reimport or input ~= signature then return nil end
  local ok, batch = pcall(batches.status, c, id)
  if not ok or type(batch) ~= "table" or batch.status ~= "success" then return nil end
  for _, rel in ipairs(batch.relatedObjects or {}) do
    if rel.type == "dataSet" and rel.id == dataset_id then return id, batch end
  end
  return nil
end

local function load_map(kind)
  local src = workflow.SOURCES[kind]
  local path = (#kinds == 1 and o.mapping) or o[src.mapping_opt] or src.mapping
  local disk = on_disk(path)
  local map, err = mapping.load(disk)
  if not map then error("mapping " .. path .. ": " .. tostring(err), 0) end
  return map, path
end

local function import(kind)
  local KIND = kind:upper()
  local src = workflow.SOURCES[kind]
  local path = o[src.data_opt] or src.data
  local file_name = samples and ("loyalty-" .. src.plural .. ".json")
    or ((path:match("([^/]+)$") or path):gsub("%.gz$", ""):gsub("%.%w+$", "") .. ".json")
  local dataset_id = wf:need("DATASET_ID_" .. KIND, "datasets")
  local signature = input_signature(path)
  local earlier_id, earlier = earlier_success(KIND, dataset_id, signature)
  if earlier_id then
    wf:line("found", "batch", file_name .. " (imported: success)", earlier_id)
    return earlier
  end

  local map = load_map(kind)
  local target = wf:step("batch-import: the schema of " .. dataset_id, function()
    return validate.from_dataset(c, dataset_id)
  end)
  local disk = on_disk(path)
  local ctx = { tenant = wf:tenant(), kind = kind, run_name = wf.run_name, input = path,
                dataset_id = dataset_id, schema_id = target.schema_id }
  local ok, rows = pcall(batch_rows.collect, { path = disk, input = path, format = o.format,
    delimiter = o.delimiter, map = map, ctx = ctx, target = target,
    reject_fh = o.reject_file and reject_file() or nil })
  if not ok then error(rows, 0) end
  for _, rj in ipairs(rows.rejects) do
    wf:line("rejected", "row " .. tostring(rj.position), (rj.line and rj.line ~= rj.position
      and ("(line " .. tostring(rj.line) .. ") ") or "") .. rj.reason)
  end
  if rows.read_error then
    wf:line("error", "input", path .. ": " .. tostring(rows.read_error))
    wf:incomplete(path .. ": " .. tostring(rows.read_error))
  end
  local totals = { read = rows.read, uploaded = #rows.lines, rejected = rows.rejected,
                   skipped = rows.skipped, ingested = 0, failed = 0 }
  local function summary()
    wf:line("rows", src.plural, string.format("%d read: %d uploaded, %d rejected, %d skipped, %d ingested, %d failed",
      totals.read, totals.uploaded, totals.rejected, totals.skipped, totals.ingested, totals.failed))
    if totals.rejected > 0 then
      wf:incomplete(string.format("%d %s rejected%s", totals.rejected, src.plural,
        o.reject_file and (" (see " .. o.reject_file .. ")") or " (--reject-file FILE keeps them)"))
    end
  end
  if #rows.lines == 0 then
    wf:line("skipped", "batch", file_name .. " (no row to upload)")
    summary()
    return nil
  end

  local body = table.concat(rows.lines, "\n") .. "\n"
  local batch_id = wf:step("batch-import: create the " .. KIND .. " batch", function()
    return batches.create(c, dataset_id, { format = "json", multiline = false })
  end)
  m:set("BATCH_ID_" .. KIND, batch_id)
  m:set("BATCH_INPUT_" .. KIND, nil)
  wf:save()
  wf:line("created", "batch", string.format("%s (%d %s)", file_name, #rows.lines, src.plural), batch_id)
  wf:step("batch-import: upload " .. file_name, function()
    batches.upload(c, batch_id, dataset_id, file_name, body)
  end)
  wf:step("batch-import: complete batch " .. batch_id, function() batches.complete(c, batch_id) end)
  local batch = wf:step("batch-import: wait for batch " .. batch_id, function()
    return batches.wait(c, batch_id, { timeout = tonumber(o.wait) or 600 })
  end)
  local status = tostring(batch.status)
  wf:line(status == "success" and "ok" or status, "batch status", status, batch_id)
  local metrics = type(batch.metrics) == "table" and batch.metrics or {}
  if status == "success" then
    totals.ingested = tonumber(metrics.outputRecordCount) or #rows.lines
    m:set("BATCH_INPUT_" .. KIND, signature)
    wf:save()
  end
  local failures = {}
  if status ~= "success" or (tonumber(metrics.failedRecordCount) or 0) > 0 then
    failures = wf:step("batch-import: failed records of " .. batch_id, function()
      return batch_rows.failed(c, batch_id, batch, rows)
    end)
    for _, f in ipairs(failures) do
      wf:line("failed", "row " .. tostring(f.position or "?"), f.reason)
    end
    if #failures == 0 then
      for _, line in ipairs(batches.errors(batch)) do wf:line("", "", line) end
    end
  end
  totals.failed = tonumber(metrics.failedRecordCount) or #failures
  if status ~= "success" then
    totals.failed = math.max(totals.failed, #failures)
    wf:incomplete("batch " .. batch_id .. " ended " .. status)
  end
  summary()
  return batch
end

local out = {}
for _, kind in ipairs(kinds) do out[kind] = import(kind) end
if reject_fh then reject_fh:close() end
return out
