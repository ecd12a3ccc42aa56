-- aep.crypto: published known-answer vectors, RS256 against the openssl command line, keys and
-- certificates made by generate_rsa. Keys here are throwaway test keys; temp files are removed.
local crypto = require "aep.crypto"
local files = require "tests.lua.support.files"

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function read_file(path) return assert(files.read(path)) end

-- Run a shell command with its output captured; returns ok, output.
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1", "r"))
  local out = p:read("a")
  local ok = p:close()
  return ok == true, out
end

-- Temp files, removed after each test.
local temps = {}
local function tmpfile(content)
  local path = os.tmpname()
  temps[#temps + 1] = path
  if content then files.write(path, content) end
  return path
end

local generated -- one 2048-bit key pair + certificate for the whole file
local function keys()
  generated = generated or assert(crypto.generate_rsa())
  return generated
end

describe("aep.crypto", function()
  after_each(function()
    for _, path in ipairs(temps) do os.remove(path) end
    temps = {}
  end)

  describe("sha256 (FIPS 180-2)", function()
    it("hashes 'abc'", function()
      assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        crypto.sha256_hex("abc"))
      assert.equal(unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        crypto.sha256("abc"))
    end)

    it("hashes the empty string", function()
      assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        crypto.sha256_hex(""))
      assert.equal(32, #crypto.sha256(""))
    end)

    it("hashes the two-block message", function()
      assert.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        crypto.sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    end)

    it("hashes binary data with NUL bytes", function()
      assert.equal(crypto.sha256_hex("a\0b"), hex(crypto.sha256("a\0b")))
      assert.not_equal(crypto.sha256_hex("a\0b"), crypto.sha256_hex("a"))
    end)

    it("raises on a missing argument", function()
      assert.has_error(function() crypto.sha256() end)
      assert.has_error(function() crypto.sha256_hex({}) end)
    end)
  end)

  describe("hmac_sha256 (RFC 4231)", function()
    local cases = {
      { key = string.rep("\x0b", 20), data = "Hi There",
        mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
      { key = "Jefe", data = "what do ya want for nothing?",
        mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
      { key = string.rep("\xaa", 20), data = string.rep("\xdd", 50),
        mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
      { key = unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
        data = string.rep("\xcd", 50),
        mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
      { key = string.rep("\x0c", 20), data = "Test With Truncation",
        mac = "a3b6167473100ee06e0c796c2955552b", truncate = 16 },
      { key = string.rep("\xaa", 131),
        data = "Test Using Larger Than Block-Size Key - Hash Key First",
        mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
      { key = string.rep("\xaa", 131),
        data = "This is a test using a larger than block-size key and a larger than block-size data."
          .. " The key needs to be hashed before being used by the HMAC algorithm.",
        mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
    }
    for i, c in ipairs(cases) do
      it("passes test case " .. i, function()
        local raw = crypto.hmac_sha256(c.key, c.data)
        assert.equal(32, #raw)
        local n = c.truncate or 32
        assert.equal(c.mac, hex(raw:sub(1, n)))
        assert.equal(c.mac, crypto.hmac_sha256_hex(c.key, c.data):sub(1, 2 * n))
      end)
    end

    it("accepts an empty key", function()
      assert.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad",
        crypto.hmac_sha256_hex("", ""))
    end)

    it("raises on a missing argument", function()
      assert.has_error(function() crypto.hmac_sha256("key") end)
    end)
  end)

  describe("base64 (RFC 4648 §10)", function()
    local vectors = {
      { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
      { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    }
    for _, v in ipairs(vectors) do
      it(string.format("encodes and decodes %q", v[1]), function()
        assert.equal(v[2], crypto.base64_encode(v[1]))
        assert.equal(v[1], crypto.base64_decode(v[2]))
      end)
    end

    it("encodes the RFC 4648 §9 examples", function()
      assert.equal("FPucA9l+", crypto.base64_encode(unhex("14fb9c03d97e")))
      assert.equal("FPucA9k=", crypto.base64_encode(unhex("14fb9c03d9")))
      assert.equal("FPucAw==", crypto.base64_encode(unhex("14fb9c03")))
      assert.equal("+/+/", crypto.base64_encode("\xfb\xff\xbf"))
    end)

    it("decodes input without padding", function()
      assert.equal("f", crypto.base64_decode("Zg"))
      assert.equal("fooba", crypto.base64_decode("Zm9vYmE"))
    end)

    it("round-trips every byte value and large inputs", function()
      local all = {}
      for b = 0, 255 do all[#all + 1] = string.char(b) end
      all = table.concat(all)
      assert.equal(all, crypto.base64_decode(crypto.base64_encode(all)))
      local big = crypto.random_bytes(200003) -- spans several internal chunks
      local enc = crypto.base64_encode(big)
      assert.equal(4 * math.ceil(#big / 3), #enc)
      assert.equal(big, crypto.base64_decode(enc))
    end)

    it("rejects bad input with BAD_INPUT", function()
      local function bad(s, msg)
        local v, err, code = crypto.base64_decode(s)
        assert.is_nil(v)
        assert.equal("BAD_INPUT", code)
        assert.equal(msg, err)
      end
      bad("Zm9v!", "base64_decode: invalid character at position 5")
      bad("Zm 9v", "base64_decode: invalid character at position 3")
      bad("Zm9v\n", "base64_decode: invalid character at position 5")
      bad("-_-_", "base64_decode: invalid character at position 1")
      bad("Zm=v", "base64_decode: misplaced padding at position 3")
      bad("Zg=", "base64_decode: wrong amount of padding")
      bad("Zg===", "base64_decode: misplaced padding at position 3")
      bad("Z", "base64_decode: truncated input")
      bad("Zm9vY", "base64_decode: truncated input")
    end)
  end)

  describe("base64url (RFC 4648 §5)", function()
    it("encodes without padding", function()
      assert.equal("", crypto.base64url_encode(""))
      assert.equal("Zg", crypto.base64url_encode("f"))
      assert.equal("Zm8", crypto.base64url_encode("fo"))
      assert.equal("Zm9v", crypto.base64url_encode("foo"))
      assert.equal("Zm9vYg", crypto.base64url_encode("foob"))
      assert.equal("Zm9vYmE", crypto.base64url_encode("fooba"))
      assert.equal("Zm9vYmFy", crypto.base64url_encode("foobar"))
    end)

    it("uses '-' and '_' for the bytes that give '+' and '/'", function()
      assert.equal("-_-_", crypto.base64url_encode("\xfb\xff\xbf"))
      assert.equal("FPucA9l-", crypto.base64url_encode(unhex("14fb9c03d97e")))
      assert.equal("-_8", crypto.base64url_encode("\xfb\xff"))
      assert.equal("_w", crypto.base64url_encode("\xff"))
    end)

    it("decodes with or without padding", function()
      assert.equal("\xfb\xff\xbf", crypto.base64url_decode("-_-_"))
      assert.equal("\xfb\xff", crypto.base64url_decode("-_8"))
      assert.equal("\xfb\xff", crypto.base64url_decode("-_8="))
      assert.equal("\xff", crypto.base64url_decode("_w"))
      assert.equal("\xff", crypto.base64url_decode("_w=="))
      assert.equal("foobar", crypto.base64url_decode("Zm9vYmFy"))
    end)

    it("round-trips random data", function()
      for n = 0, 40 do
        local s = crypto.random_bytes(n)
        local e = crypto.base64url_encode(s)
        assert.is_nil(e:find("[+/=]"))
        assert.equal(s, crypto.base64url_decode(e))
      end
    end)

    it("rejects bad input with BAD_INPUT", function()
      local v, err, code = crypto.base64url_decode("+/+/")
      assert.same({ nil, "base64url_decode: invalid character at position 1", "BAD_INPUT" },
        { v, err, code })
      v, err, code = crypto.base64url_decode("abcde")
      assert.same({ nil, "base64url_decode: truncated input", "BAD_INPUT" }, { v, err, code })
      v, err, code = crypto.base64url_decode("_w=")
      assert.same({ nil, "base64url_decode: wrong amount of padding", "BAD_INPUT" }, { v, err, code })
    end)
  end)

  describe("random_bytes and uuid4", function()
    it("returns exactly n bytes", function()
      for _, n in ipairs({ 0, 1, 16, 32, 1000 }) do
        assert.equal(n, #crypto.random_bytes(n))
      end
      assert.not_equal(crypto.random_bytes(32), crypto.random_bytes(32))
    end)

    it("raises on a bad count", function()
      assert.has_error(function() crypto.random_bytes(-1) end)
      assert.has_error(function() crypto.random_bytes("x") end)
    end)

    it("makes RFC 4122 version 4 UUIDs, lowercase and unique", function()
      local seen = {}
      for _ = 1, 1000 do
        local u = crypto.uuid4()
        assert.equal(36, #u)
        assert.truthy(u:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"), u)
        assert.equal(u:lower(), u)
        assert.is_nil(seen[u])
        seen[u] = true
      end
    end)
  end)

  describe("generate_rsa", function()
    it("returns PKCS#8, PKCS#1, SPKI and certificate PEMs", function()
      local k = keys()
      assert.truthy(k.private_key:match("^%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-\n"))
      assert.truthy(k.private_key_pkcs1:match("^%-%-%-%-%-BEGIN RSA PRIVATE KEY%-%-%-%-%-\n"))
      assert.truthy(k.public_key:match("^%-%-%-%-%-BEGIN PUBLIC KEY%-%-%-%-%-\n"))
      assert.truthy(k.certificate:match("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n"))
    end)

    it("makes a self-signed 2048-bit certificate for localhost and 127.0.0.1", function()
      local k = keys()
      local cert = tmpfile(k.certificate)
      local ok, out = sh("openssl x509 -noout -subject -issuer -ext subjectAltName,basicConstraints -in " .. cert)
      assert.is_true(ok, out)
      assert.truthy(out:find("subject=CN = localhost\n", 1, true), out)
      assert.truthy(out:find("issuer=CN = localhost\n", 1, true), out)
      assert.truthy(out:find("DNS:localhost, IP Address:127.0.0.1", 1, true), out)
      assert.truthy(out:find("CA:FALSE", 1, true), out)
      ok, out = sh("openssl verify -CAfile " .. cert .. " " .. cert)
      assert.is_true(ok, out)
      assert.equal(cert .. ": OK\n", out)
      ok, out = sh("openssl x509 -noout -text -in " .. cert)
      assert.truthy(out:find("Public-Key: (2048 bit)", 1, true), out)
      assert.truthy(out:find("sha256WithRSAEncryption", 1, true), out)
    end)

    it("takes cn, san, days and bits", function()
      local k = assert(crypto.generate_rsa { bits = 1024, cn = "emulator.test", days = 2,
        san = { "DNS:emulator.test", "DNS:localhost", "IP:127.0.0.1", "IP:::1" } })
      local cert = tmpfile(k.certificate)
      local ok, out = sh("openssl x509 -noout -subject -ext subjectAltName -text -in " .. cert)
      assert.is_true(ok, out)
      assert.truthy(out:find("subject=CN = emulator.test\n", 1, true), out)
      assert.truthy(out:find("DNS:emulator.test, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1", 1, true), out)
      assert.truthy(out:find("Public-Key: (1024 bit)", 1, true), out)
      ok, out = sh("openssl x509 -noout -checkend 86400 -in " .. cert)
      assert.is_true(ok, out)
      ok, out = sh("openssl x509 -noout -checkend 259200 -in " .. cert)
      assert.is_false(ok, out)
    end)

    it("raises on bad options", function()
      assert.has_error(function() crypto.generate_rsa { bits = 512 } end)
      assert.has_error(function() crypto.generate_rsa { bits = "big" } end)
      assert.has_error(function() crypto.generate_rsa { days = 0 } end)
      assert.has_error(function() crypto.generate_rsa { cn = string.rep("x", 65) } end)
      assert.has_error(function() crypto.generate_rsa { san = { "localhost" } } end)
      assert.has_error(function() crypto.generate_rsa { san = { "IP:999.1.1.1" } } end)
      assert.has_error(function() crypto.generate_rsa { san = "DNS:x" } end)
      assert.has_error(function() crypto.generate_rsa(42) end)
    end)
  end)

  describe("RS256", function()
    local data = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ0ZXN0In0"

    it("signs with the PKCS#8 key and verifies with the public key", function()
      local k = keys()
      local sig = assert(crypto.sign_rs256(k.private_key, data))
      assert.equal(256, #sig)
      assert.is_true(crypto.verify_rs256(k.public_key, data, sig))
    end)

    it("gives the same signature with the PKCS#1 key (PKCS#1 v1.5 is deterministic)", function()
      local k = keys()
      local sig = assert(crypto.sign_rs256(k.private_key_pkcs1, data))
      assert.equal(crypto.sign_rs256(k.private_key, data), sig)
      assert.is_true(crypto.verify_rs256(k.public_key, data, sig))
    end)

    it("verifies against the certificate PEM", function()
      local k = keys()
      local sig = crypto.sign_rs256(k.private_key, data)
      assert.is_true(crypto.verify_rs256(k.certificate, data, sig))
      assert.is_false(crypto.verify_rs256(k.certificate, data .. "x", sig))
    end)

    it("rejects a tampered message and a tampered signature", function()
      local k = keys()
      local sig = crypto.sign_rs256(k.private_key, data)
      assert.is_false(crypto.verify_rs256(k.public_key, data:sub(1, -2) .. "A", sig))
      assert.is_false(crypto.verify_rs256(k.public_key, "", sig))
      local flipped = string.char(sig:byte(1) ~ 1) .. sig:sub(2)
      assert.is_false(crypto.verify_rs256(k.public_key, data, flipped))
      assert.is_false(crypto.verify_rs256(k.public_key, data, sig:sub(1, -2)))
      assert.is_false(crypto.verify_rs256(k.public_key, data, ""))
      -- a signature by another key
      local other = crypto.generate_rsa { bits = 1024 }
      assert.is_false(crypto.verify_rs256(k.public_key, data, crypto.sign_rs256(other.private_key, data)))
      -- still usable afterwards (no stale OpenSSL errors)
      assert.is_true(crypto.verify_rs256(k.public_key, data, sig))
    end)

    it("verifies a signature made by the openssl command line, and openssl verifies ours", function()
      local k = keys()
      local key, msg, sigfile = tmpfile(k.private_key), tmpfile(data), tmpfile()
      local ok, out = sh(("openssl dgst -sha256 -sign %s -out %s %s"):format(key, sigfile, msg))
      assert.is_true(ok, out)
      local sig = read_file(sigfile)
      assert.equal(256, #sig)
      assert.is_true(crypto.verify_rs256(k.public_key, data, sig))
      assert.is_true(crypto.verify_rs256(k.certificate, data, sig))
      assert.equal(sig, crypto.sign_rs256(k.private_key, data))

      local pub, oursig = tmpfile(k.public_key), tmpfile(crypto.sign_rs256(k.private_key_pkcs1, data))
      ok, out = sh(("openssl dgst -sha256 -verify %s -signature %s %s"):format(pub, oursig, msg))
      assert.is_true(ok, out)
      assert.equal("Verified OK\n", out)
    end)

    it("reads keys made by openssl genpkey and 'RSA PUBLIC KEY' PEMs", function()
      local key, key1, pub1, msg, sigfile = tmpfile(), tmpfile(), tmpfile(), tmpfile(data), tmpfile()
      local ok, out = sh(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s"
        .. " && openssl pkey -in %s -traditional -out %s"
        .. " && openssl rsa -in %s -RSAPublicKey_out -out %s"
        .. " && openssl dgst -sha256 -sign %s -out %s %s"):format(
        key, key, key1, key, pub1, key, sigfile, msg))
      assert.is_true(ok, out)
      local pkcs8, pkcs1, rsapub = read_file(key), read_file(key1), read_file(pub1)
      assert.truthy(pkcs8:find("BEGIN PRIVATE KEY", 1, true))
      assert.truthy(pkcs1:find("BEGIN RSA PRIVATE KEY", 1, true))
      assert.truthy(rsapub:find("BEGIN RSA PUBLIC KEY", 1, true))
      local sig = read_file(sigfile)
      assert.equal(sig, crypto.sign_rs256(pkcs8, data))
      assert.equal(sig, crypto.sign_rs256(pkcs1, data))
      assert.is_true(crypto.verify_rs256(rsapub, data, sig))
      assert.is_false(crypto.verify_rs256(rsapub, data .. ".", sig))
    end)

    it("returns BAD_KEY for a garbage PEM in sign and verify", function()
      local v, err, code = crypto.sign_rs256("not a key", data)
      assert.is_nil(v)
      assert.equal("BAD_KEY", code)
      assert.truthy(err:find("^sign_rs256: cannot read the private key PEM"), err)
      v, err, code = crypto.verify_rs256("not a key", data, "sig")
      assert.is_nil(v)
      assert.equal("BAD_KEY", code)
      assert.truthy(err:find("^verify_rs256: cannot read the public key PEM"), err)
      local broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
      v, err, code = crypto.verify_rs256(broken, data, "sig")
      assert.same({ nil, "BAD_KEY" }, { v, code })
      assert.truthy(err:find("^verify_rs256: cannot read the certificate PEM"), err)
      local truncated = keys().private_key:sub(1, 200)
      v, err, code = crypto.sign_rs256(truncated, data)
      assert.same({ nil, "BAD_KEY" }, { v, code })
    end)

    it("returns BAD_KEY for a key of the wrong kind", function()
      local k = keys()
      local v, _, code = crypto.sign_rs256(k.public_key, data)
      assert.same({ nil, "BAD_KEY" }, { v, code })
      local ec = tmpfile()
      local ok, out = sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. ec)
      assert.is_true(ok, out)
      local err
      v, err, code = crypto.sign_rs256(read_file(ec), data)
      assert.same({ nil, "sign_rs256: the private key is not an RSA key", "BAD_KEY" }, { v, err, code })
    end)

    it("raises on argument misuse", function()
      local k = keys()
      assert.has_error(function() crypto.sign_rs256(nil, data) end)
      assert.has_error(function() crypto.sign_rs256(k.private_key) end)
      assert.has_error(function() crypto.verify_rs256(k.public_key, data) end)
      assert.has_error(function() crypto.verify_rs256(k.public_key, data, {}) end)
    end)
  end)
end)
