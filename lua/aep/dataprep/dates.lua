-- aep.dataprep.dates: ZonedDateTime values, Java DateTimeFormatter patterns (dates.md), time zones.
-- A date is {s = epoch seconds, ns = nanoseconds, off = UTC offset in seconds, zone = id}; its
-- local fields are computed from s + off. Zone rules come from the system's tz database
-- (/usr/share/zoneinfo, TZif version 2+ 64-bit data); fixed offsets, "UTC"/"Z"/"GMT", "GMT+8"
-- and the common abbreviations (fixed, as the documented examples read them) need no file.

local host = require "aep.host"
local values = require "aep.dataprep.values"

local M = {}

local floor, fmt = math.floor, string.format

local Date = {}
Date.__index = Date
M.mt = Date
values.date_mt = Date

-- days since 1970-01-01 <-> civil date (proleptic Gregorian; H. Hinnant's algorithms)
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end
M.days_from_civil, M.civil_from_days = days_from_civil, civil_from_days

local function is_leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
function M.days_in_month(y, m)
  if m == 2 then return is_leap(y) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

-- zones ------------------------------------------------------------------------------------------

local ABBREVIATIONS = {
  UTC = 0, UT = 0, GMT = 0, Z = 0, EST = -5, EDT = -4, CST = -6, CDT = -5, MST = -7, MDT = -6,
  PST = -8, PDT = -7, AKST = -9, AKDT = -8, HST = -10, CET = 1, CEST = 2, EET = 2, EEST = 3,
  WET = 0, WEST = 1, BST = 1, IST = 5.5, JST = 9, KST = 9, AEST = 10, AEDT = 11,
}

local zone_cache = {}
local ZONEINFO = "/usr/share/zoneinfo/"

-- TZif: a 44-byte header, then (v2+) a second header with 64-bit transition times
local function read_tzif(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  if #data < 44 or data:sub(1, 4) ~= "TZif" then return nil end
  local function counts(at)
    return string.unpack(">I4I4I4I4I4I4", data, at + 20)
  end
  local isutc, isstd, leap, timecnt, typecnt, charcnt = counts(1)
  local pos, width = 45, 4
  if data:byte(5) >= 50 then -- skip the v1 block to the 64-bit one
    pos = pos + timecnt * 4 + timecnt + typecnt * 6 + charcnt + leap * 8 + isstd + isutc
    isutc, isstd, leap, timecnt, typecnt, charcnt = counts(pos)
    pos, width = pos + 44, 8
  end
  local times, idx, types = {}, {}, {}
  for i = 1, timecnt do times[i] = string.unpack(width == 8 and ">i8" or ">i4", data, pos + (i - 1) * width) end
  pos = pos + timecnt * width
  for i = 1, timecnt do idx[i] = data:byte(pos + i - 1) + 1 end
  pos = pos + timecnt
  for i = 1, typecnt do types[i] = (string.unpack(">i4", data, pos + (i - 1) * 6)) end
  return { times = times, idx = idx, types = types }
end

-- zone object: {id, fixed = offset} or {id, rules = tzif}
function M.zone(id)
  if type(id) ~= "string" then return nil end
  local z = zone_cache[id]
  if z ~= nil then return z or nil end
  local h = ABBREVIATIONS[id]
  if h then
    z = { id = id, fixed = floor(h * 3600) }
  else
    local sign, hh, mm = id:match("^[GMTUC]*([%+%-])(%d%d?):?(%d?%d?)$")
    if sign then
      local off = tonumber(hh) * 3600 + (tonumber(mm) or 0) * 60
      if off <= 18 * 3600 then
        z = { id = id, fixed = sign == "-" and -off or off }
      end
    elseif id:match("^[%a_]+/[%w_%+%-/]+$") and not id:find("..", 1, true) then
      local rules = read_tzif(ZONEINFO .. id)
      if rules then z = { id = id, rules = rules } end
    end
  end
  zone_cache[id] = z or false
  return z
end

-- offset of zone z at epoch second s
local function offset_at(z, s)
  if z.fixed then return z.fixed end
  local r = z.rules
  local times = r.times
  if #times == 0 or s < times[1] then return r.types[1] end
  local lo, hi = 1, #times
  while lo < hi do
    local mid = (lo + hi + 1) // 2
    if times[mid] <= s then lo = mid else hi = mid - 1 end
  end
  return r.types[r.idx[lo]]
end
M.offset_at = offset_at

-- the epoch second of a local date-time in zone z (the earlier offset in an overlap, the later
-- wall time in a gap, as java.time resolves them)
local function local_to_epoch(z, local_s)
  if z.fixed then return local_s - z.fixed end
  local o1 = offset_at(z, local_s - 86400)
  local o2 = offset_at(z, local_s + 86400)
  if local_s - o1 ~= local_s - o2 and offset_at(z, local_s - o1) == o1 then return local_s - o1 end
  if offset_at(z, local_s - o2) == o2 then return local_s - o2 end
  return local_s - o1
end

-- constructors ---------------------------------------------------------------------------------------

-- dates.new(epoch_s, ns, zone) -> date in zone (a zone object)
function M.new(s, ns, z)
  z = z or M.zone("UTC")
  return setmetatable({ s = s, ns = ns or 0, off = offset_at(z, s), zone = z }, Date)
end

-- dates.from_local(y, mo, d, h, mi, s, ns, zone) -> date | nil, message
function M.from_local(y, mo, d, h, mi, sec, ns, z)
  if mo < 1 or mo > 12 then return nil, "month " .. mo .. " is out of range 1-12" end
  if d < 1 or d > M.days_in_month(y, mo) then return nil, ("day %d is out of range for %d-%02d"):format(d, y, mo) end
  if h < 0 or h > 23 or mi < 0 or mi > 59 or sec < 0 or sec > 59 then return nil, "time out of range" end
  if (ns or 0) < 0 or (ns or 0) > 999999999 then return nil, "nanosecond out of range" end
  local local_s = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
  return M.new(local_to_epoch(z, local_s), ns or 0, z)
end

function M.now()
  local t = host.now()
  local s = floor(t)
  return M.new(s, floor((t - s) * 1000) * 1000000)
end

-- accessors ---------------------------------------------------------------------------------------

-- date:fields() -> y, mo, d, h, mi, s, ns, days (local, in the date's own offset)
function Date:fields()
  local l = self.s + self.off
  local days = floor(l / 86400)
  local secs = l - days * 86400
  local y, mo, d = civil_from_days(days)
  return y, mo, d, secs // 3600, (secs % 3600) // 60, secs % 60, self.ns, days
end

function Date:millis() return self.s * 1000 + self.ns // 1000000 end

function Date:compare(other)
  if self.s ~= other.s then return self.s < other.s and -1 or 1 end
  if self.ns ~= other.ns then return self.ns < other.ns and -1 or 1 end
  return 0
end

function Date:in_zone(z) return M.new(self.s, self.ns, z) end

local function offset_text(off, z_for_zero)
  if off == 0 and z_for_zero then return "Z" end
  local sign = off < 0 and "-" or "+"
  off = math.abs(off)
  return fmt("%s%02d:%02d", sign, off // 3600, (off % 3600) // 60)
end
M.offset_text = offset_text

-- date:iso() -> ISO 8601 with the date's offset ("Z" for UTC), milliseconds when not zero
function Date:iso()
  local y, mo, d, h, mi, s, ns = self:fields()
  local frac = ""
  if ns ~= 0 then
    frac = ns % 1000000 == 0 and fmt(".%03d", ns // 1000000) or fmt(".%09d", ns):gsub("0+$", "")
  end
  return fmt("%04d-%02d-%02dT%02d:%02d:%02d%s%s", y, mo, d, h, mi, s, frac, offset_text(self.off, true))
end

-- date:iso_utc() -> the instant in UTC, as XDM date-time fields receive it
function Date:iso_utc() return M.new(self.s, self.ns):iso() end

function Date:iso_date()
  local y, mo, d = self:fields()
  return fmt("%04d-%02d-%02d", y, mo, d)
end

Date.__tostring = Date.iso

return M
