-- aep.stream.readers: input records for `aep stream`, one at a time, never the whole file.
--
--   local r = readers.open(path | "-", {format = "jsonl"|"json"|"csv"|"rejects" | nil,
--                                       delimiter = CHAR | "auto" | nil (CSV: comma)})
--   while true do
--     local ok, value, text, lineno = r:next()
--     if ok == nil then break end          -- end of input (value = message if it ended on an error)
--     if ok then use(value)                 -- value: the decoded record (a table)
--     else reject(value) end                -- value: why this record cannot be read
--   end
--
-- One call of r:next() is one input position, good or bad, so positions are stable between runs
-- (checkpoints and reject files refer to them). Blank lines are not records. `text` is the
-- record's original text (a JSON Lines line, a JSON array element, a CSV row); r:record_json(text)
-- turns it into JSON for the reject file. Replaying a reject file (format "rejects", or a JSON
-- Lines file whose first line is a reject entry) reads each entry's original record; r.origin is
-- then the position the record had in its first input. r.marked is set (the caller clears it) when
-- the record's entity must be written by aep.json: the record held empty arrays, decoded as
-- aep.json.array({}), or a number of 15 or more significant digits (see decode_keep_arrays).
--
-- One rule for every format: a UTF-8 byte order mark at the start is skipped; an empty input is
-- no records (r:next() ends at once, no error); text after a JSON array's closing "]" ends the
-- input with an error naming its line, as does a gzip input cut inside a compressed stream. CSV
-- lives in aep.stream.csv (bounded quoted fields, resynchronisation after a broken row).
--
-- Formats follow the file name (.jsonl/.ndjson, .json, .csv, each optionally .gz; gzip is detected
-- from the content, not the name) unless opts.format says; stdin defaults to JSON Lines.
local lines = require "aep.lines"
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local host = require "aep.host"
local csv = require "aep.stream.csv"

local M = {}

-- An input record longer than this is not read at all (AEP takes at most 1 MB per request; the
-- margin lets a mapping shrink large records).
M.MAX_RECORD = 16 * 1024 * 1024

local decode = cjson_safe.decode
local exact_decode = json.decode
local has_long_number = lines.has_long_number
local utf8_len = utf8.len
local byte, find, sub = string.byte, string.find, string.sub

M.FORMATS = { jsonl = true, json = true, csv = true, rejects = true }

-- readers.detect(path [, format]) -> format | nil, err
function M.detect(path, format)
  if format then
    format = format:lower()
    if format == "ndjson" or format == "jsonlines" then format = "jsonl" end
    if not M.FORMATS[format] then
      return nil, "unknown input format '" .. format .. "' (jsonl, json, csv or rejects)"
    end
    return format
  end
  if path == "-" then return "jsonl" end
  local name = path:lower():gsub("%.gz$", ""):gsub("%.gzip$", "")
  if name:match("%.jsonl$") or name:match("%.ndjson$") then return "jsonl" end
  if name:match("%.json$") then return "json" end
  if name:match("%.csv$") then return "csv" end
  return nil, "cannot tell the format of " .. path .. " from its name: use --format jsonl|json|csv"
end

