-- aep.emulator.profile_jobs: removing data from Real-Time Customer Profile
-- (help/profile/api/entities.md "Delete an entity", help/profile/api/profile-system-jobs.md).
--   DELETE /data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=&entityIdNS=
--          the profile of that identity (its whole identity graph: profile fragments, the events
--          attached by its identities, and the identity links) leaves Profile: 202, no body
--   GET    /data/core/ups/system/jobs            {"_page": {"count", "next"}, "children": [job...]}
--   POST   /data/core/ups/system/jobs            {"dataSetId"} (a dataset's Profile data) or
--                                                {"batchId"} (an ExperienceEvent batch's) -> 200 job
--   GET    /data/core/ups/system/jobs/{ID}       the job
--   DELETE /data/core/ups/system/jobs/{ID}       200, no body (a running job stops)
--
-- Profile data only: the data lake keeps the records (/emulator/datasets/:id/records still lists
-- them), as in AEP, where these requests empty the Profile store and nothing else. A record leaves
-- Profile by losing its identity links and its Profile kind (ingest_records.kind, .idents = NULL),
-- so no graph walk finds it again and no re-link after a restart brings it back.
--
-- Jobs are the Azure instance's objects of profile.yaml (id, imsOrgId, dataSetId | batchId,
-- jobType "DELETE", status NEW -> PROCESSING -> COMPLETED, metrics as a JSON string, createEpoch,
-- updateEpoch in seconds): the spec's DELETE of a job exists only there. They are kept in the
-- store (kind "profileSystemJob", so they survive a restart and go with /emulator/reset) and
-- processed from the server's idle loop (app:on_idle), SLICE records per transaction, so a large
-- dataset never holds the server. A batch job on a record (profile) dataset ends in ERROR, as the
-- guide says a Record dataset batch delete fails; a second job for the same dataset or batch while
-- one is pending answers 422 ("Request already exists", profile.yaml).
local json = require "aep.json"
local crypto = require "aep.crypto"
local ingest = require "aep.emulator.ingest"
local profiles = require "aep.emulator.profiles"
local errors = require "aep.emulator.errors"
local ids = require "aep.emulator.ids"

local M = {}

M.SLICE = 2000
local KIND = "profileSystemJob"
local JOBS = "/data/core/ups/system/jobs"
local JSON_HEADERS = errors.JSON_HEADERS
local PROFILE = "_xdm.context.profile"

local app_ref
local pending = {} -- job id -> sandbox, for the jobs not finished

local function json_error(status, code, detail)
  return status, JSON_HEADERS, { type = "http://ns.adobe.com/aep/errors/" .. code,
    title = status == 404 and "Not Found" or "Bad Request", status = status,
    statusCode = tostring(status), message = detail, detail = detail }
end

local stmts, bound
local function S(store)
  ingest.setup(store)
  if bound == store then return stmts end
  local db = store.db
  stmts = {
    unlink = db:prepare("DELETE FROM ingest_identities WHERE sandbox = ? AND ns = ? AND id = ? AND seq = ?"),
    leave = db:prepare("UPDATE ingest_records SET kind = NULL, idents = NULL WHERE seq = ?"),
    idents_of = db:prepare("SELECT idents FROM ingest_records WHERE seq = ?"),
    -- a dataset's (or one batch's) accepted records after the last one a slice handled, by the
    -- ingest_records_dataset index (dataset_id, status, seq): every slice starts where the last ended
    ds_page = db:prepare("SELECT seq, idents FROM ingest_records WHERE dataset_id = ? AND status = 'success' " ..
      "AND seq > ? AND sandbox = ? ORDER BY seq LIMIT ?"),
    batch_page = db:prepare("SELECT seq, idents FROM ingest_records WHERE dataset_id = ? AND status = 'success' " ..
      "AND seq > ? AND sandbox = ? AND batch_id = ? ORDER BY seq LIMIT ?"),
  }
  bound = store
  return stmts
end

-- Take one record out of Profile (inside a transaction; links flushed before).
local function leave_profile(st, sandbox, seq, idents)
  if idents then
    for _, ident in ipairs(ingest.decode_idents(idents)) do st.unlink:run(sandbox, ident[1]:lower(), ident[2], seq) end
  end
  st.leave:run(seq)
end

---------------------------------------------------------------------------------------------
-- DELETE /data/core/ups/access/entities

