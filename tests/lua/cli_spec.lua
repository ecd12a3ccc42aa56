-- The aep command line: lua-compatible script running, commands, errors and exit codes.
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"

local write = files.write

describe("aep command line", function()
  local dir
  setup(function() dir = run.tmpdir() end)
  teardown(function() os.execute("rm -rf " .. run.quote(dir)) end)

  it("runs -e code and exits 0", function()
    local r = run.aep({ "-e", "io.write(6 * 7)" })
    assert.are.equal("42", r.stdout)
    assert.are.equal("", r.stderr)
    assert.are.equal(0, r.status)
  end)

  it("passes script arguments in arg and ... as lua does", function()
    local script = dir .. "/args.lua"
    write(script, "io.write(arg[0], '|', #arg, '|', table.concat({...}, ','), '|', arg[-1] ~= nil and 'neg' or '')")
    local r = run.aep({ script, "a", "b c", "d" })
    assert.are.equal(script .. "|3|a,b c,d|neg", r.stdout)
    assert.are.equal(0, r.status)
  end)

  it("runs stdin as a script when stdin is not a terminal", function()
    local r = run.aep({}, { stdin = "io.write('from stdin')" })
    assert.are.equal("from stdin", r.stdout)
    assert.are.equal(0, r.status)
  end)

  it("prints a short error and exits 1", function()
    local r = run.aep({ "-e", "error('boom')" })
    assert.are.equal("aep: (command line):1: boom\n", r.stderr)
    assert.are.equal(1, r.status)
  end)

  it("adds the traceback under --verbose and AEP_DEBUG=1", function()
    local r = run.aep({ "--verbose", "-e", "error('boom')" })
    assert.matches("^aep: %(command line%):1: boom\nstack traceback:\n", r.stderr)
    assert.are.equal(1, r.status)
    r = run.aep({ "-e", "error('boom')" }, { env = { AEP_DEBUG = "1" } })
    assert.matches("stack traceback:", r.stderr)
  end)

  it("shows an error object through its __tostring", function()
    local r = run.aep({ "-e", "error(setmetatable({}, {__tostring = function() return 'custom failure' end}))" })
    assert.are.equal("aep: custom failure\n", r.stderr)
    assert.are.equal(1, r.status)
  end)

  it("stops a script on SIGINT with 'interrupted' and exit 130", function()
    -- SIGINT once the script says it runs, not after a fixed sleep: a slow start (valgrind, a
    -- loaded machine) must not race main() installing its handler.
    local spawn = require "tests.lua.support.spawn"
    local err = dir .. "/sigint.err"
    local child = spawn.spawn({ run.bin, "-e", "print('running') io.stdout:flush() while true do end" },
      "^running$", { stderr = err })
    child:kill("INT")
    local _, how, code = child:wait()
    local stderr = assert(files.read(err))
    -- "(command line):1: " comes first when the signal lands as io.stdout:flush returns
    assert.matches("^aep: [^\n]*interrupted\n$", stderr)
    assert.are.same({ "exit", 130 }, { how, code })
  end)

  it("-l requires a module into a global", function()
    local r = run.aep({ "-l", "aep.json", "-e", "io.write(json.encode(json.array()))" })
    assert.are.equal("[]", r.stdout)
  end)

  it("-v prints versions of aep, Lua, libcurl and OpenSSL", function()
    local r = run.aep({ "--version" })
    assert.matches("^aep %d+%.%d+%.%d+\nLua 5%.4%.%d+\nlibcurl %d+%.%d+%.%d+\nOpenSSL 3%.", r.stdout)
    assert.are.equal(0, r.status)
  end)

  it("rejects an unknown option with usage and exit 1", function()
    local r = run.aep({ "-Z" })
    assert.matches("^aep: unrecognized option '%-Z'\nusage: ", r.stderr)
    assert.are.equal(1, r.status)
  end)

  it("-E ignores AEP_LUA_PATH", function()
    local r = run.aep({ "-E", "-e", "io.write(package.path:find('/nonexistent/', 1, true) and 'used' or 'ignored')" },
      { env = { AEP_LUA_PATH = "/nonexistent/?.lua;;" } })
    assert.are.equal("ignored", r.stdout)
  end)

  it("lets a file on AEP_LUA_PATH override an embedded module without a rebuild", function()
    os.execute("mkdir -p " .. run.quote(dir .. "/aep/repl"))
    write(dir .. "/aep/repl/pretty.lua", "return { format = function() return 'overridden' end }")
    local r = run.aep({ "-e", "io.write(require('aep.repl.pretty').format({}))" },
      { env = { AEP_LUA_PATH = dir .. "/?.lua;;" } })
    assert.are.equal("overridden", r.stdout)
    r = run.aep({ "-e", "io.write(require('aep.repl.pretty').format({}))" })
    assert.are.equal("{}", r.stdout)
  end)

  it("serves embedded modules with lua/... chunknames from any directory", function()
    local r = run.aep({ "-e", "io.write(debug.getinfo(require('aep.json').encode, 'S').source)" }, { cwd = "/" })
    assert.are.equal("@lua/aep/json.lua", r.stdout)
  end)

  it("lists commands with 'aep help' and shows one command's usage", function()
    local r = run.aep({ "help" })
    assert.are.equal(0, r.status)
    assert.matches("\n  help +list the commands", r.stdout)
    assert.matches("\n  repl +interactive Lua session", r.stdout)
    assert.matches("Exit codes:\n  0 ", r.stdout)
    r = run.aep({ "help", "repl" })
    assert.matches("^usage: aep repl", r.stdout)
    r = run.aep({ "repl", "--help" })
    assert.matches("^usage: aep repl", r.stdout)
  end)

  it("rejects an unknown command and an unknown flag with exit 64", function()
    local r = run.aep({ "frobnicate" })
    assert.are.equal("aep: unknown command 'frobnicate' (run 'aep help' for the list)\n", r.stderr)
    assert.are.equal(64, r.status)
    r = run.aep({ "help", "--frob" })
    assert.matches("^aep help: unknown flag '%-%-frob'\nusage: aep help", r.stderr)
    assert.are.equal(64, r.status)
  end)
end)

describe("aep help --man", function()
  it("writes a man page holding every command's usage", function()
    local r = run.aep({ "help", "--man" })
    assert.are.equal(0, r.status)
    assert.matches("^%.TH AEP 1 ", r.stdout)
    assert.truthy(r.stdout:find("\n.SS help\n", 1, true))
    assert.truthy(r.stdout:find("\n.SS repl\n", 1, true))
    assert.truthy(r.stdout:find("\n.SH EXIT STATUS\n", 1, true))
  end)
end)
