-- What the client modules put in a request body, checked on a recording stand-in for the Platform
-- client: the values the OpenAPI specs document (tests/contract checks the same requests against
-- the specs on a real emulator; these pin them without one).
local batches = require "aep.batches"
local flows = require "aep.flows"

-- A client that records each POST and answers {"id": ID}.
local function recorder(id)
  local rec = { calls = {} }
  function rec:post(path, o)
    self.calls[#self.calls + 1] = { path = path, json = o.json }
    return { status = 201, json = { id = id } }
  end
  return rec
end

describe("client request bodies", function()
  it("creates a batch with inputFormat.format spelled as the batch ingestion enum (JSON, Parquet, CSV)", function()
    for _, case in ipairs({ { nil, "JSON" }, { "json", "JSON" }, { "JSON", "JSON" }, { "csv", "CSV" },
                            { "parquet", "Parquet" } }) do
      local c = recorder("B1")
      assert.are.equal("B1", batches.create(c, "DS1", { format = case[1] }))
      assert.are.equal("/data/foundation/import/batches", c.calls[1].path)
      assert.are.same({ datasetId = "DS1", inputFormat = { format = case[2], isMultiLineJson = true } }, c.calls[1].json)
    end
  end)

  it("creates a source connection with the data object the Flow Service spec requires", function()
    local c = recorder("SC1")
    assert.are.equal("SC1", flows.create_source_connection(c, { name = "S", base_connection_id = "BC1" }))
    assert.are.equal("/data/foundation/flowservice/sourceConnections", c.calls[1].path)
    assert.are.same({ format = "json" }, c.calls[1].json.data)
    assert.are.equal("BC1", c.calls[1].json.baseConnectionId)
  end)
end)
