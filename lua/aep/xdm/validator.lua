-- aep.xdm.validator: compiles a resolved schema into closures that report violations as
-- everit-json-schema does (same keywords, messages, pointers, schema locations and order).
--
-- Order: per object, missing required keys (in the schema's order), then extraneous keys, then
-- the declared properties; keys and properties are visited in java.util.HashMap iteration
-- order (aep.xdm.order). The success path makes one pass over each object in table order and
-- builds no strings; when something fails, that object is re-walked in everit's order.
-- A violation: { keyword, message, pointerToViolation = "#/a/b",
--                schemaLocation = "#/properties/a/properties/b", causingExceptions = {} }.

local cjson = require "cjson"
local formats = require "aep.xdm.formats"
local regex = require "aep.xdm.regex"
local order = require "aep.xdm.order"
local checks = require "aep.xdm.checks"

local M = {}

local null = cjson.null
local type, pairs, ipairs, next, rawget = type, pairs, ipairs, next, rawget
local concat = table.concat
local mtype, floor = math.type, math.floor

M.PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
M.EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deepcopy(x) end
  return setmetatable(out, getmetatable(v))
end

local function unescape_token(t)
  return (t:gsub("~1", "/"):gsub("~0", "~"))
end

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

local type_msg, int_str = checks.type_msg, checks.int_str
local string_check, number_check, enum_check = checks.string, checks.number, checks.enum
local deep_equal, typed_check = checks.deep_equal, checks.typed

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
    if st.stop then return end
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

-- A property schema whose node is a bare type check, or a string enum: -> "type", lua_type |
-- "enum", set | nil. Such leaves pass exactly when the value has that Lua type, or is one of the
-- enum's strings (compile_node's string/boolean/number checks and combined enum node agree).
local INLINE_TYPES = { string = "string", boolean = "boolean", number = "number" }
local function inline_leaf(p)
  local t = INLINE_TYPES[p.type]
  if not t then return nil end
  if p.minLength ~= nil or p.maxLength ~= nil or p.pattern ~= nil or p.format ~= nil or p.minimum ~= nil
     or p.maximum ~= nil or p.multipleOf ~= nil or p.exclusiveMinimum ~= nil or p.exclusiveMaximum ~= nil then
    return nil
  end
  local enum = p.enum
  if enum == nil then return "type", t end
  if t ~= "string" or type(enum) ~= "table" then return nil end
  local set = {}
  for _, e in ipairs(enum) do
    if type(e) ~= "string" then return nil end
    set[e] = true
  end
  return "enum", set
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

  -- ptype[name]: a leaf that only needs its Lua type; penum[name]: a string enum and nothing
  -- else (membership is the whole check). The fast pass checks those inline, without a call.
  local pfn, names, ptype, penum = {}, {}, {}, {}
  for name, p in pairs(props) do
    if type(name) == "string" and type(p) == "table" then
      pfn[name] = compile_node(p, loc .. "/properties/" .. url_encode(name), opts)
      names[#names + 1] = name
      local kind, arg = inline_leaf(p)
      if kind == "type" then ptype[name] = arg elseif kind == "enum" then penum[name] = arg end
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
    local array
    if type(v) == "table" then
      if getmetatable(v) == nil then array = v[1] ~= nil else array = is_array(v) end
    end
    if array ~= false then
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
      local t = ptype[k]
      if t then
        if type(x) ~= t then odd = true; break end
      else
        local set = penum[k]
        if set then
          if set[x] ~= true then odd = true; break end
        else
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

M.class_kind = class_kind

return M
