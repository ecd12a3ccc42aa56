-- aep.emulator.router: a precompiled route tree. Paths are matched segment by segment on the raw
-- (still percent-encoded) path, each segment decoded on its own, so that a URL-encoded schema $id
-- ("https%3A%2F%2Fns.adobe.com%2F...") stays one path parameter. A trailing slash is ignored
-- (the collection posts to ".../tenant/mixins/"). Static paths are found with one table lookup.
local M = {}

local Router = {}
Router.__index = Router

local function new_node() return { lit = {} } end

-- router.new() -> Router
function M.new()
  return setmetatable({ root = new_node(), static = {}, routes = {} }, Router)
end

local function split(path)
  local segs, n = {}, 0
  for seg in path:gmatch("[^/]+") do n = n + 1; segs[n] = seg end
  return segs, n
end

local function unescape(s)
  if not s:find("%", 1, true) then return s end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
M.unescape = unescape

local function normalize(path)
  path = path:match("^[^?#]*")
  if #path > 1 and path:sub(-1) == "/" then path = path:gsub("/+$", "") end
  if path == "" then path = "/" end
  return path
end
M.normalize = normalize

-- router:add(method, pattern, handler, opts) -> route
-- pattern: "/a/b/:param/c" or ".../*rest" (the rest of the path, slashes included).
function Router:add(method, pattern, handler, opts)
  local route = { method = method, pattern = pattern, handler = handler, opts = opts or {}, names = {} }
  local segs = split(pattern)
  local node, dynamic = self.root, false
  for i, seg in ipairs(segs) do
    local first = seg:sub(1, 1)
    if first == ":" then
      dynamic = true
      node.param = node.param or new_node()
      node = node.param
      route.names[#route.names + 1] = seg:sub(2)
    elseif first == "*" then
      assert(i == #segs, "splat must be the last segment: " .. pattern)
      dynamic = true
      node.splat = node.splat or new_node()
      node = node.splat
      route.names[#route.names + 1] = seg:sub(2)
    else
      node.lit[seg] = node.lit[seg] or new_node()
      node = node.lit[seg]
    end
  end
  node.methods = node.methods or {}
  assert(not node.methods[method], "duplicate route " .. method .. " " .. pattern)
  node.methods[method] = route
  if not dynamic then self.static[normalize(pattern)] = node end
  self.routes[#self.routes + 1] = route
  return route
end

-- Depth-first walk: literal child first, then the parameter, then a splat (backtracking).
local function walk(node, segs, i, n, caps, depth)
  if i > n then
    if node.methods then return node end
    return nil
  end
  local seg = segs[i]
  local child = node.lit[seg]
  if child then
    local found = walk(child, segs, i + 1, n, caps, depth)
    if found then return found end
  end
  if node.param then
    caps[depth + 1] = unescape(seg)
    local found = walk(node.param, segs, i + 1, n, caps, depth + 1)
    if found then return found end
    caps[depth + 1] = nil
  end
  if node.splat and node.splat.methods then
    local rest = {}
    for k = i, n do rest[#rest + 1] = unescape(segs[k]) end
    caps[depth + 1] = table.concat(rest, "/")
    return node.splat
  end
  return nil
end

local EMPTY = {}

-- router:match(method, raw_path) -> route, params | nil, allowed_methods (405) | nil (404)
function Router:match(method, raw_path)
  local path = normalize(raw_path)
  local node = self.static[path]
  local caps
  if not node then
    caps = {}
    local segs, n = split(path)
    node = walk(self.root, segs, 1, n, caps, 0)
    if not node then return nil end
  end
  local route = node.methods[method] or (method == "HEAD" and node.methods.GET)
  if not route then
    local allowed = {}
    for m in pairs(node.methods) do allowed[#allowed + 1] = m end
    table.sort(allowed)
    return nil, allowed
  end
  if not caps then return route, EMPTY end
  local params = {}
  for k, name in ipairs(route.names) do params[name] = caps[k] end
  return route, params
end

return M
