-- Date and time functions (functions.md, data-handling.md "Dates", dates.md). Dates are
-- ZonedDateTime-like values (aep.dataprep.dates); a string where a date is expected is read with
-- the default formats, a number as epoch milliseconds.
local values = require "aep.dataprep.values"
local dates = require "aep.dataprep.dates"
local dateformat = require "aep.dataprep.dateformat"

local to_string, fail, to_number = values.to_string, values.fail, values.to_number
local Date = dates.mt

local function from_millis(ms)
  local s = ms // 1000
  return dates.new(s, (ms - s * 1000) * 1000000)
end

-- as_date(v, what) -> date | nil (null stays null)
local function as_date(v, what)
  if v == nil then return nil end
  if getmetatable(v) == Date then return v end
  if type(v) == "number" then return from_millis(math.tointeger(v) or math.floor(v)) end
  if type(v) == "string" then
    local d, err = dateformat.parse_default(v)
    if not d then fail("%s: %s", what, err) end
    return d
  end
  fail("%s expects a date, got %s", what, type(v))
end

local function zone(id, what)
  local z = dates.zone(to_string(id))
  if not z then fail("%s: unknown time zone '%s'", what, to_string(id)) end
  return z
end

local function int(v, what, name)
  local n = math.tointeger(to_number(v))
  if n == nil then fail("%s: %s must be an integer, got %s", what, name, v == nil and "null" or to_string(v)) end
  return n
end

local F = {}

F.now = { min = 0, returns = "date", fn = function() return dates.now() end }

F.timestamp = { min = 0, returns = "integer", fn = function() return dates.now():millis() end }

F.format = { min = 2, max = 2, returns = "string", fn = function(d, pattern)
  d = as_date(d, "format")
  if d == nil then return nil end
  local s, err = dateformat.format(d, to_string(pattern) or fail("format: FORMAT is null"))
  if not s then fail("format: %s", err) end
  return s
end }

F.dformat = { min = 2, max = 2, returns = "string", fn = function(ms, pattern)
  if ms == nil then return nil end
  local s, err = dateformat.format(from_millis(int(ms, "dformat", "TIMESTAMP")), to_string(pattern) or fail("dformat: FORMAT is null"))
  if not s then fail("dformat: %s", err) end
  return s
end }

F.date = { min = 1, max = 3, returns = "date", fn = function(v, pattern, default)
  if v == nil or v == "" then
    if default ~= nil then return as_date(default, "date") end
    return nil
  end
  if getmetatable(v) == Date then return v end
  if pattern == nil or type(v) ~= "string" then return as_date(v, "date") end
  local d, err = dateformat.parse(v, to_string(pattern))
  if not d then fail("date: %s", err) end
  return d
end }

local PARTS = {
  year = "year", yyyy = "year", yy = "year", quarter = "quarter", qq = "quarter", q = "quarter",
  month = "month", mm = "month", m = "month", dayofyear = "dayofyear", dy = "dayofyear",
  y = "dayofyear", day = "day", dd = "day", d = "day", week = "week", ww = "week", w = "week",
  weekday = "weekday", dw = "weekday", hour = "hour", hh = "hour", hh24 = "hour", hh12 = "hh12",
  minute = "minute", mi = "minute", n = "minute", second = "second", ss = "second", s = "second",
  millisecond = "millisecond", sss = "millisecond",
}

local function part_name(component, what)
  local p = PARTS[component] or PARTS[(to_string(component) or ""):lower()]
  if not p then fail("%s: unknown date component '%s'", what, to_string(component)) end
  return p
end

F.date_part = { min = 2, max = 2, returns = "integer", fn = function(component, d)
  local p = part_name(component, "date_part")
  d = as_date(d, "date_part")
  if d == nil then return nil end
  local y, mo, dd, h, mi, s, ns, days = d:fields()
  if p == "year" then return y end
  if p == "quarter" then return (mo - 1) // 3 + 1 end
  if p == "month" then return mo end
  if p == "dayofyear" then return days - dates.days_from_civil(y, 1, 1) + 1 end
  if p == "day" then return dd end
  if p == "week" then return tonumber(dateformat.format(d, "w")) end
  if p == "weekday" then return (days + 3) % 7 + 1 end
  if p == "hour" then return h end
  if p == "hh12" then return h % 12 == 0 and 12 or h % 12 end
  if p == "minute" then return mi end
  if p == "second" then return s end
  return ns // 1000000
end }

F.set_date_part = { min = 3, max = 3, returns = "date", fn = function(component, value, d)
  local p = part_name(component, "set_date_part")
  d = as_date(d, "set_date_part")
  if d == nil then return nil end
  local v = int(value, "set_date_part", "VALUE")
  local f = { d:fields() }
  local idx = ({ year = 1, month = 2, day = 3, hour = 4, minute = 5, second = 6 })[p]
  if not idx then fail("set_date_part: component '%s' cannot be set", to_string(component)) end
  f[idx] = v
  local r, err = dates.from_local(f[1], f[2], f[3], f[4], f[5], f[6], f[7], d.zone)
  if not r then fail("set_date_part: %s", err) end
  return r
end }

local function make(y, mo, d, h, mi, s, ns, tz)
  local w = "make_date_time"
  local r, err = dates.from_local(int(y, w, "YEAR"), int(mo, w, "MONTH"), int(d, w, "DAY"), int(h, w, "HOUR"),
    int(mi, w, "MINUTE"), int(s, w, "SECOND"), int(ns, w, "NANOSECOND"), zone(tz, w))
  if not r then fail("make_date_time: %s", err) end
  return r
end
F.make_date_time = { min = 8, max = 8, returns = "date", fn = make }
F.make_timestamp = { min = 8, max = 8, returns = "date", fn = make }

F.zone_date_to_utc = { min = 1, max = 1, returns = "date", fn = function(d)
  d = as_date(d, "zone_date_to_utc")
  return d and d:in_zone(dates.zone("UTC"))
end }

F.zone_date_to_zone = { min = 2, max = 2, returns = "date", fn = function(d, z)
  d = as_date(d, "zone_date_to_zone")
  return d and d:in_zone(zone(z, "zone_date_to_zone"))
end }

F._as_date = as_date

return F
