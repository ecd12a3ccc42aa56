-- The run manifest shared by processes: `aep run` keeps its manifest loaded for the whole run
-- while `aep stream` may record a dataflow in it; each save applies the saver's own changes to
-- the file as it is, under <manifest>.lock, so neither loses the other's entries.
local manifest = require "aep.run.manifest"
local sqlite = require "aep.sqlite"
local json = require "aep.json"
local files = require "tests.lua.support.files"
local run_support = require "tests.lua.support.run"

local TARGET = { gateway = "http://127.0.0.1:1", org = "ORG@AdobeOrg", sandbox = "prod" }

local function on_disk(path)
  return assert(json.decode(assert(files.read(path))))
end

local function vars_of(doc)
  local out = {}
  for _, r in ipairs(doc.resources) do out[#out + 1] = r.var end
  return out
end

describe("run manifest shared by two processes", function()
  local dir, path

  before_each(function()
    dir = run_support.tmpdir()
    path = dir .. "/runs/aep-prod-x.json"
    local m = manifest.new(path, "aep", TARGET)
    m:record("SCHEMA_ID_PROFILE", { kind = "schema", id = "s1", created = true, step = "schemas" })
    m:set("TENANT_ID", "tenant")
    m:save()
  end)

  after_each(function()
    os.execute("rm -rf " .. run_support.quote(dir))
  end)

  it("keeps what another process recorded after this one loaded it", function()
    local run = assert(manifest.load(path, "aep", TARGET))    -- `aep run`, loaded at its start
    local stream = assert(manifest.load(path, "aep", TARGET)) -- `aep stream -d` meanwhile
    stream:record("STREAM_FLOW_ID_ds1", { kind = "flow", id = "f1", created = true, step = "stream", dataset = "ds1" })
    stream:save()
    run:record("DATASET_ID_PROFILE", { kind = "dataset", id = "d1", created = true, step = "datasets" })
    run:set("INLET_URL", "http://inlet")
    run:save()
    local doc = on_disk(path)
    assert.are.same({ "SCHEMA_ID_PROFILE", "STREAM_FLOW_ID_ds1", "DATASET_ID_PROFILE" }, vars_of(doc))
    assert.are.same({ SCHEMA_ID_PROFILE = "s1", TENANT_ID = "tenant", STREAM_FLOW_ID_ds1 = "f1",
                      DATASET_ID_PROFILE = "d1", INLET_URL = "http://inlet" }, doc.variables)
    -- the saver now sees the whole file
    assert.are.equal("f1", run:get("STREAM_FLOW_ID_ds1"))
  end)

  it("applies a forget to the file as it is, leaving the other process's entries", function()
    local teardown = assert(manifest.load(path, "aep", TARGET))
    local stream = assert(manifest.load(path, "aep", TARGET))
    stream:record("STREAM_FLOW_ID_ds2", { kind = "flow", id = "f2", created = true, step = "stream", dataset = "ds2" })
    stream:save()
    teardown:forget("SCHEMA_ID_PROFILE")
    teardown:save()
    local doc = on_disk(path)
    assert.are.same({ "STREAM_FLOW_ID_ds2" }, vars_of(doc))
    assert.is_nil(doc.variables.SCHEMA_ID_PROFILE)
    assert.are.equal("tenant", doc.variables.TENANT_ID)
  end)

  it("waits for the lock another process holds, and names it when the wait is over", function()
    local other = assert(sqlite.open(path .. ".lock"))
    other:exec("BEGIN EXCLUSIVE")
    local m = assert(manifest.load(path, "aep", TARGET))
    m:set("X", "1")
    local wait = manifest.LOCK_WAIT_S
    manifest.LOCK_WAIT_S = 0
    local ok, err = pcall(m.save, m)
    manifest.LOCK_WAIT_S = wait
    other:exec("COMMIT")
    other:close()
    assert.is_false(ok)
    assert.are.equal("another aep process has held the run manifest " .. path .. " for 0 s (lock " .. path .. ".lock)",
      err.message)
    assert.is_nil(on_disk(path).variables.X)
    m:save() -- released: the change is written
    assert.are.equal("1", on_disk(path).variables.X)
  end)
end)
