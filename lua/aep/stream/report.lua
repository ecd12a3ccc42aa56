-- aep.stream.report: the end of an `aep stream` run — the summary people read, and --report FILE
-- for CI: JSON (counts under accepted / rejected / skipped / failed, possibly_duplicated,
-- durations, rates) or JUnit XML when the name ends in .xml (one test case per rejected or failed
-- record, read back from the reject entries, plus one passing case for the accepted records).
local json = require "aep.json"
local cjson_safe = require "cjson.safe"
local host = require "aep.host"
local progress = require "aep.stream.progress"

local M = {}

local count = progress.count

-- "    and 6 more (see rejects.jsonl)": what the listed first few leave out, and where it is
local function and_more(n, reject_file)
  if reject_file then return string.format("    and %s more (see %s)", count(n), reject_file) end
  return string.format("    and %s more (give --reject-file FILE to keep them all)", count(n))
end

-- report.summary(r) -> text (several lines)
-- r: {input, dataset_id, counts, this_run, read, duration, requests, retries, splits, resumed,
--     reject_file, possibly_duplicated, exit_status, stopped}
function M.summary(r)
  local c = r.counts
  local total = c.accepted + c.rejected + c.skipped + c.failed
  local lines = {}
  local rate = r.duration > 0 and (r.this_run_records or total) / r.duration or 0
  lines[#lines + 1] = string.format("aep stream: %s records from %s to dataset %s in %.1f s (%s records/s)",
    count(total), r.input == "-" and "stdin" or r.input, tostring(r.dataset_id), r.duration, count(rate))
  lines[#lines + 1] = string.format("  accepted %s   rejected %s   skipped %s   failed %s%s",
    count(c.accepted), count(c.rejected), count(c.skipped), count(c.failed),
    c.possibly_duplicated > 0 and string.format("   (possibly duplicated %s)", count(c.possibly_duplicated)) or "")
  lines[#lines + 1] = string.format("  %s requests, %s retries%s", count(r.requests or 0), count(r.retries or 0),
    (r.splits or 0) > 0 and (", " .. count(r.splits) .. " batches split after 413") or "")
  local f = r.follow
  if f then
    lines[#lines + 1] = string.format("  after acceptance: ingested %s   failed %s   unknown %s",
      count(f.ingested), count(f.failed_after_acceptance), count(f.unknown))
    for _, reason in ipairs(f.samples or {}) do lines[#lines + 1] = "    " .. reason end
    local more = f.failed_after_acceptance - #(f.samples or {})
    if f.samples and #f.samples > 0 and more > 0 then lines[#lines + 1] = and_more(more, r.reject_file) end
    if f.unknown > 0 then
      lines[#lines + 1] = string.format("  %s accepted records are not known to be ingested or failed: %s",
        count(f.unknown), f.state == "timeout" and ("AEP had not finished validating them after " ..
        tostring(f.wait_s) .. " s") or tostring(f.reason))
    end
    if f.unmatched > 0 then
      lines[#lines + 1] = string.format("  %s failed records of those batches could not be matched to an input position",
        count(f.unmatched))
    end
    if f.status_command then lines[#lines + 1] = "  check later: " .. f.status_command end
  end
  if r.resumed then
    lines[#lines + 1] = string.format("  resumed from checkpoint %s: %s records were already settled",
      r.checkpoint, count(r.resumed_records or 0))
  end
  if c.rejected + c.failed + (f and f.failed_after_acceptance or 0) > 0 then
    if r.reject_file then
      lines[#lines + 1] = "  rejected and failed records: " .. r.reject_file .. " (replay: aep stream --input " .. r.reject_file .. " ...)"
    else
      lines[#lines + 1] = "  (give --reject-file FILE to keep the rejected records for a replay)"
    end
    local samples = r.sample_reasons or {}
    for _, reason in ipairs(samples) do lines[#lines + 1] = "    " .. reason end
    -- the samples are the first few of this run's rejected and failed records
    local t = r.this_run or c
    local more = t.rejected + t.failed - #samples
    if #samples > 0 and more > 0 then lines[#lines + 1] = and_more(more, r.reject_file) end
  end
  if r.stopped then lines[#lines + 1] = "  stopped early: " .. r.stopped end
  return table.concat(lines, "\n") .. "\n"
end

-- report.json_doc(r[, extra]) -> the JSON report document (a table); extra: more top-level keys,
-- e.g. kafka = {...}
function M.json_doc(r, extra)
  local c = r.counts
  local total = c.accepted + c.rejected + c.skipped + c.failed
  local doc = {
    tool = "aep stream",
    input = r.input, format = r.format, dataset = r.dataset_id, inlet = r.inlet_url,
    records = total,
    accepted = c.accepted, rejected = c.rejected, skipped = c.skipped, failed = c.failed,
    possibly_duplicated = c.possibly_duplicated,
    this_run = r.this_run,
    requests = r.requests, retries = r.retries, splits = r.splits, bytes_sent = r.bytes,
    statuses = r.statuses,
    started = r.started, finished = r.finished,
    durations = { total_s = r.duration, setup_s = r.setup_duration, streaming_s = r.stream_duration },
    rates = {
      records_per_s = r.stream_duration and r.stream_duration > 0 and (r.this_run_records or total) / r.stream_duration or json.null,
      requests_per_s = r.stream_duration and r.stream_duration > 0 and (r.requests or 0) / r.stream_duration or json.null,
      pacing = r.pacing,
    },
    reject_file = r.reject_file, checkpoint = r.checkpoint, resumed = r.resumed or false,
    exit_status = r.exit_status, stopped = r.stopped, last_position = r.last_position,
  }
  local f = r.follow
  if f then
    doc.ingested, doc.failed_after_acceptance, doc.unknown = f.ingested, f.failed_after_acceptance, f.unknown
    doc.follow = { state = f.state, wait_s = f.wait_s, waited_s = f.waited_s, batches = f.batches,
                   unmatched = f.unmatched, reason = f.reason, status_command = f.status_command }
  end
  for k, v in pairs(extra or {}) do doc[k] = v end
  return doc
end

local function xml_escape(s)
  s = tostring(s):gsub("[%z\1-\8\11\12\14-\31]", "?")
  return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }))
end
M.xml_escape = xml_escape

-- report.write_junit(path, r, reject_source) -> true | nil, err
-- reject_source: path of a JSON Lines file of reject entries (or nil)
function M.write_junit(path, r, reject_source)
  local tmp = path .. ".aep-tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local c = r.counts
  local bad = c.rejected + c.failed + (r.follow and r.follow.failed_after_acceptance or 0)
  local name = "aep stream " .. (r.input == "-" and "stdin" or r.input)
  local classname = "aep.stream." .. tostring(r.dataset_id or "dataset")
  f:write('<?xml version="1.0" encoding="UTF-8"?>\n')
  f:write(string.format('<testsuites name="aep stream" tests="%d" failures="%d" errors="0" time="%.3f">\n',
    bad + 1, bad, r.duration or 0))
  f:write(string.format('  <testsuite name="%s" tests="%d" failures="%d" errors="0" skipped="0" time="%.3f" timestamp="%s">\n',
    xml_escape(name), bad + 1, bad, r.duration or 0, xml_escape(r.started or "")))
  f:write(string.format('    <properties><property name="dataset" value="%s"/><property name="accepted" value="%d"/>' ..
    '<property name="skipped" value="%d"/><property name="possibly_duplicated" value="%d"/>%s</properties>\n',
    xml_escape(r.dataset_id or ""), c.accepted, c.skipped, c.possibly_duplicated,
    r.follow and string.format('<property name="ingested" value="%d"/><property name="failed_after_acceptance" value="%d"/>' ..
      '<property name="unknown" value="%d"/>', r.follow.ingested, r.follow.failed_after_acceptance, r.follow.unknown) or ""))
  f:write(string.format('    <testcase classname="%s" name="%s records accepted, %s skipped" time="%.3f"/>\n',
    xml_escape(classname), count(c.accepted), count(c.skipped), r.duration or 0))
  local src = reject_source and io.open(reject_source, "rb")
  if src then
    for line in src:lines() do
      local e = cjson_safe.decode(line)
      if type(e) == "table" then
        local pos = math.tointeger(e.position) or e.position
        local case = string.format("record %s%s", tostring(pos), e.line ~= nil and e.line ~= json.null and (" (line " .. tostring(math.tointeger(e.line) or e.line) .. ")") or "")
        local body = line
        if #body > 4096 then body = body:sub(1, 4096) .. "..." end
        f:write(string.format('    <testcase classname="%s" name="%s" time="0">\n      <failure type="%s" message="%s">%s</failure>\n    </testcase>\n',
          xml_escape(classname), xml_escape(case), xml_escape(e.kind or "rejected"), xml_escape(e.reason or ""), xml_escape(body)))
      end
    end
    src:close()
  end
  f:write("  </testsuite>\n</testsuites>\n")
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then return nil, rerr end
  return true
end

-- report.write(path, r, reject_source[, extra]) -> true | nil, err  (JSON or JUnit by the file
-- name; extra: more top-level keys for the JSON document, e.g. kafka = {...})
function M.write(path, r, reject_source, extra)
  if path:lower():match("%.xml$") then return M.write_junit(path, r, reject_source) end
  local doc = M.json_doc(r, extra)
  local ok, err = host.write_file(path, json.encode_pretty(doc) .. "\n")
  if not ok then return nil, err end
  return true
end

return M
