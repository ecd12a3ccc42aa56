-- Aggregation (functions.md): min and max by natural ordering; nulls are skipped; one array
-- argument stands for its elements.
local values = require "aep.dataprep.values"
local arrays = require "aep.dataprep.fn.arrays"

local function pick(sign)
  return function(...)
    local list, n = arrays._items(...)
    local best
    for i = 1, n do
      local v = list[i]
      if v ~= nil and v ~= values.null and (best == nil or values.compare(v, best) * sign > 0) then best = v end
    end
    return best
  end
end

return {
  min = { min = 1, max = math.huge, returns = "any", fn = pick(-1) },
  max = { min = 1, max = math.huge, returns = "any", fn = pick(1) },
}
