-- Regression tests for findings of the hardening work (SECURITY.md) that no other spec covers.
local lines = require "aep.lines"

describe("hardening regressions", function()
  it("aep.lines refuses limits that would wrap around as sizes", function()
    -- a negative max_record used to become SIZE_MAX: no limit at all on a record's memory
    assert.has_error(function() lines.open("/dev/null", { max_record = -1 }) end,
      "bad argument #2 to 'open' (max_record must be at least 1)")
    assert.has_error(function() lines.open("/dev/null", { max_record = 0 }) end,
      "bad argument #2 to 'open' (max_record must be at least 1)")
    assert.has_error(function() lines.open("/dev/null", { buffer = -1 }) end,
      "bad argument #2 to 'open' (buffer must be between 0 and 1 GiB)")
    assert.has_error(function() lines.open("/dev/null", { buffer = math.maxinteger }) end,
      "bad argument #2 to 'open' (buffer must be between 0 and 1 GiB)")
    local r = assert(lines.open("/dev/null", { max_record = 1, buffer = 0 }))
    assert.is_nil(r:line())
    r:close()
  end)
end)
