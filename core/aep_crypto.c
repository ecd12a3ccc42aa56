/* aep.crypto: digests, HMAC, base64, randomness, RS256 signatures and test keys/certificates.
 * Mechanism only, on OpenSSL 3 (EVP, PEM, X509); no hand-written cryptography.
 *
 * Error tiers: argument misuse raises; a key or certificate that cannot be read returns
 * nil, msg, "BAD_KEY"; undecodable base64 returns nil, msg, "BAD_INPUT"; an unexpected OpenSSL
 * failure returns nil, msg, "CRYPTO".
 *
 * This file: digests, HMAC, base64, randomness. core/crypto_rsa.c: RS256 and generate_rsa. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <zlib.h>

#include "crypto_rsa.h"

static const char hexdigits[] = "0123456789abcdef";

static void push_hex(lua_State *L, const unsigned char *p, size_t n) {
  char out[2 * EVP_MAX_MD_SIZE];
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = hexdigits[p[i] >> 4];
    out[2 * i + 1] = hexdigits[p[i] & 15];
  }
  lua_pushlstring(L, out, 2 * n);
}

/* Describe the most recent OpenSSL error in buf ("what (reason)") and empty the error queue. */
const char *crypto_ossl_message(char *buf, size_t size, const char *what) {
  unsigned long e = ERR_peek_last_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  if (reason)
    snprintf(buf, size, "%s (%s)", what, reason);
  else
    snprintf(buf, size, "%s", what);
  ERR_clear_error();
  return buf;
}

/* --- digests and HMAC ------------------------------------------------------------------------ */

/* crypto.digest_hex(name, s) -> hex digest | nil, msg, "BAD_INPUT" (a name OpenSSL lacks) */
static int crypto_digest_hex(lua_State *L) {
  size_t len;
  const char *name = luaL_checkstring(L, 1), *s = luaL_checklstring(L, 2, &len);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char msg[256];
  const EVP_MD *alg = EVP_get_digestbyname(name); /* no fetch: cheap enough to call per record */
  if (!alg) return aep_fail(L, crypto_ossl_message(msg, sizeof msg, "unknown digest"), "BAD_INPUT");
  if (!EVP_Digest(s, len, md, &mdlen, alg, NULL))
    return aep_fail(L, crypto_ossl_message(msg, sizeof msg, "digest failed"), "CRYPTO");
  push_hex(L, md, mdlen);
  return 1;
}
/* crypto.crc32(s) -> integer: zlib's CRC-32, the same as java.util.zip.CRC32 */
static int crypto_crc32(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len <= UINT_MAX, 1, "too large"); /* zlib takes a uInt length */
  lua_pushinteger(L, (lua_Integer)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)s, (uInt)len));
  return 1;
}

static int sha256_raw(lua_State *L, unsigned char *md) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  unsigned int mdlen = 0;
  if (!EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL)) {
    char msg[256];
    crypto_ossl_message(msg, sizeof msg, "sha256 failed");
    return -aep_fail(L, msg, "CRYPTO");
  }
  return (int)mdlen;
}

/* crypto.sha256(s) -> 32-byte raw digest */
static int crypto_sha256(lua_State *L) {
  unsigned char md[EVP_MAX_MD_SIZE];
  int n = sha256_raw(L, md);
  if (n < 0) return -n;
  lua_pushlstring(L, (const char *)md, (size_t)n);
  return 1;
}

/* crypto.sha256_hex(s) -> 64 lowercase hex digits */
static int crypto_sha256_hex(lua_State *L) {
  unsigned char md[EVP_MAX_MD_SIZE];
  int n = sha256_raw(L, md);
  if (n < 0) return -n;
  push_hex(L, md, (size_t)n);
  return 1;
}

static int hmac_raw(lua_State *L, unsigned char *md) {
  size_t klen, dlen;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *data = luaL_checklstring(L, 2, &dlen);
  unsigned int mdlen = 0;
  luaL_argcheck(L, klen <= INT_MAX, 1, "key too large");
  ERR_clear_error();
  if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, dlen, md, &mdlen)) {
    char msg[256];
    crypto_ossl_message(msg, sizeof msg, "hmac_sha256 failed");
    return -aep_fail(L, msg, "CRYPTO");
  }
  return (int)mdlen;
}

/* crypto.hmac_sha256(key, data) -> 32-byte raw MAC */
static int crypto_hmac_sha256(lua_State *L) {
  unsigned char md[EVP_MAX_MD_SIZE];
  int n = hmac_raw(L, md);
  if (n < 0) return -n;
  lua_pushlstring(L, (const char *)md, (size_t)n);
  return 1;
}

/* crypto.hmac_sha256_hex(key, data) -> 64 lowercase hex digits */
static int crypto_hmac_sha256_hex(lua_State *L) {
  unsigned char md[EVP_MAX_MD_SIZE];
  int n = hmac_raw(L, md);
  if (n < 0) return -n;
  push_hex(L, md, (size_t)n);
  return 1;
}

/* --- base64 (RFC 4648 §4) and base64url (§5) ------------------------------------------------- */

#define B64_IN_CHUNK 3072 /* input bytes per EVP_EncodeBlock call: a multiple of 3 */
#define B64_QUADS 1024    /* 4-character groups per EVP_DecodeBlock call */

static int base64_encode(lua_State *L, int url) {
  size_t len, off = 0;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (off < len) {
    size_t n = len - off < B64_IN_CHUNK ? len - off : B64_IN_CHUNK;
    char *out = luaL_prepbuffsize(&b, 4 * (B64_IN_CHUNK / 3) + 1);
    int w = EVP_EncodeBlock((unsigned char *)out, s + off, (int)n), i;
    if (url) {
      for (i = 0; i < w; i++) {
        if (out[i] == '+') out[i] = '-';
        else if (out[i] == '/') out[i] = '_';
      }
      while (w > 0 && out[w - 1] == '=') w--;
    }
    luaL_addsize(&b, (size_t)w);
    off += n;
  }
  luaL_pushresult(&b);
  return 1;
}

