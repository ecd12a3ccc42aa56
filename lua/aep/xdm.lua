-- aep.xdm: XDM schema resolution and validation, the one validator shared by the emulator
-- (streaming sync validation, batch ingestion), the REPL's `try` and `aep validate`.
--
-- AEP validates with everit-json-schema over org.json values; this module reports the same
-- violations in the same words and the same JSON shape (ValidationException.toJSON():
-- schemaLocation, pointerToViolation, causingExceptions, keyword, message), visiting
-- keys in the order everit does (required, then extraneous keys, then declared properties,
-- objects iterated as java.util.HashMap does) and stopping after 5 violations per message.
--
--   xdm.standard                         Adobe's global resources by $id (aep.xdm.standard)
--   xdm.resolve(schema, lookup)          -> resolved schema | nil, "unknown reference <id>"
--   xdm.compile(resolved, opts)          -> validate(entity) -> true | false, violations
--   xdm.report(violations)               -> the _streamingValidation array of a 400 body
--   xdm.streaming_400(violations, inlet_id, org_id) -> the whole 400 body
--   xdm.leaves(violations_or_report)     -> flat list of leaf violations (for people)
--   xdm.entity_size_check(json_or_size, class) -> nil | message
--   xdm.pointer_get(entity, "/a/b")      -> value | nil
--   xdm.field_paths(resolved)            -> sorted { {path=, type=, ...}, ... }

local cjson = require "cjson"
local formats = require "aep.xdm.formats"
local regex = require "aep.xdm.regex"
local order = require "aep.xdm.order"

local M = {}

M.standard = require "aep.xdm.standard"
M.formats = formats

local null = cjson.null
local type, pairs, ipairs, next, rawget = type, pairs, ipairs, next, rawget
local concat = table.concat
local mtype, floor = math.type, math.floor

M.PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
M.EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"

M.PROFILE_LIMIT = 100 * 1024 -- Real-Time Customer Profile: record size, hard guardrail
M.EVENT_LIMIT = 10 * 1024 -- Real-Time Customer Profile: ExperienceEvent size, hard guardrail

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deepcopy(x) end
  return setmetatable(out, getmetatable(v))
end

local function json_array_mt()
  local ok, json = pcall(require, "aep.json")
  if ok and type(json) == "table" and json.array_mt then return json.array_mt end
  return nil
end

-- =============================================================================================
-- Resolution (xed -> xed-full)
-- =============================================================================================

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
  if r == nil then r = M.standard[id] end
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

-- =============================================================================================
-- Validation
-- =============================================================================================

local function escape_seg(k)
  if type(k) == "number" then return tostring(mtype(k) == "float" and floor(k) == k and floor(k) or k) end
  k = tostring(k)
  if k:find("[~/]") then k = k:gsub("~", "~0"):gsub("/", "~1") end
  return k
end

-- java.net.URLEncoder.encode(token, "UTF-8"), as JSONPointer.toURIFragment() writes schemaLocation
local function url_encode(s)
  return (s:gsub("[^%w%.%-%*_ ]", function(c) return string.format("%%%02X", c:byte()) end):gsub(" ", "+"))
end

