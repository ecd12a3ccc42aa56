-- aep.emulator.profiles: Real-Time Customer Profile access (docs/AEP-API-FACTS.md §9).
--   GET  /data/core/ups/access/entities   a merged profile (schema.name=_xdm.context.profile) or
--                                         the experience events of one (_xdm.context.experienceevent)
--   POST /data/core/ups/access/entities   the same for a list of identities
--
-- Records accepted into Profile-enabled datasets (tags.unifiedProfile "enabled:true", schema
-- tagged "union") carry identity links written at ingest (ingest.lua): their primary identity
-- field (descriptor) and their identityMap. Records sharing any identity belong to one profile:
-- the identity graph is the connected component of (namespace, id) pairs, found here by a walk
-- over the links (namespace codes compared without regard to case, as `entityIdNS=email` must
-- find the `Email` namespace). The merged profile is built at lookup: the component's profile
-- records merged in ingestion order, later values winning; events attach by the same identities.
-- --profile-lag SECONDS hides records received in the last SECONDS (the data lake view,
-- /emulator/datasets/:id/records, is not delayed).
--
-- Profile ids ("XIDs"): base64url of "<namespace lower-case>\0<id>" of the graph's first record's
-- first identity (its primary identity when it has one). Stable while the graph grows, and an
-- XID given as entityId without entityIdNS is understood.
--
-- Errors (Adobe documents only the 422 wording; the rest is the emulator's choice, in Platform's
-- problem-details shape {type, title, status, detail}):
--   400  missing schema.name / entityId / entityIdNS, unsupported schema, bad numbers
--   404  GET of an identity no visible record carries, profile or events:
--        {"type":"http://ns.adobe.com/aep/errors/UPS-1001-404","title":"Not Found","status":404,
--         "detail":"No profile found for entityId [x] in namespace [email]"}
--        (the POST lookup answers unknown identities inside its 200 with the documented empty
--        entity: entity {}, sources [""], lastModifiedAt "1970-01-01T00:00:00Z")
--   422  an identity graph with more than 50 identities: "Too many related identities"
local cjson_safe = require "cjson.safe"
local json = require "aep.json"
local ingest = require "aep.emulator.ingest"
local errors = require "aep.emulator.errors"

local M = {}

M.MAX_IDENTITIES = 50
M.DEFAULT_LIMIT = 1000
local PROFILE = "_xdm.context.profile"
local EVENT = "_xdm.context.experienceevent"

-- Profile answers its errors as application/json, the Content-Type profile.yaml documents for them.
local function problem(status, title, detail, code)
  local _, _, body = errors.problem(status, title, detail, "http://ns.adobe.com/aep/errors/" .. code)
  return status, errors.JSON_HEADERS, body
end

local function bad_request(detail)
  return problem(400, "Bad Request", detail, "UPS-1000-400")
end

