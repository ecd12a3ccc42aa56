-- aep.run.workflow: the step runner behind `aep run` and scripts/*.lua.
--
--   local wf = workflow.new{ cfg = cfg, client = client, run_name = "aep", manifest = m, options = opts }
--   wf:run_script("realtime-import")
--
-- A script is a Lua chunk called with the workflow object: `local wf = ...`. It uses:
--   wf:title(base)                 -> base prefixed with the run name (the collection's UNIQUE_ID)
--   wf:tenant()                    -> tenant id (looked up once, kept in the manifest)
--   wf:ensure{var=, kind=, label=, title=, find=fn, create=fn}
--                                  -> id, status ("found" | "created"): find-or-create, one line
--   wf:step(label, fn)             -> fn's results; errors carry the step's name
--   wf:line(status, label, name, id) prints one aligned line; the run's summary counts these
--                                  lines by status (created, found, updated, deleted, kept)
--   wf:result(fn)                  lines printed inside fn are the result: shown under --quiet too
--   wf:waiting(what, bound)        -> on_wait(waited) for aep.poll: progress of a long wait
--   wf:need(var, script)           -> a manifest value, or an error telling which script makes it
--   wf:read_data(path) / wf:read_records(path) / wf:load_mapping(path)
--   wf.client (aep.platform), wf.cfg (aep.config), wf.manifest (aep.run.manifest), wf.options
--   wf:run_script(name)            -> runs another script in the same run
--
-- Find-or-create is what makes a second run create nothing: each step looks for its resource by
-- title (prefixed with the run name) before creating it. A create whose outcome is unknown (the
-- connection broke after sending) or that AEP turned away (429/503) is not repeated blindly: the
-- step looks again, and creates only if the resource is still absent.
local log = require "aep.log"
local json = require "aep.json"
local platform = require "aep.platform"
local schemas = require "aep.schemas"
local catalog = require "aep.catalog"
local flows = require "aep.flows"
local inlet = require "aep.inlet"

local M = {}

local WF = {}
WF.__index = WF
M.WF = WF

-- Deleting each kind of resource a workflow records (teardown).
M.DELETERS = {
  fieldgroup = function(c, id) return schemas.delete(c, "fieldgroups", id) end,
  schema = function(c, id) return schemas.delete(c, "schemas", id) end,
  descriptor = function(c, id) return schemas.delete_descriptor(c, id) end,
  dataset = function(c, id) return catalog.delete_dataset(c, id) end,
  connection = function(c, id) return flows.delete(c, "connections", id) end,
  sourceConnection = function(c, id) return flows.delete(c, "sourceConnections", id) end,
  targetConnection = function(c, id) return flows.delete(c, "targetConnections", id) end,
  flow = function(c, id) return flows.delete(c, "flows", id) end,
  inlet = function(c, id) return inlet.delete(c, id) end,
  eventType = function(c, id) return inlet.delete_event_type(c, id) end,
  mappingSet = function() return false end, -- the Data Prep API has no delete (data-prep.yaml)
  datastream = function(c, id) return require("aep.datastreams").delete(c, id) end,
}

M.KIND_LABEL = {
  fieldgroup = "field group", schema = "schema", descriptor = "descriptor", dataset = "dataset",
  connection = "connection", sourceConnection = "source connection", targetConnection = "target connection",
  flow = "dataflow", inlet = "inlet", eventType = "event type", mappingSet = "mapping set",
  datastream = "datastream",
}

-- workflow.new(o) -> wf. o: cfg, client, run_name, manifest, options (flags), root (directory
-- holding scripts/, data/, mappings/ on disk; default "."), vars ({KEY = value} from --set and
-- the --env file)
function M.new(o)
  local self = setmetatable({}, WF)
  self.cfg = o.cfg
  self.client = o.client
  self.run_name = o.run_name or "aep"
  self.manifest = o.manifest
  self.options = o.options or {}
  self.root = o.root or "."
  self.vars = o.vars or {}
  self.counts = { created = 0, found = 0, updated = 0, deleted = 0, kept = 0 }
  self.lines = {}
  self.scripts_run = {}
  self.steps = {} -- {script =, status = "done" | "failed"}, in the order the scripts ended
  self.current = nil
  self.exit_code = 0
  return self
end

-- wf:title(base) -> "<run name> <base>" (just base when the run name is empty)
function WF:title(base)
  if self.run_name == "" then return base end
  return self.run_name .. " " .. base
end

-- wf:var(name [, default]) -> a --set KEY=VALUE value, else the --env file's variable, else default
function WF:var(name, default)
  local v = self.vars[name]
  if v == nil or v == "" then return default end
  return v
end

-- wf:line(status, label, name, id): one aligned line of what a step did. The summary's counts
-- come from here, one per line printed with a counted status, so they always equal the lines
-- (scripts never count by hand; a helper's resource printed by a script is counted too).
function WF:line(status, label, name, id)
  if self.counts[status] then self.counts[status] = self.counts[status] + 1 end
  self.lines[#self.lines + 1] = { script = self.script, status = status, label = label, name = name, id = id }
  local s = string.format("%-9s %-18s %s", status, label, name or "")
  if id then s = s .. "  " .. tostring(id) end
  if self.printing_result and not self.options.json then log.print("%s", s) else log.info("%s", s) end
end

-- wf:result(fn): the lines fn prints with wf:line are the run's result (a looked-up profile):
-- shown under --quiet too, which keeps only errors and the final result
function WF:result(fn)
  local prev = self.printing_result
  self.printing_result = true
  local ok, err = pcall(fn)
  self.printing_result = prev
  if not ok then error(err, 0) end
end

-- wf:waiting(what, bound [, o]) -> on_wait(waited), for aep.poll / aep.profile.wait: a progress
-- line on stderr saying what is awaited and for how long, "waiting for WHAT, 12 s of 900 s":
-- redrawn in place on a terminal, a plain line at most every 10 s otherwise, nothing with
-- --quiet. Call on_wait.finish() when the wait ends (clears the terminal line). o: term.line's
-- options (tty, out, now, interval), for tests.
function WF:waiting(what, bound, o)
  o = o or {}
  local term = require "aep.term"
  local line = term.line({ quiet = self.options.quiet, tty = o.tty, out = o.out, now = o.now,
                           interval = o.interval, delay = 0 })
  local progress = setmetatable({}, { __call = function(_, waited)
    if not line:due() then return end
    line:draw(string.format("waiting for %s, %d s of %d s", what, math.floor(waited or 0), math.floor(bound)))
  end })
  function progress.finish() line:finish() end
  return progress
end

-- wf:heading(text): a script's first line
function WF:heading(text)
  log.info("== %s", text)
end

local function annotate(err, step)
  if platform.is_error(err) then
    err.step = err.step or step
    return err
  end
  if type(err) == "table" then return err end
  local msg = tostring(err)
  if msg == "interrupted" or msg:match("interrupted$") then return err end
  return platform.error({ kind = "script", message = msg, step = step })
end

-- wf:step(label, fn, ...) -> fn's results; an error raised inside names the step
function WF:step(label, fn, ...)
  local prev = self.current
  self.current = label
  local res = table.pack(xpcall(fn, function(e)
    if log.is_verbose() and type(e) ~= "table" then return annotate(debug.traceback(tostring(e), 2), label) end
    return annotate(e, label)
  end, ...))
  self.current = prev
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- wf:save(): write the run manifest
function WF:save()
  if self.manifest then self.manifest:save() end
end

-- wf:need(var, script) -> manifest value | raises "run `aep run <script>` first"
function WF:need(var, script)
  local v = self.manifest and self.manifest:get(var)
  if v == nil then
    error(platform.error({ kind = "workflow", code = "MISSING_PREREQUISITE",
      message = var .. " is not in the run manifest " .. (self.manifest and self.manifest.path or "") ..
        "; run `aep run " .. script .. "` first (same --run-name and --manifest)" }), 0)
  end
  return v
end

-- wf:tenant() -> the org's tenant id (cached in the manifest as TENANT_ID)
function WF:tenant()
  if self.tenant_id then return self.tenant_id end
  local t = self:step("tenant", function() return schemas.tenant_id(self.client) end)
  if self.manifest then
    if self.manifest:get("TENANT_ID") ~= t then
      self.manifest:set("TENANT_ID", t)
      self:save()
    end
  end
  self.tenant_id = t
  return t
end

local function sleep_for(self, err, attempt)
  local wait = (platform.is_error(err) and err.retry_after) or self.client:backoff(attempt)
  self.client.sleep(math.min(wait, self.client.max_retry_after))
end

local function recoverable(err)
  if not platform.is_error(err) then return false end
  if err.code == "OUTCOME_UNKNOWN" then return true end
  if err.kind == "http" and platform.RETRY_STATUS[err.status] then return true end
  return false
end

-- wf:ensure(spec) -> id, status, extra
-- spec: var (manifest variable), kind (see DELETERS), label (shown), title (name searched and
-- created), find() -> id, extra | nil, create() -> id, extra; optional after(id, status, extra)
-- (e.g. enable Profile on a found resource).
function WF:ensure(spec)
  local label = spec.label or M.KIND_LABEL[spec.kind] or spec.kind
  local step = (self.script and (self.script .. ": ") or "") .. label .. " '" .. tostring(spec.title) .. "'"
  return self:step(step, function()
    local id, extra = spec.find()
    local status = "found"
    if id == nil then
      local attempts = spec.attempts or self.client.max_attempts or 5
      for attempt = 1, attempts do
        local ok, a, b = pcall(spec.create)
        if ok then
          id, extra, status = a, b, "created"
          break
        end
        if not recoverable(a) or attempt == attempts then error(a, 0) end
        log.debug("%s: create %s (%s); looking again before any new attempt", step,
          a.code == "OUTCOME_UNKNOWN" and "outcome unknown" or "turned away", tostring(a.status or a.code))
        sleep_for(self, a, attempt)
        id, extra = spec.find()
        if id ~= nil then
          status = "created"
          break
        end
      end
    end
    if spec.after then spec.after(id, status, extra) end
    local previous = self.manifest and self.manifest:resource(spec.var)
    local created = status == "created" or (previous ~= nil and previous.id == id and previous.created == true)
    if self.manifest then
      self.manifest:record(spec.var, { kind = spec.kind, id = id, title = spec.title, created = created,
        step = self.script })
      self:save()
    end
    self:line(status, label, spec.title, id)
    return id, status, extra
  end)
end

-- ---------------------------------------------------------------------------------------------
-- Files: on disk first (relative to the working directory, then to root), else embedded in aep.

local read_disk = require("aep.file").read

local function embedded(path)
  return require("aep.host").embedded(path)
end

-- wf:read_data(path) -> contents, where ("file PATH" | "embedded PATH") | raises
function WF:read_data(path)
  local d = read_disk(path)
  if d then return d, path end
  if not path:match("^/") and self.root ~= "." then
    d = read_disk(self.root .. "/" .. path)
    if d then return d, self.root .. "/" .. path end
  end
  d = embedded((path:gsub("^%./", "")))
  if d then return d, "(built in) " .. path end
  error(platform.error({ kind = "workflow", code = "NOT_FOUND", message = "cannot read " .. path }), 0)
end

-- wf:read_records(path) -> array of records from a JSON array file (the samples' shape) or JSON Lines
function WF:read_records(path)
  local text, where = self:read_data(path)
  local doc = json.decode(text)
  if type(doc) == "table" and (doc[1] ~= nil or next(doc) == nil) then return doc, where end
  local out = {}
  local n = 0
  for line in text:gmatch("[^\n]+") do
    n = n + 1
    if line:match("%S") then
      local rec, err = json.decode(line)
      if rec == nil then
        error(platform.error({ kind = "workflow", code = "BAD_INPUT", message = where .. " line " .. n .. ": " .. tostring(err) }), 0)
      end
      out[#out + 1] = rec
    end
  end
  return out, where
end

-- wf:load_mapping(path) -> function(record, ctx) -> entity | nil
function WF:load_mapping(path)
  local text, where = self:read_data(path)
  local chunk, err = load(text, "@" .. path, "t")
  if not chunk then
    error(platform.error({ kind = "workflow", code = "BAD_MAPPING", message = "mapping " .. where .. ": " .. err }), 0)
  end
  local fn = chunk()
  if type(fn) ~= "function" then
    error(platform.error({ kind = "workflow", code = "BAD_MAPPING",
      message = "mapping " .. where .. " must return function(record, ctx)" }), 0)
  end
  return fn
end

-- The sample sources of the loyalty workflow; --profiles/--events and
-- --profile-mapping/--event-mapping replace them.
M.SOURCES = {
  profile = { data = "data/AEP_loyalty_profiles.json", mapping = "mappings/loyalty_profile.lua",
              data_opt = "profiles", mapping_opt = "profile_mapping", plural = "profiles" },
  event = { data = "data/AEP_loyalty_events.json", mapping = "mappings/loyalty_event.lua",
            data_opt = "events", mapping_opt = "event_mapping", plural = "events" },
}

-- wf:mapped(kind) -> {records =, entities = (entities[i] for records[i], false when skipped),
-- count =, skipped =, source =, mapping =} for kind "profile" | "event" (cached for the run)
function WF:mapped(kind)
  self.mapped_cache = self.mapped_cache or {}
  if self.mapped_cache[kind] then return self.mapped_cache[kind] end
  local src = M.SOURCES[kind]
  local data_path = self.options[src.data_opt] or src.data
  local mapping_path = self.options[src.mapping_opt] or src.mapping
  local records, where = self:read_records(data_path)
  local map = self:load_mapping(mapping_path)
  local ctx = { tenant = self:tenant(), kind = kind, run_name = self.run_name }
  local entities, n, skipped = {}, 0, 0
  for i, rec in ipairs(records) do
    ctx.index = i
    local ok, e = pcall(map, rec, ctx)
    if not ok then
      error(platform.error({ kind = "workflow", code = "MAPPING_ERROR",
        message = string.format("mapping %s failed on %s record %d: %s", mapping_path, where, i, tostring(e)) }), 0)
    end
    if e == nil then
      entities[i] = false
      skipped = skipped + 1
    else
      entities[i] = e
      n = n + 1
    end
  end
  local out = { records = records, entities = entities, count = n, skipped = skipped, source = where, plural = src.plural,
                mapping = mapping_path }
  self.mapped_cache[kind] = out
  return out
end

-- workflow.script_source(name [, root]) -> text, chunkname | nil, err
-- NAME (scripts/NAME.lua on disk, else built into aep) or a path to a .lua file.
function M.script_source(name, root)
  if name:find("/", 1, true) or name:match("%.lua$") then
    local d = read_disk(name)
    if d then return d, "@" .. name end
    return nil, "no workflow script " .. name
  end
  local rel = "scripts/" .. name .. ".lua"
  local d = read_disk(rel)
  if d then return d, "@" .. rel end
  if root and root ~= "." then
    d = read_disk(root .. "/" .. rel)
    if d then return d, "@" .. root .. "/" .. rel end
  end
  d = embedded(rel)
  if d then return d, "@" .. rel end
  return nil, "no workflow script '" .. name .. "' (looked for " .. rel .. " and the built-in scripts; `aep run --list` shows them)"
end

-- workflow.list_scripts() -> sorted names of the scripts found (disk and built in)
function M.list_scripts()
  local seen, names = {}, {}
  local p = io.popen("ls scripts 2>/dev/null")
  if p then
    for f in p:lines() do
      local n = f:match("^(.+)%.lua$")
      if n and not seen[n] then seen[n] = true; names[#names + 1] = n end
    end
    p:close()
  end
  for _, path in ipairs(require("aep.host").embedded_list("scripts/")) do
    local n = path:match("^scripts/(.+)%.lua$")
    if n and not n:find("/", 1, true) and not seen[n] then seen[n] = true; names[#names + 1] = n end
  end
  table.sort(names)
  return names
end

-- wf:run_script(name) -> whatever the script returns. A script runs once per run; asking again
-- returns at once (so realtime-import can call the folders' scripts in order).
function WF:run_script(name)
  if self.scripts_run[name] then return self.scripts_run[name] end
  local text, chunkname = M.script_source(name, self.root)
  if not text then error(platform.error({ kind = "workflow", code = "NO_SCRIPT", message = chunkname }), 0) end
  local env = setmetatable({}, { __index = _G })
  local chunk, err = load(text, chunkname, "t", env)
  if not chunk then error(platform.error({ kind = "workflow", code = "BAD_SCRIPT", message = err }), 0) end
  local prev = self.script
  self.script = name:match("([^/]+)%.lua$") or name
  local res = table.pack(pcall(self.step, self, self.script, chunk, self))
  self.steps[#self.steps + 1] = { script = self.script, status = res[1] and "done" or "failed" }
  self.script = prev
  if not res[1] then error(res[2], 0) end
  self.scripts_run[name] = res[2] or true
  return table.unpack(res, 2, res.n)
end

-- wf:incomplete(why): mark the run incomplete (exit status 2) without stopping it
function WF:incomplete(why)
  self.exit_code = 2
  self.incomplete_reasons = self.incomplete_reasons or {}
  self.incomplete_reasons[#self.incomplete_reasons + 1] = why
end

return M
