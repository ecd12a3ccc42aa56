-- URL functions (functions.md). URLs are read as java.net.URI reads them: scheme ":" ["//"
-- authority] path ["?" query] ["#" fragment]; an input that is not a URL gives null. The default
-- ports are those of the schemes' registrations (the doc's example: sftp -> 22).
local values = require "aep.dataprep.values"

local to_string, fail = values.to_string, values.fail

local DEFAULT_PORTS = { http = 80, https = 443, ftp = 21, sftp = 22, ssh = 22, telnet = 23, smtp = 25,
  ldap = 389, ldaps = 636, ws = 80, wss = 443, imap = 143, pop3 = 110, rtsp = 554 }

-- parse(url) -> {scheme, host, port, path, query, fragment} | nil
local function parse(url)
  if url == nil then return nil end
  url = to_string(url)
  if url:find("[%s\"<>\\^`{|}]") then return nil end
  local scheme, rest = url:match("^(%a[%w%+%-%.]*):(.*)$")
  if not scheme then return nil end
  local u = { scheme = scheme }
  rest, u.fragment = rest:match("^([^#]*)#?(.*)$")
  if not url:find("#", 1, true) then u.fragment = nil end
  local q = rest:find("?", 1, true)
  if q then u.query, rest = rest:sub(q + 1), rest:sub(1, q - 1) end
  local authority, path = rest:match("^//([^/]*)(.*)$")
  if authority then
    local hostport = authority:match("@(.*)$") or authority
    local host, port = hostport:match("^(%[[^%]]+%]):?(%d*)$")
    if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
    if not host then return nil end
    u.host, u.port = host ~= "" and host or nil, port ~= "" and tonumber(port) or nil
    u.path = path
  else
    u.path = rest
  end
  return u
end

local F = {}

F.get_url_protocol = { min = 1, returns = "string", fn = function(url)
  local u = parse(url)
  return u and u.scheme
end }

F.get_url_host = { min = 1, returns = "string", fn = function(url)
  local u = parse(url)
  return u and u.host
end }

F.get_url_port = { min = 1, returns = "integer", fn = function(url)
  local u = parse(url)
  if not u then return nil end
  return u.port or DEFAULT_PORTS[u.scheme:lower()]
end }

F.get_url_path = { min = 1, max = 2, returns = "string", fn = function(url, full)
  local u = parse(url)
  if not u then return nil end
  if full == false or full == "false" then return u.path:match("([^/]*)$") end
  return u.path
end }

local function decode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

F.get_url_query_str = { min = 1, max = 2, returns = "object", fn = function(url, anchor)
  local u = parse(url)
  if not u then return nil end
  anchor = anchor == nil and "retain" or to_string(anchor)
  if anchor ~= "retain" and anchor ~= "remove" and anchor ~= "append" then
    fail("get_url_query_str: ANCHOR must be \"retain\", \"remove\" or \"append\", got \"%s\"", anchor)
  end
  local out = {}
  local query = u.query or ""
  if anchor == "retain" and u.fragment then query = query .. "#" .. u.fragment end
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[decode(k)] = decode(v)
  end
  if anchor == "append" and u.fragment then out._anchor_ = u.fragment end
  return out
end }

-- the reserved characters of functions.md's appendix, and every other byte outside
-- A-Z a-z 0-9 - _ . * (java.net.URLEncoder's unreserved set)
F.get_url_encoded = { min = 1, returns = "string", fn = function(url)
  if url == nil then return nil end
  return (to_string(url):gsub("[^%w%-_%.%*]", function(c)
    if c == " " then return "%20" end
    return ("%%%02X"):format(c:byte())
  end))
end }

F.get_url_decoded = { min = 1, returns = "string", fn = function(url)
  if url == nil then return nil end
  return (to_string(url):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end }

return F