-- An answer as one value (the router's table form), for helpers that return it alongside others.
local function answer(status, headers, body)
  return { status, headers, body, status = status, headers = headers, body = body }
end

-- An unknown mergePolicyId is answered as GET /config/mergePolicies/{id} answers it (merge_policies.lua).
local function unknown_policy(ctx, id)
  if id == nil or id == "" then return nil end
  local mp = ctx.app and ctx.app:module("merge_policies")
  if mp and not mp.find(ctx, id) then return answer(mp.not_found(id)) end
  return nil
end

---------------------------------------------------------------------------------------------
-- XIDs

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local B64_INDEX = {}
for i = 1, 64 do B64_INDEX[B64:byte(i)] = i - 1 end

local function b64url(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local k = #out
    out[k + 1] = B64:sub(n // 262144 + 1, n // 262144 + 1)
    out[k + 2] = B64:sub(n // 4096 % 64 + 1, n // 4096 % 64 + 1)
    if b then out[k + 3] = B64:sub(n // 64 % 64 + 1, n // 64 % 64 + 1) end
    if c then out[k + 4] = B64:sub(n % 64 + 1, n % 64 + 1) end
  end
  return table.concat(out)
end

local function unb64url(s)
  if not s:match("^[%w%-_]+$") then return nil end
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    bits = bits * 64 + B64_INDEX[s:byte(i)]
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char(bits // (1 << nbits))
      bits = bits % (1 << nbits)
    end
  end
  return table.concat(out)
end

-- profiles.xid(ns, id) -> profile id ; profiles.from_xid(xid) -> ns (lower), id | nil
function M.xid(ns, id) return b64url(ns:lower() .. "\0" .. id) end
function M.from_xid(xid)
  local raw = type(xid) == "string" and unb64url(xid)
  if not raw then return nil end
  local ns, id = raw:match("^([%w_%-%.]+)%z(.+)$")
  return ns, id
end

---------------------------------------------------------------------------------------------
-- The identity graph

local function cutoff_ms(ctx)
  local now = math.floor((ctx.now or os.time()) * 1000)
  local cfg = ctx.config or (ctx.app and ctx.app.config) or {}
  local lag = tonumber(cfg.profile_lag) or 0
  return now - math.floor(lag * 1000)
end

-- graph(ctx, ns, id) -> g | nil (unknown) | false (more than MAX_IDENTITIES identities)
-- g = { records = {rows in ingestion order}, identities = {{ns, id, primary}}, xid }
local function graph(ctx, ns, id)
  ingest.flush_links() -- ingest defers the links; none may be waiting when the graph is walked
  local S = ingest.S
  local sandbox = ctx.sandbox or "prod"
  local cutoff = cutoff_ms(ctx)
  local queue = { { ns:lower(), id } }
  local seen_ident = { [ns:lower() .. "\0" .. id] = true }
  local seen_seq, records, identities = {}, {}, {}
  local by_key = {}
  while #queue > 0 do
    local cur = table.remove(queue)
    local seqs = {}
    for r in S.ident_seqs:rows(sandbox, cur[1], cur[2]) do seqs[#seqs + 1] = r[1] end
    for _, seq in ipairs(seqs) do
      if not seen_seq[seq] then
        seen_seq[seq] = true
        local r = S.record_by_seq:first(seq)
        if r and r[3] <= cutoff and not ingest.dropping[r[2]] then
          local rec = { seq = r[1], dataset = r[2], received = r[3], kind = r[4],
                        idents = ingest.decode_idents(r[5]), entity = r[6],
                        event_id = r[7], event_ms = r[8] }
          records[#records + 1] = rec
          for _, ident in ipairs(rec.idents) do
            local lns = ident[1]:lower()
            local key = lns .. "\0" .. ident[2]
            if not by_key[key] then
              by_key[key] = { lns, ident[2], false }
              identities[#identities + 1] = by_key[key]
              if #identities > M.MAX_IDENTITIES then return false end
            end
            if not seen_ident[key] then
              seen_ident[key] = true
              queue[#queue + 1] = { lns, ident[2] }
            end
          end
        end
      end
    end
  end
  if #records == 0 then return nil end
  table.sort(records, function(a, b) return a.seq < b.seq end)
  -- Identities in the order records introduced them, whatever identity the walk began at.
  identities = {}
  for _, rec in ipairs(records) do
    for _, ident in ipairs(rec.idents) do
      local e = by_key[ident[1]:lower() .. "\0" .. ident[2]]
      if not e.listed then
        e.listed = true
        identities[#identities + 1] = e
      end
    end
  end
  -- The primary identity: flagged primary in the latest profile record (else the latest record).
  local primary_from
  for i = #records, 1, -1 do
    if records[i].kind == "p" then primary_from = records[i]; break end
  end
  primary_from = primary_from or records[#records]
  for _, ident in ipairs(primary_from.idents) do
    if ident[3] then
      local e = by_key[ident[1]:lower() .. "\0" .. ident[2]]
      if e then e[3] = true end
      break
    end
  end
  local first = records[1].idents[1]
  return { records = records, identities = identities, xid = M.xid(first[1], first[2]) }
end
M.graph = graph

---------------------------------------------------------------------------------------------
-- Merging and projection

local function is_array(t)
  return t[1] ~= nil
end

local function merge_identity_map(dst, src)
  for ns, list in pairs(src) do
    if type(list) == "table" and type(dst[ns]) == "table" then
      local have = {}
      for _, item in ipairs(dst[ns]) do
        if type(item) == "table" and item.id ~= nil then have[tostring(item.id)] = item end
      end
      for _, item in ipairs(list) do
        local prev = type(item) == "table" and item.id ~= nil and have[tostring(item.id)]
        if prev then
          for k, v in pairs(item) do prev[k] = v end
        else
          dst[ns][#dst[ns] + 1] = item
        end
      end
    else
      dst[ns] = list
    end
  end
end

-- Later records win: objects merge key by key, anything else (arrays included) is replaced.
local function merge(dst, src)
  for k, v in pairs(src) do
    local d = dst[k]
    if k == "identityMap" and type(v) == "table" and type(d) == "table" then
      merge_identity_map(d, v)
    elseif type(v) == "table" and type(d) == "table" and not is_array(v) and not is_array(d) then
      merge(d, v)
    else
      dst[k] = v
    end
  end
  return dst
end

-- project(entity, fields) -> entity with only the dotted paths in fields
local function project(entity, fields)
  if not fields then return entity end
  local out = {}
  for _, f in ipairs(fields) do
    local segs = {}
    for seg in f:gmatch("[^%.]+") do segs[#segs + 1] = seg end
    local src, dst = entity, out
    for i, seg in ipairs(segs) do
      if type(src) ~= "table" then break end
      local v = src[seg]
      if v == nil then break end
      if i == #segs then
        dst[seg] = v
      else
        if type(dst[seg]) ~= "table" then dst[seg] = {} end
        src, dst = v, dst[seg]
      end
    end
  end
  return out
end

local function parse_fields(value)
  if value == nil then return nil end
  local out = {}
  if type(value) == "table" then
    for _, f in ipairs(value) do
      if type(f) == "string" and f ~= "" then out[#out + 1] = f end
    end
  else
    for f in tostring(value):gmatch("[^,]+") do
      f = f:match("^%s*(.-)%s*$")
      if f ~= "" then out[#out + 1] = f end
    end
  end
  if #out == 0 then return nil end
  return out
end

local function identities_view(g)
  local out = json.array {}
  for i, ident in ipairs(g.identities) do
    local e = { id = ident[2], namespace = { code = ident[1] } }
    if ident[3] then e.primary = true end
    out[i] = e
  end
  return out
end

-- profile_view(g, fields) -> { entityId, sources, entity, lastModifiedAt }
local function profile_view(g, fields)
  local entity, sources, seen, last = {}, json.array {}, {}, 0
  local any_profile = false
  for _, rec in ipairs(g.records) do
    if rec.kind == "p" then any_profile = true; break end
  end
  for _, rec in ipairs(g.records) do
    if rec.kind == "p" or not any_profile then
      if rec.kind == "p" and rec.entity then
        local e = cjson_safe.decode(rec.entity)
        -- a Data Prep upsert delete (dataprep_stream.lua) removes what was merged before it
        if type(e) == "table" then if e.__aepProfileDelete then entity = {} else merge(entity, e) end end
      end
      if not seen[rec.dataset] then
        seen[rec.dataset] = true
        sources[#sources + 1] = rec.dataset
      end
      if rec.received > last then last = rec.received end
    end
  end
  entity.identities = identities_view(g)
  return { entityId = g.xid, sources = sources, entity = project(entity, fields),
           lastModifiedAt = ingest.iso(last) }
end

local EMPTY_PROFILE_TIME = "1970-01-01T00:00:00Z"

---------------------------------------------------------------------------------------------
-- Events

-- events_view(g, opts) -> { _page, children, next_start }
-- opts: fields, start_time, end_time, limit, desc, start (event entityId to begin the page at)
local function events_of(g, opts)
  local latest = {}
  local list = {}
  for _, rec in ipairs(g.records) do
    if rec.kind == "e" and rec.event_id then
      local prev = latest[rec.event_id]
      if prev then list[prev] = false end   -- re-ingested _id: the later record wins (§8.2)
      list[#list + 1] = rec
      latest[rec.event_id] = #list
    end
  end
  local events = {}
  for _, rec in ipairs(list) do
    if rec then
      local ts = rec.event_ms or 0
      if (not opts.start_time or ts >= opts.start_time) and (not opts.end_time or ts < opts.end_time) then
        events[#events + 1] = rec
      end
    end
  end
  if opts.desc then
    table.sort(events, function(a, b)
      local x, y = a.event_ms or 0, b.event_ms or 0
      if x ~= y then return x > y end
      return a.seq > b.seq
    end)
  else
    table.sort(events, function(a, b)
      local x, y = a.event_ms or 0, b.event_ms or 0
      if x ~= y then return x < y end
      return a.seq < b.seq
    end)
  end
  local first = 1
  if opts.start and opts.start ~= "" then
    first = nil
    for i, rec in ipairs(events) do
      if rec.event_id == opts.start then first = i; break end
    end
    first = first or (#events + 1)
  end
  local children = json.array {}
  local limit = opts.limit or M.DEFAULT_LIMIT
  local last = math.min(#events, first + limit - 1)
  for i = first, last do
    local rec = events[i]
    local entity = cjson_safe.decode(rec.entity or "{}") or {}
    children[#children + 1] = {
      relatedEntityId = g.xid,
      entityId = rec.event_id,
      timestamp = rec.event_ms,
      entity = project(entity, opts.fields),
      lastModifiedAt = ingest.iso(rec.received),
    }
  end
  local next_rec = events[last + 1]
  return {
    _page = {
      orderby = opts.desc and "-timestamp" or "timestamp",
      start = children[1] and children[1].entityId or "",
      count = #children,
      next = next_rec and next_rec.event_id or "",
    },
    children = children,
  }
end

local function url_encode(s)
  return (tostring(s):gsub("[^%w%-%._~,]", function(c) return string.format("%%%02X", c:byte()) end))
end

local QUERY_ORDER = { "orderby", "orderBy", "schema.name", "relatedSchema.name", "entityId", "entityIdNS",
  "relatedEntityId", "relatedEntityIdNS", "fields", "mergePolicyId", "startTime", "endTime", "limit",
  "property", "withCA" }

-- The next page's href: "/entities?start=<id>&" + the request's other parameters, so that
-- "/data/core/ups/access" .. href is the next request (entities.md).
local function next_href(req, next_start)
  if next_start == "" then return "" end
  local q = req.query or {}
  local all = req.query_all or {}
  local parts, used = { "start=" .. url_encode(next_start) }, { start = true }
  local function add(k)
    if used[k] then return end
    used[k] = true
    local values = all[k] or (q[k] ~= nil and { q[k] }) or nil
    if not values then return end
    for _, v in ipairs(values) do parts[#parts + 1] = url_encode(k) .. "=" .. url_encode(v) end
  end
  for _, k in ipairs(QUERY_ORDER) do add(k) end
  local rest = {}
  for k in pairs(q) do if not used[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do add(k) end
  return "/entities?" .. table.concat(parts, "&")
end

---------------------------------------------------------------------------------------------
-- Handlers

local function int_param(v, name)
  if v == nil or v == "" then return nil end
  local n = math.tointeger(tonumber(v))
  if not n then return nil, answer(bad_request("Invalid value for " .. name .. ": " .. tostring(v))) end
  return n
end

-- Identity of the request: (ns, id) from entityId/entityIdNS, or an XID without a namespace.
local function identity_from(id, ns, what)
  if id == nil or id == "" then return nil, nil, answer(bad_request(what .. "Id is required")) end
  if ns == nil or ns == "" then
    local xns, xid = M.from_xid(id)
    if not xns then
      return nil, nil, answer(bad_request(what .. "IdNS is required unless " .. what .. "Id is an XID"))
    end
    return xns, xid
  end
  return ns, id
end

local function not_found(id, ns)
  return problem(404, "Not Found", string.format("No profile found for entityId [%s] in namespace [%s]",
    tostring(id), tostring(ns)), "UPS-1001-404")
end

local function too_many()
  return problem(422, "Unprocessable Entity", "Too many related identities", "UPS-1002-422")
end

local function setup(ctx)
  ingest.setup(ctx.store or ctx.app.store)
end

-- GET /data/core/ups/access/entities
function M.get(req, ctx)
  setup(ctx)
  local q = req.query or {}
  local schema = q["schema.name"]
  if not schema or schema == "" then return bad_request("schema.name is required") end
  local bad_policy = unknown_policy(ctx, q.mergePolicyId)
  if bad_policy then return bad_policy end
  local fields = parse_fields(q.fields)
  if schema == PROFILE then
    local ns, id, err = identity_from(q.entityId, q.entityIdNS, "entity")
    if err then return err end
    local g = graph(ctx, ns, id)
    if g == false then return too_many() end
    if not g then return not_found(id, ns) end
    return 200, errors.JSON_HEADERS, { [g.xid] = profile_view(g, fields) }
  elseif schema == EVENT then
    local rel_schema = q["relatedSchema.name"]
    if rel_schema and rel_schema ~= "" and rel_schema ~= PROFILE then
      return bad_request("relatedSchema.name must be " .. PROFILE)
    end
    local ns, id, err
    if q.relatedEntityId and q.relatedEntityId ~= "" then
      ns, id, err = identity_from(q.relatedEntityId, q.relatedEntityIdNS, "relatedEntity")
    else
      ns, id, err = identity_from(q.entityId, q.entityIdNS, "entity")
    end
    if err then return err end
    local start_time, e1 = int_param(q.startTime, "startTime")
    if e1 then return e1 end
    local end_time, e2 = int_param(q.endTime, "endTime")
    if e2 then return e2 end
    local limit, e3 = int_param(q.limit, "limit")
    if e3 then return e3 end
    if limit and limit < 1 then return bad_request("limit must be positive") end
    local orderby = q.orderby or q.orderBy or "+timestamp"
    local desc = orderby:sub(1, 1) == "-"
    local g = graph(ctx, ns, id)
    if g == false then return too_many() end
    if not g then return not_found(id, ns) end
    local page = events_of(g, { fields = fields, start_time = start_time, end_time = end_time,
                                limit = limit, desc = desc, start = q.start })
    page._links = { next = { href = next_href(req, page._page.next) } }
    return 200, errors.JSON_HEADERS, page
  end
  return bad_request("Unsupported schema.name [" .. schema .. "]; use " .. PROFILE .. " or " .. EVENT)
end

-- POST /data/core/ups/access/entities
function M.post(req, ctx)
  setup(ctx)
  local body, answer
  if req.json_body then
    body, answer = req:json_body()
    if body == nil then return answer end
  else
    body, answer = json.decode(req.body or "")
    if body == nil then return bad_request(answer) end
  end
  if type(body) ~= "table" then return bad_request("The request body must be a JSON object") end
  local schema = type(body.schema) == "table" and body.schema.name or nil
  if not schema then return bad_request("schema.name is required") end
  local bad_policy = unknown_policy(ctx, body.mergePolicyId)
  if bad_policy then return bad_policy end
  if type(body.identities) ~= "table" or body.identities[1] == nil then
    return bad_request("identities is required")
  end
  local fields = parse_fields(body.fields)
  local out = {}
  if schema == PROFILE then
    for _, ident in ipairs(body.identities) do
      if type(ident) ~= "table" then return bad_request("identities must hold objects") end
      local ns_v = type(ident.entityIdNS) == "table" and ident.entityIdNS.code or ident.entityIdNS
      local ns, id, e = identity_from(ident.entityId, ns_v, "entity")
      if e then return e end
      local g = graph(ctx, ns, id)
      if g == false then return too_many() end
      if g then
        out[g.xid] = profile_view(g, fields)
      else
        local key = M.xid(ns, id)
        out[key] = { entityId = key, sources = json.array { "" }, entity = {},
                     lastModifiedAt = EMPTY_PROFILE_TIME }
      end
    end
    return 200, errors.JSON_HEADERS, out
  elseif schema == EVENT then
    local tf = type(body.timeFilter) == "table" and body.timeFilter or {}
    local limit = math.tointeger(tonumber(body.limit)) or M.DEFAULT_LIMIT
    local desc = type(body.orderby) == "string" and body.orderby:sub(1, 1) == "-"
    for _, ident in ipairs(body.identities) do
      if type(ident) ~= "table" then return bad_request("identities must hold objects") end
      local ns, id, e
      if ident.relatedEntityId then
        local ns_v = type(ident.relatedEntityIdNS) == "table" and ident.relatedEntityIdNS.code or ident.relatedEntityIdNS
        ns, id, e = identity_from(ident.relatedEntityId, ns_v, "relatedEntity")
      else
        local ns_v = type(ident.entityIdNS) == "table" and ident.entityIdNS.code or ident.entityIdNS
        ns, id, e = identity_from(ident.entityId, ns_v, "entity")
      end
      if e then return e end
      local g = graph(ctx, ns, id)
      if g == false then return too_many() end
      local key = g and g.xid or M.xid(ns, id)
      local page
      if g then
        page = events_of(g, { fields = fields, start_time = math.tointeger(tonumber(tf.startTime)),
          end_time = math.tointeger(tonumber(tf.endTime)), limit = limit, desc = desc, start = ident.start })
      else
        page = { _page = { orderby = desc and "-timestamp" or "timestamp", start = "", count = 0, next = "" },
                 children = json.array {} }
      end
      if page._page.next ~= "" then
        local payload = {
          schema = { name = EVENT }, relatedSchema = { name = PROFILE },
          timeFilter = body.timeFilter, fields = body.fields, limit = body.limit, orderby = body.orderby,
          identities = { { relatedEntityId = key, start = page._page.next } },
        }
        page._links = { next = { href = "/entities", payload = payload } }
      else
        page._links = { next = { href = "" } }
      end
      out[key] = page
    end
    return 200, errors.JSON_HEADERS, out
  end
  return bad_request("Unsupported schema.name [" .. tostring(schema) .. "]")
end

-- profiles.install(app)
function M.install(app)
  ingest.setup(app.store)
  app:route("GET", "/data/core/ups/access/entities", M.get, { auth = "platform" })
  app:route("POST", "/data/core/ups/access/entities", M.post, { auth = "platform" })
end

return M