local function delete_entity(req, ctx)
  local q = req.query or {}
  local schema = q["schema.name"]
  if schema ~= PROFILE then
    return json_error(400, "UPS-1000-400", "schema.name is required and must be " .. PROFILE ..
      " (the only schema this endpoint deletes)")
  end
  local id, ns = q.entityId, q.entityIdNS
  if id == nil or id == "" then return json_error(400, "UPS-1000-400", "entityId is required") end
  if ns == nil or ns == "" then
    ns, id = profiles.from_xid(id)
    if not ns then return json_error(400, "UPS-1000-400", "entityIdNS is required unless entityId is an XID") end
  end
  local policy = q.mergePolicyId
  if policy and policy ~= "" then
    local mp = ctx.app:module("merge_policies")
    if mp and not mp.find(ctx, policy) then return mp.not_found(policy) end
  end
  local st = S(ctx.store)
  local g = profiles.graph(ctx, ns, id) -- flushes the links first
  if g == false then
    return json_error(422, "UPS-1002-422", "Too many related identities")
  end
  if not g then
    return json_error(404, "UPS-1001-404", string.format("No profile found for entityId [%s] in namespace [%s]", id, ns))
  end
  ctx.store.transaction(function()
    for _, rec in ipairs(g.records) do
      local row = st.idents_of:first(rec.seq)
      leave_profile(st, ctx.sandbox, rec.seq, row and row[1])
    end
  end)
  return 202, {}, ""
end

---------------------------------------------------------------------------------------------
-- System jobs

local function org_id(ctx)
  local org = ctx.org or (ctx.app and ctx.app.org) or {}
  return org.org_id or ""
end

