-- aep.stream.mapping: load a record -> XDM mapping for `aep stream`.
--
-- A mapping is a plain Lua file returning `function(record, ctx) -> entity | nil` (or a table with
-- a `map` function of that shape). It returns the XDM entity (a table, or the JSON text of one
-- object, which is decoded to check it before it is framed), nil to skip the record (counted as
-- skipped), or raises an error (the record is rejected with that message).
-- ctx is one table reused for every record: ctx.position (input position, 1-based), ctx.line
-- (line number in the input), ctx.input (path), ctx.dataset_id, ctx.schema_id, ctx.origin (the
-- first input's position when replaying a reject file). Copy what you keep.
-- The file runs in its own environment (globals it sets stay its own; it can require modules).
-- Two guards keep one record's mapping from taking the run down with it:
--   * os.exit is replaced: calling it raises a mapping.exit_error, which stops the run with exit
--     status 1 and a report naming the mapping and the record (a silent exit would lose the
--     accounting of every record in flight);
--   * each call has a time budget (opts.timeout_ms, default M.TIMEOUT_MS; 0 = none), enforced by
--     a Lua count hook: a call that runs longer raises "mapping exceeded N ms" and only that
--     record is rejected. The hook sees Lua code only (a C function that never returns is not
--     stopped), and not code in coroutines the mapping starts.
local cjson_safe = require "cjson.safe"
local encode = require("cjson").encode
local json_encode = require("aep.json").encode
local monotonic = require("aep.host").monotonic
local byte, find = string.byte, string.find

local M = {}

M.TIMEOUT_MS = 1000
-- Instructions between two looks at the clock: rare enough to cost nothing measurable, often
-- enough that a budget is overshot by well under a millisecond.
local HOOK_COUNT = 10000

local sethook, gethook = debug.sethook, debug.gethook

local ExitError = {}
ExitError.__index = ExitError
ExitError.__tostring = function(e)
  return "the mapping called os.exit(" .. tostring(e.code) .. ")"
end

-- mapping.is_exit(err) -> true for the error a mapping's os.exit raises
function M.is_exit(err) return getmetatable(err) == ExitError end

local TimeoutError = {}
TimeoutError.__index = TimeoutError
TimeoutError.__tostring = function(e) return "mapping exceeded " .. e.ms .. " ms" end

-- The mapping's own `os`: the real one but for exit.
local function guarded_os()
  local g = setmetatable({}, { __index = os })
  g.exit = function(code) error(setmetatable({ code = code == nil and true or code }, ExitError), 0) end
  return g
end

-- The budget hook, one for the process (every loaded mapping shares it). It stays installed
-- between calls (installing it per call cost more than the mapping of a small record); it acts
-- only while a budgeted call runs, and times a call from its first firing (at most HOOK_COUNT
-- instructions late), so a call costs no clock read.
local active       -- the running call's TimeoutError (its budget), or nil
local call, timed_call, started = 0, -1, 0

local function hook()
  if not active then return end
  if timed_call ~= call then
    timed_call, started = call, monotonic()
  elseif monotonic() - started > active.ms / 1000 then
    local e = active
    active = nil
    error(e, 0)
  end
end

-- Wrap map with the time budget.
local function with_budget(map, ms)
  if not ms or ms <= 0 then return map end
  local timeout = setmetatable({ ms = ms }, TimeoutError)
  return function(rec, ctx)
    local h = gethook()
    if h ~= hook then
      -- an external hook (Ctrl-C's, a debugger's) must not be lost: no budget this call
      if h ~= nil then return map(rec, ctx) end
      sethook(hook, "", HOOK_COUNT)
    end
    local outer, outer_call = active, call -- a mapping may call another (nested budgets)
    call = call + 1
    active = timeout
    local ok, e = pcall(map, rec, ctx)
    active = outer
    if outer then call, timed_call = outer_call, outer_call end
    if not ok then error(e, 0) end
    return e
  end
end

-- mapping.load(path [, {timeout_ms = N}]) -> map function | nil, err
function M.load(path, opts)
  opts = opts or {}
  local env = setmetatable({ os = guarded_os() }, { __index = _G })
  -- a missing mappings/NAME is the built-in mapping of that name
  local real, rerr = require("aep.file").resolve(path)
  if not real then return nil, "cannot load mapping " .. rerr end
  local chunk, err = loadfile(real, "t", env)
  if not chunk then return nil, "cannot load mapping " .. path .. ": " .. tostring(err) end
  local ok, result = pcall(chunk)
  if not ok then return nil, "mapping " .. path .. " failed while loading: " .. tostring(result) end
  local map
  if type(result) == "table" and type(result.map) == "function" then
    local t = result
    map = function(record, ctx) return t.map(record, ctx) end
  elseif type(result) ~= "function" then
    return nil, "mapping " .. path .. " must return a function(record, ctx) (it returned " .. type(result) .. ")"
  else
    map = result
  end
  local ms = opts.timeout_ms
  if ms == nil then ms = M.TIMEOUT_MS end
  return with_budget(map, ms)
end

-- Check a result given as JSON text: one JSON object, valid UTF-8, nothing around it (a string
-- holding several messages would shift AEP's per-message answers onto the wrong records).
local function check_json_text(s)
  if not utf8.len(s) then
    error("the mapping returned text that is not valid UTF-8 (return the entity as a table)", 0)
  end
  local v, err = cjson_safe.decode(s)
  if v == nil then
    error("the mapping returned text that is not JSON (" .. tostring(err) .. "); return the entity as a table", 0)
  end
  if type(v) ~= "table" or not s:find("^%s*{") then
    error("the mapping returned JSON text that is not one object; return the entity as a table", 0)
  end
  return s
end
M.check_json_text = check_json_text

-- Did cjson write a number in exponent form ("1.2345678901235e+15")? cjson (2.1.0) writes 14
-- significant digits, so every integer of 15 digits or more comes out so: one plain find of "+"
-- (a memchr: rare in JSON text) per entity catches those a mapping computed or converted
-- (tonumber) from a record that held none.
local function exponent_written(s)
  local i = find(s, "+", 2, true)
  while i do
    if byte(s, i - 1) == 101 then -- 'e'
      local b = byte(s, i - 2)
      if b and b >= 48 and b <= 57 then return true end
    end
    i = find(s, "+", i + 1, true)
  end
  return false
end

-- mapping.encoder(map) -> function(record, ctx[, marked]) -> the entity's JSON text | nil (skip)
-- The mapping and the encoding of its result, for the loops to run under one pcall; a result that
-- is neither a table, the JSON text of an object nor nil raises. marked: the record held empty
-- arrays, kept as aep.json.array({}), which aep.json writes as [] (cjson, faster, would write {}),
-- or 15 or more digits in a row (aep.stream.readers), which aep.json writes exactly. Other
-- entities are written by cjson, and again by aep.json when cjson wrote an exponent (an integer
-- the mapping made, of 15 digits or more). Not caught: a double of 15 to 17 significant digits
-- the mapping computed from numbers of 14 or fewer (0.1 + 0.2 goes as 0.3): a mapping that needs
-- those returns require("aep.json").encode(entity), JSON text sent as it is.
function M.encoder(map)
  return function(rec, ctx, marked)
    local e = map(rec, ctx)
    if e == nil then return nil end
    local te = type(e)
    if te == "table" then
      if marked then return json_encode(e) end
      local s = encode(e)
      if exponent_written(s) then return json_encode(e) end
      return s
    end
    if te == "string" then return check_json_text(e) end
    error("the mapping returned a " .. te .. " (expected the entity table, its JSON text, or nil to skip)", 0)
  end
end

-- mapping.reason(err) -> a one-line reject reason for an error a mapping raised
function M.reason(err)
  if getmetatable(err) == TimeoutError then return tostring(err) end
  if type(err) == "table" then
    local mt = getmetatable(err)
    if mt and mt.__tostring then err = tostring(err)
    elseif err.message then err = err.message
    else err = "(error object is a table)" end
  end
  err = tostring(err):gsub("\n.*$", "")
  return "mapping error: " .. err
end

return M
