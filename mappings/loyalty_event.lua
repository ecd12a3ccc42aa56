-- mappings/loyalty_event.lua: a sample loyalty event (data/AEP_loyalty_events.json) -> the XDM
-- ExperienceEvent entity of the "aep Loyalty Events" schema.
--
--   * the loyalty fields move from the samples' hard-coded `_exchangeinternal` to `_<tenant>`;
--   * `_id` becomes a string, as XDM requires (the samples carry JSON integers). It stays
--     deterministic, derived from the record alone, so streaming or importing the same record
--     twice gives AEP the same event id and re-ingestion is idempotent. A record without an
--     `_id` gets one from a SHA-256 of its content.
--   * everything else (eventType, timestamp) passes through unchanged.
-- Returns function(record, ctx) -> entity | nil; ctx.tenant is the tenant id.
local SAMPLE_TENANT_KEY = "_exchangeinternal"

local function canonical(v)
  -- a stable text for any JSON value: keys sorted, integers without ".0"
  local t = type(v)
  if t == "table" then
    if v[1] ~= nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = canonical(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = string.format("%q:%s", k, canonical(v[k])) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "number" then
    local i = math.tointeger(v)
    return i and string.format("%d", i) or string.format("%.17g", v)
  end
  return string.format("%q", tostring(v))
end

local function event_id(record)
  local id = record._id
  if type(id) == "number" then
    local i = math.tointeger(id)
    return i and string.format("%d", i) or string.format("%.17g", id)
  elseif type(id) == "string" and id ~= "" then
    return id
  end
  return require("aep.crypto").sha256_hex(canonical(record))
end

return function(record, ctx)
  local tenant_key = "_" .. ctx.tenant
  local entity = {}
  for k, v in pairs(record) do
    if k == SAMPLE_TENANT_KEY then
      entity[tenant_key] = v
    else
      entity[k] = v
    end
  end
  entity._id = event_id(record)
  return entity
end
