-- aep.emulator.ingest_ids: the ids and times of ingested data: Catalog's time-ordered batch ids,
-- the ISO-8601 text Catalog and Profile show, and the timestamps records carry.
local crypto = require "aep.crypto"

local M = {}


local CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
local random_bytes = crypto.random_bytes

-- ingest_ids.new_batch_id(now_ms) -> a 26-character, time-ordered id ("01E8043CY305K2MTV5ANH9G1GC",
-- the shape Catalog shows for streaming batches)
function M.new_batch_id(now_ms)
  local out = {}
  local t = math.floor(now_ms)
  for i = 10, 1, -1 do
    local d = t % 32
    out[i] = CROCKFORD:sub(d + 1, d + 1)
    t = t // 32
  end
  local r = random_bytes(16)
  for i = 1, 16 do
    local d = r:byte(i) % 32
    out[10 + i] = CROCKFORD:sub(d + 1, d + 1)
  end
  return table.concat(out)
end

-- ingest_ids.iso(ms) -> "2018-08-28T20:57:24Z"
function M.iso(ms)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor((ms or 0) / 1000))
end

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- ingest_ids.parse_time(v) -> epoch ms | nil  (ISO-8601 date-time with Z or an offset, or epoch ms)
function M.parse_time(v)
  if type(v) == "number" then return math.floor(v) end
  if type(v) ~= "string" then return nil end
  local y, mo, d, h, mi, s, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then
    y, mo, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not y then return nil end
    return days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400000
  end
  local frac = 0
  local f = rest:match("^%.(%d+)")
  if f then
    frac = math.floor(tonumber("0." .. f) * 1000 + 0.5)
    rest = rest:sub(#f + 2)
  end
  local offset = 0
  if rest == "Z" or rest == "z" or rest == "" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60
    if sign == "-" then offset = -offset end
  end
  local secs = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s) - offset
  return secs * 1000 + frac
end

return M
