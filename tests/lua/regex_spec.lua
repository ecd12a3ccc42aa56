-- aep.regex: PCRE2 (UTF, Java line terminators) behind the XDM "pattern" keyword.
local regex = require "aep.regex"

local function find(p, s, flags) return assert(regex.compile(p, flags)):find(s) end

describe("aep.regex", function()
  it("reports a bad pattern with PCRE2's message and offset", function()
    local re, msg, code = regex.compile("a(")
    assert.is_nil(re)
    assert.are.equal("missing closing parenthesis at offset 2", msg)
    assert.are.equal("BAD_PATTERN", code)
    re, msg, code = regex.compile("[z-a]")
    assert.is_nil(re)
    assert.are.equal("range out of order in character class at offset 3", msg)
    assert.are.equal("BAD_PATTERN", code)
    re, msg, code = regex.compile("\255")
    assert.is_nil(re)
    assert.are.equal("BAD_PATTERN", code)
    assert.matches("UTF%-8 error", msg)
  end)

  it("searches anywhere unless anchored (Matcher.find)", function()
    assert.is_true(find("b", "abc"))
    assert.is_true(find("[0-1][0-9]-[0-9][0-9]", "on 12-31."))
    assert.is_false(find("^b", "abc"))
    assert.is_false(find("b$", "abc"))
    assert.is_true(find("^abc$", "abc"))
    assert.is_true(find("abc$", "abc\n"))   -- $ before a final line terminator
    assert.is_true(find("abc$", "abc\r\n")) -- Java's terminators include \r\n
    assert.is_false(find("\\Aabc\\z", "abc\n"))
    assert.is_true(find("^b$", "a\nb", "m"))
    assert.is_false(find("^b$", "a\nb"))
  end)

  it("handles classes, quantifiers, alternation and flags", function()
    assert.is_true(find("^[A-Z]{2}$", "US"))
    assert.is_false(find("^[A-Z]{2}$", "USA"))
    assert.is_true(find("^[^0-9]+$", "abc"))
    assert.is_true(find("^\\d{3}-\\w+\\s$", "123-ab_c "))
    assert.is_false(find("^\\d$", "\u{0663}"))          -- \d is ASCII, as in Java
    assert.is_true(find("^(cat|dog)s?$", "dogs"))
    assert.is_false(find("^(cat|dog)s?$", "cow"))
    assert.is_false(find("^a++a$", "aaa"))              -- possessive
    assert.is_true(find("^a+?$", "aaa"))                -- lazy
    assert.is_true(find("^abc$", "AbC", "i"))
    assert.is_true(find("(?i)^abc$", "AbC"))
    assert.is_false(find("a.c", "a\nc"))
    assert.is_false(find("a.c", "a\u{2028}c"))          -- Java line terminator
    assert.is_true(find("a.c", "a\nc", "s"))
    assert.is_true(find("^a b$", "ab", "x"))
    assert.has_error(function() regex.compile("a", "q") end)
  end)

  it("supports look-around and back-references", function()
    assert.is_true(find("^(?=.*\\d)\\w+$", "abc1"))
    assert.is_false(find("^(?=.*\\d)\\w+$", "abc"))
    assert.is_true(find("foo(?!bar)", "foobaz"))
    assert.is_false(find("foo(?!bar)", "foobar"))
    assert.is_true(find("(?<=\\$)\\d+", "cost $42"))
    assert.is_false(find("(?<!\\$)\\b\\d+", "cost $42"))
    assert.is_true(find("^(a|b)\\1$", "bb"))
    assert.is_false(find("^(a|b)\\1$", "ab"))
    assert.is_true(find("^(?<q>['\"]).*\\k<q>$", "'x'"))
  end)

  it("matches UTF-8 by code point and refuses invalid UTF-8 subjects", function()
    assert.is_true(find("^.$", "é"))
    assert.is_true(find("^\\x{1F600}$", "\u{1F600}"))
    assert.is_true(find("^[à-ü]+$", "éü"))
    local re = assert(regex.compile("a"))
    local ok, msg, code = re:find("a\255")
    assert.is_nil(ok)
    assert.are.equal("BAD_UTF8", code)
    assert.matches("^subject is not valid UTF%-8: .* at offset 1$", msg)
  end)

  it("gives up on catastrophic backtracking with MATCH_LIMIT", function()
    local re = assert(regex.compile("(a+)+$"))
    local ok, msg, code = re:find(string.rep("a", 40) .. "!")
    assert.is_nil(ok)
    assert.are.equal("MATCH_LIMIT", code)
    assert.are.equal("match limit exceeded", msg)
    assert.is_true(re:find(string.rep("a", 40)))
  end)

  it("closes idempotently and raises on use after close", function()
    local re = assert(regex.compile("a"))
    assert.are.equal("aep.regex.Regex (open)", tostring(re))
    re:close()
    re:close()
    assert.are.equal("aep.regex.Regex (closed)", tostring(re))
    assert.has_error(function() re:find("a") end, "regex: attempt to use a closed Regex")
    do
      local scoped <close> = assert(regex.compile("b"))
      assert.is_true(scoped:find("abc"))
    end
    assert.has_error(function() regex.compile() end)
    assert.has_error(function() assert(regex.compile("a")):find() end)
  end)
end)

describe("aep.xdm.regex (Java patterns over PCRE2)", function()
  local xregex = require "aep.xdm.regex"
  local function xfind(p, s) return assert(xregex.compile(p)):find(s) end

  it("translates Java-only syntax", function()
    assert.is_true(xfind("^\\p{Alpha}+\\s\\d+$", "abc 123"))
    assert.is_false(xfind("^\\p{Alpha}+$", "abé"))     -- US-ASCII, as Java's \p{Alpha}
    assert.is_true(xfind("^[\\p{Upper}_]+$", "A_B"))
    assert.is_true(xfind("^\\P{Digit}$", "x"))
    assert.is_true(xfind("^\\p{IsLatin}+$", "é"))
    assert.is_true(xfind("^\\u00e9$", "é"))
    assert.is_true(xfind("^\\Q\\p{Alpha}\\E$", "\\p{Alpha}"))
    assert.is_true(xfind("^[]a]+$", "]a"))
  end)

  it("refuses what PCRE2 would misread, and caches compiled patterns", function()
    assert.are.same({ nil, "character class union/intersection is not supported" },
      { xregex.compile("[a-z&&[^aeiou]]") })
    assert.are.same({ nil, "character class union/intersection is not supported" },
      { xregex.compile("[a[b]]") })
    assert.are.same({ nil, "Java property \\p{javaLowerCase} is not supported" },
      { xregex.compile("\\p{javaLowerCase}") })
    assert.are.same({ nil, "missing closing parenthesis at offset 2" }, { xregex.compile("a(") })
    assert.are.equal(xregex.compile("^x$"), xregex.compile("^x$"))
  end)

  it("repairs invalid UTF-8 as Java's decoder would and passes on the match limit", function()
    assert.is_true(xfind("^a\u{FFFD}$", "a\255"))
    assert.is_false(xfind("^b", "a\255"))
    assert.is_true(xfind("^(a+)+$", string.rep("a", 40) .. "!"))
  end)
end)
