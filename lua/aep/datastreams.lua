-- aep.datastreams: datastreams on the local emulator's Edge Network (POST/GET/DELETE
-- /emulator/datastreams). Adobe creates datastreams in the Data Collection UI (or its Reactor
-- API), not through a Platform API, so against AEP these calls refuse with the way to do it.
--
--   datastreams.create(c, {name=, eventDataset=, profileDataset=, defaultConsent=}) -> id
--   datastreams.find_by_name(c, name) -> datastream | nil
--   datastreams.delete(c, id)
local platform = require "aep.platform"

local M = {}

-- the gateway is this machine (the emulator); no require of aep.stream.target, which would tie
-- the workflow to the stream command's modules
local function on_loopback(url)
  local h = tostring(url or ""):match("^%a[%w+.-]*://([^/?#]+)") or ""
  h = (h:gsub("^.*@", "")):lower()
  h = h:match("^%[([^%]]+)%]") or h:gsub(":%d+$", "")
  return h == "localhost" or h == "::1" or h:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

local function local_only(c)
  local g = c.gateway or (c.cfg and c.cfg:gateway())
  if not on_loopback(g) then
    error(platform.error({ kind = "aep", code = "UNSUPPORTED",
      message = "datastreams are created in Adobe's Data Collection UI, not through a Platform API: create one there " ..
        "(mapped to the event dataset) and give its id to aep stream --to edge as --datastream ID" }), 0)
  end
end

local function call(c, method, path, body)
  -- the emulator's admin calls that change state want a JSON Content-Type or X-Aep-Admin
  return c:request({ method = method, path = path, json = body, auth = false, platform = false,
                     headers = { ["X-Aep-Admin"] = "1" } })
end

function M.list(c)
  local_only(c)
  local resp = call(c, "GET", "/emulator/datastreams")
  return (resp.json and resp.json.datastreams) or {}
end

function M.find_by_name(c, name)
  for _, d in ipairs(M.list(c)) do
    if d.name == name then return d end
  end
  return nil
end

function M.create(c, o)
  local_only(c)
  local resp = call(c, "POST", "/emulator/datastreams", o)
  return resp.json.id, resp.json
end

function M.delete(c, id)
  local_only(c)
  call(c, "DELETE", "/emulator/datastreams/" .. platform.enc(id))
  return true
end

return M
