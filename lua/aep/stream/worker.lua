-- aep.stream.worker: what runs inside each worker thread of `aep stream --workers N` (aep.workers
-- starts the threads; aep.stream.workers feeds them). Each worker has its own Lua state holding
-- its own copy of the mapping: it decodes a chunk of records, maps and encodes each, and answers
-- one text of results in the chunk's order.
--
--   local handle = worker.init(config_json)   -- once per worker
--   local results = handle(chunk)             -- per chunk
--
-- A chunk is records packed as string.pack("<i8i8Bs4", position, line (0: none), flags, text):
-- flags FLAG_DECODED says text is the JSON of a record the main thread decoded already (a CSV
-- row), FLAG_MARKED that its entity must be written by aep.json (aep.stream.readers). Other texts
-- are the record as read (a JSON Lines line, a JSON array element), decoded here by the very
-- reader functions the in-process path uses, so a record is rejected with the same words either
-- way. Results are string.pack("<Bs4", kind, text) per record: the entity's JSON text, a reject
-- reason, a skip, or the code a mapping gave os.exit.
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local mapping = require "aep.stream.mapping"
local readers = require "aep.stream.readers"
local is_interrupt = require("aep.errors").is_interrupt

local M = {}

M.FLAG_DECODED, M.FLAG_MARKED = 1, 2
M.ENTITY, M.REJECT, M.SKIP, M.EXIT = 1, 2, 3, 4

local pack, unpack, concat = string.pack, string.unpack, table.concat

-- A reader of the format whose input is the one record at hand: its next function is the same
-- the file source runs, so decoding, checks and reasons are identical.
local function record_reader(format)
  local r = assert(readers.open("/dev/null", { format = format }))
  r.src:close()
  r.first = false -- a replay input never reaches the workers
  local held, held_line
  r.src = {
    line = function() local t, l = held, held_line; held = nil; return t, l end,
    array_item = function() local t, l = held, held_line; held = nil; return t, l end,
    lineno = function() return held_line end,
    close = function() end,
  }
  return function(text, line)
    held, held_line = text, line
    r.marked = false
    r.done = nil
    local ok, v = r.next(r)
    if ok == nil then return false, "the record could not be read" end
    return ok, v, r.marked
  end
end

local function load_map(cfg)
  if cfg.mapping_set then
    return require("aep.stream.mapping_set").map_function(cfg.mapping_set, cfg.schema, cfg.name)
  end
  return mapping.load(cfg.mapping, { timeout_ms = cfg.timeout_ms })
end

-- worker.init(config) -> handle(chunk) -> results
-- config (aep.json text): format, mapping (a Lua mapping file) and timeout_ms, or mapping_set,
-- schema (resolved) and name; ctx (input, dataset_id, schema_id, tenant)
function M.init(config)
  local cfg = assert(json.decode(config))
  local map, err = load_map(cfg)
  if not map then error(err, 0) end
  local map_encode = mapping.encoder(map)
  local read = cfg.format ~= "csv" and record_reader(cfg.format) or nil
  local decode = cjson_safe.decode
  local ctx = {}
  for k, v in pairs(cfg.ctx or {}) do ctx[k] = v end
  local ENTITY, REJECT, SKIP, EXIT = M.ENTITY, M.REJECT, M.SKIP, M.EXIT
  local DECODED, MARKED = M.FLAG_DECODED, M.FLAG_MARKED

  return function(chunk)
    local out, n, at, len = {}, 0, 1, #chunk
    while at <= len do
      local position, line, flags, text
      position, line, flags, text, at = unpack("<i8i8Bs4", chunk, at)
      if line == 0 then line = nil end
      local ok, v, marked
      if flags & DECODED ~= 0 then
        ok, v, marked = true, decode(text), flags & MARKED ~= 0
      else
        ok, v, marked = read(text, line)
      end
      n = n + 1
      if not ok then
        out[n] = pack("<Bs4", REJECT, v)
      else
        ctx.position, ctx.line = position, line
        local okm, res = pcall(map_encode, v, ctx, marked)
        if not okm then
          if is_interrupt(res) then error(res, 0) end
          if mapping.is_exit(res) then
            out[n] = pack("<Bs4", EXIT, tostring(res.code))
          else
            out[n] = pack("<Bs4", REJECT, mapping.reason(res))
          end
        elseif res == nil then
          out[n] = pack("<Bs4", SKIP, "")
        else
          -- "<Bs4" as its head and the text: the entity is copied once, by concat
          out[n] = pack("<BI4", ENTITY, #res)
          n = n + 1
          out[n] = res
        end
      end
    end
    return concat(out)
  end
end

return M
