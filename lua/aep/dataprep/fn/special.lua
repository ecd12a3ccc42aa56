-- Special operations (functions.md): uuid/guid from aep.crypto (OpenSSL's random bytes).
-- fpid_to_ecid derives an ECID with Adobe's Identity Service algorithm, which is not published:
-- the function is known (so mapping sets that use it compile) and fails each record with a clear
-- transformation error rather than inventing an ECID that AEP would not produce.
local crypto = require "aep.crypto"
local values = require "aep.dataprep.values"

local function uuid() return crypto.uuid4() end

return {
  uuid = { min = 0, returns = "string", fn = uuid },
  guid = { min = 0, returns = "string", fn = uuid },
  fpid_to_ecid = { min = 1, returns = "string", fn = function(fpid)
    if fpid == nil then return nil end
    values.fail("fpid_to_ecid is not available offline: Adobe does not publish the FPID to ECID derivation")
  end },
}
