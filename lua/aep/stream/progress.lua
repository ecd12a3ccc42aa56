-- aep.stream.progress: what `aep stream` shows while it runs, on stderr.
--   * a terminal: one line redrawn 5 times a second — a bar and ETA when the input size is known,
--     records read, records/s, accepted, rejected, failed;
--   * not a terminal (CI logs): one plain line every `interval` seconds (default 10);
--   * --quiet: nothing.
local term = require "aep.term"

local M = {}

-- progress.count(n) -> "1,234,567"; progress.duration(seconds) -> "0:42" (term's)
M.count = term.count
M.duration = term.duration

-- term.line's methods copied in (not inherited through a second __index: update runs once per
-- turn of the pipeline's loop)
local Progress = {}
for k, v in pairs(term.Line) do Progress[k] = v end
Progress.__index = Progress

-- progress.new{quiet=, tty=, interval=, out=, now=} -> progress (a term.line)
function M.new(o)
  return setmetatable(term.line(o), Progress)
end

-- progress:update(state [, force]); state = {read=, accepted=, rejected=, failed=, skipped=,
-- bytes= (of the records read, not of the read buffer), total_bytes=, settled= (records of this
-- run with their outcome)}
function Progress:update(st, force)
  if not force and self.now() < self.next_at then return end -- the common case, without a call to due
  local elapsed = self:due(force)
  if not elapsed then return end
  -- reading runs ahead of the answers by a few batches (a whole small file, with
  -- --sync-validation's one record a second): the rate, the share and the ETA count the records
  -- settled. The input's size gives the share: bytes/total of it is read in `read` records, so it
  -- holds about read * total/bytes records, of which `settled` are done.
  local done = st.settled or st.read
  local rate = elapsed > 0 and done / elapsed or 0
  local frac = st.total_bytes and st.total_bytes > 0 and st.bytes and math.min(1, st.bytes / st.total_bytes) or nil
  if frac and st.settled and st.read > 0 then frac = frac * math.min(1, st.settled / st.read) end
  local eta = term.eta(elapsed, frac)
  local counts = string.format("%s records  %s/s  accepted %s  rejected %s%s%s",
    M.count(st.read), M.count(rate), M.count(st.accepted), M.count(st.rejected),
    st.failed > 0 and ("  failed " .. M.count(st.failed)) or "",
    st.skipped > 0 and ("  skipped " .. M.count(st.skipped)) or "")
  if self.tty then
    self:draw((frac and term.bar(frac) .. " " or "") .. counts .. eta)
  else
    self:draw("aep stream: " .. counts .. (frac and string.format("  (%d%% of the input)", math.floor(frac * 100)) or "") .. eta)
  end
end

return M
