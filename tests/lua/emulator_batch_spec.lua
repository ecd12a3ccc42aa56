-- The emulator's batch ingestion (R17-R24 of the collection) and Catalog batch objects.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"

local IMPORT = "/data/foundation/import/batches"

describe("emulator batch ingestion", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start()
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  local function create(dataset, input_format, extra)
    local body = { datasetId = dataset, inputFormat = input_format or { format = "json", isMultiLineJson = true } }
    for k, v in pairs(extra or {}) do body[k] = v end
    local s, b = api:post(IMPORT, body)
    return fixtures.expect(s, 201, b, "create batch")
  end

  local function upload(batch, dataset, name, data)
    return api:put(IMPORT .. "/" .. batch .. "/datasets/" .. dataset .. "/files/" .. name, data,
      { content_type = "application/octet-stream" })
  end

  local function complete(batch)
    return api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
  end

  local function status_of(batch, singular)
    local s, b = api:get("/data/foundation/catalog/" .. (singular and "batch/" or "batches/") .. batch)
    fixtures.expect(s, 200, b, "batch status")
    return b[batch]
  end

  -- The collection's file layout: a JSON array, one record per line (its sample data files).
  local function array_file(entities)
    local lines = {}
    for i, e in ipairs(entities) do lines[i] = json.encode(e) end
    return "[" .. table.concat(lines, ",\n") .. "]"
  end

  it("ingests a multi-line JSON array file: loading -> success, with metrics (R17-R20)", function()
    local batch = create(ids.profile_dataset)
    assert.are.equal("loading", batch.status)
    assert.matches("^%w+$", batch.id)
    assert.are.same({ { type = "dataSet", id = ids.profile_dataset } }, batch.relatedObjects)
    assert.are.same({ format = "json", isMultiLineJson = true }, batch.inputFormat)
    assert.are.equal(ids.org, batch.imsOrg)
    assert.are.equal("loading", status_of(batch.id).status)

    local data = array_file {
      fixtures.profile_entity(ids, { loyaltyID = "b1@example.com", points = 100 }),
      fixtures.profile_entity(ids, { loyaltyID = "b2@example.com", points = 200 }),
      fixtures.profile_entity(ids, { loyaltyID = "b3@example.com", points = 300 }),
    }
    local s, b = upload(batch.id, ids.profile_dataset, "my-batch.json", data)
    assert.are.equal(200, s)
    assert.are.equal("", b)
    s = complete(batch.id)
    assert.are.equal(200, s)

    local st = status_of(batch.id, true)
    assert.are.equal("success", st.status)
    assert.are.same({ inputByteSize = #data, inputFileCount = 1, inputRecordCount = 3, outputRecordCount = 3,
                      failedRecordCount = 0 }, st.metrics)
    assert.are.same({}, st.errors)
    assert.are.same(st, status_of(batch.id, false))

    local recs = fixtures.records(api, ids.profile_dataset, "?batch=" .. batch.id)
    assert.are.equal(3, recs.count)
    local mine = recs.records
    assert.are.equal(3, #mine)
    assert.are.equal(batch.id .. ":0", mine[1].xactionId)
    assert.are.equal("b1@example.com", mine[1].entity["_" .. ids.tenant].loyaltyID)
    assert.are.equal("success", mine[3].status)

    -- COMPLETE again is safe and changes nothing
    s = complete(batch.id)
    assert.are.equal(200, s)
    assert.are.equal("success", status_of(batch.id).status)
  end)

  it("fails the whole batch on bad rows, with errors per code and per file", function()
    local batch = create(ids.profile_dataset)
    local bad = fixtures.profile_entity(ids, { loyaltyID = "bad1@example.com" })
    bad.bad = true
    local missing = fixtures.profile_entity(ids, { loyaltyID = "bad2@example.com" })
    missing["_" .. ids.tenant].loyaltyID = nil
    local data = "[" .. json.encode(fixtures.profile_entity(ids, { loyaltyID = "ok1@example.com" })) .. ",\n" ..
      json.encode(bad) .. ",\n" .. '{"person": {"name": ' .. ",\n" .. json.encode(missing) .. "]"
    assert.are.equal(200, (upload(batch.id, ids.profile_dataset, "rows.json", data)))
    assert.are.equal(200, (upload(batch.id, ids.profile_dataset, "empty.json", "")))
    assert.are.equal(200, (complete(batch.id)))
    local st = status_of(batch.id)
    assert.are.equal("failed", st.status)
    assert.are.same({ inputByteSize = #data, inputFileCount = 2, inputRecordCount = 4, outputRecordCount = 0,
                      failedRecordCount = 3 }, st.metrics)
    assert.are.same({
      { code = "INGEST-1212-400", description = "Encountered 3 errors in the data. Successfully ingested 0 rows. " ..
        "Please review the associated diagnostic files for more details." },
      { code = "INGEST-1401-400", recordCount = 1,
        description = "The row has corrupted data and cannot be read or parsed. Fix the corrupted data and try again." },
      { code = "INGEST-1555-400", recordCount = 1,
        description = "A required field is either missing or has a value of null. Add the required field to the " ..
                      "input row and try again." },
      { code = "INGEST-1201-400", recordCount = 1,
        description = "The row has a value that does not conform to the schema. Fix the value and try again." },
      { code = "INGEST-1401-400", recordCount = 1, rows = { 3 }, fileName = "rows.json",
        description = "The row has corrupted data and cannot be read or parsed. Fix the corrupted data and try again." },
      { code = "INGEST-1555-400", recordCount = 1, rows = { 4 }, fileName = "rows.json",
        description = "A required field is either missing or has a value of null. Add the required field to the " ..
                      "input row and try again." },
      { code = "INGEST-1201-400", recordCount = 1, rows = { 2 }, fileName = "rows.json",
        description = "The row has a value that does not conform to the schema. Fix the value and try again." },
      { code = "106", description = "Dataset file is empty. Please upload file with data.", rows = {},
        fileName = "empty.json" },
    }, st.errors)
    -- nothing of a failed batch reaches the dataset; its bad rows are kept as failed records
    local recs = fixtures.records(api, ids.profile_dataset, "?limit=1000")
    local statuses = {}
    for _, r in ipairs(recs.records) do
      if r.batchId == batch.id then statuses[#statuses + 1] = r.status end
    end
    assert.are.same({ "failed", "failed", "failed" }, statuses)
  end)

  it("ingests the good rows when partialIngestionPercentage allows the bad ones", function()
    local batch = create(ids.profile_dataset, nil, { enableErrorDiagnostics = true, partialIngestionPercentage = 50 })
    local bad = fixtures.profile_entity(ids, { loyaltyID = "p2@example.com" })
    bad.bad = true
    assert.are.equal(200, (upload(batch.id, ids.profile_dataset, "f.json", array_file {
      fixtures.profile_entity(ids, { loyaltyID = "p1@example.com" }), bad })))
    assert.are.equal(200, (complete(batch.id)))
    local st = status_of(batch.id)
    assert.are.equal("success", st.status)
    assert.are.equal(1, st.metrics.outputRecordCount)
    assert.are.equal(1, st.metrics.failedRecordCount)
    assert.are.equal("INGEST-1212-400", st.errors[1].code)
    assert.are.equal("Encountered 1 errors in the data. Successfully ingested 1 rows. " ..
      "Please review the associated diagnostic files for more details.", st.errors[1].description)
  end)

  it("reads JSON Lines by default and concatenated multi-line objects with isMultiLineJson", function()
    local e1 = json.encode(fixtures.event_entity(ids, { loyaltyID = "l1@example.com", id = "l-1" }))
    local e2 = json.encode(fixtures.event_entity(ids, { loyaltyID = "l2@example.com", id = "l-2" }))
    local batch = create(ids.event_dataset, { format = "json" })
    upload(batch.id, ids.event_dataset, "events.jsonl", e1 .. "\n" .. e2 .. "\n")
    complete(batch.id)
    local st = status_of(batch.id)
    assert.are.equal("success", st.status)
    assert.are.equal(2, st.metrics.outputRecordCount)

    local pretty = json.encode_pretty(fixtures.event_entity(ids, { loyaltyID = "l3@example.com", id = "l-3" }))
    batch = create(ids.event_dataset, { format = "json", isMultiLineJson = true })
    upload(batch.id, ids.event_dataset, "events.json", pretty .. "\n" .. pretty:gsub("l%-3", "l-4"))
    complete(batch.id)
    st = status_of(batch.id)
    assert.are.equal("success", st.status)
    assert.are.equal(2, st.metrics.outputRecordCount)

    -- without the flag a multi-line object is a corrupt row
    batch = create(ids.event_dataset, { format = "json" })
    upload(batch.id, ids.event_dataset, "events.json", pretty)
    complete(batch.id)
    st = status_of(batch.id)
    assert.are.equal("failed", st.status)
    assert.are.equal("INGEST-1401-400", st.errors[2].code)
  end)

  it("fails a batch whose input format the emulator cannot read", function()
    local batch = create(ids.profile_dataset, { format = "parquet" })
    upload(batch.id, ids.profile_dataset, "x.parquet", "PAR1")
    complete(batch.id)
    local st = status_of(batch.id)
    assert.are.equal("failed", st.status)
    assert.are.equal("INGEST-1100-400", st.errors[1].code)
  end)

  it("keeps uploaded files inside the data directory whatever their names", function()
    local batch = create(ids.profile_dataset)
    local s, b = upload(batch.id, ids.profile_dataset, "..%2F..%2Fescape.json", "[]")
    assert.are.equal(400, s)
    assert.are.equal("Invalid file name", b.detail)
    s = upload(batch.id, ids.profile_dataset, "folder/nested.json",
      array_file { fixtures.profile_entity(ids, { loyaltyID = "n1@example.com" }) })
    assert.are.equal(200, s)
    local f = io.open(emu.data_dir .. "/batches/" .. batch.id .. "/1.upload", "rb")
    assert.is_truthy(f)
    f:close()
    complete(batch.id)
    assert.are.equal("success", status_of(batch.id).status)
  end)

  describe("errors", function()
    it("answers 400 for a missing or unknown dataset at creation", function()
      local s, b = api:post(IMPORT, { inputFormat = { format = "json" } })
      assert.are.equal(400, s)
      assert.are.equal("datasetId is required", b.detail)
      s, b = api:post(IMPORT, { datasetId = "nope", inputFormat = { format = "json" } })
      assert.are.equal(400, s)
      assert.are.equal("Dataset [nope] not found", b.detail)
    end)

    it("answers 404 for an unknown batch everywhere", function()
      local s, b = api:get("/data/foundation/catalog/batches/01NOSUCHBATCH")
      assert.are.equal(404, s)
      assert.are.same({ type = "http://ns.adobe.com/aep/errors/INGEST-1002-404", title = "Not Found", status = 404,
                        detail = "Batch [01NOSUCHBATCH] not found" }, b)
      s = upload("01NOSUCHBATCH", ids.profile_dataset, "f.json", "[]")
      assert.are.equal(404, s)
      s = complete("01NOSUCHBATCH")
      assert.are.equal(404, s)
    end)

    it("refuses files for another dataset or after COMPLETE, and unknown actions", function()
      local batch = create(ids.profile_dataset)
      local s, b = upload(batch.id, ids.event_dataset, "f.json", "[]")
      assert.are.equal(400, s)
      assert.are.equal("Dataset [" .. ids.event_dataset .. "] is not the dataset of batch [" .. batch.id .. "]", b.detail)
      s, b = api:post(IMPORT .. "/" .. batch.id .. "?action=PROMOTE", "")
      assert.are.equal(400, s)
      complete(batch.id)
      s, b = upload(batch.id, ids.profile_dataset, "f.json", "[]")
      assert.are.equal(400, s)
      assert.are.equal("Batch [" .. batch.id .. "] is failed; files can only be added while it is loading", b.detail)
    end)

    it("needs the Platform headers", function()
      local s = api:post(IMPORT, { datasetId = ids.profile_dataset }, { auth = false })
      assert.are.equal(401, s)
    end)
  end)

  it("lists a dataset's batches, streaming ones included, with Catalog's filters", function()
    local batch = create(ids.event_dataset, { format = "json" })
    upload(batch.id, ids.event_dataset, "e.json", json.encode(fixtures.event_entity(ids, { id = "list-1" })))
    complete(batch.id)
    -- an invalid streamed record lands in a failed streaming batch
    local ev = fixtures.event_message(ids, { id = "list-2" })
    ev.body.xdmEntity.bad = true
    local s = api:post("/collection/" .. ids.inlet_id, ev, { auth = false })
    assert.are.equal(200, s)

    -- validated after the answer: its batch is "processing" until the emulator's window closes
    local b, failed
    local host = require "aep.host"
    local deadline = host.now() + 20
    for _ = 1, 400 do
      s, b = api:get("/data/foundation/catalog/batches?dataSet=" .. ids.event_dataset .. "&limit=100")
      assert.are.equal(200, s)
      for id, v in pairs(b) do
        if v.status == "failed" and v.metrics.failedRecordCount == 1 and v.metrics.inputRecordCount == 1 then
          failed = id
        end
      end
      if failed or host.now() > deadline then break end
      host.sleep(0.05)
    end
    assert.is_truthy(b[batch.id])
    assert.are.equal("success", b[batch.id].status)
    for _, v in pairs(b) do
      assert.are.same({ { type = "dataSet", id = ids.event_dataset } }, v.relatedObjects)
    end
    assert.is_truthy(failed)
    assert.are.same({ inputRecordCount = 1, outputRecordCount = 0, failedRecordCount = 1,
                      inputByteSize = #json.encode(ev.body.xdmEntity) }, b[failed].metrics)
    assert.are.equal("INGEST-1201-400", b[failed].errors[2].code)

    s, b = api:get("/data/foundation/catalog/batches?dataSet=" .. ids.event_dataset .. "&status=failed&limit=100")
    for _, v in pairs(b) do assert.are.equal("failed", v.status) end
    s, b = api:get("/data/foundation/catalog/batches?limit=1")
    local n = 0
    for _ in pairs(b) do n = n + 1 end
    assert.are.equal(1, n)
    s = api:get("/data/foundation/catalog/batches?limit=0")
    assert.are.equal(400, s)
  end)
end)
