-- scripts/realtime-import.lua — the whole "Real-time import" flow, end to end:
--   auth -> schemas -> datasets -> streaming -> batch-import -> lookup   (--no-batch-import skips
--   the batch step; re-imported events keep their _id, so Profile holds each event once)
-- ending with a sample person's profile as read back (name, loyalty level and points, events)
-- and a check of every person of the source data against Profile (--no-verify to skip it).
-- Every step finds what an earlier run made, so running it again creates nothing new.
local wf = ...

wf:run_script("auth")
wf:run_script("schemas")
wf:run_script("datasets")
wf:run_script("streaming")
if wf.options.batch_import ~= false then wf:run_script("batch-import") end
if wf.options.verify == nil then wf.options.verify = true end
return wf:run_script("lookup")
