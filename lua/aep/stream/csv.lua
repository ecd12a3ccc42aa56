-- aep.stream.csv: the CSV (RFC 4180) part of aep.stream.readers.
--
--   csv.fields(text [, delim]) -> fields | nil, why [, field]   (one record's text, lines joined by "\n")
--   csv.attach(reader, {max_field = BYTES, max_lines = N, delimiter = CHAR | "auto"}) -> true | nil, err
--                                                      (reads the header)
--   csv.parse_delimiter(text) -> CHAR | nil, err        (--delimiter: , ; | tab)
--
-- The dialect: RFC 4180 with a header row (required: unique, non-empty names). Fields are split at
-- the delimiter (comma by default; "auto" takes the one of , ; tab | that the header holds outside
-- quotes when exactly one does, else comma, with a warning); a field may be quoted with "..." and
-- then hold delimiters, line breaks and "" for a quote. Lines end in LF or CRLF; a carriage return
-- left inside an unquoted field (CR-only line endings, a stray CR) rejects the row, naming its
-- line and column. A UTF-8 byte order mark before the header is skipped.
--
-- A quoted field may span lines, so one unbalanced quote could swallow the rest of the input as
-- a single field. It is bounded: a record whose quoted field is still open after max_lines lines
-- or max_field bytes, at the end of the input, or whose joined lines do not make a row of the
-- header's width, is treated as one broken line: that first line alone is rejected (with its line
-- number) and reading goes on at the line after it, with the lines already read handed out again.
-- Quote state is followed line by line (the parity of its quotes), so each line is scanned once
-- per record attempt: linear time, a broken row costing at most max_lines lines read twice.
local cjson = require "cjson"
local has_long_number = require("aep.lines").has_long_number

local M = {}

M.MAX_FIELD = 1024 * 1024
M.MAX_LINES = 100

local byte, find, sub = string.byte, string.find, string.sub
local utf8_len = utf8.len
local concat = table.concat

-- A carriage return left inside an unquoted field: the lines reader takes LF and CRLF as line
-- ends, so such a CR comes from a file whose lines end in CR alone (a classic Mac export) or from
-- a stray CR in a value. Either way the row would not be the one the user sees: it is rejected.
local function stray_cr(n)
  return nil, "a carriage return inside an unquoted field (lines ending in CR alone, or a stray CR " ..
    "in a value): save the file with LF or CRLF line endings, or quote the field", n
end

