-- bench/gen.lua: N records shaped like data/AEP_loyalty_profiles.json (one JSON object per line).
--   aep bench/gen.lua N [FILE] [--array]
-- Deterministic (record i is always the same), so runs can be compared.
local n = tonumber(arg[1]) or 10000
local path = arg[2] or "-"
local as_array = arg[3] == "--array"
local out = path == "-" and io.stdout or assert(io.open(path, "wb"))
out:setvbuf("full", 1 << 20)
local levels = { "Silver", "Gold", "Platinum", "Diamond" }
local first = { "Timi", "Alexia", "Dorree", "Nisse", "Jan", "Maria", "Kofi", "Ana", "Li", "Sven" }
local last = { "Scrowby", "O'Dowling", "Corse", "Klug", "Coneley", "Silva", "Mensah", "Lopez", "Wei", "Berg" }
local domains = { "chicagotribune.com", "examiner.com", "youtu.be", "elpais.com", "t-online.de" }
if as_array then out:write("[") end
for i = 1, n do
  local fi, la = first[i % 10 + 1], last[(i // 10) % 10 + 1]
  local email = string.format("%s.%s%d@%s", fi:lower(), la:lower():gsub("'", ""), i, domains[i % 5 + 1])
  local rec = string.format(
    '{"_exchangeinternal":{"loyaltyID":"%s","totalLoyaltyPoints":%d,"loyaltyLevel":"%s"},' ..
    '"person":{"name":{"firstName":"%s","lastName":"%s","middleName":""},"birthDate":"19%02d-%02d-%02d","gender":"%s"},' ..
    '"personalEmail":{"primary":%s,"address":"%s","type":"personal","status":"active"}}',
    email, (i * 7919) % 500000, levels[i % 4 + 1], fi, la:gsub("'", "\\u0027"), 40 + i % 60, 1 + i % 12, 1 + i % 28,
    i % 2 == 0 and "male" or "female", i % 3 == 0 and "true" or "false", email)
  if as_array then
    out:write(rec, i < n and ",\n" or "]\n")
  else
    out:write(rec, "\n")
  end
end
if out ~= io.stdout then out:close() else out:flush() end
