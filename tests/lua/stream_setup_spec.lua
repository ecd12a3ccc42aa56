-- aep stream -d DATASET and the resources around it, from the user's side (the CLI against
-- `aep emulator`): a stream into a dataset the workflow set up goes through the workflow's
-- dataflow (nothing new in Flow Service); into a dataset without one it creates a connection and
-- a dataflow once, records them in the run manifest, and `aep run teardown` deletes them (the
-- dataflow first) until Flow Service lists nothing; teardown also removes what an aep stream made,
-- before streams recorded anything, for a dataset the run deletes.
local json = require "aep.json"
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"
local emulator = require "tests.lua.support.emulator"
local fixtures = require "tests.lua.support.fixtures"

local PROFILES, PROFILE_MAPPING = "data/AEP_loyalty_profiles.json", "mappings/loyalty_profile.lua"
local KINDS = { "connections", "sourceConnections", "targetConnections", "flows" }
local FLOWS = "/data/foundation/flowservice"

local emu, api, dir

-- every run of aep keeps its state (default run manifests) under the test's directory
local function aep(args)
  return run.aep(args, { env = { XDG_STATE_HOME = dir .. "/state", HOME = dir } })
end

-- {kind = {ids, sorted}} of what Flow Service lists
local function listed()
  local out = {}
  for _, kind in ipairs(KINDS) do
    local s, b = api:get(FLOWS .. "/" .. kind)
    assert.equal(200, s)
    local ids = {}
    for _, it in ipairs(b.items) do ids[#ids + 1] = it.id end
    table.sort(ids)
    out[kind] = ids
  end
  return out
end

local function counts(l)
  local out = {}
  for _, kind in ipairs(KINDS) do out[kind] = #l[kind] end
  return out
end

local function manifest(path) return assert(json.decode(files.read(path))) end

local function stream_vars(m)
  local out = {}
  for _, r in ipairs(m.resources) do
    if r.var:match("^STREAM_") then out[#out + 1] = r.var:gsub("_[%x]+$", "") .. " " .. r.kind end
  end
  return out
end

-- the Flow Service DELETEs the emulator saw since seq, as "kind" in order
local function deletes_since(seq)
  local s, b = api:get("/emulator/requests?since=" .. seq .. "&path=" .. FLOWS .. "&limit=1000", { auth = false })
  assert.equal(200, s)
  local out = {}
  for _, e in ipairs(b.requests) do
    if e.method == "DELETE" then out[#out + 1] = e.path:match("^" .. FLOWS .. "/(%a+)/") end
  end
  return out
end

local function last_seq()
  local s, b = api:get("/emulator/requests?since=0&limit=1&path=/nothing", { auth = false })
  assert.equal(200, s)
  return b.total
end

setup(function()
  dir = run.tmpdir()
  emu = emulator.start({ "--tenant", "exchangeinternal", "--seed", "5" })
  api = fixtures.client(emu)
end)

-- a test that fails leaves nothing behind for the next one's counts
after_each(function()
  local left = listed()
  for i = #KINDS, 1, -1 do
    for _, id in ipairs(left[KINDS[i]]) do api:request("DELETE", FLOWS .. "/" .. KINDS[i] .. "/" .. id) end
  end
end)

teardown(function()
  if emu then emu.cleanup() end
  if dir then os.execute("rm -rf " .. run.quote(dir)) end
end)

describe("aep stream -d DATASET without a dataflow for it", function()
  it("creates one connection and dataflow, records them in the run manifest, and teardown removes them", function()
    local m = dir .. "/create.json"
    local base = { "--env", emu.env_file, "--manifest", m, "--run-name", "create" }
    local r = aep({ "run", "schemas", "datasets", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ connections = 0, sourceConnections = 0, targetConnections = 0, flows = 0 }, counts(listed()))
    local dataset = manifest(m).variables.DATASET_ID_PROFILE

    r = aep({ "stream", "-d", "DATASET_ID_PROFILE", "-i", PROFILES, "-m", PROFILE_MAPPING, table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 25   rejected 0   skipped 0   failed 0", r.stdout, 1, true)
    local after = listed()
    assert.same({ connections = 1, sourceConnections = 1, targetConnections = 1, flows = 1 }, counts(after))
    -- one line on stderr says what was created and how it goes away
    local flow, conn = after.flows[1], after.connections[1]
    assert.equal("aep: stream: created streaming connection " .. conn .. " and dataflow " .. flow .. " for dataset " ..
      dataset .. " (with its source and target connections), recorded in the run manifest " .. m ..
      ": `aep run teardown --manifest " .. m .. "` deletes them\n", r.stderr)
    -- the manifest names each of them, as created by this run, for this dataset, in creation order
    local doc = manifest(m)
    assert.same({ "STREAM_CONNECTION_ID connection", "STREAM_SOURCE_CONNECTION_ID sourceConnection",
                  "STREAM_TARGET_CONNECTION_ID targetConnection", "STREAM_FLOW_ID flow" }, stream_vars(doc))
    assert.equal(flow, doc.variables["STREAM_FLOW_ID_" .. dataset])
    assert.equal(conn, doc.variables["STREAM_CONNECTION_ID_" .. dataset])
    for _, res in ipairs(doc.resources) do
      if res.var:match("^STREAM_") then
        assert.same({ true, dataset, "aep stream " .. dataset }, { res.created, res.dataset, res.title })
      end
    end

    -- a second stream creates nothing: it uses what the first recorded
    r = aep({ "stream", "-d", "DATASET_ID_PROFILE", "-i", PROFILES, "-m", PROFILE_MAPPING, table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("aep: stream: using dataflow " .. flow .. " 'aep stream " .. dataset .. "' (streaming connection " ..
      conn .. ") for dataset " .. dataset .. ", found in the run manifest " .. m .. "\n", r.stderr)
    assert.same(after, listed())
    assert.equal(4, #stream_vars(manifest(m)))
    -- the dataset holds both streams' records
    local _, total = fixtures.stored_ids(api, dataset)
    assert.equal(50, total)

    -- teardown deletes them, the dataflow before the connections
    local seq = last_seq()
    r = aep({ "run", "teardown", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("deleted   dataflow           aep stream " .. dataset .. "  " .. flow, r.stdout, 1, true)
    assert.matches("deleted   connection         aep stream " .. dataset .. "  " .. conn, r.stdout, 1, true)
    assert.same({ "flows", "targetConnections", "sourceConnections", "connections" }, deletes_since(seq))
    assert.same({ connections = 0, sourceConnections = 0, targetConnections = 0, flows = 0 }, counts(listed()))
    assert.same({}, stream_vars(manifest(m)))
  end)

  it("keeps them in the default run manifest `aep run` uses for that run name, sandbox and org", function()
    local base = { "--env", emu.env_file, "--run-name", "dflt" }
    local r = aep({ "run", "schemas", "datasets", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    r = aep({ "stream", "-d", "dflt Loyalty Profiles", "-i", PROFILES, "-m", PROFILE_MAPPING, "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("", r.stderr)  -- --quiet: not even the line
    assert.same({ connections = 1, sourceConnections = 1, targetConnections = 1, flows = 1 }, counts(listed()))
    r = aep({ "run", "teardown", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("done: 0 created, 0 found, 12 deleted", r.stdout, 1, true)
    assert.same({ connections = 0, sourceConnections = 0, targetConnections = 0, flows = 0 }, counts(listed()))
  end)
end)

describe("two aep streams into one dataset at once", function()
  it("create one dataflow between them: the other uses it, and the manifest records it once", function()
    local m = dir .. "/both.json"
    local base = { "--env", emu.env_file, "--manifest", m, "--run-name", "both" }
    local r = aep({ "run", "schemas", "datasets", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local dataset = manifest(m).variables.DATASET_ID_PROFILE
    local words = { "XDG_STATE_HOME=" .. run.quote(dir .. "/state"), run.quote(run.bin), "stream", "-d", "DATASET_ID_PROFILE",
                    "-i", PROFILES, "-m", PROFILE_MAPPING, "-q" }
    for _, a in ipairs(base) do words[#words + 1] = run.quote(a) end
    local one = table.concat(words, " ")
    r = run.cmd({ "sh", "-c", "env " .. one .. " 2>" .. run.quote(dir .. "/a.err") .. " & env " .. one .. " 2>" ..
                  run.quote(dir .. "/b.err") .. " & wait %1; a=$?; wait %2; b=$?; echo $a $b" })
    assert.equal("0 0\n", r.stdout:match("%d+ %d+\n$"))
    assert.same({ connections = 1, sourceConnections = 1, targetConnections = 1, flows = 1 }, counts(listed()))
    assert.equal(4, #stream_vars(manifest(m)))
    local _, total = fixtures.stored_ids(api, dataset)
    assert.equal(50, total)
    r = aep({ "run", "teardown", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ connections = 0, sourceConnections = 0, targetConnections = 0, flows = 0 }, counts(listed()))
  end)
end)

describe("aep stream -d DATASET after a stream that stopped half-way", function()
  it("reuses the connection it made for the dataset, creates only the rest, and teardown removes it too", function()
    local m = dir .. "/half.json"
    local base = { "--env", emu.env_file, "--manifest", m, "--run-name", "half" }
    local r = aep({ "run", "schemas", "datasets", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local dataset = manifest(m).variables.DATASET_ID_PROFILE
    -- the connection a stream created before it stopped (no dataflow yet)
    local name = "aep stream " .. dataset
    local s, conn = api:post(FLOWS .. "/connections", { name = name,
      providerId = "521eee4d-8cbe-4906-bb48-fb6bd4450033", connectionSpec = { id = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", version = "1.0" },
      auth = { specName = "Streaming Connection", params = { sourceId = name, dataType = "xdm", name = name } } })
    assert.equal(201, s)

    r = aep({ "stream", "-d", "DATASET_ID_PROFILE", "-i", PROFILES, "-m", PROFILE_MAPPING, table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local after = listed()
    assert.same({ connections = 1, sourceConnections = 1, targetConnections = 1, flows = 1 }, counts(after))
    assert.same({ conn.id }, after.connections)
    assert.equal(1, r.stderr:find("aep: stream: created dataflow " .. after.flows[1] .. " for dataset " .. dataset .. " ", 1, true))
    local doc = manifest(m)
    assert.equal(conn.id, doc.variables["STREAM_CONNECTION_ID_" .. dataset])
    assert.equal(4, #stream_vars(doc))

    r = aep({ "run", "teardown", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ connections = 0, sourceConnections = 0, targetConnections = 0, flows = 0 }, counts(listed()))
  end)
end)

describe("aep stream -d DATASET the workflow streams into", function()
  it("uses the workflow's connection and dataflow: Flow Service lists the same", function()
    local m = dir .. "/workflow.json"
    local base = { "--env", emu.env_file, "--manifest", m, "--run-name", "wf" }
    local r = aep({ "run", "schemas", "datasets", "streaming", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local before = listed()
    assert.same({ connections = 1, sourceConnections = 1, targetConnections = 2, flows = 2 }, counts(before))
    local vars = manifest(m).variables

    r = aep({ "stream", "-d", "DATASET_ID_PROFILE", "-i", PROFILES, "-m", PROFILE_MAPPING, table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("accepted 25   rejected 0   skipped 0   failed 0", r.stdout, 1, true)
    assert.equal("aep: stream: using dataflow " .. vars.FLOW_ID_PROFILE .. " 'wf Loyalty Profiles Dataflow' (streaming connection " ..
      vars.CONNECTION_ID .. ") for dataset " .. vars.DATASET_ID_PROFILE .. ", found in the run manifest " .. m .. "\n", r.stderr)
    assert.same(before, listed())
    assert.same({}, stream_vars(manifest(m)))

    -- without the workflow's manifest, Flow Service's list of dataflows writing the dataset finds it
    local other = dir .. "/other.json"
    r = aep({ "stream", "-d", "wf Loyalty Profiles", "-i", PROFILES, "-m", PROFILE_MAPPING, "--env", emu.env_file,
              "--manifest", other })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("aep: stream: using dataflow " .. vars.FLOW_ID_PROFILE .. " 'wf Loyalty Profiles Dataflow' (streaming connection " ..
      vars.CONNECTION_ID .. ") for dataset " .. vars.DATASET_ID_PROFILE .. ", found in Flow Service\n", r.stderr)
    assert.same(before, listed())
    assert.is_nil(files.read(other))  -- nothing created, nothing recorded

    r = aep({ "run", "teardown", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ connections = 0, sourceConnections = 0, targetConnections = 0, flows = 0 }, counts(listed()))
  end)
end)

describe("aep stream -d DATASET written by a raw-data dataflow only", function()
  it("does not send XDM through the dataflow's mapping set: it creates its own, and teardown removes both", function()
    local m = dir .. "/raw.json"
    local base = { "--env", emu.env_file, "--manifest", m, "--run-name", "raw" }
    local r = aep({ "run", "schemas", "datasets", "raw-streaming", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local before = counts(listed())
    assert.same({ connections = 1, sourceConnections = 1, targetConnections = 1, flows = 1 }, before)
    local dataset = manifest(m).variables.DATASET_ID_PROFILE
    r = aep({ "stream", "-d", "DATASET_ID_PROFILE", "-i", PROFILES, "-m", PROFILE_MAPPING, table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("^aep: stream: created streaming connection %S+ and dataflow %S+ for dataset " .. dataset, r.stderr)
    assert.matches("accepted 25   rejected 0   skipped 0   failed 0", r.stdout, 1, true)
    assert.same({ connections = 2, sourceConnections = 2, targetConnections = 2, flows = 2 }, counts(listed()))
    r = aep({ "run", "teardown", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.same({ connections = 0, sourceConnections = 0, targetConnections = 0, flows = 0 }, counts(listed()))
  end)
end)

describe("aep run teardown and an aep stream that recorded nothing", function()
  it("deletes the 'aep stream <dataset id>' connection and dataflow of a dataset it deletes, and nothing else", function()
    local m = dir .. "/legacy.json"
    local base = { "--env", emu.env_file, "--manifest", m, "--run-name", "legacy" }
    local r = aep({ "run", "schemas", "datasets", "-q", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local vars = manifest(m).variables
    -- what an aep stream made before it recorded anything: named after the dataset
    local function make(dataset_id, name)
      local s, conn = api:post(FLOWS .. "/connections", { name = name,
        providerId = "521eee4d-8cbe-4906-bb48-fb6bd4450033", connectionSpec = { id = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", version = "1.0" },
        auth = { specName = "Streaming Connection", params = { sourceId = name, dataType = "xdm", name = name } } })
      assert.equal(201, s)
      local s2, sc = api:post(FLOWS .. "/sourceConnections", { name = name, baseConnectionId = conn.id, data = { format = "json" },
        connectionSpec = { id = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", version = "1.0" } })
      assert.equal(201, s2)
      local s3, tc = api:post(FLOWS .. "/targetConnections", { name = name, params = { dataSetId = dataset_id },
        data = { format = "parquet_xdm", schema = { id = vars.SCHEMA_ID_PROFILE, version = "application/vnd.adobe.xed-full+json;version=1.0" } },
        connectionSpec = { id = "c604ff05-7f1a-43c0-8e18-33bf874cb11c", version = "1.0" } })
      assert.equal(201, s3)
      local s4 = api:post(FLOWS .. "/flows", { name = name, flowSpec = { id = "d8a6f005-7eaf-4153-983e-e8574508b877", version = "1.0" },
        sourceConnectionIds = { sc.id }, targetConnectionIds = { tc.id } })
      assert.equal(201, s4)
    end
    make(vars.DATASET_ID_PROFILE, "aep stream " .. vars.DATASET_ID_PROFILE)
    -- someone else's dataflow into the same dataset is not teardown's to delete
    make(vars.DATASET_ID_PROFILE, "their own dataflow")
    local theirs = listed()
    assert.same({ connections = 2, sourceConnections = 2, targetConnections = 2, flows = 2 }, counts(theirs))

    r = aep({ "run", "teardown", table.unpack(base) })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("deleted   dataflow           aep stream " .. vars.DATASET_ID_PROFILE .. " (made by aep stream)", r.stdout, 1, true)
    assert.matches("done: 0 created, 0 found, 16 deleted", r.stdout, 1, true) -- 12 of the workflow, 4 of the stream
    local left = listed()
    assert.same({ connections = 1, sourceConnections = 1, targetConnections = 1, flows = 1 }, counts(left))
    local s, b = api:get(FLOWS .. "/flows/" .. left.flows[1])
    assert.equal(200, s)
    assert.equal("their own dataflow", b.items[1].name)
  end)
end)
