-- aep.file: reading a whole file, which plain Lua leaves to every caller (open, read, close),
-- and where aep keeps its state. Writing goes through aep.host.write_file (atomic and durable).
local M = {}

-- file.read(path) -> contents | nil, err (cannot open) | nil (opened but unreadable: a directory)
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  return data
end

-- file.state_dir() -> $XDG_STATE_HOME/aep (default ~/.local/state/aep): the REPL's history, run
-- manifests and the emulator's default data directory
function M.state_dir()
  local state = os.getenv("XDG_STATE_HOME")
  if not state or state == "" then state = (os.getenv("HOME") or "/tmp") .. "/.local/state" end
  return state .. "/aep"
end

return M
