-- Run the aep binary (or any command) in a child process and capture what it did.
local files = require "tests.lua.support.files"
local spawn = require "tests.lua.support.spawn"

local M = {}

-- M.bin: the aep under test (ctest sets AEP_BIN; otherwise the running executable).
M.bin = spawn.aep

-- Quote one word for /bin/sh.
M.quote = spawn.quote

-- run.cmd(argv_list, {stdin = string, env = {NAME = value}, cwd = dir})
--   -> {stdout = s, stderr = s, status = exit code}
function M.cmd(argv, opts)
  opts = opts or {}
  local words = {}
  for k, v in pairs(opts.env or {}) do words[#words + 1] = k .. "=" .. M.quote(v) end
  for _, a in ipairs(argv) do words[#words + 1] = M.quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local input = "/dev/null"
  if opts.stdin then
    input = files.write(os.tmpname(), opts.stdin)
  end
  local line = table.concat(words, " ")
  if opts.env then line = "env " .. line end
  if opts.cwd then line = "cd " .. M.quote(opts.cwd) .. " && " .. line end
  local ok, how, code = os.execute(line .. " <" .. M.quote(input) .. " >" .. out .. " 2>" .. err)
  local status = code
  if how == "signal" then status = 128 + code end
  local result = { stdout = files.read(out) or "", stderr = files.read(err) or "", status = status, ok = ok }
  os.remove(out)
  os.remove(err)
  if opts.stdin then os.remove(input) end
  return result
end

-- run.aep(args, opts): run.cmd with the aep binary first.
function M.aep(args, opts)
  local argv = { M.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return M.cmd(argv, opts)
end

-- run.tmpdir() -> a fresh empty directory
function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. M.quote(p)))
  return p
end

return M
