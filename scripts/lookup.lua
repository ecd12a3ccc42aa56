-- scripts/lookup.lua — collection folders 5a/5b "Profile lookup" (R25-R26).
-- Reads a person's merged profile and their experience events from Real-Time Customer Profile
-- by one of their identities. AEP makes ingested data visible only after a delay (p95 under 15
-- minutes), so the lookup polls with a bounded wait (--wait SECONDS, default 900) instead of
-- trusting one GET, says on stderr what it waits for and for how long, and stops early, with
-- AEP's reason, when the person's records failed validation after AEP accepted them.
--
-- The person: --identity NS:VALUE (any identity namespace code, as Profile's entityIdNS takes
-- it), --person EMAIL (the Email namespace), else the PROFILE_ID variable (--set PROFILE_ID=...
-- or the --env file, as in the collection), else the first sample profile that has events.
-- --verify: check every person of the source data: the profile read back carries the source's
-- name, loyalty level and points, and as many events as the source has for them (exit status 2
-- on any mismatch).
local wf = ...
local profile = require "aep.profile"
local platform = require "aep.platform"

local c = wf.client
local tkey = "_" .. wf:tenant()
local wait_bound = tonumber(wf.options.wait) or 900

wf:heading("lookup: Real-Time Customer Profile")

local profiles = wf:mapped("profile")
local events = wf:mapped("event")

local function loyalty_of(entity)
  return type(entity) == "table" and type(entity[tkey]) == "table" and entity[tkey] or {}
end

