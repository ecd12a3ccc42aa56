-- The require graph of lua/, scripts/ and mappings/, computed from the sources: no module may be
-- part of a require cycle, and no library module (anything outside lua/aep/cmd/) may require a
-- command module (aep.cmd.*): commands sit on top of the library, never under it.
--
-- Edges are the literal requires in the code: require "x", require("x"), require 'x',
-- pcall(require, "x"); lazy ones inside functions count (a lazy require still ties the modules
-- together). Comments and the insides of other strings are skipped. Module names map to
-- lua/<name with dots as slashes>.lua or .../init.lua; names with no file there (native modules,
-- cjson) are outside the graph. Requires built at run time (require("aep.cmd." .. name)) are
-- not seen.
--
-- Run it as a script for the report (every cycle's members, every violation):
--   build/aep tests/lua/require_graph_spec.lua

-- Today's violations, each to be removed by untangling the code; the list must only shrink. The
-- spec fails on a violation not listed here and on a listed one that no longer exists, so the
-- list stays exact: delete an entry in the change that removes its edge.
local KNOWN_VIOLATIONS_TO_REMOVE = {
  -- One cycle of 13 modules through the CLI: aep.cli is both the dispatcher (it loads every
  -- aep.cmd.* module) and the flag parser the library uses for usage_error, EXIT and
  -- is_interrupt. Moving dispatch into lua/aep/cmd/init.lua and the flag parsing and exit codes
  -- into a leaf module removes all of these. Members: aep.cli, aep.cmd.config, aep.cmd.emulator,
  -- aep.cmd.help, aep.cmd.repl, aep.cmd.run, aep.cmd.status, aep.cmd.stream, aep.cmd.validate, aep.repl_session,
  -- aep.stream.pipeline, aep.stream.setup, aep.stream.target, aep.validate.
  "aep.cli -> aep.cmd.config",
  "aep.cli -> aep.cmd.emulator",
  "aep.cli -> aep.cmd.help",
  "aep.cli -> aep.cmd.repl",
  "aep.cli -> aep.cmd.run",
  "aep.cli -> aep.cmd.status",
  "aep.cli -> aep.cmd.stream",
  "aep.cli -> aep.cmd.validate",
  "aep.cmd.config -> aep.cli",
  "aep.cmd.emulator -> aep.cli",
  "aep.cmd.help -> aep.cli",
  "aep.cmd.repl -> aep.cli",
  "aep.cmd.repl -> aep.repl_session",
  "aep.cmd.run -> aep.cli",
  "aep.cmd.status -> aep.cli",
  "aep.cmd.stream -> aep.cli",
  "aep.cmd.stream -> aep.stream.pipeline",
  "aep.cmd.stream -> aep.stream.setup",
  "aep.cmd.validate -> aep.cli",
  "aep.cmd.validate -> aep.validate",
  "aep.repl_session -> aep.cli",
  "aep.repl_session -> aep.validate",
  "aep.stream.pipeline -> aep.cli",
  "aep.stream.setup -> aep.cli",
  "aep.stream.setup -> aep.stream.target",
  "aep.validate -> aep.cli",
  -- The same cycle, through the inspection commands and the one dataset resolver (an id, a name
  -- or a run-manifest variable) that stream, validate and datasets share in aep.stream.target.
  "aep.cli -> aep.cmd.datasets",
  "aep.cli -> aep.cmd.flows",
  "aep.cli -> aep.cmd.schemas",
  "aep.cli -> aep.cmd.version",
  "aep.cmd.datasets -> aep.cli",
  "aep.cmd.datasets -> aep.stream.target",
  "aep.cmd.flows -> aep.cli",
  "aep.cmd.schemas -> aep.cli",
  "aep.cmd.schemas -> aep.validate",
  "aep.cmd.status -> aep.stream.target",
  "aep.cmd.version -> aep.cli",
  "aep.validate -> aep.stream.target",
  -- A library module requiring a command (and closing the cycle above): stream/target.lua uses
  -- state_dir/default_manifest of cmd/run.lua; they belong to the run/manifest module.
  "aep.stream.target -> aep.cmd.run",
  -- platform <-> ims: the error helpers both use; one leaf errors module removes it.
  "aep.ims -> aep.platform",
  "aep.platform -> aep.ims",
  -- emulator catalog <-> ingest: ingest reads datasets through catalog (get_dataset,
  -- profile_enabled), catalog drops a deleted dataset's data through ingest (drop_dataset).
  "aep.emulator.catalog -> aep.emulator.ingest",
  "aep.emulator.ingest -> aep.emulator.catalog",
}

local ROOTS = { "lua", "scripts", "mappings" }

-- Requires whose module name is computed at run time, which the parser cannot see, given here
-- as edges: node -> the modules it loads. A node absent from the sources is an error (the entry
-- is stale); a module list is re-read from the code where the code keeps one.
local DYNAMIC_REQUIRES = {
  -- the command dispatcher loads the module of the command named on the command line
  ["aep.cli"] = function(g) return g.with_prefix("aep.cmd.") end,
  -- the emulator installs every service of its registration list
  ["aep.emulator"] = function()
    return dofile("lua/aep/emulator/services.lua").modules()
  end,
}
-- Not modelled: the REPL's lazy `aep.*` namespace and `reload(name)` (aep.repl_session), which
-- load what the user names at the prompt, as a `require` typed there would.

-- ---------------------------------------------------------------------------------------------
-- Reading the sources

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function lua_files()
  local out = {}
  local p = assert(io.popen("find " .. table.concat(ROOTS, " ") .. " -type f -name '*.lua' | LC_ALL=C sort"))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- The node name of a file: the module name for lua/..., the path for scripts and mappings.
local function node_of(path)
  local rel = path:match("^lua/(.*)%.lua$")
  if not rel then return path end
  rel = rel:gsub("/init$", "")
  return (rel:gsub("/", "."))
end

-- tokens(src) -> array of { kind = "name" | "string" | "punct", text }, comments dropped
local function tokens(src)
  local out, i, n = {}, 1, #src
  local function long_bracket(at)
    local eq = src:match("^%[(=*)%[", at)
    if not eq then return nil end
    local close = "]" .. eq .. "]"
    local open_len = #eq + 2
    local stop = src:find(close, at + open_len, true)
    if not stop then return n + 1, src:sub(at + open_len) end
    return stop + #close, src:sub(at + open_len, stop - 1)
  end
  while i <= n do
    local c = src:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local after, _ = long_bracket(i + 2)
      if after then
        i = after
      else
        local nl = src:find("\n", i, true)
        i = nl and nl + 1 or n + 1
      end
    elseif c == "\"" or c == "'" then
      local j, buf = i + 1, {}
      while j <= n do
        local d = src:sub(j, j)
        if d == "\\" then
          buf[#buf + 1] = src:sub(j, j + 1)
          j = j + 2
        elseif d == c then
          break
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      out[#out + 1] = { kind = "string", text = table.concat(buf) }
      i = j + 1
    elseif c == "[" and src:match("^%[=*%[", i) then
      local after, text = long_bracket(i)
      out[#out + 1] = { kind = "string", text = text }
      i = after
    elseif c:match("[%a_]") then
      local name = src:match("^[%w_]+", i)
      out[#out + 1] = { kind = "name", text = name }
      i = i + #name
    else
      out[#out + 1] = { kind = "punct", text = c }
      i = i + 1
    end
  end
  return out
end

-- required(src) -> array of module names the source requires with a literal name
local function required(src)
  local t, out = tokens(src), {}
  for k = 1, #t do
    if t[k].kind == "name" and t[k].text == "require" and (k == 1 or t[k - 1].text ~= ".") then
      local nxt = t[k + 1]
      if nxt and (nxt.text == "(" or nxt.text == ",") then nxt = t[k + 2] end
      if nxt and nxt.kind == "string" then out[#out + 1] = nxt.text end
    end
  end
  return out
end

-- ---------------------------------------------------------------------------------------------
-- The graph

-- graph() -> { nodes = sorted names, edges = { [from] = sorted array of to }, file = { [node] = path } }
local function graph()
  local nodes, file, edges = {}, {}, {}
  local files = lua_files()
  for _, path in ipairs(files) do
    local node = node_of(path)
    nodes[#nodes + 1] = node
    file[node] = path
  end
  for _, node in ipairs(nodes) do
    local seen, list = {}, {}
    for _, name in ipairs(required(read(file[node]))) do
      if file[name] and not seen[name] then
        seen[name] = true
        list[#list + 1] = name
      end
    end
    table.sort(list)
    edges[node] = list
  end
  table.sort(nodes)
  local g = { nodes = nodes, edges = edges, file = file }
  function g.with_prefix(prefix)
    local out = {}
    for _, n in ipairs(nodes) do
      if n:sub(1, #prefix) == prefix then out[#out + 1] = n end
    end
    return out
  end
  for node, targets_of in pairs(DYNAMIC_REQUIRES) do
    assert(file[node], "DYNAMIC_REQUIRES names " .. node .. ", which is not in the sources")
    local set = {}
    for _, to in ipairs(edges[node]) do set[to] = true end
    for _, to in ipairs(targets_of(g)) do
      assert(file[to], node .. " loads " .. to .. ", which is not in the sources")
      set[to] = true
    end
    local list = {}
    for to in pairs(set) do list[#list + 1] = to end
    table.sort(list)
    edges[node] = list
  end
  return g
end

-- Tarjan's strongly connected components -> array of sorted member lists (cycles only: more
-- than one member, or one that requires itself), largest first
local function cycles(g)
  local index, low, on_stack, stack, out, counter = {}, {}, {}, {}, {}, 0
  local function visit(v)
    counter = counter + 1
    index[v], low[v] = counter, counter
    stack[#stack + 1] = v
    on_stack[v] = true
    for _, w in ipairs(g.edges[v]) do
      if not index[w] then
        visit(w)
        low[v] = math.min(low[v], low[w])
      elseif on_stack[w] then
        low[v] = math.min(low[v], index[w])
      end
    end
    if low[v] == index[v] then
      local comp = {}
      repeat
        local w = table.remove(stack)
        on_stack[w] = false
        comp[#comp + 1] = w
      until w == v
      local self_loop = false
      for _, w in ipairs(g.edges[v]) do if w == v then self_loop = true end end
      if #comp > 1 or self_loop then
        table.sort(comp)
        out[#out + 1] = comp
      end
    end
  end
  for _, v in ipairs(g.nodes) do
    if not index[v] then visit(v) end
  end
  table.sort(out, function(a, b)
    if #a ~= #b then return #a > #b end
    return a[1] < b[1]
  end)
  return out
end

-- One concrete cycle through the edge from -> to inside a component: to ... from -> to.
local function cycle_through(g, members, from, to)
  local inside = {}
  for _, m in ipairs(members) do inside[m] = true end
  local prev, queue, head = { [to] = false }, { to }, 1
  while head <= #queue do
    local v = queue[head]
    head = head + 1
    if v == from then break end
    for _, w in ipairs(g.edges[v]) do
      if inside[w] and prev[w] == nil then
        prev[w] = v
        queue[#queue + 1] = w
      end
    end
  end
  local path, v = {}, from
  while v do
    table.insert(path, 1, v)
    v = prev[v]
  end
  path[#path + 1] = to
  return table.concat(path, " -> ")
end

local function is_cmd(node) return node:match("^aep%.cmd%.") ~= nil or node == "aep.cmd" end

-- violations(g) -> { ["from -> to"] = why }: every edge inside a cycle, every library -> cmd edge
local function violations(g)
  local out = {}
  for _, members in ipairs(cycles(g)) do
    local inside = {}
    for _, m in ipairs(members) do inside[m] = true end
    for _, from in ipairs(members) do
      for _, to in ipairs(g.edges[from]) do
        if inside[to] then
          out[from .. " -> " .. to] = "in a cycle of " .. #members .. " modules, e.g. " ..
            cycle_through(g, members, from, to)
        end
      end
    end
  end
  for _, from in ipairs(g.nodes) do
    if not is_cmd(from) then
      for _, to in ipairs(g.edges[from]) do
        if is_cmd(to) then
          local key = from .. " -> " .. to
          out[key] = (out[key] and out[key] .. "; " or "") .. "a library module requires a command module"
        end
      end
    end
  end
  return out
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function report(g)
  local lines = {}
  local cs = cycles(g)
  lines[#lines + 1] = string.format("require graph: %d files, %d cycle(s)", #g.nodes, #cs)
  for k, members in ipairs(cs) do
    lines[#lines + 1] = string.format("cycle %d (%d modules): %s", k, #members, table.concat(members, ", "))
  end
  local v = violations(g)
  for _, key in ipairs(sorted_keys(v)) do
    lines[#lines + 1] = "violation: " .. key .. "  (" .. v[key] .. ")"
  end
  return table.concat(lines, "\n")
end

-- ---------------------------------------------------------------------------------------------
-- As a script: the report. As a spec: the assertions.

if not describe then
  print(report(graph()))
  return
end

describe("require graph of lua/, scripts/ and mappings/", function()
  local g = graph()

  it("reads the requires of the sources it covers", function()
    -- a sanity check of the parser on modules whose requires are known and stable
    assert.is_truthy(#g.nodes > 50)
    assert.are.same({ "aep.emulator.errors", "aep.emulator.ids", "aep.emulator.registry",
                      "aep.emulator.schema_views", "aep.json" }, g.edges["aep.emulator.descriptors"])
    assert.are.same({}, g.edges["aep.emulator.services"])
    assert.are.same({ "foo", "bar", "baz", "qux" },
      required('local a = require "foo"\nlocal b = require("bar")\n-- require "commented"\n' ..
               'local s = "require \'in a string\'"\nlocal ok, c = pcall(require, \'baz\')\n' ..
               '--[[ require "long comment" ]]\nlocal d = require [[qux]]\nx.require("method")'))
  end)

  it("has no violation but the known ones, and every known one still exists", function()
    local found = violations(g)
    local known = {}
    for _, key in ipairs(KNOWN_VIOLATIONS_TO_REMOVE) do known[key] = true end
    local new, gone = {}, {}
    for _, key in ipairs(sorted_keys(found)) do
      if not known[key] then new[#new + 1] = key .. "  (" .. found[key] .. ")" end
    end
    for _, key in ipairs(KNOWN_VIOLATIONS_TO_REMOVE) do
      if not found[key] then gone[#gone + 1] = key end
    end
    local msg = {}
    if #new > 0 then
      msg[#msg + 1] = "new require violations (break the cycle, or move the shared code out of aep.cmd.*):\n  " ..
        table.concat(new, "\n  ")
    end
    if #gone > 0 then
      msg[#msg + 1] = "fixed, so remove them from KNOWN_VIOLATIONS_TO_REMOVE:\n  " .. table.concat(gone, "\n  ")
    end
    if #msg > 0 then error(table.concat(msg, "\n") .. "\n\n" .. report(g), 0) end
  end)
end)
