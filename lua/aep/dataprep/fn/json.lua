-- JSON functions (functions.md): json_to_object, with aep.json (lua-cjson).
local json = require "aep.json"
local values = require "aep.dataprep.values"

local function nulls_out(v)
  if v == json.null then return nil end
  if type(v) == "table" then
    local arr = json.is_array(v)
    for k, x in pairs(v) do
      if x ~= json.null then v[k] = nulls_out(x) elseif not arr then v[k] = nil end
    end
    if arr then setmetatable(v, json.array_mt) end
  end
  return v
end

return {
  json_to_object = { min = 1, returns = "any", fn = function(s)
    if s == nil then return nil end
    if type(s) == "table" then return s end -- already an object (a map literal)
    local v, err = json.decode(values.to_string(s))
    if v == nil and err then values.fail("json_to_object: %s", err) end
    return nulls_out(json.integerize(v))
  end },
}
