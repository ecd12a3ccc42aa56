-- aep.dataprep: Adobe Experience Platform's Data Prep, run locally (mapping-set.md,
-- functions.md, data-handling.md). One engine shared by aep and the emulator:
--   dataprep.compile(mapping_set [, {schema = resolved XDM schema}]) -> compiled | nil, errors
--   compiled:map(record) -> entity, errors | nil     (errors: AEP's TransformErrorInfo shape)
--   dataprep.validate(mapping_set, schema) -> ok, validation_response
--   dataprep.preview(mapping_set, records [, schema]) -> {{data, errors}, ...} | nil, errors
--   dataprep.expression(src) -> fn(record) -> value | nil, message  (one expression)
-- Expressions are compiled once to Lua closures; map() only runs them.
-- A transformation error nullifies its field and the rest of the record is still mapped
-- (troubleshooting-guide.md "How are transformation errors resolved?"); whether the record is
-- then valid XDM is the validator's call (aep.xdm), as in AEP.

local compile = require "aep.dataprep.compile"
local paths = require "aep.dataprep.paths"
local convert = require "aep.dataprep.convert"
local values = require "aep.dataprep.values"
local functions = require "aep.dataprep.functions"
local json = require "aep.json"
local codegen = require "aep.dataprep.codegen"
local catalog = require "aep.dataprep.catalog"

local M = {}

-- sourceType words AEP uses: the documented ones and those of stored (older) mapping sets
local SOURCE_TYPES = {
  ATTRIBUTE = "ATTRIBUTE", ["text/x.schema-path"] = "ATTRIBUTE",
  EXPRESSION = "EXPRESSION", ["text/x.aep-xl"] = "EXPRESSION",
  STATIC = "STATIC", CONSTANT = "STATIC",
}

-- a mapping's fields, whichever spelling the mapping set uses
local function fields_of(m)
  local st = m.sourceType
  if st == nil or st == json.null then st = "ATTRIBUTE" end
  local source = m.source
  if source == nil or source == json.null then source = m.sourceAttribute end
  local dest = m.destination
  if dest == nil or dest == json.null then dest = m.destinationXdmPath end
  return st, source, dest
end

local function error_info(m, message)
  local st, source, dest = fields_of(m)
  return { sourceType = type(st) == "string" and st or nil, source = type(source) == "string" and source or nil,
    destination = type(dest) == "string" and dest or nil, exception = message }
end

-- the schema node at a destination path (xed-full: properties / items), or nil
local function schema_node(schema, steps)
  local node = schema
  for _, s in ipairs(steps) do
    if type(node) ~= "table" then return nil end
    if s.key then
      local props = node.properties
      local child = type(props) == "table" and props[s.key] or nil
      -- a map (identityMap, tenant maps): every key has the additionalProperties schema
      if child == nil and type(node.additionalProperties) == "table" then child = node.additionalProperties end
      node = child
    else
      node = node.items
    end
  end
  return node
end
M.schema_node = schema_node

-- one mapping -> {run = function(record, out), source, destination, kind (result kind)} | nil, message
local function build_mapping(m, schema)
  if type(m) ~= "table" then return nil, "a mapping must be an object" end
  local st, source, dest = fields_of(m)
  local kind = SOURCE_TYPES[st]
  if not kind then
    return nil, ("unknown sourceType '%s' (use ATTRIBUTE, EXPRESSION or STATIC)"):format(tostring(st))
  end
  if type(dest) ~= "string" then return nil, "the mapping has no destination" end
  local dsteps, derr = paths.parse(dest)
  if not dsteps then return nil, "destination: " .. derr end
  local node = schema and schema_node(schema, dsteps)
  local dwild = paths.wildcards(dsteps)
  local assign, to = paths.setter(dsteps), convert.converter(node)
  local result_kind

  if kind == "STATIC" then
    if source == nil or source == json.null then return nil, "the mapping has no source" end
    local value = source
    result_kind = type(value) == "number" and (math.type(value) == "integer" and "integer" or "number")
      or (type(value) == "boolean" and "boolean" or "string")
    return { kind = kind, dsteps = dsteps, node = node, result_kind = result_kind, value = value, conv = to,
      run = function(_, out) assign(out, to(value)) end }
  end
  if type(source) ~= "string" then return nil, "the mapping has no source" end

  local produce -- record -> value
  local src_keys -- an ATTRIBUTE source made only of names
  if kind == "ATTRIBUTE" then
    local ssteps, serr = paths.parse(source)
    if not ssteps then return nil, "source: " .. serr end
    if paths.wildcards(ssteps) == 0 then
      local reader
      local simple = true
      for _, s in ipairs(ssteps) do if not s.key then simple = false end end
      if simple then
        local keys = {}
        for i, s in ipairs(ssteps) do keys[i] = s.key end
        reader = compile.field_reader(keys)
        src_keys = keys
      else
        reader = function(r)
          local v
          paths.collect(r, ssteps, function(x) v = x end)
          return compile.read(v)
        end
      end
      produce = reader
    else
      local collect = paths.collect
      return { kind = kind, dsteps = dsteps, node = node, run = function(r, out)
        local got = {}
        collect(r, ssteps, function(v, idx)
          got[#got + 1] = { compile.read(v), idx and { table.unpack(idx) } }
        end)
        if dwild > 0 then
          for _, g in ipairs(got) do
            if g[1] ~= nil then assign(out, to(g[1]), g[2]) end
          end
        else -- many values into one field: they make an array
          local arr = json.array({})
          for i, g in ipairs(got) do arr[i] = g[1] == nil and json.null or g[1] end
          if #arr > 0 then assign(out, to(arr)) end
        end
      end }
    end
  else
    local fn, err, tree = compile.expression(source)
    if not fn then return nil, err end
    produce = fn
    if tree.k == "call" then
      local def = functions.lookup(tree.name)
      result_kind = def and def.returns
    elseif tree.k == "lit" then
      result_kind = type(tree.v) == "string" and "string" or (type(tree.v) == "boolean" and "boolean")
        or (type(tree.v) == "number" and "number") or "null"
    end
  end

  local run
  if dwild > 0 then
    run = function(r, out) -- an array result spreads over the destination's [*]
      local v = produce(r)
      if v == nil then return end
      if values.is_array(v) then
        for i = 1, #v do
          local x = v[i]
          if x ~= json.null then assign(out, to(x), { i }) end
        end
      else
        assign(out, to(v), { 1 })
      end
    end
  elseif #dsteps == 1 and dsteps[1].key then
    local key = dsteps[1].key
    run = function(r, out)
      local v = produce(r)
      if v ~= nil then out[key] = to(v) end
    end
  else
    run = function(r, out)
      local v = produce(r)
      if v ~= nil then assign(out, to(v)) end
    end
  end
  return { kind = kind, dsteps = dsteps, node = node, result_kind = result_kind, run = run, conv = to,
    produce = produce, src_keys = src_keys, dwild = dwild }
end

local Compiled = {}
Compiled.__index = Compiled

-- dataprep.compile(mapping_set [, opts]) -> compiled | nil, errors
-- errors: list of {sourceType, source, destination, exception}
function M.compile(set, opts)
  opts = opts or {}
  if type(set) ~= "table" then return nil, { { exception = "the mapping set must be a JSON object" } } end
  local list = set.mappings
  if type(list) ~= "table" then return nil, { { exception = "the mapping set has no mappings array" } } end
  local built, errors = {}, {}
  for i, m in ipairs(list) do
    local b, err = build_mapping(m, opts.schema)
    if b then
      b.info = error_info(m)
      built[#built + 1] = b
    else
      errors[#errors + 1] = error_info(type(m) == "table" and m or {}, err)
      errors[#errors].index = i - 1
    end
  end
  if #errors > 0 then return nil, errors end
  local runs = {}
  for i, b in ipairs(built) do runs[i] = b.run end
  return setmetatable({ mappings = built, runs = runs, n = #built, all = codegen.generate(built) }, Compiled)
end

local pcall = pcall
local error_message = values.error_message

-- compiled:map(record) -> entity, errors | nil
-- Each mapping runs on its own: one that fails leaves its field out and adds an error. Mappings
-- are pure, so a record is first mapped in one protected call of the generated function (the
-- common case: no transformation error) and, only when something fails, mapped again mapping by
-- mapping to find which fields fail.
function Compiled:map(record)
  local runs, n = self.runs, self.n
  if type(record) ~= "table" then record = {} end
  local out = {}
  if pcall(self.all, record, out) then return out, nil end
  out = {}
  local errors = {}
  for i = 1, n do
    local ok, err = pcall(runs[i], record, out)
    if not ok then
      local info = self.mappings[i].info
      errors[#errors + 1] = { sourceType = info.sourceType, source = info.source, destination = info.destination,
        exception = error_message(err) }
    end
  end
  return out, errors[1] and errors or nil
end

-- dataprep.preview(mapping_set, records [, schema]) -> list | nil, errors
-- as POST /mappingSets/preview answers (api/mapping-set.md): one {data, errors} per record,
-- errors json.null when the record mapped cleanly
function M.preview(set, records, schema)
  local c, errors = M.compile(set, { schema = schema })
  if not c then return nil, errors end
  local out = json.array({})
  for i, record in ipairs(records) do
    local entity, errs = c:map(record)
    out[i] = { data = entity, errors = errs and json.array(errs) or json.null }
  end
  return out
end

-- dataprep.expression(src) -> fn(record) -> value | nil, message
function M.expression(src)
  local fn, err = compile.expression(src)
  if not fn then return nil, err end
  return function(record)
    local ok, v = pcall(fn, record or {})
    if ok then return v end
    return nil, error_message(v)
  end
end

-- dataprep.validate(mapping_set, schema) -> ok, {validationResponse = {{status, errors}, ...}}
-- as POST /mappingSets/validate answers: one entry per mapping, in order.
function M.validate(set, schema)
  local responses, all_ok = {}, true
  local list = type(set) == "table" and set.mappings
  if type(list) ~= "table" then
    return false, { validationResponse = { { status = "FAILED", errors = { { exception = "the mapping set has no mappings array" } } } } }
  end
  for i, m in ipairs(list) do
    local b, err = build_mapping(m, schema)
    local problem = err
    if b and schema then
      if not b.node then
        problem = ("destination '%s' is not a field of the target schema"):format(paths.text(b.dsteps))
      elseif b.kind == "STATIC" then
        local ok, cerr = pcall(convert.to, b.value, b.node)
        if not ok then problem = "type mismatch: " .. error_message(cerr) end
      elseif b.result_kind and not convert.compatible(b.result_kind, b.node) then
        problem = ("type mismatch: the expression gives %s, the destination '%s' is %s"):format(
          b.result_kind, paths.text(b.dsteps), convert.kind(b.node))
      end
    end
    if problem then
      all_ok = false
      responses[i] = { status = "FAILED", errors = { error_info(type(m) == "table" and m or {}, problem) } }
    else
      responses[i] = { status = "SUCCESS", errors = json.null }
    end
  end
  return all_ok, { validationResponse = json.array(responses) }
end

M.functions = functions.list

-- what GET /languages/el/functions and /languages/el/operators list (aep.dataprep.catalog)
M.function_catalog, M.operator_catalog = catalog.functions, catalog.operators

return M
