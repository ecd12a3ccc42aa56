-- aep.platform: the one Platform request helper every service module goes through.
--
--   local client = platform.new(cfg)             -- cfg from aep.config
--   local resp = client:request{ method = "GET", path = "/data/foundation/schemaregistry/stats" }
--   resp.status, resp.headers, resp.body, resp.json (decoded when the answer is JSON)
--
-- It adds the base URL and the standard headers (Authorization, x-api-key, x-gw-ims-org-id,
-- x-sandbox-name), encodes and decodes JSON, and turns AEP's error bodies (gateway
-- {error_code,message}; problem details {type,title,status,detail,report}; Flow Service
-- {errorMessage}; IMS {error,error_description}) into error objects that carry status, code,
-- title, detail, report, violations and the request (method + URL, secrets redacted). Errors are
-- raised as tables with __tostring.
--
-- Retries: 429, 500, 502, 503, 504 and transport errors are retried with exponential backoff and
-- jitter (honouring Retry-After) on requests that are safe to repeat: GET, HEAD, PUT, DELETE,
-- OPTIONS, and a POST/PATCH the caller marks `idempotent = true`. Any request is retried on 429
-- and 503 (AEP did not process it) and when it provably never left (connection refused, DNS, with
-- no earlier copy sent: see aep.http's `resent`). A POST that may have been processed (500, 502,
-- 504, the connection broke after sending, or curl sent it twice by itself) is never repeated
-- blindly: it raises code OUTCOME_UNKNOWN, and the caller decides (the workflow looks the resource
-- up again). A 401 triggers one re-authentication.
local json = require "aep.json"
local log = require "aep.log"
local errors = require "aep.errors"
local host = require "aep.host"
local xdm_report = require "aep.xdm.report"

local M = {}

-- ---------------------------------------------------------------------------------------------
-- Error objects (aep.errors: shared with aep.ims and the commands)

M.Error = errors.Error
M.error = errors.new
M.is_error = errors.is_error

