-- The stream half of a newcomer's path, from the user's side (the command and what it prints or
-- writes), against the local emulator: CSV exports in other dialects (--delimiter, detected from
-- the header, a stray carriage return named by line and column), a replayed reject file whose
-- accepted records keep their first input's positions (through replays of replays), and what
-- --sync-validation shows: progress counting settled records, the end summary's "and N more".
local cjson = require "cjson"
local run = require "tests.lua.support.run"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"

local emu, api, ids, dir

local function write(name, content) return files.write(dir .. "/" .. name, content) end
local read, jsonl = files.read, files.json_lines

local function stream(args)
  local argv = { "stream", "--env", emu.env_file, "--dataset", ids.profile_dataset }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return run.aep(argv)
end

-- a CSV row (email, name, level, points) -> a loyalty profile; level "bad" is refused
local CSV_MAPPING = [[
return function(r, ctx)
  if r.level == "bad" then error("level 'bad' is not a loyalty level", 0) end
  return { ["_" .. ctx.tenant] = { loyaltyID = r.email, loyaltyLevel = r.level, totalLoyaltyPoints = tonumber(r.points) },
           personalEmail = { address = r.email }, person = { name = { firstName = r.name } } }
end]]

-- n JSON Lines records of the same length, each with the loyaltyID "u<i>-<tag>@example.com"
local function records(n, tag)
  local lines = {}
  for i = 1, n do
    local id = string.format("u%03d-%s@example.com", i, tag)
    lines[i] = cjson.encode({ _exchangeinternal = { loyaltyID = id, loyaltyLevel = "Gold" },
                              personalEmail = { address = id } })
  end
  return table.concat(lines, "\n") .. "\n"
end

