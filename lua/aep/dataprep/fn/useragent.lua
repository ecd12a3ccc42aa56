-- User agent functions (functions.md). AEP parses user agents with a large rule base; this is a
-- small ordered rule set for the browsers and systems people stream (iOS, Android, Windows,
-- macOS, Linux, Chrome OS; Edge, Opera, Samsung Internet, Firefox, Chrome, Safari, bots).
-- Unknown parts answer "Unknown", as AEP does for user agents it cannot classify.
local values = require "aep.dataprep.values"

local UNKNOWN = "Unknown"

local OS_RULES = {
  { "iOS", "i[Pp]hone OS ([%d_]+)" }, { "iOS", "CPU OS ([%d_]+)" }, { "iOS", "iPhone" }, { "iOS", "iPad" },
  { "Android", "Android ([%d%.]+)" }, { "Android", "Android" },
  { "Windows NT", "Windows NT ([%d%.]+)" }, { "Chrome OS", "CrOS [%w_]+ ([%d%.]+)" },
  { "Mac OS", "Mac OS X ([%d_%.]+)" }, { "Linux", "Linux" },
}

local AGENT_RULES = {
  { "Edge", "Edg[eAi]?/([%d%.]+)" }, { "Opera", "OPR/([%d%.]+)" },
  { "Samsung Internet", "SamsungBrowser/([%d%.]+)" }, { "Firefox", "Firefox/([%d%.]+)" },
  { "Firefox", "FxiOS/([%d%.]+)" }, { "Chrome", "CriOS/([%d%.]+)" }, { "Chrome", "Chrome/([%d%.]+)" },
  { "Safari", "Version/([%d%.]+).-Safari/" }, { "Googlebot", "Googlebot/([%d%.]+)" },
}

local cache, cached = {}, 0

local function analyse(ua)
  local hit = cache[ua]
  if hit then return hit end
  local r = { os = UNKNOWN, os_version = "??", agent = UNKNOWN, agent_version = "??", class = UNKNOWN }
  for _, rule in ipairs(OS_RULES) do
    local v = ua:match(rule[2])
    if v then
      r.os = rule[1]
      if v ~= true and type(v) == "string" and v:match("%d") then r.os_version = v:gsub("_", ".") end
      break
    end
  end
  for _, rule in ipairs(AGENT_RULES) do
    local v = ua:match(rule[2])
    if v then r.agent, r.agent_version = rule[1], v; break end
  end
  if ua:find("[Bb]ot") or ua:find("[Ss]pider") or ua:find("[Cc]rawl") then r.class = "Robot"
  elseif ua:find("iPad") or ua:find("Tablet") or (ua:find("Android") and not ua:find("Mobile")) then r.class = "Tablet"
  elseif ua:find("iPhone") or (ua:find("Android") and ua:find("Mobile")) or ua:find("Windows Phone") then r.class = "Phone"
  elseif ua:find("Mobile") then r.class = "Mobile"
  elseif r.os ~= UNKNOWN then r.class = "Desktop" end
  if cached >= 1000 then cache, cached = {}, 0 end
  cache[ua], cached = r, cached + 1
  return r
end

local function major(v) return v:match("^(%d+)") or v end

local function ua_fn(pick)
  return { min = 1, returns = "string", fn = function(ua)
    if ua == nil then return nil end
    return pick(analyse(values.to_string(ua)))
  end }
end

return {
  ua_os_name = ua_fn(function(r) return r.os end),
  ua_os_version_major = ua_fn(function(r) return r.os .. " " .. major(r.os_version) end),
  ua_os_version = ua_fn(function(r) return r.os_version end),
  ua_os_name_version = ua_fn(function(r) return r.os .. " " .. r.os_version end),
  ua_agent_version = ua_fn(function(r) return r.agent_version end),
  ua_agent_version_major = ua_fn(function(r) return r.agent .. " " .. major(r.agent_version) end),
  ua_agent_name = ua_fn(function(r) return r.agent end),
  ua_device_class = ua_fn(function(r) return r.class end),
}
