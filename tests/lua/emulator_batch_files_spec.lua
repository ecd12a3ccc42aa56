-- The rows the emulator's batch ingestion reads from an uploaded file (aep.emulator.batch_files):
-- JSON arrays in any layout, JSON Lines, multi-line objects, corrupt files, gzip.
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"
local batch_files = require "aep.emulator.batch_files"

-- rows -> compact description: a decoded object's "n" field, or "ERR" for a corrupt row
local function shape(rows)
  local out = {}
  for i, r in ipairs(rows) do
    if r.err then out[i] = "ERR"
    elseif type(r.value) == "table" then out[i] = r.value.n or "table"
    else out[i] = tostring(r.value) end
  end
  return out
end

describe("emulator batch files", function()
  local dir, count
  setup(function() dir = run.tmpdir(); count = 0 end)
  teardown(function() os.execute("rm -rf " .. run.quote(dir)) end)

  local function file(text)
    count = count + 1
    return files.write(dir .. "/" .. count .. ".upload", text)
  end

  local function rows(text, multiline)
    return shape(batch_files.rows(file(text), multiline))
  end

  it("reads a JSON array in any layout, element by element", function()
    assert.are.same({ 1, 2, 3 }, rows('[{"n":1},{"n":2},{"n":3}]'))
    assert.are.same({ 1, 2 }, rows('  \n[\n  {\n    "n": 1,\n    "s": "a ] , \\" ["\n  },\n  {"n": 2}\n]\n'))
    assert.are.same({}, rows("[]"))
    assert.are.same({ "true", "table" }, rows('[true, [2]]')) -- not objects: batches.lua names them
  end)

  it("keeps a row with a bad value as a corrupt row and reads on", function()
    assert.are.same({ 1, "ERR", 3 }, rows('[{"n":1},\n{"n":tru},\n{"n":3}]'))
  end)

  it("reads a structurally broken one-per-line array line by line", function()
    -- the third row's brackets never close: by structure it would swallow the fourth
    assert.are.same({ 1, 2, "ERR", 4 }, rows('[{"n":1},\n{"n":2},\n{"person": {"name": ,\n{"n":4}]'))
  end)

  it("keeps the rows before a break when lines do not read more", function()
    -- a pretty-printed array broken near its end: its lines are fragments, the scanner's rows win
    assert.are.same({ 1, "ERR" }, rows('[\n  {\n    "n": 1\n  },\n  {\n    "n": [2\n  }\n]'))
  end)

  it("reads JSON Lines by default, blank lines skipped", function()
    assert.are.same({ 1, 2 }, rows('{"n":1}\n\n  \n{"n":2}\r\n'))
    assert.are.same({ 1, "ERR" }, rows('{"n":1}\n{"n":\n'))
  end)

  it("reads objects spanning lines only with isMultiLineJson", function()
    local pretty = '{\n  "n": 1\n}\n{\n  "n": 2,\n  "s": "}{"\n}\n'
    assert.are.same({ 1, 2 }, rows(pretty, true))
    assert.are.same({ "ERR", "ERR", "ERR", "ERR", "ERR", "ERR", "ERR" }, rows(pretty, false))
    -- one object per line reads as JSON Lines whatever the flag
    assert.are.same({ 1, 2 }, rows('{"n":1}\n{"n":2}\n', true))
  end)

  it("has no rows in an empty, blank or missing file", function()
    assert.are.same({}, rows(""))
    assert.are.same({}, rows(" \n\t\n"))
    assert.are.same({}, shape(batch_files.rows(dir .. "/missing.upload")))
  end)

  it("reads a gzip-compressed upload as its content", function()
    local path = file('[{"n":1},{"n":2}]')
    assert.is_true(os.execute("gzip -n -c " .. run.quote(path) .. " > " .. run.quote(path .. ".gz")))
    assert.are.same({ 1, 2 }, shape(batch_files.rows(path .. ".gz")))
  end)
end)
