-- aep emulator: injected faults (--faults SPEC, GET/PUT /emulator/faults), every knob, per route
-- group, deterministic under --seed; and the request log (/emulator/requests).
package.path = "tests/lua/?.lua;" .. package.path
local http = require "aep.http"
local json = require "aep.json"
local emulator = require "support.emulator"
local fixtures = require "support.fixtures"
local run_ok, run = pcall(require, "support.run")
if not run_ok then run = require "tests.lua.support.run" end

local STATS = "/data/foundation/schemaregistry/stats"
local DATASETS = "/data/foundation/catalog/dataSets"
local XED = { Accept = "application/vnd.adobe.xed+json" }

describe("aep emulator faults", function()
  local emu, api

  setup(function()
    emu = emulator.start { "--seed", "7" }
    api = fixtures.client(emu)
  end)
  teardown(function() emu.cleanup() end)

  local function set(spec, seed)
    local s, b = api:put("/emulator/faults", { spec = spec, seed = seed }, { auth = false })
    assert.equals(200, s, b)
    return b
  end

  local function last_request()
    local _, b = api:get("/emulator/requests?since=0", { auth = false })
    return b.requests[#b.requests]
  end

  after_each(function() set("") end)

  it("GET /emulator/faults shows the spec, the rules and the seed", function()
    local b = set("streaming:429=0.1,503=0.05,drop_after=0.01,latency=0.02;*:500=0.01", 7)
    assert.equals("*:500=0.01;streaming:429=0.1,503=0.05,drop_after=0.01,latency=0.02", b.spec)
    local s, got = api:get("/emulator/faults", { auth = false })
    assert.equals(200, s)
    assert.equals(7, got.seed)
    assert.equals(0.1, got.rules.streaming["429"])
    assert.equals(0.01, got.rules["*"]["500"])
  end)

  it("refuses a bad spec with 400", function()
    local s, b = api:put("/emulator/faults", { spec = "streaming:429=2" }, { auth = false })
    assert.equals(400, s)
    assert.equals("fault probability 429=2 is not in [0, 1]", b.detail)
    s = api:put("/emulator/faults", { spec = "nowhere:500=1" }, { auth = false })
    assert.equals(400, s)
    s = api:put("/emulator/faults", "{bad", { auth = false })
    assert.equals(400, s)
  end)

  it("429 answers with Retry-After, only on the selected group", function()
    set("schemas:429=1,retry_after=3")
    local s, b, resp = api:get(STATS, { headers = XED })
    assert.equals(429, s)
    assert.equals("3", resp.headers["retry-after"])
    assert.equals(429, b.status)
    assert.equals("429", last_request().fault)
    s = api:get(DATASETS)
    assert.equals(200, s)
  end)

  it("500 and 503 (with Retry-After) answer without processing", function()
    set("catalog:500=1")
    local s = api:post(DATASETS, { name = "never" })
    assert.equals(500, s)
    set("catalog:503=1")
    local _, _, resp = api:post(DATASETS, { name = "never" })
    assert.equals(503, resp.status)
    assert.equals("1", resp.headers["retry-after"])
    set("")
    local _, list = api:get(DATASETS)
    for _, ds in pairs(list) do assert.not_equals("never", ds.name) end
  end)

  it("a path prefix overrides its group, the group overrides *", function()
    set("*:500=1;schemas:500=0;/data/foundation/schemaregistry/stats:503=1")
    assert.equals(503, (api:get(STATS, { headers = XED })))
    assert.equals(200, (api:get("/data/foundation/schemaregistry/tenant/schemas", { headers = XED })))
    assert.equals(500, (api:get(DATASETS)))
    -- /emulator/... is never faulted
    assert.equals(200, (api:get("/emulator/health", { auth = false })))
  end)

  it("latency answers late (logged as the delay added)", function()
    set("schemas:latency=1,delay=0.05")
    local s = api:get(STATS, { headers = XED })
    assert.equals(200, s)
    assert.equals(0.05, last_request().delay)
  end)

  it("drop_before closes the connection and processes nothing", function()
    set("catalog:drop_before=1")
    local resp, err = http.request { method = "POST", url = emu.url .. DATASETS,
      headers = api:headers { ["Content-Type"] = "application/json" }, body = json.encode { name = "dropped before" } }
    assert.is_nil(resp)
    assert.is_string(err)
    set("")
    local _, list = api:get(DATASETS)
    for _, ds in pairs(list) do assert.not_equals("dropped before", ds.name) end
    assert.equals("drop_before", (function()
      local _, b = api:get("/emulator/requests?path=" .. DATASETS .. "&method=POST", { auth = false })
      return b.requests[#b.requests].fault
    end)())
  end)

  it("drop_after processes (and commits) the request, then closes without an answer", function()
    set("catalog:drop_after=1")
    local resp = http.request { method = "POST", url = emu.url .. DATASETS,
      headers = api:headers { ["Content-Type"] = "application/json" }, body = json.encode { name = "dropped after" } }
    assert.is_nil(resp)
    set("")
    local _, list = api:get(DATASETS)
    local found = false
    for _, ds in pairs(list) do if ds.name == "dropped after" then found = true end end
    assert.is_true(found)
  end)

  it("expire_token ends the request's token (401 401013) and a new one works", function()
    set("schemas:expire_token=1")
    local s, b = api:get(STATS, { headers = XED })
    assert.equals(401, s)
    assert.same({ error_code = "401013", message = "Oauth token is not valid" }, b)
    set("")
    s = api:get(STATS, { headers = XED })
    assert.equals(401, s) -- the token stays dead
    api = fixtures.client(emu)
    s = api:get(STATS, { headers = XED })
    assert.equals(200, s)
  end)

  it("token_ttl makes new tokens die early although IMS announces 24 h", function()
    set("*:token_ttl=0")
    local fresh = fixtures.client(emu)
    local s = fresh:get(STATS, { headers = XED })
    assert.equals(401, s)
    set("")
    fresh = fixtures.client(emu)
    assert.equals(200, (fresh:get(STATS, { headers = XED })))
  end)

  it("is deterministic under a seed", function()
    local function sequence()
      local out = {}
      for i = 1, 24 do out[i] = api:get(DATASETS) end
      return table.concat(out, ",")
    end
    set("catalog:500=0.3,503=0.2", 42)
    local a = sequence()
    set("catalog:500=0.3,503=0.2", 42)
    local b = sequence()
    assert.equals(a, b)
    assert.matches("500", a)
    assert.matches("200", a)
    set("catalog:500=0.3,503=0.2", 43)
    assert.not_equals(a, sequence())
  end)

  it("logs requests with method, path, status, time and message count; ?since= pages", function()
    local _, before = api:get("/emulator/requests", { auth = false })
    api:get(DATASETS)
    api:get(STATS, { headers = XED })
    local s, b = api:get("/emulator/requests?since=" .. before.last, { auth = false })
    assert.equals(200, s)
    assert.equals(2, b.count)
    assert.equals("GET", b.requests[1].method)
    assert.equals(DATASETS, b.requests[1].path)
    assert.equals(200, b.requests[1].status)
    assert.equals(0, b.requests[1].messages)
    assert.is_number(b.requests[1].time)
    assert.equals(before.last + 1, b.requests[1].seq)
    s, b = api:get("/emulator/requests?since=" .. before.last .. "&path=/data/foundation/schemaregistry", { auth = false })
    assert.equals(1, b.count)
  end)

  it("--faults at start applies the same rules; a bad spec is a usage error", function()
    local other = emulator.start { "--seed", "1", "--faults", "catalog:500=1" }
    local o = fixtures.client(other)
    assert.equals(500, (o:get(DATASETS)))
    other.cleanup()
    local r = run.aep({ "emulator", "--port", "0", "--faults", "catalog:500=7" })
    assert.equals(64, r.status)
    assert.matches("%-%-faults: fault probability 500=7 is not in %[0, 1%]", r.stderr)
  end)
end)
