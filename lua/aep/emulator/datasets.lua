-- aep.emulator.datasets: reading a dataset's stored document and its Profile/Identity tags, for
-- the Catalog service (its routes) and for ingest (what a record needs), which both stand on it.
local M = {}

-- datasets.get(ctx, id) -> doc | nil
function M.get(ctx, id)
  return ctx.store.get(ctx.sandbox or "prod", "dataset", id)
end

-- A tag list holds "enabled:true" (any case, blanks ignored), as Catalog reads
-- unifiedProfile/unifiedIdentity.
local function enabled(tags, name)
  local t = type(tags) == "table" and tags[name]
  if type(t) ~= "table" then return false end
  for _, v in ipairs(t) do
    if tostring(v):gsub("%s", ""):lower() == "enabled:true" then return true end
  end
  return false
end

-- datasets.profile_enabled(ds), datasets.identity_enabled(ds) -> boolean
function M.profile_enabled(ds) return enabled(ds.tags, "unifiedProfile") end
function M.identity_enabled(ds) return enabled(ds.tags, "unifiedIdentity") end

return M
