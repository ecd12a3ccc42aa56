-- aep.log: what aep prints, and the guarantee that no registered secret is ever in it.
--
-- Every secret aep learns (client secret, private key, access tokens, signed JWTs) is registered
-- with log.add_secret; everything printed through this module (and every error message built by
-- aep.platform) passes through log.redact, which replaces each secret, in the forms it can take
-- on the wire (raw, JSON-escaped, URL-encoded), with "[REDACTED]".
--
-- Output goes to stdout (results: log.print) or stderr (diagnostics: log.info/warn/error/debug);
-- both sinks can be replaced (tests capture them). --verbose / AEP_DEBUG=1 turns on debug lines
-- and the HTTP trace.
local M = {}

M.REDACTED = "[REDACTED]"

local secrets = {}      -- set of strings to hide
local ordered = {}      -- the same, longest first, so a secret containing another hides whole
local MIN_SECRET = 6    -- shorter values would redact ordinary words

local function env_flag(name)
  local v = os.getenv(name)
  return v ~= nil and v ~= "" and v ~= "0"
end

local state = {
  verbose = env_flag("AEP_DEBUG"),
  quiet = false,
  out = function(s) io.stdout:write(s); io.stdout:flush() end,
  err = function(s) io.stderr:write(s); io.stderr:flush() end,
}