-- Source truth: per person (loyaltyID), the profile entity and the events.
local people, order, expected_events = {}, {}, {}
for _, e in ipairs(profiles.entities) do
  local id = e and loyalty_of(e).loyaltyID
  if id and not people[id] then
    people[id] = e
    order[#order + 1] = id
  end
end
for _, e in ipairs(events.entities) do
  local id = e and loyalty_of(e).loyaltyID
  if id then
    expected_events[id] = expected_events[id] or {}
    local seen = false
    for _, x in ipairs(expected_events[id]) do if x._id == e._id then seen = true end end
    if not seen then table.insert(expected_events[id], e) end
  end
end

local function num(v)
  if type(v) == "number" then return math.tointeger(v) or v end
  return v
end

local function show_num(v)
  v = num(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  return tostring(v)
end

local person, ns = wf.options.person, "email"
if wf.options.identity then
  ns, person = wf.options.identity:match("^([^:]+):(.+)$")
end
person = person or wf:var("PROFILE_ID")
if not person then
  for _, id in ipairs(order) do
    if expected_events[id] then person = id; break end
  end
  person = person or order[1]
end
if not person then
  error(platform.error({ kind = "workflow", code = "NO_PERSON", message = "no person to look up: the profile source has no loyaltyID; use --person EMAIL or --identity NS:VALUE" }), 0)
end
-- source truth (events expected) is keyed by loyaltyID, which the schemas make an Email identity
local by_email = ns:lower() == "email"

local policy = profile.default_merge_policy(c)
-- by name (the id is in --json's output), so the progress line fits a terminal's width
local policy_text = policy and ("merge policy " .. tostring(policy.name or policy.id)) or "the sandbox's default merge policy"

local started = c.now()
local function remaining()
  return math.max(0, wait_bound - (c.now() - started))
end

-- A wait with its progress line on stderr; the seconds shown count from the lookup's start, out
-- of --wait, as the bound is shared by every wait of the lookup.
local function waiting_for(what, check)
  local progress = wf:waiting(what, wait_bound)
  local short = what:match("^(.-) in Real") or what
  local ok, v = pcall(profile.wait, c, check, { timeout = remaining(), what = short,
    on_wait = function() progress(c.now() - started) end })
  progress.finish()
  if not ok then
    if platform.is_error(v) and v.code == "TIMEOUT" then
      -- the bound the user gave, not what was left of it for this one wait
      v.message = string.format("%s not visible after %d s (--wait %d)", short, math.floor(wait_bound), math.floor(wait_bound))
    end
    error(v, 0)
  end
  return v
end

-- Wait until the profile is visible and, when we know how many events to expect, until they are.
-- early(id) -> an error to stop with instead of waiting on (records that can never arrive) | nil
local function read_person(id, want_events, id_ns, early)
  id_ns = id_ns or "email"
  local rec = waiting_for(string.format("the profile of %s in Real-Time Customer Profile (%s)", id, policy_text), function()
    local r = profile.get(c, { id = id, ns = id_ns })
    if r then return r end
    local stop = early and early(id)
    if stop then error(stop, 0) end
    return nil
  end)
  local evs = {}
  if want_events and want_events > 0 then
    evs = waiting_for(string.format("%d events of %s in Real-Time Customer Profile", want_events, id), function()
      local got = profile.events(c, { id = id, ns = id_ns })
      if #got >= want_events then return got end
      return nil
    end)
  else
    evs = profile.events(c, { id = id, ns = id_ns })
  end
  return rec, evs
end

local function ts_text(ch)
  local e = ch.entity or {}
  if type(e.timestamp) == "string" then return e.timestamp end
  local ms = tonumber(ch.timestamp)
  if ms then return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(ms / 1000)) end
  return "?"
end

-- Does the record carry the identity value anywhere (its identity field, personalEmail, an
-- identityMap entry)? The record as sent is all a failed record gives back.
local function carries(v, id, depth)
  if v == id then return true end
  if type(v) ~= "table" or depth > 12 then return false end
  for _, x in pairs(v) do
    if carries(x, id, depth + 1) then return true end
  end
  return false
end

-- A person whose records AEP failed after accepting them will never show up: say so and why,
-- from the dataset's failed records (aep.stream.follow), instead of waiting for the profile.
local failed_warned = false
local function failed_records_of(id)
  local dataset_id = wf.manifest:get("DATASET_ID_PROFILE")
  if not dataset_id then return {} end
  local ok, found = pcall(require("aep.stream.follow").failed_matching, c, dataset_id, function(rec)
    return carries(rec, id, 0)
  end)
  if not ok then
    if require("aep.errors").is_interrupt(found) then error(found, 0) end
    if not failed_warned then require("aep.log").warn("lookup: cannot read the failed records: %s", tostring(found)) end
    failed_warned = true
  end
  return ok and found or {}
end

-- Reading the failed records costs a request per batch and failed file: at the first check, then
-- at most every 10 s of the wait.
local FAILED_CHECK_EVERY = 10
local failed_checked = {}
local function failed_early(id)
  local last = failed_checked[id]
  if last and c.now() - last < FAILED_CHECK_EVERY then return nil end
  failed_checked[id] = c.now()
  local failed = failed_records_of(id)
  if #failed == 0 then return nil end
  return platform.error({ kind = "workflow", code = "FAILED_AFTER_ACCEPTANCE", message = string.format(
    "the profile record of %s was accepted but failed AEP's validation (batch %s): %s; it never reaches " ..
    "Profile: fix the record or the mapping and stream it again (aep status --dataset %s --errors shows them all)",
    id, tostring(failed[1].batch), failed[1].reason, tostring(wf.manifest:get("DATASET_ID_PROFILE"))) })
end

-- The person's profile, as read back.
local rec, evs = wf:step("lookup: profile of " .. person, function()
  local want = by_email and expected_events[person] and #expected_events[person] or 0
  return read_person(person, want, ns, failed_early)
end)
local entity = rec.entity or {}
local name = type(entity.person) == "table" and type(entity.person.name) == "table" and entity.person.name or {}
local loyalty = loyalty_of(entity)
local parts = {}
for _, k in ipairs({ "firstName", "middleName", "lastName" }) do
  if type(name[k]) == "string" and name[k] ~= "" then parts[#parts + 1] = name[k] end
end
local full_name = table.concat(parts, " ")
-- the lookup's result: shown under --quiet too
wf:result(function()
  wf:line("ok", "profile", (by_email and "" or (ns .. ":")) .. person, rec.entityId)
  wf:line("", "  name", full_name ~= "" and full_name or "(none)")
  wf:line("", "  loyalty level", tostring(loyalty.loyaltyLevel or "(none)"))
  wf:line("", "  loyalty points", loyalty.totalLoyaltyPoints ~= nil and show_num(loyalty.totalLoyaltyPoints) or "(none)")
  wf:line("", "  events", tostring(#evs))
  for _, ch in ipairs(evs) do
    local e = ch.entity or {}
    local l = loyalty_of(e)
    wf:line("", "", string.format("%s  %s  +%s points, total %s, %s  (_id %s)", ts_text(ch), tostring(e.eventType or "?"),
      show_num(l.pointsEarned or 0), show_num(l.totalPoints or "?"), tostring(l.loyaltyLevel or "?"), tostring(ch.entityId or e._id)))
  end
end)
if by_email then
  wf.manifest:set("PROFILE_ID", person)
  wf:save()
end
local result = { person = person, namespace = ns, merge_policy = policy, profile = rec, events = evs }

if not wf.options.verify then return result end

-- Every person of the source data, checked against what Profile reads back.
local checked, event_total, mismatches = 0, 0, {}
wf:step("lookup: verify every profile", function()
  for _, id in ipairs(order) do
    local src = people[id]
    local want = expected_events[id] and #expected_events[id] or 0
    local ok, got, got_events = pcall(read_person, id, want, "email", failed_early)
    if not ok then
      if platform.is_error(got) and (got.code == "TIMEOUT" or got.code == "FAILED_AFTER_ACCEPTANCE") then
        mismatches[#mismatches + 1] = id .. ": " .. got.message
        goto continue
      end
      error(got, 0)
    end
    do
      local ge = got.entity or {}
      local gl, sl = loyalty_of(ge), loyalty_of(src)
      local function check(what, a, b)
        if num(a) ~= num(b) then
          mismatches[#mismatches + 1] = string.format("%s: %s is %s, the source says %s", id, what, tostring(num(a)), tostring(num(b)))
        end
      end
      check("loyaltyLevel", gl.loyaltyLevel, sl.loyaltyLevel)
      check("totalLoyaltyPoints", gl.totalLoyaltyPoints, sl.totalLoyaltyPoints)
      local gn = type(ge.person) == "table" and type(ge.person.name) == "table" and ge.person.name or {}
      local sn = type(src.person) == "table" and type(src.person.name) == "table" and src.person.name or {}
      check("firstName", gn.firstName, sn.firstName)
      check("lastName", gn.lastName, sn.lastName)
      if #got_events ~= want then
        mismatches[#mismatches + 1] = string.format("%s: %d events read back, the source has %d", id, #got_events, want)
      end
      checked = checked + 1
      event_total = event_total + #got_events
    end
    ::continue::
  end
end)
if #mismatches == 0 then
  wf:line("ok", "verified", string.format("%d profiles and %d events read back match the source data", checked, event_total))
else
  for i, msg in ipairs(mismatches) do
    if i > 20 then wf:line("", "", string.format("... and %d more", #mismatches - 20)); break end
    wf:line("mismatch", "profile", msg)
  end
  wf:incomplete(#mismatches .. " profile mismatches")
end
result.verified, result.mismatches = checked, mismatches
return result
