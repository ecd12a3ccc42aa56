-- aep.emulator.ingest_drop: deleting a deleted dataset's records without holding the server.
-- Installed into aep.emulator.ingest (which calls this module with itself and its private
-- statements): ingest.drop_dataset, ingest.drop_step, ingest.dropping, ingest.DROP_SLICE.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

return function(M, P)
  -- ingest.drop_dataset(store, sandbox, dataset_id): a deleted dataset's records, identity links
  -- and batches go with it, as in AEP, where deleting a dataset removes its data from the data lake
  -- and from Profile. Call inside the transaction that deletes the dataset. The batches go at once;
  -- the records are queued (meta DROPPING_KEY, so a restart carries on) and deleted in slices by
  -- M.drop_step from the server's idle loop: one request must never hold the server for long.
  -- Queued records are invisible at once (M.dropping: profiles.lua skips them).
  local DROPPING_KEY = "ingest.dropping"
  M.DROP_SLICE = 2000 -- records deleted per slice (each slice is one transaction)
  M.dropping = {}     -- dataset id -> sandbox, while its records are being deleted

  local function save_dropping(store)
    local list = {}
    for ds, sb in pairs(M.dropping) do list[#list + 1] = { sandbox = sb, dataset = ds } end
    table.sort(list, function(a, b) return a.dataset < b.dataset end)
    store.meta_put(DROPPING_KEY, #list > 0 and cjson.encode(list) or "[]")
  end

  local function load_dropping(store)
    M.dropping = {}
    local list = cjson_safe.decode(store.meta_get(DROPPING_KEY) or "[]")
    for _, e in ipairs(type(list) == "table" and list or {}) do
      if type(e) == "table" and type(e.dataset) == "string" and type(e.sandbox) == "string" then
        M.dropping[e.dataset] = e.sandbox
      end
    end
  end

  function M.drop_dataset(store, sandbox, dataset_id)
    M.setup(store)
    store.db:prepare("DELETE FROM ingest_batches WHERE sandbox = ? AND dataset_id = ?"):run(sandbox, dataset_id)
    M.dropping[dataset_id] = sandbox
    save_dropping(store)
  end

  -- ingest.drop_step(store) -> true while records of deleted datasets remain to be deleted. Each
  -- call deletes up to DROP_SLICE of them with their identity links (point deletes by the links'
  -- primary key: the links are derived from the record's idents), in one transaction.
  function M.drop_step(store)
    M.setup(store)
    local dataset, sandbox = next(M.dropping)
    if not dataset then return false end
    M.flush_links() -- links are deleted by key: they must exist for every record deleted
    local rows = {}
    for row in P.S().drop_page:rows(dataset, sandbox, M.DROP_SLICE) do rows[#rows + 1] = row end
    store.transaction(function()
      for _, row in ipairs(rows) do
        if row[2] then
          for _, ident in ipairs(M.decode_idents(row[2])) do P.S().unlink:run(sandbox, ident[1]:lower(), ident[2], row[1]) end
        end
        P.S().drop_record:run(row[1])
      end
      if #rows < M.DROP_SLICE then
        M.dropping[dataset] = nil
        save_dropping(store)
      end
      -- seqs freed at the end are given out again: the watermark must not stay above them
      local top = P.top_seq()
      if top < (tonumber(store.meta_get(P.LINKED_KEY)) or 0) then store.meta_put(P.LINKED_KEY, tostring(top)) end
    end)
    return next(M.dropping) ~= nil
  end

  return load_dropping, save_dropping
end
