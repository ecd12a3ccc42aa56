-- aep.emulator.ids: the random ids and clock readings every emulated service hands out.
local crypto = require "aep.crypto"
local host = require "aep.host"

local M = {}

-- ids.hex(n) -> n random bytes as lowercase hex (2n characters)
function M.hex(n)
  return (crypto.random_bytes(n):gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- ids.now_ms() -> wall-clock milliseconds since the epoch (an integer)
function M.now_ms()
  return math.floor(host.now() * 1000)
end

return M
