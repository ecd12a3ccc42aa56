-- aep.stream.sources.file: `aep stream --from file` (the default), records from a file or stdin.
-- The source is the aep.stream.readers reader itself (its next is called once per record, so no
-- wrapper sits on the hot path), with the fields the pipeline asks of a source. Its positions are
-- stable between runs, so the ledger's --checkpoint can resume it: the pipeline passes over the
-- positions the checkpoint counts as done with source:skip() without decoding them.
local readers = require "aep.stream.readers"
local csv = require "aep.stream.csv"

local M = {}

M.name = "file"
M.summary = "a file (.jsonl/.ndjson, .json, .csv, optionally .gz) or stdin"

M.flags = {
  { "input", "string", short = "i", metavar = "FILE", help = "input file (.jsonl/.ndjson, .json, .csv, optionally .gz) or - for stdin" },
  { "format", "string", metavar = "FMT", help = "jsonl | json | csv | rejects (default: from the file name)" },
  { "delimiter", "string", metavar = "CHAR", help = "CSV field delimiter: , ; | or tab (\\t) (default: detected from the header)" },
  { "csv-max-field", "integer", metavar = "BYTES", help = "longest CSV record a quoted field may make (default 1048576)" },
  { "csv-max-lines", "integer", metavar = "N", help = "most lines a quoted CSV field may span (default 100)" },
  { "checkpoint", "string", metavar = "FILE", help = "resume file: how far the input is acknowledged (same command resumes)" },
}

M.usage = [[
CSV input (RFC 4180): the first row is the header naming the columns (required; names unique and
not empty); each row has as many fields. Fields are separated by --delimiter: , ; | or tab
(written \t or tab); without it, by the one of them the header holds outside quotes, else by a
comma (with a warning when the header holds none of them or several). A field may be quoted
("..."), then it may hold the delimiter and line breaks, and "" is a quote. Lines end in LF or
CRLF; a carriage return left inside an unquoted field (a file whose lines end in CR alone, or a
stray CR) rejects the row, naming its line and column. A UTF-8 byte order mark before the header
is skipped. Fields are strings (a mapping converts them).

Input rules, the same for every format: A UTF-8 byte order mark at the start is skipped. An empty
input is 0 records (exit 0, with a warning). Text after the closing ']' of a JSON array is an
error naming its line. A CSV quoted field may span at most --csv-max-lines lines and
--csv-max-field bytes: a row whose quote does not close is rejected alone, with its line, and
reading goes on at the next line. A truncated gzip input fails the run (exit 1) with the position
reached; the records before it are accounted as usual. SIGTERM stops a run as Ctrl-C does: what
is settled is written, with the checkpoint and the report, and the exit status is 143.
A --checkpoint belongs to its input (size and content of the bytes it saw) and mapping: resuming
with another input or mapping is refused (an input that was only appended to resumes).
]]

-- check(opts, positional) -> nil | the usage error to report (before the shared checks)
function M.check(opts, positional)
  local input = opts.input or positional[1]
  if not input then return "missing --input FILE (or - for stdin)" end
  if positional[2] or (opts.input and positional[1]) then
    return "unexpected argument '" .. tostring(positional[opts.input and 1 or 2]) .. "'"
  end
  if opts.csv_max_field and opts.csv_max_field < 1 then return "--csv-max-field must be at least 1" end
  if opts.csv_max_lines and opts.csv_max_lines < 1 then return "--csv-max-lines must be at least 1" end
  if opts.delimiter then
    local d, err = csv.parse_delimiter(opts.delimiter)
    if not d then return err end
    opts.delimiter_char = d
  end
  opts.input = input
  return nil
end

-- open(opts) -> source | nil, err (before any Platform call, so a typo costs no round trip)
function M.open(opts)
  local input = opts.input
  local reader, err = readers.open(input, { format = opts.format,
    csv_max_field = opts.csv_max_field, csv_max_lines = opts.csv_max_lines,
    delimiter = opts.delimiter_char or "auto" })
  if not reader then return nil, err end
  reader.input = input
  reader.title = input == "-" and "stdin" or input
  if reader.delimiter_note then require("aep.log").info("aep stream: %s: %s", reader.title, reader.delimiter_note) end
  reader.json_text = reader.format ~= "csv"
  reader.interrupted_text = "interrupted (the checkpoint, if any, lets the same command resume)"
  reader.report = M.report
  return reader
end

-- source:report(r, result): what a file run adds to the report
function M.report(self, r, result)
  r.format = self.format
  r.last_position = result.last_position -- the last input position read (where a run that stopped early stopped)
  if result.read == 0 and result.resumed_records == 0 and not result.read_error and not result.interrupted then
    require("aep.log").warn("stream: %s holds no records (0 read)", self.title)
  end
end

return M
