-- Spec helper: the collection's loyalty schemas (R7+R8, R10+R11) resolved from the repository's
-- fixtures as the registry would, and the sample records, for the validator's specs (no emulator).
--
--   local loyalty = require "tests.lua.support.xdm_loyalty"
--   local profile, event, lookup = loyalty.schemas("_tenant")
--   local records = loyalty.samples("AEP_loyalty_profiles.json")
--   local doc = loyalty.fixture("loyalty_profile_schema.json", { TENANT_ID = "_t" })
local cjson = require "cjson"
local xdm = require "aep.xdm"

local M = {}

-- the repository root: the specs run from it (ctest, busted) or name it through their own path
local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)tests/lua/support/xdm_loyalty%.lua$") or "")
if ROOT == "" then ROOT = "./" end
M.ROOT = ROOT

function M.read(path)
  local f = assert(io.open(ROOT .. path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function subst(text, vars)
  return (text:gsub("{{([%w_]+)}}", function(k) return vars[k] end))
end

-- loyalty.fixture(name, vars) -> tests/fixtures/xdm/NAME decoded, {{VAR}} replaced first
function M.fixture(name, vars)
  return cjson.decode(subst(M.read("tests/fixtures/xdm/" .. name), vars or {}))
end

local PROFILE_MIXIN_ID = "https://ns.adobe.com/%s/mixins/5ab3f7c1d0e84b1f9a1c2d3e4f506172"
local EVENT_MIXIN_ID = "https://ns.adobe.com/%s/mixins/9d8c7b6a5f4e4d3c8b2a1f0e9d8c7b6a"

-- loyalty.schemas(tenant) -> profile schema, event schema, lookup (resolved, for that tenant)
function M.schemas(tenant)
  local vars = { TENANT_ID = tenant, UNIQUE_ID = "" }
  local pm = M.fixture("loyalty_profile_mixin.json", vars)
  local em = M.fixture("loyalty_event_mixin.json", vars)
  pm["$id"] = PROFILE_MIXIN_ID:format(tenant)
  em["$id"] = EVENT_MIXIN_ID:format(tenant)
  vars.MIXIN_ID_PROFILE, vars.MIXIN_ID_EVENT = pm["$id"], em["$id"]
  local docs = { [pm["$id"]] = pm, [em["$id"]] = em }
  local function lookup(id) return docs[id] end
  local profile = assert(xdm.resolve(M.fixture("loyalty_profile_schema.json", vars), lookup))
  local event = assert(xdm.resolve(M.fixture("loyalty_event_schema.json", vars), lookup))
  return profile, event, lookup
end

-- loyalty.samples(name) -> data/NAME decoded
function M.samples(name)
  return cjson.decode(M.read("data/" .. name))
end

return M
