-- aep.config: the effective configuration and where each value came from.
--
-- Precedence, highest first:
--   1. command-line flags            (--sandbox prod, --auth jwt, ...)
--   2. environment variables         (AEP_SANDBOX_NAME, AEP_CLIENT_SECRET, ...)
--   3. the --env FILE                (a Postman environment with the collection's variable
--                                     names, as Adobe's Developer Console exports it and as
--                                     `aep emulator` writes it; or a plain JSON config)
--   4. a local emulator's environment (when `aep run` started one, or was pointed at one)
--   5. built-in defaults              (sandbox prod, OAuth S2S, Adobe's AEP scopes)
--
-- Names are the collection's variable names (IMS, IMS_ORG, API_KEY, CLIENT_SECRET,
-- TECHNICAL_ACCOUNT_ID, META_SCOPE, PRIVATE_KEY, PLATFORM_GATEWAY, SANDBOX_NAME) plus aep's own
-- (SCOPES, AUTH, CACERT, INSECURE, IDENTITY_GATEWAY). Secrets are registered with aep.log as
-- soon as they are read, so nothing aep prints can contain them.
local json = require "aep.json"
local log = require "aep.log"
local read_file = require("aep.file").read

local M = {}

M.DEFAULT_SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session"
M.DEFAULT_META_SCOPE = "ent_dataservices_sdk"

-- The known settings, in the order `aep config` shows them.
M.KEYS = {
  { name = "PLATFORM_GATEWAY", flag = "gateway", help = "Platform base URL, e.g. https://platform.adobe.io" },
  { name = "IMS", flag = "ims", help = "IMS host, with or without https:// (e.g. ims-na1.adobelogin.com)" },
  { name = "IMS_ORG", flag = "org", help = "IMS organization id (...@AdobeOrg)" },
  { name = "API_KEY", flag = "api-key", help = "client id (x-api-key)" },
  { name = "CLIENT_SECRET", secret = true, file_flag = "client-secret-file", help = "client secret" },
  { name = "SANDBOX_NAME", flag = "sandbox", help = "sandbox name (x-sandbox-name)" },
  { name = "AUTH", flag = "auth", help = "oauth (OAuth Server-to-Server, default) or jwt (legacy)" },
  { name = "SCOPES", flag = "scopes", help = "OAuth scopes, comma-separated" },
  { name = "TECHNICAL_ACCOUNT_ID", flag = "technical-account", help = "technical account id (JWT sub)" },
  { name = "META_SCOPE", flag = "meta-scope", help = "JWT metascope(s): a name, a comma list or a JSON array" },
  { name = "PRIVATE_KEY", secret = true, file_flag = "private-key", help = "PEM private key for JWT (PKCS#1 or PKCS#8)" },
  { name = "CACERT", flag = "cacert", help = "CA bundle (PEM) to verify TLS with" },
  { name = "INSECURE", flag = "insecure", boolean = true, help = "do not verify TLS certificates (warns)" },
  { name = "IDENTITY_GATEWAY", flag = "identity-gateway", help = "regional Identity Service base URL (default: the gateway)" },
  { name = "IMS_URL", hidden = true, help = "IMS base URL with scheme (the emulator writes it beside IMS)" },
  { name = "ACCESS_TOKEN", secret = true, hidden = true, help = "a token obtained elsewhere (not needed)" },
  { name = "JWT_TOKEN", secret = true, hidden = true, help = "a signed JWT (not needed)" },
}

local by_name = {}
for _, k in ipairs(M.KEYS) do by_name[k.name] = k end

M.SECRET = { CLIENT_SECRET = true, PRIVATE_KEY = true, ACCESS_TOKEN = true, JWT_TOKEN = true }

