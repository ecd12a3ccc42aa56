-- aep.jsonsplit: the batch scanner the emulator's DCS batch endpoint decodes through. What it
-- hands out must decode to exactly what decoding the whole text gives (checked here against
-- cjson on fixed cases and on seeded random corruptions of a batch); anything else must be nil.
local jsonsplit = require "aep.jsonsplit"
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local PATH = { "messages", "body", "xdmEntity" }

local function split(text)
  return jsonsplit.split(text, table.unpack(PATH))
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- The split, put back together: the messages it stands for | nil (some piece does not decode:
-- the emulator then decodes the whole text) | false, why (it disagrees with the whole decode).
local function reassemble(text)
  local templates, index, values = split(text)
  if not templates then return nil end
  local decoded = {}
  for k, t in ipairs(templates) do
    decoded[k] = cjson_safe.decode(t)
    if decoded[k] == nil then return nil end
  end
  local messages = {}
  for i, k in ipairs(index) do
    local msg = cjson_safe.decode(templates[k]) -- a fresh copy: the value goes into it
    if values[i] then
      local v = cjson_safe.decode(values[i])
      if v == nil then return nil end
      if type(v) ~= "table" then return false, "value is not an object" end
      if msg.body.xdmEntity ~= cjson.null then return false, "template lacks the null" end
      msg.body.xdmEntity = v
    end
    messages[i] = msg
  end
  return messages
end

describe("aep.jsonsplit", function()
  local function msg(entity, extra)
    return '{"header":{"schemaRef":{"id":"https://ns.adobe.com/t/schemas/1"},"datasetId":"ds1"' ..
      (extra or "") .. '},"body":{"xdmMeta":{"schemaRef":{"id":"https://ns.adobe.com/t/schemas/1"}},' ..
      '"xdmEntity":' .. entity .. '}}'
  end
  local function batch(list) return '{"messages":[' .. table.concat(list, ",") .. "]}" end

  it("cuts each entity out and gives equal envelopes once", function()
    local text = batch { msg('{"a":1}'), msg('{"a":2,"b":[true,null,"x\\"}"]}'), msg('{"a":3}', ',"flowId":"f"') }
    local templates, index, values = split(text)
    assert.are.same({ msg("null"), msg("null", ',"flowId":"f"') }, templates)
    assert.are.same({ 1, 1, 2 }, index)
    assert.are.same({ '{"a":1}', '{"a":2,"b":[true,null,"x\\"}"]}', '{"a":3}' }, values)
  end)

  it("follows any layout: whitespace, key order, other members", function()
    local text = ' \n{ "messages" :\t[ { "body" : { "xdmEntity" : { "k" : [ 1 , 2.5e-3 ] } , "z" : {} } ,' ..
      ' "header" : [ ] } ] } \r\n'
    local templates, index, values = split(text)
    assert.are.same({ '{ "body" : { "xdmEntity" : null , "z" : {} } , "header" : [ ] }' }, templates)
    assert.are.same({ 1 }, index)
    assert.are.same({ '{ "k" : [ 1 , 2.5e-3 ] }' }, values)
  end)

  it("leaves an element whole when its entity cannot be cut out faithfully", function()
    local cases = {
      msg('"text"'),                                         -- not an object
      msg("null"),
      '{"body":{"xdmEntity":{"a":1},"xdmEntity":{"a":2}}}',  -- duplicate key: the decoder keeps the last
      '{"body":{"xdmEntity":{"a":1},"xdm\\u0045ntity":{"a":2}}}', -- an escaped key may be the same key
      '{"body":{"xdmEntity":{"a":1}},"body":{"xdmEntity":{"a":2}}}',
      '{"bod\\u0079":{"xdmEntity":{"a":1}}}',
      msg('{"n":1e999}'),                                    -- decodes to infinity: cjson cannot write it back
      msg('{"n":NaN}'), msg('{"n":0x10}'), msg('{"n":012}'), msg('{"n":+1}'), msg('{"n":1e+100}'),
      msg('{"n":' .. string.rep("9", 201) .. '}'),
      '{"header":{}}', '[1,2]', '7',
    }
    for _, m in ipairs(cases) do
      local templates, index, values = split(batch { m })
      assert.are.same({ { m }, { 1 }, { false } }, { templates, index, values }, m)
    end
  end)

  it("keeps plain numbers in the entity", function()
    local e = '{"n":[0,-0,1.5,-2.25e10,3E-7,1e+99,12345678901234567890]}'
    local _, _, values = split(batch { msg(e) })
    assert.are.same({ e }, values)
  end)

  it("answers nil for anything but a well-formed non-empty batch", function()
    local nils = {
      "", "[]", "{}", '{"messages":[]}', '{"messages":{}}', '{"messages":[1],"x":1}', '{"x":1,"messages":[1]}',
      '{"messages":[1]} x', '{"messages":[1]}}', '{"messages":[1,]}', '{"messages":[1 2]}', '{"messages":[,1]}',
      '{"messag\\u0065s":[1]}', '{"messages":["abc]}', '{"messages":[{"a":}]}', '{"messages":[{"a" 1}]}',
      '{"messages":[{"a":1,}]}', '{"messages":[{1:1}]}', '{"messages":[1]}\0', '{"messages":["a\0b"]}',
      '{"messages":[' .. string.rep("[", 300) .. string.rep("]", 300) .. "]}",
      '{"messages":[{"body":{"xdmEntity":' .. string.rep("[", 300) .. string.rep("]", 300) .. "}}]}",
    }
    for _, text in ipairs(nils) do
      assert.is_nil(split(text), text)
    end
  end)

  it("raises on misuse", function()
    assert.has_error(function() jsonsplit.split("{}", "messages") end, "jsonsplit.split: 1 to 8 path keys")
    assert.has_error(function() jsonsplit.split({}, "messages", "x") end)
  end)

  it("agrees with decoding the whole text, on seeded corruptions of a batch", function()
    local base = batch {
      msg('{"_t":{"id":"a@b.com","n":12000,"l":"Gold"},"person":{"name":{"f":"Jo","m":""}},"e":{"p":false,"q":null}}'),
      msg('{"_t":{"id":"c\\"@d.com","n":-1.5e3},"arr":[1,[2,{}],"x\\\\"]}'),
      msg('{"x":"{[,:]}"}', ',"flowId":"f"'),
    }
    local alphabet = { "{", "}", "[", "]", ",", ":", '"', "\\", " ", "\n", "0", "1", "e", "-", ".", "n", "u", "l",
                       "t", "a", "x", "\0", "\\u0041", "null", '"xdmEntity"', '"body"', '"messages"' }
    math.randomseed(20260301)
    local split_ok, checked = 0, 0
    for _ = 1, 4000 do
      local text = base
      for _ = 1, math.random(1, 3) do
        local at = math.random(1, #text)
        local op = math.random(1, 3)
        local piece = alphabet[math.random(1, #alphabet)]
        if op == 1 then text = text:sub(1, at - 1) .. text:sub(at + 1)
        elseif op == 2 then text = text:sub(1, at - 1) .. piece .. text:sub(at)
        else text = text:sub(1, at - 1) .. piece .. text:sub(at + 1) end
      end
      local got, why = reassemble(text)
      assert.are_not.equal(false, got, why)
      checked = checked + 1
      if got then
        split_ok = split_ok + 1
        local whole = cjson_safe.decode(text)
        assert.is_table(whole, text)
        assert.is_true(deep_equal(whole.messages, got), text)
      end
    end
    assert.are.equal(4000, checked)
    assert.is_true(split_ok > 100) -- the corruptions that keep a valid batch are exercised too
  end)
end)
