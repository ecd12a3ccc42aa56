-- aep.file: reading a whole file, which plain Lua leaves to every caller (open, read, close).
-- Writing goes through aep.host.write_file (atomic and durable).
local M = {}

-- file.read(path) -> contents | nil, err (cannot open) | nil (opened but unreadable: a directory)
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  return data
end

return M