-- Replace each byte that is not part of valid UTF-8 by U+FFFD (the reject file stays valid JSON).
local function scrub_utf8(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local len, bad = utf8_len(s, i)
    if len then out[#out + 1] = sub(s, i); break end
    out[#out + 1] = sub(s, i, bad - 1)
    out[#out + 1] = "\239\191\189"
    i = bad + 1
  end
  return table.concat(out)
end
M.scrub_utf8 = scrub_utf8

local function bad_utf8_reason(text, bad)
  return string.format("invalid UTF-8 at byte %d of the record", bad)
end

-- JSON text of a record that may be malformed: as is when it decodes, else a JSON string.
local function json_text_or_string(text)
  if text == nil then return "null" end
  if utf8_len(text) == nil then return cjson.encode(scrub_utf8(text)) end
  if decode(text) ~= nil then return text end
  return cjson.encode(text)
end
M.json_text_or_string = json_text_or_string

-- Empty JSON arrays. cjson (2.1.0) decodes [] and {} alike as an empty table and encodes an empty
-- table as {}, so a record's [] would reach AEP as {} once a mapping has re-encoded it. Records
-- whose text holds an empty array (rare: one string.find tells) are decoded on a slower path that
-- marks each [] outside strings as aep.json.array({}); reader.marked then tells the pipeline to
-- encode that record's entity with aep.json, which writes them back as [].
local EMPTY = "\1aep-empty-array\1"
local EMPTY_JSON = '["' .. EMPTY .. '"]'
local json_array_mt = json.array_mt

local function rewrite_empty_arrays(text)
  local out, n, pos, last = {}, 0, 1, 1
  local in_str = false
  while true do
    local s = find(text, in_str and '[\\"]' or '["%[]', pos)
    if not s then break end
    local c = byte(text, s)
    if c == 92 then -- backslash inside a string: skip the escaped character
      pos = s + 2
    elseif c == 34 then
      in_str = not in_str
      pos = s + 1
    else -- '[' outside a string
      local _, e = find(text, "^%s*%]", s + 1)
      if e then
        n = n + 1; out[n] = sub(text, last, s - 1)
        n = n + 1; out[n] = EMPTY_JSON
        last = e + 1
        pos = e + 1
      else
        pos = s + 1
      end
    end
  end
  if n == 0 then return nil end
  out[n + 1] = sub(text, last)
  return table.concat(out)
end

local function restore_empty_arrays(v)
  for k, x in pairs(v) do
    if type(x) == "table" then
      if x[1] == EMPTY and x[2] == nil then
        v[k] = setmetatable({}, json_array_mt)
      else
        restore_empty_arrays(x)
      end
    end
  end
end

-- dec(text) with empty arrays kept: value, err, marked
local function decode_arrays_with(dec, text)
  if not find(text, "[", 1, true) or not find(text, "%[%s*%]") then return dec(text) end
  local rewritten = rewrite_empty_arrays(text)
  if not rewritten then return dec(text) end
  local v, err = dec(rewritten)
  if v == nil then return dec(text) end -- report the error against the original text
  if type(v) == "table" then
    if v[1] == EMPTY and v[2] == nil then return setmetatable({}, json_array_mt), nil, true end
    restore_empty_arrays(v)
  end
  return v, nil, true
end

-- Long numbers. cjson (2.1.0) reads every number as a double and writes 14 significant digits:
-- 1234567890123456 would reach AEP as 1.2345678901235e+15 once a mapping has re-encoded it. A
-- record whose text holds a number of 15 or more significant digits (aep.lines.has_long_number,
-- a C scan: a Lua pattern per record cost a third of the mapping path) is decoded by aep.json
-- (integers exact up to 2^63-1, as Lua integers) and marked, so its entity is written by aep.json
-- (every digit). Every other record stays on cjson's path, where no digit can be lost.

-- decode_keep_arrays(text [, long]) -> value, err, marked
-- long: whether text holds a long number (computed when nil); "text" counts the digits of JSON
-- strings too (a replayed CSV row, whose fields a mapping may turn into numbers).
local function decode_keep_arrays(text, long)
  if long == nil or long == "text" then long = has_long_number(text, long or "json") end
  if not long then return decode_arrays_with(decode, text) end
  local v = decode_arrays_with(exact_decode, text)
  -- an error is reported as cjson words it, as for every other record
  if v == nil then return decode_arrays_with(decode, text) end
  return v, nil, true
end
M.decode_keep_arrays = decode_keep_arrays

local function check_object(v)
  return type(v) == "table" and (next(v) == nil or v[1] == nil) and getmetatable(v) ~= json_array_mt
end

local Reader = {}
Reader.__index = Reader

-- reader:progress() -> bytes consumed, total bytes | nil (stdin)
-- The bytes of the records handed out, not the bytes read into the buffer (256 KB ahead: a small
-- file would count as read whole after its first record); for a gzip input, the compressed
-- offset, the only one that compares with the file's size.
function Reader:progress()
  if self.gzip then return self.src:raw_tell(), self.size end
  return self.src:tell(), self.size
end

-- reader:record_json(text) -> JSON text of the original record, for the reject file
function Reader:record_json(text)
  return json_text_or_string(text)
end

function Reader:close()
  self.src:close()
end

-- JSON Lines -------------------------------------------------------------------------------------

local function replay_next(self, entry, text, lineno)
  local line_text = text
  if type(entry) ~= "table" or entry.aep_reject == nil then
    self.origin = nil
    return false, "not a reject entry (replay input must come from --reject-file)", text, lineno
  end
  local origin = entry.origin ~= nil and entry.origin or entry.position
  self.origin = math.tointeger(origin) or origin
  -- the line in the first input (cjson reads every number as a float: 4 would be written back as 4.0)
  if entry.line ~= nil then lineno = math.tointeger(entry.line) or entry.line end
  local rec = entry.record
  -- a replayed record may be a CSV row, whose digit strings a mapping may turn into numbers
  if has_long_number(line_text or "", "text") then self.marked = true end
  if type(rec) == "string" then
    -- the record could not be read the first time; it may have been fixed in the reject file
    local v, err, marked = decode_keep_arrays(rec, "text")
    if v == nil then return false, "invalid JSON: " .. tostring(err), rec, lineno end
    if marked then self.marked = true end
    rec = v
    text = rec
  end
  if not check_object(rec) then
    return false, "the record is not a JSON object", json_text_or_string(type(rec) == "string" and rec or cjson.encode(rec)), lineno
  end
  return true, rec, self.marked and json.encode(rec) or cjson.encode(rec), lineno
end

local function jsonl_next(self)
  local src = self.src
  while true do
    local line, lineno, code = src:line()
    if line == nil then
      if lineno == nil then return nil end
      if code == "TOO_LARGE" then
        return false, "the record is longer than " .. M.MAX_RECORD .. " bytes (AEP takes at most 1 MB per request)", nil, src:lineno()
      end
      return nil, lineno
    end
    local b = byte(line, 1)
    if b == 239 and lineno == 1 and sub(line, 1, 3) == "\239\187\191" then -- a UTF-8 BOM
      line = sub(line, 4)
      b = byte(line, 1)
    end
    if b == 123 or (b and find(line, "%S")) then -- '{' or any non-blank line
      local ok, bad = utf8_len(line)
      if not ok then
        return false, bad_utf8_reason(line, bad), line, lineno
      end
      local v, err, marked = decode_keep_arrays(line, has_long_number(line))
      if v == nil then
        return false, "invalid JSON at line " .. lineno .. ": " .. tostring(err), line, lineno
      end
      if marked then self.marked = true end
      if self.replay then return replay_next(self, v, line, lineno) end
      if self.first then
        self.first = false
        if type(v) == "table" and v.aep_reject ~= nil then
          self.replay = true
          return replay_next(self, v, line, lineno)
        end
      end
      if not check_object(v) then
        return false, "the record is not a JSON object", line, lineno
      end
      return true, v, line, lineno
    end
  end
end

-- reader:skip() -> true | nil at the end: consume one position without decoding (resume)
local function jsonl_skip(self)
  local src = self.src
  while true do
    local line, lineno = src:line()
    if line == nil then
      if lineno == nil then return nil end
      return true
    end
    if lineno == 1 and sub(line, 1, 3) == "\239\187\191" then line = sub(line, 4) end
    if byte(line, 1) == 123 or find(line, "%S") then return true end
  end
end

-- JSON array -------------------------------------------------------------------------------------

local function array_next(self)
  if self.done then return nil end
  local text, lineno, code = self.src:array_item()
  if text == nil then
    self.done = true
    if lineno == nil then return nil end
    if code == "READ" or code == "TRAILING" then return nil, lineno end
    -- a structural error: the rest of the file cannot be split reliably, so it is one reject
    return false, lineno .. " (the rest of the input was not read)", nil, self.src:lineno()
  end
  local ok, bad = utf8_len(text)
  if not ok then return false, bad_utf8_reason(text, bad), text, lineno end
  local v, err, marked = decode_keep_arrays(text)
  if marked then self.marked = true end
  if v == nil then
    return false, "invalid JSON in the array element at line " .. lineno .. ": " .. tostring(err), text, lineno
  end
  if not check_object(v) then return false, "the record is not a JSON object", text, lineno end
  return true, v, text, lineno
end

local function array_skip(self)
  if self.done then return nil end
  local text, lineno, code = self.src:array_item()
  if text == nil then
    self.done = true
    if lineno == nil or code == "READ" or code == "TRAILING" then return nil end
    return true
  end
  return true
end

-- open -------------------------------------------------------------------------------------------

M.csv_fields = csv.fields

-- readers.open(path, opts) -> reader | nil, err
-- opts: format, max_record, csv_max_field, csv_max_lines, delimiter (aep.stream.csv: one byte, or
-- "auto" to detect it from the header; default comma; CSV input only unless "auto")
function M.open(path, opts)
  opts = opts or {}
  local format, ferr = M.detect(path, opts.format)
  if not format then return nil, ferr end
  if opts.delimiter and opts.delimiter ~= "auto" and format ~= "csv" then
    return nil, "--delimiter is for CSV input: " .. (path == "-" and "stdin" or path) .. " is read as " ..
      format .. " (--format csv reads it as CSV)"
  end
  -- a missing data/NAME is the built-in sample of that name (the README's examples, anywhere)
  local real, rerr = require("aep.file").resolve(path)
  if not real then return nil, rerr end
  local src, err = lines.open(real, { max_record = opts.max_record or M.MAX_RECORD })
  if not src then return nil, err end
  local self = setmetatable({ src = src, format = format, path = path, first = true }, Reader)
  if path ~= "-" then
    local st = host.stat(real)
    self.size = st and st.type == "file" and st.size or nil
    local fh = self.size and io.open(real, "rb")
    if fh then -- gzip's magic bytes (RFC 1952): progress then follows the compressed offset
      self.gzip = fh:read(2) == "\31\139"
      fh:close()
    end
  end
  if format == "jsonl" or format == "rejects" then
    self.next, self.skip = jsonl_next, jsonl_skip
    if format == "rejects" then self.replay = true end
  elseif format == "json" then
    self.next, self.skip = array_next, array_skip
  elseif format == "csv" then
    self.max_record, self.scrub_utf8 = opts.max_record or M.MAX_RECORD, scrub_utf8
    local ok, herr = csv.attach(self, { max_field = opts.csv_max_field, max_lines = opts.csv_max_lines,
      delimiter = opts.delimiter })
    if not ok then src:close(); return nil, herr end
  end
  return self
end

return M