-- Split one CSV record (possibly several physical lines joined by "\n") at `delim` (one byte,
-- default ","). Returns the fields array, or nil, why [, field number of a stray CR] (why
-- "unterminated" when a quoted field is still open at the end).
local function csv_fields(text, delim)
  delim = delim or ","
  local dbyte = byte(delim)
  local fields, n = {}, 0
  if not find(text, '"', 1, true) then
    local pos = 1
    while true do
      local c = find(text, delim, pos, true)
      n = n + 1
      if not c then fields[n] = sub(text, pos); break end
      fields[n] = sub(text, pos, c - 1)
      pos = c + 1
    end
    if find(text, "\r", 1, true) then
      for i = 1, n do if find(fields[i], "\r", 1, true) then return stray_cr(i) end end
    end
    return fields
  end
  local pos, len = 1, #text
  while true do
    n = n + 1
    if byte(text, pos) == 34 then -- a quoted field
      local parts, i = {}, pos + 1
      while true do
        local q = find(text, '"', i, true)
        if not q then return nil, "unterminated" end
        parts[#parts + 1] = sub(text, i, q - 1)
        if byte(text, q + 1) == 34 then -- "" is a quote
          parts[#parts + 1] = '"'
          i = q + 2
        else
          pos = q + 1
          break
        end
      end
      fields[n] = concat(parts)
      if pos > len then break end
      if byte(text, pos) ~= dbyte then
        if byte(text, pos) == 13 and pos == len then return stray_cr(n) end
        return nil, string.format("unexpected character after a quoted field (field %d)", n)
      end
      pos = pos + 1
      if pos > len then n = n + 1; fields[n] = ""; break end
    else
      local c = find(text, delim, pos, true)
      local field = c and sub(text, pos, c - 1) or sub(text, pos)
      if find(field, '"', 1, true) then
        return nil, string.format("a quote inside an unquoted field (field %d)", n)
      end
      if find(field, "\r", 1, true) then return stray_cr(n) end
      fields[n] = field
      if not c then break end
      pos = c + 1
      if pos > len then n = n + 1; fields[n] = ""; break end
    end
  end
  return fields
end
M.fields = csv_fields

local function count_quotes(s)
  local n, i = 0, 1
  while true do
    local q = find(s, '"', i, true)
    if not q then return n end
    n = n + 1
    i = q + 1
  end
end

-- Next physical line: lines handed back after a broken row first, then the source.
-- -> line, lineno | nil (EOF) | nil, msg, code
local function next_line(self)
  local back = self.pushed
  if back then
    local i = self.pushed_i
    local e = back[i]
    if i >= #back then self.pushed = nil else self.pushed_i = i + 1 end
    return e[1], e[2]
  end
  return self.src:line()
end

local function push_back(self, held, from)
  if from > #held then return end
  local rest = {}
  for i = from, #held do rest[#rest + 1] = held[i] end
  if self.pushed then -- still handing out older lines: those come after these
    for i = self.pushed_i, #self.pushed do rest[#rest + 1] = self.pushed[i] end
  end
  self.pushed, self.pushed_i = rest, 1
end

-- ", column 2 'email'" (the column's name once the header is read)
local function column_name(self, col)
  if not col then return "" end
  local name = self.header and self.header[col]
  return name and string.format(", column %d '%s'", col, name) or string.format(", column %d", col)
end

-- Read one CSV record. -> fields, text, lineno | nil (EOF) | false, reason, text, lineno
-- | nil, read error
local function csv_read(self, max_record)
  local line, lineno, code
  repeat
    line, lineno, code = next_line(self)
    if line == nil then
      if lineno == nil then return nil end
      if code == "TOO_LARGE" then
        return false, "the row is longer than " .. max_record .. " bytes", nil, self.src:lineno()
      end
      return nil, lineno
    end
  until line ~= ""
  local delim = self.csv_delim
  local fields, err, col = csv_fields(line, delim)
  if fields then return fields, line, lineno end
  if err ~= "unterminated" or count_quotes(line) % 2 == 0 then
    return false, "malformed CSV at line " .. lineno .. column_name(self, col) .. ": " .. err, line, lineno
  end
  -- a quoted field goes on past this line: gather lines until the quotes balance, within bounds
  local held, size = { { line, lineno } }, #line
  local open, why = true, nil
  while open do
    if #held >= self.csv_max_lines then
      why = "a quoted field is not closed within " .. self.csv_max_lines .. " lines"; break
    end
    if size > self.csv_max_field then
      why = "a quoted field is not closed within " .. self.csv_max_field .. " bytes"; break
    end
    local more, mlineno, mcode = next_line(self)
    if more == nil then
      if mlineno ~= nil and mcode ~= "TOO_LARGE" then push_back(self, held, 2); return nil, mlineno end
      why = "a quoted field is not closed"
      break
    end
    held[#held + 1] = { more, mlineno }
    size = size + 1 + #more
    if count_quotes(more) % 2 == 1 then open = false end
  end
  if not open then
    local parts = {}
    for i, h in ipairs(held) do parts[i] = h[1] end
    local text = concat(parts, "\n")
    fields = csv_fields(text, delim)
    if fields and (not self.ncols or #fields == self.ncols) then return fields, text, lineno end
    why = "a quoted field opened here does not close into a row"
  end
  -- the broken line alone is rejected; the lines after it are read again as rows of their own
  push_back(self, held, 2)
  local next_at = held[2] and held[2][2] or (lineno + 1)
  return false, string.format("malformed CSV at line %d: %s (this line is rejected alone; reading goes on at line %d)",
    lineno, why, next_at), line, lineno
end

local csv_header
function csv_header(self)
  local fields, text = csv_read(self, self.max_record)
  if fields == nil then
    if text then return nil, text end
    self.header, self.ncols, self.empty = {}, 0, true -- an empty input: no header, no records
    return true
  end
  if fields == false then return nil, "CSV header: " .. tostring(text) end
  if fields[1] then fields[1] = fields[1]:gsub("^\239\187\191", "") end
  if fields[1] == "" and not fields[2] and not self.header_tries then -- a line holding only a BOM
    self.header_tries = true
    return csv_header(self)
  end
  local seen = {}
  for i, name in ipairs(fields) do
    if name == "" then return nil, "CSV header: column " .. i .. " has no name" end
    if seen[name] then return nil, "CSV header: column '" .. name .. "' appears twice" end
    seen[name] = true
  end
  self.header = fields
  self.ncols = #fields
  return true
end

local function bad_utf8_reason(bad)
  return string.format("invalid UTF-8 at byte %d of the record", bad)
end

local function csv_next(self)
  if self.empty then return nil end
  local fields, text, lineno, bad_lineno = csv_read(self, self.max_record)
  if fields == nil then return nil, text end
  if fields == false then return false, text, lineno, bad_lineno end -- reason, text, lineno
  local ok, bad = utf8_len(text)
  if not ok then return false, bad_utf8_reason(bad), text, lineno end
  local header, ncols = self.header, self.ncols
  if #fields ~= ncols then
    return false, string.format("CSV row at line %d has %d fields, the header has %d", lineno, #fields, ncols),
      text, lineno
  end
  local rec = {}
  for i = 1, ncols do rec[header[i]] = fields[i] end
  -- fields are strings, but a mapping may turn one into a number: a row holding 15 or more
  -- digits in a row has its entity written by aep.json, which keeps every digit (readers.lua)
  if has_long_number(text, "text") then self.marked = true end
  return true, rec, text, lineno
end

local function csv_record_json(self, text)
  if text == nil then return "null" end
  local fields = csv_fields(text, self.csv_delim)
  if fields and #fields == self.ncols and utf8_len(text) then
    local rec = {}
    for i = 1, self.ncols do rec[self.header[i]] = fields[i] end
    return cjson.encode(rec)
  end
  return cjson.encode(utf8_len(text) and text or self.scrub_utf8(text))
end

local function csv_skip(self)
  if self.empty then return nil end
  local fields = csv_read(self, self.max_record)
  if fields == nil then return nil end
  return true
end

-- The delimiters --delimiter takes, and the ones looked for in a header: the byte and its name
M.DELIMITERS = { [","] = "comma", [";"] = "semicolon", ["\t"] = "tab", ["|"] = "pipe" }
local CANDIDATES = { ",", ";", "\t", "|" }

-- csv.parse_delimiter(text) -> the delimiter byte | nil, err: "," ";" "|", tab as "\t" or "tab"
-- (the names comma, semicolon, pipe too)
function M.parse_delimiter(text)
  if text == nil then return nil, "--delimiter needs a value" end
  local t = tostring(text)
  if t == "\\t" or t:lower() == "tab" then return "\t" end
  for char, name in pairs(M.DELIMITERS) do
    if t == char or t:lower() == name then return char end
  end
  return nil, "--delimiter takes , ; | or tab (written \\t or tab), got '" .. t .. "'"
end

local function show(char) return char == "\t" and "tab" or ("'" .. char .. "'") end

-- The candidate delimiters that appear outside quotes in a header line, in CANDIDATES order.
local function header_delimiters(line)
  local seen, quoted = {}, false
  for i = 1, #line do
    local c = sub(line, i, i)
    if c == '"' then quoted = not quoted
    elseif not quoted and M.DELIMITERS[c] then seen[c] = true end
  end
  local out = {}
  for _, c in ipairs(CANDIDATES) do if seen[c] then out[#out + 1] = c end end
  return out
end
M.header_delimiters = header_delimiters

-- Detect the delimiter from the header line: the one candidate that appears in it outside
-- quotes; comma otherwise, with a warning (stderr) when that guess may be wrong. The lines looked
-- at are handed out again.
local function detect(self)
  local held = {}
  local line
  while #held < 3 do -- the header, after blank lines and a line holding only a BOM
    local l, lineno = next_line(self)
    if l == nil then break end
    held[#held + 1] = { l, lineno }
    l = l:gsub("^\239\187\191", "")
    if l ~= "" then line = l; break end
  end
  push_back(self, held, 1)
  if not line then return "," end
  local found = header_delimiters(line)
  local log = require "aep.log"
  local name = self.path == "-" and "stdin" or tostring(self.path)
  if #found == 1 then
    -- said by the command (stdout holds a --json document): reader.delimiter_note
    if found[1] ~= "," then
      self.delimiter_note = "reading CSV separated by " .. show(found[1]) .. " (found in the header; --delimiter sets it)"
    end
    return found[1]
  end
  if #found == 0 then
    log.warn("%s: the CSV header has a single column (no comma, semicolon, tab or | in it): " ..
      "if another character separates the fields, give --delimiter CHAR", name)
  else
    local shown = {}
    for i, c in ipairs(found) do shown[i] = show(c) end
    log.warn("%s: the CSV header holds %s outside quotes: reading it as comma-separated; " ..
      "give --delimiter CHAR to choose", name, table.concat(shown, " and "))
  end
  return ","
end

-- csv.attach(reader, opts) -> true | nil, err: make `reader` (aep.stream.readers) read CSV
-- opts: max_field, max_lines, delimiter (one byte, or "auto": detected from the header; default ",")
function M.attach(self, opts)
  self.csv_max_field = opts.max_field or M.MAX_FIELD
  self.csv_max_lines = opts.max_lines or M.MAX_LINES
  self.next, self.skip, self.record_json = csv_next, csv_skip, csv_record_json
  local delim = opts.delimiter or ","
  if delim == "auto" then delim = detect(self) end
  self.csv_delim = delim
  return csv_header(self)
end

return M
