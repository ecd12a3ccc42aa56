-- aep.run.batch_rows: the rows of a batch import, read, mapped and validated offline the way
-- `aep stream` reads, maps and rejects records, before anything is uploaded.
--
--   local rows = batch_rows.collect{ path =, format =, map =, ctx =, target =, reject_fh = }
--   rows.lines      -- JSON text of each good entity, one per line of the batch file
--   rows.positions  -- rows.positions[k]: the input position of rows.lines[k]
--   rows.read, rows.rejected, rows.skipped, rows.rejects ({position, line, reason}), rows.read_error
--   batch_rows.failed(c, batch_id, batch, rows) -> {{position, line, reason}}: the batch's failed records,
--     each named by its input position (once)
--
-- Input goes through aep.stream.readers (JSON Lines, JSON array, CSV, gzip, reject files; one
-- input rule for BOM, empty input and trailing text), so a row's position is the one `aep stream`
-- gives it, and reject entries are aep.stream.ledger's: a reject file replays with
-- `aep stream --format rejects` or with batch-import itself. A row is rejected, with its
-- position and reason, when it cannot be read, its mapping raises (aep.stream.mapping's guards:
-- os.exit and the time budget) or its entity breaks the dataset's schema (aep.validate: AEP's
-- words, the field's JSON pointer first); the other rows make the batch.
local readers = require "aep.stream.readers"
local csv = require "aep.stream.csv"
local ledger = require "aep.stream.ledger"
local validate = require "aep.validate"
local mapping = require "aep.stream.mapping"
local diagnostics = require "aep.diagnostics"
local cjson = require "cjson"

local M = {}

-- batch_rows.collect(o) -> rows. o: path, format, delimiter, map (function(record, ctx)), ctx (table,
-- reused: position, line, origin set per row), target (aep.validate target, or nil to skip the
-- schema check), reject_fh (an open file for reject entries, or nil), input (name in entries)
function M.collect(o)
  -- o.delimiter: --delimiter as given (, ; | tab); without it a CSV's is detected from its header
  local delimiter = "auto"
  if o.delimiter then
    local derr
    delimiter, derr = csv.parse_delimiter(o.delimiter)
    if not delimiter then error(derr, 0) end
  end
  local r, err = readers.open(o.path, { format = o.format, delimiter = delimiter })
  if not r then error(err, 0) end
  local rows = { lines = {}, positions = {}, read = 0, rejected = 0, skipped = 0, rejects = {} }
  local ctx = o.ctx or {}
  local pos = 0
  local exited
  local function map(record, c)
    local ok, res = pcall(o.map, record, c)
    if ok then return res end
    if mapping.is_exit(res) then exited = res end
    error(res, 0)
  end
  local function reject(lineno, text, reason, entity_text)
    rows.rejected = rows.rejected + 1
    rows.rejects[#rows.rejects + 1] = { position = r.origin or pos, line = lineno, reason = reason }
    if o.reject_fh then
      o.reject_fh:write(ledger.reject_entry{
        kind = "rejected", position = pos, line = lineno, origin = r.origin,
        input = o.input or o.path, reason = reason,
        record = text and r:record_json(text) or nil, entity = entity_text })
    end
  end
  while true do
    local ok, v, text, lineno = r:next()
    if ok == nil then
      if v then rows.read_error = v end
      break
    end
    pos = pos + 1
    rows.read = rows.read + 1
    if not ok then
      reject(lineno, text, v)
    else
      ctx.position, ctx.line, ctx.origin = pos, lineno, r.origin
      local status, entity = validate.map(map, v, ctx)
      if exited then
        -- as in `aep stream`: the row is rejected and the run stops, loudly
        reject(lineno, text, "mapping called os.exit(" .. tostring(exited.code) .. ")")
        r:close()
        if o.reject_fh then o.reject_fh:flush() end
        error(string.format("the mapping called os.exit(%s) at row %d (line %s): a mapping cannot end the run "
          .. "(raise an error to reject a row); stopped at row %d", tostring(exited.code), pos, tostring(lineno), pos), 0)
      elseif status == "error" then
        reject(lineno, text, entity)
      elseif status == "skip" then
        rows.skipped = rows.skipped + 1
      else
        local good, problems = true, nil
        if o.target then good, problems = validate.check(o.target, entity) end
        local etext = cjson.encode(entity)
        if good then
          rows.lines[#rows.lines + 1] = etext
          rows.positions[#rows.lines] = r.origin or pos
        else
          reject(lineno, text, table.concat(problems, "; "), etext)
        end
      end
    end
  end
  r:close()
  if o.reject_fh then o.reject_fh:flush() end
  return rows
end

-- The batch file's rows that failed (1-based, in order), from Catalog's errors[].rows.
local function failed_rows(batch)
  local seen, out = {}, {}
  for _, e in ipairs(type(batch.errors) == "table" and batch.errors or {}) do
    for _, k in ipairs(type(e) == "table" and type(e.rows) == "table" and e.rows or {}) do
      k = math.tointeger(tonumber(k))
      if k and not seen[k] then seen[k] = true; out[#out + 1] = k end
    end
  end
  table.sort(out)
  return out
end

-- The innermost JSON pointers of a failed record's violations, in order, once each.
local function pointers(list, out, seen)
  for _, v in ipairs(type(list) == "table" and list or {}) do
    if type(v) == "table" then
      local causes = v.causingExceptions
      if type(causes) == "table" and causes[1] ~= nil then
        pointers(causes, out, seen)
      elseif type(v.pointerToViolation) == "string" and not seen[v.pointerToViolation] then
        seen[v.pointerToViolation] = true
        out[#out + 1] = v.pointerToViolation
      end
    end
  end
  return out
end

-- "#/field: CODE message; ..." (the field first, as the offline rejects name it)
local function reason_of(rec)
  local fields = pointers(rec._validationErrors, {}, {})
  local text = diagnostics.describe(rec)
  if #fields == 0 then return text end
  return table.concat(fields, ", ") .. ": " .. text
end

-- batch_rows.failed(c, batch_id, batch, rows) -> failures {{position, reason}}: each failed record of the
-- batch once, with the input position of its row. Data Access lists the failed records in the
-- file's row order, as Catalog's errors[].rows number them.
function M.failed(c, batch_id, batch, rows)
  local out = {}
  local records = diagnostics.failed_records(c, batch_id)
  local numbers = failed_rows(batch)
  for i, rec in ipairs(records) do
    local k = numbers[i]
    out[#out + 1] = { position = k and rows.positions[k] or nil, reason = reason_of(rec) }
  end
  return out
end

return M
