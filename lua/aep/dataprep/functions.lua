-- aep.dataprep.functions: the function library of functions.md, one file per family under
-- aep/dataprep/fn/. Each family returns { name = {fn = f, min = n, max = n, returns = type,
-- record = true when f takes the record first} }; names are case-sensitive, as in AEP.

local M = {}

local FAMILIES = { "strings", "regex", "hashing", "url", "datetime", "objects", "arrays", "logical",
  "aggregation", "conversions", "json", "special", "useragent" }

local registry = {}
for _, family in ipairs(FAMILIES) do
  for name, def in pairs(require("aep.dataprep.fn." .. family)) do
    if name:sub(1, 1) ~= "_" then -- _helpers are shared with other families, not functions
      def.min, def.max, def.family = def.min or 0, def.max or def.min or 0, family
      registry[name] = def
    end
  end
end

-- functions.lookup(name) -> definition | nil
function M.lookup(name) return registry[name] end

-- functions.call(name, ...) -> what the function returns (for functions built on others)
function M.call(name, ...) return registry[name].fn(...) end

-- functions.list() -> sorted names
function M.list()
  local names = {}
  for name in pairs(registry) do names[#names + 1] = name end
  table.sort(names)
  return names
end

return M
