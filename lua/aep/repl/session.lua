-- aep.repl.session: what `aep repl` puts at hand before the first prompt.
--
--   aep       the library: aep.schemas, aep.catalog, aep.stream.readers, ... each field loads its
--             module on first use (so `aep.schemas.<Tab>` completes the module's functions)
--   client    an aep.platform client for the current configuration; it authenticates on its
--             first request (a token is fetched then, and renewed as needed)
--   cfg, json the configuration (aep.config) and aep.json
--   try(mapping, record [, dataset])  map one record and validate the entity offline
--   reload(path | module)             load a mapping file (or a module) again
--   records(path [, n])               the records of an input file
--   help([f])                         what is available; a function's signature and description
--
-- Calls that wait on the network show a spinner on a terminal after half a second; Ctrl-C
-- cancels them and the REPL goes on.
local host = require "aep.host"
local term = require "aep.term"
local is_interrupt = require("aep.errors").is_interrupt

local M = {}

-- ---------------------------------------------------------------------------------------------
-- The `aep` table: lazily loaded modules

-- Names of the modules under prefix ("aep" -> {schemas = "module", stream = "package", ...}),
-- from the modules built into aep, the native ones and the files on the Lua path.
local function child_names(prefix)
  local names = {}
  local dir = "lua/" .. prefix:gsub("%.", "/") .. "/"
  for _, path in ipairs(host.embedded_list(dir)) do
    local rest = path:sub(#dir + 1)
    local mod = rest:match("^([%w_]+)%.lua$")
    local pkg = rest:match("^([%w_]+)/")
    if mod and mod ~= "init" then names[mod] = names[mod] or "module" end
    if pkg then names[pkg] = "package" end
  end
  for name in pairs(package.preload) do
    local child = name:sub(1, #prefix + 1) == prefix .. "." and name:sub(#prefix + 2)
    if child and child:match("^[%w_]+$") then names[child] = names[child] or "module" end
  end
  for name in pairs(package.loaded) do
    local child = type(name) == "string" and name:sub(1, #prefix + 1) == prefix .. "." and name:sub(#prefix + 2)
    if child and child:match("^[%w_]+$") then names[child] = names[child] or "module" end
  end
  return names
end

local function not_found(err, modname)
  return type(err) == "string" and err:find("module '" .. modname .. "' not found", 1, true) ~= nil
end

local namespace

-- namespace(prefix) -> a table whose field NAME is require(prefix .. "." .. NAME), loaded on first
-- use; a folder without a module of its own (aep.stream) is a namespace in turn.
namespace = function(prefix)
  local known = child_names(prefix)
  local ns = {}
  local function sorted()
    local keys = {}
    for k in pairs(known) do keys[#keys + 1] = k end
    for k in next, ns do if type(k) == "string" and not known[k] then keys[#keys + 1] = k end end
    table.sort(keys)
    return keys
  end
  return setmetatable(ns, {
    __index = function(t, k)
      if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then return nil end
      local modname = prefix .. "." .. k
      local ok, mod = pcall(require, modname)
      if ok then
        rawset(t, k, mod)
        return mod
      end
      if not not_found(mod, modname) then error(mod, 2) end
      if known[k] == "package" then
        local sub = namespace(modname)
        rawset(t, k, sub)
        return sub
      end
      return nil
    end,
    -- pairs(aep) lists every module, loaded or not (what Tab completes); a module not loaded yet
    -- shows as a string saying so, and loads when its field is read
    __pairs = function(t)
      local keys, i = sorted(), 0
      return function()
        i = i + 1
        local k = keys[i]
        if k == nil then return nil end
        local v = rawget(t, k)
        if v == nil then v = "module " .. prefix .. "." .. k .. " (loads on first use)" end
        return k, v
      end, t, nil
    end,
    __tostring = function()
      return prefix .. ": " .. table.concat(sorted(), " ") .. "  (help(" .. prefix .. ".NAME) lists a module's functions)"
    end,
    __name = "aep.namespace",
    namespace = prefix,
  })
end
M.namespace = namespace

-- ---------------------------------------------------------------------------------------------
-- help

-- The text of a chunk's source: a file, or a module built into aep ("@lua/aep/x.lua").
local source_cache = {}
local function source_lines(source)
  if type(source) ~= "string" or source:sub(1, 1) ~= "@" then return nil end
  local path = source:sub(2)
  local cached = source_cache[path]
  if cached then return cached end
  local text = require("aep.file").read(path) or host.embedded(path)
  if not text then return nil end
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  source_cache[path] = lines
  return lines
end

-- The comment block right above line n (the signature comment convention), oldest line first.
local function comment_above(lines, n)
  local block = {}
  local i = n - 1
  while i >= 1 do
    local text = lines[i]:match("^%s*%-%-+ ?(.*)$")
    if not text or lines[i]:match("^%s*%-%-%[") then break end
    table.insert(block, 1, text)
    i = i - 1
  end
  return block
end

-- Parameters of a Lua function as written: "(c, kind, id, ...)".
local function params_of(f)
  local info = debug.getinfo(f, "u")
  local names = {}
  for i = 1, info.nparams do names[#names + 1] = debug.getlocal(f, i) or ("arg" .. i) end
  if info.isvararg then names[#names + 1] = "..." end
  return "(" .. table.concat(names, ", ") .. ")"
end

-- The name a function is known by: "schemas.get" (a field of a loaded module), else nil.
local function name_of(f)
  local best
  for modname, mod in pairs(package.loaded) do
    if type(mod) == "table" and type(modname) == "string" and modname ~= "aep.repl.session" then
      for k, v in next, mod do
        if v == f and type(k) == "string" then
          local short = modname == "_G" and k or (modname .. "." .. k)
          if not best or #short < #best then best = short end
        end
      end
    end
  end
  return best
end

-- session.describe(f [, name]) -> signature, description lines, where (file:line)
function M.describe(f, name)
  local info = debug.getinfo(f, "S")
  name = name or name_of(f)
  if info.what == "C" then
    local mod = name and name:match("^(.*)%.[^.]+$")
    local text = "a C function of Lua's standard library: see the Lua 5.4 reference manual"
    if mod and mod:match("^aep%.") then
      text = "a C function of " .. mod .. ": its contract is in docs/ARCHITECTURE.md"
    end
    return (name and name:gsub("^aep%.", "") or "?") .. "(...)", { text }, "[C]"
  end
  local where = info.short_src .. ":" .. info.linedefined
  local lines = source_lines(info.source)
  local block = lines and comment_above(lines, info.linedefined) or {}
  -- the signature is the first comment line that looks like a call: name(args) ...
  for i, text in ipairs(block) do
    if text:match("^[%w_%.:]+%b()") or text:match("^[%w_%.:]+%b{}") then
      return text, table.move(block, i + 1, #block, 1, {}), where
    end
  end
  return (name or "function") .. params_of(f), block, where
end

local function module_name_of(t)
  for name, mod in pairs(package.loaded) do
    if mod == t and type(name) == "string" then return name end
  end
  return nil
end

local function out(s) io.stdout:write(s, "\n") end

local function bold(s) return term.paint(io.stdout, "bold", s) end

local GLOBALS = {
  { "aep", "the library: aep.schemas, aep.catalog, aep.stream.readers, ... (a module loads on first use)" },
  { "client", "Platform client for the current configuration (authenticates on first use)" },
  { "client:batches{dataset=ID}", "after the answer: also client:runs(FLOW), client:run(ID), client:failed_records(BATCH), client:failed_for(DATASET, pred)" },
  { "cfg", "the configuration: cfg:describe(), cfg:get \"SANDBOX_NAME\"" },
  { "json", "aep.json: json.decode(s), json.encode(v), json.encode_pretty(v)" },
  { "try(mapping, record [, dataset])", "map one record, validate it offline against the dataset's schema (mapping: a Lua mapping or a mapping set .json)" },
  { "reload(path | module | dataset)", "load a mapping file (or a module) again; reload(DATASET) refetches its schema" },
  { "records(path [, n])", "the records of a file: JSON Lines, JSON array, CSV (optionally .gz)" },
  { "help(f | module)", "a function's signature and description; a module's functions" },
}

-- The examples help() shows: each runs as shown against `aep run realtime-import`'s datasets,
-- from any directory (tests/lua/repl_help_examples_spec.lua runs them in a REPL session).
M.EXAMPLES = {
  "aep.schemas.tenant_id(client)",
  'm = reload "mappings/loyalty_profile.lua"',
  'try(m, records("data/AEP_loyalty_profiles.json")[1], "DATASET_ID_PROFILE")',
  'try("mappings/loyalty_profile.mapping-set.json", records("data/AEP_loyalty_profiles.json", 2)[2], "aep Loyalty Profiles")',
  'aep.catalog.find_dataset_by_name(client, "aep Loyalty Events").id',
}

local function help_overview(session)
  out(bold("aep REPL") .. ": Lua 5.4 with aep's library loaded.")
  for _, g in ipairs(GLOBALS) do out(string.format("  %-34s %s", g[1], g[2])) end
  local names = {}
  for k in pairs(getmetatable(session.aep) and child_names("aep") or {}) do names[#names + 1] = k end
  table.sort(names)
  out(bold("modules") .. " (aep.NAME): " .. table.concat(names, " "))
  if session.target_text then out(bold("client") .. ": " .. session.target_text) end
  out("A dataset is named as `aep stream -d` takes it: its id, its name or a run-manifest variable")
  out("(\"DATASET_ID_PROFILE\" once `aep run realtime-import` has run). data/... and mappings/... are the")
  out("built-in samples and mappings when no such file is in the current directory.")
  out("Examples:")
  for _, ex in ipairs(M.EXAMPLES) do out("  " .. ex) end
  out("Tab completes globals and fields; Ctrl-C cancels the line or a running call; Ctrl-D leaves.")
end

local function help_module(t, name)
  local keys = {}
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  out(bold(name) .. (#keys == 0 and ": no functions" or ":"))
  for _, k in ipairs(keys) do
    local sig = M.describe(t[k], name:gsub("^aep%.", "") .. "." .. k)
    out("  " .. sig)
  end
  local subs = {}
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "table" and getmetatable(v) and getmetatable(v).namespace then subs[#subs + 1] = k end
  end
  if #subs > 0 then
    table.sort(subs)
    out("  modules: " .. table.concat(subs, " "))
  end
end

local function lookup_path(env, path)
  local v = env
  for part in path:gmatch("[^%.:]+") do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  return v
end

-- help([f | table | "name"]): what is available; a function's signature and description; a
-- module's functions
function M.help(session, x)
  if x == nil then return help_overview(session) end
  local name
  if type(x) == "string" then
    name = x
    x = lookup_path(session.env, name)
    if x == nil then out("help: nothing named " .. name); return end
  end
  if type(x) == "function" then
    local sig, rest, where = M.describe(x, name)
    out(bold(sig))
    for _, l in ipairs(rest) do out("  " .. l) end
    out("  (" .. where .. ")")
  elseif type(x) == "table" then
    local mt = getmetatable(x)
    if mt and mt.namespace then
      help_module(x, mt.namespace)
    else
      help_module(x, name or module_name_of(x) or "table")
    end
  else
    out("help: " .. type(x) .. " " .. tostring(x))
  end
end

-- ---------------------------------------------------------------------------------------------
-- HTTP with a spinner and Ctrl-C

-- progress_http(http) -> a module like aep.http whose request(t) shows, on a terminal, a spinner
-- with the method and URL once the call has taken half a second. Ctrl-C aborts the transfer.
function M.progress_http(http)
  local wrapped = setmetatable({}, { __index = http })
  function wrapped.request(t)
    if not term.isatty(2) then return http.request(t) end
    local pool <close> = http.pool { max_in_flight = 1, timeout = t.timeout, connect_timeout = t.connect_timeout,
                                     cainfo = t.cainfo, insecure = t.insecure }
    local url = tostring(t.url):gsub("%?.*$", "")
    local progress <close> = term.progress { label = (t.method or "GET") .. " " .. url, delay = 0.5, interval = 0.2 }
    pool:submit(t, 1)
    local ok, c = pcall(function()
      while true do
        local c = pool:wait(0.1)[1]
        if c then return c end
        progress:update(nil, "(Ctrl-C cancels)")
      end
    end)
    progress:finish()
    if not ok then
      -- Ctrl-C raises inside the loop: say so without the loop's file and line
      if is_interrupt(c) then error("interrupted", 0) end
      error(c, 0)
    end
    if c.response then return c.response end
    return nil, c.error, c.code
  end
  return wrapped
end

-- ---------------------------------------------------------------------------------------------
-- Mappings, records, try

local Mapping = {}
Mapping.__index = Mapping
Mapping.__call = function(self, record, ctx) return self.fn(record, ctx) end
Mapping.__tostring = function(self) return "mapping " .. self.path .. " (loaded " .. self.loaded_at .. ")" end
Mapping.__name = "aep.Mapping"

local function load_mapping(path)
  local fn, err = require("aep.stream.mapping").load(path)
  if not fn then error(err, 0) end
  return setmetatable({ path = path, fn = fn, loaded_at = os.date("%H:%M:%S") }, Mapping)
end

local function is_path(s)
  return type(s) == "string" and (s:match("%.lua$") or s:find("/", 1, true)) ~= nil
end

-- Forget the schemas try fetched for a dataset, under whichever name try was given it.
local function forget_dataset(session, dataset_id)
  for ref, t in pairs(session.targets) do
    if t.dataset_id == dataset_id then session.targets[ref] = nil end
  end
  return "the schema of dataset " .. tostring(dataset_id) .. " will be fetched again on the next try"
end

-- reload(path | module | dataset) -> mapping | module: a mapping file or a module loaded again;
-- for a dataset (an id, a name or a run-manifest variable), its schema is fetched again on the
-- next try
function M.reload(session, what)
  if type(what) == "table" and getmetatable(what) == Mapping then what = what.path end
  if type(what) ~= "string" then error("reload: give a mapping file (\"mappings/x.lua\"), a module name or a dataset", 0) end
  local seen = session.targets[what]
  if seen and seen.dataset_id then return forget_dataset(session, seen.dataset_id) end
  if seen then
    session.targets[what] = nil
    return "the schema of " .. what .. " will be read again on the next try"
  end
  if is_path(what) then
    local m = load_mapping(what)
    session.mappings[what] = m
    return m
  end
  local previous = package.loaded[what]
  package.loaded[what] = nil
  local ok, mod = pcall(require, what)
  if not ok then
    package.loaded[what] = previous
    if not not_found(mod, what) then error(mod, 0) end
    -- not a module: a dataset by any of its names, when there is a Platform to ask
    local has_client, c = pcall(session.client)
    local found, ds = false, nil
    if has_client then found, ds = pcall(require("aep.stream.target").find_dataset, c, what, nil, session.cfg) end
    if found then return forget_dataset(session, ds.id) end
    local why = type(ds) == "table" and ds.message or (ds and tostring(ds)) or "no Platform configured to look up a dataset"
    error("reload: '" .. what .. "' is neither a mapping file, a module nor a dataset (" .. why .. ")", 0)
  end
  local child = what:match("^aep%.([%w_]+)$")
  if child then rawset(session.aep, child, mod) end
  return mod
end

local function mapping_of(session, m)
  if type(m) == "function" then return m end
  if type(m) == "table" and getmetatable(m) == Mapping then return m end
  if type(m) == "string" then
    local cached = session.mappings[m]
    if not cached then
      cached = load_mapping(m)
      session.mappings[m] = cached
    end
    return cached
  end
  error("try: the mapping must be a function, a file name or what reload returned (got " .. type(m) .. ")", 0)
end

-- records(path [, n]) -> array of the first n (default all) records of a file
function M.records(path, n)
  local readers = require "aep.stream.readers"
  local r, err = readers.open(path, { delimiter = "auto" }) -- a CSV delimiter as `aep stream` detects it
  if not r then error(err, 2) end
  local list = {}
  while not n or #list < n do
    local ok, value = r:next()
    if ok == nil then
      if value then r:close(); error(path .. ": " .. tostring(value), 2) end
      break
    end
    if not ok then r:close(); error(string.format("%s: record %d: %s", path, #list + 1, tostring(value)), 2) end
    list[#list + 1] = value
  end
  r:close()
  return list
end

-- try(mapping, record [, dataset]) -> result (printed as the report; .ok, .entity, .violations)
function M.try(session, mapping, record, dataset)
  local offline = require "aep.validate"
  -- a Data Prep mapping set (a .json file, or the set as a table) compiles against the target's schema
  local is_set = (type(mapping) == "string" and mapping:match("%.json$")) or
    (type(mapping) == "table" and getmetatable(mapping) == nil and type(mapping.mappings) == "table")
  local map = not is_set and mapping_of(session, mapping) or nil
  if type(record) == "string" then
    local json = require "aep.json"
    local v, err = json.decode(record)
    if v == nil then error("try: the record is not JSON: " .. tostring(err), 0) end
    record = v
  end
  if type(record) ~= "table" then error("try: the record must be a table or JSON text (got " .. type(record) .. ")", 0) end
  dataset = dataset or session.dataset
  if dataset == nil then
    error("try: which dataset? give its id, its name or a run-manifest variable: " ..
      "try(mapping, record, \"DATASET_ID_PROFILE\") (it is remembered for the next try)", 0)
  end
  local target = session.targets[dataset]
  if not target then
    if type(dataset) == "string" and dataset:match("%.json$") then
      local t, err = offline.from_file(dataset)
      if not t then error(err, 0) end
      target = t
    else
      target = offline.from_dataset(session.client(), dataset)
    end
    session.targets[dataset] = target
  end
  session.dataset = dataset
  if is_set then
    local mapping_set = require "aep.stream.mapping_set"
    local set, name = mapping, "the mapping set"
    if type(mapping) == "string" then
      set, name = mapping_set.read(mapping)
      if not set then error("try: " .. name, 0) end
      name = mapping
    end
    local err
    map, err = mapping_set.map_function(mapping_set.retarget(set, target.tenant, target.schema_id), target.resolved, name)
    if not map then error("try: " .. err, 0) end
  end
  return offline.try(target, map, record)
end

-- ---------------------------------------------------------------------------------------------
-- setup

local function describe_target(cfg)
  local ok, gateway = pcall(cfg.gateway, cfg)
  if not ok or not gateway then return nil end
  return string.format("%s, org %s, sandbox %s (authenticates on first use)", gateway,
    tostring(cfg:get("IMS_ORG")), tostring(cfg:get("SANDBOX_NAME")))
end

-- session.setup(opts) -> env, banner lines
-- opts: the flags of `aep repl` (env, verbose, quiet and the configuration flags)
function M.setup(opts)
  opts = opts or {}
  local log = require "aep.log"
  local config = require "aep.config"
  if opts.verbose then log.set_verbose(true) end
  local cfg = config.load_default { flags = opts }
  local env = _G
  local session = { env = env, cfg = cfg, mappings = {}, targets = {} }
  local client
  function session.client()
    if not client then
      cfg:check()
      client = require("aep.platform").new(cfg, { http = M.progress_http(require "aep.http") })
      require("aep.repl.client").attach(client) -- client:runs, :batches, :failed_records, ...
    end
    return client
  end
  session.aep = namespace("aep")
  session.target_text = describe_target(cfg)
  env.aep = session.aep
  env.cfg = cfg
  env.json = require "aep.json"
  if cfg:has_credentials() then
    local ok, c = pcall(session.client)
    if ok then env.client = c end
  end
  -- help([f | module | "name"]): what is available; a function's signature and description;
  -- a module's functions
  env.help = function(x) return M.help(session, x) end
  -- reload(path | module | dataset) -> mapping | module: a mapping file (or a module) loaded
  -- again; reload(DATASET_ID) makes try fetch that dataset's schema again
  env.reload = function(what) return M.reload(session, what) end
  -- records(path [, n]) -> the first n (default all) records of a JSON Lines, JSON or CSV file
  env.records = function(path, n) return M.records(path, n) end
  -- try(mapping, record [, dataset]) -> report: the record mapped and validated offline against
  -- the dataset's schema (fetched once); dataset: an id, a name, a run-manifest variable
  -- ("DATASET_ID_PROFILE") or a schema file (.json)
  env.try = function(mapping, record, dataset) return M.try(session, mapping, record, dataset) end
  local banner = {}
  if session.target_text then
    banner[#banner + 1] = "client: " .. session.target_text
  else
    banner[#banner + 1] = "client: nothing configured (aep repl --env FILE, or start `aep emulator`); try works with a schema file"
  end
  return env, banner
end

return M
