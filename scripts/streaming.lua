-- scripts/streaming.lua — collection folders 3a/3b "Real-time import" (R4-R6, R15-R16).
-- Creates (or finds) the streaming connection, then streams the sample profiles and events
-- through their mappings: the first record of each dataset with synchronous validation (AEP
-- allows that 60 times a minute: a debugging aid, not a way to send), the rest in batch
-- requests of at most 1 MB. Every record is accounted for: accepted or rejected with AEP's reason,
-- and then (AEP validates after the answer) ingested, failed after acceptance with AEP's code and
-- message, or unknown when the wait ran out.
--
-- Default: today's path, a Flow Service HTTP API connection with one dataflow per dataset (the
-- flowId goes in every message header). --legacy-inlet: the collection's own path, the edge inlet
-- (/data/core/edge/inlet) and the two custom Profile event types.
local wf = ...
local json = require "aep.json"
local flows = require "aep.flows"
local inlet = require "aep.inlet"
local streaming = require "aep.streaming_ingestion"
local platform = require "aep.platform"
local follow = require "aep.stream.follow"
local target_mod = require "aep.stream.target"

-- the entity inside a message (for matching failed records back to the sample's positions)
local function entity_of(msg)
  local d = msg and require("cjson.safe").decode(msg)
  local e = type(d) == "table" and type(d.body) == "table" and d.body.xdmEntity
  return e and require("cjson").encode(e) or nil
end

local c = wf.client
local legacy = wf.options.legacy_inlet
local m = wf.manifest

wf:heading("streaming: " .. (legacy and "legacy edge inlet" or "Flow Service streaming connection") .. " and real-time import")

local target -- {inlet_url, inlet_id, authenticated, source_id}
local flow_ids = {}

if legacy then
  local name = wf:title("Streaming Loyalty data")
  local got
  wf:ensure {
    var = "INLET_ID", kind = "inlet", title = name,
    find = function()
      got = inlet.find_by_name(c, name)
      return got and got.inletId
    end,
    create = function()
      got = inlet.create(c, { name = name, source_id = wf:title("LoyaltyIngest") })
      return got.inletId
    end,
  }
  if not got.inletUrl then got = inlet.get(c, got.inletId) or got end
  target = { inlet_url = got.inletUrl, inlet_id = got.inletId, source_id = got.sourceId,
             authenticated = got.authenticationRequired == true }
  -- R5/R6: the custom event types the sample events use (sent with a JSON Content-Type, unlike
  -- the collection)
  for _, et in ipairs({
    { "loyaltyBalanceUpdate", "Loyalty Balance Update", "Change to the points balance for a loyalty member" },
    { "loyaltyLevelUpdate", "Loyalty Level Update", "Change to the program level for a loyalty member" },
  }) do
    wf:ensure {
      var = "EVENT_TYPE_" .. et[1], kind = "eventType", title = et[1],
      find = function()
        local found = inlet.find_event_type(c, et[1])
        return found and (found.id or et[1])
      end,
      create = function()
        local created = inlet.create_event_type(c, { id = et[1], title = et[2], description = et[3] })
        return (type(created) == "table" and created.id) or et[1]
      end,
    }
  end
else
  local name = wf:title("Loyalty Streaming")
  local conn_id = wf:ensure {
    var = "CONNECTION_ID", kind = "connection", label = "connection", title = name,
    find = function()
      local found = flows.find_by_name(c, "connections", name)
      return found and found.id
    end,
    create = function()
      return flows.create_streaming_connection(c, { name = name, source_id = wf:title("LoyaltyIngest") })
    end,
  }
  local conn = wf:step("streaming: read the connection's inlet", function()
    local got = flows.get_connection(c, conn_id)
    local i = flows.inlet_of(got)
    if not i then error("connection " .. conn_id .. " has no inletUrl", 0) end
    return i
  end)
  target = conn
  local source_name = wf:title("Loyalty Streaming Source")
  local source_id = wf:ensure {
    var = "SOURCE_CONNECTION_ID", kind = "sourceConnection", title = source_name,
    find = function()
      local found = flows.find_by_name(c, "sourceConnections", source_name)
      return found and found.id
    end,
    create = function() return flows.create_source_connection(c, { name = source_name, base_connection_id = conn_id }) end,
  }
  for _, kind in ipairs({ "PROFILE", "EVENT" }) do
    local dataset_id = wf:need("DATASET_ID_" .. kind, "datasets")
    local schema_id = wf:need("SCHEMA_ID_" .. kind, "schemas")
    local pretty = kind == "PROFILE" and "Loyalty Profiles" or "Loyalty Events"
    local tname = wf:title(pretty .. " Target")
    local target_id = wf:ensure {
      var = "TARGET_CONNECTION_ID_" .. kind, kind = "targetConnection", title = tname,
      find = function()
        local found = flows.find_by_name(c, "targetConnections", tname)
        return found and found.id
      end,
      create = function()
        return flows.create_target_connection(c, { name = tname, dataset_id = dataset_id, schema_id = schema_id })
      end,
    }
    local fname = wf:title(pretty .. " Dataflow")
    flow_ids[kind] = wf:ensure {
      var = "FLOW_ID_" .. kind, kind = "flow", title = fname,
      find = function()
        local found = flows.find_by_name(c, "flows", fname)
        return found and found.id
      end,
      create = function() return flows.create_flow(c, { name = fname, source_id = source_id, target_id = target_id }) end,
    }
  end
end

m:set("INLET_ID", target.inlet_id)
m:set("INLET_URL", target.inlet_url)
if target.source_id then m:set("INLET_SOURCE_ID", target.source_id) end
wf:save()
wf:line("ok", "inlet", target.inlet_url)

-- Stream one kind of sample data: first record synchronously validated, the rest in batches.
local function stream(kind)
  local KIND = kind:upper()
  local dataset_id = wf:need("DATASET_ID_" .. KIND, "datasets")
  local data = wf:mapped(kind)
  local label = "streamed"
  return wf:step("streaming: " .. data.mapping .. " -> " .. KIND .. " dataset", function()
    local info = streaming.dataset_info(c, dataset_id, { flow_id = flow_ids[KIND],
      source_name = legacy and target.source_id or nil })
    local wrap = streaming.envelope_encoder(info)
    local msgs, index = {}, {}
    for i, e in ipairs(data.entities) do
      if e then
        msgs[#msgs + 1] = wrap(json.encode(e))
        index[#msgs] = i
      end
    end
    local accepted, rejected = 0, {}
    local since_ms = math.floor(require("aep.host").now() * 1000)
    local tracker = follow.tracker()
    if #msgs == 0 then
      wf:line("ok", label, "no " .. kind .. " records to stream (" .. data.skipped .. " skipped by the mapping)")
      return { accepted = 0, rejected = rejected }
    end
    -- one message with synchronous validation: a schema mismatch shows here, with its report
    local ok, err = pcall(streaming.send, c, target, msgs[1], { sync_validation = true, idempotent = true,
      flow_id = flow_ids[KIND] })
    if not ok then
      if platform.is_error(err) and err.status == 400 then
        err.hint = string.format("%s record 1 (%s) failed synchronous validation; fix the mapping %s",
          kind, data.source, data.mapping)
      end
      error(err, 0)
    end
    accepted = 1
    local sync_validated = 1
    local rest = table.move(msgs, 2, #msgs, 1, {})
    local requests = 0
    for first, last in streaming.chunks(rest, { max_count = wf.options.batch_size }) do
      requests = requests + 1
      local r = streaming.send_batch(c, target, rest, { first = first, last = last, idempotent = true,
        flow_id = flow_ids[KIND] })
      accepted = accepted + #r.accepted
      for _, a in ipairs(r.accepted) do
        follow.track(tracker, index[a.index + 1], a.xaction_id, nil, rest[a.index])
      end
      for _, rj in ipairs(r.rejected) do
        local src_index = index[rj.index + 1]
        rejected[#rejected + 1] = { index = src_index, status = rj.status, message = rj.message }
      end
    end
    wf:line("ok", label, string.format("%d %s: %d accepted, %d rejected (1 validated synchronously, %d in %d batch request%s)%s",
      #msgs, data.plural or (kind .. "s"), accepted, #rejected, #rest, requests, requests == 1 and "" or "s",
      data.skipped > 0 and (", " .. data.skipped .. " skipped by the mapping") or ""))
    for i, rj in ipairs(rejected) do
      if i > 10 then
        wf:line("", "", string.format("... and %d more rejected", #rejected - 10))
        break
      end
      wf:line("rejected", kind .. " #" .. tostring(rj.index), tostring(rj.status or "") .. " " .. tostring(rj.message or ""))
    end
    if #rejected > 0 then wf:incomplete(#rejected .. " " .. kind .. " records rejected") end
    m:set("STREAMED_" .. KIND, accepted)
    wf:save()
    -- accepted is not ingested: follow what AEP validates after the answer (aep.stream.follow)
    local out = follow.run{ client = c, dataset_id = dataset_id, since_ms = since_ms, tracker = tracker,
      wait = tonumber(wf.options.wait) or (target_mod.is_loopback(target.inlet_url) and follow.WAIT_LOCAL_S or follow.WAIT_AEP_S),
      is_local = target_mod.is_loopback(target.inlet_url), entity_of = entity_of }
    local ingested = out.ingested + (out.state == "final" and sync_validated or 0)
    local unknown = out.unknown + (out.state ~= "final" and sync_validated or 0)
    wf:line(#out.failed > 0 and "failed" or (unknown > 0 and "unknown" or "ok"), "ingested",
      string.format("%d of %d accepted %s ingested, %d failed after acceptance, %d unknown%s", ingested, accepted,
        data.plural or (kind .. "s"), #out.failed, unknown,
        unknown > 0 and ("; check later: " .. follow.status_command{ dataset_id = dataset_id, since = "2h" }) or ""))
    for i, f in ipairs(out.failed) do
      if i > 10 then
        wf:line("", "", string.format("... and %d more failed after acceptance", #out.failed - 10))
        break
      end
      wf:line("failed", kind .. " #" .. tostring(f.position), f.reason)
    end
    if #out.failed > 0 then wf:incomplete(#out.failed .. " " .. kind .. " records failed AEP's validation after acceptance") end
    m:set("INGESTED_" .. KIND, ingested)
    wf:save()
    return { accepted = accepted, rejected = rejected, ingested = ingested, failed_after_acceptance = out.failed, unknown = unknown }
  end)
end

local p = stream("profile")
local e = stream("event")
return { profiles = p, events = e }
