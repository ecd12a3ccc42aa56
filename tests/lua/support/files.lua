-- Spec helper: the file chores every spec needs, once.
--
--   local files = require "tests.lua.support.files"
--   files.write(dir .. "/in.jsonl", text)            -- -> the path
--   local text = files.read(path)                    -- nil (and why) when there is no such file
--   local doc = files.json("data/AEP_loyalty_profiles.json")   -- raises if unreadable or bad JSON
--   local entries = files.json_lines(path)           -- {} when there is no such file
--   if files.exists(path) then ... end
local json = require "aep.json"

local M = {}

-- files.read(path) -> contents | nil, err
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

-- files.exists(path) -> whether path can be opened for reading
function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- files.write(path, content) -> path (raises when it cannot)
function M.write(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

-- files.json(path) -> the decoded document (raises when it cannot)
function M.json(path)
  return assert(json.decode(assert(M.read(path))))
end

-- files.json_lines(path) -> array of the decoded lines (empty when there is no such file)
function M.json_lines(path)
  local out = {}
  for l in (M.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = assert(json.decode(l)) end
  return out
end

return M
