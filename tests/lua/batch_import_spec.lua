-- `aep run batch-import` with the user's own files, against the emulator: CSV, JSON Lines and JSON
-- array inputs read, mapped and validated as `aep stream` does it; bad rows rejected with their
-- row and field into a reject file that replays; only the files named imported; exact counts.
local runcmd = require "aep.cmd.run"
local log = require "aep.log"
local json = require "aep.json"
local emulator = require "tests.lua.support.emulator"
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"
local config = require "aep.config"
local platform = require "aep.platform"
local batches = require "aep.batches"
local batch_rows = require "aep.run.batch_rows"

local emu, tmp

local function aep_run(args)
  local out = {}
  local po, pe = log.set_sinks(function(s) out[#out + 1] = s end, function(s) out[#out + 1] = s end)
  local ok, code = pcall(runcmd.run, args)
  log.set_sinks(po, pe)
  log.set_quiet(false)
  log.set_verbose(false)
  if not ok then error(code, 0) end
  return code, table.concat(out)
end

local function write(name, text)
  local path = tmp .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

local function args(extra)
  local a = { "--env", emu.env_file, "--sandbox", "bi", "--manifest", tmp .. "/bi.json", "--wait", "30" }
  for _, x in ipairs(extra) do a[#a + 1] = x end
  return a
end

-- The customers' export: their own column names; row 3 has no email (the mapping raises), row 5
-- a gender outside XDM's enum.
local CSV = table.concat({
  "email,first,last,level,points,gender",
  "ann@example.com,Ann,One,Gold,100,female",
  "bob@example.com,Bob,Two,Silver,200,male",
  ",Cy,Three,Gold,300,male",
  "dee@example.com,Dee,Four,Platinum,400,female",
  "eve@example.com,Eve,Five,Gold,500,robot",
  "fay@example.com,Fay,Six,Diamond,600,female",
}, "\n") .. "\n"

local MAPPING = [[
return function(r, ctx)
  if r.email == "" then error("the row has no email") end
  return {
    ["_" .. ctx.tenant] = { loyaltyID = r.email, loyaltyLevel = r.level, totalLoyaltyPoints = tonumber(r.points) },
    person = { name = { firstName = r.first, lastName = r.last }, gender = r.gender },
    personalEmail = { address = r.email },
  }
end
]]

setup(function()
  emu = emulator.start()
  tmp = run.tmpdir()
  emu.sandbox("bi")
  local code, out = aep_run(args({ "auth", "schemas", "datasets" }))
  assert(code == 0, out)
end)
teardown(function()
  emu.cleanup()
  os.execute("rm -rf " .. run.quote(tmp))
end)

describe("aep run batch-import --profiles FILE", function()
  local csv_path, map_path, rejects

  it("imports a CSV through a mapping, rejecting the two bad rows with their row and field", function()
    csv_path = write("customers.csv", CSV)
    map_path = write("customers.lua", MAPPING)
    rejects = tmp .. "/rejects.jsonl"
    local code, out = aep_run(args({ "batch-import", "--profiles", csv_path, "--mapping", map_path,
                                     "--reject-file", rejects }))
    assert.are.equal(2, code, out)
    assert.truthy(out:find("rejected%s+row 3%s+%(line 4%) mapping error: [^\n]*the row has no email"), out)
    assert.truthy(out:find("rejected%s+row 5%s+%(line 6%) #/person/gender: [^\n]*robot"), out)
    local _, n = out:gsub("rejected%s+row", "")
    assert.are.equal(2, n, out)
    assert.truthy(out:find("created%s+batch%s+customers%.json %(4 profiles%)"), out)
    assert.truthy(out:find("ok%s+batch status%s+success"), out)
    assert.truthy(out:find("rows%s+profiles%s+6 read: 4 uploaded, 2 rejected, 0 skipped, 4 ingested, 0 failed"), out)
    assert.truthy(out:find("done: 1 created, 0 found"), out)
    -- only the file named: the samples are not imported again
    assert.falsy(out:find("loyalty%-events"), out)
    assert.falsy(out:find("loyalty%-profiles"), out)
    assert.falsy(out:find("INGEST%-1201"), out)
    -- the reject file: aep stream's entries, with the input's positions
    local entries = {}
    for line in assert(files.read(rejects)):gmatch("[^\n]+") do entries[#entries + 1] = json.decode(line) end
    assert.are.equal(2, #entries)
    assert.are.same({ 1, 3, 4 }, { entries[1].aep_reject, entries[1].position, entries[1].line })
    assert.are.same({ 5, 6 }, { entries[2].position, entries[2].line })
    assert.are.equal("#/person/gender: robot is not a valid enum value", entries[2].reason)
    assert.are.equal("eve@example.com", entries[2].record.email)
  end)

  it("replays the reject file with a fixed mapping, keeping the rows' first positions", function()
    local fixed = write("fixed.lua", [[
return function(r, ctx)
  local email = r.email ~= "" and r.email or "cy@example.com"
  local gender = r.gender == "robot" and "not_specified" or r.gender
  return {
    ["_" .. ctx.tenant] = { loyaltyID = email, loyaltyLevel = r.level, totalLoyaltyPoints = tonumber(r.points) },
    person = { name = { firstName = r.first, lastName = r.last }, gender = gender },
    personalEmail = { address = email },
  }
end
]])
    local code, out = aep_run(args({ "batch-import", "--profiles", rejects, "--format", "rejects", "--mapping", fixed }))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("created%s+batch%s+rejects%.json %(2 profiles%)"), out)
    assert.truthy(out:find("rows%s+profiles%s+2 read: 2 uploaded, 0 rejected, 0 skipped, 2 ingested, 0 failed"), out)
  end)

  it("writes a reject file that aep stream replays", function()
    local m = json.decode(assert(files.read(tmp .. "/bi.json")))
    local ds = m.variables.DATASET_ID_PROFILE
    if not ds then
      for _, r in ipairs(m.resources) do if r.var == "DATASET_ID_PROFILE" then ds = r.id end end
    end
    local r = run.aep({ "stream", "--env", emu.env_file, "--sandbox", "bi", "--dataset", ds, "--input", rejects,
                        "--mapping", tmp .. "/fixed.lua" })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.truthy((r.stdout .. r.stderr):find("accepted 2   rejected 0   skipped 0   failed 0", 1, true), r.stdout .. r.stderr)
  end)

  it("reads JSON Lines and JSON array files in the samples' shape", function()
    local samples = files.json("data/AEP_loyalty_profiles.json")
    local lines = {}
    for i = 1, 3 do lines[i] = json.encode(samples[i]) end
    local jsonl = write("three.jsonl", table.concat(lines, "\n") .. "\n")
    local code, out = aep_run(args({ "batch-import", "--profiles", jsonl }))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("created%s+batch%s+three%.json %(3 profiles%)"), out)
    assert.truthy(out:find("rows%s+profiles%s+3 read: 3 uploaded, 0 rejected, 0 skipped, 3 ingested, 0 failed"), out)
    assert.truthy(out:find("done: 1 created, 0 found"), out)
    local arr = write("four.json", "\239\187\191[" .. table.concat(lines, ",\n") .. ",\n" .. json.encode(samples[4]) .. "]\n")
    code, out = aep_run(args({ "batch-import", "--profiles", arr }))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("created%s+batch%s+four%.json %(4 profiles%)"), out)
    assert.truthy(out:find("rows%s+profiles%s+4 read: 4 uploaded, 0 rejected, 0 skipped, 4 ingested, 0 failed"), out)
    assert.falsy(out:find("loyalty%-"), out)
    -- the same file again: found, not imported again
    code, out = aep_run(args({ "batch-import", "--profiles", arr }))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("found%s+batch%s+four%.json %(imported: success%)"), out)
    assert.truthy(out:find("done: 0 created, 1 found"), out)
  end)

  it("names the input row of each record the platform fails after completion, once", function()
    local cfg = config.load({ env_file = emu.env_file, flags = { sandbox = "bi" }, getenv = function() return nil end })
    local c = platform.new(cfg, { sleep = function() end })
    local m = json.decode(assert(files.read(tmp .. "/bi.json")))
    local ds = m.variables.DATASET_ID_PROFILE
    if not ds then
      for _, r in ipairs(m.resources) do if r.var == "DATASET_ID_PROFILE" then ds = r.id end end
    end
    local t = '"_' .. m.variables.TENANT_ID:gsub("^_", "") .. '":{"loyaltyID":"%s","loyaltyLevel":"Gold","totalLoyaltyPoints":1}'
    local function row(email, gender)
      return '{' .. t:format(email) .. ',"personalEmail":{"address":"' .. email .. '"},"person":{"gender":"' .. gender .. '"}}\n'
    end
    local body = row("g1@example.com", "male") .. row("b@example.com", "robot") .. row("g3@example.com", "female")
    local id = batches.create(c, ds, { format = "json", multiline = false })
    batches.upload(c, id, ds, "three.json", body)
    batches.complete(c, id)
    local batch = batches.wait(c, id, { timeout = 30, interval = 0.05 })
    assert.are.equal("failed", batch.status)
    local failures = batch_rows.failed(c, id, batch, { positions = { 10, 20, 30 } })
    assert.are.equal(1, #failures)
    assert.are.equal(20, failures[1].position)
    assert.are.equal("#/person/gender: INGEST-1201-400 robot is not a valid enum value", failures[1].reason)
  end)

  it("reads a ;-separated export detected from its header, and a tab-separated one with --delimiter tab", function()
    local map = write("customers.lua", MAPPING)
    for _, case in ipairs({ { "customers-semi.csv", ";", {} }, { "customers-tab.csv", "\t", { "--delimiter", "tab" } } }) do
      local path = write(case[1], (CSV:gsub(",", case[2])))
      local a = { "batch-import", "--profiles", path, "--mapping", map }
      for _, x in ipairs(case[3]) do a[#a + 1] = x end
      local code, out = aep_run(args(a))
      assert.are.equal(2, code, out)
      assert.truthy(out:find("rejected%s+row 3%s+%(line 4%) mapping error: [^\n]*the row has no email"), out)
      assert.truthy(out:find("rows%s+profiles%s+6 read: 4 uploaded, 2 rejected, 0 skipped, 4 ingested, 0 failed"), out)
    end
  end)

  it("stops at a mapping that calls os.exit, with that row rejected", function()
    local path = write("exit.jsonl", '{"a":1}\n{"a":2}\n')
    local map = write("exit.lua", 'return function(r) if r.a == 2 then os.exit(3) end return nil end')
    local rj = tmp .. "/exit-rejects.jsonl"
    local code, out = aep_run(args({ "batch-import", "--profiles", path, "--mapping", map, "--reject-file", rj }))
    assert.are.equal(1, code, out)
    assert.truthy(out:find("the mapping called os.exit(3) at row 2 (line 2)", 1, true), out)
    local entry = json.decode(assert(files.read(rj)))
    assert.are.same({ 2, "mapping called os.exit(3)" }, { entry.position, entry.reason })
  end)
end)
