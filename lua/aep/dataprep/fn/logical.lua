-- Logical operators (functions.md): decode and iif.
local values = require "aep.dataprep.values"

local F = {}

F.decode = { min = 1, max = math.huge, returns = "any", fn = function(key, ...)
  local n = select("#", ...)
  local opts = { ... }
  for i = 1, n - 1, 2 do
    if values.equal(key, opts[i]) or (key == nil and opts[i] == nil) then return opts[i + 1] end
  end
  if n % 2 == 1 then return opts[n] end -- the trailing default
  return nil
end }

F.iif = { min = 3, max = 3, returns = "any", fn = function(cond, a, b)
  if values.truthy(cond) then return a end
  return b
end }

return F
