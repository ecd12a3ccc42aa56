-- aep.stream.outcomes: what `aep stream` does with the follow-through's findings
-- (aep.stream.follow): a reject entry per record that failed after acceptance (kind
-- "failed_after_acceptance", replayable like any other, with AEP's errors), the source told
-- (a Kafka source dead-letters it), and the report's fields.
--
--   local f = outcomes.apply{ledger=, outcome=, source=, input=, env=, dataset_id=, wait=}
--   r.follow = f            -- aep.stream.report reads it
local cjson = require "cjson"
local ledger_mod = require "aep.stream.ledger"
local readers = require "aep.stream.readers"
local follow = require "aep.stream.follow"

local M = {}

M.KIND = "failed_after_acceptance"

-- outcomes.entry(item, input) -> one reject file line (JSON Lines) for a record that failed after
-- acceptance: the reject entry every replay reads, plus AEP's `errors` and the failed `batch`
function M.entry(item, input)
  local line = ledger_mod.reject_entry{
    kind = M.KIND, position = item.position, line = item.line, origin = item.origin,
    input = input, reason = item.reason ~= "" and item.reason or "failed AEP's validation after acceptance",
    record = readers.json_text_or_string(item.record), entity = item.entity,
  }
  local errors = {}
  for i, e in ipairs(item.errors or {}) do
    errors[i] = { code = e.code ~= nil and tostring(e.code) or cjson.null, message = tostring(e.message) }
  end
  local extra = ',"errors":' .. (#errors > 0 and cjson.encode(errors) or "[]") ..
    ',"batch":' .. cjson.encode(tostring(item.batch))
  return line:sub(1, -3) .. extra:gsub("\\/", "/") .. "}\n"
end

-- outcomes.apply(o) -> the report's follow fields
-- o: ledger (its reject file gets the entries), outcome (follow.run's), source (on_reject told,
-- kind "failed_after_acceptance"), input, env (for the status command), dataset_id, wait (s)
function M.apply(o)
  local out, ledger, source = o.outcome, o.ledger, o.source
  local lines = {}
  for i, item in ipairs(out.failed) do
    local where = source and source.where_accepted and source:where_accepted(item.position) or o.input
    lines[i] = M.entry(item, where)
  end
  if #lines > 0 then
    local fh = ledger:_file("reject")
    if fh then
      local text = table.concat(lines)
      fh:write(text)
      ledger.reject_offset = ledger.reject_offset + #text
      ledger.rejects_unsynced = true
      ledger.dirty = true
    end
    if ledger.on_rejects then ledger.on_rejects(lines) end
  end
  local stop
  if source and source.on_failed_after_acceptance then
    for _, item in ipairs(out.failed) do
      stop = stop or source:on_failed_after_acceptance(item.position, item.reason)
    end
  end
  local samples = {}
  for i = 1, math.min(5, #out.failed) do
    samples[i] = "record " .. out.failed[i].position .. ": " .. out.failed[i].reason
  end
  return {
    state = out.state, accepted = out.accepted, ingested = out.ingested,
    failed_after_acceptance = #out.failed, unknown = out.unknown, unmatched = out.unmatched,
    batches = out.batches, waited_s = out.waited_s, wait_s = o.wait, reason = out.reason,
    samples = samples, stop = stop,
    status_command = (out.unknown > 0 or out.unmatched > 0) and follow.status_command{
      env = o.env, dataset_id = o.dataset_id, since = o.since } or nil,
  }
end

return M
