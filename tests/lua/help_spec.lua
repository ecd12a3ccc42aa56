-- Help and usage output of every command: `aep help`, `aep help X` = `aep X --help`, examples,
-- the common flags spelled the same everywhere, usage errors (one line + the usage, exit 64),
-- the man page and the bash completion that reads them.
local run = require "tests.lua.support.run"
local cli = require "aep.cli"

-- Commands this project ships; others may appear (each is checked the same way).
local EXPECTED = { "config", "datasets", "emulator", "flows", "help", "init", "mapping-sets", "repl", "run", "schemas",
  "status", "stream", "validate", "version" }

local function commands()
  local r = run.aep({ "help" })
  assert.are.equal(0, r.status)
  local names = {}
  for name in r.stdout:gmatch("\n  ([a-z][a-z-]*)  ") do names[#names + 1] = name end
  return names, r.stdout
end

local function usage_of(name)
  local r = run.aep({ "help", name })
  assert.are.equal(0, r.status)
  assert.are.equal("", r.stderr)
  return r.stdout
end

describe("aep help", function()
  it("lists every command with a summary, the common flags and the exit codes", function()
    local names, text = commands()
    -- the summaries line up two spaces after the longest name
    local width = 0
    for _, n in ipairs(names) do width = math.max(width, #n) end
    for _, want in ipairs(EXPECTED) do
      assert.truthy(text:find("\n  " .. want:gsub("%p", "%%%0") .. string.rep(" ", width + 2 - #want) .. "%S"), "no summary for " .. want)
    end
    assert.truthy(#names >= #EXPECTED)
    assert.truthy(text:find("\n  validate" .. string.rep(" ", width - 6) ..
      "map and validate a file offline against a dataset's schema (nothing is sent)\n", 1, true))
    assert.truthy(text:find([[
Common flags (the same meaning in every command that takes them):
  -v, --verbose                HTTP trace and tracebacks (secrets redacted)
  -q, --quiet                  print only errors and the final result
  --env FILE                   environment file: Postman environment or JSON config (or an emulator's data dir)
  --json                       machine-readable output
Colour and progress lines appear only on a terminal, never when NO_COLOR is set.

Exit codes:
  0    success
  1    could not run (bad configuration, AEP error, I/O error); the message says why
  2    ran, but some records were rejected, failed or invalid (stream, validate, status),
       or profiles did not match (run lookup --verify)
  64   usage error: unknown flag or missing argument
  130  interrupted (Ctrl-C)
]], 1, true))
  end)

  it("answers an unknown command with exit 64", function()
    local r = run.aep({ "help", "frobnicate" })
    assert.are.equal("aep: unknown command 'frobnicate' (run 'aep help' for the list)\n", r.stderr)
    assert.are.equal("", r.stdout)
    assert.are.equal(64, r.status)
  end)

  it("writes a man page with every command, the common flags and the exit status", function()
    local r = run.aep({ "help", "--man" })
    assert.are.equal(0, r.status)
    for _, name in ipairs((commands())) do
      assert.truthy(r.stdout:find("\n.SS " .. name .. "\n.nf\nusage: aep " .. name, 1, true), name)
    end
    assert.truthy(r.stdout:find("\n.SH COMMON FLAGS\n.nf\n  -v, --verbose ", 1, true))
    assert.truthy(r.stdout:find("\n.SH EXIT STATUS\n.nf\n  0    success\n", 1, true))
    assert.truthy(r.stdout:find("\n.TP\nNO_COLOR\n", 1, true))
  end)
end)

describe("every command's usage", function()
  local names = commands()
  for _, name in ipairs(names) do
    describe(name, function()
      local text
      setup(function() text = usage_of(name) end)

      it("is the same through 'aep help " .. name .. "' and 'aep " .. name .. " --help'", function()
        local r = run.aep({ name, "--help" })
        assert.are.equal(0, r.status)
        assert.are.equal(text, r.stdout)
        assert.are.equal(text, run.aep({ name, "-h" }).stdout)
      end)

      it("has a synopsis, a description paragraph, flags and examples", function()
        assert.matches("^usage: aep " .. name:gsub("%-", "%%-") .. "[ \n]", text)
        local description = text:match("^.-\n\n(.-)\n\n")
        assert.truthy(description and #description > 80 and not description:match("^Flags:"), "no description paragraph")
        assert.truthy(text:find("\nFlags:\n  %-"), "no flags")
        assert.truthy(text:find("\nExamples:\n  aep " .. name, 1, true), "no examples")
        assert.matches("\n$", text)
        assert.falsy(text:find("\n\n\n", 1, true))
      end)

      it("spells the common flags as every other command does", function()
        for _, s in pairs(cli.common) do
          local line = cli.flags_help({ s })
          local long = "--" .. s[1] .. " "
          local at = text:find("\n  [^\n]*" .. long:gsub("%-", "%%-"))
          if at then
            assert.truthy(text:find("\n" .. line .. "\n", 1, true), name .. ": --" .. s[1] .. " differs from the common flag")
          end
        end
      end)

      it("answers an unknown flag with one line and the usage on stderr, exit 64", function()
        local r = run.aep({ name, "--no-such-flag" })
        assert.are.equal(64, r.status)
        assert.are.equal("", r.stdout)
        assert.are.equal("aep " .. name .. ": unknown flag '--no-such-flag'\n" .. text, r.stderr)
        r = run.aep({ name, "-Z" })
        assert.are.equal(64, r.status)
        assert.are.equal("aep " .. name .. ": unknown flag '-Z'\n" .. text, r.stderr)
      end)
    end)
  end
end)

describe("missing arguments", function()
  local cases = {
    { { "run" }, "which workflow? e.g. `aep run realtime-import` (--list shows them)" },
    { { "stream", "--dataset", "x" }, "missing --input FILE (or - for stdin)" },
    { { "validate", "--schema", "s.json" }, "missing --input FILE (or - for stdin)" },
    { { "validate", "--input", "in.jsonl" }, "missing --dataset ID or --schema FILE" },
    { { "validate", "--input", "in.jsonl", "--dataset", "d", "--schema", "s.json" }, "--dataset and --schema exclude each other" },
    { { "validate", "--input" }, "flag '--input' needs a value" },
    { { "emulator", "--port" }, "flag '--port' needs a value" },
    { { "emulator", "--port", "eighty" }, "flag '--port' needs an integer, got 'eighty'" },
    { { "repl", "--env" }, "flag '--env' needs a value" },
    { { "config", "--json=maybe" }, "flag '--json' takes no value" },
  }
  for _, c in ipairs(cases) do
    it("aep " .. table.concat(c[1], " "), function()
      local r = run.aep(c[1])
      assert.are.equal(64, r.status)
      assert.are.equal("aep " .. c[1][1] .. ": " .. c[2] .. "\n" .. usage_of(c[1][1]), r.stderr)
      assert.are.equal("", r.stdout)
    end)
  end
end)

describe("bash completion", function()
  local dir
  setup(function()
    dir = run.tmpdir()
    -- `aep` on the PATH is the binary under test
    assert(os.execute("ln -s " .. run.quote(run.bin) .. " " .. run.quote(dir .. "/aep")))
  end)
  teardown(function() os.execute("rm -rf " .. run.quote(dir)) end)

  local function complete(...)
    local words = { "aep", ... }
    local quoted = {}
    for i, w in ipairs(words) do quoted[i] = run.quote(w) end
    local script = "source share/aep.bash-completion; COMP_WORDS=(" .. table.concat(quoted, " ") .. "); " ..
      "COMP_CWORD=" .. (#words - 1) .. "; _aep; printf '%s\\n' \"${COMPREPLY[@]}\""
    local r = run.cmd({ "bash", "-c", script }, { env = { PATH = dir .. ":/usr/bin:/bin" } })
    assert.are.equal(0, r.status, r.stderr)
    local out = {}
    for l in r.stdout:gmatch("[^\n]+") do out[#out + 1] = l end
    table.sort(out)
    return out
  end

  it("completes commands and each command's flags", function()
    assert.are.same({ "validate" }, complete("va"))
    assert.are.same({ "repl", "run" }, complete("r"))
    assert.are.same({ "--dataset" }, complete("validate", "--da"))
    assert.are.same({ "--schema", "--scopes" }, complete("validate", "--sc"))
    assert.are.same({ "--json" }, complete("config", "--js"))
    assert.are.same({ "help" }, complete("help", "he"))
  end)
end)