local function put_job(store, sandbox, job)
  store.put(sandbox, KIND, job.id, job)
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function metrics(processed, started_ms, now_ms)
  return json.encode({ recordsProcessed = processed, timeTakenInSec = (now_ms - started_ms) // 1000 })
end

-- One slice of the job `id`.
local function step_job(id, sandbox)
  local store = app_ref.store
  local job = store.get(sandbox, KIND, id)
  if not job or job.status == "COMPLETED" or job.status == "ERROR" then
    pending[id] = nil
    return
  end
  local st = S(store)
  ingest.flush_links()
  local now = ids.now_ms()
  local new = copy(job)
  new.status = "PROCESSING"
  new.updateEpoch = now // 1000
  local processed = job._processed or 0
  if job.batchId then
    if job._record_batch then
      new.status = "ERROR"
      new.metrics = metrics(processed, job._started or now, now)
      new.error = "Batch " .. job.batchId .. " belongs to a record (profile) dataset: only ExperienceEvent batches can be deleted"
      put_job(store, sandbox, new)
      pending[id] = nil
      return
    end
  end
  local rows = {}
  local after = job._last_seq or 0
  if job.batchId then
    for row in st.batch_page:rows(job._dataset, after, sandbox, job.batchId, M.SLICE) do rows[#rows + 1] = row end
  else
    for row in st.ds_page:rows(job.dataSetId, after, sandbox, M.SLICE) do rows[#rows + 1] = row end
  end
  store.transaction(function()
    for _, row in ipairs(rows) do leave_profile(st, sandbox, row[1], row[2]) end
    processed = processed + #rows
    new._processed = processed
    if #rows > 0 then new._last_seq = rows[#rows][1] end
    new._started = job._started or now
    new.metrics = metrics(processed, new._started, now)
    if #rows < M.SLICE then new.status = "COMPLETED" end
    put_job(store, sandbox, new)
  end)
  if new.status == "COMPLETED" then pending[id] = nil end
end

-- One slice of one pending job; -> true while jobs remain. A slice that fails ends its job in
-- ERROR (said on stderr), so a broken job never holds the idle loop.
local function step()
  local id, sandbox = next(pending)
  if not id then return false end
  local ok, err = pcall(step_job, id, sandbox)
  if not ok then
    pending[id] = nil
    io.stderr:write("aep emulator: Profile delete job ", id, " failed: ", tostring(err), "\n")
    local job = app_ref.store.get(sandbox, KIND, id)
    if job then
      local new = copy(job)
      new.status, new.error, new.updateEpoch = "ERROR", tostring(err), ids.now_ms() // 1000
      pcall(put_job, app_ref.store, sandbox, new)
    end
  end
  return next(pending) ~= nil
end

-- The job as answered: the bookkeeping fields (_processed, _started, _last_seq, _dataset, error) stay inside.
local function view(job)
  local out = {}
  for k, v in pairs(job) do if k:sub(1, 1) ~= "_" and k ~= "error" then out[k] = v end end
  return out
end

local function list_jobs(req, ctx)
  local q = req.query or {}
  local limit = math.tointeger(tonumber(q.limit or "100"))
  local start = math.tointeger(tonumber(q.start or q.page or "0"))
  if not limit or limit < 1 or not start or start < 0 then
    return json_error(400, "UPS-1000-400", "start and limit must be integers (limit at least 1)")
  end
  local all = ctx.store.list(ctx.sandbox, KIND)
  local children = json.array {}
  for i = start * limit + 1, math.min(#all, (start + 1) * limit) do children[#children + 1] = view(all[i]) end
  local page = { count = #children }
  if (start + 1) * limit < #all then page.next = tostring(start + 1) end
  return 200, JSON_HEADERS, { _page = page, children = children }
end

local function get_job(req, ctx)
  local job = ctx.store.get(ctx.sandbox, KIND, req.params.id)
  if not job then return json_error(404, "UPS-1004-404", "Delete request " .. req.params.id .. " not found") end
  return 200, JSON_HEADERS, view(job)
end

local function delete_job(req, ctx)
  if not ctx.store.delete(ctx.sandbox, KIND, req.params.id) then
    return json_error(404, "UPS-1004-404", "Delete request " .. req.params.id .. " not found")
  end
  pending[req.params.id] = nil
  return 200, {}, ""
end

local function create_job(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  if type(body) ~= "table" or json.is_array(body) then
    return json_error(400, "UPS-1000-400", 'The body must be {"dataSetId": "..."} or {"batchId": "..."}')
  end
  local ds = body.dataSetId or body.datasetId
  local batch = body.batchId
  if (ds ~= nil and type(ds) ~= "string") or (batch ~= nil and type(batch) ~= "string") or (not ds and not batch) then
    return json_error(400, "UPS-1000-400", 'The body must be {"dataSetId": "..."} or {"batchId": "..."}')
  end
  if batch then
    local b = ingest.get_batch(batch)
    if not b or (b.sandbox and b.sandbox ~= ctx.sandbox) then
      return json_error(400, "UPS-1000-400", "Batch " .. batch .. " was not found in sandbox " .. ctx.sandbox)
    end
  elseif not ctx.store.get(ctx.sandbox, "dataset", ds) then
    return json_error(400, "UPS-1000-400", "Dataset " .. ds .. " was not found in sandbox " .. ctx.sandbox)
  end
  for _, j in ipairs(ctx.store.list(ctx.sandbox, KIND)) do
    if (j.status == "NEW" or j.status == "PROCESSING") and
       ((batch and j.batchId == batch) or (not batch and not j.batchId and j.dataSetId == ds)) then
      return json_error(422, "UPS-1005-422", "A delete request for " .. (batch or ds) .. " already exists: " .. j.id)
    end
  end
  local now = ids.now_ms() // 1000
  local job = { id = crypto.uuid4(), imsOrgId = org_id(ctx), jobType = "DELETE", status = "NEW",
                metrics = json.encode({ recordsProcessed = 0, timeTakenInSec = 0 }),
                createEpoch = now, updateEpoch = now }
  if batch then
    job.batchId = batch
    if ds then job.dataSetId = ds end
    -- record (profile) datasets' batches cannot be deleted: the job will end in ERROR
    local b = ingest.get_batch(batch)
    job._dataset = b.dataset_id
    local info = ingest.dataset(ctx, ctx.sandbox, b.dataset_id)
    if info and info.kind == "p" then job._record_batch = true end
  else
    job.dataSetId = ds
  end
  put_job(ctx.store, ctx.sandbox, job)
  pending[job.id] = ctx.sandbox
  return 200, JSON_HEADERS, view(job)
end

function M.reset(app)
  pending = {}
end

function M.install(app)
  app_ref = app
  pending = {}
  for _, sb in ipairs(app.store.sandbox_names()) do
    for _, job in ipairs(app.store.list(sb, KIND)) do
      if job.status == "NEW" or job.status == "PROCESSING" then pending[job.id] = sb end
    end
  end
  app:on_idle(step)
  local o = { auth = "platform" }
  app:route("DELETE", "/data/core/ups/access/entities", delete_entity, o)
  app:route("GET", JOBS, list_jobs, o)
  app:route("POST", JOBS, create_job, { auth = "platform", body = "json" })
  app:route("GET", JOBS .. "/:id", get_job, o)
  app:route("DELETE", JOBS .. "/:id", delete_job, o)
end

return M
