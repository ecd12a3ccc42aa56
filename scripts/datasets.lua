-- scripts/datasets.lua — collection folders 2a/2b "Create DataSet" (R13-R14).
-- One Catalog dataset per schema, enabled for Profile and Identity (unifiedProfile,
-- unifiedIdentity tags). Found by name first; a found dataset that is not Profile-enabled is
-- enabled; one that belongs to another schema is an error (never silently reused).
local wf = ...
local catalog = require "aep.catalog"
local platform = require "aep.platform"

local c = wf.client
wf:heading("datasets: Profile-enabled datasets")

local function ensure_dataset(var, base_name, description, schema_var)
  local schema_id = wf:need(schema_var, "schemas")
  local name = wf:title(base_name)
  return wf:ensure {
    var = var, kind = "dataset", title = name,
    find = function()
      local d = catalog.find_dataset_by_name(c, name)
      if not d then return nil end
      local ref = d.schemaRef and d.schemaRef.id
      if ref and ref ~= schema_id then
        error(platform.error({ kind = "workflow", code = "CONFLICT",
          message = "dataset '" .. name .. "' (" .. d.id .. ") exists with schema " .. ref ..
            ", not " .. schema_id .. "; choose another --run-name or delete it" }), 0)
      end
      return d.id, d
    end,
    create = function()
      return catalog.create_dataset(c, catalog.dataset_body({ name = name, description = description,
        schema_id = schema_id, profile = true }))
    end,
    after = function(id, status, d)
      if status == "found" and d and not catalog.is_profile_enabled(d) then
        catalog.enable_profile(c, id)
      end
    end,
  }
end

local profile = ensure_dataset("DATASET_ID_PROFILE", "Loyalty Profiles", "Profile data plus Loyalty data", "SCHEMA_ID_PROFILE")
local event = ensure_dataset("DATASET_ID_EVENT", "Loyalty Events", "Loyalty Event data", "SCHEMA_ID_EVENT")
return { profile = profile, event = event }
