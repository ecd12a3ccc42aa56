-- aep.profile: Real-Time Customer Profile access (/data/core/ups/access/entities).
--
--   profile.get(c, {id = "a@b.com", ns = "email"}) -> {entityId, entity, sources, ...} | nil
--   profile.events(c, {id = "a@b.com", ns = "email"}) -> array of {entityId, timestamp, entity}
--   profile.wait(c, fn, {timeout = 900, interval = 1}) -> fn's first non-nil result
--
-- AEP makes ingested data visible only after a delay (p95 under 15 minutes), so readers poll
-- with a bounded wait (profile.wait) instead of trusting one GET.
local poll = require "aep.poll"

local M = {}

M.BASE = "/data/core/ups/access"
M.PROFILE_SCHEMA = "_xdm.context.profile"
M.EVENT_SCHEMA = "_xdm.context.experienceevent"

local function is_empty_entity(rec)
  if type(rec) ~= "table" then return true end
  local e = rec.entity
  if type(e) ~= "table" or next(e) == nil then return true end
  return false
end

-- profile.get(c, o) -> the merged profile record | nil when AEP knows no such identity yet.
-- o: id, ns (namespace code, default "email"), schema, fields (array or comma string),
-- merge_policy.
function M.get(c, o)
  local fields = o.fields
  if type(fields) == "table" then fields = table.concat(fields, ",") end
  local resp = c:get(M.BASE .. "/entities", {
    query = {
      { "schema.name", o.schema or M.PROFILE_SCHEMA },
      { "entityId", o.id },
      { "entityIdNS", o.ns or "email" },
      { "fields", fields },
      { "mergePolicyId", o.merge_policy },
    },
    allow = { [404] = true },
  })
  if resp.status == 404 then return nil end
  local doc = resp.json
  if type(doc) ~= "table" then return nil end
  if doc.entity then return (not is_empty_entity(doc)) and doc or nil end
  local keys = {}
  for k, v in pairs(doc) do if type(v) == "table" then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local rec = doc[k]
    if not is_empty_entity(rec) then
      rec.entityId = rec.entityId or k
      return rec
    end
  end
  return nil
end

local function next_path(href)
  if type(href) ~= "string" or href == "" then return nil end
  if href:match("^%a[%w+.-]*://") then return href end
  if href:sub(1, #"/data/") == "/data/" then return href end
  -- AEP's href is relative to /access and starts with /entities: keep /entities once
  if href:sub(1, 1) ~= "/" then href = "/" .. href end
  return M.BASE .. href
end

-- profile.events(c, o) -> array of events ({entityId, timestamp, entity, ...}), every page
-- o: id, ns (default "email"), fields, limit (per page, default 100), orderby (default
-- "-timestamp"), start_time, end_time (ms), max_pages (default 100)
function M.events(c, o)
  local fields = o.fields
  if type(fields) == "table" then fields = table.concat(fields, ",") end
  local out = {}
  local path = M.BASE .. "/entities"
  local query = {
    { "schema.name", M.EVENT_SCHEMA },
    { "relatedSchema.name", o.related_schema or M.PROFILE_SCHEMA },
    { "relatedEntityId", o.id },
    { "relatedEntityIdNS", o.ns or "email" },
    { "fields", fields },
    { "orderby", o.orderby or "-timestamp" },
    { "startTime", o.start_time },
    { "endTime", o.end_time },
    { "limit", o.limit or 100 },
  }
  local seen = {}
  for _ = 1, o.max_pages or 100 do
    local req = { query = query, allow = { [404] = true } }
    if path:match("^%a[%w+.-]*://") then req.url = path else req.path = path end
    local resp = c:get(path, req)
    if resp.status == 404 then break end
    local doc = resp.json
    local children = type(doc) == "table" and doc.children or {}
    for _, ch in ipairs(children) do out[#out + 1] = ch end
    local href = type(doc) == "table" and type(doc._links) == "table" and type(doc._links.next) == "table"
      and doc._links.next.href or nil
    local nxt = next_path(href)
    if not nxt or seen[nxt] or #children == 0 then break end
    seen[nxt] = true
    path, query = nxt, nil
  end
  return out
end

-- profile.wait(c, fn [, opts]) -> the first non-nil, non-false value fn() returns.
-- Polls with a growing interval (opts.interval, default 1 s, up to opts.max_interval, 30 s) for at
-- most opts.timeout seconds (default 900: AEP's p95 latency to Profile); then raises TIMEOUT.
-- opts.on_wait(waited, timeout): called at least once a second while waiting (poll.wait).
function M.wait(c, fn, opts)
  opts = opts or {}
  return poll.wait(c, fn, {
    timeout = opts.timeout or 900, interval = opts.interval, max_interval = opts.max_interval or 30,
    what = opts.what or "profile data", on_wait = opts.on_wait,
    timeout_message = function(s) return string.format("%s not visible after %d s", opts.what or "profile data", s) end,
  })
end

-- profile.default_merge_policy(c) -> {id =, name =} of the sandbox's default merge policy for
-- profiles (the one a lookup without mergePolicyId merges by) | nil when it cannot be read
-- (help/profile/api/merge-policies.md: GET /config/mergePolicies?default=true&schema.name=...)
function M.default_merge_policy(c)
  local ok, resp = pcall(c.get, c, "/data/core/ups/config/mergePolicies", {
    query = { { "schema.name", M.PROFILE_SCHEMA }, { "default", "true" } },
    allow = { [403] = true, [404] = true },
  })
  if not ok and require("aep.errors").is_interrupt(resp) then error(resp, 0) end
  if not ok or resp.status ~= 200 or type(resp.json) ~= "table" then return nil end
  for _, p in ipairs(type(resp.json.children) == "table" and resp.json.children or {}) do
    if type(p) == "table" and p.default ~= false and p.id then return { id = p.id, name = p.name } end
  end
  return nil
end

return M
