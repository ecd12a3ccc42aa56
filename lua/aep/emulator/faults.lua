-- aep.emulator.faults: injected failures for testing clients, decided per request, per route group,
-- deterministic under --seed (own PRNG: nothing else in the emulator draws from it).
--
-- SPEC := RULE { ";" RULE }
-- RULE := SELECTOR ":" KNOB "=" VALUE { "," KNOB "=" VALUE }
-- SELECTOR: a route group (ims, schemas, identity, catalog, flows, dataprep, ups, streaming,
--           batches, profile), a path prefix starting with "/" (e.g. /collection/batch), or "*" (every
--           route except /emulator/...). The most specific selector wins, knob by knob:
--           path prefix (longest first) > group > "*".
-- KNOBS (probabilities in [0, 1], drawn once per request):
--   429, 500, 503       answer that status without processing (429/503 carry Retry-After)
--   drop_before          close the connection without processing or answering
--   drop_after           process (and commit) the request, then close without answering
--                        (headers and half the body sent: the client sees a torn answer)
--   close_after          process (and commit) the request, then close with zero answer bytes
--   reset_after          process (and commit) the request, then reset the connection (TCP RST)
--   die_after            process (and commit) the request, hold the answer `delay` seconds, then
--                        the emulator kills itself (SIGKILL) with every held answer unsent
--   latency              add `delay` seconds before the answer (other connections are not blocked)
--   expire_token         the request's bearer token expires now (401 401013; mint a new one)
--   retry_after=SECONDS  Retry-After of 429/503 (default 1)
--   delay=SECONDS        the added latency (default 1)
--   token_ttl=SECONDS    ("*" only) tokens minted from now on die after SECONDS although IMS
--                        announces the usual expires_in
-- The exclusive outcomes (drop_before, 429, 500, 503, drop_after, close_after, reset_after,
-- die_after) share one draw in that order.
-- Example: streaming:429=0.1,503=0.05,drop_after=0.01,latency=0.02;*:500=0.01
local M = {}

local PROB = { ["429"] = true, ["500"] = true, ["503"] = true, drop_before = true, drop_after = true,
               close_after = true, reset_after = true, die_after = true, latency = true,
               expire_token = true }
local PARAM = { retry_after = true, delay = true, token_ttl = true }
local EXCLUSIVE = { "drop_before", "429", "500", "503", "drop_after", "close_after", "reset_after",
                    "die_after" }
-- What aep.server does instead of answering a request that was processed (response.drop).
M.DROP_AFTER_COMMIT = { drop_after = "after", close_after = "close", reset_after = "reset", die_after = "die" }

M.GROUPS = require("aep.emulator.services").fault_groups() -- { {prefix, group} }, most specific first
local KNOWN_GROUP = { ["*"] = true }
for _, g in ipairs(M.GROUPS) do KNOWN_GROUP[g[2]] = true end

