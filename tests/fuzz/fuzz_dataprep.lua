-- fuzz_dataprep: the Data Prep expression language (lua/aep/dataprep: lexer, parser, compiler,
-- function library) on arbitrary expressions: mapping sets come from whoever calls the emulator's
-- Data Prep API or hands `aep` a mapping set file.
-- Input: an expression; after a NUL byte, optionally a mapping path (source and destination).
-- Must hold: compiling never raises and a refusal is a message naming the problem (never an
-- internal error); a compiled expression run on a sample record gives a value or a
-- transformation error raised by the engine (values.fail), never a Lua error; paths.parse gives
-- steps or a message.
local compile = require "aep.dataprep.compile"
local values = require "aep.dataprep.values"
local paths = require "aep.dataprep.paths"
local dataprep = require "aep.dataprep"
local json = require "aep.json"

fuzz.cover_lua() -- the code under test is Lua: make its lines count as coverage

local RECORD = json.decode([[{"a": "Ada", "n": 4, "f": 2.5, "t": true, "z": null, "arr": [1, "x", null, {"k": "v"}],
  "obj": {"b": {"c": "deep"}, "e": []}, "d": "2019-10-23 11:24:00", "First Name": "Grace", "url": "https://a.b:8080/p/q?x=1#h"}]])

return function(s)
  local expr, path = s:match("^(.-)%z(.*)$")
  if not expr then expr = s end

  local ok, fn, err = pcall(compile.expression, expr)
  assert(ok, "compile raised: " .. tostring(fn))
  if fn == nil then
    assert(type(err) == "string" and err ~= "", "a refusal without a message")
    assert(not err:find("^cannot compile the expression") and not err:find("^cannot parse the expression"),
      "internal error while compiling: " .. err)
  else
    local rok, v = pcall(fn, RECORD)
    if not rok then
      assert(values.is_error(v), "Lua error while evaluating: " .. tostring(v))
    else
      values.to_json(v) -- whatever it gives can be written out
    end
  end

  if path then
    local steps, perr = paths.parse(path)
    assert(steps or type(perr) == "string", "paths.parse gave neither steps nor a message")
    local c, errors = dataprep.compile({ mappings = { { sourceType = "ATTRIBUTE", source = path, destination = "out" },
      { sourceType = "EXPRESSION", source = expr, destination = path } } })
    if c then
      local entity = c:map(RECORD)
      assert(type(entity) == "table", "map gave no entity")
    else
      assert(type(errors) == "table" and #errors >= 1, "compile refused without errors")
    end
  end
end
