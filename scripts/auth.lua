-- scripts/auth.lua — collection folder 0 "Initialize and Authenticate" (R1-R3).
-- Gets an access token from IMS (OAuth Server-to-Server by default, the legacy JWT exchange with
-- --jwt; the JWT is signed natively, nothing is downloaded or eval'ed) and reads the tenant id
-- from the Schema Registry's /stats. Neither the token nor the JWT is ever printed.
local wf = ...

local function human(seconds)
  if not seconds then return "?" end
  local h, m = math.floor(seconds / 3600), math.floor(seconds % 3600 / 60)
  if h > 0 then return string.format("%dh%02dm", h, m) end
  return string.format("%dm%02ds", m, math.floor(seconds % 60))
end

wf:heading("auth: IMS token and tenant")
local session = wf.client:auth()
wf:step("auth: IMS token", function() return session:token() end)
local info = session:info()
wf:line("ok", "IMS token", (info.mode == "jwt" and "JWT exchange" or "OAuth Server-to-Server")
  .. " at " .. wf.cfg:ims_url() .. ", expires in " .. human(info.expires_in))
local tenant = wf:tenant()
wf:line("ok", "tenant", "_" .. tenant, nil)
return tenant
