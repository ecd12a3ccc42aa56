-- aep.emulator.batch_files: the rows of an uploaded batch file, read with aep.lines (the reader
-- `aep stream` uses: one row in memory at a time besides the rows kept). aep.lines detects gzip,
-- so a compressed upload is read as its content; AEP's batch ingestion docs neither list nor
-- exclude compressed JSON files (docs/AEP-API-FACTS.md has no fact on it).
--   a JSON array, whatever its layout            element by element (aep.lines' array scanner)
--   JSON Lines (the default)                     one value per line
--   isMultiLineJson, objects one after another   values split at their closing brackets
-- A row that does not decode is kept as a corrupt row ({ err = true }) so the batch can name it.
local cjson_safe = require "cjson.safe"
local lines = require "aep.lines"

local M = {}

-- One upload is at most the emulator's request body limit (emulator.MAX_BODY): any row fits.
local MAX_ROW = 256 * 1024 * 1024

local function open(path)
  return lines.open(path, { max_record = MAX_ROW })
end

local function decode_row(text)
  local v = cjson_safe.decode(text)
  -- the text is kept (up to 64 KiB) for the error diagnostics' _corrupt_record
  if v == nil then return { err = true, text = #text <= 65536 and text or text:sub(1, 65536) } end
  return { value = v }
end

local function good_rows(rows)
  local n = 0
  for _, r in ipairs(rows) do if not r.err then n = n + 1 end end
  return n
end

-- The first non-blank character of the (uncompressed) file, nil when it is blank or unreadable.
local function first_char(path)
  local r = open(path)
  if not r then return nil end
  local c
  repeat
    local chunk = r:read(65536)
    c = chunk and chunk:match("%S")
  until c or not chunk
  r:close()
  return c
end

-- The elements of a JSON array -> rows, intact. A broken structure (an unbalanced bracket, a
-- missing comma) stops the scanner: the rows before it, then one corrupt row for the rest.
local function array_rows(path)
  local r = assert(open(path))
  local rows, intact = {}, true
  while true do
    local text, _, code = r:array_item()
    if text == nil then
      if code then rows[#rows + 1] = { err = true }; intact = false end
      break
    end
    local row = decode_row(text)
    if row.err then intact = false end
    rows[#rows + 1] = row
  end
  r:close()
  return rows, intact
end

-- The elements of a JSON array written one per line (the collection's layout): "[" and "]" and
-- the separating commas stripped from the line ends. The fallback for a corrupt array, where a
-- broken row would otherwise swallow the rows after it.
local function array_line_rows(path)
  local r = assert(open(path))
  local texts = {}
  while true do
    local line, _, code = r:line()
    if line == nil then
      if code ~= "TOO_LARGE" then break end
      texts[#texts + 1] = false -- a row over MAX_ROW: corrupt
    else
      local t = line:match("^%s*(.-)%s*$")
      if #texts == 0 then t = t:gsub("^%[%s*", "") end
      t = t:gsub(",$", "")
      if t ~= "" then texts[#texts + 1] = t end
    end
  end
  r:close()
  local n = #texts
  if n > 0 and texts[n] then
    texts[n] = texts[n]:gsub("%s*%]$", "")
    if texts[n] == "" then texts[n] = nil end
  end
  local rows = {}
  for k = 1, #texts do rows[k] = texts[k] and decode_row(texts[k]) or { err = true } end
  return rows
end

-- One value per non-blank line -> rows, all decoded. A line over MAX_ROW is a corrupt row.
local function line_rows(path)
  local r = assert(open(path))
  local rows, all_ok = {}, true
  while true do
    local line, _, code = r:line()
    if line == nil then
      if code == nil then break end
      rows[#rows + 1] = { err = true }
      all_ok = false
      if code ~= "TOO_LARGE" then break end
    elseif line:find("%S") then
      local row = decode_row(line)
      if row.err then all_ok = false end
      rows[#rows + 1] = row
    end
  end
  r:close()
  return rows, all_ok
end

-- Concatenated values (isMultiLineJson: objects span lines, nothing between them but blanks),
-- split where the brackets close. aep.lines reads arrays and lines, not bare values one after
-- another, and cjson decodes one value: this walk tells the values apart, cjson decodes each.
local function concatenated_rows(path)
  local r = assert(open(path))
  local parts = {}
  while true do
    local chunk = r:read(1048576)
    if not chunk then break end
    parts[#parts + 1] = chunk
  end
  r:close()
  local s = table.concat(parts)
  local rows, n = {}, #s
  local depth, start, in_str, esc = 0, nil, false, false
  local byte = string.byte
  for i = 1, n do
    local c = byte(s, i)
    if in_str then
      if esc then esc = false
      elseif c == 92 then esc = true        -- \
      elseif c == 34 then in_str = false    -- "
      end
    elseif c == 34 then
      in_str = true
      start = start or i
    elseif c == 123 or c == 91 then         -- { [
      depth = depth + 1
      start = start or i
    elseif c == 125 or c == 93 then         -- } ]
      if depth == 0 then
        start = start or i
      else
        depth = depth - 1
        if depth == 0 then
          rows[#rows + 1] = decode_row(s:sub(start, i))
          start = nil
        end
      end
    elseif c ~= 32 and c ~= 9 and c ~= 10 and c ~= 13 then
      start = start or i
    end
  end
  if start then rows[#rows + 1] = decode_row(s:sub(start)) end
  return rows
end

-- batch_files.rows(path, multiline) -> array of { value = decoded } | { err = true }
function M.rows(path, multiline)
  local first = first_char(path)
  if not first then return {} end
  if first == "[" then
    local rows, intact = array_rows(path)
    if intact then return rows end
    local by_line = array_line_rows(path)
    return good_rows(by_line) > good_rows(rows) and by_line or rows
  end
  local rows, all_ok = line_rows(path)
  if all_ok or not multiline then return rows end
  return concatenated_rows(path)
end

-- M.format_limitation(inputFormat) -> nil | why the emulator cannot read this batch's files.
-- Parquet: AEP ingests it, but no Debian package reads Parquet, so the emulator cannot (the
-- message says so, and never that AEP refuses Parquet). CSV: the comma and the double quote only;
-- a header row is required by AEP itself (api-overview.md, "Ingest CSV files").
function M.format_limitation(input_format)
  local f = type(input_format) == "table" and input_format or {}
  local format = tostring(f.format or ""):lower()
  if format == "parquet" then
    return "The emulator cannot read Parquet files (no Debian package reads Parquet), so aep emulator fails " ..
           "Parquet batches; Adobe Experience Platform itself ingests them. To test against the emulator, " ..
           "upload the same rows as JSON or CSV (inputFormat.format \"json\" or \"csv\")."
  elseif format == "csv" then
    if f.delimiter ~= nil and f.delimiter ~= "," or f.quote ~= nil and f.quote ~= '"' then
      return "The emulator reads CSV files with the comma delimiter and the double quote only " ..
             "(this batch asks for delimiter [" .. tostring(f.delimiter) .. "], quote [" .. tostring(f.quote) .. "])."
    end
    if f.header == false then
      return "CSV files must start with a header row (inputFormat.header false is not supported by AEP's batch " ..
             "ingestion: help/ingestion/batch-ingestion/api-overview.md, \"Ingest CSV files\")."
    end
  elseif format ~= "json" then
    return "Input format [" .. format .. "] is not supported; use json, csv or parquet."
  end
end

return M
