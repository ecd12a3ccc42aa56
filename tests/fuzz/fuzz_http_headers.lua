-- fuzz_http_headers: aep.http's response parsing (the header callback and the table http.request
-- returns), fed as curl hands a response over: header lines one by one, then the body.
-- Input: byte 1 picks max_body and whether a status line is prepended; the header block runs to
-- the first blank line, the body is the rest.
-- Must hold: the result is a response or nil, message, "TOO_LARGE"; every header_list entry has a
-- lower-case name without ':' and a one-line value without surrounding blanks; headers[name] holds
-- each value; the body is the bytes given.
local MAX = { 0, 1, 100, 64 * 1024 * 1024 }

return function(s)
  if #s < 1 then return end
  local b = s:byte(1)
  local max_body = MAX[b % 4 + 1]
  local rest = s:sub(2)
  local cut = rest:find("\r?\n\r?\n")
  local head, body = rest, ""
  if cut then
    local e = select(2, rest:find("\r?\n\r?\n"))
    head, body = rest:sub(1, e), rest:sub(e + 1)
  end
  if (b // 4) % 2 == 1 then head = "HTTP/1.1 200 OK\r\n" .. head end
  local resp, msg, code = fuzz.http_response(head, body, max_body)
  if resp == nil then
    assert(code == "TOO_LARGE" and #body > max_body, "failed: " .. tostring(msg) .. " " .. tostring(code))
    return
  end
  assert(#body <= max_body, "a body over max_body was accepted")
  assert(resp.body == body, "body changed")
  assert(math.type(resp.status) == "integer")
  local seen = {}
  for i, kv in ipairs(resp.header_list) do
    local name, value = kv[1], kv[2]
    assert(type(name) == "string" and name ~= "" and not name:find("[%u:\n]"), "header name " .. i .. ": " .. ("%q"):format(name))
    -- one line each: no LF; a CR inside is passed through as curl delivered it (not a line end)
    assert(type(value) == "string" and not value:find("\n", 1, true), "header value " .. i .. " holds LF")
    assert(not value:find("^[ \t]") and not value:find("[ \t\r]$"), "header value " .. i .. " not trimmed")
    assert(resp.headers[name] ~= nil, "headers[" .. name .. "] missing")
    seen[name] = (seen[name] or 0) + 1
  end
  for name, v in pairs(resp.headers) do
    assert(seen[name], "headers[" .. name .. "] is not in header_list")
    assert(type(v) == "string")
  end
end
