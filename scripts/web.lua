-- scripts/web.lua — the Edge Network side: a datastream for the loyalty events dataset, so web
-- pages (the Web SDK) and servers (`aep stream --to edge --datastream DATASTREAM_ID`) can send
-- to it. On AEP a datastream is made in the Data Collection UI; this script makes one on the
-- local emulator (POST /emulator/datastreams), records it in the run manifest as DATASTREAM_ID,
-- and teardown removes it. Needs DATASET_ID_EVENT (`aep run datasets`).
local wf = ...
local datastreams = require "aep.datastreams"

local c = wf.client
wf:heading("web: a datastream for the Edge Network")

local event = wf:need("DATASET_ID_EVENT", "datasets")
local profile = wf.manifest:get("DATASET_ID_PROFILE")
local name = wf:title("Loyalty website")
local id = wf:ensure {
  var = "DATASTREAM_ID", kind = "datastream", title = name,
  find = function()
    local d = datastreams.find_by_name(c, name)
    return d and d.id
  end,
  create = function()
    return datastreams.create(c, { name = name, eventDataset = event, profileDataset = profile })
  end,
}
return { datastream = id }
