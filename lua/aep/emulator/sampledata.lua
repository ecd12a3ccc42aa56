-- aep.emulator.sampledata: GET /rpc/sampledata/{SCHEMA_ID} (Adobe's sample data guide): an
-- example record for a schema, built from its resolved form (the same resolution the validator
-- uses), so every field of the schema appears once with a value of its type. Adobe fills numbers
-- at random; the emulator's values are fixed (the first enum value, 0 clamped into the field's
-- bounds, false, per string format the guide's example values, for a pattern the first of a few
-- sample codes it accepts), so a sample is reproducible.
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local registry = require "aep.emulator.registry"
local views = require "aep.emulator.schema_views"
local schemas = require "aep.emulator.schemas"
local regex = require "aep.xdm.regex"

local M = {}

local BASE = "/data/foundation/schemaregistry"
local JSON_HEADERS = errors.JSON_HEADERS
local MAX_DEPTH = 16

-- string values by format: the guide's sample values where it shows one
local BY_FORMAT = {
  ["date-time"] = "2018-11-12T20:20:39+00:00",
  date = "2018-01-12",
  ["uri-reference"] = "/uri-reference",
  uri = "https://example.com/uri",
  email = "john.smith@abc.com",
  ipv4 = "192.0.2.1",
  ipv6 = "2001:db8::1",
  uuid = "123e4567-e89b-12d3-a456-426614174000",
  hostname = "example.com",
}

-- a string for a "pattern": the first of these sample values the pattern accepts (country, region,
-- language and day-of-year codes as in the guide's sample), else "string"
local PATTERN_CANDIDATES = { "string", "US", "US-CA", "01-23", "en-US", "2018-01-12", "123", "a1" }

local function for_pattern(pattern)
  local m = regex.compile(pattern)
  if not m then return "string" end
  for _, c in ipairs(PATTERN_CANDIDATES) do
    if m:find(c) then return c end
  end
  return "string"
end

local function first_type(t)
  if type(t) == "table" then
    for _, x in ipairs(t) do if x ~= "null" then return x end end
    return nil
  end
  return t
end

local function clamp(v, lo, hi)
  if type(lo) == "number" and v < lo then v = lo end
  if type(hi) == "number" and v > hi then v = hi end
  return v
end

local function sample(node, depth)
  if type(node) ~= "table" or depth > MAX_DEPTH then return nil end
  if node.const ~= nil then return node.const end
  if type(node.enum) == "table" and node.enum[1] ~= nil then return node.enum[1] end
  local t = first_type(node.type)
  if t == nil and node.properties then t = "object" end
  if t == "object" then
    local out = {}
    if type(node.properties) == "table" then
      for name, prop in pairs(node.properties) do
        local v = sample(prop, depth + 1)
        if v ~= nil then out[name] = v end
      end
    elseif type(node.additionalProperties) == "table" then
      -- a map: one entry, keyed as the guide's identityMap sample is
      local v = sample(node.additionalProperties, depth + 1)
      if v ~= nil then out.key = v end
    end
    return out
  elseif t == "array" then
    local v = sample(node.items, depth + 1)
    return v == nil and json.array {} or json.array { v }
  elseif t == "string" then
    local s = BY_FORMAT[node.format] or (type(node.pattern) == "string" and for_pattern(node.pattern)) or "string"
    if type(node.maxLength) == "number" and #s > node.maxLength then s = s:sub(1, node.maxLength) end
    if type(node.minLength) == "number" and #s < node.minLength then s = s .. ("x"):rep(node.minLength - #s) end
    return s
  elseif t == "integer" then
    return math.tointeger(clamp(0, node.minimum, node.maximum)) or 0
  elseif t == "number" then
    return clamp(0, node.minimum, node.maximum)
  elseif t == "boolean" then
    return false
  end
  return nil
end
M.sample = sample

local function find_schema(ctx, id)
  local doc = registry.tenant(ctx.sandbox, "schema", id)
  if not doc then
    local unions = ctx.app:module("unions")
    doc = unions and unions.find(ctx, id)
  end
  return doc
end

local function sampledata(req, ctx)
  local doc = find_schema(ctx, req.params.id)
  if not doc then
    -- the one Schema Registry error the spec types: notFoundError, as application/json
    local status, _, body = views.not_found("schema", req.params.id)
    return status, JSON_HEADERS, body
  end
  local full, err = registry.resolve(ctx.sandbox, doc)
  if not full then return errors.xdm("XDM-1012-400", "Bad Request", err) end
  return 200, JSON_HEADERS, sample(full, 0) or {}
end

function M.install(app)
  local o = { auth = "platform", body = "json", group = "schemas" }
  app:route("GET", BASE .. "/rpc/sampledata/:id", sampledata, o)
  app:route("GET", BASE .. "/rpc/sampledata/*id", schemas.helpers.rejoin(sampledata), o)
end

return M
