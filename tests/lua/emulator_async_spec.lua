-- The emulator's asynchronous streaming path: messages accepted without sync validation are
-- validated after the answer; valid ones reach the dataset and Profile, invalid ones a failed
-- batch; Catalog batches, Flow Service runs, Data Access error diagnostics and Observability
-- Insights metrics report them in the documented shapes; pending messages survive kill -9.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local json = require "aep.json"
local host = require "aep.host"

local ENTITIES = "/data/core/ups/access/entities"
local RUNS = "/data/foundation/flowservice/runs"
local EXPORT = "/data/foundation/export/batches/"
local INSIGHTS = "/data/infrastructure/observability/insights/metrics"

local function poll(fn, what) return fixtures.poll(fn, what) end

local function enc(s) return fixtures.url_encode(s) end

describe("emulator asynchronous validation", function()
  local emu, api, ids, T

  setup(function()
    emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--batch-window", "0.3" }, { dataflow = true })
    T = "_" .. ids.tenant
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  -- 10 messages: 5 valid, 5 invalid in known ways
  local function make_messages(tag)
    local out, invalid = {}, {}
    for i = 1, 10 do
      local id = string.format("%s-%d@example.com", tag, i)
      out[i] = fixtures.profile_message(ids, { loyaltyID = id, points = i })
    end
    out[2].body.xdmEntity[T].loyaltyID = nil                      -- missing required field
    out[4].body.xdmEntity[T].loyaltyLevel = "Bronze"              -- bad enum
    out[6].body.xdmEntity.person.birthDate = "1980-13-45"         -- bad date
    out[8].body.xdmEntity[T].totalLoyaltyPoints = "many"          -- wrong type
    out[10].body.xdmEntity.workEmail = { address = "w@example.com" } -- extraneous field
    invalid[2] = { code = "INGEST-1555-400", keyword = "required", pointer = "#/" .. T,
                   message = "required key [loyaltyID] not found" }
    invalid[4] = { code = "INGEST-1201-400", keyword = "enum", pointer = "#/" .. T .. "/loyaltyLevel",
                   message = "Bronze is not a valid enum value" }
    invalid[6] = { code = "INGEST-1201-400", keyword = "format", pointer = "#/person/birthDate",
                   message = "[1980-13-45] is not a valid date. Expected [yyyy-MM-dd]" }
    invalid[8] = { code = "INGEST-1201-400", keyword = "type", pointer = "#/" .. T .. "/totalLoyaltyPoints",
                   message = "expected type: Number, found: String" }
    invalid[10] = { code = "INGEST-1201-400", keyword = "additionalProperties", pointer = "#",
                    message = "extraneous key [workEmail] is not permitted" }
    return out, invalid
  end

  local function stream_batch(messages)
    local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = messages }, { auth = false })
    fixtures.expect(s, 207, b, "stream batch")
    for _, r in ipairs(b.responses) do assert.is_truthy(r.xactionId, json.encode(r)) end
    return b
  end

  local function runs_of_flow(query)
    local s, b = api:get(RUNS .. "?property=" .. enc("flowId==" .. ids.flow_id) .. (query or ""))
    return fixtures.expect(s, 200, b, "runs")
  end

  -- the runs covering n records, once all of them are final
  local function final_runs(n)
    return poll(function()
      local b = runs_of_flow()
      local total, open = 0, false
      for _, r in ipairs(b.items) do
        total = total + r.metrics.recordSummary.inputRecordCount
        if r.metrics.statusSummary.status == "inProgress" then open = true end
      end
      if total >= n and not open then return b.items end
    end, "final runs")
  end

  describe("a stream with invalid records", function()
    local messages, invalid, answer, runs, t0

    setup(function()
      t0 = math.floor(host.now() * 1000)
      messages, invalid = make_messages("async")
      answer = stream_batch(messages)
      runs = final_runs(10)
    end)

    it("ingests exactly the valid records; the invalid ones are failed records of the dataset", function()
      local ok = fixtures.records(api, ids.profile_dataset, "?status=success&limit=1000")
      local bad = fixtures.records(api, ids.profile_dataset, "?status=failed&limit=1000")
      assert.are.equal(5, ok.count)
      assert.are.equal(5, bad.count)
      local failed_x = {}
      for _, r in ipairs(bad.records) do failed_x[r.xactionId] = r end
      for i = 1, 10 do
        local x = answer.responses[i].xactionId
        if invalid[i] then
          assert.is_truthy(failed_x[x], "message " .. i .. " failed")
          local leaf = require("aep.xdm").leaves(failed_x[x].errors)[1]
          assert.are.equal(invalid[i].keyword, leaf.keyword)
          assert.are.equal(invalid[i].message, leaf.message)
          assert.are.equal(invalid[i].pointer, leaf.pointerToViolation)
        else
          assert.is_nil(failed_x[x])
        end
      end
    end)

    it("lets Profile see only the valid records", function()
      for i = 1, 10 do
        if i ~= 2 then
          local s = api:get(ENTITIES .. "?schema.name=_xdm.context.profile&entityId=" ..
            enc(string.format("async-%d@example.com", i)) .. "&entityIdNS=email")
          assert.are.equal(invalid[i] and 404 or 200, s, "profile of message " .. i)
        end
      end
    end)

    it("reports one run with the documented metrics, activities and errors", function()
      assert.are.equal(1, #runs)
      local r = runs[1]
      assert.are.equal(ids.flow_id, r.flowId)
      assert.are.equal("string", type(r.id))
      assert.are.equal("string", type(r.etag))
      for _, k in ipairs { "createdAt", "updatedAt" } do assert.are.equal("number", type(r[k])) end
      local m = r.metrics
      assert.are.same({ inputRecordCount = 10, outputRecordCount = 5, failedRecordCount = 5 }, m.recordSummary)
      assert.are.equal("number", type(m.durationSummary.startedAtUTC))
      assert.are.equal("number", type(m.durationSummary.completedAtUTC))
      assert.are.equal("number", type(m.sizeSummary.inputBytes))
      assert.are.equal("number", type(m.sizeSummary.outputBytes))
      assert.is_true(m.sizeSummary.inputBytes > m.sizeSummary.outputBytes)
      assert.are.same({ inputFileCount = 2, outputFileCount = 1 }, m.fileSummary)
      assert.are.equal("success", m.statusSummary.status)
      assert.are.same({ { code = "CONNECTOR-2001-500",
        message = "Error in processing (parsing, validation or transformation) the copied data." } },
        m.statusSummary.errors)
      local a = r.activities[1]
      assert.are.equal("promotionActivity", a.id)
      assert.are.same(m.recordSummary, a.recordSummary)
      local ext = a.statusSummary.extensions
      assert.are.same({ code = "INGEST-1212-400", message = "Encountered 5 errors in the data. Successfully " ..
        "ingested 5 rows. Review the associated diagnostic files for additional details." }, ext.errors[1])
      assert.are.same({ code = "INGEST-1201-400", recordCount = 4,
        message = "The row has a value that does not conform to the schema. Fix the value and try again." },
        ext.errors[2])
      assert.are.same({ code = "INGEST-1555-400", recordCount = 1, message = "A required field is either " ..
        "missing or has a value of null. Add the required field to the input row and try again." }, ext.errors[3])
      local ref = a.targetInfo[1].reference
      assert.are.equal("Batch", ref.type)
      assert.are.equal(2, #ref.ids)
      assert.matches("/data/foundation/export/batches/" .. ref.ids[2] .. "/meta%?path=row_errors$",
        ext.manifest.failedRecords)
      -- GET /runs/{id} answers the same run in a FlowRunsListResponse
      local s, one = api:get(RUNS .. "/" .. r.id)
      fixtures.expect(s, 200, one, "run")
      assert.are.same(r, one.items[1])
      -- filters: status (case-insensitive, as the doc's example), start time, count
      assert.are.equal(0, #runs_of_flow("&property=" .. enc("metrics.statusSummary.status==Failed")).items)
      assert.are.equal(1, #runs_of_flow("&property=" .. enc("metrics.durationSummary.startedAtUTC>" .. (t0 - 1))).items)
      local s2, c = api:get(RUNS .. "?property=" .. enc("flowId==" .. ids.flow_id) .. "&count=true")
      assert.are.equal(200, s2)
      assert.are.same({ count = 1 }, c)
      local s4, by_id = api:get(RUNS .. "?property=" .. enc("id==" .. r.id))
      assert.are.equal(200, s4)
      assert.are.equal(1, #by_id.items)
      assert.are.equal(r.id, by_id.items[1].id)
      local s5, bad = api:get(RUNS .. "?property=" .. enc("flowId=~x"))
      assert.are.equal(400, s5, json.encode(bad))
      local s3, none = api:get(RUNS .. "/no-such-run")
      assert.are.equal(404, s3, json.encode(none))
    end)

    it("lists the window's batches in Catalog with the documented fields and filters", function()
      local ref = runs[1].activities[1].targetInfo[1].reference.ids
      local s, list = api:get("/data/foundation/catalog/batches?dataSet=" .. ids.profile_dataset ..
        "&status=failed&createdAfter=" .. (t0 - 1) .. "&orderBy=desc:created&limit=10")
      fixtures.expect(s, 200, list, "batches")
      local failed = list[ref[2]]
      assert.is_truthy(failed)
      for id, v in pairs(list) do assert.are.equal("failed", v.status, id) end
      assert.are.equal(5, failed.failedRecordCount)
      assert.are.equal(0, failed.recordCount)
      assert.are.same({ { type = "dataSet", id = ids.profile_dataset } }, failed.relatedObjects)
      assert.are.equal(5, failed.metrics.failedRecordCount)
      assert.are.equal("INGEST-1212-400", failed.errors[1].code)
      assert.matches("/data/foundation/export/batches/" .. ref[2] .. "/failed$", failed.failedBatchLocation)
      for _, k in ipairs { "created", "updated", "started", "completed" } do
        assert.are.equal("number", type(failed[k]), k)
      end
      local ok = fixtures.final_batch(api, ref[1])
      assert.are.equal("success", ok.status)
      assert.are.equal(5, ok.recordCount)
      -- the filter excludes batches created before createdAfter
      local s2, later = api:get("/data/foundation/catalog/batches?dataSet=" .. ids.profile_dataset ..
        "&createdAfter=" .. (failed.created + 60000))
      assert.are.equal(200, s2)
      assert.is_nil(next(later))
      -- the dataset's last-batch fields
      local s3, ds = api:get("/data/foundation/catalog/dataSets/" .. ids.profile_dataset)
      assert.are.equal(200, s3)
      local d = ds[ids.profile_dataset]
      assert.are.equal(ref[2], d.lastFailedBatch)
      assert.are.equal(ref[1], d.lastSuccessfulBatch)
      assert.are.equal("string", type(d.lastBatchId))
      assert.are.equal("string", type(d.lastBatchStatus))
      local s4, lb = api:get("/data/foundation/catalog/lastBatches?dataSetId=" .. ids.profile_dataset)
      assert.are.equal(200, s4)
      assert.are.equal(ref[2], lb[ids.profile_dataset].lastFailedBatchId)
    end)

    it("serves the failed batch's records with their errors through the Data Access paths", function()
      local failed_id = runs[1].activities[1].targetInfo[1].reference.ids[2]
      local s, listing = api:get(EXPORT .. failed_id .. "/failed")
      fixtures.expect(s, 200, listing, "failed listing")
      assert.are.equal(2, #listing.data)
      assert.are.same({ limit = 100, count = 2 }, listing._page)
      assert.are.equal("_SUCCESS", listing.data[1].name)
      local file = listing.data[2]
      assert.matches("^part%-00000%-.*%-c000%.json$", file.name)
      assert.are.equal("string", type(file.length))
      local s2, _, resp = api:get(EXPORT .. failed_id .. "/failed?path=" .. enc(file.name))
      assert.are.equal(200, s2)
      assert.are.equal(tonumber(file.length), #resp.body)
      local lines = {}
      for line in resp.body:gmatch("[^\n]+") do lines[#lines + 1] = json.decode(line) end
      assert.are.equal(5, #lines)
      local by_x = {}
      for _, l in ipairs(lines) do by_x[l._emulator.xactionId] = l end
      for i, want in pairs(invalid) do
        local l = by_x[answer.responses[i].xactionId]
        assert.is_truthy(l, "line of message " .. i)
        assert.are.same({ { code = want.code, message = want.message } }, l._errors)
        local leaf = require("aep.xdm").leaves(l._validationErrors)[1]
        assert.are.equal(want.keyword, leaf.keyword)
        assert.are.equal(want.pointer, leaf.pointerToViolation)
        assert.are.same(json.integerize(messages[i].body.xdmEntity), json.integerize(l.body.xdmEntity))
        assert.are.equal(ids.profile_dataset, l.header.datasetId)
        assert.are.equal(ids.flow_id, l.header.flowId)
        assert.are.equal(file.name, l._filename)
      end
      -- meta?path=row_errors lists the row-error files; each downloads as JSON Lines
      local s3, meta = api:get(EXPORT .. failed_id .. "/meta?path=row_errors")
      fixtures.expect(s3, 200, meta, "row_errors")
      assert.are.equal(1, #meta.data)
      assert.are.equal("conversion_errors_0.json", meta.data[1].name)
      assert.matches("meta%?path=row_errors%%2Fconversion_errors_0%.json$", meta.data[1]._links.self.href)
      local s4, _, r4 = api:get(EXPORT .. failed_id .. "/meta?path=" .. enc("row_errors/conversion_errors_0.json"))
      assert.are.equal(200, s4)
      local n = 0
      for _ in r4.body:gmatch("[^\n]+") do n = n + 1 end
      assert.are.equal(5, n)
      local s5 = api:get(EXPORT .. failed_id .. "/meta?path=" .. enc("row_errors/none.json"))
      assert.are.equal(404, s5)
      -- the valid batch has no failed file and one dataset file of 5 records
      local ok_id = runs[1].activities[1].targetInfo[1].reference.ids[1]
      local s6, nofail = api:get(EXPORT .. ok_id .. "/failed")
      assert.are.equal(200, s6)
      assert.are.equal(0, #nofail.data)
      local s7, files = api:get(EXPORT .. ok_id .. "/files")
      assert.are.equal(200, s7)
      assert.are.equal("5", files.data[1].records)
      assert.are.equal(true, files.data[1].isValid)
    end)

    it("answers in the shapes of Adobe's OpenAPI files (field types)", function()
      local openapi = require "support.openapi"
      if not openapi.available() then
        pending("no OpenAPI files at " .. openapi.DIR .. " or no lyaml")
        return
      end
      local function conforms(file, schema, value)
        assert.are.same({}, openapi.check(file, schema, value), file .. " " .. schema)
      end
      local r = runs[1]
      conforms("flow-service.yaml", "FlowRunItemDTO", r)
      local _, one = api:get(RUNS .. "/" .. r.id)
      conforms("flow-service.yaml", "FlowRunsListResponse", one)
      local ref = r.activities[1].targetInfo[1].reference.ids
      for _, id in ipairs(ref) do
        local _, b = api:get("/data/foundation/catalog/batches/" .. id)
        conforms("catalog.yaml", "batchResponse", b[id])
      end
      local _, lb = api:get("/data/foundation/catalog/lastBatches?dataSetId=" .. ids.profile_dataset)
      conforms("catalog.yaml", "lastBatchesResponse", lb)
      local _, failed = api:get(EXPORT .. ref[2] .. "/failed")
      conforms("data-access.yaml", "files", failed)
      local _, meta = api:get(EXPORT .. ref[2] .. "/meta?path=row_errors")
      conforms("data-access.yaml", "files", meta)
      local _, files = api:get(EXPORT .. ref[1] .. "/files")
      conforms("data-access.yaml", "dataSetFiles", files)
      local start = os.date("!%Y-%m-%dT00:00:00.000Z", t0 // 1000 - 86400)
      local stop = os.date("!%Y-%m-%dT00:00:00.000Z", t0 // 1000 + 86400)
      local _, m = api:post(INSIGHTS, { start = start, ["end"] = stop, granularity = "day", metrics = { {
        name = "timeseries.ingestion.dataset.recordsuccess.count", aggregator = "sum", downsample = "sum",
        filters = { { name = "dataSetId", value = ids.profile_dataset, groupBy = true } } } } })
      conforms("observability-insights.yaml", "metricsResponses", m.metricResponses)
    end)

    it("answers Observability Insights with the record success and failure counts", function()
      local start = os.date("!%Y-%m-%dT00:00:00.000Z", t0 // 1000 - 86400)
      local stop = os.date("!%Y-%m-%dT00:00:00.000Z", t0 // 1000 + 2 * 86400)
      local function metric(name)
        local s, b = api:post(INSIGHTS, { start = start, ["end"] = stop, metrics = { {
          name = name, aggregator = "sum",
          filters = { { name = "dataSetId", value = ids.profile_dataset, groupBy = true } } } } })
        fixtures.expect(s, 200, b, "metrics")
        local r = b.metricResponses[1]
        assert.are.equal(name, r.metric)
        assert.are.same({ dataSetId = ids.profile_dataset }, r.datapoints[1].groupBy)
        local sum = 0
        for k, v in pairs(r.datapoints[1].dps) do
          assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", k)
          sum = sum + v
        end
        return sum
      end
      assert.are.equal(5, metric("timeseries.ingestion.dataset.recordsuccess.count"))
      assert.are.equal(5, metric("timeseries.ingestion.dataset.recordfailed.count"))
      assert.are.equal(10, metric("timeseries.data.collection.validation.total.messages.rate"))
      assert.are.equal(5, metric("timeseries.data.collection.validation.invalid.messages.rate"))
      assert.are.equal(1, metric("timeseries.data.collection.validation.category.presence.count"))
      assert.are.equal(1, metric("timeseries.data.collection.validation.category.enum.count"))
      assert.are.equal(1, metric("timeseries.data.collection.validation.category.format.count"))
      assert.are.equal(1, metric("timeseries.data.collection.validation.category.type.count"))
      assert.are.equal(1, metric("timeseries.data.collection.validation.category.unclassified.count"))
      -- errors as the guide shows them
      local s, b = api:post(INSIGHTS, { start = stop, ["end"] = start,
        metrics = { { name = "timeseries.ingestion.dataset.recordsuccess.count", aggregator = "sum" } } })
      assert.are.equal(400, s)
      assert.are.equal("INSGHT-1000-400", b["error-chain"][1].errorCode)
      assert.are.equal("Bad Request - Start date cannot be after end date.", b.title)
      local s2, b2 = api:post(INSIGHTS, { start = start, ["end"] = stop,
        metrics = { { name = "timeseries.ingestion.dataset.recordsuccess.count" } } })
      assert.are.equal(400, s2)
      assert.are.equal("INSGHT-1000-400", b2["error-chain"][1].errorCode)
      -- the spec's own example: a space for the T, a granularity without downsample, dailysize
      local day0 = os.date("!%Y-%m-%d 00:00:00+00:00", t0 // 1000)
      local day1 = os.date("!%Y-%m-%d 00:00:00+00:00", t0 // 1000 + 86400)
      local s3, b3 = api:post(INSIGHTS, { start = day0, ["end"] = day1, granularity = "DAY", metrics = {
        { name = "timeseries.ingestion.dataset.recordsuccess.count", aggregator = "sum",
          filters = { { name = "dataSetId", value = ids.profile_dataset, groupBy = true } } },
        { name = "timeseries.ingestion.dataset.dailysize", aggregator = "sum",
          filters = { { name = "dataSetId", value = ids.profile_dataset, groupBy = false } } } } },
        { content_type = "*/*" })
      fixtures.expect(s3, 200, b3, "the spec's example")
      local r1 = b3.metricResponses[1]
      assert.are.equal("DAY", r1.granularity)
      assert.are.equal(5.0, r1.datapoints[1].dps[os.date("!%Y-%m-%dT00:00:00Z", t0 // 1000)])
      local size = b3.metricResponses[2].datapoints[1].dps[os.date("!%Y-%m-%dT00:00:00Z", t0 // 1000)]
      assert.is_true(size > 0)
    end)
  end)
end)

describe("emulator error diagnostics of batch ingestion", function()
  local emu, api, ids
  local IMPORT = "/data/foundation/import/batches"

  setup(function()
    emu, api, ids = fixtures.start { "--tenant", "exchangeinternal" }
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  it("lists a failed import batch's corrupt and invalid rows as parsing and conversion errors", function()
    local s, batch = api:post(IMPORT, { datasetId = ids.profile_dataset, inputFormat = { format = "json" } })
    fixtures.expect(s, 201, batch, "batch")
    local good = json.encode(fixtures.profile_entity(ids, { loyaltyID = "imp-1@example.com" }))
    local missing = fixtures.profile_entity(ids, { loyaltyID = "imp-2@example.com" })
    missing._exchangeinternal.loyaltyID = nil
    local body = good .. "\n{missingQuotes: 'v1'}\n" .. json.encode(missing) .. "\n"
    s = api:put(IMPORT .. "/" .. batch.id .. "/datasets/" .. ids.profile_dataset .. "/files/rows.json", body,
      { content_type = "application/octet-stream" })
    assert.are.equal(200, s)
    s = api:post(IMPORT .. "/" .. batch.id .. "?action=COMPLETE", "")
    assert.are.equal(200, s)
    local view = fixtures.final_batch(api, batch.id)
    assert.are.equal("failed", view.status)
    assert.are.equal(2, view.failedRecordCount)
    local s2, meta = api:get(EXPORT .. batch.id .. "/meta?path=row_errors")
    fixtures.expect(s2, 200, meta, "row_errors")
    local names = {}
    for _, f in ipairs(meta.data) do names[#names + 1] = f.name end
    assert.are.same({ "conversion_errors_0.json", "parsing_errors_0.json" }, names)
    local s3, _, r3 = api:get(EXPORT .. batch.id .. "/meta?path=" .. enc("row_errors/parsing_errors_0.json"))
    assert.are.equal(200, s3)
    local line = json.decode(r3.body:match("^[^\n]+"))
    assert.are.equal("{missingQuotes: 'v1'}", line._corrupt_record)
    assert.are.same({ { code = "1401", message = "Row is corrupted and cannot be read, please fix and resend." } },
      line._errors)
    assert.are.equal("parsing_errors_0.json", line._filename)
    local s4, _, r4 = api:get(EXPORT .. batch.id .. "/meta?path=" .. enc("row_errors/conversion_errors_0.json"))
    assert.are.equal(200, s4)
    local conv = json.decode(r4.body:match("^[^\n]+"))
    assert.are.same({ { code = "INGEST-1555-400", message = "required key [loyaltyID] not found" } }, conv._errors)
    assert.are.same(json.integerize(missing), json.integerize(conv._record))
  end)
end)

describe("emulator asynchronous validation across kill -9", function()
  local emu, api, ids

  setup(function()
    -- messages wait an hour before validation: all of them are pending when the process dies
    emu, api, ids = fixtures.start({ "--tenant", "exchangeinternal", "--validation-delay", "3600",
                                     "--batch-window", "0.2" }, { dataflow = true })
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  it("loses no accepted message: the pending ones are validated after the restart", function()
    local messages = {}
    for i = 1, 6 do messages[i] = fixtures.profile_message(ids, { loyaltyID = "k9-" .. i .. "@example.com" }) end
    messages[3].body.xdmEntity.workEmail = { address = "x@example.com" }
    local s, b = api:post("/collection/batch/" .. ids.inlet_id, { messages = messages }, { auth = false })
    fixtures.expect(s, 207, b, "stream batch")
    -- accepted, not validated: no record and no run yet
    assert.are.equal(0, fixtures.records(api, ids.profile_dataset, "?limit=0").count)
    local s2, r = api:get(RUNS .. "?property=" .. fixtures.url_encode("flowId==" .. ids.flow_id))
    assert.are.equal(200, s2)
    assert.are.equal(0, #r.items)
    emu.kill9()
    emu.restart { "--tenant", "exchangeinternal", "--batch-window", "0.2" }
    api = fixtures.client(emu)
    local bad = poll(function()
      local ok = fixtures.records(api, ids.profile_dataset, "?status=success&limit=0").count
      local failed = fixtures.records(api, ids.profile_dataset, "?status=failed&limit=100")
      if ok + failed.count == 6 then return failed end
    end, "the pending messages")
    assert.are.equal(1, bad.count)
    assert.are.equal(b.responses[3].xactionId, bad.records[1].xactionId)
    assert.are.equal(5, fixtures.records(api, ids.profile_dataset, "?status=success&limit=0").count)
  end)

  it("validates what it committed but never answered (a drop_after fault)", function()
    local http = require "aep.http"
    emu.faults("/collection/batch:drop_after=1")
    local messages = {}
    for i = 1, 3 do messages[i] = fixtures.profile_message(ids, { loyaltyID = "drop-" .. i .. "@example.com" }) end
    messages[2].body.xdmEntity.workEmail = { address = "x@example.com" }
    local resp, err, code = http.request { method = "POST", url = emu.url .. "/collection/batch/" .. ids.inlet_id,
      headers = { ["Content-Type"] = "application/json" }, body = json.encode { messages = messages } }
    assert.is_nil(resp, err)
    assert.are.equal("RECV", code)
    emu.faults("")
    -- the loyalty ids of the dataset's records with one status
    local function ids_with(status)
      local out = {}
      for _, r in ipairs(fixtures.records(api, ids.profile_dataset, "?status=" .. status .. "&limit=1000").records) do
        out[r.entity._exchangeinternal.loyaltyID] = (out[r.entity._exchangeinternal.loyaltyID] or 0) + 1
      end
      return out
    end
    local failed = poll(function()
      local f = ids_with("failed")
      if f["drop-2@example.com"] then return f end
    end, "the dropped request's messages")
    assert.are.equal(1, failed["drop-2@example.com"])
    local ok = ids_with("success")
    assert.are.same({ 1, 1 }, { ok["drop-1@example.com"], ok["drop-3@example.com"] })
    assert.is_nil(ok["drop-2@example.com"])
  end)
end)
