-- aep.run.report: what `aep run` says at the end: the summary line (also under --quiet, which
-- keeps only errors and the final result) and, with --json, one JSON document on stdout.
--
-- Counts come from the lines the run printed (wf:line counts them by status), so "16 created"
-- always follows sixteen "created" lines.
local json = require "aep.json"

local M = {}

-- The statuses the summary counts, in the order it names them; created and found always shown.
M.COUNTED = { "created", "found", "updated", "deleted", "kept" }

-- report.summary(wf) -> "done: 16 created, 1 found, 2 updated[; incomplete: ...]"
function M.summary(wf)
  local c = wf.counts
  local parts = {}
  for _, k in ipairs(M.COUNTED) do
    if k == "created" or k == "found" or (c[k] or 0) > 0 then
      parts[#parts + 1] = string.format("%d %s", c[k] or 0, k)
    end
  end
  local text = "done: " .. table.concat(parts, ", ")
  if wf.exit_code ~= 0 then
    text = text .. "; incomplete: " .. table.concat(wf.incomplete_reasons or {}, "; ")
  end
  return text
end

local function arr(t) return json.array(t or {}) end

local function line_doc(l)
  local label = tostring(l.label or ""):gsub("^%s+", "") -- the indent is for the terminal
  return { script = l.script, status = l.status ~= "" and l.status or nil, label = label ~= "" and label or nil,
           name = l.name ~= "" and l.name or nil, id = l.id ~= nil and tostring(l.id) or nil }
end

-- A profile lookup as JSON: the identity asked for, the profile entity and the events
local function lookup_doc(res)
  if type(res) ~= "table" or type(res.profile) ~= "table" then return nil end
  local events = arr()
  for _, ch in ipairs(res.events or {}) do
    events[#events + 1] = { entityId = ch.entityId, timestamp = ch.timestamp, entity = ch.entity }
  end
  return {
    identity = { namespace = res.namespace, id = res.person },
    entityId = res.profile.entityId,
    merge_policy = res.merge_policy,
    profile = res.profile.entity,
    events = events,
    verified = res.verified,
    mismatches = res.mismatches and arr(res.mismatches) or nil,
  }
end

-- report.json_doc(o) -> the document `aep run --json` prints. o: wf (may be nil when the run
-- failed before it began), names (the scripts asked for), run_name, manifest (path), target,
-- exit_status, error (a platform error or message, when the run failed)
function M.json_doc(o)
  local wf = o.wf
  local doc = {
    tool = "aep run",
    scripts = arr(o.names),
    run_name = o.run_name, manifest = o.manifest,
    target = o.target,
    exit_status = o.exit_status,
    steps = arr(), lines = arr(), counts = {},
    created = arr(), found = arr(), updated = arr(), deleted = arr(), kept = arr(),
  }
  for _, k in ipairs(M.COUNTED) do doc.counts[k] = wf and wf.counts[k] or 0 end
  if wf then
    for _, s in ipairs(wf.steps) do doc.steps[#doc.steps + 1] = { script = s.script, status = s.status } end
    for _, l in ipairs(wf.lines) do
      local d = line_doc(l)
      doc.lines[#doc.lines + 1] = d
      if wf.counts[l.status] then
        table.insert(doc[l.status], { script = l.script, kind = l.label, name = d.name, id = d.id })
      end
    end
    doc.incomplete = wf.incomplete_reasons and arr(wf.incomplete_reasons) or nil
    doc.summary = M.summary(wf)
    doc.lookup = lookup_doc(wf.scripts_run["lookup"])
  end
  local e = o.error
  if e ~= nil then
    if type(e) == "table" then
      doc.error = { code = e.code, kind = e.kind, status = e.status, step = e.step, message = e.message or tostring(e) }
    else
      doc.error = { message = tostring(e) }
    end
  end
  return doc
end

return M
