-- aep.emulator.identity_graph: Identity Service lookups over the identities the emulator holds
-- (help/identity-service/api/list-native-id.md, list-cluster-identites.md, identity-service.yaml).
--   GET  /data/core/identity/identity?namespace=|nsid=&id=     {"xid": ...} of one identity
--   GET  /data/core/identity/cluster/members?xid= | nsid=&id= | namespace=&id=
--   POST /data/core/identity/clusters/members   {"xids"} | {"compositeXids"} | {"compositeXidsWithNamespace"}
--   POST /data/core/identity/v2/graph           {"composite_xids": [{ns|nsid, id}] | "xids", "projection_type"}
--
-- The graph is Profile's (profiles.graph): identities linked by the records that carry them
-- together (primary identity field and identityMap, ingest.lua), within the request's sandbox.
-- An identity's XID is profiles.xid(namespace, id) (base64url of "<namespace lower-case>\0<id>"),
-- so an XID names the identity without a lookup table and survives restarts. Members are
-- answered in the form they were asked in (XIDs, nsid + id, namespace + id), as the guide's
-- examples do; nsid is a number there (the spec's CompositeXid says string: the guide wins).
-- An identity no record carries is a cluster with no members (the guide's second xid example);
-- v2/graph lists it in unprocessed_composite_xids / unprocessed_xids.
-- Errors: 400 application/json {"title": "InvalidInput", "status": 400, "detail": ...}, with the
-- wording of help/identity-service/troubleshooting-guide.md ("Missing required query parameter -
-- id", "There is a limit of 1000 XIDs in a single call", "The graph-type abc specified is invalid").
local json = require "aep.json"
local errors = require "aep.emulator.errors"
local identity = require "aep.emulator.identity"
local profiles = require "aep.emulator.profiles"

local M = {}

local BASE = "/data/core/identity"
local JSON_HEADERS = errors.JSON_HEADERS
local GRAPH_HEADERS = { ["Content-Type"] = "application/json;version=2.2.1;charset=utf-8" }
M.MAX_LOOKUPS = 1000 -- identities per POST (the spec's maxItems for composite_xids)

local function invalid(detail)
  return 400, JSON_HEADERS, { title = "InvalidInput", status = 400, detail = detail }
end

-- resolve(ctx, {namespace=|nsid=|xid=, id=}) -> ns code (as registered), id | nil, error detail
local function resolve(ctx, ref)
  if ref.xid ~= nil then
    local ns, id = profiles.from_xid(tostring(ref.xid))
    if not ns then return nil, "The provided xid=" .. tostring(ref.xid) .. " is invalid" end
    local n = identity.find(ctx, ns)
    return n and n.code or ns, id
  end
  local key = ref.namespace
  if key == nil or key == "" then key = ref.nsid end
  if ref.id == nil or ref.id == "" then return nil, "Missing required query parameter - id" end
  if key == nil or key == "" then return nil, "Missing required query parameter - namespace" end
  local n = identity.find(ctx, key)
  if not n then
    return nil, string.format("The provided namespace=%s and id=%s is invalid. Please provide a valid namespace and id in your request.",
      tostring(key), tostring(ref.id))
  end
  return n.code, tostring(ref.id)
end

-- The graph's members as {code, id, nsid} (the namespace as registered when it is known).
local function members_of(ctx, code, id)
  local g = profiles.graph(ctx, code, id)
  if g == false then return nil, "too many" end
  local out = {}
  if not g then return out end
  for _, ident in ipairs(g.identities) do
    local n = identity.find(ctx, ident[1])
    out[#out + 1] = { code = n and n.code or ident[1], id = ident[2], nsid = n and n.id }
  end
  return out, nil, g
end

local function member(form, m)
  if form == "xid" then return profiles.xid(m.code, m.id) end
  if form == "nsid" then return { nsid = m.nsid, id = m.id } end
  return { namespace = m.code, id = m.id }
end

local function cluster(ctx, form, ref)
  local code, id = resolve(ctx, ref)
  local c = { members = json.array {} }
  if form == "xid" then c.xid = ref.xid else c.compositeXid = form == "nsid" and { nsid = ref.nsid, id = ref.id }
    or { namespace = ref.namespace, id = ref.id } end
  if not code then return c end
  local list = members_of(ctx, code, id) or {}
  for _, m in ipairs(list) do c.members[#c.members + 1] = member(form, m) end
  return c
end

local GRAPH_TYPES = { pdg = true, coop = true, psr = true } -- identity-service.yaml's enum; all answer the private graph

local function bad_graph_type(value)
  if value == nil or value == "" or GRAPH_TYPES[value] then return nil end
  return { invalid("The graph-type " .. tostring(value) .. " specified is invalid. Please provide a valid graph-type") }
end

local function clusters_answer(list)
  return 200, JSON_HEADERS, { version = "1.1.0", clusters = list, unprocessedRecords = json.array {},
                              algo_type = "STITCH_ALL" }
end

-- GET /identity/identity
local function native_id(req, ctx)
  local q = req.query or {}
  local code, id = resolve(ctx, { namespace = q.namespace, nsid = q.nsid, id = q.id })
  if not code then return invalid(id) end
  return 200, JSON_HEADERS, { xid = profiles.xid(code, id) }
end

-- GET /identity/cluster/members
local function cluster_members(req, ctx)
  local q = req.query or {}
  local bad = bad_graph_type(q["graph-type"])
  if bad then return table.unpack(bad) end
  if (q.xid == nil or q.xid == "") and (q.id == nil or q.id == "") then
    return invalid("Missing required query parameter - xid or (nsid,id)")
  end
  local form = q.xid and "xid" or ((q.namespace == nil or q.namespace == "") and q.nsid and "nsid" or "namespace")
  local ref = { xid = q.xid, namespace = q.namespace, nsid = math.tointeger(tonumber(q.nsid)) or q.nsid, id = q.id }
  local code, detail = resolve(ctx, ref)
  if not code then return invalid(detail) end
  return clusters_answer(json.array { cluster(ctx, form, ref) })
end

-- POST /identity/clusters/members
local function clusters_members(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  if type(body) ~= "table" then return invalid("The body must be a JSON object") end
  local form, list
  if type(body.xids) == "table" then form, list = "xid", body.xids
  elseif type(body.compositeXids) == "table" then form, list = "nsid", body.compositeXids
  elseif type(body.compositeXidsWithNamespace) == "table" then form, list = "namespace", body.compositeXidsWithNamespace
  else return invalid("Missing required query parameter - xids or compositeXids") end
  local bad = bad_graph_type(body["graph-type"])
  if bad then return table.unpack(bad) end
  if #list == 0 then return invalid("Missing required query parameter - xids or compositeXids") end
  if #list > M.MAX_LOOKUPS then
    return invalid(form == "xid" and ("There is a limit of " .. M.MAX_LOOKUPS .. " XIDs in a single call")
      or ("There is a limit for " .. M.MAX_LOOKUPS .. " compositeXids in a single call"))
  end
  local out = json.array {}
  for _, item in ipairs(list) do
    local ref = form == "xid" and { xid = item } or (type(item) == "table" and item or {})
    out[#out + 1] = cluster(ctx, form, ref)
  end
  return clusters_answer(out)
end

-- POST /identity/v2/graph
local function graph(req, ctx)
  local body, err = req:json_body()
  if body == nil then return err end
  if type(body) ~= "table" then return invalid("The body must be a JSON object") end
  local projection = body.projection_type or "set"
  if projection ~= "set" and projection ~= "graph" then
    return 400, JSON_HEADERS, { reason = "Validation error", status = 400, title = "InvalidInput",
      message = "Graph Request Invalid - projection types available are [graph|set]." }
  end
  local by_xid = type(body.xids) == "table"
  local list = by_xid and body.xids or body.composite_xids
  if type(list) ~= "table" or #list == 0 then return invalid("Missing required query parameter - xids or compositeXids") end
  if #list > M.MAX_LOOKUPS then
    return invalid(by_xid and ("There is a limit of " .. M.MAX_LOOKUPS .. " XIDs in a single call")
      or ("There is a limit for " .. M.MAX_LOOKUPS .. " compositeXids in a single call"))
  end
  local db = ctx.store.db
  local graphs, unprocessed = json.array {}, json.array {}
  for _, item in ipairs(list) do
    local ref = by_xid and { xid = item } or (type(item) == "table" and { namespace = item.ns, nsid = item.nsid, id = item.id } or {})
    local code, id = resolve(ctx, ref)
    local members, _, g
    if code then members, _, g = members_of(ctx, code, id) end
    if not g then
      unprocessed[#unprocessed + 1] = item
    else
      local function cx(m)
        if by_xid then return profiles.xid(m.code, m.id) end
        if item.nsid ~= nil and item.ns == nil then return { nsid = m.nsid, id = m.id } end
        return { ns = m.code, id = m.id }
      end
      local entry = { [by_xid and "xid" or "composite_xid"] = item }
      if projection == "set" then
        entry.members = json.array {}
        for _, m in ipairs(members) do entry.members[#entry.members + 1] = cx(m) end
      else
        -- vertices: each identity, last updated by the latest record carrying it; edges: the
        -- identities a record carries together (its first identity paired with each other one)
        local key_of, last = {}, {}
        for _, m in ipairs(members) do key_of[m.code:lower() .. "\0" .. m.id] = m end
        local edges, edge_index = json.array {}, {}
        local st = db:prepare("SELECT batch_id FROM ingest_records WHERE seq = ?")
        for _, rec in ipairs(g.records) do
          local ms = {}
          for _, ident in ipairs(rec.idents) do
            local m = key_of[ident[1]:lower() .. "\0" .. ident[2]]
            if m then ms[#ms + 1] = m; last[m] = math.max(last[m] or 0, rec.received) end
          end
          local batch = st:first(rec.seq)
          for i = 2, #ms do
            local k = ms[1].code:lower() .. "\0" .. ms[1].id .. "\0" .. ms[i].code:lower() .. "\0" .. ms[i].id
            local e = edge_index[k]
            if not e then
              e = { [by_xid and "xid_pair" or "composite_xid_pair"] = json.array { cx(ms[1]), cx(ms[i]) },
                    first_established_ts = rec.received, last_established_ts = rec.received,
                    dataset_ids = json.array {}, batch_ids = json.array {}, _ds = {}, _b = {} }
              edge_index[k] = e
              edges[#edges + 1] = e
            end
            e.last_established_ts = math.max(e.last_established_ts, rec.received)
            if not e._ds[rec.dataset] then e._ds[rec.dataset] = true; e.dataset_ids[#e.dataset_ids + 1] = rec.dataset end
            if batch and batch[1] and not e._b[batch[1]] then e._b[batch[1]] = true; e.batch_ids[#e.batch_ids + 1] = batch[1] end
          end
        end
        for _, e in ipairs(edges) do e._ds, e._b = nil, nil end
        entry.vertices = json.array {}
        for _, m in ipairs(members) do
          entry.vertices[#entry.vertices + 1] = { [by_xid and "xid" or "composite_xid"] = cx(m), last_updated_ts = last[m] or 0 }
        end
        entry.edges = edges
      end
      graphs[#graphs + 1] = entry
    end
  end
  local out = { version = "2.0", graphs = graphs, algo_type = "STITCH_ALL" }
  out[by_xid and "unprocessed_xids" or "unprocessed_composite_xids"] = unprocessed
  return 200, GRAPH_HEADERS, out
end

function M.install(app)
  local o = { auth = "platform" }
  app:route("GET", BASE .. "/identity", native_id, o)
  app:route("GET", BASE .. "/cluster/members", cluster_members, o)
  app:route("POST", BASE .. "/clusters/members", clusters_members, { auth = "platform", body = "json" })
  app:route("POST", BASE .. "/v2/graph", graph, { auth = "platform", body = "json" })
end

return M
