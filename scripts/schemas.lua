-- scripts/schemas.lua — collection folders 1a/1b "Create Schema" (R7-R12).
-- For PROFILE and EVENT data: a tenant field group holding the loyalty fields under
-- `_<tenant>`, a schema (XDM class + field groups), a primary identity descriptor on
-- /_<tenant>/loyaltyID in the Email namespace, and Profile enablement (the "union" tag).
-- Each is found by title (prefixed with the run name) before anything is created.
local wf = ...
local schemas = require "aep.schemas"
local identity = require "aep.identity"
local json = require "aep.json"

local c = wf.client
local tenant = wf:tenant()
local tkey = "_" .. tenant
local LEVELS = { "Silver", "Gold", "Platinum", "Diamond" }

wf:heading("schemas: field groups, schemas, identity descriptors")

local function level_enum()
  local m = {}
  for _, l in ipairs(LEVELS) do m[l] = l end
  return json.array({ table.unpack(LEVELS) }), m
end

-- The loyalty field group of the collection (R7 / R10), as a /tenant/fieldgroups body.
local function field_group(title, description, class, properties)
  return {
    type = "object",
    title = title,
    description = description,
    ["meta:intendedToExtend"] = json.array({ class }),
    definitions = {
      loyalty = {
        type = "object",
        properties = {
          [tkey] = {
            type = "object",
            ["meta:xdmType"] = "object",
            required = json.array({ "loyaltyID" }),
            properties = properties,
          },
        },
      },
    },
    allOf = json.array({ { ["$ref"] = "#/definitions/loyalty" } }),
  }
end

local function int_field(title)
  return { type = "integer", ["meta:xdmType"] = "int", title = title, description = "" }
end

local function level_field()
  local enum, meta = level_enum()
  return { type = "string", title = "Loyalty Level", enum = enum, ["meta:enum"] = meta, description = "" }
end

local function id_field()
  return { type = "string", format = "email", title = "Loyalty ID", description = "" }
end

-- Email must exist as an identity namespace (it is a standard one).
wf:step("schemas: identity namespace Email", function()
  local ns = identity.find_namespace(c, "Email")
  if not ns then
    error("the identity namespace 'Email' does not exist in this sandbox", 0)
  end
  wf:line("found", "namespace", "Email", ns.id and math.tointeger(ns.id) or ns.id)
end)

local function ensure_field_group(var, base_title, body_fn)
  local title = wf:title(base_title)
  return wf:ensure {
    var = var, kind = "fieldgroup", title = title,
    find = function()
      local fg = schemas.find_by_title(c, "fieldgroups", title)
      return fg and fg["$id"]
    end,
    create = function() return schemas.create_field_group(c, body_fn(title))["$id"] end,
  }
end

local function ensure_schema(var, base_title, description, refs)
  local title = wf:title(base_title)
  return wf:ensure {
    var = var, kind = "schema", title = title,
    find = function()
      local s = schemas.find_by_title(c, "schemas", title)
      return s and s["$id"]
    end,
    create = function()
      local allOf = json.array()
      for _, r in ipairs(refs) do allOf[#allOf + 1] = { ["$ref"] = r } end
      return schemas.create_schema(c, { type = "object", title = title, description = description, allOf = allOf })["$id"]
    end,
  }
end

local function ensure_identity(var, schema_var, schema_id, label)
  local path = "/" .. tkey .. "/loyaltyID"
  return wf:ensure {
    var = var, kind = "descriptor", label = "identity", title = label .. " " .. path .. " (Email, primary)",
    find = function()
      local d = schemas.find_identity_descriptor(c, schema_id, path)
      return d and d["@id"]
    end,
    create = function()
      return schemas.create_descriptor(c, schemas.identity_descriptor(schema_id, path, "Email"))["@id"]
    end,
  }
end

local function enable_profile(schema_id, title)
  wf:step("schemas: enable Profile on '" .. title .. "'", function()
    local before = schemas.get(c, "schemas", schema_id)
    if schemas.is_profile_enabled(before) then
      wf:line("ok", "Profile-enabled", title .. " (already)")
    else
      schemas.enable_profile(c, schema_id)
      wf:line("updated", "Profile-enabled", title)
    end
  end)
end

-- 1a: PROFILE
local fg_profile = ensure_field_group("FIELD_GROUP_ID_PROFILE", "Loyalty Profile Details", function(title)
  return field_group(title, "Loyalty member id, points and level of a profile", schemas.PROFILE_CLASS, {
    totalLoyaltyPoints = int_field("Total Loyalty Points"),
    loyaltyLevel = level_field(),
    loyaltyID = id_field(),
  })
end)
local schema_profile = ensure_schema("SCHEMA_ID_PROFILE", "Loyalty Profiles", "Profile data plus Loyalty data", {
  schemas.PROFILE_CLASS,
  "https://ns.adobe.com/xdm/context/profile-person-details",
  "https://ns.adobe.com/xdm/context/profile-personal-details",
  fg_profile,
})
ensure_identity("DESCRIPTOR_ID_PROFILE", "SCHEMA_ID_PROFILE", schema_profile, "profile")
enable_profile(schema_profile, wf:title("Loyalty Profiles"))

-- 1b: EVENT
local fg_event = ensure_field_group("FIELD_GROUP_ID_EVENT", "Loyalty Event Details", function(title)
  return field_group(title, "Loyalty points earned, totals and level carried by an event", schemas.EVENT_CLASS, {
    loyaltyLevel = level_field(),
    totalPoints = int_field("Total Loyalty Points"),
    pointsEarned = int_field("New Loyalty Points Earned"),
    transactionID = { type = "string", title = "Loyalty Transaction ID", description = "" },
    loyaltyID = id_field(),
  })
end)
local schema_event = ensure_schema("SCHEMA_ID_EVENT", "Loyalty Events", "Loyalty event data", {
  schemas.EVENT_CLASS,
  fg_event,
})
ensure_identity("DESCRIPTOR_ID_EVENT", "SCHEMA_ID_EVENT", schema_event, "event")
enable_profile(schema_event, wf:title("Loyalty Events"))

return { profile = schema_profile, event = schema_event }