-- the positions an --accepted-file lists, in order
local function accepted_positions(path)
  local out = {}
  for line in (read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = tonumber(line:match("^(%d+)\t")) end
  table.sort(out)
  return out
end

local ndataset = 0
setup(function()
  dir = run.tmpdir()
  emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--seed", "7" }, { dataflow = false })
end)

teardown(function()
  if emu then emu.stop(); emu.cleanup() end
  if dir then os.execute("rm -rf " .. run.quote(dir)) end
end)

before_each(function()
  ndataset = ndataset + 1
  ids.profile_dataset = fixtures.dataset(api, "newcomer spec " .. ndataset .. " " .. os.time(), ids.profile_schema)
end)

describe("aep stream reads CSV exports in other dialects", function()
  it("detects a semicolon-separated export from its header and streams every row", function()
    local input = write("people.csv", 'email;name;level;points\n' ..
      'ann@example.com;Ann;Gold;10\n"bob@example.com";"Doe; Bob";Silver;20\ncid@example.com;Cid;Platinum;30\n')
    local mapping = write("csv_map.lua", CSV_MAPPING)
    local r = stream({ "--input", input, "--mapping", mapping, "--no-follow" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 3   rejected 0   skipped 0   failed 0", r.stdout, 1, true)
    assert.matches("aep stream: " .. input .. ": reading CSV separated by ';' (found in the header; --delimiter sets it)", r.stdout, 1, true)
    local counts = fixtures.stored_ids(api, ids.profile_dataset)
    assert.same({ ["ann@example.com"] = 1, ["bob@example.com"] = 1, ["cid@example.com"] = 1 }, counts)
  end)

  it("takes --delimiter (tab as tab or \\t, |) where the header is ambiguous, and warns when it guesses", function()
    local mapping = write("csv_map.lua", CSV_MAPPING)
    -- a '|' export whose last column name holds a comma: two candidates, so comma is assumed
    local input = write("pipes.csv", 'email|name|level|points,total\nann@example.com|Ann|Gold|10\n')
    local r = stream({ "--input", input, "--mapping", mapping, "--no-follow", "--reject-file", dir .. "/pipes-rejects.jsonl" })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.matches(input .. ": the CSV header holds ',' and '|' outside quotes: reading it as comma-separated; " ..
      "give --delimiter CHAR to choose", r.stderr, 1, true)
    assert.matches("record 1: CSV row at line 2 has 1 fields, the header has 2", r.stdout, 1, true)
    r = stream({ "--input", input, "--mapping", mapping, "--no-follow", "--delimiter", "|" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 1   rejected 0", r.stdout, 1, true)
    assert.not_matches("warning", r.stderr, 1, true)
    local tabs = write("tabs.csv", 'email\tname\tlevel\tpoints\nbob@example.com\tBob, Jr\tSilver\t20\n')
    for _, d in ipairs({ "tab", "\\t" }) do
      r = stream({ "--input", tabs, "--mapping", mapping, "--no-follow", "--delimiter", d })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("accepted 1   rejected 0", r.stdout, 1, true)
    end
    local counts = fixtures.stored_ids(api, ids.profile_dataset)
    assert.same({ ["ann@example.com"] = 1, ["bob@example.com"] = 2 }, counts)
  end)

  it("refuses a --delimiter it does not know, and one given for input that is not CSV", function()
    local r = stream({ "--input", write("x.csv", "a,b\n1,2\n"), "--delimiter", "x" })
    assert.equal(64, r.status)
    assert.matches("--delimiter takes , ; | or tab (written \\t or tab), got 'x'", r.stderr, 1, true)
    local j = write("x.jsonl", '{"a":1}\n')
    r = stream({ "--input", j, "--delimiter", ";" })
    assert.equal(1, r.status)
    assert.matches("--delimiter is for CSV input: " .. j .. " is read as jsonl (--format csv reads it as CSV)", r.stderr, 1, true)
  end)

  it("rejects a row whose line ending leaves a carriage return in a field, naming its line and column", function()
    local mapping = write("csv_map.lua", CSV_MAPPING)
    -- LF lines (one CRLF line, which is fine); line 3 holds a lone CR inside its name
    local input = write("cr.csv", 'email,name,level,points\r\nann@example.com,Ann,Gold,10\n' ..
      'bob@example.com,Bob\rRoss,Silver,20\ncid@example.com,Cid,Gold,30\n')
    local rejects = dir .. "/cr-rejects.jsonl"
    local r = stream({ "--input", input, "--mapping", mapping, "--no-follow", "--reject-file", rejects })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 2   rejected 1   skipped 0   failed 0", r.stdout, 1, true)
    local reason = "malformed CSV at line 3, column 2 'name': a carriage return inside an unquoted field " ..
      "(lines ending in CR alone, or a stray CR in a value): save the file with LF or CRLF line endings, or quote the field"
    assert.matches("record 2: " .. reason, r.stdout, 1, true)
    local e = jsonl(rejects)
    assert.equal(1, #e)
    assert.same({ 2, 3, reason }, { e[1].position, e[1].line, e[1].reason })
    -- a file whose lines end in CR alone is one line: its header says so
    local mac = write("mac.csv", "email,name\rann@example.com,Ann\r")
    r = stream({ "--input", mac, "--mapping", mapping })
    assert.equal(1, r.status)
    assert.matches("CSV header: malformed CSV at line 1, column 2: a carriage return inside an unquoted field", r.stderr, 1, true)
  end)

  it("says how to pass --delimiter when the header has a single column", function()
    local input = write("one.csv", "email:name\nann@example.com:Ann\n")
    local r = stream({ "--input", input, "--no-follow", "--reject-file", dir .. "/one-rejects.jsonl" })
    assert.matches(input .. ": the CSV header has a single column (no comma, semicolon, tab or | in it): " ..
      "if another character separates the fields, give --delimiter CHAR", r.stderr, 1, true)
  end)

  it("aep validate and the batch-import rows read the same dialects", function()
    local mapping = write("csv_map.lua", CSV_MAPPING)
    local input = write("people.psv", 'email|name|level|points\nann@example.com|Ann|Gold|10\nbob@example.com|Bob|bad|20\n')
    local r = run.aep({ "validate", "--env", emu.env_file, "--dataset", ids.profile_dataset, "--input", input,
                        "--format", "csv", "--delimiter", "pipe", "--mapping", mapping })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.matches("aep validate: 2 records: 1 valid, 1 invalid, 0 skipped", r.stdout, 1, true)
    -- detected, said on a terminal's run and kept out of a --json document
    local semi = write("people-semi.csv", 'email;name;level;points\nann@example.com;Ann;Gold;10\n')
    r = run.aep({ "validate", "--env", emu.env_file, "--dataset", ids.profile_dataset, "--input", semi, "--mapping", mapping })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("aep validate: " .. semi .. ": reading CSV separated by ';' (found in the header; --delimiter sets it)\n" ..
      "aep validate: 1 records: 1 valid, 0 invalid, 0 skipped", r.stdout, 1, true)
    r = run.aep({ "validate", "--env", emu.env_file, "--dataset", ids.profile_dataset, "--input", semi, "--mapping", mapping, "--json" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local doc = cjson.decode(r.stdout)
    assert.same({ 1, 1, 0 }, { doc.records, doc.valid, doc.invalid })
    local rows = require("aep.run.batch_rows").collect{ path = input, format = "csv", delimiter = "|",
      map = function(rec) return { email = rec.email, level = rec.level } end }
    assert.same({ { email = "ann@example.com", level = "Gold" }, { email = "bob@example.com", level = "bad" } },
      { cjson.decode(rows.lines[1]), cjson.decode(rows.lines[2]) })
    local ok, err = pcall(require("aep.run.batch_rows").collect, { path = input, delimiter = ":", map = function(x) return x end })
    assert.is_false(ok)
    assert.equal("--delimiter takes , ; | or tab (written \\t or tab), got ':'", err)
  end)
end)

describe("aep stream --accepted-file on a replayed reject file", function()
  it("numbers each record by its position in the first input, through replays of replays", function()
    local input = write("forty.jsonl", records(40, "p"))
    local function refusing(list)
      return write("refuse-" .. table.concat(list, "-") .. ".lua", [[
        local refused = {]] .. table.concat(list, ",") .. [[}
        return function(record, ctx)
          local i = tonumber(record._exchangeinternal.loyaltyID:match("^u(%d+)"))
          for _, k in ipairs(refused) do if i == k then error("record " .. i .. " is refused", 0) end end
          record["_" .. ctx.tenant], record._exchangeinternal = record._exchangeinternal, nil
          return record
        end]])
    end
    local rej1, rej2 = dir .. "/p-rejects-1.jsonl", dir .. "/p-rejects-2.jsonl"
    local acc0, acc1, acc2 = dir .. "/p-acc-0.tsv", dir .. "/p-acc-1.tsv", dir .. "/p-acc-2.tsv"
    local r = stream({ "--input", input, "--mapping", refusing({ 27, 31, 34 }), "--reject-file", rej1,
                       "--accepted-file", acc0, "--no-follow" })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 37   rejected 3", r.stdout, 1, true)
    assert.equal(37, #accepted_positions(acc0))
    -- the first replay still refuses 31: 27 and 34 are accepted, under their first positions
    r = stream({ "--input", rej1, "--mapping", refusing({ 31 }), "--reject-file", rej2, "--accepted-file", acc1, "--no-follow" })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 2   rejected 1", r.stdout, 1, true)
    assert.same({ 27, 34 }, accepted_positions(acc1))
    local e = jsonl(rej2)
    assert.same({ 2, 31 }, { e[1].position, e[1].origin })
    -- the replay of that replay: 31 is accepted as 31
    r = stream({ "--input", rej2, "--mapping", refusing({}), "--accepted-file", acc2, "--no-follow" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ 31 }, accepted_positions(acc2))
    local _, total = fixtures.stored_ids(api, ids.profile_dataset)
    assert.equal(40, total)
  end)
end)

describe("aep stream --sync-validation shows", function()
  it("progress counting the records settled, not the bytes read ahead", function()
    local n = 5
    local input = write("sync.jsonl", records(n, "s"))
    local r = stream({ "--input", input, "--mapping", "mappings/loyalty_profile.lua", "--sync-validation",
                       "--progress-interval", "1" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 5   rejected 0", r.stdout, 1, true)
    local seen = 0
    for line in r.stderr:gmatch("[^\n]+") do
      local accepted, pct = line:match("^aep stream: %d+ records  [%d,]+/s  accepted (%d+)  rejected 0  %((%d+)%% of the input%)")
      if accepted then
        seen = seen + 1
        -- every record is as long as the others: the share is the records settled, of 5
        local want = math.floor(100 * tonumber(accepted) / n)
        assert.is_true(tonumber(pct) == want or tonumber(pct) == want - 1, line)
      end
    end
    assert.is_true(seen >= 1, r.stderr)
  end)

  it("an end summary that says how many rejects it does not list, and where they are", function()
    local input = write("mostly-bad.jsonl", records(8, "b"))
    local mapping = write("refuse-most.lua", [[
      return function(record, ctx)
        local i = tonumber(record._exchangeinternal.loyaltyID:match("^u(%d+)"))
        if i > 1 then error("record " .. i .. " is refused", 0) end
        record["_" .. ctx.tenant], record._exchangeinternal = record._exchangeinternal, nil
        return record
      end]])
    local rejects = dir .. "/mostly-bad-rejects.jsonl"
    local r = stream({ "--input", input, "--mapping", mapping, "--sync-validation", "--reject-file", rejects })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 1   rejected 7", r.stdout, 1, true)
    assert.matches("    record 2: mapping error: record 2 is refused\n    record 3: mapping error: record 3 is refused\n" ..
      "    record 4: mapping error: record 4 is refused\n    record 5: mapping error: record 5 is refused\n" ..
      "    record 6: mapping error: record 6 is refused\n    and 2 more (see " .. rejects .. ")\n", r.stdout, 1, true)
    r = stream({ "--input", input, "--mapping", mapping, "--sync-validation" })
    assert.equal(2, r.status, r.stdout .. r.stderr)
    assert.matches("    record 6: mapping error: record 6 is refused\n    and 2 more (give --reject-file FILE to keep them all)\n", r.stdout, 1, true)
  end)
end)

describe("the parts behind it", function()
  it("a batch split after a 413 or retried in part keeps its replayed records' first positions", function()
    local batcher = require "aep.stream.batcher"
    local b = { n = 3, bytes = 0, msgs = { "a", "b", "c" }, pos = { 1, 2, 3 }, lines = { 1, 2, 3 },
                origs = { "x", "y", "z" }, origins = { 27, 31, 34 } }
    local second = batcher.slice(b, 2, 3)
    assert.same({ { 2, 3 }, { 31, 34 } }, { second.pos, second.origins })
    local picked = batcher.pick(b, { 3, 1 })
    assert.same({ { 3, 1 }, { 34, 27 } }, { picked.pos, picked.origins })
    b.origins = nil
    assert.is_nil(batcher.slice(b, 1, 2).origins)
  end)

  it("the summary says how many records failed after acceptance it does not list", function()
    local report = require "aep.stream.report"
    local samples = {}
    for i = 1, 5 do samples[i] = "record " .. i .. ": INGEST-1201-400 bad" end
    local r = { input = "in.jsonl", dataset_id = "ds", duration = 1, requests = 1, retries = 0,
      counts = { accepted = 7, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 0 },
      this_run = { accepted = 7, rejected = 0, skipped = 0, failed = 0, possibly_duplicated = 0 },
      follow = { ingested = 0, failed_after_acceptance = 7, unknown = 0, unmatched = 0, samples = samples },
      reject_file = "rejects.jsonl" }
    assert.matches("    record 5: INGEST-1201-400 bad\n    and 2 more (see rejects.jsonl)\n", report.summary(r), 1, true)
  end)

  it("a reader's progress is the bytes of the records handed out, not of its read buffer", function()
    local path = write("progress.jsonl", '{"a":1}\n{"a":2}\n{"a":3}\n{"a":4}\n')
    local r = assert(require("aep.stream.readers").open(path))
    assert.same({ 0, 32 }, { r:progress() })
    r:next()
    assert.same({ 8, 32 }, { r:progress() })
    r:close()
  end)
end)
