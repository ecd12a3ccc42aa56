-- aep emulator: Catalog batch writes (POST/PUT/PATCH/DELETE /catalog/batches), PATCH v2 of a
-- dataset, and Data Access downloads of a batch's files and a dataset's preview (catalog.yaml,
-- data-access.yaml; help/data-access/api.md).
package.path = "tests/lua/?.lua;" .. package.path
local json = require "aep.json"
local http = require "aep.http"
local fixtures = require "support.fixtures"

local IMPORT = "/data/foundation/import/batches"
local CATALOG = "/data/foundation/catalog"
local EXPORT = "/data/foundation/export"

describe("emulator catalog batches and data access files", function()
  local emu, api, ids

  setup(function()
    emu, api, ids = fixtures.start()
  end)
  teardown(function() emu.cleanup() end)

  -- a batch of n profiles, ingested through batch ingestion; -> batch id, the file's text
  local function ingested(n, prefix)
    local s, b = api:post(IMPORT, { datasetId = ids.profile_dataset, inputFormat = { format = "json" } })
    local batch = fixtures.expect(s, 201, b, "create batch").id
    local lines = {}
    for i = 1, n do
      lines[i] = json.encode(fixtures.profile_entity(ids, { loyaltyID = prefix .. i .. "@example.com", points = i }))
    end
    s = api:put(IMPORT .. "/" .. batch .. "/datasets/" .. ids.profile_dataset .. "/files/f.json",
      table.concat(lines, "\n") .. "\n", { content_type = "application/octet-stream" })
    assert.are.equal(200, s)
    s = api:post(IMPORT .. "/" .. batch .. "?action=COMPLETE", "")
    assert.are.equal(200, s)
    return batch
  end

  describe("data access", function()
    it("lists a batch's file and downloads it, HEAD giving its length", function()
      local batch = ingested(3, "dl")
      local s, files = api:get(EXPORT .. "/batches/" .. batch .. "/files")
      fixtures.expect(s, 200, files, "batch files")
      assert.are.equal(1, #files.data)
      local file_id = files.data[1].dataSetFileId
      assert.are.equal(emu.url .. EXPORT .. "/files/" .. file_id, files.data[1]._links.self.href)
      local s2, listing = api:get(EXPORT .. "/files/" .. file_id)
      fixtures.expect(s2, 200, listing, "file listing")
      assert.are.equal(1, #listing.data)
      assert.are.equal("part-00000.json", listing.data[1].name)
      local href = listing.data[1]._links.self.href
      assert.are.equal(emu.url .. EXPORT .. "/files/" .. file_id .. "?path=part-00000.json", href)
      local s3, text = api:get(href)
      assert.are.equal(200, s3)
      assert.is_string(text)
      local got = {}
      for line in text:gmatch("[^\n]+") do got[#got + 1] = json.decode(line)["_" .. ids.tenant].loyaltyID end
      assert.are.same({ "dl1@example.com", "dl2@example.com", "dl3@example.com" }, got)
      assert.are.equal(listing.data[1].length, tostring(#text))
      local resp = assert(http.request { method = "HEAD", url = href, headers = api:headers() })
      assert.are.equal(200, resp.status)
      assert.are.equal("", resp.body)
      assert.are.equal(tostring(#text), resp.headers["content-length"])
      assert.are.equal("application/octet-stream", resp.headers["content-type"])
      -- unknown files and names
      assert.are.equal(404, (api:get(EXPORT .. "/files/nobatch-1")))
      local s4, b4 = api:get(EXPORT .. "/files/" .. file_id .. "?path=other.parquet")
      assert.are.equal(404, s4)
      assert.matches("it holds part%-00000%.json", b4.detail)
      -- another sandbox does not see it
      local other = setmetatable({ sandbox = "nosuch" }, { __index = api })
      assert.are_not.equal(200, (other:get(EXPORT .. "/files/" .. file_id)))
    end)

    it("previews a dataset's latest records", function()
      local s, b = api:get(EXPORT .. "/datasets/" .. ids.event_dataset .. "/preview")
      fixtures.expect(s, 200, b, "empty preview")
      assert.are.same({}, b.data)
      ingested(2, "pv")
      s, b = api:get(EXPORT .. "/datasets/" .. ids.profile_dataset .. "/preview")
      fixtures.expect(s, 200, b, "preview")
      assert.is_true(#b.data >= 2)
      assert.are.equal("pv2@example.com", b.data[#b.data]["_" .. ids.tenant].loyaltyID)
      assert.are.equal(404, (api:get(EXPORT .. "/datasets/0123456789abcdef01234567/preview")))
    end)
  end)

  describe("catalog batches", function()
    it("creates, reads, patches, replaces and deletes a batch", function()
      local s, b, resp = api:post(CATALOG .. "/batches", { status = "loading", externalId = "ext-1",
        relatedObjects = { { type = "dataSet", id = ids.profile_dataset } }, inputFormat = { format = "parquet" },
        tags = { source = { "manual" } } })
      fixtures.expect(s, 201, b, "create")
      local id = b[1]:match("^@/batches/(.+)$")
      assert.is_string(id)
      assert.are.equal(emu.url .. CATALOG .. "/batches/" .. id, resp.headers.location)
      local s2, got = api:get(CATALOG .. "/batches/" .. id)
      fixtures.expect(s2, 200, got, "get")
      assert.are.equal("loading", got[id].status)
      assert.are.same({ { type = "dataSet", id = ids.profile_dataset } }, got[id].relatedObjects)
      assert.are.same({ format = "parquet" }, got[id].inputFormat)
      assert.are.same({ source = { "manual" } }, got[id].tags)
      -- listed under its dataset
      local _, list = api:get(CATALOG .. "/batches?dataSet=" .. ids.profile_dataset)
      assert.is_table(list[id])
      -- PATCH merges
      s, b = api:patch(CATALOG .. "/batches/" .. id, { status = "success", recordCount = 7 })
      fixtures.expect(s, 200, b, "patch")
      assert.are.same({ "@/batches/" .. id }, b)
      _, got = api:get(CATALOG .. "/batches/" .. id)
      assert.are.equal("success", got[id].status)
      assert.are.equal(7, got[id].recordCount)
      assert.are.same({ format = "parquet" }, got[id].inputFormat)
      -- PUT replaces
      s, b = api:put(CATALOG .. "/batches/" .. id, { status = "failed" })
      fixtures.expect(s, 200, b, "put")
      _, got = api:get(CATALOG .. "/batches/" .. id)
      assert.are.equal("failed", got[id].status)
      assert.is_nil(got[id].inputFormat)
      -- bad requests
      s, b = api:patch(CATALOG .. "/batches/" .. id, { status = "exploded" })
      assert.are.equal(400, s)
      assert.matches("status exploded is not a batch status", b.detail)
      s, b = api:post(CATALOG .. "/batches", { status = "loading" })
      assert.are.equal(400, s)
      assert.matches("relatedObjects must name the batch's dataset", b.detail)
      s, b = api:post(CATALOG .. "/batches", { relatedObjects = { { type = "dataSet", id = ids.profile_dataset } } })
      assert.are.equal(400, s)
      assert.matches("status is required", b.detail)
      s, b = api:post(CATALOG .. "/batches/" .. id, { status = "loading",
        relatedObjects = { { type = "dataSet", id = ids.profile_dataset } } })
      assert.are.equal(400, s)
      assert.matches("already exists", b.detail)
      -- DELETE, then 404
      s, b = api:request("DELETE", CATALOG .. "/batches/" .. id)
      fixtures.expect(s, 200, b, "delete")
      assert.are.same({ "@/batches/" .. id }, b)
      assert.are.equal(404, (api:get(CATALOG .. "/batches/" .. id)))
      assert.are.equal(404, (api:patch(CATALOG .. "/batches/" .. id, { status = "success" })))
      assert.are.equal(404, (api:request("DELETE", CATALOG .. "/batches/" .. id)))
    end)

    it("creates a batch under a given id", function()
      local s, b = api:post(CATALOG .. "/batches/01CATALOGBATCHID0000000001", { status = "staged",
        relatedObjects = { { type = "dataSet", id = ids.event_dataset } } })
      fixtures.expect(s, 201, b, "create with id")
      assert.are.same({ "@/batches/01CATALOGBATCHID0000000001" }, b)
      local _, got = api:get(CATALOG .. "/batches/01CATALOGBATCHID0000000001")
      assert.are.equal("staged", got["01CATALOGBATCHID0000000001"].status)
    end)

    it("deleting an ingested batch removes its records and its file", function()
      local keep = ingested(1, "keep")
      local gone = ingested(2, "gone")
      local before = fixtures.records(api, ids.profile_dataset).count
      local s = api:request("DELETE", CATALOG .. "/batches/" .. gone)
      assert.are.equal(200, s)
      assert.are.equal(before - 2, fixtures.records(api, ids.profile_dataset).count)
      assert.are.equal(0, fixtures.records(api, ids.profile_dataset, "?batch=" .. gone).count)
      assert.are.equal(1, fixtures.records(api, ids.profile_dataset, "?batch=" .. keep).count)
      assert.are.equal(404, (api:get(EXPORT .. "/files/" .. gone .. "-1")))
      assert.are.equal(200, (api:get(EXPORT .. "/files/" .. keep .. "-1")))
      -- Profile no longer finds the deleted batch's members; the kept one stays
      local function profile(email)
        return (api:get("/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS=email&entityId=" ..
          fixtures.url_encode(email)))
      end
      assert.are.equal(404, profile("gone1@example.com"))
      assert.are.equal(404, profile("gone2@example.com"))
      assert.are.equal(200, profile("keep1@example.com"))
    end)
  end)

  describe("dataset PATCH v2", function()
    it("merges nested fields, creating the missing objects", function()
      local s, b = api:request("PATCH", CATALOG .. "/v2/dataSets/" .. ids.event_dataset, {
        description = "v2 words", extensions = { adobe_lakeHouse = { rowExpiration = { ttlValue = "P3Y" } } },
        tags = { ["adobe/pqs/table"] = { "events" } } })
      fixtures.expect(s, 200, b, "patch v2")
      assert.are.same({ "@/dataSets/" .. ids.event_dataset }, b)
      local _, got = api:get(CATALOG .. "/dataSets/" .. ids.event_dataset)
      local ds = got[ids.event_dataset]
      assert.are.equal("v2 words", ds.description)
      assert.are.equal("P3Y", ds.extensions.adobe_lakeHouse.rowExpiration.ttlValue)
      assert.are.same({ "events" }, ds.tags["adobe/pqs/table"])
      assert.is_table(ds.schemaRef)
      s, b = api:request("PATCH", CATALOG .. "/v2/dataSets/" .. ids.event_dataset, { schemaRef = { id = "x" } })
      assert.are.equal(400, s)
      assert.matches("schemaRef cannot be changed", b.detail)
      s = api:request("PATCH", CATALOG .. "/v2/dataSets/" .. ids.event_dataset, { { op = "add" } })
      assert.are.equal(400, s)
      s = api:request("PATCH", CATALOG .. "/v2/dataSets/0123456789abcdef01234567", { description = "x" })
      assert.are.equal(404, s)
    end)
  end)

  describe("a streaming batch still processing", function()
    local emu2, api2, ids2
    setup(function()
      emu2, api2, ids2 = fixtures.start({ "--batch-window", "3600" }, { dataflow = true })
    end)
    teardown(function() emu2.cleanup() end)

    it("cannot be deleted while its window is open", function()
      local s = api2:post("/collection/" .. ids2.inlet_id, fixtures.profile_message(ids2, { loyaltyID = "w1@example.com" }),
        { auth = false })
      assert.are.equal(200, s)
      local batch
      for _ = 1, 200 do
        local _, list = api2:get(CATALOG .. "/batches?dataSet=" .. ids2.profile_dataset)
        batch = next(list)
        if batch then break end
        require("aep.host").sleep(0.05)
      end
      assert.is_string(batch)
      local s2, b2 = api2:request("DELETE", CATALOG .. "/batches/" .. batch)
      assert.are.equal(400, s2)
      assert.matches("is still processing", b2.detail)
      local _, got = api2:get(CATALOG .. "/batches/" .. batch)
      assert.are.equal("processing", got[batch].status)
    end)
  end)
end)