/* Map an alphabet character to the standard alphabet, or 0 if it is not in the alphabet. */
static char b64_std_char(unsigned char c, int url) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return (char)c;
  if (url) return c == '-' ? '+' : c == '_' ? '/' : 0;
  return (c == '+' || c == '/') ? (char)c : 0;
}

static int base64_decode(lua_State *L, int url) {
  size_t len, m, pad = 0, full, i, off;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *name = url ? "base64url_decode" : "base64_decode";
  char quad[4 * B64_QUADS + 1];
  luaL_Buffer b;

  while (pad < 2 && pad < len && s[len - 1 - pad] == '=') pad++;
  m = len - pad;
  for (i = 0; i < m; i++) {
    if (!b64_std_char((unsigned char)s[i], url))
      return aep_fail(L, lua_pushfstring(L, "%s: %s at position %d", name,
                                         s[i] == '=' ? "misplaced padding" : "invalid character",
                                         (int)(i + 1)), "BAD_INPUT");
  }
  if (pad > 0 && len % 4 != 0)
    return aep_fail(L, lua_pushfstring(L, "%s: wrong amount of padding", name), "BAD_INPUT");
  if (m % 4 == 1)
    return aep_fail(L, lua_pushfstring(L, "%s: truncated input", name), "BAD_INPUT");

  luaL_buffinit(L, &b);
  full = m - m % 4;
  for (off = 0; off < m; off += 4 * B64_QUADS) {
    size_t n = m - off < 4 * B64_QUADS ? m - off : 4 * B64_QUADS, keep;
    char *out;
    int w;
    for (i = 0; i < n; i++) quad[i] = b64_std_char((unsigned char)s[off + i], url);
    keep = n / 4 * 3;
    if (off + n > full) { /* the last, unpadded group: pad it for OpenSSL, keep its bytes only */
      size_t r = (off + n) - full;
      keep += r - 1;
      for (; r < 4; r++) quad[n++] = '=';
    }
    out = luaL_prepbuffsize(&b, 3 * B64_QUADS);
    w = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)quad, (int)n);
    if (w < 0 || (size_t)w < keep) /* cannot happen after the checks above */
      return aep_fail(L, lua_pushfstring(L, "%s: invalid input", name), "BAD_INPUT");
    luaL_addsize(&b, keep);
  }
  luaL_pushresult(&b);
  return 1;
}

/* crypto.base64_encode(s) -> padded base64 (RFC 4648 §4), no line breaks */
static int crypto_base64_encode(lua_State *L) { return base64_encode(L, 0); }
/* crypto.base64_decode(s) -> bytes | nil, msg, "BAD_INPUT" (padding optional) */
static int crypto_base64_decode(lua_State *L) { return base64_decode(L, 0); }
/* crypto.base64url_encode(s) -> base64url (RFC 4648 §5) without padding */
static int crypto_base64url_encode(lua_State *L) { return base64_encode(L, 1); }
/* crypto.base64url_decode(s) -> bytes | nil, msg, "BAD_INPUT" (padding optional) */
static int crypto_base64url_decode(lua_State *L) { return base64_decode(L, 1); }

/* --- randomness ------------------------------------------------------------------------------ */

/* crypto.random_bytes(n) -> n bytes from OpenSSL's CSPRNG */
static int crypto_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_Buffer b;
  char *p;
  luaL_argcheck(L, n >= 0 && n <= INT_MAX, 1, "must be between 0 and 2^31-1");
  p = luaL_buffinitsize(L, &b, (size_t)n);
  ERR_clear_error();
  if (n > 0 && RAND_bytes((unsigned char *)p, (int)n) != 1) {
    char msg[256];
    crypto_ossl_message(msg, sizeof msg, "random_bytes failed");
    return aep_fail(L, msg, "CRYPTO");
  }
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/* crypto.uuid4() -> "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (RFC 4122 version 4, lowercase) */
static int crypto_uuid4(lua_State *L) {
  unsigned char r[16];
  char out[36];
  int i, o = 0;
  ERR_clear_error();
  if (RAND_bytes(r, sizeof r) != 1) {
    char msg[256];
    crypto_ossl_message(msg, sizeof msg, "uuid4 failed");
    return aep_fail(L, msg, "CRYPTO");
  }
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* variant 10xx */
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hexdigits[r[i] >> 4];
    out[o++] = hexdigits[r[i] & 15];
  }
  lua_pushlstring(L, out, sizeof out);
  return 1;
}

static const luaL_Reg crypto_funcs[] = {
  {"sha256", crypto_sha256},
  {"sha256_hex", crypto_sha256_hex},
  {"hmac_sha256", crypto_hmac_sha256},
  {"digest_hex", crypto_digest_hex},
  {"crc32", crypto_crc32},
  {"hmac_sha256_hex", crypto_hmac_sha256_hex},
  {"base64_encode", crypto_base64_encode},
  {"base64_decode", crypto_base64_decode},
  {"base64url_encode", crypto_base64url_encode},
  {"base64url_decode", crypto_base64url_decode},
  {"random_bytes", crypto_random_bytes},
  {"uuid4", crypto_uuid4},
  {"sign_rs256", crypto_sign_rs256},
  {"verify_rs256", crypto_verify_rs256},
  {"generate_rsa", crypto_generate_rsa},
  {NULL, NULL}
};

int luaopen_aep_crypto(lua_State *L) {
  crypto_rsa_type(L);
  luaL_newlib(L, crypto_funcs);
  return 1;
}
