-- mappings/loyalty_profile.lua: a sample loyalty profile (data/AEP_loyalty_profiles.json) -> the
-- XDM Individual Profile entity of the "aep Loyalty Profiles" schema.
--
-- The samples hard-code the tenant key `_exchangeinternal` (the org the collection was written
-- in); the loyalty fields belong under `_<tenant>` of the org we write to. Everything else
-- (person, personalEmail) is standard XDM and passes through unchanged.
--
-- A mapping is plain Lua, loaded at run time: edit it or point `aep run --profile-mapping FILE`
-- (or `aep stream --mapping FILE`) at your own; no rebuild. It returns
-- function(record, ctx) -> entity | nil (nil skips the record); ctx.tenant is the tenant id
-- without its underscore.
local SAMPLE_TENANT_KEY = "_exchangeinternal"

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
  local loyalty = entity[tenant_key]
  if type(loyalty) ~= "table" or loyalty.loyaltyID == nil then
    return nil -- no member id, no identity: nothing Profile could attach it to
  end
  return entity
end
