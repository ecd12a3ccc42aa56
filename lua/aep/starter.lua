-- aep.starter: what `aep init DIR` writes: a starter project holding copies of the built-in
-- samples and mappings, the Data Prep mapping set, an environment template with the Postman
-- collection's variable names (secrets empty) and a README of next steps that run as shown.
local file = require "aep.file"
local json = require "aep.json"

local M = {}

-- The built-in files copied out, under the same names (so the README's commands read the same
-- inside the project as they do anywhere through the built-in copies).
M.FILES = {
  "data/AEP_loyalty_profiles.json",
  "data/AEP_loyalty_events.json",
  "mappings/loyalty_profile.lua",
  "mappings/loyalty_event.lua",
  "mappings/loyalty_profile.mapping-set.json",
}

M.ENV_FILE = "environment.postman_environment.json"

-- The collection's variables, in the order Adobe's Developer Console export lists them; the
-- values a user must fill in are empty.
local ENV_VARS = {
  { "IMS", "ims-na1.adobelogin.com" },
  { "IMS_ORG", "" },
  { "API_KEY", "" },
  { "CLIENT_SECRET", "", secret = true },
  { "TECHNICAL_ACCOUNT_ID", "" },
  { "META_SCOPE", "ent_dataservices_sdk" },
  { "PRIVATE_KEY", "", secret = true },
  { "PLATFORM_GATEWAY", "https://platform.adobe.io" },
  { "SANDBOX_NAME", "prod" },
}

function M.environment_template()
  local values = json.array()
  for _, v in ipairs(ENV_VARS) do
    values[#values + 1] = { key = v[1], value = v[2], type = v.secret and "secret" or "default", enabled = true }
  end
  return json.encode_pretty({ name = "aep starter project", values = values }) .. "\n"
end

M.README = [[
# aep starter project

Written by `aep init`. Every command below runs from this directory as shown.

## 1. Try it on a local AEP

In a second terminal, start the local emulator (it keeps its data in
~/.local/state/aep/emulator; every aep command finds it there):

    aep emulator

Then create the sample schemas, datasets and dataflows and stream the samples:

    aep run realtime-import
    aep datasets
    aep schemas

Check a mapping offline against a dataset's schema (nothing is sent), then stream:

    aep validate --input data/AEP_loyalty_profiles.json --mapping mappings/loyalty_profile.lua --dataset DATASET_ID_PROFILE
    aep stream --input data/AEP_loyalty_profiles.json --mapping mappings/loyalty_profile.lua --dataset DATASET_ID_PROFILE

`DATASET_ID_PROFILE` is a variable `aep run` recorded in its run manifest; a dataset id or
name works too.

## 2. Your own data

Copy `mappings/loyalty_profile.lua`, edit it for your columns (a mapping is a Lua
function(record, ctx) -> XDM entity, or nil to skip the record) and point `--input` at your
file (.json, .jsonl, .csv, optionally .gz). `mappings/loyalty_profile.mapping-set.json` is
the same mapping as an AEP Data Prep mapping set.

## 3. Real AEP

Fill in `environment.postman_environment.json` (or export the environment from Adobe's
Developer Console) and add `--env environment.postman_environment.json` to the commands:

    aep config --env environment.postman_environment.json

Keep the file private (chmod 600): it holds your client secret.
]]

-- starter.write(dir, {force = bool}) -> list of written paths | nil, message
function M.write(dir, opts)
  opts = opts or {}
  local host = require "aep.host"
  local plan = {}
  for _, name in ipairs(M.FILES) do
    local text = file.builtin(name)
    if not text then return nil, "the built-in " .. name .. " is missing from this aep binary" end
    plan[#plan + 1] = { name, text, tonumber("644", 8) }
  end
  plan[#plan + 1] = { M.ENV_FILE, M.environment_template(), tonumber("600", 8) }
  plan[#plan + 1] = { "README.md", M.README, tonumber("644", 8) }
  if not opts.force then
    local existing = {}
    for _, p in ipairs(plan) do
      if host.stat(dir .. "/" .. p[1]) then existing[#existing + 1] = p[1] end
    end
    if #existing > 0 then
      return nil, dir .. " already holds " .. table.concat(existing, ", ") .. " (--force overwrites them)"
    end
  end
  local written = {}
  for _, p in ipairs(plan) do
    local path = dir .. "/" .. p[1]
    local parent = path:match("^(.*)/[^/]*$")
    local at = parent:sub(1, 1) == "/" and "" or nil
    for part in parent:gmatch("[^/]+") do
      at = at and (at .. "/" .. part) or part
      if not host.stat(at) then
        local ok, err = host.mkdir(at, tonumber("755", 8))
        if not ok and not host.stat(at) then return nil, "cannot create " .. at .. ": " .. tostring(err) end
      end
    end
    local ok, err = host.write_file(path, p[2], p[3])
    if not ok then return nil, "cannot write " .. path .. ": " .. tostring(err) end
    written[#written + 1] = path
  end
  return written
end

return M
