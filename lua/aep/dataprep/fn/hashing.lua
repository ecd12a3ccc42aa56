-- Hashing functions (functions.md): digests by OpenSSL through aep.crypto, CRC-32 by zlib.
-- The optional CHARSET encodes the text first, as Java's String.getBytes(charset) does
-- (unmappable characters become "?"; "UTF-16" writes a big-endian byte-order mark).
local crypto = require "aep.crypto"
local values = require "aep.dataprep.values"

local to_string, fail = values.to_string, values.fail

local function code_points(s)
  if not utf8.len(s) then fail("the text to hash is not valid UTF-8") end
  local cps = {}
  for _, c in utf8.codes(s) do cps[#cps + 1] = c end
  return cps
end

local function single_byte(limit)
  return function(s)
    if not s:find("[\128-\255]") then return s end
    local out = {}
    for i, c in ipairs(code_points(s)) do out[i] = c <= limit and string.char(c) or "?" end
    return table.concat(out)
  end
end

local function utf16(big_endian, bom)
  return function(s)
    local out = { bom and "\254\255" or "" }
    local f = big_endian and ">I2" or "<I2"
    for _, c in ipairs(code_points(s)) do
      if c >= 0x10000 then
        c = c - 0x10000
        out[#out + 1] = string.pack(f, 0xD800 + (c >> 10)) .. string.pack(f, 0xDC00 + (c & 0x3FF))
      else
        out[#out + 1] = string.pack(f, c)
      end
    end
    return table.concat(out)
  end
end

local CHARSETS = {
  ["UTF-8"] = function(s) return s end, ["US-ASCII"] = single_byte(127), ["ASCII"] = single_byte(127),
  ["ISO-8859-1"] = single_byte(255), ["LATIN1"] = single_byte(255),
  ["UTF-16"] = utf16(true, true), ["UTF-16BE"] = utf16(true, false), ["UTF-16LE"] = utf16(false, false),
}

local function encode(s, charset)
  if charset == nil then return s end
  local enc = CHARSETS[to_string(charset):upper():gsub("_", "-")]
  if not enc then fail("unsupported charset '%s' (use UTF-8, UTF-16, ISO-8859-1 or US-ASCII)", to_string(charset)) end
  return enc(s)
end

local function digest(name)
  return { min = 1, max = 2, returns = "string", fn = function(s, charset)
    if s == nil then return nil end
    return assert(crypto.digest_hex(name, encode(to_string(s), charset)))
  end }
end

local F = {
  sha1 = digest("sha1"), sha256 = digest("sha256"), sha512 = digest("sha512"), md5 = digest("md5"),
}

F.crc32 = { min = 1, max = 2, returns = "string", fn = function(s, charset)
  if s == nil then return nil end
  -- functions.md's example (crc32("my text") -> 8df92e80) prints the CRC's bytes least
  -- significant first; zlib's value for "my text" is 0x802ef98d
  local bytes = string.pack("<I4", crypto.crc32(encode(to_string(s), charset)))
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end }

return F
