-- fuzz_server: aep.server's request handling. Each input is the raw bytes a client sends on one
-- loopback connection (request line, headers, body; several pipelined requests or garbage); the
-- server (libmicrohttpd driven by srv:step, as aep.server runs it) parses them, builds the request
-- table (method, path, raw_path, query, query_all, headers, body, remote) and calls a Lua handler
-- that checks it and answers in every form the contract allows (status/headers/body, a response
-- table, delay, drop before/after, an error, response headers taken from the request).
-- Must hold: the request table has the documented types; the body never exceeds max_body; the
-- server never raises and keeps serving; the connection always ends.
local server = require "aep.server"

local MAX_BODY = 4096
local srv = assert(server.listen { host = "127.0.0.1", port = 0, max_body = MAX_BODY, idle_timeout = 5 })
local port = srv:port()

local function is_str(v) return type(v) == "string" end

local function handler(req)
  assert(is_str(req.method) and req.method ~= "", "method")
  assert(is_str(req.path) and is_str(req.raw_path) and is_str(req.raw_query), "path")
  assert(is_str(req.body) and #req.body <= MAX_BODY, "body")
  assert(req.remote == "127.0.0.1", "remote " .. tostring(req.remote))
  for k, v in pairs(req.query) do assert(is_str(k) and is_str(v), "query") end
  for k, vs in pairs(req.query_all) do
    assert(is_str(k) and type(vs) == "table" and #vs >= 1 and req.query[k] == vs[#vs], "query_all")
    for _, v in ipairs(vs) do assert(is_str(v)) end
  end
  for k, v in pairs(req.headers) do assert(is_str(k) and k == k:lower() and is_str(v), "headers") end
  local h = req.headers
  local mode = h["x-mode"] or req.query.mode or ""
  local echo = { ["X-Echo"] = h["x-echo"], ["Content-Type"] = h["x-type"] }
  if mode == "drop-before" then return { drop = "before" } end
  if mode == "drop-after" then return { status = 200, body = req.body .. req.path, drop = "after" } end
  if mode == "delay" then return { status = 202, delay = 0.0005, headers = echo, body = req.raw_query } end
  if mode == "error" then error("handler failed on purpose") end
  if mode == "table" then return { status = tonumber(req.query.status), headers = echo, body = req.body } end
  if mode == "bad" then return req.query.status, echo, 42 end
  return math.tointeger(tonumber(req.query.status)) or 200, echo, req.method .. " " .. req.path .. "\n" .. req.body
end

return function(data)
  local fd = fuzz.connect(port)
  local sent, closed_write, done = 1, false, false
  for _ = 1, 4000 do
    srv:step(0, handler)
    if sent <= #data then
      local n = fuzz.send(fd, data, sent)
      if n == nil then sent = #data + 1 else sent = sent + n end
    elseif not closed_write then
      fuzz.shutdown(fd)
      closed_write = true
    end
    while true do
      local r = fuzz.recv(fd)
      if r == nil then done = true break end
      if r == false then break end
    end
    if done and closed_write then break end
  end
  fuzz.close(fd)
  -- let the server notice the close and free the connection
  for _ = 1, 3 do srv:step(0, handler) end
end
