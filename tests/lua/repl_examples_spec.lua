-- The REPL's examples run as shown, as a user would type them: the ones help() prints, the
-- README's REPL session (its output compared line by line) and the `> ` lines of `aep repl
-- --help`, each typed into `aep repl` from a directory outside the repository, with `aep` on the
-- PATH and a local emulator on its default data dir after `aep run realtime-import` (so
-- DATASET_ID_PROFILE and the sample datasets exist).
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"
local newcomer = require "tests.lua.support.newcomer"
local json = require "aep.json"

local function lines_of(text)
  local out = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

-- transcript(stdout) -> {{input = line, output = {lines}}, ...}: what each line typed printed
local function transcript(stdout)
  local out, cur = {}, nil
  for _, l in ipairs(lines_of(stdout)) do
    local typed = l:match("^> (.+)$")
    if typed then
      cur = { input = typed, output = {} }
      out[#out + 1] = cur
    elseif cur and not l:match("^>?%s*$") then
      cur.output[#cur.output + 1] = l
    end
  end
  return out
end

describe("the REPL's examples, typed into aep repl outside the repository", function()
  local user, cwd, env, profile_ds
  setup(function()
    user = newcomer.start()
    cwd, env = user.cwd, user.env
    profile_ds = newcomer.profile_dataset(user)
  end)
  teardown(function()
    if user then user.stop() end
  end)

  local function repl(typed)
    local r = run.cmd({ "timeout", "120", "aep", "repl" }, { env = env, cwd = cwd, stdin = table.concat(typed, "\n") .. "\n" })
    assert.are.equal(0, r.status, r.stderr)
    return r
  end

  -- every try printed a valid report on the profile dataset; nothing went to stderr
  local function assert_ran(typed, r)
    assert.are.equal("", r.stderr, table.concat(typed, "\n"))
    local t = transcript(r.stdout)
    assert.are.equal(#typed, #t, r.stdout)
    for i, step in ipairs(t) do
      assert.are.equal(typed[i], step.input)
      if step.input:match("^try%(") then
        assert.matches("^valid: profile entity of %d+ bytes for dataset " .. profile_ds .. "$", step.output[1] or "",
          nil, step.input .. "\n" .. r.stdout)
      elseif not step.input:match("^[%w_%.]+ = ") then
        -- an expression: it printed its value (not nil)
        assert.is_true(#step.output > 0 and step.output[1] ~= "nil", step.input .. "\n" .. r.stdout)
      end
    end
    return t
  end

  it("help() prints examples that run as shown", function()
    local r = repl({ "help()" })
    assert.are.equal("", r.stderr)
    local block = r.stdout:match("\nExamples:\n(.-)\nTab completes")
    assert(block, r.stdout)
    local typed = {}
    for l in block:gmatch("[^\n]+") do typed[#typed + 1] = (l:gsub("^%s+", "")) end
    assert.are.same(require("aep.repl.session").EXAMPLES, typed)
    local t = assert_ran(typed, repl(typed))
    -- the tenant of the org, and the events dataset's id, as `aep datasets` lists them
    assert.are.same({ '"exchangeinternal"' }, t[1].output)
    local events_ds
    for _, d in ipairs(json.decode(run.aep({ "datasets", "--json" }, { env = env, cwd = cwd }).stdout)) do
      if d.name == "aep Loyalty Events" then events_ds = d.id end
    end
    assert.are.same({ '"' .. events_ds .. '"' }, t[5].output)
  end)

  it("the README's REPL session prints what the README shows", function()
    local readme = files.read("README.md")
    local section = readme:match("\n### The REPL: `aep repl`\n(.-)\n###? ")
    local block = section and section:match("\n```\n(.-)\n```")
    assert(block, "no REPL session block in the README")
    local typed, want = {}, {}
    for _, l in ipairs(lines_of(block)) do
      local cmd = l:match("^%$ (.*)$")
      if cmd then
        if cmd ~= "aep repl" then
          local r = run.cmd({ "bash", "-c", cmd }, { env = env, cwd = cwd })
          assert.are.equal(0, r.status, cmd .. "\n" .. r.stderr)
        end
      else
        local line = l:match("^> (.*)$")
        if line then typed[#typed + 1] = line; want[#want + 1] = { input = line, output = {} }
        else
          -- the README's ids are an example run's: this emulator's dataset has another
          local out = want[#want].output
          out[#out + 1] = (l:gsub("%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x", profile_ds))
        end
      end
    end
    assert.is_true(#typed >= 3)
    local r = repl(typed)
    assert.are.equal("", r.stderr)
    assert.are.equal(json.encode(want), json.encode(transcript(r.stdout)))
  end)

  it("aep repl --help's lines for the REPL run as shown", function()
    local typed = {}
    for l in run.aep({ "repl", "--help" }).stdout:gmatch("[^\n]+") do
      local line = l:match("^%s+> (.*)$")
      if line then typed[#typed + 1] = line end
    end
    assert.is_true(#typed >= 2)
    local r = repl(typed)
    assert_ran(typed, r)
  end)

  it("names the fix when try is given no dataset, or one that does not exist", function()
    local r = repl({
      'r = records("data/AEP_loyalty_profiles.json")[1]',
      'try("mappings/loyalty_profile.lua", r)',
      'try("mappings/loyalty_profile.lua", r, DATASET_ID_PROFILE)',
      'try("mappings/loyalty_profile.lua", r, "Loyalty Profiles")',
      'client:batches{dataset = "Loyalty Profiles"}',
      'client:failed_for("Loyalty Profiles", function() return true end)',
    })
    local which = "try: which dataset? give its id, its name or a run-manifest variable: " ..
      "try(mapping, record, \"DATASET_ID_PROFILE\") (it is remembered for the next try)\n"
    local not_found = "dataset 'Loyalty Profiles' not found (give its id or its name); close matches: aep Loyalty Profiles\n"
    assert.are.equal(which .. which .. not_found .. not_found .. not_found, r.stderr)
  end)

  it("reload takes a dataset by any of its names", function()
    local r = repl({
      'm = reload "mappings/loyalty_profile.lua"',
      'try(m, records("data/AEP_loyalty_profiles.json")[1], "DATASET_ID_PROFILE")',
      'reload "aep Loyalty Profiles"',
      'reload "Loyalty Profiles"',
    })
    assert.are.equal("reload: 'Loyalty Profiles' is neither a mapping file, a module nor a dataset (dataset " ..
      "'Loyalty Profiles' not found (give its id or its name); close matches: aep Loyalty Profiles)\n", r.stderr)
    local t = transcript(r.stdout)
    assert.are.same({ '"the schema of dataset ' .. profile_ds .. ' will be fetched again on the next try"' }, t[3].output)
  end)

  it("the client's methods name a dataset as try does", function()
    -- every sample record is valid: none of the profile dataset's failed records matches
    local r = repl({ '#client:failed_for("DATASET_ID_PROFILE", function() return true end)',
                     '#client:failed_for("aep Loyalty Profiles", function() return true end)' })
    assert.are.equal("", r.stderr)
    local t = transcript(r.stdout)
    assert.are.same({ "0" }, t[1].output)
    assert.are.same({ "0" }, t[2].output)
  end)
end)
