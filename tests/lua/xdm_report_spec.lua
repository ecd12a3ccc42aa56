-- aep.xdm: AEP's report shapes for violations (everit's tree, the DCS 400 body), the pattern
-- engine and the small helpers, on the collection's schemas (the rest: xdm_spec.lua).

local xdm = require "aep.xdm"
local loyalty = require "tests.lua.support.xdm_loyalty"
local fixture, samples, loyalty_schemas = loyalty.fixture, loyalty.samples, loyalty.schemas


describe("aep.xdm", function()
  local profile = loyalty_schemas("exchangeinternal")

  describe("reports", function()
    local v = xdm.compile(profile)

    it("a single violation is the whole report", function()
      local _, list = v { _exchangeinternal = { loyaltyID = "not-an-email" } }
      local rep = xdm.report(list)
      assert.are.equal(1, #rep)
      assert.are.same({ schemaLocation = "#/properties/_exchangeinternal/properties/loyaltyID",
        pointerToViolation = "#/_exchangeinternal/loyaltyID", causingExceptions = {}, keyword = "format",
        message = "[not-an-email] is not a valid email address" }, rep[1])
    end)

    it("several violations are wrapped per object, as everit does", function()
      local _, list = v { workEmail = 1, _exchangeinternal = { loyaltyID = "x", loyaltyLevel = "Bronze" },
                          personalEmail = { primary = 1 } }
      local rep = xdm.report(list)
      assert.are.equal(1, #rep)
      local root = rep[1]
      assert.are.equal("#", root.pointerToViolation)
      assert.are.equal("#", root.schemaLocation)
      assert.are.equal("4 schema violations found", root.message)
      assert.is_nil(root.keyword)
      local by = {}
      for _, c in ipairs(root.causingExceptions) do by[c.pointerToViolation] = c end
      assert.are.equal("extraneous key [workEmail] is not permitted", by["#"].message)
      assert.are.equal("expected type: Boolean, found: Integer", by["#/personalEmail/primary"].message)
      local t = by["#/_exchangeinternal"]
      assert.are.equal("2 schema violations found", t.message)
      assert.are.equal("#/properties/_exchangeinternal", t.schemaLocation)
      assert.are.equal(2, #t.causingExceptions)
      assert.are.equal(4, #xdm.leaves(rep))
    end)

    it("builds DCS's 400 body", function()
      local _, list = v { a = 1, b = 2 }
      local body = xdm.streaming_400(list, "6aca7aa2", "7BF122A65C5B3FE40A494026@AdobeOrg")
      assert.are.equal("http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet", body.type)
      assert.are.equal(400, body.status)
      assert.are.equal("Invalid XDM Message Format", body.title)
      assert.are.equal("inletId: [6aca7aa2] imsOrgId: [7BF122A65C5B3FE40A494026@AdobeOrg] Message is invalid",
        body.report.message)
      local sv = body.report.cause._streamingValidation
      assert.are.equal("2 schema violations found", sv[1].message)
      assert.are.same(body, xdm.streaming_400("6aca7aa2", "7BF122A65C5B3FE40A494026@AdobeOrg", list))
      local ok, json = pcall(require, "aep.json")
      if ok then
        local text = json.encode(body)
        assert.is_truthy(text:find('"causingExceptions":[]', 1, true))
      end
    end)

    it("describes leaves for people", function()
      local _, list = v { person = { gender = "robot" } }
      assert.are.equal("#/person/gender: robot is not a valid enum value", xdm.describe(list))
    end)
  end)

  describe("pattern engine (java.util.regex subset, Matcher.find)", function()
    local regex = require "aep.xdm.regex"
    local function find(p, s) return assert(regex.compile(p)):find(s) end

    it("matches as Java does", function()
      assert.is_true(find("[0-1][0-9]-[0-9][0-9]", "on 12-31."))
      assert.is_false(find("^[A-Z]{2}$", "USA"))
      assert.is_true(find("^(\\([0-9]{3}\\))?[0-9]{3}-[0-9]{4}$", "(888)555-1212"))
      assert.is_false(find("^(\\([0-9]{3}\\))?[0-9]{3}-[0-9]{4}$", "(800)FLOWERS"))
      assert.is_true(find("abc$", "abc\n"))   -- $ before a final line terminator
      assert.is_false(find("a.c", "a\nc"))    -- . stops at line terminators
      assert.is_true(find("(?i)^abc$", "AbC"))
      assert.is_true(find("^\\p{Alpha}+\\s\\d+$", "abc 123"))
      assert.is_true(find("^[\\w.-]+@[^@]+$", "a.b-c@d"))
      assert.is_false(find("^a++a$", "aaa")) -- possessive
      assert.is_true(find("^(?=.*\\d)\\w+$", "abc1"))
      assert.is_true(find("^.$", "é"))        -- code points, not bytes
      local lang = xdm.standard["https://ns.adobe.com/xdm/context/environment"]
        .definitions.environment.properties._dc.properties.language.pattern
      assert.is_true(find(lang, "en-US"))
      assert.is_true(find(lang, "zh-min-nan"))
      assert.is_false(find(lang, "english!"))
    end)

    it("refuses what it does not support, and bounds backtracking", function()
      assert.is_true(find("(a)\\1", "xaa"))       -- back-references (PCRE2)
      assert.is_true(find("(?<=x)a", "xa"))        -- look-behind
      assert.is_false(find("^\\p{Alpha}+$", "abé")) -- Java's POSIX classes are US-ASCII
      local m, err = regex.compile("[a-z&&[^aeiou]]")
      assert.is_nil(m)
      assert.are.equal("character class union/intersection is not supported", err)
      m, err = regex.compile("\\p{javaLowerCase}")
      assert.is_nil(m)
      assert.are.equal("Java property \\p{javaLowerCase} is not supported", err)
      m, err = regex.compile("a(")
      assert.is_nil(m)
      assert.are.equal("missing closing parenthesis at offset 2", err)
      -- catastrophic backtracking hits PCRE2's match limit and lets the value pass
      assert.is_true(find("^(a+)+$", string.rep("a", 40) .. "!"))
    end)
  end)

  describe("helpers", function()
    it("checks Profile's size guardrails", function()
      assert.is_nil(xdm.entity_size_check(string.rep("x", 102400), "profile"))
      assert.are.equal("profile record of 102401 bytes exceeds Profile's 100 KB limit (102400 bytes)",
        xdm.entity_size_check(102401, "profile"))
      assert.is_nil(xdm.entity_size_check(10240, "experienceevent"))
      assert.are.equal("ExperienceEvent of 10241 bytes exceeds Profile's 10 KB limit (10240 bytes)",
        xdm.entity_size_check(string.rep("x", 10241), "https://ns.adobe.com/xdm/context/experienceevent"))
    end)

    it("reads JSON pointers", function()
      local e = { a = { b = { { c = 1 }, { c = 2 } } }, ["x/y"] = { ["~"] = true } }
      assert.are.equal(2, xdm.pointer_get(e, "/a/b/1/c"))
      assert.are.equal(true, xdm.pointer_get(e, "/x~1y/~0"))
      assert.are.equal(e, xdm.pointer_get(e, ""))
      assert.is_nil(xdm.pointer_get(e, "/a/zz/q"))
      assert.are.equal("tscrowby0@chicagotribune.com",
        xdm.pointer_get(samples("AEP_loyalty_profiles.json")[1], "/_exchangeinternal/loyaltyID"))
    end)
  end)
end)
