-- aep.emulator.batch_csv: the rows of an uploaded CSV batch file, as XDM entities.
--
-- Adobe's CSV rules (help/ingestion/batch-ingestion/api-overview.md "Ingest CSV files",
-- troubleshooting.md "Is CSV ingestion supported?"): the file must have a header row; column
-- names hold no spaces; CSV suits flat schemas. A column names a field by its XDM path, written
-- with dots as help/etl/transformations.md writes them (`person.name.firstName`,
-- `_tenant.loyaltyID`) or with slashes as the batch preview names columns; a top-level field is
-- the flat case. CSV holds only text: a cell is converted to the field's XDM type where the
-- conversion table of api-overview.md ("Types") allows it (numbers from their digits, and the
-- words true/false for a boolean); anything else stays text, so the validator names it. An empty
-- cell is an absent field. A column that names no field is kept under its path as text, and the
-- row then fails validation as a JSON row with an unknown field does.
--
-- Rows are read with aep.stream.readers (`aep stream`'s CSV reader: RFC 4180 quoting, bounded
-- quoted fields, a broken row rejected alone). Only the comma delimiter and the double quote are
-- read: a batch asking for others fails with a message naming that limitation (batches.lua).
--
--   batch_csv.rows(path, resolved_schema) -> rows, header_problem
--     rows: array of { value = entity } | { err = true, message = why }
--     header_problem: nil, or a message (the file's rows were not read)
--   batch_csv.table(path, limit) -> header, { {field, ...}, ... } | nil, message   (batch preview)
local readers = require "aep.stream.readers"
local xdm = require "aep.xdm"

local M = {}

M.MAX_RECORD = 16 * 1024 * 1024

local INTEGER = { int = true, integer = true, long = true, short = true, byte = true }
local NUMBER = { number = true, double = true, float = true }

-- Leaf fields of the schema by slash path ("/person/name/firstName") -> XDM type.
local function leaf_types(resolved)
  local out = {}
  for _, f in ipairs(xdm.field_paths(resolved or {})) do out[f.path] = f.type end
  return out
end

local function segments(column)
  local segs = {}
  for s in column:gmatch("[^%./]+") do segs[#segs + 1] = s end
  return segs
end

local function convert(text, ty)
  if INTEGER[ty] then
    local n = math.tointeger(tonumber(text))
    if n then return n end
  elseif NUMBER[ty] then
    local n = tonumber(text)
    if n then return n end
  elseif ty == "boolean" then
    local l = text:lower()
    if l == "true" then return true elseif l == "false" then return false end
  end
  return text
end

local function open(path)
  return readers.open(path, { format = "csv", max_record = M.MAX_RECORD })
end

-- The header's problems that make the file unreadable by AEP's rules, or nil.
local function header_problem(header)
  for _, name in ipairs(header) do
    if name:find("%s") then
      return "CSV header: column '" .. name .. "' holds a space; AEP refuses spaces in CSV headers " ..
             "(write an underscore, or the field's XDM path such as person.name.firstName)"
    end
  end
end

function M.rows(path, resolved)
  local r, err = open(path)
  if not r then return {}, tostring(err) end
  local header = r.header or {}
  local problem = header_problem(header)
  if problem then r:close(); return {}, problem end
  local types = leaf_types(resolved)
  local columns = {}
  for i, name in ipairs(header) do
    local segs = segments(name)
    columns[i] = { segs = segs, type = types["/" .. table.concat(segs, "/")] }
  end
  local rows = {}
  while true do
    local ok, rec = r:next()
    if ok == nil then
      if rec then rows[#rows + 1] = { err = true, message = tostring(rec) } end
      break
    end
    if not ok then
      rows[#rows + 1] = { err = true, message = tostring(rec) }
    else
      local entity = {}
      for i, name in ipairs(header) do
        local text = rec[name]
        local col = columns[i]
        if text ~= nil and text ~= "" and #col.segs > 0 then
          local node = entity
          for k = 1, #col.segs - 1 do
            local s = col.segs[k]
            if type(node[s]) ~= "table" then node[s] = {} end
            node = node[s]
          end
          node[col.segs[#col.segs]] = convert(text, col.type)
        end
      end
      rows[#rows + 1] = { value = entity }
    end
  end
  r:close()
  return rows
end

-- The header and up to `limit` rows as text (rows that do not read are left out).
function M.table(path, limit)
  local r, err = open(path)
  if not r then return nil, tostring(err) end
  local header, out = r.header or {}, {}
  while #out < limit do
    local ok, rec = r:next()
    if ok == nil then break end
    if ok then
      local row = {}
      for i, name in ipairs(header) do row[i] = rec[name] or "" end
      out[#out + 1] = row
    end
  end
  r:close()
  return header, out
end

return M