local function pointer_of(st, key)
  local parts = { "#" }
  local stack = st.stack
  for i = 1, st.n do parts[#parts + 1] = escape_seg(stack[i]) end
  if key ~= nil then parts[#parts + 1] = escape_seg(key) end
  return concat(parts, "/")
end

local function add(st, v)
  local c = st.count + 1
  st.count = c
  local errs = st.errs
  if not errs then errs = {}; st.errs = errs end
  errs[c] = v
  if c >= st.max then st.stop = true end
end

local function fail(st, key, loc, keyword, message)
  add(st, { schemaLocation = loc, pointerToViolation = pointer_of(st, key), causingExceptions = {},
            keyword = keyword, message = message })
end

local function is_array(v)
  if rawget(v, 1) ~= nil then return true end
  local mt = getmetatable(v)
  return mt ~= nil and (mt.__name == "aep.json.array" or mt.__jsontype == "array" or mt.__is_array == true)
end

local function type_msg(expected, v)
  return "expected type: " .. expected .. ", found: " .. formats.type_name(v, null)
end

local function num_str(v) return formats.java_number(v) end

local function int_str(v)
  local i = math.tointeger(v)
  return i and tostring(i) or num_str(v)
end

-- Leaf checks: check(v) -> nil | list of { keyword, message } ----------------------------------

local function string_check(s)
  local minl, maxl = s.minLength, s.maxLength
  local pat, patsrc
  if type(s.pattern) == "string" then
    pat = regex.compile(s.pattern) -- an unsupported pattern is not checked
    patsrc = s.pattern
  end
  local fmt = type(s.format) == "string" and formats.checkers[s.format] or nil
  local requires = s.type == "string"
  if not (minl or maxl or pat or fmt) then
    if not requires then return nil end
    return function(v)
      if type(v) ~= "string" then return { { "type", type_msg("String", v) } } end
    end
  end
  return function(v)
    if type(v) ~= "string" then
      if requires then return { { "type", type_msg("String", v) } } end
      return nil
    end
    local out
    if minl or maxl then
      local len = utf8.len(v) or #v
      if minl and len < minl then
        out = out or {}
        out[#out + 1] = { "minLength", "expected minLength: " .. int_str(minl) .. ", actual: " .. len }
      end
      if maxl and len > maxl then
        out = out or {}
        out[#out + 1] = { "maxLength", "expected maxLength: " .. int_str(maxl) .. ", actual: " .. len }
      end
    end
    if pat and not pat:find(v) then
      out = out or {}
      out[#out + 1] = { "pattern", "string [" .. v .. "] does not match pattern " .. patsrc }
    end
    if fmt then
      local m = fmt(v)
      if m then
        out = out or {}
        out[#out + 1] = { "format", m }
      end
    end
    return out
  end
end

local function number_check(s)
  local integer = s.type == "integer"
  local requires = s.type == "integer" or s.type == "number"
  local min, max, mult = s.minimum, s.maximum, s.multipleOf
  local xmin, xmax = s.exclusiveMinimum, s.exclusiveMaximum
  if type(min) ~= "number" then min = nil end
  if type(max) ~= "number" then max = nil end
  if type(mult) ~= "number" or mult <= 0 then mult = nil end
  -- draft-4 booleans modify minimum/maximum; draft-6 numbers are limits of their own
  local xmin_b, xmax_b = xmin == true, xmax == true
  if type(xmin) ~= "number" then xmin = nil end
  if type(xmax) ~= "number" then xmax = nil end
  return function(v)
    if type(v) ~= "number" then
      if requires then return { { "type", type_msg("Number", v) } } end
      return nil
    end
    local out
    if integer then
      local cls = formats.number_class(v)
      if cls ~= "Integer" and cls ~= "Long" then
        out = { { "type", type_msg("Integer", v) } }
      end
    end
    if min then
      if xmin_b and v <= min then
        out = out or {}
        out[#out + 1] = { "exclusiveMinimum", num_str(v) .. " is not greater than " .. num_str(min) }
      elseif v < min then
        out = out or {}
        out[#out + 1] = { "minimum", num_str(v) .. " is not greater or equal to " .. num_str(min) }
      end
    end
    if max then
      if xmax_b and v >= max then
        out = out or {}
        out[#out + 1] = { "exclusiveMaximum", num_str(v) .. " is not less than " .. num_str(max) }
      elseif v > max then
        out = out or {}
        out[#out + 1] = { "maximum", num_str(v) .. " is not less or equal to " .. num_str(max) }
      end
    end
    if mult then
      local q = v / mult
      if q ~= floor(q) then
        out = out or {}
        out[#out + 1] = { "multipleOf", num_str(v) .. " is not a multiple of " .. num_str(mult) }
      end
    end
    if xmin and v <= xmin then
      out = out or {}
      out[#out + 1] = { "exclusiveMinimum", num_str(v) .. " is not greater than " .. num_str(xmin) }
    end
    if xmax and v >= xmax then
      out = out or {}
      out[#out + 1] = { "exclusiveMaximum", num_str(v) .. " is not less than " .. num_str(xmax) }
    end
    return out
  end
end

local function boolean_check(_)
  return function(v)
    if type(v) ~= "boolean" then return { { "type", type_msg("Boolean", v) } } end
  end
end

local function null_check(_)
  return function(v)
    if v ~= null then return { { "type", type_msg("Null", v) } } end
  end
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, x in pairs(a) do if not deep_equal(x, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function enum_check(s)
  local set, tables = {}, {}
  for _, e in ipairs(s.enum) do
    if type(e) == "table" then tables[#tables + 1] = e else set[e] = true end
  end
  return function(v)
    if set[v] then return nil end
    if type(v) == "table" then
      for _, e in ipairs(tables) do if deep_equal(e, v) then return nil end end
    end
    return { { "enum", formats.java_string(v, null, cjson.encode) .. " is not a valid enum value" } }
  end
end

-- Nodes: fn(v, st, key) records failures of value v found under key -----------------------------

local compile_node

local function leaf_node(check, loc)
  return function(v, st, key)
    local r = check(v)
    if r then
      for i = 1, #r do
        if st.stop then return end
        fail(st, key, loc, r[i][1], r[i][2])
      end
    end
  end
end

-- everit loads {"type": T, "enum": [...]} as a synthetic allOf of an EnumSchema and a
-- schema of type T; a failure is reported as "#: only N subschema matches out of 2" with
-- the subschema failures (which have no schemaLocation) as its causes.
local function combined_node(checks, loc)
  local nsub = #checks
  return function(v, st, key)
    local results, failed = nil, 0
    for i = 1, nsub do
      local r = checks[i](v)
      if r then
        results = results or {}
        results[#results + 1] = r
        failed = failed + 1
      end
    end
    if not results then return end
    local ptr = pointer_of(st, key)
    local causes = {}
    for _, r in ipairs(results) do
      if #r == 1 then
        causes[#causes + 1] = { pointerToViolation = ptr, causingExceptions = {}, keyword = r[1][1], message = r[1][2] }
      else
        local inner = {}
        for j, f in ipairs(r) do
          inner[j] = { pointerToViolation = ptr, causingExceptions = {}, keyword = f[1], message = f[2] }
        end
        causes[#causes + 1] = { pointerToViolation = ptr, causingExceptions = inner,
                                message = #inner .. " schema violations found" }
      end
    end
    add(st, { schemaLocation = loc, pointerToViolation = ptr, causingExceptions = causes, keyword = "allOf",
              message = "#: only " .. (nsub - failed) .. " subschema matches out of " .. nsub })
  end
end

local function typed_check(s)
  local t = s.type
  if t == "string" then return string_check(s) end
  if t == "integer" or t == "number" then return number_check(s) end
  if t == "boolean" then return boolean_check(s) end
  if t == "null" then return null_check(s) end
  return nil
end

local function object_node(s, loc, opts)
  local requires = s.type == "object"
  local props = type(s.properties) == "table" and s.properties or {}
  local addl = s.additionalProperties
  local is_map = s["meta:xdmType"] == "map" or (type(addl) == "table" and next(props) == nil)
  -- XDM objects are closed; maps accept any key (validated by their value schema)
  local closed = not is_map and addl ~= true and (next(props) ~= nil or addl == false)
  local value_fn
  if type(addl) == "table" then value_fn = compile_node(addl, loc .. "/additionalProperties", opts) end

  local pfn, names = {}, {}
  for name, p in pairs(props) do
    if type(name) == "string" and type(p) == "table" then
      pfn[name] = compile_node(p, loc .. "/properties/" .. url_encode(name), opts)
      names[#names + 1] = name
    end
  end
  local canon = order.hashmap_order(names)
  local ncanon = #canon
  local req = {}
  for _, r in ipairs(type(s.required) == "table" and s.required or {}) do
    if type(r) == "string" then req[#req + 1] = r end
  end
  local nreq = #req

  local function canonical(v, st)
    local keys, nkeys
    if closed or value_fn then
      local all = {}
      for k in pairs(v) do all[#all + 1] = type(k) == "string" and k or tostring(k) end
      nkeys = #all
      keys = {}
      for _, k in ipairs(all) do
        if not pfn[k] then keys[#keys + 1] = k end
      end
      keys = order.hashmap_order(keys, nkeys)
    end
    if closed then
      for _, k in ipairs(keys) do
        if st.stop then return end
        fail(st, nil, loc, "additionalProperties", "extraneous key [" .. k .. "] is not permitted")
      end
    elseif value_fn then
      for _, k in ipairs(keys) do
        if st.stop then return end
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        value_fn(x, st, k)
      end
    end
    for i = 1, ncanon do
      if st.stop then return end
      local name = canon[i]
      local x = v[name]
      if x ~= nil then pfn[name](x, st, name) end
    end
  end

  return function(v, st, key)
    if st.stop then return end
    if type(v) ~= "table" or is_array(v) then
      if requires then fail(st, key, loc, "type", type_msg("JSONObject", v)) end
      return
    end
    local n0 = st.n
    if key ~= nil then
      st.n = n0 + 1
      st.stack[n0 + 1] = key
    end
    for i = 1, nreq do
      if v[req[i]] == nil then
        fail(st, nil, loc, "required", "required key [" .. req[i] .. "] not found")
        if st.stop then st.n = n0; return end
      end
    end
    -- fast pass in table order; on any failure redo in everit's order
    local base = st.count
    local odd = false
    for k, x in next, v do
      local f = pfn[k]
      if f then
        f(x, st, k)
      elseif value_fn then
        value_fn(x, st, k)
      elseif closed then
        odd = true
        break
      end
    end
    if odd or st.count > base then
      local errs = st.errs
      if errs then for i = base + 1, st.count do errs[i] = nil end end
      st.count = base
      st.stop = base >= st.max
      canonical(v, st)
    end
    st.n = n0
  end
end

local function array_node(s, loc, opts)
  local requires = s.type == "array"
  local items = s.items
  local item_fn, tuple
  if type(items) == "table" then
    if rawget(items, 1) ~= nil then
      tuple = {}
      for i, it in ipairs(items) do tuple[i] = compile_node(it, loc .. "/items/" .. (i - 1), opts) end
    else
      item_fn = compile_node(items, loc .. "/items", opts)
    end
  end
  local minI, maxI, uniq = s.minItems, s.maxItems, s.uniqueItems == true
  if type(minI) ~= "number" then minI = nil end
  if type(maxI) ~= "number" then maxI = nil end
  return function(v, st, key)
    if st.stop then return end
    if type(v) ~= "table" or (next(v) ~= nil and not is_array(v)) then
      if requires then fail(st, key, loc, "type", type_msg("JSONArray", v)) end
      return
    end
    local len = #v
    local n0 = st.n
    if key ~= nil then
      st.n = n0 + 1
      st.stack[n0 + 1] = key
    end
    if minI and len < minI then
      fail(st, nil, loc, "minItems", "expected minimum item count: " .. int_str(minI) .. ", found: " .. len)
    end
    if maxI and len > maxI and not st.stop then
      fail(st, nil, loc, "maxItems", "expected maximum item count: " .. int_str(maxI) .. ", found: " .. len)
    end
    if uniq and not st.stop then
      local dup = false
      for i = 1, len do
        for j = i + 1, len do
          if deep_equal(v[i], v[j]) then dup = true; break end
        end
        if dup then break end
      end
      if dup then fail(st, nil, loc, "uniqueItems", "array items are not unique") end
    end
    if item_fn then
      for i = 1, len do
        if st.stop then break end
        item_fn(v[i], st, i - 1)
      end
    elseif tuple then
      for i = 1, math.min(len, #tuple) do
        if st.stop then break end
        tuple[i](v[i], st, i - 1)
      end
    end
    st.n = n0
  end
end

local function any_node() return function() end end

function compile_node(s, loc, opts)
  local t = s.type
  local node
  if t == "object" or (t == nil and (s.properties ~= nil or type(s.additionalProperties) == "table" or s.required ~= nil)) then
    node = object_node(s, loc, opts)
  elseif t == "array" or (t == nil and s.items ~= nil) then
    node = array_node(s, loc, opts)
  elseif type(t) == "table" then
    -- a list of types: everit's anyOf of one schema per type
    local checks = {}
    for i, tt in ipairs(t) do
      local sub = {}
      for k, v in pairs(s) do sub[k] = v end
      sub.type = tt
      local c = typed_check(sub)
      if tt == "object" then c = function(v) if type(v) ~= "table" or is_array(v) then return { { "type", type_msg("JSONObject", v) } } end end end
      if tt == "array" then c = function(v) if type(v) ~= "table" or (next(v) ~= nil and not is_array(v)) then return { { "type", type_msg("JSONArray", v) } } end end end
      checks[i] = c or function() end
    end
    local n = #checks
    node = function(v, st, key)
      if st.stop then return end
      local causes = {}
      local ptr
      for i = 1, n do
        local r = checks[i](v)
        if not r then return end
        ptr = ptr or pointer_of(st, key)
        causes[#causes + 1] = { pointerToViolation = ptr, causingExceptions = {}, keyword = r[1][1], message = r[1][2] }
      end
      add(st, { schemaLocation = loc, pointerToViolation = ptr or pointer_of(st, key), causingExceptions = causes,
                keyword = "anyOf", message = "#: no subschema matched out of the total " .. n .. " subschemas" })
    end
  else
    local check = typed_check(s)
    if t == nil and (s.minLength or s.maxLength or s.pattern or s.format) then check = string_check(s) end
    if t == nil and (s.minimum or s.maximum or s.multipleOf) then check = number_check(s) end
    if type(s.enum) == "table" then
      local ec = enum_check(s)
      if check then
        node = combined_node({ ec, check }, loc)
      else
        node = leaf_node(ec, loc)
      end
    elseif check then
      node = leaf_node(check, loc)
    else
      node = any_node()
    end
  end
  return node
end

local function split_pointer(p)
  local segs = {}
  if type(p) ~= "string" then return segs end
  for seg in p:gmatch("[^/]+") do segs[#segs + 1] = unescape_token(seg) end
  return segs
end

-- the class name compile() works for: "profile" | "experienceevent" | nil
local function class_kind(c)
  if c == nil then return nil end
  c = tostring(c)
  if c == "profile" or c == M.PROFILE_CLASS or c == "_xdm.context.profile" then return "profile" end
  if c == "experienceevent" or c == "event" or c == M.EVENT_CLASS or c == "_xdm.context.experienceevent" then
    return "experienceevent"
  end
  return nil
end

local function add_required(node, name)
  if type(node.required) ~= "table" then node.required = {} end
  for _, r in ipairs(node.required) do if r == name then return end end
  node.required[#node.required + 1] = name
end

-- xdm.compile(resolved, opts) -> validate(entity) -> true | false, violations
-- opts.primary_identity: "/_tenant/loyaltyID" (or {path=...} / a descriptor) that must be present;
-- opts.class: "profile" | "experienceevent" (default: resolved["meta:class"]);
-- opts.max_violations: 5.
function M.compile(resolved, opts)
  if type(resolved) ~= "table" then error("xdm.compile: resolved schema must be a table", 2) end
  opts = opts or {}
  local max = opts.max_violations or 5
  local root = deepcopy(resolved)
  root.type = root.type or "object"

  local kind = class_kind(opts.class) or class_kind(resolved["meta:class"])
  if kind == "experienceevent" then
    root.properties = root.properties or {}
    if root.properties._id == nil then
      root.properties._id = { type = "string", ["meta:xdmType"] = "string", format = "uri-reference" }
    end
    if root.properties.timestamp == nil then
      root.properties.timestamp = { type = "string", ["meta:xdmType"] = "date-time", format = "date-time" }
    end
    add_required(root, "_id")
    add_required(root, "timestamp")
  end

  local pid = opts.primary_identity
  if type(pid) == "table" then pid = pid.path or pid["xdm:sourceProperty"] end
  if type(pid) == "string" and pid ~= "" then
    local node = root
    for _, seg in ipairs(split_pointer(pid)) do
      if type(node) ~= "table" then break end
      add_required(node, seg)
      local props = node.properties
      node = type(props) == "table" and props[seg] or nil
    end
  end

  local fn = compile_node(root, "#", opts)
  local st = { stack = {}, n = 0, count = 0, max = max, stop = false, errs = nil }
  return function(entity)
    st.n, st.count, st.stop, st.errs = 0, 0, max <= 0, nil
    fn(entity, st, nil)
    local errs = st.errs
    st.errs = nil
    if errs then return false, errs end
    return true
  end
end

-- =============================================================================================
-- Reports
-- =============================================================================================

local function ptr_segments(p)
  local segs = {}
  if type(p) ~= "string" then return segs end
  for seg in p:gmatch("[^/]+") do
    if seg ~= "#" then segs[#segs + 1] = seg end
  end
  return segs
end

-- the schemaLocation of the first `steps` steps of loc ("properties/x" | "items" | "additionalProperties")
local function loc_prefix(loc, steps)
  if steps == 0 or type(loc) ~= "string" then return "#" end
  local toks = {}
  for t in loc:gmatch("[^/]+") do if t ~= "#" then toks[#toks + 1] = t end end
  local out, i, taken = { "#" }, 1, 0
  while i <= #toks and taken < steps do
    local t = toks[i]
    if t == "properties" or t == "patternProperties" then
      out[#out + 1] = t
      out[#out + 1] = toks[i + 1]
      i = i + 2
    elseif t == "items" and toks[i + 1] and toks[i + 1]:match("^%d+$") then
      out[#out + 1] = t
      out[#out + 1] = toks[i + 1]
      i = i + 2
    else
      out[#out + 1] = t
      i = i + 1
    end
    taken = taken + 1
  end
  return concat(out, "/")
end

local function violation_count(v)
  local n = 0
  for _, c in ipairs(v.causingExceptions or {}) do n = n + violation_count(c) end
  if n < 1 then n = 1 end
  return n
end

local function copy_violation(v, amt)
  local out = {}
  for k, x in pairs(v) do
    if k == "causingExceptions" then
      local list = {}
      for i, c in ipairs(x) do list[i] = copy_violation(c, amt) end
      out[k] = amt and setmetatable(list, amt) or list
    else
      out[k] = x
    end
  end
  if out.causingExceptions == nil then out.causingExceptions = amt and setmetatable({}, amt) or {} end
  return out
end

local function build_tree(items, depth, amt)
  local groups, by = {}, {}
  for _, it in ipairs(items) do
    local segs = it.segs
    if #segs <= depth then
      groups[#groups + 1] = { direct = it.v }
    else
      local k = segs[depth + 1]
      local g = by[k]
      if not g then
        g = { list = {} }
        by[k] = g
        groups[#groups + 1] = g
      end
      g.list[#g.list + 1] = it
    end
  end
  local causes = {}
  for _, g in ipairs(groups) do
    if g.direct then causes[#causes + 1] = copy_violation(g.direct, amt)
    else causes[#causes + 1] = build_tree(g.list, depth + 1, amt) end
  end
  if #causes == 1 then return causes[1] end
  local first = items[1]
  local segs = {}
  for i = 1, depth do segs[i] = first.segs[i] end
  local n = 0
  for _, c in ipairs(causes) do n = n + violation_count(c) end
  return {
    schemaLocation = loc_prefix(first.v.schemaLocation, depth),
    pointerToViolation = depth == 0 and "#" or ("#/" .. concat(segs, "/")),
    causingExceptions = amt and setmetatable(causes, amt) or causes,
    message = n .. " schema violations found",
  }
end

-- xdm.report(violations) -> the value of report.cause._streamingValidation in AEP's 400 body:
-- an array holding one ValidationException JSON: the violation itself when there is one, else
-- everit's "N schema violations found" wrappers, one per object holding several failures
-- (the root wrapper has pointer and location "#"). causingExceptions are aep.json arrays.
function M.report(violations)
  local amt = json_array_mt()
  local out = {}
  if type(violations) ~= "table" or #violations == 0 then
    return amt and setmetatable(out, amt) or out
  end
  local items = {}
  for i, v in ipairs(violations) do items[i] = { v = v, segs = ptr_segments(v.pointerToViolation) } end
  out[1] = build_tree(items, 0, amt)
  return amt and setmetatable(out, amt) or out
end

M.STREAMING_PROBLEM_TYPE = "http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet"

-- xdm.streaming_400(violations, inlet_id, org_id) -> the 400 body DCS answers a message that
-- fails synchronous validation (streaming_400(inlet_id, org_id, violations) is accepted too)
function M.streaming_400(violations, inlet_id, org_id)
  if type(violations) ~= "table" and type(org_id) == "table" then
    violations, inlet_id, org_id = org_id, violations, inlet_id
  end
  return {
    type = M.STREAMING_PROBLEM_TYPE,
    status = 400,
    title = "Invalid XDM Message Format",
    report = {
      message = "inletId: [" .. tostring(inlet_id or "") .. "] imsOrgId: [" .. tostring(org_id or "")
        .. "] Message is invalid",
      cause = { _streamingValidation = M.report(violations) },
    },
  }
end

-- xdm.leaves(violations_or_report) -> flat array of {pointerToViolation, keyword, message,
-- schemaLocation}: the innermost exceptions, in order (what a person wants to read)
function M.leaves(x)
  local out = {}
  local function walk(v)
    if type(v) ~= "table" then return end
    local causes = v.causingExceptions
    if type(causes) == "table" and causes[1] ~= nil then
      for _, c in ipairs(causes) do walk(c) end
    elseif v.message ~= nil then
      out[#out + 1] = { pointerToViolation = v.pointerToViolation, keyword = v.keyword, message = v.message,
                        schemaLocation = v.schemaLocation }
    end
  end
  if type(x) == "table" and x.report then x = x.report end
  if type(x) == "table" and x.cause then x = x.cause end
  if type(x) == "table" and x._streamingValidation then x = x._streamingValidation end
  if type(x) == "table" then
    if x.pointerToViolation then walk(x) else for _, v in ipairs(x) do walk(v) end end
  end
  return out
end

-- xdm.describe(violations_or_report) -> "#/a: message\n#/b: message" (leaves, one per line)
function M.describe(x)
  local lines = {}
  for _, v in ipairs(M.leaves(x)) do
    lines[#lines + 1] = tostring(v.pointerToViolation or "#") .. ": " .. tostring(v.message)
  end
  return concat(lines, "\n")
end

-- =============================================================================================
-- Helpers
-- =============================================================================================

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
