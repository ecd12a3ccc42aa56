-- aep.inspect: what `aep schemas`, `aep datasets` and `aep flows` share: the client from the
-- configuration every command uses (the default emulator included), the schema tree, close
-- name matches for "not found" messages, and plain column output.
local M = {}

-- inspect.client(opts) -> an aep.platform client | raises a config error naming the fix
function M.client(opts)
  local cfg = require("aep.config").load_default({ flags = opts })
  cfg:check()
  return require("aep.platform").new(cfg)
end

-- inspect.run(fn) -> exit status: fn() under pcall; an error is printed as one message (an AEP
-- error with its code) and gives 1; Ctrl-C ("interrupted", core/main.c) and usage errors are
-- passed on to the dispatcher
function M.run(fn)
  local ok, status = pcall(fn)
  if ok then return status or 0 end
  if type(status) == "string" and status:match("interrupted$") then error(status, 0) end
  if type(status) == "table" and status.usage_error then error(status, 0) end
  require("aep.log").error("%s", tostring(status))
  return 1
end

-- Edit distance (Levenshtein), for close matches of a mistyped name.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- inspect.close_matches(name, candidates [, max=5]) -> the candidates that contain the name (or
-- it them), case aside, or are a few edits from it; closest first
function M.close_matches(name, candidates, max)
  local want = tostring(name):lower()
  local scored = {}
  for _, c in ipairs(candidates) do
    local l = tostring(c):lower()
    local d = distance(want, l)
    if l:find(want, 1, true) or want:find(l, 1, true) then d = math.min(d, 1) end
    if d <= math.max(2, #want // 3) then scored[#scored + 1] = { c, d } end
  end
  table.sort(scored, function(x, y) if x[2] ~= y[2] then return x[2] < y[2] end return tostring(x[1]) < tostring(y[1]) end)
  local out = {}
  for i = 1, math.min(#scored, max or 5) do out[i] = scored[i][1] end
  return out
end

-- inspect.columns(rows, headers) -> text: rows of strings in aligned columns, headers first
function M.columns(rows, headers)
  local w = {}
  for i, h in ipairs(headers) do w[i] = #h end
  for _, r in ipairs(rows) do
    for i = 1, #headers do w[i] = math.max(w[i], #tostring(r[i] or "-")) end
  end
  local lines = {}
  local function line(r)
    local parts = {}
    for i = 1, #headers do
      local v = tostring(r[i] or "-")
      parts[i] = i < #headers and (v .. string.rep(" ", w[i] - #v)) or v
    end
    lines[#lines + 1] = table.concat(parts, "  ")
  end
  line(headers)
  for _, r in ipairs(rows) do line(r) end
  return table.concat(lines, "\n")
end

-- inspect.identities(descriptors, schema_id) -> {[field path] = {namespace=, primary=}}
function M.identities(descriptors, schema_id)
  local out = {}
  for _, d in ipairs(type(descriptors) == "table" and descriptors or {}) do
    if type(d) == "table" and d["@type"] == "xdm:descriptorIdentity" and type(d["xdm:sourceProperty"]) == "string"
      and (schema_id == nil or d["xdm:sourceSchema"] == nil or d["xdm:sourceSchema"] == schema_id) then
      out[d["xdm:sourceProperty"]] = { namespace = d["xdm:namespace"], primary = d["xdm:isPrimary"] == true }
    end
  end
  return out
end

-- inspect.schema_fields(resolved, descriptors) -> aep.xdm.field_paths with identity = {namespace,
-- primary} on the identity fields
function M.schema_fields(resolved, descriptors)
  local ids = M.identities(descriptors, resolved["$id"])
  local fields = require("aep.xdm").field_paths(resolved)
  for _, f in ipairs(fields) do f.identity = ids[f.path] end
  return fields
end

-- inspect.tree(fields) -> text: the fields as an indented tree, one line per object and leaf:
-- "name  type  required  identity NS (primary)"
function M.tree(fields)
  local lines, prev = {}, {}
  for _, f in ipairs(fields) do
    local segs = {}
    for s in f.path:gmatch("[^/]+") do segs[#segs + 1] = s end
    local common = 0
    while common < #segs - 1 and prev[common + 1] == segs[common + 1] do common = common + 1 end
    for i = common + 1, #segs - 1 do lines[#lines + 1] = string.rep("  ", i - 1) .. segs[i] .. "/" end
    local leaf = string.rep("  ", #segs - 1) .. segs[#segs]
    local notes = { f.type .. ((f.format and f.format ~= f.type) and ("(" .. f.format .. ")") or "") }
    if f.required then notes[#notes + 1] = "required" end
    if type(f.enum) == "table" and #f.enum > 0 and #f.enum <= 8 then
      local e = {}
      for i, v in ipairs(f.enum) do e[i] = tostring(v) end
      notes[#notes + 1] = "enum " .. table.concat(e, "|")
    end
    if f.identity then
      notes[#notes + 1] = "identity " .. tostring(f.identity.namespace) .. (f.identity.primary and " (primary)" or "")
    end
    lines[#lines + 1] = string.format("%-40s %s", leaf, table.concat(notes, "  "))
    prev = segs
  end
  return table.concat(lines, "\n")
end

return M
