-- The progress lines: term.progress (commands, the REPL) and aep.stream.progress (`aep stream`),
-- both drawn by term.line: exact text on a terminal (redrawn in place, cleared at the end) and
-- off one (a plain line per interval), with a scripted clock.
local term = require "aep.term"
local sprogress = require "aep.stream.progress"

local function recorder()
  local out = {}
  return out, function(s) out[#out + 1] = s end
end

describe("term.progress", function()
  it("draws label, bar, text and ETA in place on a terminal, at most once per interval, and clears", function()
    local t = 0
    local out, write = recorder()
    local p = term.progress { label = "aep validate", total = 200, tty = true, out = write, now = function() return t end }
    p:update(10, "ignored: before the interval")
    t = 2
    p:update(50, "50 records")
    t = 2.1
    p:update(60, "too soon")
    p:finish()
    p:finish()
    assert.are.same({ "\r\27[Kaep validate  25% [======                  ]  50 records  ETA 0:06", "\r\27[K" }, out)
  end)

  it("shows a spinner and the elapsed time without a total, and plain lines off a terminal", function()
    local t = 0
    local out, write = recorder()
    local p = term.progress { label = "GET /x", tty = true, out = write, now = function() return t end, delay = 0.5 }
    t = 0.6
    p:update(nil)
    t = 0.9
    p:update(nil)
    assert.are.same({ "\r\27[KGET /x | 0:01", "\r\27[KGET /x / 0:01" }, out)
    local plain, pwrite = recorder()
    local q = term.progress { label = "aep validate", total = 4, tty = false, out = pwrite, now = function() return t end }
    t = 20
    q:update(1, "1 records")
    q:finish()
    assert.are.same({ "aep validate: 1 records  (25%)  ETA 0:57\n" }, plain)
  end)
end)

describe("aep.stream.progress", function()
  local st = { read = 1500, accepted = 1400, rejected = 90, failed = 10, skipped = 0,
               bytes = 500, total_bytes = 1000, settled = 1500 }

  it("draws the counts with a bar on a terminal", function()
    local t = 0
    local out, write = recorder()
    local p = sprogress.new { tty = true, out = write, now = function() return t end }
    t = 3
    p:update(st)
    p:finish()
    assert.are.same({ "\r\27[K 50% [============            ] 1,500 records  500/s  accepted 1,400  rejected 90  failed 10  ETA 0:03",
                      "\r\27[K" }, out)
  end)

  it("writes one plain line per interval off a terminal, and nothing when quiet", function()
    local t = 0
    local out, write = recorder()
    local p = sprogress.new { tty = false, interval = 5, out = write, now = function() return t end }
    t = 5
    p:update(st)
    t = 6
    p:update(st)
    p:update(st, true)
    assert.are.same({
      "aep stream: 1,500 records  300/s  accepted 1,400  rejected 90  failed 10  (50% of the input)  ETA 0:05\n",
      "aep stream: 1,500 records  250/s  accepted 1,400  rejected 90  failed 10  (50% of the input)  ETA 0:06\n",
    }, out)
    local quiet, qwrite = recorder()
    local q = sprogress.new { quiet = true, out = qwrite, now = function() return t end }
    q:update(st, true)
    q:finish()
    assert.are.same({}, quiet)
    assert.are.equal("1,234,567", sprogress.count(1234567))
    assert.are.equal("1:02:03", term.duration(3723))
  end)
end)
