-- aep.batches' file upload against the emulator: one PUT up to the small-file limit, the
-- large-file API above it (INITIALIZE, Content-Range chunks, COMPLETE), and resuming after a
-- chunk that failed (HEAD, then on from the first missing byte). The limit and the chunk size are
-- forced small so that a few records take the large path.
package.path = "tests/lua/?.lua;" .. package.path
local fixtures = require "support.fixtures"
local config = require "aep.config"
local platform = require "aep.platform"
local batches = require "aep.batches"
local http = require "aep.http"
local json = require "aep.json"

describe("aep.batches upload", function()
  local emu, api, ids, c
  local SMALL = { small_file_limit = 100, chunk_size = 64 }

  setup(function()
    emu, api, ids = fixtures.start()
    local cfg = config.load({ env_file = emu.env_file, getenv = function() return nil end })
    c = platform.new(cfg, { sleep = function() end, max_attempts = 1 })
  end)

  teardown(function()
    if emu then emu.cleanup() end
  end)

  -- The emulator's request log after `since`: "METHOD path?query" of the batch-ingestion calls
  local function calls(since)
    local resp = assert(http.request { method = "GET", url = emu.url .. "/emulator/requests?since=" .. since })
    local out = {}
    for _, r in ipairs(json.decode(resp.body).requests) do
      if r.path:find("/data/foundation/import/", 1, true) then
        out[#out + 1] = r.method .. " " .. r.path:gsub("^.*/files/", "files/")
      end
    end
    return out
  end

  local function last_seq()
    local resp = assert(http.request { method = "GET", url = emu.url .. "/emulator/state" })
    return json.decode(resp.body).requests
  end

  local function data_of(n, tag)
    local t = {}
    for i = 1, n do
      t[i] = json.encode(fixtures.profile_entity(ids, { loyaltyID = tag .. i .. "@example.com", points = i }))
    end
    return table.concat(t, "\n") .. "\n"
  end

  local function finish(id)
    batches.complete(c, id)
    return batches.wait(c, id, { timeout = 30 })
  end

  local function patches(n)
    local out = {}
    for i = 1, n do out[i] = "PATCH files/f.json" end
    return out
  end

  it("uses one PUT up to the small-file limit", function()
    local id = batches.create(c, ids.profile_dataset, { format = "json", multiline = false })
    local data = data_of(1, "small")
    assert.is_true(#data < 1000)
    local since = last_seq()
    batches.upload(c, id, ids.profile_dataset, "f.json", data, { small_file_limit = 1000 })
    assert.are.same({ "PUT files/f.json" }, calls(since))
    assert.are.equal("success", finish(id).status)
  end)

  it("uses large-file upload above it, chunk by chunk", function()
    local id = batches.create(c, ids.profile_dataset, { format = "json", multiline = false })
    local data = data_of(3, "large")
    local n = math.ceil(#data / 64)
    local since = last_seq()
    batches.upload(c, id, ids.profile_dataset, "f.json", data, SMALL)
    local want = { "POST files/f.json" }
    for _, p in ipairs(patches(n)) do want[#want + 1] = p end
    want[#want + 1] = "POST files/f.json"
    assert.are.same(want, calls(since))
    local b = finish(id)
    assert.are.equal("success", b.status)
    assert.are.equal(3, b.metrics.outputRecordCount)
    assert.are.equal(#data, b.metrics.inputByteSize)
  end)

  it("resumes after failed chunks: HEAD, then on from the first missing byte", function()
    local id = batches.create(c, ids.profile_dataset, { format = "json", multiline = false })
    local data = data_of(3, "resume")
    local n = math.ceil(#data / 64)
    local Client = getmetatable(c).__index
    local sent = 0
    -- the 2nd chunk lands but its answer is lost; the 3rd never leaves
    c.patch = function(self, path, opts)
      sent = sent + 1
      if sent == 2 then
        Client.patch(self, path, opts)
        error(platform.error({ kind = "transport", code = "RECV", message = "connection reset" }), 0)
      elseif sent == 3 then
        error(platform.error({ kind = "transport", code = "RECV", message = "connection reset" }), 0)
      end
      return Client.patch(self, path, opts)
    end
    local since = last_seq()
    local ok, err = pcall(batches.upload, c, id, ids.profile_dataset, "f.json", data, SMALL)
    c.patch = nil
    assert.is_true(ok, tostring(err))
    -- chunk 1, chunk 2 (answer lost), HEAD -> 128 bytes arrived, chunk 3 fails unsent, HEAD, chunk 3...
    local want = { "POST files/f.json", "PATCH files/f.json", "PATCH files/f.json", "HEAD files/f.json",
                   "HEAD files/f.json" }
    for _ = 3, n do want[#want + 1] = "PATCH files/f.json" end
    want[#want + 1] = "POST files/f.json"
    assert.are.same(want, calls(since))
    local b = finish(id)
    assert.are.equal("success", b.status)
    assert.are.equal(3, b.metrics.outputRecordCount)
    assert.are.equal(#data, b.metrics.inputByteSize)
  end)

  it("gives up after resume_attempts failures, with the chunk's error", function()
    local id = batches.create(c, ids.profile_dataset, { format = "json", multiline = false })
    c.patch = function()
      error(platform.error({ kind = "transport", code = "RECV", message = "connection reset" }), 0)
    end
    local ok, err = pcall(batches.upload, c, id, ids.profile_dataset, "f.json", data_of(2, "gone"),
      { small_file_limit = 100, chunk_size = 64, resume_attempts = 2 })
    c.patch = nil
    assert.is_false(ok)
    assert.are.equal("RECV", err.code)
  end)

  it("uploads a file from disk, large ones chunk by chunk", function()
    local id = batches.create(c, ids.profile_dataset, { format = "json", multiline = false })
    local data = data_of(4, "disk")
    local path = emu.data_dir .. "/upload-source.json"
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
    local since = last_seq()
    batches.upload_file(c, id, ids.profile_dataset, "f.json", path, SMALL)
    assert.are.equal(math.ceil(#data / 64) + 2, #calls(since))
    local b = finish(id)
    assert.are.equal("success", b.status)
    assert.are.equal(4, b.metrics.outputRecordCount)
    local ok, err = pcall(batches.upload_file, c, id, ids.profile_dataset, "g.json", path .. ".missing")
    assert.is_false(ok)
    assert.matches("^cannot read .*upload%-source%.json%.missing", err.message)
  end)
end)
