-- fuzz_jsonsplit: aep.jsonsplit.split, the C scanner the emulator cuts every streamed batch
-- request body with ({"messages": [...]} -> envelope templates + xdmEntity texts).
-- Must hold: never raises; answers nil or three arrays of the documented shapes; and whenever the
-- whole text is valid JSON as well, what it cut decodes to exactly what the whole text decodes
-- to (each message = its template with body.xdmEntity put back).
local jsonsplit = require "aep.jsonsplit"
local json = require "aep.json"

local null = json.null

local function same(a, b, depth)
  if depth > 300 then return true end
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then
    if a ~= a and b ~= b then return true end -- NaN
    return a == b
  end
  for k, v in pairs(a) do if not same(v, b[k], depth + 1) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

return function(s)
  local templates, index, values = jsonsplit.split(s, "messages", "body", "xdmEntity")
  if templates == nil then
    assert(index == nil and values == nil)
    return
  end
  assert(type(templates) == "table" and type(index) == "table" and type(values) == "table")
  assert(#index >= 1 and #values == #index, "index and values differ in length")
  for i = 1, #index do
    local t = index[i]
    assert(math.type(t) == "integer" and templates[t] ~= nil, "index " .. i .. " names no template")
    assert(values[i] == false or (type(values[i]) == "string" and values[i]:sub(1, 1) == "{"), "value " .. i)
  end
  local whole = json.decode(s)
  if type(whole) ~= "table" or type(whole.messages) ~= "table" then return end
  assert(#whole.messages == #index, "the split found " .. #index .. " messages, the decoder " .. #whole.messages)
  for i, m in ipairs(whole.messages) do
    local t = json.decode(templates[index[i]])
    assert(t ~= nil, "template " .. index[i] .. " does not decode although the whole text does")
    if values[i] then
      local v = json.decode(values[i])
      assert(type(v) == "table", "xdmEntity " .. i .. " does not decode although the whole text does")
      assert(type(t) == "table" and type(t.body) == "table" and t.body.xdmEntity == null, "template " .. i .. " has no null entity")
      t.body.xdmEntity = v
    end
    assert(same(m, t, 0), "message " .. i .. " differs from its template and entity")
  end
end