-- Other spellings met in config files and environments (aepp's config file, hand-written JSON).
local ALIASES = {
  CLIENT_ID = "API_KEY", APIKEY = "API_KEY", X_API_KEY = "API_KEY",
  ORG_ID = "IMS_ORG", IMS_ORG_ID = "IMS_ORG", ORG = "IMS_ORG", IMSORG = "IMS_ORG",
  SECRET = "CLIENT_SECRET", CLIENTSECRET = "CLIENT_SECRET",
  TECH_ID = "TECHNICAL_ACCOUNT_ID", TECHNICAL_ACCOUNT = "TECHNICAL_ACCOUNT_ID",
  SANDBOX = "SANDBOX_NAME", SANDBOXNAME = "SANDBOX_NAME",
  GATEWAY = "PLATFORM_GATEWAY", PLATFORM_URL = "PLATFORM_GATEWAY",
  SCOPE = "SCOPES", METASCOPE = "META_SCOPE", META_SCOPES = "META_SCOPE",
  IMS_HOST = "IMS",
  PATHTOKEY = "PRIVATE_KEY_FILE", PATH_TO_KEY = "PRIVATE_KEY_FILE", KEY_FILE = "PRIVATE_KEY_FILE",
  CA_CERT = "CACERT", CAINFO = "CACERT",
}

local function normalize_name(k)
  local n = tostring(k):upper():gsub("[%-%.%s]", "_")
  return ALIASES[n] or n
end

local function is_unset(v)
  if v == nil or v == json.null then return true end
  if type(v) == "string" then
    if v:match("^%s*$") then return true end
    if v:match("^{{.*}}$") then return true end -- an unresolved Postman placeholder
  end
  if type(v) == "table" and next(v) == nil then return true end
  return false
end

-- PEM text as people paste it: "\n" written as two characters, or a path to the key file.
local function normalize_private_key(v, where)
  if type(v) ~= "string" then return v, where end
  if not v:find("-----BEGIN", 1, true) then
    local data = read_file(v)
    if data and data:find("-----BEGIN", 1, true) then
      M.check_private(v, "private key file")
      return data, (where and (where .. ", key file " .. v) or ("key file " .. v))
    end
  end
  if not v:find("\n", 1, true) and v:find("\\n", 1, true) then v = v:gsub("\\n", "\n") end
  return v, where
end

local function to_bool(v)
  if type(v) == "boolean" then return v end
  if type(v) == "string" then
    local l = v:lower()
    return l == "1" or l == "true" or l == "yes" or l == "on"
  end
  return v ~= nil
end

-- config.parse_env_file(path) -> values {NAME = value}, format ("postman" | "json"), extra | nil, err
-- A Postman environment ({"values": [{key, value, enabled}]}; disabled entries skipped) or a plain
-- JSON object. Keys are matched without regard to case; unknown keys are kept in `extra` (the
-- collection's UNIQUE_ID and PROFILE_ID, for instance).
function M.parse_env_file(path)
  local text, err = read_file(path)
  if not text then return nil, "cannot read environment file " .. path .. ": " .. tostring(err) end
  local doc, jerr = json.decode(text)
  if doc == nil then return nil, "environment file " .. path .. ": " .. jerr end
  if type(doc) ~= "table" then return nil, "environment file " .. path .. ": expected a JSON object" end
  local raw, format = {}, "json"
  if type(doc.values) == "table" then
    format = "postman"
    for _, entry in ipairs(doc.values) do
      if type(entry) == "table" and entry.key ~= nil and entry.enabled ~= false then
        raw[#raw + 1] = { entry.key, entry.value }
      end
    end
  else
    for k, v in pairs(doc) do raw[#raw + 1] = { k, v } end
    table.sort(raw, function(a, b) return tostring(a[1]) < tostring(b[1]) end)
  end
  local values, extra = {}, {}
  for _, kv in ipairs(raw) do
    local name = normalize_name(kv[1])
    local v = kv[2]
    if not is_unset(v) then
      if by_name[name] or name == "PRIVATE_KEY_FILE" then
        values[name] = v
      elseif type(v) ~= "table" then
        extra[tostring(kv[1])] = v
      end
    end
  end
  if values.PRIVATE_KEY_FILE then
    if not values.PRIVATE_KEY then
      local base = path:match("^(.*)/[^/]*$") or "."
      local kp = values.PRIVATE_KEY_FILE
      if not kp:match("^/") then kp = base .. "/" .. kp end
      local data, ferr = read_file(kp)
      if not data then return nil, "environment file " .. path .. ": cannot read private key " .. kp .. ": " .. tostring(ferr) end
      M.check_private(kp, "private key file")
      values.PRIVATE_KEY = data
    end
    values.PRIVATE_KEY_FILE = nil
  end
  for name in pairs(M.SECRET) do
    if values[name] ~= nil then M.check_private(path, "environment file"); break end
  end
  return values, format, extra
end

-- Locate an environment file: a file, or a directory holding environment.json (an emulator's
-- --data-dir).
function M.resolve_env_path(path)
  local f = io.open(path .. "/environment.json", "r")
  if f then f:close(); return path .. "/environment.json" end
  return path
end

local Config = {}
Config.__index = Config

local function register_secrets(values)
  for name in pairs(M.SECRET) do
    local v = values[name]
    if type(v) == "string" then log.add_secret(v) end
  end
end

-- config.flag_spec() -> aep.cli flag specs for every setting that has a flag
function M.flag_spec()
  local spec = {}
  for _, k in ipairs(M.KEYS) do
    if k.flag then
      spec[#spec + 1] = { k.flag, k.boolean and "boolean" or "string", help = k.help }
    end
    if k.file_flag then
      spec[#spec + 1] = { k.file_flag, "string", metavar = "FILE", help = "read " .. k.help .. " from FILE" }
    end
  end
  spec[#spec + 1] = { "jwt", "boolean", help = "same as --auth jwt (legacy Service Account exchange)" }
  return spec
end

local function flag_values(opts)
  local values, where = {}, {}
  opts = opts or {}
  for _, k in ipairs(M.KEYS) do
    if k.flag then
      local v = opts[(k.flag:gsub("-", "_"))]
      if v ~= nil and not (k.boolean and v == false) then
        values[k.name] = v
        where[k.name] = "--" .. k.flag
      end
    end
    if k.file_flag then
      local path = opts[(k.file_flag:gsub("-", "_"))]
      if path then
        local data, err = read_file(path)
        if not data then error({ config_error = true, message = "cannot read --" .. k.file_flag .. " " .. path .. ": " .. tostring(err) }) end
        M.check_private(path, "--" .. k.file_flag)
        if k.name == "CLIENT_SECRET" then data = data:gsub("%s+$", "") end
        values[k.name] = data
        where[k.name] = "--" .. k.file_flag .. " " .. path
      end
    end
  end
  if opts.jwt then
    values.AUTH = "jwt"
    where.AUTH = "--jwt"
  end
  return values, where
end

local function env_values(getenv)
  local values, where = {}, {}
  for _, k in ipairs(M.KEYS) do
    local var = "AEP_" .. k.name
    local v = getenv(var)
    if not is_unset(v) then
      values[k.name] = v
      where[k.name] = var
    end
  end
  local short = { AEP_SANDBOX = "SANDBOX_NAME", AEP_GATEWAY = "PLATFORM_GATEWAY", AEP_ORG = "IMS_ORG",
                  AEP_CLIENT_ID = "API_KEY" }
  for var, name in pairs(short) do
    local v = getenv(var)
    if values[name] == nil and not is_unset(v) then
      values[name] = v
      where[name] = var
    end
  end
  for var, name in pairs({ AEP_PRIVATE_KEY_FILE = "PRIVATE_KEY", AEP_CLIENT_SECRET_FILE = "CLIENT_SECRET" }) do
    local path = getenv(var)
    if values[name] == nil and not is_unset(path) then
      local data, err = read_file(path)
      if not data then error({ config_error = true, message = "cannot read " .. var .. " " .. path .. ": " .. tostring(err) }) end
      M.check_private(path, var)
      if name == "CLIENT_SECRET" then data = data:gsub("%s+$", "") end
      values[name] = data
      where[name] = var .. " " .. path
    end
  end
  return values, where
end

-- config.load{flags = cli options, getenv = os.getenv, env_file = path | nil} -> Config
-- Raises {config_error = true, message = ...} (a table with __tostring) on unreadable files.
function M.load(opts)
  opts = opts or {}
  local getenv = opts.getenv or os.getenv
  local self = setmetatable({ layers = {}, extra = {} }, Config)
  local ok, err = pcall(function()
    local fv, fw = flag_values(opts.flags)
    self.layers[#self.layers + 1] = { kind = "flag", values = fv, where = fw }
    local ev, ew = env_values(getenv)
    self.layers[#self.layers + 1] = { kind = "env", values = ev, where = ew }
    local env_file = opts.env_file
    if env_file == nil and opts.flags and opts.flags.env then env_file = opts.flags.env end
    local env_file_source = "--env"
    if env_file == nil and not is_unset(getenv("AEP_ENV")) then
      env_file = getenv("AEP_ENV")
      env_file_source = "AEP_ENV"
    end
    if env_file then
      env_file = M.resolve_env_path(env_file)
      local values, format, extra = M.parse_env_file(env_file)
      if not values then error({ config_error = true, message = format }) end
      self.env_file = env_file
      self.env_file_format = format
      self.env_file_source = env_file_source
      self.extra = extra
      self.layers[#self.layers + 1] = { kind = "file", values = values, path = env_file }
    end
  end)
  if not ok then
    if type(err) == "table" and err.config_error then error(M.error(err.message), 0) end
    error(err, 0)
  end
  self.layers[#self.layers + 1] = { kind = "default", values = {
    SANDBOX_NAME = "prod", AUTH = "oauth", SCOPES = M.DEFAULT_SCOPES, META_SCOPE = M.DEFAULT_META_SCOPE,
  } }
  for _, layer in ipairs(self.layers) do register_secrets(layer.values) end
  self:_normalize()
  return self
end

-- What every configuration error says to do about it (the same words in every command).
M.FIX = "configure with --env FILE (a Postman environment from Adobe's Developer Console, or a " ..
  "local emulator's data dir), flags or AEP_* variables; or start a local emulator with " ..
  "`aep emulator` (every command finds it on its default data dir, ~/.local/state/aep/emulator)"

-- config.load_default(opts) -> Config: config.load, and when flags, AEP_* variables and --env
-- say nothing about where to go, the local emulator running on its default data dir (the one
-- `aep emulator` and `aep run` use), found by its lock file and environment. Every command
-- loads its configuration this way.
function M.load_default(opts)
  local cfg = M.load(opts)
  if not cfg:has_credentials() then
    local emulator_lock = require "aep.emulator_lock"
    local emu = emulator_lock.find_running((opts and opts.emulator_dir) or emulator_lock.default_dir())
    if emu then
      cfg:add_emulator_layer(emu.env_file)
      cfg.emulator = { url = emu.url, data_dir = emu.data_dir }
    end
  end
  return cfg
end

-- config.error(message) -> an error object (table with __tostring, code CONFIG)
M.error = require("aep.errors").config

function Config:_normalize()
  for _, layer in ipairs(self.layers) do
    if layer.values.PRIVATE_KEY then
      local where = layer.where and layer.where.PRIVATE_KEY
      layer.values.PRIVATE_KEY, where = normalize_private_key(layer.values.PRIVATE_KEY, where)
      if layer.where then layer.where.PRIVATE_KEY = where end
      log.add_secret(layer.values.PRIVATE_KEY)
    end
  end
end

-- cfg:add_emulator_layer(env_file): the environment of a local emulator, below --env and above
-- the defaults (used when `aep run` starts an emulator itself).
function Config:add_emulator_layer(env_file)
  local values, format = M.parse_env_file(env_file)
  if not values then error(M.error(format), 0) end
  register_secrets(values)
  local layer = { kind = "emulator", values = values, path = env_file }
  table.insert(self.layers, #self.layers, layer) -- just above the defaults
  self.emulator_env_file = env_file
  self:_normalize()
end

-- cfg:get(NAME) -> value, source   (source = {kind=, where=})
function Config:get(name)
  for _, layer in ipairs(self.layers) do
    local v = layer.values[name]
    if not is_unset(v) then
      return v, { kind = layer.kind, where = (layer.where and layer.where[name]) or layer.path }
    end
  end
  return nil, nil
end

-- cfg:set(NAME, value): a value decided by aep itself (shown as source "aep")
function Config:set(name, value)
  local first = self.layers[1]
  if first.kind ~= "set" then
    first = { kind = "set", values = {}, where = {} }
    table.insert(self.layers, 1, first)
  end
  first.values[name] = value
  if M.SECRET[name] and type(value) == "string" then log.add_secret(value) end
end

-- cfg:has_credentials() -> true when flags, environment or an --env file say where to go
-- (otherwise `aep run` starts a local emulator)
function Config:has_credentials()
  if self.env_file then return true end
  for _, layer in ipairs(self.layers) do
    if layer.kind == "flag" or layer.kind == "env" or layer.kind == "emulator" then
      for _, name in ipairs({ "PLATFORM_GATEWAY", "API_KEY", "CLIENT_SECRET", "IMS_ORG", "IMS" }) do
        if not is_unset(layer.values[name]) then return true end
      end
    end
  end
  return false
end

local function split_url(u)
  local scheme, rest = u:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, u end
  return scheme:lower(), rest
end

local function strip_slash(s) return (s:gsub("/+$", "")) end

-- cfg:gateway() -> Platform base URL without trailing slash (https:// added when bare)
function Config:gateway()
  local g = self:get("PLATFORM_GATEWAY")
  if g == nil then
    local ims = self:ims_host()
    if ims and ims:match("adobelogin%.com$") then return "https://platform.adobe.io" end
    return nil
  end
  g = strip_slash(tostring(g))
  if not g:match("^%a[%w+.-]*://") then g = "https://" .. g end
  return g
end

-- cfg:ims_host() -> the IMS host[:port] without scheme or path (for aud and metascope claims)
function Config:ims_host()
  local v = self:get("IMS")
  if v == nil then return nil end
  local _, rest = split_url(strip_slash(tostring(v)))
  return (rest:match("^([^/]+)"))
end

-- cfg:ims_url() -> base URL of IMS. A bare host gets https://, unless it is the gateway's own
-- host:port (a local emulator serves IMS and Platform on one port), which keeps the gateway's
-- scheme.
function Config:ims_url()
  local v = self:get("IMS")
  if v == nil then return nil end
  v = strip_slash(tostring(v))
  local scheme, rest = split_url(v)
  if scheme then return scheme .. "://" .. rest end
  local full = self:get("IMS_URL")
  if full then
    local fs, frest = split_url(strip_slash(tostring(full)))
    if fs and frest == rest then return fs .. "://" .. rest end
  end
  local g = self:get("PLATFORM_GATEWAY")
  if g then
    local gs, grest = split_url(strip_slash(tostring(g)))
    if gs and (grest:match("^([^/]+)")) == rest then return gs .. "://" .. rest end
  end
  return "https://" .. rest
end

-- cfg:identity_gateway() -> base URL for Identity Service (regional in AEP)
function Config:identity_gateway()
  local v = self:get("IDENTITY_GATEWAY")
  if v then
    v = strip_slash(tostring(v))
    if not v:match("^%a[%w+.-]*://") then v = "https://" .. v end
    return v
  end
  return self:gateway()
end

-- cfg:auth_mode() -> "oauth" | "jwt"
function Config:auth_mode()
  local v = tostring(self:get("AUTH") or "oauth"):lower()
  if v == "jwt" or v == "service-account" or v == "service_account" then return "jwt" end
  return "oauth"
end

-- cfg:scopes() -> comma-separated OAuth scope string
function Config:scopes()
  local v = self:get("SCOPES") or M.DEFAULT_SCOPES
  if type(v) == "table" then v = table.concat(v, ",") end
  local parts = {}
  for p in tostring(v):gmatch("[^,%s]+") do parts[#parts + 1] = p end
  return table.concat(parts, ",")
end

-- config.split_list(v) -> array of trimmed, non-empty strings from a string, a comma list, a
-- JSON array text or a Lua array (META_SCOPE comes in all of these forms)
function M.split_list(v)
  local out = {}
  local function add(s)
    s = tostring(s):gsub("^%s+", ""):gsub("%s+$", "")
    if s ~= "" then out[#out + 1] = s end
  end
  if type(v) == "table" then
    for _, x in ipairs(v) do
      for p in tostring(x):gmatch("[^,]+") do add(p) end
    end
  elseif type(v) == "string" then
    local t = v:match("^%s*%[.*%]%s*$") and json.decode(v)
    if type(t) == "table" then return M.split_list(t) end
    for p in v:gmatch("[^,]+") do add(p) end
  end
  return out
end

-- cfg:meta_scopes() -> array of metascope names (all of them, trimmed)
function Config:meta_scopes()
  return M.split_list(self:get("META_SCOPE") or M.DEFAULT_META_SCOPE)
end

-- cfg:insecure() -> boolean
function Config:insecure()
  local v = self:get("INSECURE")
  return v ~= nil and to_bool(v)
end

-- cfg:cacert() -> path | nil
function Config:cacert()
  return self:get("CACERT")
end

-- cfg:missing() -> array of {name=, hint=} the chosen auth mode needs and nobody set
function Config:missing()
  local need = { "PLATFORM_GATEWAY", "IMS", "IMS_ORG", "API_KEY", "CLIENT_SECRET" }
  if self:auth_mode() == "jwt" then
    need[#need + 1] = "TECHNICAL_ACCOUNT_ID"
    need[#need + 1] = "PRIVATE_KEY"
  end
  local out = {}
  for _, name in ipairs(need) do
    local v = self:get(name)
    if name == "PLATFORM_GATEWAY" then v = self:gateway() end
    if v == nil then
      local k = by_name[name]
      local hint = "AEP_" .. name
      if k.flag then hint = "--" .. k.flag .. ", " .. hint end
      if k.file_flag then hint = "--" .. k.file_flag .. " FILE, " .. hint end
      out[#out + 1] = { name = name, hint = hint .. " or " .. name .. " in the --env file" }
    end
  end
  return out
end

-- cfg:check() -> true | raises a config error naming what is missing
function Config:check()
  local missing = self:missing()
  if #missing == 0 then return true end
  local lines = {}
  for _, m in ipairs(missing) do lines[#lines + 1] = "  " .. m.name .. " (" .. m.hint .. ")" end
  error(M.error("incomplete configuration for " .. (self:auth_mode() == "jwt" and "JWT" or "OAuth") ..
    " authentication; missing:\n" .. table.concat(lines, "\n") .. "\n" .. M.FIX), 0)
end

local function describe_source(src)
  if not src then return "unset" end
  if src.kind == "flag" then return "flag " .. tostring(src.where) end
  if src.kind == "env" then return "environment " .. tostring(src.where) end
  if src.kind == "file" then return "file " .. tostring(src.where) end
  if src.kind == "emulator" then return "emulator " .. tostring(src.where) end
  if src.kind == "set" then return "aep" end
  return "default"
end

local function show_value(name, v)
  if v == nil then return nil end
  if M.SECRET[name] then return log.REDACTED end
  if type(v) == "table" then return json.encode(v) end
  return log.redact(tostring(v))
end

-- cfg:describe() -> array of {name=, value= (redacted), source= "flag --x" | "environment AEP_X" |
-- "file PATH" | "emulator PATH" | "default" | "derived" | "unset"}
function Config:describe()
  local rows = {}
  for _, k in ipairs(M.KEYS) do
    local v, src = self:get(k.name)
    local source = describe_source(src)
    if k.name == "PLATFORM_GATEWAY" and v == nil and self:gateway() then
      v, source = self:gateway(), "derived from IMS"
    elseif k.name == "IDENTITY_GATEWAY" and v == nil and self:gateway() then
      v, source = self:gateway(), "derived from PLATFORM_GATEWAY"
    end
    if not (k.hidden and v == nil) then
      rows[#rows + 1] = { name = k.name, value = show_value(k.name, v), source = source, secret = k.secret or false }
    end
  end
  return rows
end

-- cfg:target() -> {gateway=, org=, sandbox=} identifying where resources live
function Config:target()
  return { gateway = self:gateway(), org = self:get("IMS_ORG"), sandbox = self:get("SANDBOX_NAME") }
end

-- ---------------------------------------------------------------------------------------------
-- Files holding credentials (SECURITY.md)

local warned_private = {}

-- config.check_private(path, what): warn, once per file, when a file holding credentials (an
-- --env file with a secret in it, a private key or client secret file) can be read by its group
-- or by others, as ssh does for private keys. The file is still used.
function M.check_private(path, what)
  if warned_private[path] then return end
  local st = require("aep.host").stat(path)
  if st and st.type == "file" and st.mode & tonumber("044", 8) ~= 0 then
    warned_private[path] = true
    log.warn("%s %s is readable by others (mode %03o): chmod 600 %s", what, path,
      st.mode & tonumber("777", 8), path)
  end
end

return M
