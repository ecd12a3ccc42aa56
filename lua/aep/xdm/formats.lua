-- aep.xdm.formats: "format" checks and the Java spellings AEP's validator prints.
--
-- AEP's streaming and batch validation run everit-json-schema on org.json
-- values; messages therefore carry Java class names ("Integer", "JSONObject"),
-- Java number renderings and everit/commons-validator format semantics.
-- Each checker is  check(s) -> nil (valid) | message.

local M = {}

local floor, mtype = math.floor, math.type

-- Java renderings -------------------------------------------------------------

local INT_MIN, INT_MAX = -2147483648, 2147483647
local LONG_LIM = 9223372036854775808.0 -- 2^63

local function is_integral(v)
  return mtype(v) == "integer" or (v == floor(v) and v > -math.huge and v < math.huge)
end

-- Java's Double.toString(d) for a finite double.
local function java_double(d)
  if d ~= d then return "NaN" end
  if d == math.huge then return "Infinity" end
  if d == -math.huge then return "-Infinity" end
  if d == 0 then return (1 / d < 0) and "-0.0" or "0.0" end
  local a = math.abs(d)
  -- shortest repr that round-trips
  local s
  for p = 1, 17 do
    s = string.format("%." .. p .. "g", d)
    if tonumber(s) == d then break end
  end
  local sign = ""
  if s:sub(1, 1) == "-" then sign, s = "-", s:sub(2) end
  local mant, exp = s:match("^([%d%.]+)e([-+]%d+)$")
  local digits, e10
  if mant then
    local ip, fp = mant:match("^(%d+)%.?(%d*)$")
    digits = ip .. fp
    e10 = tonumber(exp) + #ip - 1
  else
    local ip, fp = s:match("^(%d+)%.?(%d*)$")
    if ip == "0" then
      local z = fp:match("^0*")
      digits = fp:sub(#z + 1)
      e10 = -(#z + 1)
    else
      digits = ip .. fp
      e10 = #ip - 1
    end
  end
  digits = digits:gsub("0+$", "")
  if digits == "" then digits = "0" end
  if a >= 1e-3 and a < 1e7 then
    if e10 >= 0 then
      local ip = digits:sub(1, e10 + 1)
      if #ip < e10 + 1 then ip = ip .. string.rep("0", e10 + 1 - #ip) end
      local fp = digits:sub(e10 + 2)
      if fp == "" then fp = "0" end
      return sign .. ip .. "." .. fp
    else
      return sign .. "0." .. string.rep("0", -e10 - 1) .. digits
    end
  end
  local fp = digits:sub(2)
  if fp == "" then fp = "0" end
  return sign .. digits:sub(1, 1) .. "." .. fp .. "E" .. e10
end
M.java_double = java_double

-- The Java class org.json gives a decoded JSON number: Integer, Long, BigInteger or Double.
-- cjson decodes every number as a float; an integral value stands for a JSON integer.
function M.number_class(v)
  if is_integral(v) then
    if v >= INT_MIN and v <= INT_MAX then return "Integer" end
    if v >= -LONG_LIM and v < LONG_LIM then return "Long" end
    return "BigInteger"
  end
  return "Double"
end

-- String.valueOf(number) as Java prints the decoded value.
function M.java_number(v)
  if is_integral(v) and v > -LONG_LIM and v < LONG_LIM then
    return string.format("%d", v)
  end
  if is_integral(v) then return string.format("%.0f", v) end
  return java_double(v)
end

-- M.type_name(value, null) -> the simple class name of the org.json value
function M.type_name(v, null)
  local t = type(v)
  if t == "string" then return "String" end
  if t == "number" then return M.number_class(v) end
  if t == "boolean" then return "Boolean" end
  if t == "table" then
    if rawget(v, 1) ~= nil then return "JSONArray" end
    local mt = getmetatable(v)
    if mt and (mt.__name == "aep.json.array" or mt.__jsontype == "array" or mt.__is_array == true) then
      return "JSONArray"
    end
    return "JSONObject"
  end
  if v == nil or v == null then return "Null" end
  return t
end

-- Value.toString() of an org.json value, for enum messages.
function M.java_string(v, null, encode)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return M.java_number(v) end
  if t == "boolean" then return tostring(v) end
  if v == null then return "null" end
  if t == "table" and encode then
    local ok, s = pcall(encode, v)
    if ok then return s end
  end
  return tostring(v)
end

-- Dates and times -------------------------------------------------------------
-- AEP prints its own list of accepted date-time shapes (copied verbatim from
-- Adobe's batch-ingestion troubleshooting guide, "{1-9}" included).

M.DATE_TIME_EXPECTED = "[yyyy-MM-dd'T'HH:mm:ssZ, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1-9}Z, "
  .. "yyyy-MM-dd'T'HH:mm:ss[+-]HH:mm, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,9}[+-]HH:mm]"
M.DATE_EXPECTED = "[yyyy-MM-dd]"
M.TIME_EXPECTED = "[HH:mm:ssZ, HH:mm:ss.[0-9]{1,9}Z]"

-- java.time parses each field against its own range only (day 1..31 whatever the month).
local function ymd_ok(y, mo, d)
  mo, d = tonumber(mo), tonumber(d)
  return mo >= 1 and mo <= 12 and d >= 1 and d <= 31
end

local function hms_ok(h, mi, s)
  return tonumber(h) <= 23 and tonumber(mi) <= 59 and tonumber(s) <= 59
end

local function offset_ok(off)
  if off == "Z" then return true end
  local sign, oh, om = off:match("^([+-])(%d%d):(%d%d)$")
  if not sign then return false end
  oh, om = tonumber(oh), tonumber(om)
  if om > 59 or oh > 18 or (oh == 18 and om > 0) then return false end
  return true
end

local function time_ok(rest)
  -- HH:mm:ss[.f{1,9}](Z|+HH:MM)
  local h, mi, s, tail = rest:match("^(%d%d):(%d%d):(%d%d)(.*)$")
  if not h or not hms_ok(h, mi, s) then return false end
  local frac, off = tail:match("^%.(%d+)(.*)$")
  if frac then
    if #frac > 9 then return false end
    tail = off
  end
  return offset_ok(tail)
end

function M.date_time(s)
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(.*)$")
  if y and ymd_ok(y, mo, d) and time_ok(rest) then return nil end
  return "[" .. s .. "] is not a valid date-time. Expected " .. M.DATE_TIME_EXPECTED
end

function M.date(s)
  local y, mo, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if y and ymd_ok(y, mo, d) then return nil end
  return "[" .. s .. "] is not a valid date. Expected " .. M.DATE_EXPECTED
end

function M.time(s)
  if time_ok(s) then return nil end
  return "[" .. s .. "] is not a valid time. Expected " .. M.TIME_EXPECTED
end

-- IP addresses (commons-validator InetAddressValidator) ------------------------

local function ipv4_ok(s)
  local a, b, c, d = s:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  if not a then return false end
  for _, seg in ipairs({ a, b, c, d }) do
    if tonumber(seg) > 255 then return false end
    if #seg > 1 and seg:sub(1, 1) == "0" then return false end
  end
  return true
end

local function ipv6_ok(s)
  if s:find("[^%x:%.]") then return false end
  local v4tail = s:match(":([%d%.]+)$")
  local groups_needed = 8
  local body = s
  if v4tail and v4tail:find("%.") then
    if not ipv4_ok(v4tail) then return false end
    groups_needed = 6
    body = s:sub(1, #s - #v4tail)
    if body:sub(-2) ~= "::" then body = body:sub(1, -2) end
  elseif s:find("%.") then
    return false
  end
  local dbl = select(2, body:gsub("::", "::"))
  if dbl > 1 then return false end
  if body:find(":::") then return false end
  local count = 0
  if dbl == 1 then
    local left, right = body:match("^(.-)::(.*)$")
    for part in (left .. ":"):gmatch("([^:]*):") do
      if left ~= "" then
        if #part < 1 or #part > 4 then return false end
        count = count + 1
      end
    end
    for part in (right .. ":"):gmatch("([^:]*):") do
      if right ~= "" then
        if #part < 1 or #part > 4 then return false end
        count = count + 1
      end
    end
    if left == "" and body:sub(1, 2) ~= "::" then return false end
    return count < groups_needed
  end
  if body == "" then return false end
  for part in (body .. ":"):gmatch("([^:]*):") do
    if #part < 1 or #part > 4 then return false end
    count = count + 1
  end
  return count == groups_needed
end

function M.ipv4(s)
  if ipv4_ok(s) then return nil end
  return "[" .. s .. "] is not a valid ipv4 address"
end

function M.ipv6(s)
  if ipv6_ok(s) then return nil end
  return "[" .. s .. "] is not a valid ipv6 address"
end

-- Email (everit -> commons-validator EmailValidator(allowLocal=false, allowTld=true)) ---

-- Top-level domains the validator knows: country codes, infrastructure and
-- a broad selection of generic TLDs (commons-validator carries IANA's list).
local TLDS = {}
for t in ([[
arpa
aero asia biz cat com coop edu gov info int jobs mil mobi museum name net org post pro tel travel xxx
academy accountant accountants actor adult agency airforce apartments app army art associates attorney
auction audio auto autos baby band bank bar bargains beer berlin best bet bible bid bike bingo bio black
blog blue boats boston boutique build builders business buzz cab cafe cam camera camp capital car cards
care career careers cars casa cash casino catering center ceo charity chat cheap church city claims
cleaning click clinic clothing cloud club coach codes coffee college community company computer condos
construction consulting contractors cooking cool country coupons courses credit creditcard cricket cruises
dance date dating deals degree delivery democrat dental dentist design dev diamonds diet digital direct
directory discount doctor dog domains download earth eco education email energy engineer engineering
enterprises equipment estate events exchange expert exposed express fail faith family fan fans farm
fashion film finance financial fish fishing fit fitness flights florist flowers football forsale
foundation free fun fund furniture futbol fyi gallery game games garden gay gift gifts gives glass
global gmbh gold golf google graphics gratis green gripe group guide guitars guru hair health healthcare
help hiphop hiv hockey holdings holiday homes horse hospital host hosting house how icu immo immobilien
inc industries ink institute insure international investments irish jetzt jewelry juegos kaufen kim
kitchen kiwi land lat law lawyer lease legal lgbt life lighting limited limo link live llc loan loans
lol london love ltd luxury maison management market marketing mba media memorial men menu miami moda moe
mom money monster mortgage motorcycles mov movie music nagoya navy network new news nexus ngo ninja nyc
observer office one ong onl online ooo organic page paris partners parts party pet phd photo photography
photos pics pictures pink pizza place plumbing plus poker porn press productions promo properties
property pub qpon quebec racing radio realestate realty recipes red rehab reise reisen reit ren rent
rentals repair report republican rest restaurant review reviews rich rip rocks rodeo run sale salon
sarl school schule science security services sex sexy shiksha shoes shop shopping show singles site ski
soccer social software solar solutions soy space sport store stream studio study style sucks supplies
supply support surf surgery swiss systems tattoo tax taxi team tech technology tennis theater tickets
tienda tips tires today tokyo tools top tours town toys trade trading training tube tv uno vacations
vegas ventures vet viajes video villas vin vip vision vodka vote voting voto voyage wang watch webcam
website wedding wien wiki win wine work works world wtf xyz yoga zone
ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by
bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi
fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im
in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc
md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa
pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss
st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn
vu wf ws ye yt za zm zw
]]):gmatch("%S+") do TLDS[t] = true end

local function valid_tld(t)
  t = t:gsub("^%.", ""):lower()
  if t:find("[\128-\255]") then return true end -- IDN TLD: accepted (punycode not modelled)
  return TLDS[t] == true
end

local function label_ok(l)
  if #l < 1 or #l > 63 then return false end
  if l:find("[\128-\255]") then return true end -- IDN label, converted to punycode by the validator
  return l:match("^%w$") ~= nil or l:match("^%w[%w%-]*%w$") ~= nil
end

local function domain_ok(d)
  if #d > 253 then return false end
  local ip = d:match("^%[(.*)%]$")
  if ip then return ipv4_ok(ip) or ipv6_ok(ip) end
  local body = d:gsub("%.$", "")
  local labels = {}
  for l in (body .. "."):gmatch("([^.]*)%.") do labels[#labels + 1] = l end
  if #labels >= 2 then
    for i = 1, #labels do
      if not label_ok(labels[i]) then return false end
    end
    local tld = labels[#labels]
    if not tld:find("[\128-\255]") and not tld:match("^%a") then return false end
    if valid_tld(tld) then return true end
    return false
  end
  -- allowTld: a bare TLD is a valid domain
  return d:sub(1, 1) ~= "." and valid_tld(d)
end

local SPECIAL = "[%c%(%)<>@,;:'\\\"%.%[%]]"

local function user_ok(u)
  -- length in UTF-16 units
  local ok, len = pcall(utf8.len, u)
  if not ok or not len then len = #u end
  if len > 64 then return false end
  -- WORD ( "." WORD )* ; WORD = ( \\. | [^\s SPECIAL] | ' )+ | "quoted"
  local i, n = 1, #u
  local function word()
    if u:sub(i, i) == '"' then
      local j = i + 1
      while j <= n do
        local c = u:sub(j, j)
        if c == "\\" and u:sub(j + 1, j + 1) == '"' then j = j + 2
        elseif c == '"' then i = j + 1; return true
        else j = j + 1 end
      end
      return false
    end
    local start = i
    while i <= n do
      local c = u:sub(i, i)
      if c == "\\" and i < n then
        local nx = u:sub(i + 1, i + 1)
        if nx == "\n" or nx == "\r" then return false end
        i = i + 2
      elseif c == "'" then
        i = i + 1
      elseif c == "." or c:find("%s") or c:find(SPECIAL) then
        break
      else
        i = i + 1
      end
    end
    return i > start
  end
  if not word() then return false end
  while i <= n do
    if u:sub(i, i) ~= "." then return false end
    i = i + 1
    if not word() then return false end
  end
  return true
end

local LONG_LABEL = string.rep("[%w%-]", 64)

-- The common shape (dot-atoms of plain characters @ an ASCII host name), checked with a few
-- patterns; anything else goes through the full commons-validator rules below.
local function email_fast(s)
  local at, tld = s:match("^[%w_%+%-][%w_%+%-%.]*()@%w[%w%-%.]*%.(%a%w*)$")
  if not at or at > 65 or #s - at > 253 then return false end
  if s:find("..", 1, true) or s:find(".@", 1, true) or s:find(".-", 1, true) or s:find("-.", 1, true) then
    return false
  end
  if #s - at > 63 and s:find(LONG_LABEL, at) then return false end
  return TLDS[tld] == true or TLDS[tld:lower()] == true
end

local function email_ok(s)
  if email_fast(s) then return true end
  if s:sub(-1) == "." then return false end
  local at
  for pos = #s, 1, -1 do
    if s:sub(pos, pos) == "@" then at = pos; break end
  end
  if not at or at == 1 or at == #s then return false end
  local user, domain = s:sub(1, at - 1), s:sub(at + 1)
  if domain:find("%s") then return false end
  if user:find("[\n\r]") or user:find("\194\133") or user:find("\226\128[\168\169]") then return false end
  return user_ok(user) and domain_ok(domain)
end

-- The last address checked, remembered: a record often carries one address twice (an identity
-- field and personalEmail.address), and the check is the costliest of a record's.
local last_email, last_email_ok
function M.email(s)
  local ok
  if s == last_email then
    ok = last_email_ok
  else
    ok = email_ok(s)
    last_email, last_email_ok = s, ok
  end
  if ok then return nil end
  return "[" .. s .. "] is not a valid email address"
end

-- Hostname (DomainValidator-like) ---------------------------------------------

function M.hostname(s)
  local ok = #s <= 255 and #s > 0
  if ok then
    for l in (s .. "."):gmatch("([^.]*)%.") do
      if not (l:match("^%w$") or l:match("^%w[%w%-]*%w$")) or #l > 63 then ok = false; break end
    end
  end
  if ok then return nil end
  return "[" .. s .. "] is not a valid hostname"
end

-- URIs (java.net.URI) ----------------------------------------------------------

local function uri_chars_ok(s, allow_brackets)
  local i, n = 1, #s
  local hashes = 0
  while i <= n do
    local b = s:byte(i)
    if b == 37 then -- %
      if not s:sub(i + 1, i + 2):match("^%x%x$") then return false end
      i = i + 3
    else
      if b <= 32 or b == 127 then return false end
      if b < 128 then
        local c = string.char(b)
        if c:find('["<>\\%^`{|}]') then return false end
        if (c == "[" or c == "]") and not allow_brackets then return false end
        if c == "#" then
          hashes = hashes + 1
          if hashes > 1 then return false end
        end
      elseif b == 0xC2 then
        local b2 = s:byte(i + 1)
        -- U+0080..U+00A0: C1 controls and NBSP are "other" but not allowed by java.net.URI
        if b2 and b2 <= 0xA0 then return false end
      end
      i = i + 1
    end
  end
  return true
end

-- returns ok, has_scheme
local function parse_uri(s)
  local scheme, rest = s:match("^([^:/?#]*):(.*)$")
  local brackets_ok = s:match("^[^/]*//[^/]*%[[%x:%.]+%]") ~= nil
  if scheme then
    if scheme == "" then return false end
    if not scheme:match("^%a[%w+%-.]*$") then return false end
    if rest == "" then return false end -- expected scheme-specific part
    if rest:sub(1, 1) == "#" then return false end
    if rest:sub(1, 2) == "//" then
      local auth, after = rest:match("^//([^/?#]*)(.*)$")
      if auth == "" and after == "" then return false end -- expected authority
    end
    return uri_chars_ok(rest, brackets_ok), true
  end
  if s:sub(1, 2) == "//" then
    local auth, after = s:match("^//([^/?#]*)(.*)$")
    if auth == "" and after == "" then return false end
  end
  return uri_chars_ok(s, brackets_ok), false
end

function M.uri(s)
  local ok, has_scheme = parse_uri(s)
  if ok and (has_scheme or s:sub(1, 2) == "//") then return nil end
  return "[" .. s .. "] is not a valid URI"
end

function M.uri_reference(s)
  if parse_uri(s) then return nil end
  return "[" .. s .. "] is not a valid URI reference"
end

-- name -> checker; formats not listed are not validated (as everit ignores them)
M.checkers = {
  ["date-time"] = M.date_time,
  ["date"] = M.date,
  ["time"] = M.time,
  ["email"] = M.email,
  ["uri"] = M.uri,
  ["uri-reference"] = M.uri_reference,
  ["ipv4"] = M.ipv4,
  ["ipv6"] = M.ipv6,
  ["hostname"] = M.hostname,
}

return M
