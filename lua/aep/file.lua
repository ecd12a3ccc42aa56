-- aep.file: reading a whole file, which plain Lua leaves to every caller (open, read, close),
-- where aep keeps its state, and the samples and mappings built into the binary, found when no
-- file of that name exists. Writing goes through aep.host.write_file (atomic and durable).
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

-- The directories of the checkout whose files are built into the binary and that a user names
-- on the command line (the README's `--input data/...`, `--mapping mappings/...`).
M.BUILTIN_DIRS = { "data/", "mappings/" }

-- file.builtin_list() -> sorted names of the built-in samples and mappings ("data/x.json", ...)
function M.builtin_list()
  local host = require "aep.host"
  local out = {}
  for _, dir in ipairs(M.BUILTIN_DIRS) do
    for _, p in ipairs(host.embedded_list(dir)) do out[#out + 1] = p end
  end
  table.sort(out)
  return out
end

-- file.builtin(name) -> text, canonical name | nil: a built-in sample or mapping by the name the
-- README uses ("data/AEP_loyalty_profiles.json", "./mappings/loyalty_profile.lua")
function M.builtin(name)
  if type(name) ~= "string" or name:sub(1, 1) == "/" then return nil end
  local rel = name:gsub("^%./", "")
  for _, dir in ipairs(M.BUILTIN_DIRS) do
    if rel:sub(1, #dir) == dir then
      local text = require("aep.host").embedded(rel)
      if text then return text, rel end
    end
  end
  return nil
end

local function cache_dir()
  local base = os.getenv("XDG_CACHE_HOME")
  if not base or base == "" then base = (os.getenv("HOME") or "/tmp") .. "/.cache" end
  return base .. "/aep/builtin"
end

local function mkdir_p(path)
  local host = require "aep.host"
  local at = ""
  for part in path:gmatch("[^/]+") do
    at = at .. "/" .. part
    if not host.stat(at) then host.mkdir(at, tonumber("700", 8)) end
  end
end

-- file.resolve(path) -> real path, builtin name | nil, message
-- A path that exists (or "-", stdin) is returned as is. Otherwise a built-in sample or mapping
-- of that name is written once to the user's cache (keyed by its content, so another aep
-- version's copy is never taken) and that path is returned: the native readers and loadfile
-- need a file. Neither: "cannot open PATH: ..., and no built-in sample of that name (built-in:
-- ...)".
function M.resolve(path)
  if path == nil or path == "-" then return path end
  local f, err = io.open(path, "rb")
  if f then f:close(); return path end
  local host = require "aep.host"
  if host.stat(path) then return path end -- exists but unreadable: the caller's own error says so
  local text, name = M.builtin(path)
  if not text then
    return nil, string.format("cannot open %s: %s, and no built-in sample of that name (built-in: %s)",
      path, (tostring(err):gsub("^[^:]*: ", "")), table.concat(M.builtin_list(), ", "))
  end
  local key = require("aep.crypto").sha256_hex(text):sub(1, 16)
  local real = cache_dir() .. "/" .. key .. "/" .. name
  local have = M.read(real)
  if have ~= text then
    mkdir_p(real:match("^(.*)/[^/]*$"))
    local ok, werr = host.write_file(real, text, tonumber("600", 8))
    if not ok and werr then return nil, "cannot write the built-in " .. name .. " to " .. real .. ": " .. tostring(werr) end
  end
  return real, name
end

return M
