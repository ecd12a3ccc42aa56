-- scripts/raw-streaming.lua — the samples' profiles streamed as raw data and mapped by AEP:
-- an HTTP API streaming connection for raw data, a Data Prep mapping set deployed from the file
-- kept beside the Lua mappings, a dataflow carrying it to the Profile dataset, and the sample
-- records sent as they are with the flow id (help/sources/tutorials/api/create/streaming/http.md).
--
-- The mapping set file (default mappings/loyalty_profile.mapping-set.json, or --set
-- PROFILE_MAPPING_SET=FILE) is written for the tenant exchangeinternal: its _exchangeinternal
-- destinations are moved under this org's tenant and its xdmSchema set to SCHEMA_ID_PROFILE
-- before it is deployed (aep.stream.mapping_set.retarget; `aep mapping-sets deploy` does the same).
-- Needs the schemas and datasets scripts. After it: `aep stream --raw -d DATASET_ID_PROFILE -i FILE`
-- finds this dataflow by the dataset; `aep status --flow FLOW_ID_RAW_PROFILE --errors` shows what
-- AEP's mapping failed.
local wf = ...
local flows = require "aep.flows"
local streaming = require "aep.streaming_ingestion"
local json = require "aep.json"
local dataprep_api = require "aep.dataprep_api"
local mapping_set = require "aep.stream.mapping_set"

local c = wf.client
local m = wf.manifest

wf:heading("raw-streaming: a dataflow with a Data Prep mapping set, the profiles sent as raw data")

local dataset_id = wf:need("DATASET_ID_PROFILE", "datasets")
local schema_id = wf:need("SCHEMA_ID_PROFILE", "schemas")
local set_path = wf:var("PROFILE_MAPPING_SET", "mappings/loyalty_profile.mapping-set.json")

local set_name = wf:title("Loyalty Profiles Mapping Set")
local set_id = wf:ensure {
  var = "MAPPING_SET_ID_PROFILE", kind = "mappingSet", title = set_name,
  find = function()
    for _, s in ipairs(dataprep_api.list(c, { name = set_name })) do
      if s.name == set_name then return s.id end
    end
  end,
  create = function()
    local text, where = wf:read_data(set_path)
    local set = json.decode(text)
    if type(set) ~= "table" or type(set.mappings) ~= "table" then error(where .. " is not a mapping set", 0) end
    set = dataprep_api.for_file(mapping_set.retarget(set, wf:tenant(), schema_id))
    set.name = set_name
    return dataprep_api.create(c, set).id
  end,
}

local name = wf:title("Loyalty Raw Streaming")
local conn_id = wf:ensure {
  var = "RAW_CONNECTION_ID", kind = "connection", label = "connection", title = name,
  find = function()
    local found = flows.find_by_name(c, "connections", name)
    return found and found.id
  end,
  create = function()
    return flows.create_streaming_connection(c, { name = name, source_id = wf:title("LoyaltyRawIngest"), data_type = "raw" })
  end,
}
local target = wf:step("raw-streaming: read the connection's inlet", function()
  local i = flows.inlet_of(flows.get_connection(c, conn_id))
  if not i then error("connection " .. conn_id .. " has no inletUrl", 0) end
  return i
end)
local source_name = wf:title("Loyalty Raw Source")
local source_id = wf:ensure {
  var = "RAW_SOURCE_CONNECTION_ID", kind = "sourceConnection", title = source_name,
  find = function()
    local found = flows.find_by_name(c, "sourceConnections", source_name)
    return found and found.id
  end,
  create = function() return flows.create_source_connection(c, { name = source_name, base_connection_id = conn_id }) end,
}
local tname = wf:title("Loyalty Profiles Raw Target")
local target_id = wf:ensure {
  var = "RAW_TARGET_CONNECTION_ID", kind = "targetConnection", title = tname,
  find = function()
    local found = flows.find_by_name(c, "targetConnections", tname)
    return found and found.id
  end,
  create = function() return flows.create_target_connection(c, { name = tname, dataset_id = dataset_id, schema_id = schema_id }) end,
}
local fname = wf:title("Loyalty Profiles Raw Dataflow")
local flow_id = wf:ensure {
  var = "FLOW_ID_RAW_PROFILE", kind = "flow", title = fname,
  find = function()
    local found = flows.find_by_name(c, "flows", fname)
    return found and found.id
  end,
  create = function()
    return flows.create_flow(c, { name = fname, source_id = source_id, target_id = target_id, mapping_id = set_id, mapping_version = 0 })
  end,
}
m:set("RAW_INLET_URL", target.inlet_url)
wf:save()

-- http.md documents raw data one record per request (no batch form)
local path = wf.options.profiles or "data/AEP_loyalty_profiles.json"
return wf:step("raw-streaming: " .. path .. " as raw data -> PROFILE dataset", function()
  local records = wf:read_records(path)
  local accepted, rejected = 0, 0
  for i, rec in ipairs(records) do
    local ok, err = pcall(streaming.send, c, target, json.encode(rec), { flow_id = flow_id, idempotent = true })
    if ok then
      accepted = accepted + 1
    else
      rejected = rejected + 1
      wf:line("rejected", "profile #" .. i, tostring(err))
    end
  end
  wf:line("ok", "streamed", string.format("%d raw profiles: %d accepted, %d rejected (mapped by AEP with mapping set %s)",
    #records, accepted, rejected, set_id))
  if rejected > 0 then wf:incomplete(rejected .. " raw profile records rejected") end
  m:set("STREAMED_RAW_PROFILE", accepted)
  wf:save()
  return { accepted = accepted, rejected = rejected }
end)
