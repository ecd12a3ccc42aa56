-- Regenerate the seed corpora in tests/fuzz/corpus/<target>/ and tests/fuzz/keys/jwt_cert.pem.
--   build/aep tests/fuzz/make_corpus.lua        (from the repository root)
-- Seeds are small, valid-looking inputs for each target: the fuzzer starts from them. The JWT
-- seeds are signed by a key made here and then dropped; only its certificate is kept.
local crypto = require "aep.crypto"
local json = require "aep.json"

local ROOT = "tests/fuzz"
local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end
local function seeds(target, list)
  local dir = ROOT .. "/corpus/" .. target
  os.execute("rm -rf '" .. dir .. "' && mkdir -p '" .. dir .. "'")
  local names = {}
  for name in pairs(list) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do write(dir .. "/" .. name, list[name]) end
  print(("%-14s %d seeds"):format(target, #names))
end
local function gzip(data)
  write("/tmp/aep-corpus.tmp", data)
  local p = assert(io.popen("gzip -c -n /tmp/aep-corpus.tmp"))
  local out = p:read("a")
  p:close()
  os.remove("/tmp/aep-corpus.tmp")
  return out
end

-- base64 ---------------------------------------------------------------------------------------
local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
local all = table.concat(bytes)
seeds("base64", {
  empty = "", foo = "Zm9v", foob_padded = "Zm9vYg==", foob_bare = "Zm9vYg", url = "-_-_AA",
  bad_pad = "a===", misplaced = "ab=c", bad_char = "Zm9v!", all_bytes = crypto.base64_encode(all),
  all_bytes_url = crypto.base64url_encode(all), long = crypto.base64_encode(string.rep(all, 24)),
  truncated = "Zm9vY",
})

-- regex -----------------------------------------------------------------------------------------
seeds("regex", {
  email = "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$\0jdoe@example.com",
  lookaround = "(?<=a)b(?!c)\0abd",
  backref = "(\\w+) \\1\0hello hello",
  catastrophic = "^(a+)+$\0" .. string.rep("a", 40) .. "!",
  java_posix = "\\p{Alpha}+\\P{Digit}\0abc!",
  unicode = "\\u00e9+\0\195\169\195\169",
  bad_utf8 = "a.b\0a\255b",
  bad_pattern = "(a\0a",
  class_union = "[a-z&&[^aeiou]]\0b",
  no_nul = "[0-9]{3}-[0-9]{4}",
})

-- pem ------------------------------------------------------------------------------------------
local keys = assert(crypto.generate_rsa { bits = 1024, cn = "fuzz", days = 36500 })
local function der(pem)
  local body = pem:match("%-%-%-%-%-BEGIN [^-]+%-%-%-%-%-\n(.-)%-%-%-%-%-END")
  return assert(crypto.base64_decode((body:gsub("%s", ""))))
end
-- mode byte: 0 sign(PEM), 1 verify(PEM), 2 + 4*label: DER wrapped (labels in fuzz_pem.lua), 3 both
seeds("pem", {
  sign_pkcs8 = "\0" .. keys.private_key, sign_pkcs1 = "\0" .. keys.private_key_pkcs1,
  verify_spki = "\1" .. keys.public_key, verify_cert = "\1" .. keys.certificate,
  both_cert = "\3" .. keys.certificate, both_pkcs8 = "\3" .. keys.private_key,
  der_pkcs8 = string.char(2 + 4 * 0) .. der(keys.private_key),
  der_pkcs1 = string.char(2 + 4 * 1) .. der(keys.private_key_pkcs1),
  der_spki = string.char(2 + 4 * 2) .. der(keys.public_key),
  der_cert = string.char(2 + 4 * 4) .. der(keys.certificate),
  garbage = "\1-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
})

-- jwt ------------------------------------------------------------------------------------------
-- Must match fuzz_jwt.lua's org and clock.
local NOW = 1767225600
local ORG = "0123456789ABCDEF01234567@AdobeOrg"
local CLIENT = "0123456789abcdef0123456789abcdef"
local SECRET = "p8e-fuzz-client-secret-0123456789"
local TECH = "89ABCDEF0123456789ABCDEF@techacct.adobe.com"
local IMS = "ims-na1.adobelogin.com"
local org_keys = assert(crypto.generate_rsa { bits = 1024, cn = "aep-emulator", days = 36500 })
os.execute("mkdir -p " .. ROOT .. "/keys")
write(ROOT .. "/keys/jwt_cert.pem", org_keys.certificate)
local function b64j(s) return crypto.base64url_encode(s) end
local function jwt(header, claims, key)
  local input = b64j(header) .. "." .. b64j(claims)
  return input .. "." .. crypto.base64url_encode(assert(crypto.sign_rs256(key or org_keys.private_key, input)))
end
local good_claims = ('{"exp":%d,"iss":"%s","sub":"%s","aud":"https://%s/c/%s","https://%s/s/ent_dataservices_sdk":true}')
  :format(NOW + 300, ORG, TECH, IMS, CLIENT, IMS)
local good = jwt('{"alg":"RS256"}', good_claims)
local function form(t) return "client_id=" .. CLIENT .. "&client_secret=" .. SECRET .. "&jwt_token=" .. t end
seeds("jwt", {
  good = "\0" .. good,
  expired = "\0" .. jwt('{"alg":"RS256"}', (good_claims:gsub('"exp":%d+', '"exp":' .. (NOW - 10)))),
  far_exp = "\0" .. jwt('{"alg":"RS256"}', (good_claims:gsub('"exp":%d+', '"exp":' .. (NOW + 999999)))),
  exp_float = "\0" .. jwt('{"alg":"RS256"}', (good_claims:gsub('"exp":%d+', '"exp":' .. (NOW + 100) .. ".5"))),
  wrong_iss = "\0" .. jwt('{"alg":"RS256"}', (good_claims:gsub("@AdobeOrg", "@OtherOrg"))),
  no_scope = "\0" .. jwt('{"alg":"RS256"}', ('{"exp":%d,"iss":"%s","sub":"%s","aud":"https://%s/c/%s"}'):format(NOW + 300, ORG, TECH, IMS, CLIENT)),
  alg_none = "\0" .. b64j('{"alg":"none"}') .. "." .. b64j(good_claims) .. ".",
  other_key = "\0" .. jwt('{"alg":"RS256"}', good_claims, keys.private_key),
  bad_sig = "\0" .. good:sub(1, -5) .. "AAAA",
  form = "\1" .. form(good),
  form_no_secret = "\1client_id=" .. CLIENT .. "&jwt_token=" .. good,
  multipart = "\3--XyZzy\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n" .. CLIENT ..
    "\r\n--XyZzy\r\nContent-Disposition: form-data; name=\"client_secret\"\r\n\r\n" .. SECRET ..
    "\r\n--XyZzy\r\nContent-Disposition: form-data; name=\"jwt_token\"\r\n\r\n" .. good .. "\r\n--XyZzy--\r\n",
})

-- http_headers ---------------------------------------------------------------------------------
-- byte 1: max_body index (0, 1, 100, 64 MB) + 4 * (prepend a status line)
seeds("http_headers", {
  json = "\3HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: abc\r\nContent-Length: 2\r\n\r\n{}",
  repeated = "\3HTTP/1.1 207 Multi-Status\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nVary:   Accept  \t\r\n\r\n[]",
  interim = "\3HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /x\r\n\r\n",
  no_status = "\7Content-Type: text/plain\nEmpty:\n:novalue\nnocolon\n\nbody",
  too_large = "\2HTTP/1.1 200 OK\r\n\r\n" .. string.rep("x", 101),
  folded = "\3HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nRetry-After: 1\r\n\r\n",
  http2 = "\3HTTP/2 429 \r\nretry-after: 3\r\ncontent-type: application/problem+json\r\n\r\n{\"title\":\"x\"}",
})

-- lines ----------------------------------------------------------------------------------------
-- byte 1: bit 0 gzip, bits 1-2 method (0 line, 1 array_item, 2 read, 3 mix), bits 3-5 max_record
local jsonl = '{"id":1,"email":"a@example.com"}\n{"id":2,"name":"B\\u00e9"}\r\n\n{"id":3}'
local arr = '\239\187\191[ {"id":1,"tags":["a","b"]} ,\n {"id":2,"s":"x]\\"}"}, 3, "str", [1,[2]], null ]'
local function L(gz, method, limit_index) return string.char((gz and 1 or 0) + 2 * method + 8 * limit_index) end
seeds("lines", {
  jsonl = L(false, 0, 6) .. jsonl,
  jsonl_small_limit = L(false, 0, 1) .. jsonl,
  jsonl_gzip = L(true, 0, 6) .. jsonl,
  jsonl_gzip_file = L(false, 0, 6) .. gzip(jsonl),
  array = L(false, 1, 6) .. arr,
  array_gzip = L(true, 1, 6) .. arr,
  array_small = L(false, 1, 2) .. arr,
  array_bad = L(false, 1, 6) .. '[{"a":1]}',
  read = L(false, 2, 6) .. jsonl,
  mix = L(false, 3, 3) .. arr .. "\n" .. jsonl,
  long_line = L(false, 0, 4) .. string.rep("x", 5000) .. "\nshort\n",
})

-- server ---------------------------------------------------------------------------------------
local function post(path, body, extra)
  return "POST " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" ..
    (extra or "") .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
end
seeds("server", {
  get = "GET /a/b%20c?x=1&y=%2F&x=2&flag HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nX-Echo: hi\r\n\r\n",
  post = post("/collection/abc?syncValidation=true", '{"header":{},"body":{}}'),
  chunked = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  pipelined = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2?mode=delay HTTP/1.1\r\nHost: h\r\n\r\n" .. post("/3", "abc"),
  too_large = post("/big", string.rep("x", 5000)),
  chunked_large = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" .. string.rep("y", 4096) .. "\r\n10\r\n" .. string.rep("z", 16) .. "\r\n0\r\n\r\n",
  modes = "GET /?mode=drop-after HTTP/1.1\r\nHost: h\r\n\r\nGET /?mode=error HTTP/1.1\r\nHost: h\r\n\r\nGET /?mode=table&status=404 HTTP/1.1\r\nHost: h\r\n\r\nGET /?mode=bad&status=x HTTP/1.1\r\nHost: h\r\n\r\n",
  drop_before = "GET /?mode=drop-before HTTP/1.1\r\nHost: h\r\n\r\n",
  http10 = "GET /old HTTP/1.0\r\n\r\n",
  absolute = "GET http://127.0.0.1/abs?q=%zz HTTP/1.1\r\nHost: h\r\nX-Type: text/plain\r\n\r\n",
  bad_status = "GET /?status=99 HTTP/1.1\r\nHost: h\r\n\r\nGET /?status=1000 HTTP/1.1\r\nHost: h\r\n\r\n",
  garbage = "\0\1\2 GARBAGE\r\n\r\n",
  expect = post("/e", "12345", "Expect: 100-continue\r\n"),
})