-- faults.group_of(pattern) -> group name ("other" when no prefix matches)
function M.group_of(pattern)
  for _, g in ipairs(M.GROUPS) do
    if pattern:sub(1, #g[1]) == g[1] then return g[2] end
  end
  return "other"
end

-- faults.parse(spec) -> rules {selector = {knob = number}} | nil, message
function M.parse(spec)
  local rules = {}
  if spec == nil then return rules end
  if type(spec) ~= "string" then return nil, "faults spec must be a string" end
  for rule in spec:gmatch("[^;]+") do
    rule = rule:match("^%s*(.-)%s*$")
    if rule ~= "" then
      local sel, list = rule:match("^([^:]+):(.*)$")
      if not sel then return nil, "fault rule '" .. rule .. "' needs SELECTOR:KNOB=VALUE" end
      sel = sel:match("^%s*(.-)%s*$")
      if sel:sub(1, 1) ~= "/" and not KNOWN_GROUP[sel] then
        return nil, "unknown fault selector '" .. sel .. "' (a group, a /path prefix or *)"
      end
      local knobs = rules[sel] or {}
      for item in list:gmatch("[^,]+") do
        local k, v = item:match("^%s*([%w_]+)%s*=%s*([^%s]+)%s*$")
        local n = tonumber(v)
        if not k or not n then return nil, "fault knob '" .. item .. "' needs KNOB=NUMBER" end
        if PROB[k] then
          if n < 0 or n > 1 then return nil, "fault probability " .. k .. "=" .. v .. " is not in [0, 1]" end
        elseif PARAM[k] then
          if n < 0 then return nil, "fault parameter " .. k .. " must not be negative" end
          if k == "token_ttl" and sel ~= "*" then return nil, "token_ttl applies to '*' only" end
        else
          return nil, "unknown fault knob '" .. k .. "'"
        end
        knobs[k] = n
      end
      rules[sel] = knobs
    end
  end
  return rules
end

-- faults.format(rules) -> spec string (stable order)
function M.format(rules)
  local sels = {}
  for s in pairs(rules) do sels[#sels + 1] = s end
  table.sort(sels)
  local parts = {}
  for _, s in ipairs(sels) do
    local ks = {}
    for k in pairs(rules[s]) do ks[#ks + 1] = k end
    table.sort(ks)
    local items = {}
    for _, k in ipairs(ks) do items[#items + 1] = k .. "=" .. tostring(rules[s][k]):gsub("%.0$", "") end
    if #items > 0 then parts[#parts + 1] = s .. ":" .. table.concat(items, ",") end
  end
  return table.concat(parts, ";")
end

-- PRNG: xorshift64* seeded through splitmix64; Lua integers wrap like uint64.
local function splitmix(x)
  x = x + 0x9E3779B97F4A7C15
  x = (x ~ (x >> 30)) * 0xBF58476D1CE4E5B9
  x = (x ~ (x >> 27)) * 0x94D049BB133111EB
  return x ~ (x >> 31)
end

-- faults.new(seed, spec) -> Faults | nil, message
function M.new(seed, spec)
  local rules, err = M.parse(spec)
  if not rules then return nil, err end
  local F = { rules = rules, seed = seed }
  local state
  local version = 0
  local cache = {}        -- group -> resolved knobs | false
  local prefixes = {}     -- sorted longest first

  local function reseed(s)
    F.seed = s
    state = splitmix(math.tointeger(s) or 0)
    if state == 0 then state = 0x2545F4914F6CDD1D end
  end

  local function rand()
    local x = state
    x = x ~ (x >> 12); x = x ~ (x << 25); x = x ~ (x >> 27)
    state = x
    return ((x * 0x2545F4914F6CDD1D) >> 11) * (1.0 / 9007199254740992.0)
  end
  F.rand = rand

  local function rebuild()
    version = version + 1
    cache = {}
    prefixes = {}
    for sel in pairs(F.rules) do
      if sel:sub(1, 1) == "/" then prefixes[#prefixes + 1] = sel end
    end
    table.sort(prefixes, function(a, b) return #a > #b end)
  end

  local function active(knobs)
    for k, v in pairs(knobs) do if PROB[k] and v > 0 then return true end end
    return false
  end

  local function resolve(group, path)
    local k = {}
    for key, v in pairs(F.rules["*"] or {}) do k[key] = v end
    for key, v in pairs(F.rules[group] or {}) do k[key] = v end
    if path then
      for i = #prefixes, 1, -1 do -- shortest first so the longest prefix wins
        local p = prefixes[i]
        if path:sub(1, #p) == p then
          for key, v in pairs(F.rules[p]) do k[key] = v end
        end
      end
    end
    return active(k) and k or false
  end

  -- F:set(spec_or_rules [, seed]) -> true | nil, message
  function F.set(new, s)
    local r = new
    if type(new) == "string" or new == nil then
      local err2
      r, err2 = M.parse(new)
      if not r then return nil, err2 end
    else
      local err2
      r, err2 = M.parse(M.format_checked(new))
      if not r then return nil, err2 end
    end
    F.rules = r
    if s ~= nil then reseed(s) end
    rebuild()
    return true
  end

  -- F.token_ttl() -> seconds | nil
  function F.token_ttl()
    local all = F.rules["*"]
    return all and all.token_ttl
  end

  -- F.decide(group, path) -> decision | nil
  -- decision = {outcome = "drop_before"|"429"|"500"|"503"|"drop_after"|"close_after"|
  --             "reset_after"|"die_after"|nil, delay = s|nil,
  --             expire_token = true|nil, retry_after = s}
  function F.decide(group, path)
    if group == "emulator" then return nil end
    local knobs
    if #prefixes > 0 then
      knobs = resolve(group, path)
    else
      knobs = cache[group]
      if knobs == nil then knobs = resolve(group); cache[group] = knobs end
    end
    if not knobs then return nil end
    local d
    local total = 0
    for _, name in ipairs(EXCLUSIVE) do total = total + (knobs[name] or 0) end
    if total > 0 then
      local r, acc = rand(), 0
      for _, name in ipairs(EXCLUSIVE) do
        acc = acc + (knobs[name] or 0)
        if r < acc then d = { outcome = name }; break end
      end
    end
    if (knobs.latency or 0) > 0 and rand() < knobs.latency then
      d = d or {}
      d.delay = knobs.delay or 1
    end
    if d and d.outcome == "die_after" then d.delay = knobs.delay or 1 end
    if (knobs.expire_token or 0) > 0 and rand() < knobs.expire_token then
      d = d or {}
      d.expire_token = true
    end
    if d then d.retry_after = knobs.retry_after or 1 end
    return d
  end

  -- F.describe() -> table for GET /emulator/faults
  function F.describe()
    return { seed = F.seed, spec = M.format(F.rules), rules = F.rules }
  end

  reseed(seed or 0)
  rebuild()
  return F
end

-- faults.format_checked(rules_table) -> spec string from a JSON rules object (values may be strings)
function M.format_checked(rules)
  if type(rules) ~= "table" then return "" end
  local parts = {}
  for sel, knobs in pairs(rules) do
    local items = {}
    if type(knobs) == "table" then
      for k, v in pairs(knobs) do items[#items + 1] = tostring(k) .. "=" .. tostring(v) end
    end
    parts[#parts + 1] = tostring(sel) .. ":" .. table.concat(items, ",")
  end
  return table.concat(parts, ";")
end

return M
