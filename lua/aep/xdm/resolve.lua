-- aep.xdm.resolve: XDM resolution, xed -> xed-full. Follows allOf/$ref (local #/definitions/...
-- pointers and other resources through lookup, Adobe's global resources as the fallback),
-- merges the class, field groups and data types into one tree and fills in what the Schema
-- Registry adds to every field (meta:xdmType, integer bounds for byte/short/int/long).

local standard = require "aep.xdm.standard"

local M = {}

M.PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
M.EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"

local type, pairs, ipairs, rawget = type, pairs, ipairs, rawget

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deepcopy(x) end
  return setmetatable(out, getmetatable(v))
end


-- keys that describe a resource rather than the shape it contributes
local RESOURCE_META = {
  ["$id"] = true, ["$schema"] = true, ["meta:altId"] = true, ["meta:resourceType"] = true, version = true,
  ["meta:extends"] = true, ["meta:intendedToExtend"] = true, ["meta:containerId"] = true,
  ["meta:registryMetadata"] = true, ["meta:tenantNamespace"] = true, ["meta:sandboxId"] = true,
  ["meta:sandboxType"] = true, ["meta:abstract"] = true, ["meta:extensible"] = true, ["meta:class"] = true,
  ["meta:immutableTags"] = true, ["meta:status"] = true, ["meta:createdDate"] = true, ["meta:license"] = true,
  ["meta:tags"] = true, ["meta:titleId"] = true, ["meta:descriptionId"] = true, imsOrg = true,
  title = true, description = true,
}

local function rerr(msg) error({ xdm_error = msg }, 0) end

local function unescape_token(t)
  return (t:gsub("~1", "/"):gsub("~0", "~"))
end

local function pointer_in(doc, frag)
  if frag == "" or frag == "/" then return doc end
  local node = doc
  for tok in frag:gmatch("[^/]+") do
    tok = unescape_token(tok:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    if type(node) ~= "table" then return nil end
    local nx = node[tok]
    if nx == nil and tok:match("^%d+$") then nx = node[tonumber(tok) + 1] end
    node = nx
  end
  return node
end

local function find_resource(id, lookup)
  local r
  if lookup then r = lookup(id) end
  if r == nil then r = standard[id] end
  if r == nil and id:find("/fieldgroups/", 1, true) and lookup then
    r = lookup((id:gsub("/fieldgroups/", "/mixins/")))
  end
  return r
end

-- returns target node, its resource, whether the target is a resource root
local function deref(ref, res, lookup)
  local uri, frag = ref:match("^([^#]*)#?(.*)$")
  if uri == "" then
    local t = pointer_in(res, frag)
    if t == nil then rerr("unknown reference " .. ref) end
    return t, res, false
  end
  local doc = find_resource(uri, lookup)
  if type(doc) ~= "table" then rerr("unknown reference " .. uri) end
  if frag ~= "" then
    local t = pointer_in(doc, frag)
    if t == nil then rerr("unknown reference " .. ref) end
    return t, doc, false
  end
  return doc, doc, true
end

local merge_into

local function union_required(dst, src)
  local seen = {}
  for _, r in ipairs(dst) do seen[r] = true end
  for _, r in ipairs(src) do
    if not seen[r] then dst[#dst + 1] = r; seen[r] = true end
  end
end

-- merge src (a freshly expanded node) into dst; dst's own scalar keywords win
function merge_into(dst, src, skip_meta)
  for k, v in pairs(src) do
    if skip_meta and RESOURCE_META[k] then
      -- a resource's identity and text stay with the resource
    elseif k == "properties" and type(v) == "table" then
      local dp = dst.properties
      if type(dp) ~= "table" then dst.properties = v
      else
        for name, p in pairs(v) do
          if type(dp[name]) == "table" and type(p) == "table" then merge_into(dp[name], p) else
            if dp[name] == nil then dp[name] = p end
          end
        end
      end
    elseif k == "required" and type(v) == "table" then
      if type(dst.required) ~= "table" then dst.required = v else union_required(dst.required, v) end
    elseif (k == "items" or k == "additionalProperties") and type(v) == "table" then
      if type(dst[k]) == "table" then merge_into(dst[k], v) elseif dst[k] == nil then dst[k] = v end
    elseif dst[k] == nil then
      dst[k] = v
    end
  end
end

local expand

local function expand_props(props, res, lookup, depth)
  local out = {}
  for name, p in pairs(props) do
    out[name] = type(p) == "table" and expand(p, res, lookup, depth + 1) or p
  end
  return out
end

function expand(node, res, lookup, depth)
  if depth > 100 then rerr("reference nesting too deep (cycle?)") end
  local out = {}
  for k, v in pairs(node) do
    if k == "$ref" or k == "allOf" or k == "definitions" or k == "meta:license" then
      -- resolved below / dropped
    elseif k == "properties" and type(v) == "table" then
      out.properties = expand_props(v, res, lookup, depth)
    elseif (k == "items" or k == "additionalProperties") and type(v) == "table" then
      if rawget(v, 1) ~= nil then -- tuple items
        local list = {}
        for i, it in ipairs(v) do list[i] = expand(it, res, lookup, depth + 1) end
        out[k] = list
      else
        out[k] = expand(v, res, lookup, depth + 1)
      end
    else
      out[k] = deepcopy(v)
    end
  end
  local ref = node["$ref"]
  if type(ref) == "string" then
    local target, tres, is_root = deref(ref, res, lookup)
    merge_into(out, expand(target, tres, lookup, depth + 1), is_root)
  end
  if type(node.allOf) == "table" then
    for _, part in ipairs(node.allOf) do
      if type(part) == "table" then
        local pref = part["$ref"]
        local is_root = false
        if type(pref) == "string" and not pref:find("#", 1, true) then is_root = true end
        merge_into(out, expand(part, res, lookup, depth + 1), is_root)
      end
    end
  end
  return out
end

local XDM_BOUNDS = {
  byte = { -128, 127 }, short = { -32768, 32767 }, int = { -2147483648, 2147483647 },
  long = { -9007199254740991, 9007199254740991 },
}

local function infer_int_type(node)
  local lo, hi = node.minimum, node.maximum
  if type(lo) ~= "number" or type(hi) ~= "number" then return "long" end
  for _, t in ipairs({ "byte", "short", "int" }) do
    local b = XDM_BOUNDS[t]
    if lo >= b[1] and hi <= b[2] then return t end
  end
  return "long"
end

-- fill in what the Schema Registry adds to every field: meta:xdmType, integer bounds, object type
local function normalize(node)
  if type(node) ~= "table" then return end
  local t = node.type
  if t == nil and type(node.properties) == "table" then node.type = "object"; t = "object" end
  if t == "object" then
    if node["meta:xdmType"] == nil then
      if type(node.additionalProperties) == "table" and node.properties == nil then
        node["meta:xdmType"] = "map"
      else
        node["meta:xdmType"] = "object"
      end
    end
  elseif t == "integer" then
    local xt = node["meta:xdmType"]
    if xt == nil or not XDM_BOUNDS[xt] then
      if xt == nil then xt = infer_int_type(node); node["meta:xdmType"] = xt end
    end
    local b = XDM_BOUNDS[xt]
    if b then
      if node.minimum == nil then node.minimum = b[1] end
      if node.maximum == nil then node.maximum = b[2] end
    end
  elseif t == "string" and node["meta:xdmType"] == nil then
    if node.format == "date" then node["meta:xdmType"] = "date"
    elseif node.format == "date-time" then node["meta:xdmType"] = "date-time"
    else node["meta:xdmType"] = "string" end
  elseif (t == "number" or t == "boolean" or t == "array") and node["meta:xdmType"] == nil then
    node["meta:xdmType"] = t
  end
  if type(node.properties) == "table" then
    for _, p in pairs(node.properties) do normalize(p) end
  end
  if type(node.items) == "table" then
    if rawget(node.items, 1) ~= nil then
      for _, it in ipairs(node.items) do normalize(it) end
    else
      normalize(node.items)
    end
  end
  if type(node.additionalProperties) == "table" then normalize(node.additionalProperties) end
end

local function class_of(schema, lookup)
  if type(schema["meta:class"]) == "string" then return schema["meta:class"] end
  if schema["meta:resourceType"] == "classes" then return schema["$id"] end
  for _, part in ipairs(type(schema.allOf) == "table" and schema.allOf or {}) do
    local ref = type(part) == "table" and part["$ref"]
    if type(ref) == "string" and not ref:find("#", 1, true) then
      local doc = find_resource(ref, lookup)
      if type(doc) == "table" and (doc["meta:resourceType"] == "classes" or ref == M.PROFILE_CLASS or ref == M.EVENT_CLASS) then
        return ref
      end
    end
  end
  for _, e in ipairs(type(schema["meta:extends"]) == "table" and schema["meta:extends"] or {}) do
    if e == M.PROFILE_CLASS or e == M.EVENT_CLASS then return e end
  end
  return nil
end

-- xdm.resolve(schema, lookup) -> resolved schema | nil, "unknown reference <id>"
-- lookup(id) -> resource | nil; Adobe's global resources (xdm.standard) are the fallback.
function M.resolve(schema, lookup)
  if type(schema) ~= "table" then error("xdm.resolve: schema must be a table", 2) end
  local ok, out = pcall(function()
    local full = expand(schema, schema, lookup, 0)
    full.type = full.type or "object"
    normalize(full)
    local class = class_of(schema, lookup)
    if class then full["meta:class"] = class end
    return full
  end)
  if ok then return out end
  if type(out) == "table" and out.xdm_error then return nil, out.xdm_error end
  error(out, 0)
end


return M
