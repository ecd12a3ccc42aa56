-- aep.stream.edge_target: `aep stream --to edge --datastream ID`: records go to the Edge Network
-- Server API as events (help/server-api/non-interactive-data-collection.md) instead of a
-- streaming inlet. The target has the same fields as aep.stream.target's, plus the hooks the
-- sender calls for this API:
--
--   local t = edge_target.resolve(opts)
--   t.url       POST {edge}/ee/v2/collect?dataStreamId=ID: several events a request, answered
--               202 {requestId} (the events are then processed asynchronously)
--   t.encoder   entity JSON text -> '{"xdm":...}' (one event)
--   t.frame     batch -> '{"events":[...]}' (the request body)
--   t.on_status sender hook for the Edge Network's own answers (400 EXEG-0003 unknown
--               datastream: fatal; 422 EXEG-0104: the events it names are rejected with its
--               report, the others sent again)
--
-- The Edge Network is `server.adobedc.net` for authenticated Server API calls
-- (help/server-api/authentication.md): every request carries `Authorization: Bearer TOKEN`,
-- `x-api-key` and `x-gw-ims-org-id`. Against a loopback gateway (the emulator) the Edge Network is
-- the gateway itself; --edge-url names another one.
local cjson_safe = require "cjson.safe"
local batcher = require "aep.stream.batcher"

local M = {}

M.EDGE_URL = "https://server.adobedc.net"

function M.encoder(entity_json)
  return '{"xdm":' .. entity_json .. "}"
end

function M.frame(b, first, last)
  return '{"events":[' .. table.concat(b.msgs, ",", first or 1, last or b.n) .. "]}"
end

local function problem_text(status, doc)
  local parts = { string.format("HTTP %d", status) }
  if type(doc) == "table" then
    local code = type(doc.type) == "string" and doc.type:match("([^/]+)$")
    if code then parts[#parts + 1] = code end
    local msg = doc.title
    if doc.detail then msg = (msg and (msg .. ": ") or "") .. tostring(doc.detail) end
    if msg then parts[#parts + 1] = msg end
  end
  return table.concat(parts, " ")
end
M.problem_text = problem_text

-- sender hook: true when the answer was handled here
function M.on_status(sender, b, resp)
  local status = resp.status
  if status ~= 400 and status ~= 422 then return false end
  local doc = cjson_safe.decode(resp.body or "")
  local text = problem_text(status, doc)
  if status == 400 then
    -- an unknown datastream refuses every request alike: stop, and say so once
    sender:_settle_all(b, status, text, "failed")
    sender:_fatal(text)
    return true
  end
  -- 422: the report lists the problems; "Event at index N ..." names one event
  local errs = type(doc) == "table" and type(doc.report) == "table" and doc.report.errors
  local named, others = {}, {}
  if type(errs) == "table" then
    for _, e in ipairs(errs) do
      local idx = tonumber(tostring(e):match("^Event at index (%d+)"))
      if idx and idx + 1 <= b.n then
        named[idx + 1] = (named[idx + 1] and (named[idx + 1] .. "; ") or "") .. tostring(e)
      else
        others[#others + 1] = tostring(e)
      end
    end
  end
  if next(named) == nil or #others > 0 then
    local why = #others > 0 and (text .. " (" .. table.concat(others, "; ") .. ")") or text
    sender:_settle_all(b, status, why, "rejected")
    return true
  end
  -- the request was refused as a whole: reject the named events, send the rest again
  local again = {}
  for i = 1, b.n do
    if named[i] then
      sender.on_reject(b, i, status, text .. " (" .. named[i] .. ")", "rejected")
    else
      again[#again + 1] = i
    end
  end
  if #again > 0 then
    local part = sender:_spawn(b, batcher.pick(b, again))
    sender:_requeue_front(part)
  end
  sender.ledger:part_done(b.span)
  return true
end

local function edge_base(cfg, given, helpers)
  if given and given ~= "" then return (given:gsub("/+$", "")) end
  local g = cfg and cfg:gateway()
  if g and helpers.is_loopback(g) then return (g:gsub("/+$", "")) end
  return M.EDGE_URL
end

-- The datastream's event dataset, when the Edge Network is the emulator (its admin endpoint);
-- Adobe has no API for it here: the dataset is then the one given with --dataset, if any.
local function datastream_dataset(c, base, id, helpers)
  if not helpers.is_loopback(base) then return nil end
  local ok, resp = pcall(c.request, c, { url = base .. "/emulator/datastreams/" .. require("aep.platform").enc(id),
                                          auth = false, platform = false })
  if ok and type(resp) == "table" and type(resp.json) == "table" then return resp.json end
  -- not found (or not readable): the Edge Network's own answer to the first request says why
  return nil
end

-- edge_target.resolve(o) -> target | raises
-- o: cfg, datastream (id or a run manifest variable), dataset (optional), edge_url, manifest,
-- run_name, client (tests), helpers (aep.stream.target, for is_loopback and default_manifest:
-- given by the caller, so that this module stays out of the command modules' require graph)
function M.resolve(o)
  local cfg = o.cfg
  local c = o.client or require("aep.platform").new(cfg)
  local id = o.datastream
  if id:match("^[A-Z][A-Z0-9_]+$") then
    local mpath = o.manifest or o.helpers.default_manifest(cfg, o.run_name)
    local m = mpath and require("aep.run.manifest").load(mpath)
    local v = m and m.existed and m:get(id)
    if type(v) == "string" and v ~= "" then id = v end
  end
  local base = edge_base(cfg, o.edge_url, o.helpers)
  local t = { created = {}, datastream_id = id, client = c }
  local ds = datastream_dataset(c, base, id, o.helpers)
  t.dataset_id = o.dataset or (ds and ds.eventDataset)
  t.inlet_url = base .. "/ee/v2/collect"
  t.url = t.inlet_url .. "?dataStreamId=" .. require("aep.platform").enc(id)
  t.is_local = o.helpers.is_loopback(base)
  t.encoder, t.frame, t.on_status = M.encoder, M.frame, M.on_status
  t.headers = { ["Content-Type"] = "application/json",
                ["x-api-key"] = cfg and cfg:get("API_KEY"), ["x-gw-ims-org-id"] = cfg and cfg:get("IMS_ORG") }
  t.auth = c:auth()
  return t
end

return M
