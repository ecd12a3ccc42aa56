-- aep.emulator.edge_identity: the Edge Network's device identity (ECID) and its cookies.
-- The Edge Network keeps a browser's ECID in the first-party cookie kndctr_<orgId>_identity
-- (orgId with "@" as "_"): base64url of an `Identity` protocol buffer whose field 1 is the ECID
-- (Adobe's Web SDK decodes it this way: @adobe/alloy, decodeKndctrProtobuf), and its consent in
-- kndctr_<orgId>_consent ("general=in" / "general=out"), its location hint in
-- kndctr_<orgId>_cluster. The cookies come back as `Cookie` headers (first-party domain) or, when
-- the page's SDK sends to another domain, in the request's meta.state.entries.
local crypto = require "aep.crypto"

local M = {}

M.IDENTITY_MAX_AGE = 34128000 -- 395 days, as the Edge Network writes the identity cookie
M.CONSENT_MAX_AGE = 15552000  -- 180 days
M.CLUSTER_MAX_AGE = 1800      -- the location hint's ttlSeconds
M.HINT = "or2"                -- a documented EdgeNetwork location hint (location-hints.md)

-- edge_identity.cookie_name(org_id, key) -> "kndctr_<org with @ as _>_<key>"
function M.cookie_name(org_id, key)
  return "kndctr_" .. tostring(org_id or ""):gsub("@", "_", 1) .. "_" .. key
end

-- An ECID is 38 decimal digits.
function M.mint()
  local bytes = crypto.random_bytes(38)
  local out = { tostring(bytes:byte(1) % 9 + 1) }
  for i = 2, 38 do out[i] = tostring(bytes:byte(i) % 10) end
  return table.concat(out)
end

function M.valid_ecid(s)
  return type(s) == "string" and s:match("^%d+$") ~= nil and #s >= 20 and #s <= 40
end

local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = n // 128
    if n > 0 then b = b + 128 end
    out[#out + 1] = string.char(b)
  until n == 0
  return table.concat(out)
end

-- edge_identity.encode(ecid, created_s) -> the identity cookie's value
-- Identity { string ecid = 1; IdentityMetadata metadata = 10 { int64 created_at = 1; bool is_new = 2;
-- int32 device_type = 3 (1: browser) } }
function M.encode(ecid, created_s)
  local meta = "\8" .. varint(math.floor(created_s or 0)) .. "\16\1" .. "\24\1"
  local msg = "\10" .. varint(#ecid) .. ecid .. "\82" .. varint(#meta) .. meta
  return crypto.base64url_encode(msg)
end

local function read_varint(s, i)
  local n, shift = 0, 0
  for _ = 1, 10 do
    local b = s:byte(i)
    if not b then return nil end
    i = i + 1
    n = n + (b & 127) * (1 << shift)
    if b < 128 then return n, i end
    shift = shift + 7
  end
  return nil
end

-- edge_identity.decode(value) -> ecid | nil   (field 1 of the Identity message)
function M.decode(value)
  if type(value) ~= "string" or value == "" then return nil end
  value = value:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  value = value:gsub("/", "_"):gsub("%+", "-"):gsub("=+$", "")
  local raw = crypto.base64url_decode(value)
  if not raw then return nil end
  local i = 1
  while i <= #raw do
    local tag; tag, i = read_varint(raw, i)
    if not tag then return nil end
    local field, wire = tag >> 3, tag & 7
    if wire == 2 then
      local len; len, i = read_varint(raw, i)
      if not len then return nil end
      if field == 1 then
        local ecid = raw:sub(i, i + len - 1)
        return M.valid_ecid(ecid) and ecid or nil
      end
      i = i + len
    elseif wire == 0 then
      local _; _, i = read_varint(raw, i)
      if not i then return nil end
    elseif wire == 1 then i = i + 8
    elseif wire == 5 then i = i + 4
    else return nil end
  end
  return nil
end

-- edge_identity.cookies(req, payload) -> { name = value }: the Cookie header, then the
-- request's meta.state.entries (what the Web SDK transfers when it sends to another domain)
function M.cookies(req, payload)
  local out = {}
  local header = req.headers and req.headers["cookie"]
  if type(header) == "string" then
    for pair in header:gmatch("[^;]+") do
      local k, v = pair:match("^%s*([^=]+)=(.*)$")
      if k then out[k:gsub("%s+$", "")] = v:gsub("%s+$", "") end
    end
  end
  local meta = type(payload) == "table" and payload.meta
  local state = type(meta) == "table" and meta.state
  local entries = type(state) == "table" and state.entries
  if type(entries) == "table" then
    for _, e in ipairs(entries) do
      if type(e) == "table" and type(e.key) == "string" and type(e.value) == "string" then
        out[e.key] = out[e.key] or e.value
      end
    end
  end
  return out
end

-- edge_identity.consent(cookies, org_id) -> "in" | "out" | nil (no consent cookie)
function M.consent(cookies, org_id)
  local v = cookies[M.cookie_name(org_id, "consent")]
  if type(v) ~= "string" then return nil end
  v = v:gsub("%%3[Dd]", "="):gsub("%%3[Bb]", ";")
  local general = v:match("general=(%a+)")
  if general == "out" or general == "in" then return general end
  return nil
end

-- The ECID an event names in its identityMap, if any
function M.from_xdm(xdm)
  local map = type(xdm) == "table" and xdm.identityMap
  local list = type(map) == "table" and map.ECID
  if type(list) ~= "table" then return nil end
  for _, item in ipairs(list) do
    if type(item) == "table" and M.valid_ecid(item.id) then return item.id end
  end
  return nil
end

-- edge_identity.stitch(xdm, ecid): identityMap.ECID carries the device's ECID, primary unless
-- another identity of the map is (as the Edge Network adds it before forwarding to Platform)
function M.stitch(xdm, ecid)
  if type(xdm) ~= "table" or not ecid then return end
  local map = xdm.identityMap
  if type(map) ~= "table" then
    map = {}
    xdm.identityMap = map
  end
  if type(map.ECID) == "table" then
    for _, item in ipairs(map.ECID) do
      if type(item) == "table" and item.id == ecid then return end
    end
  end
  local other_primary = false
  for ns, list in pairs(map) do
    if ns ~= "ECID" and type(list) == "table" then
      for _, item in ipairs(list) do
        if type(item) == "table" and item.primary == true then other_primary = true end
      end
    end
  end
  local list = type(map.ECID) == "table" and map.ECID or {}
  list[#list + 1] = { id = ecid, authenticatedState = "ambiguous", primary = not other_primary }
  map.ECID = list
end

return M
