-- aep.diagnostics: a failed batch's failed records with their errors, through Data Access
-- (/data/foundation/export; ingestion/quality/retrieve-failed-batches.md, error-diagnostics.md).
--
--   diagnostics.failed_files(c, batch_id) -> { {name=, length=, href=}, ... } (no "_SUCCESS")
--   diagnostics.failed_records(c, batch_id [, {max=1000}]) -> records, each a decoded line of a
--     failed file plus ._file (its name) and ._line (1-based), and .errors = {{code=, message=}}
--     (from _errors, else the messages of _validationErrors)
--   diagnostics.describe(record) -> "code message; code message"
--   diagnostics.record_of(record) -> the record as it was sent (body.xdmEntity, _record or
--     _corrupt_record), or nil
local platform = require "aep.platform"
local json = require "aep.json"

local M = {}

M.BASE = "/data/foundation/export/batches"

local enc = platform.urlencode

-- diagnostics.failed_files(c, batch_id) -> files (a batch with none answers an empty list)
function M.failed_files(c, batch_id)
  local resp = c:get(M.BASE .. "/" .. enc(batch_id) .. "/failed", { allow = { [404] = true } })
  if resp.status == 404 or type(resp.json) ~= "table" then return {} end
  local out = {}
  for _, f in ipairs(resp.json.data or {}) do
    if type(f) == "table" and f.name and f.name ~= "_SUCCESS" then
      local href = type(f._links) == "table" and type(f._links.self) == "table" and f._links.self.href or nil
      out[#out + 1] = { name = f.name, length = tonumber(f.length), href = href }
    end
  end
  return out
end

local function leaves(list, out)
  for _, v in ipairs(list or {}) do
    if type(v) == "table" then
      local causes = v.causingExceptions
      if type(causes) == "table" and causes[1] ~= nil then
        leaves(causes, out)
      elseif v.message then
        out[#out + 1] = { code = v.keyword, message = v.message }
      end
    end
  end
  return out
end

-- the {code, message} list of one failed line
local function errors_of(line)
  local out = {}
  local errs = line._errors
  if type(errs) == "table" and errs._streamingValidation then errs = errs._streamingValidation end
  if type(errs) == "table" then
    for _, e in ipairs(errs) do
      if type(e) == "table" then out[#out + 1] = { code = e.code, message = e.message } end
    end
  end
  if #out == 0 then leaves(line._validationErrors, out) end
  return out
end

-- diagnostics.failed_records(c, batch_id [, opts]) -> records
function M.failed_records(c, batch_id, opts)
  local max = (opts and opts.max) or 1000
  local out = {}
  for _, f in ipairs(M.failed_files(c, batch_id)) do
    local resp = c:get(M.BASE .. "/" .. enc(batch_id) .. "/failed", { query = { { "path", f.name } } })
    local n = 0
    for text in tostring(resp.body or ""):gmatch("[^\r\n]+") do
      local line = json.decode(text)
      if type(line) == "table" then
        n = n + 1
        line._file, line._line = f.name, n
        line.errors = errors_of(line)
        out[#out + 1] = line
        if #out >= max then return out end
      end
    end
  end
  return out
end

-- diagnostics.record_of(line) -> what was sent, as far as the failed data carries it
function M.record_of(line)
  if type(line.body) == "table" and line.body.xdmEntity ~= nil then return line.body.xdmEntity end
  if line._record ~= nil then return line._record end
  return line._corrupt_record
end

-- diagnostics.describe(line) -> one line of text: each error's code and message
function M.describe(line)
  local parts = {}
  for _, e in ipairs(line.errors or errors_of(line)) do
    parts[#parts + 1] = (e.code and (tostring(e.code) .. " ") or "") .. tostring(e.message)
  end
  return table.concat(parts, "; ")
end

return M
