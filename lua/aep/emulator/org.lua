-- aep.emulator.org: the one org the emulator hosts. Created on first start (ids, client secret,
-- technical account, tenant, an RSA key pair + certificate for the JWT exchange), kept in the
-- store's meta table, and written as a Postman environment (DATA_DIR/environment.json, mode 0600)
-- under the collection's variable names, rewritten on every start with the current URLs.
local crypto = require "aep.crypto"
local json = require "aep.json"
local host = require "aep.host"

local M = {}

M.META_SCOPES = { "ent_dataservices_sdk" }
M.SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session"

local hex = require("aep.emulator.ids").hex

-- org.valid_tenant(name) -> true | false
function M.valid_tenant(name)
  return type(name) == "string" and name:match("^[a-z][a-z0-9]*$") ~= nil and #name <= 64
end

local function create(tenant)
  local keys = assert(crypto.generate_rsa { bits = 2048, cn = "aep-emulator", days = 3650 })
  local secret = crypto.base64url_encode(crypto.random_bytes(24)):gsub("[-_]", "x")
  return {
    org_id = hex(12):upper() .. "@AdobeOrg",
    client_id = hex(16),
    client_secret = "p8e-" .. secret,
    technical_account_id = hex(12):upper() .. "@techacct.adobe.com",
    tenant = tenant or ("emu" .. hex(4)),
    meta_scopes = M.META_SCOPES,
    scopes = M.SCOPES,
    private_key = keys.private_key,
    certificate = keys.certificate,
    public_key = keys.public_key,
    created = math.floor(host.now() * 1000),
  }
end

-- org.load_or_create(store, opts) -> org, created (boolean), warning | nil
-- opts.tenant: tenant id for a new org; an existing org keeps its own (warning when they differ).
function M.load_or_create(store, opts)
  local text = store.meta_get("org")
  if text then
    local org = assert(json.decode(text), "corrupt org record in the store")
    local warning
    if opts.tenant and opts.tenant ~= org.tenant then
      warning = string.format("this data directory's org has tenant '%s'; --tenant %s ignored " ..
        "(use a new --data-dir for another tenant)", org.tenant, opts.tenant)
    end
    return org, false, warning
  end
  local org = create(opts.tenant)
  store.meta_put("org", json.encode(org))
  return org, true
end

-- org.environment(org, urls [, admin_token]) -> Postman environment table
-- urls = { base = "http://127.0.0.1:PORT", host = "127.0.0.1:PORT" }; admin_token: this run's
-- token for admin calls from non-loopback clients (EMULATOR_ADMIN_TOKEN)
function M.environment(org, urls, admin_token)
  local function v(key, value, secret)
    return { key = key, value = value, enabled = true, type = secret and "secret" or "default" }
  end
  return {
    id = "aep-emulator-" .. org.client_id:sub(1, 8),
    name = "aep emulator (" .. org.org_id .. ")",
    values = {
      v("IMS", urls.host),
      v("IMS_URL", urls.base),
      v("IMS_ORG", org.org_id),
      v("API_KEY", org.client_id),
      v("CLIENT_SECRET", org.client_secret, true),
      v("TECHNICAL_ACCOUNT_ID", org.technical_account_id),
      v("META_SCOPE", json.array { table.unpack(org.meta_scopes) }),
      v("SCOPES", org.scopes),
      v("PRIVATE_KEY", org.private_key, true),
      v("PLATFORM_GATEWAY", urls.base),
      v("SANDBOX_NAME", "prod"),
      v("TENANT_ID", org.tenant),
      v("ACCESS_TOKEN", "", true),
      v("JWT_TOKEN", "", true),
      admin_token and v("EMULATOR_ADMIN_TOKEN", admin_token, true) or nil,
    },
    _postman_variable_scope = "environment",
  }
end

-- org.write_environment(org, path, urls [, admin_token]) -> true | nil, message   (atomic, mode 0600)
function M.write_environment(org, path, urls, admin_token)
  local text = json.encode_pretty(M.environment(org, urls, admin_token)) .. "\n"
  local ok, err = host.write_file(path, text, tonumber("600", 8))
  if not ok then return nil, err end
  host.chmod(path, tonumber("600", 8)) -- an older file keeps its mode through rename otherwise
  return true
end

return M
