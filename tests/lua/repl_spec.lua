-- The REPL in a real terminal: editing, multi-line chunks, printing, errors, Ctrl-C, history.
local run = require "tests.lua.support.run"
local tmux = require "tests.lua.support.tmux"
local host = require "aep.host"

describe("aep repl on a terminal", function()
  local state, session
  before_each(function()
    state = run.tmpdir()
  end)
  after_each(function()
    if session then session:kill() end
    os.execute("rm -rf " .. run.quote(state))
  end)

  local function start()
    session = tmux.start(run.quote(run.bin), { env = { XDG_STATE_HOME = state, NO_COLOR = "1" } })
    session:wait_for("Ctrl-D to leave")
  end

  it("continues an incomplete chunk, prints results and survives errors", function()
    start()
    session:type("function double(x)\n")
    session:wait_for(">>")
    session:type("return x * 2\n")
    session:type("end\n")
    session:type("double(21)\n")
    session:wait_for("\n42")
    session:type("{b = 1, a = {true}}\n")
    local screen = session:wait_for("b = 1,")
    assert.truthy(screen:find("{\n  a = {\n    true,\n  },\n  b = 1,\n}", 1, true))
    session:type("error('oops')\n")
    session:wait_for("stdin:1: oops")
    session:type("1 + 1\n")
    screen = session:wait_for("\n2\n")
    assert.truthy(session:alive())
  end)

  it("cancels the typed line and a running call with Ctrl-C, and leaves with Ctrl-D", function()
    start()
    session:type("this line is cancelled")
    session:keys("C-c")
    session:type("while true do end\n")
    host.sleep(0.3)
    session:keys("C-c")
    session:wait_for("interrupted")
    session:type("'still here'\n")
    session:wait_for('"still here"')
    session:keys("C-d")
    local deadline = host.monotonic() + 5
    while session:alive() and host.monotonic() < deadline do host.sleep(0.05) end
    assert.is_false(session:alive())
  end)

  it("completes globals and fields with Tab", function()
    start()
    session:type("string.for")
    session:keys("Tab")
    session:wait_for("> string.format")
  end)

  it("keeps history across sessions under XDG_STATE_HOME", function()
    start()
    session:type("x_remembered = 7\n")
    session:keys("C-d")
    local deadline = host.monotonic() + 5
    while session:alive() and host.monotonic() < deadline do host.sleep(0.05) end
    local f = assert(io.open(state .. "/aep/history"))
    local text = f:read("a")
    f:close()
    assert.truthy(text:find("x_remembered = 7", 1, true))
    start()
    session:keys("Up")
    session:wait_for("> x_remembered = 7")
  end)
end)
