-- Waiting for AEP: growing intervals, and never past the bound (batches and Profile alike).
local batches = require "aep.batches"
local profile = require "aep.profile"
local poll = require "aep.poll"

local function fake_client()
  local c = { t = 0, sleeps = {} }
  c.now = function() return c.t end
  c.sleep = function(s) c.sleeps[#c.sleeps + 1] = s; c.t = c.t + s end
  return c
end

describe("aep.poll", function()
  it("returns the first truthy result, with growing sleeps in between", function()
    local c, calls = fake_client(), 0
    local v = poll.wait(c, function() calls = calls + 1; return calls == 4 and "done" end, { timeout = 100 })
    assert.are.equal("done", v)
    assert.are.same({ 1, 1.5, 2.25 }, c.sleeps)
  end)

  it("never sleeps past the bound, then raises TIMEOUT", function()
    local c = fake_client()
    local ok, err = pcall(poll.wait, c, function() return nil end, { timeout = 10, what = "the thing" })
    assert.is_false(ok)
    assert.are.equal("TIMEOUT", err.code)
    assert.are.equal("the thing not done after 10 s", err.message)
    assert.are.equal(10, c.t)
  end)
end)

describe("batches.wait", function()
  local real_status
  before_each(function() real_status = batches.status end)
  after_each(function() batches.status = real_status end)

  it("stops at the bound with the last status, instead of sleeping a whole interval past it", function()
    local c = fake_client()
    batches.status = function() return { status = "processing" } end
    local ok, err = pcall(batches.wait, c, "B1", { timeout = 20 })
    assert.is_false(ok)
    assert.are.equal("TIMEOUT", err.code)
    assert.are.equal("batch B1 still 'processing' after 20 s", err.message)
    assert.are.equal(20, c.t)
  end)

  it("returns the batch once it is final", function()
    local c, n = fake_client(), 0
    batches.status = function() n = n + 1; return { status = n < 3 and "loading" or "success", id = "B2" } end
    assert.are.equal("B2", batches.wait(c, "B2", { timeout = 60 }).id)
    assert.are.same({ 1, 1.5 }, c.sleeps)
  end)
end)

describe("profile.wait", function()
  it("says what was not visible when the bound passes", function()
    local c = fake_client()
    local ok, err = pcall(profile.wait, c, function() return false end, { timeout = 5, what = "profile a@b.c" })
    assert.is_false(ok)
    assert.are.equal("profile a@b.c not visible after 5 s", err.message)
    assert.are.equal(5, c.t)
  end)
end)
