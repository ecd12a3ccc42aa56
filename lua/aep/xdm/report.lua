-- aep.xdm.report: AEP's report shapes for a list of violations: everit's ValidationException
-- tree (one "N schema violations found" wrapper per object holding several failures), the
-- DCS 400 body of a message that fails synchronous validation, and flat leaves for people.

local M = {}

local type, pairs, ipairs = type, pairs, ipairs
local concat = table.concat

local json = require "aep.json"

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
  local amt = json.array_mt
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
  -- A leaf without a pointer of its own (everit's enum inside a type+enum allOf) is about the
  -- field its parent points at: people need that path.
  local function walk(v, parent_pointer)
    if type(v) ~= "table" then return end
    local pointer = v.pointerToViolation
    if pointer == nil or pointer == "#" then pointer = parent_pointer or pointer end
    local causes = v.causingExceptions
    if type(causes) == "table" and causes[1] ~= nil then
      for _, c in ipairs(causes) do walk(c, pointer) end
    elseif v.message ~= nil then
      out[#out + 1] = { pointerToViolation = pointer, keyword = v.keyword, message = v.message,
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

return M
