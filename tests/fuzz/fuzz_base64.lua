-- fuzz_base64: aep.crypto's base64 and base64url decoders on arbitrary bytes.
-- Must hold: a decoder returns bytes or nil, message, "BAD_INPUT" (never raises); what it accepts
-- re-encodes to something it decodes to the same bytes; anything encoded decodes back.
local crypto = require "aep.crypto"

local codecs = {
  { crypto.base64_encode, crypto.base64_decode, "base64" },
  { crypto.base64url_encode, crypto.base64url_decode, "base64url" },
}

return function(s)
  for _, c in ipairs(codecs) do
    local enc, dec, name = c[1], c[2], c[3]
    local d, err, code = dec(s)
    if d == nil then
      assert(code == "BAD_INPUT", name .. ": failure code " .. tostring(code))
      assert(type(err) == "string" and err:find(name .. "_decode: ", 1, true) == 1, name .. ": message " .. tostring(err))
    else
      assert(type(d) == "string", name .. ": decoded to a " .. type(d))
      assert(#d <= (#s * 3) // 4 + 2, name .. ": decoded more bytes than the input holds")
      assert(dec(enc(d)) == d, name .. ": decode(encode(decode(s))) ~= decode(s)")
    end
    local e = enc(s)
    assert(not e:find("[^%w%+/=_%-]"), name .. ": encoder wrote a byte outside the alphabet")
    assert(dec(e) == s, name .. ": decode(encode(s)) ~= s")
  end
end
