-- fuzz_pem: PEM and key loading in aep.crypto: sign_rs256 with a fuzzed private key, verify_rs256
-- with a fuzzed public key or certificate. The first byte picks the mode; the rest is PEM text, or
-- DER that the script wraps in a PEM armour (so the fuzzer works on the ASN.1 itself).
-- Must hold: never raises; fails only with nil, message, "BAD_KEY" | "CRYPTO"; verify answers a
-- boolean; a signature, when made, is as long as the key's modulus (64..2048 bytes).
local crypto = require "aep.crypto"

local LABELS = { "PRIVATE KEY", "RSA PRIVATE KEY", "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE",
                 "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "TRUSTED CERTIFICATE" }
local MSG = "header.payload"
local SIG = string.rep("\171", 128)

local function armour(label, der)
  local b64 = crypto.base64_encode(der)
  local lines = {}
  for i = 1, #b64, 64 do lines[#lines + 1] = b64:sub(i, i + 63) end
  return "-----BEGIN " .. label .. "-----\n" .. table.concat(lines, "\n") .. "\n-----END " .. label .. "-----\n"
end

local function check_fail(what, v, msg, code)
  assert(v == nil, what .. ": unexpected " .. type(v))
  assert(type(msg) == "string" and msg ~= "", what .. ": no message")
  assert(code == "BAD_KEY" or code == "CRYPTO", what .. ": code " .. tostring(code))
end

local function sign(pem)
  local sig, msg, code = crypto.sign_rs256(pem, MSG)
  if sig == nil then return check_fail("sign_rs256", sig, msg, code) end
  assert(type(sig) == "string" and #sig >= 64 and #sig <= 2048, "sign_rs256: signature of " .. #sig .. " bytes")
  -- the key signs: whatever verifies must be a boolean answer (a PEM private key is not a public key)
  local ok, vmsg, vcode = crypto.verify_rs256(pem, MSG, sig)
  if ok == nil then check_fail("verify_rs256(private)", ok, vmsg, vcode) else assert(type(ok) == "boolean") end
end

local function verify(pem)
  local ok, msg, code = crypto.verify_rs256(pem, MSG, SIG)
  if ok == nil then return check_fail("verify_rs256", ok, msg, code) end
  assert(type(ok) == "boolean", "verify_rs256 returned a " .. type(ok))
  ok, msg, code = crypto.verify_rs256(pem, MSG, "")
  if ok ~= nil then assert(ok == false, "an empty signature verified") end
end

return function(s)
  if #s < 1 then return end
  local b = s:byte(1)
  local rest = s:sub(2)
  local mode = b % 4
  if mode == 0 then
    sign(rest)
  elseif mode == 1 then
    verify(rest)
  else
    local pem = mode == 2 and armour(LABELS[(b // 4) % #LABELS + 1], rest) or rest
    sign(pem)
    verify(pem)
  end
end
