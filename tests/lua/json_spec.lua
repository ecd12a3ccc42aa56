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

  -- cjson 2.1.0 alone writes 14 significant digits (1234567890123456 -> 1.2345678901235e+15) and
  -- reads every number as a double.
  describe("numbers", function()
    local cases = {
      { 2 ^ 53, "9007199254740992" }, { math.tointeger(2 ^ 53) + 1, "9007199254740993" },
      { math.maxinteger, "9223372036854775807" }, { math.mininteger, "-9223372036854775808" },
      { 1234567890123456, "1234567890123456" }, { 123456789012345, "123456789012345" },
      { 0, "0" }, { -7, "-7" }, { 0.1, "0.1" }, { math.pi, "3.141592653589793" },
      { 1 / 3, "0.3333333333333333" }, { 1e308, "1e+308" }, { 5e-324, "4.9406564584125e-324" },
      { -0.0, "-0" }, { 1.5, "1.5" }, { 2.5e-10, "2.5e-10" }, { 0.1 + 0.2, "0.30000000000000004" },
    }

    it("are written exactly: integers with all their digits, doubles so they read back the same", function()
      for _, c in ipairs(cases) do
        assert.are.equal("[" .. c[2] .. "]", json.encode({ c[1] }))
        assert.are.equal(c[2], json.encode(c[1]))
        assert.are.equal('{"n":' .. c[2] .. ',"e":[]}', json.encode({ n = c[1], e = json.array() }):gsub('^{"e":%[%],"n":(.-)}$', '{"n":%1,"e":[]}'))
      end
      assert.are.equal('{\n  "n": 1234567890123456,\n  "x": 3.141592653589793\n}',
        json.encode_pretty({ n = 1234567890123456, x = math.pi }))
    end)

    it("read back as the same value: integers as Lua integers, doubles bit for bit", function()
      for _, c in ipairs(cases) do
        local back = json.decode("[" .. c[2] .. "]")[1]
        local want = c[1]
        if math.type(want) == "float" and math.tointeger(want) and not (want == 0 and 1 / want < 0) then
          want = math.tointeger(want)
        end
        assert.are.equal(math.type(want), math.type(back), c[2])
        assert.is_true(back == want, c[2])
        if want == 0 then assert.are.equal(1 / want, 1 / back, c[2]) end -- the sign of zero
      end
      local doc = json.decode('{"id": 9223372036854775807, "big": [9007199254740993], "s": "12345678901234567890", "f": 1.0}')
      assert.are.same({ "integer", 9223372036854775807, "integer", 9007199254740993, "12345678901234567890", "integer" },
        { math.type(doc.id), doc.id, math.type(doc.big[1]), doc.big[1], doc.s, math.type(doc.f) })
      assert.are.equal(json.null, json.decode('{"a": null, "n": 12345678901234567}').a)
    end)

    it("read long integers exactly wherever they stand, and leave digits in strings as text", function()
      assert.are.equal(9007199254740993, json.decode("9007199254740993"))
      assert.are.equal(-9223372036854775807, json.decode(" -9223372036854775807 "))
      local doc = json.decode('{"a":[[-1234567890123456789,{"b":9007199254740993}]],' ..
        '"s":"x 9007199254740993 \\" 1234567890123456789","f":1234567890.123456789,' ..
        '"e":12345678901234567e2,"over":92233720368547758070}')
      assert.are.same({ -1234567890123456789, "integer", 9007199254740993, "x 9007199254740993 \" 1234567890123456789" },
        { doc.a[1][1], math.type(doc.a[1][1]), doc.a[1][2].b, doc.s })
      assert.are.same({ "float", 1234567890.123456789, "integer", math.tointeger(12345678901234567e2) },
        { math.type(doc.f), doc.f, math.type(doc.e), doc.e })
      -- beyond 2^63-1 an integer can only be a double, as in any JSON reader
      assert.are.same({ "float", 9.2233720368547758e19 }, { math.type(doc.over), doc.over })
    end)

    it("leave strings that look like the placeholder alone", function()
      assert.are.equal('["\\u0000aep-number\\u00001"]', json.encode({ "\0aep-number\0001" }))
    end)
  end)
end)
