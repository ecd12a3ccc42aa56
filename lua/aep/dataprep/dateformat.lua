-- aep.dataprep.dateformat: format and parse dates with the pattern letters of dates.md
-- (SimpleDateFormat's table: u is the day-of-week number, S a fraction of the second, so "SSS"
-- is milliseconds), and the default formats Data Prep tries when a string reaches a date field.

local dates = require "aep.dataprep.dates"

local M = {}

local fmt, floor = string.format, math.floor

local MONTHS = { "January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December" }
local DAYS = { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday" }
local ORDINAL = { "1st", "2nd", "3rd", "4th" }

local compiled = {}

-- pattern -> list of {letter, count} | {lit = text}; nil, message for an unknown letter
local function compile(pattern)
  local hit = compiled[pattern]
  if hit then return hit end
  local toks, i, n = {}, 1, #pattern
  while i <= n do
    local c = pattern:sub(i, i)
    if c == "'" then
      if pattern:sub(i + 1, i + 1) == "'" then
        toks[#toks + 1] = { lit = "'" }; i = i + 2
      else
        local out, j = {}, i + 1
        while j <= n do
          local d = pattern:sub(j, j)
          if d == "'" then
            if pattern:sub(j + 1, j + 1) == "'" then out[#out + 1] = "'"; j = j + 2 else break end
          else
            out[#out + 1] = d; j = j + 1
          end
        end
        if j > n then return nil, "unterminated quote in date pattern '" .. pattern .. "'" end
        toks[#toks + 1] = { lit = table.concat(out) }; i = j + 1
      end
    elseif c:match("%a") then
      local j = i
      while pattern:sub(j + 1, j + 1) == c do j = j + 1 end
      if not ("GYyMLwWDdFEuaHkKhmsSzZXxVOQq"):find(c, 1, true) then
        return nil, ("unknown pattern letter '%s' in date pattern '%s'"):format(c, pattern)
      end
      toks[#toks + 1] = { letter = c, count = j - i + 1 }; i = j + 1
    else
      toks[#toks + 1] = { lit = c }; i = i + 1
    end
  end
  compiled[pattern] = toks
  return toks
end
M.compile = compile

local function pad(v, count) return fmt("%0" .. count .. "d", v) end

local function weekday(days) return (days + 3) % 7 + 1 end -- 1 = Monday; 1970-01-01 was a Thursday

local function iso_week(y, days)
  local doy = days - dates.days_from_civil(y, 1, 1) + 1
  local wd = weekday(days)
  local w = (doy - wd + 10) // 7
  if w < 1 then return 52 end
  return math.min(w, 53)
end

local function zone_offset_text(off, count, allow_z)
  if off == 0 and allow_z then return "Z" end
  local sign = off < 0 and "-" or "+"
  off = math.abs(off)
  local h, m = off // 3600, (off % 3600) // 60
  if count == 1 then return sign .. pad(h, 2) .. (m ~= 0 and pad(m, 2) or "") end
  if count == 2 then return sign .. pad(h, 2) .. pad(m, 2) end
  return sign .. pad(h, 2) .. ":" .. pad(m, 2)
end

-- dateformat.format(date, pattern) -> string | nil, message
function M.format(d, pattern)
  local toks, err = compile(pattern)
  if not toks then return nil, err end
  local y, mo, dd, h, mi, s, ns, days = d:fields()
  local out = {}
  for _, t in ipairs(toks) do
    local c, n = t.letter, t.count
    local v
    if not c then v = t.lit
    elseif c == "G" then v = n == 4 and "Anno Domini" or (n == 5 and "A" or "AD")
    elseif c == "y" or c == "Y" then v = n == 2 and pad(y % 100, 2) or pad(y, n)
    elseif c == "M" or c == "L" then
      v = n >= 4 and MONTHS[mo] or (n == 3 and MONTHS[mo]:sub(1, 3) or (n == 5 and MONTHS[mo]:sub(1, 1) or pad(mo, n)))
    elseif c == "w" then v = pad(iso_week(y, days), n)
    elseif c == "W" then v = pad((dd - 1) // 7 + 1, n)
    elseif c == "D" then v = pad(days - dates.days_from_civil(y, 1, 1) + 1, n)
    elseif c == "d" then v = pad(dd, n)
    elseif c == "F" then v = pad((dd - 1) // 7 + 1, n)
    elseif c == "E" then v = n >= 4 and DAYS[weekday(days)] or DAYS[weekday(days)]:sub(1, 3)
    elseif c == "u" then v = pad(weekday(days), n)
    elseif c == "a" then v = h < 12 and "AM" or "PM"
    elseif c == "H" then v = pad(h, n)
    elseif c == "k" then v = pad(h == 0 and 24 or h, n)
    elseif c == "K" then v = pad(h % 12, n)
    elseif c == "h" then v = pad(h % 12 == 0 and 12 or h % 12, n)
    elseif c == "m" then v = pad(mi, n)
    elseif c == "s" then v = pad(s, n)
    elseif c == "S" then v = fmt("%09d", ns):sub(1, math.min(n, 9)) .. string.rep("0", n - 9)
    elseif c == "X" then v = zone_offset_text(d.off, n, true)
    elseif c == "x" then v = zone_offset_text(d.off, n, false)
    elseif c == "Z" then v = n == 4 and "GMT" .. zone_offset_text(d.off, 3, false) or
      (n == 5 and zone_offset_text(d.off, 3, true) or zone_offset_text(d.off, 2, false))
    elseif c == "z" or c == "V" then v = d.zone.id
    elseif c == "O" then
      local off = d.off
      v = off == 0 and "GMT" or ("GMT" .. (off < 0 and "-" or "+") .. (math.abs(off) // 3600) ..
        ((math.abs(off) % 3600 ~= 0) and (":" .. pad((math.abs(off) % 3600) // 60, 2)) or ""))
    elseif c == "Q" or c == "q" then
      local q = (mo - 1) // 3 + 1
      v = n >= 4 and (ORDINAL[q] .. " quarter") or (n == 3 and "Q" .. q or pad(q, n))
    end
    out[#out + 1] = v
  end
  return table.concat(out)
end

-- parsing ----------------------------------------------------------------------------------------

local function match_name(s, i, names)
  local lower = s:sub(i):lower()
  for idx, name in ipairs(names) do
    if lower:sub(1, #name) == name:lower() then return idx, i + #name end
  end
  for idx, name in ipairs(names) do
    local short = name:sub(1, 3):lower()
    if lower:sub(1, 3) == short then return idx, i + 3 end
  end
end

local function is_numeric(t) return t and t.letter and not ("MLEaGzZXxVOQq"):find(t.letter, 1, true) or
  (t and t.letter and (t.letter == "M" or t.letter == "L" or t.letter == "Q" or t.letter == "q") and t.count <= 2) end

-- a zone at s[i]: returns zone, next index
local function parse_zone(s, i, letter)
  if s:sub(i, i) == "Z" and letter ~= "x" then return dates.zone("UTC"), i + 1 end
  local sign, hh, rest = s:match("^([%+%-])(%d%d)()", i)
  if sign then
    local mm, j = s:match("^:?(%d%d)()", rest)
    local off = tonumber(hh) * 3600 + (mm and tonumber(mm) * 60 or 0)
    return dates.zone(fmt("%s%02d:%02d", sign, off // 3600, (off % 3600) // 60)), j or rest
  end
  if letter == "z" or letter == "V" or letter == "O" then
    local id, j = s:match("^([%a_]+/[%w_%+%-/]*[%w_])()", i)
    if not id then id, j = s:match("^(GMT[%+%-]%d%d?:?%d?%d?)()", i) end
    if not id then id, j = s:match("^(%u%u%u?%u?)()", i) end
    local z = id and dates.zone(id)
    if z then return z, j end
  end
  return nil
end

-- A pattern of numbers and literals only ("yyyy-MM-dd HH:mm:ss.SSS") becomes one Lua pattern,
-- matched in a single call; others take the general path below.
local FAST_LETTERS = { y = true, Y = true, M = true, L = true, d = true, D = true, H = true, k = true,
  m = true, s = true, S = true }
local fast_cache = {}
local function fast_matcher(pattern, toks)
  local hit = fast_cache[pattern]
  if hit ~= nil then return hit end
  local parts, fields = { "^" }, {}
  for k, t in ipairs(toks) do
    if t.lit then
      parts[#parts + 1] = t.lit:gsub("%W", "%%%0")
    elseif FAST_LETTERS[t.letter] and not ((t.letter == "M" or t.letter == "L") and t.count >= 3) then
      local nxt = toks[k + 1]
      if nxt and nxt.letter then
        parts[#parts + 1] = "(" .. ("%d"):rep(t.count) .. ")"
      else
        parts[#parts + 1] = "(%d+)"
      end
      fields[#fields + 1] = t
    else
      fast_cache[pattern] = false
      return false
    end
  end
  parts[#parts + 1] = "$"
  hit = { lua = table.concat(parts), fields = fields }
  fast_cache[pattern] = hit
  return hit
end

local function parse_fast(text, fast, default_zone)
  local caps = { text:match(fast.lua) }
  if caps[1] == nil then return nil end
  local y, mo, d, h, mi, s, ns, doy = 1970, 1, 1, 0, 0, 0, 0, nil
  for i, t in ipairs(fast.fields) do
    local digits, c = caps[i], t.letter
    if c ~= "S" and #digits > math.max(t.count, (c == "y" or c == "Y") and 9 or 2) then return nil end
    local v = tonumber(digits)
    if c == "y" or c == "Y" then y = (t.count == 2 and #digits == 2) and 2000 + v or v
    elseif c == "M" or c == "L" then mo = v
    elseif c == "d" then d = v
    elseif c == "D" then doy = v
    elseif c == "H" then h = v
    elseif c == "k" then h = v % 24
    elseif c == "m" then mi = v
    elseif c == "s" then s = v
    else ns = tonumber((digits .. "000000000"):sub(1, 9)) end
  end
  if doy then y, mo, d = dates.civil_from_days(dates.days_from_civil(y, 1, 1) + doy - 1) end
  return dates.from_local(y, mo, d, h, mi, s, ns, default_zone or dates.zone("UTC"))
end

-- dateformat.parse(text, pattern [, zone]) -> date | nil, message
function M.parse(text, pattern, default_zone)
  local toks, err = compile(pattern)
  if not toks then return nil, err end
  local fast = fast_matcher(pattern, toks)
  if fast then
    local d = parse_fast(text, fast, default_zone)
    if d then return d end -- otherwise the general path says why
  end
  local f = { y = 1970, mo = 1, d = 1, h = 0, mi = 0, s = 0, ns = 0 }
  local i, pm, h12 = 1, nil, nil
  local bad = function() return nil, ("'%s' does not match the date pattern '%s'"):format(text, pattern) end
  for k, t in ipairs(toks) do
    if t.lit then
      if text:sub(i, i + #t.lit - 1) ~= t.lit then return bad() end
      i = i + #t.lit
    else
      local c, n = t.letter, t.count
      if c == "M" and n >= 3 or c == "L" and n >= 3 then
        local idx, j = match_name(text, i, MONTHS)
        if not idx then return bad() end
        f.mo, i = idx, j
      elseif c == "E" then
        local idx, j = match_name(text, i, DAYS)
        if not idx then return bad() end
        i = j
      elseif c == "a" then
        local ap = text:sub(i, i + 1):upper()
        if ap ~= "AM" and ap ~= "PM" then return bad() end
        pm, i = ap == "PM", i + 2
      elseif c == "G" then
        local j = text:match("^AD()", i) or text:match("^Anno Domini()", i)
        if not j then return bad() end
        i = j
      elseif c == "X" or c == "x" or c == "Z" or c == "z" or c == "V" or c == "O" then
        local z, j = parse_zone(text, i, c)
        if not z then return bad() end
        f.zone, i = z, j
      else
        -- numbers: a fixed width when the next field is a number too (yyyyMMdd), else greedy
        local width = is_numeric(toks[k + 1]) and n or nil
        local digits
        if width then
          digits = text:sub(i, i + width - 1)
          if #digits ~= width or not digits:match("^%d+$") then return bad() end
        else
          digits = text:match("^%d+", i)
          if not digits or (c ~= "S" and #digits > math.max(n, c == "y" and 9 or 2)) then return bad() end
        end
        i = i + #digits
        local v = tonumber(digits)
        if c == "y" or c == "Y" then f.y = (n == 2 and #digits == 2) and 2000 + v or v
        elseif c == "M" or c == "L" then f.mo = v
        elseif c == "d" then f.d = v
        elseif c == "D" then f.doy = v
        elseif c == "H" then f.h = v
        elseif c == "k" then f.h = v % 24
        elseif c == "K" or c == "h" then h12 = v % 12
        elseif c == "m" then f.mi = v
        elseif c == "s" then f.s = v
        elseif c == "S" then f.ns = tonumber((digits .. "000000000"):sub(1, 9))
        elseif c == "Q" or c == "q" then f.q = v -- quarters do not set a date
        end -- w W F u: read, not used to build the date
      end
    end
  end
  if i <= #text then return bad() end
  if h12 then f.h = h12 + (pm and 12 or 0) elseif pm and f.h < 12 then f.h = f.h + 12 end
  if f.doy then
    local y, mo, d = dates.civil_from_days(dates.days_from_civil(f.y, 1, 1) + f.doy - 1)
    f.y, f.mo, f.d = y, mo, d
  end
  local d, derr = dates.from_local(f.y, f.mo, f.d, f.h, f.mi, f.s, f.ns, f.zone or default_zone or dates.zone("UTC"))
  if not d then return nil, ("'%s' is not a valid date: %s"):format(text, derr) end
  return d
end

-- ISO 8601 as java.time reads it: date, optional time (T or space), seconds, fraction and zone
local function parse_iso(text)
  local y, mo, d, rest = text:match("^([%+%-]?%d%d%d%d+)%-(%d%d)%-(%d%d)()")
  if not y then return nil end
  local h, mi, s, ns, z = 0, 0, 0, 0, nil
  if rest <= #text then
    local hh, mm, r2 = text:match("^[T ](%d%d):(%d%d)()", rest)
    if not hh then return nil end
    h, mi, rest = tonumber(hh), tonumber(mm), r2
    local ss, r3 = text:match("^:(%d%d)()", rest)
    if ss then
      s, rest = tonumber(ss), r3
      local frac, r4 = text:match("^[%.,](%d+)()", rest)
      if frac then ns, rest = tonumber((frac .. "000000000"):sub(1, 9)), r4 end
    end
    if rest <= #text then
      local j
      z, j = parse_zone(text, rest, "z")
      if not z then
        z, j = parse_zone(text, text:match("^%s*()", rest), "z")
      end
      if not z then return nil end
      local id, j2 = text:match("^%[([^%]]+)%]()", j)
      if id then z, j = dates.zone(id), j2 end
      if not z or j <= #text then return nil end
    end
  end
  return dates.from_local(tonumber(y), tonumber(mo), tonumber(d), h, mi, s, ns, z or dates.zone("UTC"))
end
M.parse_iso = parse_iso

-- the formats data-handling.md lists, tried in order after ISO 8601
M.DEFAULT_FORMATS = {
  "yyyy-MM-dd HH:mm:ssZ", "yyyy-MM-dd HH:mm:ss.SSSZ", "yyyy-MM-dd HH:mm:ss.SSS",
  "yyyy-MM-dd'T'HH:mm:ss.SSSX", "yyyy-MM-dd'T'HH:mm:ss'Z'", "yyyy-MM-dd", "yyyy/MM/dd",
  "yyyy.MM.dd", "yyyy-MMM-dd", "yyyyMMdd", "MM-dd-yyyy", "MMddyyyy", "M/dd/yyyy", "dd.M.yyyy",
  "M/dd/yyyy hh:mm:ss a", "dd.M.yyyy hh:mm:ss a", "dd.MMM.yyyy", "dd-MMM-yyyy",
}

-- dateformat.parse_default(text) -> date | nil, message
function M.parse_default(text)
  local d = parse_iso(text)
  if d then return d end
  for _, p in ipairs(M.DEFAULT_FORMATS) do
    d = M.parse(text, p)
    if d then return d end
  end
  return nil, ("'%s' matches none of the supported date formats; give the format explicitly, e.g. date(field, \"yyyy-MM-dd\")"):format(text)
end

return M
