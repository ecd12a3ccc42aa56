-- bench/heavy_mapping.lua: a CPU-heavy mapping for the `aep stream --workers` benchmark
-- (bench/stream.lua). The records are bench/gen.lua's (shaped like the loyalty samples); the
-- entity has about 20 fields, each made with string functions (case changes, patterns, gsub,
-- formatting, hashing by bytes), the kind of work customer mappings do per record: about ten times
-- the sample mapping's CPU per record.
local byte, fmt, lower, upper, gsub, match, rep, sub = string.byte, string.format, string.lower,
  string.upper, string.gsub, string.match, string.rep, string.sub

-- a cheap deterministic hash of a string (FNV-1a over its bytes)
local function fnv(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ byte(s, i)) * 16777619) & 0xffffffff
  end
  return fmt("%08x", h)
end

local function title(s)
  return (gsub(lower(s), "(%a)([%w']*)", function(a, b) return upper(a) .. b end))
end

local function initials(...)
  local out = {}
  for i, s in ipairs({ ... }) do out[i] = sub(s, 1, 1) end
  return upper(table.concat(out))
end

return function(r, ctx)
  local li, p, e = r._exchangeinternal or {}, r.person or {}, r.personalEmail or {}
  local name = p.name or {}
  local first, last = name.firstName or "", name.lastName or ""
  local email = lower(e.address or "")
  local user, domain = match(email, "^([^@]+)@(.+)$")
  user, domain = user or "", domain or ""
  local y, m, d = match(p.birthDate or "", "^(%d+)-(%d+)-(%d+)$")
  local points = tonumber(li.totalLoyaltyPoints) or 0
  local level = li.loyaltyLevel or ""
  local full = title(first .. " " .. last)
  local key = fnv(email .. "|" .. full)
  return {
    _exchangeinternal = {
      loyaltyID = li.loyaltyID,
      totalLoyaltyPoints = points,
      loyaltyLevel = upper(sub(level, 1, 1)) .. lower(sub(level, 2)),
    },
    person = {
      name = { firstName = title(first), lastName = title(last), fullName = full,
               courtesyName = fmt("%s. %s", sub(first, 1, 1), title(last)) },
      birthDate = y and fmt("%04d-%02d-%02d", tonumber(y), tonumber(m), tonumber(d)) or nil,
      gender = lower(p.gender or "not_specified"),
    },
    personalEmail = {
      address = email, primary = e.primary == true, type = lower(e.type or "personal"),
      status = lower(e.status or "active"),
    },
    bench = {
      initials = initials(first, last, domain),
      user = gsub(user, "[^%w]", "_"),
      domain = domain,
      tld = match(domain, "%.(%a+)$") or "",
      key = key,
      key2 = fnv(key .. rep(level, 3)),
      points_band = fmt("%s-%05d", level, points // 1000 * 1000),
      reversed = string.reverse(last),
      slug = lower(gsub(gsub(full, "%s+", "-"), "[^%w%-]", "")),
      position = ctx.position,
    },
  }
end
