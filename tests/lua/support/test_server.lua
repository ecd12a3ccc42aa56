-- A loopback HTTP server for the http and server specs, run as a child process:
--   aep tests/lua/support/test_server.lua [--tls CERTFILE KEYFILE] [--max-body N]
-- Listens on 127.0.0.1, port 0, prints "listening on <url>" (flushed) and serves until
-- SIGINT/SIGTERM or GET /stop. Routes:
--   /status/<n>          answers status n, body {"status":n}
--   /sleep?s=<seconds>   answers 200 "slept" after s seconds (the `delay` field: not blocking)
--   /error               the handler raises "boom" (-> 500 JSON)
--   /big?bytes=N         N bytes of "x"
--   /body                the request body, as is (application/octet-stream)
--   /drop?when=before|after|close|reset[&s=delay]   closes the connection without a (complete) answer
--   /drop-once?key=K[&when=close|reset]  the first request with key K: as /drop (after it was
--                        counted); later ones: 200 {"key":K,"seen":N} (N requests seen for K)
--   /stop                answers 200, then the server stops
--   anything else        echo: JSON {method, path, raw_path, raw_query, query, query_all,
--                        headers, body, remote, remote_port}
local server = require "aep.server"
local cjson = require "cjson"
local files = require "tests.lua.support.files"

local function read_file(path) return assert(files.read(path)) end

local opts = { host = "127.0.0.1", port = 0 }
local i = 1
while i <= #arg do
  if arg[i] == "--tls" then
    opts.tls_cert, opts.tls_key = read_file(arg[i + 1]), read_file(arg[i + 2])
    i = i + 3
  elseif arg[i] == "--max-body" then
    opts.max_body = math.tointeger(tonumber(arg[i + 1]))
    i = i + 2
  else
    io.stderr:write("test_server: unknown argument ", arg[i], "\n")
    os.exit(2)
  end
end

local srv = assert(server.listen(opts))

local json_headers = { ["Content-Type"] = "application/json" }
local seen = {} -- /drop-once: key -> requests seen

local function handler(req)
  local path = req.path
  local n = path:match("^/status/(%d+)$")
  if n then
    return tonumber(n), json_headers, cjson.encode({ status = tonumber(n) })
  elseif path == "/sleep" then
    return { status = 200, body = "slept", delay = tonumber(req.query.s) or 1 }
  elseif path == "/error" then
    error("boom")
  elseif path == "/big" then
    return 200, { ["Content-Type"] = "text/plain" }, string.rep("x", tonumber(req.query.bytes) or 0)
  elseif path == "/body" then
    return 200, { ["Content-Type"] = "application/octet-stream" }, req.body
  elseif path == "/drop" then
    return { drop = req.query.when or "before", delay = tonumber(req.query.s), body = "never complete" }
  elseif path == "/drop-once" then
    local key = req.query.key or ""
    seen[key] = (seen[key] or 0) + 1
    if seen[key] == 1 then return { drop = req.query.when or "close" } end
    return 200, json_headers, cjson.encode({ key = key, seen = seen[key] })
  elseif path == "/stop" then
    srv:stop()
    return 200, nil, "stopping"
  end
  return 200, json_headers, cjson.encode({
    method = req.method, path = req.path, raw_path = req.raw_path, raw_query = req.raw_query,
    query = req.query, query_all = req.query_all, headers = req.headers, body = req.body,
    remote = req.remote, remote_port = req.remote_port,
  })
end

-- print the ready line from serve's ready callback: by then SIGINT/SIGTERM are caught
local how = srv:serve(handler, function()
  io.stdout:write("listening on ", srv:url(), "\n")
  io.stdout:flush()
end)
srv:close()
io.stdout:write("test_server: ", how, "\n")
io.stdout:flush()
