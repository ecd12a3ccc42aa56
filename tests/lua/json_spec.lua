local json = require "aep.json"

describe("aep.json", function()
  it("encodes marked empty arrays as [] and plain empty tables as {}", function()
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal("{}", json.encode({}))
    assert.are.equal('{"a":[]}', json.encode({ a = json.array() }))
    assert.are.equal('[[],{}]', json.encode({ json.array(), {} }))
  end)

  it("does not escape slashes", function()
    assert.are.equal('"https://ns.adobe.com/x"', json.encode("https://ns.adobe.com/x"))
    assert.are.equal('"a\\\\/b"', json.encode("a\\/b"))
  end)

  it("round-trips null", function()
    local v = json.decode('{"a":null}')
    assert.are.equal(json.null, v.a)
    assert.are.equal('{"a":null}', json.encode(v))
  end)

  it("pretty-prints with sorted keys", function()
    assert.are.equal('{\n  "a": 1,\n  "b": [\n    true,\n    "x"\n  ],\n  "c": {}\n}',
      json.encode_pretty({ c = {}, b = { true, "x" }, a = 1 }))
  end)

  it("says where a decode error is", function()
    local v, err = json.decode('{\n  "a": 1,\n  "b": x\n}')
    assert.is_nil(v)
    assert.are.equal("JSON error at line 3, column 8: Expected value but found invalid token", err)
  end)

  it("turns integral floats into integers on request", function()
    local v = json.integerize(json.decode('{"n": 12000, "f": 1.5, "l": [3]}'))
    assert.are.equal("12000", tostring(v.n))
    assert.are.equal(1.5, v.f)
    assert.are.equal(math.type(v.l[1]), "integer")
  end)
end)
