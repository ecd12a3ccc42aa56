-- The REPL session in a real terminal (tmux), against a started emulator holding the collection's
-- loyalty schemas: the library at hand, Tab completion of aep.* fields, a multi-line function,
-- printing, errors that leave the REPL running, help, try on a good and a bad record with the
-- exact violations, reload, a slow call cancelled with Ctrl-C, history in a second session.
-- (tests/lua/repl_spec.lua covers the bare REPL: editing, Ctrl-C on a line, history file.)
local run = require "tests.lua.support.run"
local tmux = require "tests.lua.support.tmux"
local fixtures = require "tests.lua.support.fixtures"
local files = require "tests.lua.support.files"
local host = require "aep.host"
local cjson = require "cjson"

local function repo_root()
  local p = assert(io.popen("pwd"))
  local d = p:read("l")
  p:close()
  return d
end

local write = files.write

describe("aep repl session on a terminal", function()
  local emu, api, ids, state, dir, session, T
  local root = repo_root()

  setup(function()
    emu, api, ids = fixtures.start()
    T = "_" .. ids.tenant
    state = run.tmpdir()
    dir = run.tmpdir()
  end)

  teardown(function()
    if session then session:kill() end
    if emu then emu.cleanup() end
    os.execute("rm -rf " .. run.quote(state) .. " " .. run.quote(dir))
  end)

  local function start()
    if session then session:kill() end
    local env = { XDG_STATE_HOME = state, NO_COLOR = "1" }
    -- the tmux server may have been started with another environment: say what the REPL gets
    local lua_path = os.getenv("AEP_LUA_PATH")
    if lua_path then env.AEP_LUA_PATH = lua_path end
    local line = (lua_path and "" or "unset AEP_LUA_PATH; ") .. "cd " .. run.quote(root) .. " && exec " ..
      run.quote(run.bin) .. " repl --env " .. run.quote(emu.env_file)
    session = tmux.start("sh -c " .. run.quote(line), { env = env, width = 160, height = 50 })
    session:wait_for("Ctrl-D to leave")
  end

  -- clear the screen (readline's C-l) and wait until only the prompt is left
  local function clear()
    session:keys("C-l")
    local deadline = host.monotonic() + 10
    while session:screen() ~= ">" do
      assert(host.monotonic() < deadline, "the screen did not clear:\n" .. session:screen())
      host.sleep(0.05)
    end
  end

  -- type a line on a clean screen
  local function enter(text)
    clear()
    session:type(text .. "\n")
  end

  local function leave()
    session:keys("C-l")
    session:keys("C-d")
    local deadline = host.monotonic() + 5
    while session:alive() and host.monotonic() < deadline do host.sleep(0.05) end
    assert.is_false(session:alive())
    session = nil
  end

  -- the first sample profile with another loyalty id and level, mapped as the mapping does
  local function mapped_size(email, level)
    local rec = files.json("data/AEP_loyalty_profiles.json")[1]
    local loyalty = rec._exchangeinternal
    loyalty.loyaltyID = email or loyalty.loyaltyID
    loyalty.loyaltyLevel = level or loyalty.loyaltyLevel
    rec._exchangeinternal, rec[T] = nil, loyalty
    return #cjson.encode(rec)
  end

  local good_try

  it("has the library, a client, help and try at hand", function()
    start()
    session:wait_for("client: " .. emu.url .. ", org " .. ids.org .. ", sandbox prod (authenticates on first use)")

    -- completion of aep.* fields: a module, then one of its functions
    clear()
    session:type("aep.sch")
    session:keys("Tab")
    session:wait_for("> aep.schemas")
    session:type(".tenant_")
    session:keys("Tab")
    session:wait_for("> aep.schemas.tenant_id")
    session:type("(client)\n")
    session:wait_for('\n"' .. ids.tenant .. '"\n')

    -- a multi-line function definition, then an expression printed
    enter("function member(email, level)")
    session:wait_for("\n>>")
    session:type('local r = records("data/AEP_loyalty_profiles.json", 1)[1]\n')
    session:type("r._exchangeinternal.loyaltyID, r._exchangeinternal.loyaltyLevel = email, level\n")
    session:type("return r\n")
    session:type("end\n")
    enter('member("a@example.com", "Gold")._exchangeinternal')
    session:wait_for('{\n  loyaltyID = "a@example.com",\n  loyaltyLevel = "Gold",\n  totalLoyaltyPoints = 241450.0,\n}')

    -- help(f): the signature comment of the function
    enter("help(aep.schemas.tenant_id)")
    session:wait_for("schemas.tenant_id(c) -> tenant id without leading underscore\n  (")

    -- an error, and the REPL goes on
    enter('try("mappings/loyalty_profile.lua", 42, "' .. ids.profile_dataset .. '")')
    session:wait_for("try: the record must be a table or JSON text (got number)\n>")
    enter("6 * 7")
    session:wait_for("\n42\n")

    -- try on a good record, then on a bad one (the dataset is remembered)
    enter('try("mappings/loyalty_profile.lua", member("a@example.com", "Gold"), "' .. ids.profile_dataset .. '")')
    session:wait_for(string.format("\nvalid: profile entity of %d bytes for dataset %s\n>",
      mapped_size("a@example.com", "Gold"), ids.profile_dataset))
    enter('r = try("mappings/loyalty_profile.lua", member("not-an-email", "Bronze"))')
    enter("r")
    session:wait_for("> r\ninvalid: 2 problems for dataset " .. ids.profile_dataset .. "\n" ..
      "  #/" .. T .. "/loyaltyID: [not-an-email] is not a valid email address\n" ..
      "  #/" .. T .. "/loyaltyLevel: Bronze is not a valid enum value\n>")
    enter("r.ok, #r.violations, r.violations[1].keyword")
    session:wait_for("\nfalse   2       \"format\"\n")  -- (tabs, as the terminal shows them)
  end)

  it("reloads a mapping without restarting", function()
    local mapping = dir .. "/m.lua"
    write(mapping, "return function(r, ctx) local e = { ['_' .. ctx.tenant] = r._exchangeinternal, person = r.person } return e end\n")
    enter('m = reload "' .. mapping .. '"')
    enter('try(m, member("b@example.com", "Silver"))')
    session:wait_for("\nvalid: profile entity of ")
    write(mapping, "return function(r, ctx) return { ['_' .. ctx.tenant] = r._exchangeinternal, note = 'x' } end\n")
    enter('m = reload "' .. mapping .. '"')
    enter('try(m, member("b@example.com", "Silver"))')
    session:wait_for("invalid: 1 problem for dataset " .. ids.profile_dataset .. "\n  #: extraneous key [note] is not permitted\n>")
  end)

  it("shows a slow call's progress and cancels it with Ctrl-C, staying in the REPL", function()
    local s = api:put("/emulator/faults", { spec = "catalog:latency=1,delay=60" }, { auth = false })
    assert.are.equal(200, s)
    enter('try("mappings/loyalty_event.lua", records("data/AEP_loyalty_events.json", 1)[1], "' .. ids.event_dataset .. '")')
    session:wait_for("GET " .. emu.url .. "/data/foundation/catalog/dataSets/" .. ids.event_dataset .. " ")
    session:wait_for("(Ctrl-C cancels)")
    session:keys("C-c")
    session:wait_for("\ninterrupted\n>")
    s = api:put("/emulator/faults", { spec = "" }, { auth = false })
    assert.are.equal(200, s)
    enter('try("mappings/loyalty_event.lua", records("data/AEP_loyalty_events.json", 1)[1], "' .. ids.event_dataset .. '")')
    session:wait_for("\nvalid: event entity of ")
    -- the last line typed: a try on the first sample profile, for the history test below
    good_try = 'try("mappings/loyalty_profile.lua", records("data/AEP_loyalty_profiles.json", 1)[1], "' ..
      ids.profile_dataset .. '")'
    enter(good_try)
    session:wait_for("\nvalid: profile entity of ")
    leave()
  end)

  it("has the first session's lines in a second session's history", function()
    start()
    clear()
    session:keys("Up")
    session:wait_for("> " .. good_try)
    session:keys("Enter")
    session:wait_for(string.format("\nvalid: profile entity of %d bytes for dataset %s\n>",
      mapped_size(), ids.profile_dataset))
    leave()
  end)
end)
