-- The emulator's batch ingestion beyond single-PUT JSON files: large-file upload (INITIALIZE,
-- PATCH chunks with Content-Range, COMPLETE, HEAD), batch preview, CSV files, the Parquet
-- limitation, and the JSON bodies of a batch's COMPLETE and ABORT.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"

local IMPORT = "/data/foundation/import/batches"

describe("emulator batch ingestion: large files, preview, CSV", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start()
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  local function create(dataset, input_format)
    local s, b = api:post(IMPORT, { datasetId = dataset, inputFormat = input_format or { format = "json" } })
    return fixtures.expect(s, 201, b, "create batch")
  end

  local function file_path(batch, dataset, name)
    return IMPORT .. "/" .. batch .. "/datasets/" .. dataset .. "/files/" .. name
  end

  local function chunk(batch, dataset, name, data, first, last)
    return api:patch(file_path(batch, dataset, name), data, { content_type = "application/octet-stream",
      headers = { ["Content-Range"] = string.format("bytes %d-%d", first, last or (first + #data - 1)) } })
  end

  local function head(batch, dataset, name)
    local s, _, resp = api:request("HEAD", file_path(batch, dataset, name))
    return s, resp.headers["range"]
  end

  local function status_of(batch)
    local s, b = api:get("/data/foundation/catalog/batches/" .. batch)
    return fixtures.expect(s, 200, b, "batch")[batch]
  end

  local function lines(...)
    local t = {}
    for i, e in ipairs({ ... }) do t[i] = json.encode(e) end
    return table.concat(t, "\n") .. "\n"
  end

  it("takes a file in chunks, resumably, and ingests it once completed", function()
    local batch = create(ids.profile_dataset).id
    local data = lines(fixtures.profile_entity(ids, { loyaltyID = "lf1@example.com" }),
                       fixtures.profile_entity(ids, { loyaltyID = "lf2@example.com" }),
                       fixtures.profile_entity(ids, { loyaltyID = "lf3@example.com" }))
    local a, b = 100, 250
    local s, body = api:post(file_path(batch, ids.profile_dataset, "big/profiles.json") .. "?action=INITIALIZE", "")
    assert.are.equal(201, s)
    assert.are.same({ name = "big/profiles.json", sizeInBytes = 0 }, body)
    assert.are.equal(200, (head(batch, ids.profile_dataset, "big/profiles.json")))

    -- out of order, and the middle chunk twice: a chunk sent again replaces itself
    s, body = chunk(batch, ids.profile_dataset, "big/profiles.json", data:sub(b + 1), b)
    assert.are.equal(200, s)
    assert.are.same({ name = "big/profiles.json", sizeInBytes = #data - b }, body)
    s, body = chunk(batch, ids.profile_dataset, "big/profiles.json", data:sub(1, a), 0)
    assert.are.equal(200, s)
    local _, range = head(batch, ids.profile_dataset, "big/profiles.json")
    assert.are.equal(string.format("bytes=0-%d,%d-%d", a - 1, b, #data - 1), range)
    for _ = 1, 2 do
      s, body = chunk(batch, ids.profile_dataset, "big/profiles.json", data:sub(a + 1, b), a)
      assert.are.equal(200, s)
      assert.are.same({ name = "big/profiles.json", sizeInBytes = #data }, body)
    end
    _, range = head(batch, ids.profile_dataset, "big/profiles.json")
    assert.are.equal("bytes=0-" .. (#data - 1), range)

    s, body = api:post(file_path(batch, ids.profile_dataset, "big/profiles.json") .. "?action=COMPLETE", "")
    assert.are.equal(201, s)
    assert.are.same({ name = "big/profiles.json", sizeInBytes = #data }, body)
    -- COMPLETE again (a retry) answers the same; HEAD now shows the whole file
    s, body = api:post(file_path(batch, ids.profile_dataset, "big/profiles.json") .. "?action=COMPLETE", "")
    assert.are.equal(201, s)
    assert.are.equal(#data, body.sizeInBytes)
    _, range = head(batch, ids.profile_dataset, "big/profiles.json")
    assert.are.equal("bytes=0-" .. (#data - 1), range)

    s, body = api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
    assert.are.equal(200, s)
    assert.are.equal(batch, body.id)
    assert.are.equal("success", body.status)
    assert.are.same({ inputByteSize = #data, inputFileCount = 1, inputRecordCount = 3, outputRecordCount = 3,
                      failedRecordCount = 0 }, body.metrics)
    assert.are.equal(3, fixtures.records(api, ids.profile_dataset, "?batch=" .. batch).count)
    -- the chunks are gone once stitched
    local leftover = io.popen("ls " .. emu.data_dir .. "/batches/" .. batch):read("a")
    assert.are.equal("1.upload\n", leftover)
  end)

  it("keeps acknowledged chunks across a restart", function()
    local batch = create(ids.event_dataset).id
    local data = lines(fixtures.event_entity(ids, { id = "lf-e1" }), fixtures.event_entity(ids, { id = "lf-e2" }))
    api:post(file_path(batch, ids.event_dataset, "e.json") .. "?action=INITIALIZE", "")
    assert.are.equal(200, (chunk(batch, ids.event_dataset, "e.json", data:sub(1, 10), 0)))
    emu.restart()
    api = fixtures.client(emu)
    local s, range = head(batch, ids.event_dataset, "e.json")
    assert.are.equal(200, s)
    assert.are.equal("bytes=0-9", range)
    assert.are.equal(200, (chunk(batch, ids.event_dataset, "e.json", data:sub(11), 10)))
    assert.are.equal(201, (api:post(file_path(batch, ids.event_dataset, "e.json") .. "?action=COMPLETE", "")))
    local _, body = api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
    assert.are.equal("success", body.status)
    assert.are.equal(2, body.metrics.outputRecordCount)
  end)

  it("refuses what the large-file API refuses, with the reason", function()
    local batch = create(ids.profile_dataset).id
    local D = ids.profile_dataset
    local s, b = chunk(batch, D, "x.json", "abc", 0)
    assert.are.equal(404, s)
    assert.are.equal("File [x.json] of batch [" .. batch .. "] has no large-file upload in progress: " ..
      "POST .../files/x.json?action=INITIALIZE first", b.detail)
    api:post(file_path(batch, D, "x.json") .. "?action=INITIALIZE", "")
    s, b = api:patch(file_path(batch, D, "x.json"), "abc", { content_type = "application/octet-stream" })
    assert.are.equal(400, s)
    assert.are.equal("Content-Range must name the chunk's bytes as 'bytes FIRST-LAST' (0-based, LAST included), " ..
      "got [nil]", b.detail)
    s, b = chunk(batch, D, "x.json", "abc", 0, 9)
    assert.are.equal(400, s)
    assert.are.equal("Content-Range bytes 0-9 announces 10 bytes; the body holds 3", b.detail)
    s, b = api:post(file_path(batch, D, "x.json") .. "?action=COMPLETE", "")
    assert.are.equal(400, s)
    assert.are.equal("File [x.json] has no chunks: PATCH them before COMPLETE", b.detail)
    -- a missing range, then an overlap: found when the file is completed, as AEP does
    assert.are.equal(200, (chunk(batch, D, "x.json", "abc", 0)))
    assert.are.equal(200, (chunk(batch, D, "x.json", "ghi", 6)))
    s, b = api:post(file_path(batch, D, "x.json") .. "?action=COMPLETE", "")
    assert.are.equal(400, s)
    assert.are.equal("Chunks of file [x.json] are missing: bytes 3-5 were never uploaded", b.detail)
    assert.are.equal(200, (chunk(batch, D, "x.json", "cdef", 2)))
    s, b = api:post(file_path(batch, D, "x.json") .. "?action=COMPLETE", "")
    assert.are.equal(400, s)
    assert.are.equal("Chunks of file [x.json] overlap: bytes 2-2 were uploaded more than once", b.detail)
    -- the batch cannot complete while the file is open; INITIALIZE starts it afresh
    s, b = api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
    assert.are.equal(400, s)
    assert.matches("^File %[x%.json%] of batch %[" .. batch .. "%] is a large%-file upload that was initialized",
      b.detail)
    api:post(file_path(batch, D, "x.json") .. "?action=INITIALIZE", "")
    assert.are.same({ 200, nil }, { head(batch, D, "x.json") })
    s, b = api:post(file_path(batch, D, "x.json") .. "?action=START", "")
    assert.are.equal(400, s)
    assert.are.equal("Unknown action [START]; use INITIALIZE or COMPLETE", b.detail)
    assert.are.equal(404, (head(batch, D, "nothing.json")))
    assert.are.equal(404, (head("01NOSUCHBATCH", D, "x.json")))
    -- the file POSTs take no body worth the name (64 KiB); another sandbox does not see the batch
    s = api:post(file_path(batch, D, "x.json") .. "?action=INITIALIZE", string.rep("x", 70000))
    assert.are.equal(413, s)
    assert.are.equal(201, (api:post("/emulator/sandboxes", { name = "dev" }, { auth = false })))
    api.sandbox = "dev"
    s = head(batch, D, "x.json")
    api.sandbox = "prod"
    assert.are.equal(404, s)
    -- ABORT drops the open upload and answers the batch
    s, b = api:post(IMPORT .. "/" .. batch .. "?action=ABORT", "")
    assert.are.equal(200, s)
    assert.are.equal("aborted", b.status)
    assert.are.equal(404, (head(batch, D, "x.json")))
  end)

  it("previews the files uploaded so far", function()
    local batch = create(ids.profile_dataset).id
    api:put(file_path(batch, ids.profile_dataset, "p.json"),
      lines({ a = { b = "x" }, n = 5 }, { a = { c = true }, list = { 1, 2 } }), { content_type = "application/octet-stream" })
    local s, b = api:get(IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset .. "/preview?format=json")
    assert.are.equal(200, s)
    assert.are.same({ formatParams = { format = "json", charset = "UTF-8" }, preview = {
      columns = { { cid = "0", name = "a/b" }, { cid = "1", name = "n" }, { cid = "2", name = "a/c" },
                  { cid = "3", name = "list" } },
      rows = { { ["0"] = "x", ["1"] = "5" }, { ["2"] = "true", ["3"] = "[1,2]" } } } }, b)
    s, b = api:get(IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset .. "/preview?format=json&nrow=1")
    assert.are.equal(1, #b.preview.rows)
    s, b = api:get(IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset .. "/preview")
    assert.are.equal(400, s)
    assert.are.equal("The query parameter format is required (json or csv)", b.detail)
    s, b = api:get(IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset .. "/preview?format=parquet")
    assert.are.equal(415, s)
    assert.matches("^The emulator cannot read Parquet files", b.detail)
    s = api:get(IMPORT .. "/" .. batch .. "/datasets/" .. ids.event_dataset .. "/preview?format=json")
    assert.are.equal(404, s)
  end)

  describe("CSV", function()
    local T

    setup(function() T = "_" .. ids.tenant end)

    local function csv_batch(text)
      local batch = create(ids.profile_dataset, { format = "CSV" }).id
      api:put(file_path(batch, ids.profile_dataset, "people.csv"), text, { content_type = "application/octet-stream" })
      local _, b = api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
      return batch, b
    end

    it("maps dotted column names to XDM fields and converts numbers", function()
      local text = T .. ".loyaltyID," .. T .. ".totalLoyaltyPoints," .. T .. ".loyaltyLevel,person.name.firstName," ..
        "personalEmail.address\n" ..
        "csv1@example.com,120,Gold,\"Ann, Jr\",csv1@example.com\n" ..
        "csv2@example.com,7,Silver,,csv2@example.com\n"
      local batch, b = csv_batch(text)
      assert.are.equal("success", b.status)
      assert.are.equal(2, b.metrics.outputRecordCount)
      local recs = fixtures.records(api, ids.profile_dataset, "?batch=" .. batch).records
      assert.are.same({ loyaltyID = "csv1@example.com", totalLoyaltyPoints = 120, loyaltyLevel = "Gold" },
        recs[1].entity[T])
      assert.are.same({ name = { firstName = "Ann, Jr" } }, recs[1].entity.person)
      assert.is_nil(recs[2].entity.person)
      -- the preview shows the CSV as it is
      local s, p = api:get(IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset .. "/preview?format=csv")
      assert.are.equal(200, s)
      assert.are.same({ format = "csv", delimiter = ",", quote = '"', escape = "\\", charset = "UTF-8", header = true },
        p.formatParams)
      assert.are.same({ cid = "4", name = "personalEmail.address" }, p.preview.columns[5])
      assert.are.same("Ann, Jr", p.preview.rows[1]["3"])
    end)

    it("fails the batch on one bad row, as a JSON batch", function()
      local text = T .. ".loyaltyID," .. T .. ".totalLoyaltyPoints\n" ..
        "csv3@example.com,many\n" .. "csv4@example.com,5\n" .. "csv5@example.com,5,extra\n"
      local _, b = csv_batch(text)
      assert.are.equal("failed", b.status)
      assert.are.same({ inputByteSize = #text, inputFileCount = 1, inputRecordCount = 3, outputRecordCount = 0,
                        failedRecordCount = 2 }, b.metrics)
      assert.are.same({ "INGEST-1212-400", "INGEST-1401-400", "INGEST-1201-400", "INGEST-1401-400", "INGEST-1201-400" },
        { b.errors[1].code, b.errors[2].code, b.errors[3].code, b.errors[4].code, b.errors[5].code })
      assert.are.same({ 3 }, b.errors[4].rows)
      assert.are.same({ 1 }, b.errors[5].rows)
    end)

    it("refuses a header with spaces, and CSV options it cannot read", function()
      local _, b = csv_batch("loyalty id,points\na@example.com,1\n")
      assert.are.equal("failed", b.status)
      assert.are.equal("CSV header: column 'loyalty id' holds a space; AEP refuses spaces in CSV headers " ..
        "(write an underscore, or the field's XDM path such as person.name.firstName)", b.errors[2].description)
      assert.are.equal("people.csv", b.errors[2].fileName)
      local batch = create(ids.profile_dataset, { format = "csv", delimiter = ";" }).id
      _, b = api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
      assert.are.equal("failed", b.status)
      assert.are.equal("The emulator reads CSV files with the comma delimiter and the double quote only " ..
        "(this batch asks for delimiter [;], quote [nil]).", b.errors[1].description)
    end)
  end)

  it("fails a Parquet batch naming the emulator's own limitation", function()
    local batch = create(ids.profile_dataset, { format = "Parquet" }).id
    api:put(file_path(batch, ids.profile_dataset, "x.parquet"), "PAR1", { content_type = "application/octet-stream" })
    local s, b = api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
    assert.are.equal(200, s)
    assert.are.equal("failed", b.status)
    assert.are.equal("INGEST-1100-400", b.errors[1].code)
    assert.are.equal("The emulator cannot read Parquet files (no Debian package reads Parquet), so aep emulator " ..
      "fails Parquet batches; Adobe Experience Platform itself ingests them. To test against the emulator, upload " ..
      "the same rows as JSON or CSV (inputFormat.format \"json\" or \"csv\").", b.errors[1].description)
  end)

  -- last: it empties the emulator
  it("drops uploads in progress and their chunks on /emulator/reset", function()
    local batch = create(ids.profile_dataset).id
    api:post(file_path(batch, ids.profile_dataset, "r.json") .. "?action=INITIALIZE", "")
    assert.are.equal(200, (chunk(batch, ids.profile_dataset, "r.json", "abc", 0)))
    local dir = emu.data_dir .. "/batches/" .. batch
    assert.matches("^L%d+%.0%-2%.part\n$", io.popen("ls " .. dir):read("a"))
    local s = api:post("/emulator/reset", {}, { auth = false })
    assert.are.equal(200, s)
    assert.are.equal("", io.popen("ls " .. dir):read("a"))
  end)
end)