local function first_string(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" and v ~= "" then return v end
    if type(v) == "number" then return tostring(math.tointeger(v) or v) end
  end
  return nil
end

-- Collect the violations of a validation report (DCS _streamingValidation, Schema Registry
-- sub-errors, batch errors) as {path=, keyword=, message=}.
local function collect_violations(report, out)
  out = out or {}
  if type(report) ~= "table" then return out end
  local cause = report.cause
  if type(cause) == "table" then
    local sv = cause._streamingValidation or cause.streamingValidation
    if type(sv) == "table" then
      -- everit nests violations (per object, and type+enum as an allOf): show the leaves
      for _, leaf in ipairs(xdm_report.leaves(sv)) do
        out[#out + 1] = { path = leaf.pointerToViolation, keyword = leaf.keyword, message = leaf.message }
      end
    end
  end
  local sub = report["sub-errors"] or report.subErrors
  if type(sub) == "table" then
    for _, s in ipairs(sub) do
      if type(s) == "table" then
        out[#out + 1] = { path = s.path or s.pointer, keyword = s.code or s.keyword, message = s.message or s.detail or s.title }
      elseif type(s) == "string" then
        out[#out + 1] = { message = s }
      end
    end
  end
  return out
end
M.collect_violations = collect_violations

-- platform.parse_error(status, body_text) -> {code=, title=, detail=, report=, type=, violations=}
-- Understands AEP's three error shapes and IMS's.
function M.parse_error(status, body)
  local info = { violations = {} }
  local doc = type(body) == "string" and body ~= "" and json.decode(body) or nil
  if type(doc) == "table" and doc[1] ~= nil and type(doc[1]) == "table" then doc = doc[1] end
  if type(doc) ~= "table" then
    if type(body) == "string" and body ~= "" then
      info.title = #body > 200 and (body:sub(1, 200) .. "...") or body
    end
    return info
  end
  if doc.error_code then                                   -- gateway: {error_code, message}
    info.code = first_string(doc.error_code)
    info.title = first_string(doc.message)
  elseif doc.errorMessage then                             -- Flow Service etag conflicts
    info.title = first_string(doc.errorMessage)
    if tostring(doc.errorMessage):find("does not match the current version", 1, true) then
      info.code = "ETAG_MISMATCH"
    end
  elseif doc.error and (doc.error_description or not doc.title) then -- IMS
    info.code = first_string(doc.error)
    info.title = first_string(doc.error_description, doc.message, doc.error)
  end
  if doc.type or doc.title or doc.detail or doc.report then  -- problem details
    info.type = first_string(doc.type)
    info.title = info.title or first_string(doc.title)
    info.detail = first_string(doc.detail)
    info.report = doc.report
    if not info.code then
      local t = info.type and info.type:match("([%u%d]+%-%d+%-%d+)$")
      info.code = t or first_string(doc.error, doc.code, type(doc.report) == "table" and doc.report.code or nil,
        doc["error-code"])
    end
    if not info.detail and type(doc.report) == "table" then
      info.detail = first_string(doc.report["detailed-message"], doc.report.message)
    end
  end
  if not info.code then info.code = first_string(doc.code, doc.error_code, doc.errorCode) end
  if not info.title then info.title = first_string(doc.message, doc.title, doc.error) end
  if not info.detail then info.detail = first_string(doc.detail, doc.details) end
  collect_violations(info.report, info.violations)
  return info
end

-- ---------------------------------------------------------------------------------------------
-- URLs

-- platform.urlencode(s) -> RFC 3986 percent-encoding (unreserved characters kept)
function M.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- platform.form(pairs) -> application/x-www-form-urlencoded body from {{k, v}, ...} or {k = v}
function M.form(fields)
  local parts = {}
  if fields[1] then
    for _, kv in ipairs(fields) do parts[#parts + 1] = M.urlencode(kv[1]) .. "=" .. M.urlencode(kv[2]) end
  else
    local keys = {}
    for k in pairs(fields) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = M.urlencode(k) .. "=" .. M.urlencode(fields[k]) end
  end
  return table.concat(parts, "&")
end

-- platform.query_string(q) -> "a=1&b=2" from {a = 1, b = 2} (sorted) or {{"a", 1}, ...} (in order);
-- false/nil values are left out
function M.query_string(q)
  if type(q) == "string" then return q end
  local items = {}
  if q[1] then
    for _, kv in ipairs(q) do
      if kv[2] ~= nil and kv[2] ~= false then items[#items + 1] = { kv[1], kv[2] } end
    end
  else
    local keys = {}
    for k, v in pairs(q) do if v ~= nil and v ~= false then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do items[#items + 1] = { k, q[k] } end
  end
  local parts = {}
  for _, kv in ipairs(items) do
    local v = kv[2]
    if type(v) == "number" then v = math.tointeger(v) or v end
    if v == true then v = "true" end
    parts[#parts + 1] = M.urlencode(kv[1]) .. "=" .. M.urlencode(tostring(v))
  end
  return table.concat(parts, "&")
end

-- platform.join_url(base, path, query) -> URL
function M.join_url(base, path, query)
  local url
  if path:match("^%a[%w+.-]*://") then
    url = path
  else
    url = base:gsub("/+$", "") .. (path:sub(1, 1) == "/" and path or ("/" .. path))
  end
  if query then
    local qs = M.query_string(query)
    if qs ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. qs end
  end
  return url
end

local function safe_url(url)
  return log.redact(log.mask_fields(url))
end

-- ---------------------------------------------------------------------------------------------
-- Retry policy

-- Statuses retried on requests safe to repeat ...
M.RETRY_STATUS = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
-- ... and on any request: AEP says it did not process it.
M.RETRY_NOT_PROCESSED = { [429] = true, [503] = true }
M.SAFE_METHODS = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
-- Transport failures where nothing reached the server: any request may be repeated.
M.NOT_SENT = { CONNECT = true, DNS = true }
-- Transport failures that retrying cannot cure.
M.FATAL_TRANSPORT = { TLS = true, TOO_LARGE = true, INTERRUPTED = true }

M.defaults = {
  max_attempts = 5,      -- first try included
  backoff_base = 0.5,    -- seconds; doubles each attempt
  backoff_cap = 20,      -- seconds
  max_retry_after = 120, -- a longer Retry-After is not waited for: the error is raised
  timeout = 60,
  connect_timeout = 10,
}

-- platform.retry_after(headers [, now]) -> seconds | nil (delta-seconds or an HTTP date)
function M.retry_after(headers, now)
  local v = headers and (headers["retry-after"] or headers["Retry-After"])
  if not v then return nil end
  v = tostring(v):gsub("^%s+", ""):gsub("%s+$", "")
  local n = tonumber(v)
  if n then return math.max(0, n) end
  -- IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
  local d, mon, y, hh, mm, ss = v:match("^%a+,%s+(%d+)%s+(%a+)%s+(%d+)%s+(%d+):(%d+):(%d+)%s+GMT$")
  if d then
    local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
    local m = months[mon]
    if not m then return nil end
    local t = os.time({ year = tonumber(y), month = m, day = tonumber(d), hour = tonumber(hh), min = tonumber(mm), sec = tonumber(ss), isdst = false })
    -- os.time reads the table as local time; correct by the offset between local and UTC
    local utc_now = os.time(os.date("!*t"))
    local local_now = os.time()
    t = t + (local_now - utc_now)
    return math.max(0, t - (now or os.time()))
  end
  return nil
end

-- ---------------------------------------------------------------------------------------------
-- The client

local Client = {}
Client.__index = Client
M.Client = Client

local function default_sleep(seconds)
  if host.sleep(seconds) == false then error("interrupted", 0) end
end

local function default_now()
  return host.now()
end

local function default_random()
  return math.random()
end

-- platform.new(cfg [, opts]) -> client
-- opts: http (module with request(t)), session (auth provider with :token() and :invalidate()),
-- sleep(seconds), now(), random(), max_attempts, backoff_base, backoff_cap, max_retry_after,
-- timeout, connect_timeout. Unset opts take platform.defaults.
function M.new(cfg, opts)
  opts = opts or {}
  local self = setmetatable({}, Client)
  self.cfg = cfg
  self.http = opts.http or require("aep.http")
  self.sleep = opts.sleep or default_sleep
  self.now = opts.now or default_now
  self.random = opts.random or default_random
  for k, v in pairs(M.defaults) do self[k] = opts[k] or v end
  self.stats = { requests = 0, retries = 0, reauth = 0, sleeps = {} }
  self.session = opts.session
  if cfg then
    self.insecure = cfg:insecure()
    self.cainfo = cfg:cacert()
    if self.insecure and not opts.quiet_insecure then
      log.warn("TLS certificate verification is off (--insecure): use only against a test server")
    end
  end
  return self
end

-- client:auth() -> the auth session (aep.ims), created on first use
function Client:auth()
  if not self.session then
    self.session = require("aep.ims").new(self.cfg, { client = self })
  end
  return self.session
end

-- client:backoff(attempt) -> seconds to wait before attempt+1: exponential, capped, with jitter
function Client:backoff(attempt)
  local d = math.min(self.backoff_cap, self.backoff_base * 2 ^ (attempt - 1))
  return d / 2 + self.random() * d / 2
end

function Client:_wait(seconds, why)
  self.stats.retries = self.stats.retries + 1
  self.stats.sleeps[#self.stats.sleeps + 1] = seconds
  log.debug("%s; retrying in %.2f s", why, seconds)
  self.sleep(seconds)
end

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

local function has_header(headers, name)
  name = name:lower()
  for k in pairs(headers) do
    if tostring(k):lower() == name then return true end
  end
  return false
end

local function decode_body(resp)
  local body = resp.body
  if body == nil or body == "" then return end
  local ct = resp.headers and resp.headers["content-type"] or ""
  local first = body:match("^%s*(.)")
  if ct:find("json", 1, true) or first == "{" or first == "[" then
    local v = json.decode(body)
    if v ~= nil then resp.json = v end
  end
end

-- client:send(req) -> response | raises
-- The low-level loop (no Platform headers): req = {method, url, headers, body, idempotent,
-- auth (add the bearer token), allow = {[status] = true} (returned, not raised), timeout}
function Client:send(req)
  local method = (req.method or "GET"):upper()
  local safe = M.SAFE_METHODS[method] or req.idempotent == true
  local request_info = { method = method, url = safe_url(req.url) }
  local attempt, reauthed = 0, false
  while true do
    attempt = attempt + 1
    local headers = copy(req.headers)
    if req.auth then
      headers["Authorization"] = "Bearer " .. self:auth():token()
    end
    local t = {
      method = method, url = req.url, headers = headers, body = req.body,
      timeout = req.timeout or self.timeout, connect_timeout = req.connect_timeout or self.connect_timeout,
      cainfo = self.cainfo, insecure = self.insecure or nil,
    }
    self.stats.requests = self.stats.requests + 1
    log.trace_request(t, attempt)
    local resp, err, code, resent = self.http.request(t)
    log.trace_response(resp, err, code)
    resent = (resp and resp.resent) or resent or 0
    if resent > 0 then self.stats.resent = (self.stats.resent or 0) + resent end
    if resp and resent > 0 and not safe and not (resp.status >= 200 and resp.status < 300) then
      -- curl sent the request twice by itself: this answer is the second copy's, the first may
      -- have been processed (a create answered "not unique" was probably created by it)
      resp, err, code = nil, "the request was sent twice (a reused connection died) and the second copy got HTTP " ..
        resp.status, "RECV"
    end
    if not resp then
      code = code or "TRANSPORT"
      if code == "INTERRUPTED" then error("interrupted", 0) end
      local not_sent = M.NOT_SENT[code] and resent == 0
      local why = string.format("%s %s: %s", method, request_info.url, tostring(err))
      if not M.FATAL_TRANSPORT[code] and (safe or not_sent) and attempt < self.max_attempts then
        self:_wait(self:backoff(attempt), why)
      elseif not safe and not not_sent and not M.FATAL_TRANSPORT[code] then
        error(M.error({
          kind = "outcome_unknown", code = "OUTCOME_UNKNOWN", transport_code = code,
          message = "the request was sent but no answer came back (" .. code .. ": " .. log.redact(tostring(err)) ..
            "); it may or may not have been processed, so it was not repeated",
          request = request_info, attempts = attempt,
        }), 0)
      else
        error(M.error({ kind = "transport", code = code, message = log.redact(tostring(err)),
                        request = request_info, attempts = attempt }), 0)
      end
    else
      local status = resp.status
      decode_body(resp)
      if status == 401 and req.auth and not reauthed and self.session then
        -- the token expired or was revoked early: one fresh token, one more try
        reauthed = true
        attempt = attempt - 1
        self.stats.reauth = self.stats.reauth + 1
        log.debug("%s %s: 401, re-authenticating once", method, request_info.url)
        self.session:invalidate()
      elseif (status >= 200 and status < 300) or (req.allow and req.allow[status]) then
        return resp
      else
        local ra = M.retry_after(resp.headers)
        local retryable = M.RETRY_STATUS[status] or false
        local repeat_ok = safe or M.RETRY_NOT_PROCESSED[status]
        if retryable and not repeat_ok then
          -- a 500/502/504 to a POST: it may have been processed
          error(M.error({
            kind = "outcome_unknown", code = "OUTCOME_UNKNOWN", status = status,
            message = string.format("HTTP %d: the request may or may not have been processed, so it was not repeated", status),
            request = request_info, attempts = attempt,
            body = resp.body and log.redact(resp.body:sub(1, 8192)) or nil,
          }), 0)
        end
        if retryable and attempt < self.max_attempts and (ra == nil or ra <= self.max_retry_after) then
          local wait = ra and (ra + self.random() * 0.1) or self:backoff(attempt)
          self:_wait(wait, string.format("%s %s: %d", method, request_info.url, status))
        else
          local info = M.parse_error(status, resp.body)
          local e = M.error({
            kind = "http", status = status, code = info.code, title = info.title, detail = info.detail,
            report = info.report, type = info.type, violations = info.violations,
            request = request_info, attempts = attempt, retryable = retryable,
            retry_after = ra, body = resp.body and log.redact(resp.body:sub(1, 8192)) or nil,
            response = resp,
          })
          if info.title then e.title = log.redact(info.title) end
          if info.detail then e.detail = log.redact(info.detail) end
          error(e, 0)
        end
      end
    end
  end
end

-- client:request(opts) -> response (resp.json holds the decoded body) | raises an error object
-- opts: method, path (below the gateway) or url (absolute), query, headers, json (a value to
-- encode) or body (a string), accept, content_type, idempotent, auth (default true), platform
-- (default true: the x-api-key/org/sandbox headers), sandbox (override), base ("identity"),
-- allow = {[status] = true}, timeout.
function Client:request(opts)
  local base
  if opts.url then
    base = nil
  elseif opts.base == "identity" then
    base = self.cfg:identity_gateway()
  else
    base = self.gateway or (self.cfg and self.cfg:gateway())
  end
  if not opts.url and not base then
    error(M.error({ kind = "config", code = "CONFIG", message = "no PLATFORM_GATEWAY configured: " .. require("aep.config").FIX }), 0)
  end
  local url = M.join_url(base or "", opts.url or opts.path, opts.query)
  local headers = copy(opts.headers)
  if opts.platform ~= false and self.cfg then
    headers["x-api-key"] = headers["x-api-key"] or self.cfg:get("API_KEY")
    headers["x-gw-ims-org-id"] = headers["x-gw-ims-org-id"] or self.cfg:get("IMS_ORG")
    headers["x-sandbox-name"] = headers["x-sandbox-name"] or opts.sandbox or self.cfg:get("SANDBOX_NAME")
  end
  if opts.accept and not has_header(headers, "accept") then headers["Accept"] = opts.accept end
  if not has_header(headers, "accept") then headers["Accept"] = "application/json" end
  local body = opts.body
  if opts.json ~= nil then
    body = json.encode(opts.json)
    if not has_header(headers, "content-type") then headers["Content-Type"] = opts.content_type or "application/json" end
  elseif opts.content_type then
    headers["Content-Type"] = opts.content_type
  end
  return self:send({
    method = opts.method or "GET", url = url, headers = headers, body = body,
    idempotent = opts.idempotent, auth = opts.auth ~= false, allow = opts.allow, timeout = opts.timeout,
  })
end

-- client:get(path [, opts]), :post, :put, :patch, :delete -> client:request with that method
for _, method in ipairs({ "GET", "POST", "PUT", "PATCH", "DELETE" }) do
  Client[method:lower()] = function(self, path, opts)
    opts = copy(opts); opts.method = method; opts.path = path
    return self:request(opts)
  end
end

-- platform.enc(id) -> a resource id made safe for one path segment
M.enc = M.urlencode

return M
