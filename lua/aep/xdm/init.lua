-- aep.xdm: XDM schema resolution and validation, the one validator shared by the emulator
-- (streaming sync validation, batch ingestion), the REPL's `try` and `aep validate`.
--
-- AEP validates with everit-json-schema over org.json values; this module reports the same
-- violations in the same words and the same JSON shape (ValidationException.toJSON():
-- schemaLocation, pointerToViolation, causingExceptions, keyword, message), visits keys in
-- the order everit does (required, then extraneous keys, then declared properties, objects
-- iterated as java.util.HashMap does) and stops after 5 violations per message.
--
--   xdm.standard                         Adobe's global resources by $id (aep.xdm.standard)
--   xdm.resolve(schema, lookup)          -> resolved schema | nil, "unknown reference <id>"
--   xdm.compile(resolved, opts)          -> validate(entity) -> true | false, violations
--   xdm.report(violations)               -> the _streamingValidation array of a 400 body
--   xdm.streaming_400(violations, inlet_id, org_id) -> the whole 400 body
--   xdm.leaves(violations_or_report)     -> flat list of leaf violations (for people)
--   xdm.describe(violations_or_report)   -> "#/a: message" lines
--   xdm.entity_size_check(json_or_size, class) -> nil | message
--   xdm.pointer_get(entity, "/a/b")      -> value | nil
--   xdm.field_paths(resolved)            -> sorted { {path=, type=, ...}, ... }
--
-- The work is done in aep.xdm.resolve, aep.xdm.validator (with aep.xdm.formats,
-- aep.xdm.regex, aep.xdm.order) and aep.xdm.report.

local cjson = require "cjson"
local resolve = require "aep.xdm.resolve"
local validator = require "aep.xdm.validator"
local report = require "aep.xdm.report"

local M = {}

M.standard = require "aep.xdm.standard"
M.formats = require "aep.xdm.formats"

M.PROFILE_CLASS = resolve.PROFILE_CLASS
M.EVENT_CLASS = resolve.EVENT_CLASS

M.PROFILE_LIMIT = 100 * 1024 -- Real-Time Customer Profile: record size, hard guardrail
M.EVENT_LIMIT = 10 * 1024 -- Real-Time Customer Profile: ExperienceEvent size, hard guardrail

M.resolve = resolve.resolve
M.compile = validator.compile
M.report = report.report
M.streaming_400 = report.streaming_400
M.leaves = report.leaves
M.describe = report.describe
M.STREAMING_PROBLEM_TYPE = report.STREAMING_PROBLEM_TYPE

local type, pairs, ipairs, next, rawget = type, pairs, ipairs, next, rawget
local class_kind = validator.class_kind

local function unescape_token(t)
  return (t:gsub("~1", "/"):gsub("~0", "~"))
end

-- xdm.entity_size_check(json_text_or_size, class) -> nil | message
-- Real-Time Customer Profile drops profile records over 100 KB and ExperienceEvents over
-- 10 KB (hard guardrails); the 1 MB request limit is the server's business.
function M.entity_size_check(x, class)
  local size
  if type(x) == "string" then size = #x
  elseif type(x) == "number" then size = x
  elseif type(x) == "table" then
    local ok, s = pcall(cjson.encode, x)
    size = ok and #s or 0
  else
    error("xdm.entity_size_check: expected JSON text or a size", 2)
  end
  if class_kind(class) == "experienceevent" then
    if size > M.EVENT_LIMIT then
      return string.format("ExperienceEvent of %d bytes exceeds Profile's 10 KB limit (%d bytes)", size, M.EVENT_LIMIT)
    end
  elseif size > M.PROFILE_LIMIT then
    return string.format("profile record of %d bytes exceeds Profile's 100 KB limit (%d bytes)", size, M.PROFILE_LIMIT)
  end
  return nil
end

-- xdm.pointer_get(entity, "/a/b") -> value | nil  (JSON pointer; array indexes are 0-based)
function M.pointer_get(entity, pointer)
  if pointer == nil or pointer == "" or pointer == "#" then return entity end
  pointer = tostring(pointer):gsub("^#", "")
  local node = entity
  for seg in pointer:gmatch("[^/]+") do
    if type(node) ~= "table" then return nil end
    seg = unescape_token(seg)
    local nx = node[seg]
    if nx == nil and seg:match("^%d+$") and rawget(node, 1) ~= nil then nx = node[tonumber(seg) + 1] end
    node = nx
  end
  return node
end

-- xdm.field_paths(resolved) -> sorted array of leaf fields
--   { path = "/person/name/firstName", type = "string" (meta:xdmType or type), format =, enum =,
--     required = bool, title = }
-- Array elements are written "[]" and map keys "*" : "/identityMap/*[]/id".
function M.field_paths(resolved)
  local out = {}
  local function walk(node, path, required)
    if type(node) ~= "table" then return end
    local t = node.type
    local xt = node["meta:xdmType"]
    if (t == "object" or node.properties) and type(node.properties) == "table" and next(node.properties) then
      local req = {}
      for _, r in ipairs(type(node.required) == "table" and node.required or {}) do req[r] = true end
      for name, p in pairs(node.properties) do walk(p, path .. "/" .. name, req[name] == true) end
    elseif (xt == "map" or t == "object") and type(node.additionalProperties) == "table" then
      walk(node.additionalProperties, path .. "/*", false)
    elseif t == "array" and type(node.items) == "table" and (node.items.properties or node.items.type == "object"
        or node.items.type == "array" or type(node.items.additionalProperties) == "table") then
      walk(node.items, path .. "[]", false)
    else
      local ty = xt or t or "any"
      if t == "array" and type(node.items) == "table" then
        ty = "array<" .. tostring(node.items["meta:xdmType"] or node.items.type or "any") .. ">"
      end
      out[#out + 1] = { path = path, type = ty, format = node.format, enum = node.enum, required = required,
                        title = node.title }
    end
  end
  walk(resolved, "", false)
  table.sort(out, function(a, b) return a.path < b.path end)
  return out
end

return M
