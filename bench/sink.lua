-- bench/sink.lua: a trivial streaming sink for `aep stream` benchmarks. It reads every request
-- body in full (libmicrohttpd hands the handler the whole body), counts the messages of a batch
-- without decoding them (each message of `aep stream` starts with {"header":), and answers AEP's
-- 207 with one xactionId per message at once. The answers are cached per message count, so the
-- sink costs a scan of the body and nothing else.
--
--   aep bench/sink.lua [PORT]      prints "listening on http://127.0.0.1:PORT", serves until SIGTERM
local server = require "aep.server"

local port = tonumber(arg and arg[1]) or 0
local srv = assert(server.listen({ host = "127.0.0.1", port = port, max_body = 2 * 1024 * 1024 }))
io.stdout:write("listening on ", srv:url(), "\n")
io.stdout:flush()

local find = string.find
local cache = {}
local HEADERS = { ["Content-Type"] = "application/json" }
local requests, messages = 0, 0

local function answer(n)
  local a = cache[n]
  if a then return a end
  local parts = {}
  for i = 1, n do parts[i] = '{"xactionId":"1:1:' .. (i - 1) .. '"}' end
  a = '{"inletId":"sink","batchId":"1:1","receivedTimeMs":1,"responses":[' .. table.concat(parts, ",") .. "]}"
  cache[n] = a
  return a
end

local function count(body)
  local n, at = 0, 1
  while true do
    at = find(body, '{"header":', at, true)
    if not at then return n end
    n = n + 1
    at = at + 10
  end
end

srv:serve(function(req)
  if req.method ~= "POST" then
    return 200, HEADERS, string.format('{"requests":%d,"messages":%d}', requests, messages)
  end
  local body = req.body or ""
  requests = requests + 1
  if find(req.path, "/collection/batch/", 1, true) then
    local n = count(body)
    messages = messages + n
    return 207, HEADERS, answer(n)
  end
  messages = messages + 1
  return 200, HEADERS, '{"inletId":"sink","xactionId":"1:1:0","receivedTimeMs":1}'
end)