local function rebuild()
  ordered = {}
  for s in pairs(secrets) do ordered[#ordered + 1] = s end
  table.sort(ordered, function(a, b) return #a > #b end)
end

local function add_one(s)
  if type(s) == "string" and #s >= MIN_SECRET and not secrets[s] then
    secrets[s] = true
    return true
  end
  return false
end

local function json_escaped(s)
  return (s:gsub('[%c"\\/]', function(c)
    if c == "\n" then return "\\n" elseif c == "\r" then return "\\r"
    elseif c == "\t" then return "\\t" elseif c == '"' then return '\\"'
    elseif c == "\\" then return "\\\\" elseif c == "/" then return "\\/" end
    return string.format("\\u%04x", c:byte())
  end))
end

local function url_encoded(s, plus)
  return (s:gsub("[^%w%-%._~]", function(c)
    if plus and c == " " then return "+" end
    return string.format("%%%02X", c:byte())
  end))
end

-- log.add_secret(value): never print value (nor its JSON-escaped or URL-encoded forms). A PEM
-- key also registers each line of its body, so a fragment cannot leak either.
function M.add_secret(value)
  if type(value) ~= "string" then return end
  local changed = add_one(value)
  for _, v in ipairs({ json_escaped(value), (json_escaped(value):gsub("\\/", "/")),
                       url_encoded(value), url_encoded(value, true) }) do
    changed = add_one(v) or changed
  end
  if value:find("-----BEGIN", 1, true) then
    for line in value:gmatch("[^\r\n]+") do
      line = line:gsub("^%s+", ""):gsub("%s+$", "")
      if #line >= 16 and not line:find("-----", 1, true) then changed = add_one(line) or changed end
    end
  end
  if changed then rebuild() end
end

-- log.redact(s) -> s with every registered secret replaced by [REDACTED]
function M.redact(s)
  if type(s) ~= "string" then s = tostring(s) end
  for i = 1, #ordered do
    local secret = ordered[i]
    local init = 1
    while true do
      local a, b = s:find(secret, init, true)
      if not a then break end
      s = s:sub(1, a - 1) .. M.REDACTED .. s:sub(b + 1)
      init = a + #M.REDACTED
    end
  end
  return s
end

-- log.set_verbose(bool) / log.is_verbose() -> bool
function M.set_verbose(v) state.verbose = v and true or false end
function M.is_verbose() return state.verbose end

-- log.set_quiet(bool): drop info lines (results and errors still print)
function M.set_quiet(v) state.quiet = v and true or false end

-- log.set_sinks(out_fn, err_fn) -> previous out_fn, err_fn. Each sink receives text chunks.
function M.set_sinks(out, err)
  local po, pe = state.out, state.err
  state.out = out or po
  state.err = err or pe
  return po, pe
end

local function format(fmt, ...)
  if select("#", ...) == 0 then return tostring(fmt) end
  return string.format(fmt, ...)
end

-- log.print(fmt, ...): one line of results on stdout (redacted)
function M.print(fmt, ...)
  state.out(M.redact(format(fmt, ...)) .. "\n")
end

-- log.info(fmt, ...): a progress line on stdout, suppressed by --quiet
function M.info(fmt, ...)
  if state.quiet then return end
  state.out(M.redact(format(fmt, ...)) .. "\n")
end

-- log.note(fmt, ...): "aep: ..." on stderr, a side note kept off stdout (which carries results,
-- or JSON); suppressed by --quiet
function M.note(fmt, ...)
  if state.quiet then return end
  state.err("aep: " .. M.redact(format(fmt, ...)) .. "\n")
end

-- log.warn(fmt, ...): "aep: warning: ..." on stderr
function M.warn(fmt, ...)
  state.err("aep: warning: " .. M.redact(format(fmt, ...)) .. "\n")
end

-- log.error(fmt, ...): "aep: ..." on stderr
function M.error(fmt, ...)
  state.err("aep: " .. M.redact(format(fmt, ...)) .. "\n")
end

-- log.debug(fmt, ...): only with --verbose / AEP_DEBUG=1, on stderr
function M.debug(fmt, ...)
  if not state.verbose then return end
  state.err("aep: debug: " .. M.redact(format(fmt, ...)) .. "\n")
end

-- Header values that are credentials whatever their value.
local SENSITIVE_HEADERS = {
  authorization = true, ["proxy-authorization"] = true, cookie = true, ["set-cookie"] = true,
  ["x-api-secret"] = true,
}

local TRACE_BODY_LIMIT = 2048

-- Fields that carry credentials in JSON or form bodies, hidden even before their value is
-- registered (an IMS answer is traced before aep has read the token out of it).
local SECRET_FIELDS = { "access_token", "refresh_token", "id_token", "client_secret", "jwt_token",
                        "private_key", "PRIVATE_KEY", "CLIENT_SECRET", "ACCESS_TOKEN", "JWT_TOKEN" }

-- log.mask_fields(text) -> text with the values of credential fields (JSON or form) hidden
function M.mask_fields(text)
  for _, f in ipairs(SECRET_FIELDS) do
    text = text:gsub('("' .. f .. '"%s*:%s*)"[^"]*"', '%1"' .. M.REDACTED .. '"')
    text = text:gsub("([?&]" .. f .. "=)[^&]*", "%1" .. M.REDACTED)
    text = text:gsub("^(" .. f .. "=)[^&]*", "%1" .. M.REDACTED)
    text = text:gsub('(name="' .. f .. '"\r?\n\r?\n)[^\r\n]*', "%1" .. M.REDACTED)
  end
  return text
end

-- Control characters from a server (a stray CR, an escape sequence) must not reach the terminal
-- as such: they are shown as \xNN. Bodies keep their newlines and tabs.
local function printable(s, keep_lines)
  local pattern = keep_lines and "[%z\1-\8\11-\31\127]" or "[%z\1-\31\127]"
  return (s:gsub(pattern, function(c) return string.format("\\x%02x", c:byte()) end))
end
M.printable = printable

local function trace_body(body)
  if body == nil or body == "" then return nil end
  body = printable(M.mask_fields(tostring(body)), true)
  local shown = body
  if #body > TRACE_BODY_LIMIT then
    shown = body:sub(1, TRACE_BODY_LIMIT) .. string.format("... (%d bytes)", #body)
  end
  return shown
end

local function sorted_headers(headers)
  local names = {}
  for k in pairs(headers or {}) do names[#names + 1] = k end
  table.sort(names, function(a, b) return tostring(a):lower() < tostring(b):lower() end)
  return names
end

-- log.redact_header(name, value) -> value safe to show
function M.redact_header(name, value)
  local lname = tostring(name):lower()
  if SENSITIVE_HEADERS[lname] then
    local scheme = tostring(value):match("^(%a+)%s")
    return scheme and (scheme .. " " .. M.REDACTED) or M.REDACTED
  end
  return M.redact(tostring(value))
end

-- log.trace_request(req, attempt): under --verbose, "> METHOD URL", headers and body (redacted)
function M.trace_request(req, attempt)
  if not state.verbose then return end
  local lines = { string.format("> %s %s%s", req.method or "GET", req.url,
    (attempt and attempt > 1) and string.format("  (attempt %d)", attempt) or "") }
  for _, k in ipairs(sorted_headers(req.headers)) do
    local v = req.headers[k]
    if type(v) == "table" then v = table.concat(v, ", ") end
    lines[#lines + 1] = string.format("> %s: %s", k, M.redact_header(k, v))
  end
  local b = trace_body(req.body)
  if b then lines[#lines + 1] = "> " .. b end
  state.err(M.redact(table.concat(lines, "\n")) .. "\n")
end

-- log.trace_response(resp | nil, err, code): under --verbose, "< STATUS (seconds)" and the body
function M.trace_response(resp, err, code)
  if not state.verbose then return end
  if not resp then
    state.err(M.redact(string.format("< transport error %s: %s", tostring(code), tostring(err))) .. "\n")
    return
  end
  local t = resp.timing and resp.timing.total
  local lines = { string.format("< %d%s", resp.status, t and string.format(" (%.3f s)", t) or "") }
  for _, k in ipairs(sorted_headers(resp.headers)) do
    lines[#lines + 1] = string.format("< %s: %s", printable(tostring(k)), printable(M.redact_header(k, resp.headers[k])))
  end
  local b = trace_body(resp.body)
  if b then lines[#lines + 1] = "< " .. b end
  state.err(M.redact(table.concat(lines, "\n")) .. "\n")
end

return M
