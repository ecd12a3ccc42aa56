-- Spec helper: a new user's machine. A home of its own (the default emulator data dir, the run
-- manifests and the built-in cache live under it), `aep` on PATH, nothing from the machine's
-- environment configuring aep, a working directory outside the repository, and the emulator
-- running on its default data dir after `aep run realtime-import` (the README's quick start).
--
--   local user = newcomer.start { env = { PAGER = "cat" } }   -- user.home, .cwd, .env, .emu
--   local r = run.aep({ "datasets" }, { env = user.env, cwd = user.cwd })
--   newcomer.profile_dataset(user)   -- the id of "aep Loyalty Profiles"
--   user.stop()
local run = require "tests.lua.support.run"
local emulator = require "tests.lua.support.emulator"
local json = require "aep.json"

local M = {}

-- newcomer.start([opts]) -> user; opts.env: more environment variables
function M.start(opts)
  opts = opts or {}
  local home, cwd = run.tmpdir(), run.tmpdir()
  local bin = home .. "/bin"
  assert(os.execute("mkdir -p " .. run.quote(bin) .. " " .. run.quote(home .. "/.local/state/aep/emulator") ..
    " && ln -s " .. run.quote(run.bin) .. " " .. run.quote(bin .. "/aep")))
  local env = { HOME = home, XDG_STATE_HOME = home .. "/.local/state", XDG_CACHE_HOME = home .. "/.cache",
                AEP_ENV = "", NO_COLOR = "1", PATH = bin .. ":/usr/bin:/bin" }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  -- the tenant of the sample files, as the README's transcripts show it
  local emu = emulator.start({ "--profile-lag", "0", "--tenant", "exchangeinternal" },
    { data_dir = home .. "/.local/state/aep/emulator" })
  local user = { home = home, cwd = cwd, env = env, emu = emu }
  function user.stop()
    emu.stop()
    os.execute("rm -rf " .. run.quote(home) .. " " .. run.quote(cwd))
  end
  local r = run.aep({ "run", "realtime-import", "-q" }, { env = env, cwd = cwd })
  assert(r.status == 0, r.stderr)
  return user
end

-- newcomer.profile_dataset(user) -> the id of the workflow's "aep Loyalty Profiles" dataset
function M.profile_dataset(user)
  for _, d in ipairs(json.decode(run.aep({ "datasets", "--json" }, { env = user.env, cwd = user.cwd }).stdout)) do
    if d.name == "aep Loyalty Profiles" then return d.id end
  end
  error("no aep Loyalty Profiles dataset")
end

return M
