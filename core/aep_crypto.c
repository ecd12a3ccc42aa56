/* aep.crypto: digests, HMAC, base64, randomness, RS256 signatures and test keys/certificates.
 * Mechanism only, on OpenSSL 3 (EVP, PEM, X509); no hand-written cryptography.
 *
 * Error tiers: argument misuse raises; a key or certificate that cannot be read returns
 * nil, msg, "BAD_KEY"; undecodable base64 returns nil, msg, "BAD_INPUT"; an unexpected OpenSSL
 * failure returns nil, msg, "CRYPTO".
 *
 * OpenSSL objects live in a "scratch" userdata marked to-be-closed, so they are freed on every
 * path: explicitly before a normal return, and by __close if anything raises in between. */
#include <limits.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <zlib.h>

#include "aep.h"

#define SCRATCH_MT "aep.crypto.Scratch"
#define MAX_SIG 2048 /* bytes: an RSA-16384 signature, OpenSSL's largest modulus */

static const char hexdigits[] = "0123456789abcdef";

/* --- scratch: every OpenSSL object a call may hold ------------------------------------------ */

typedef struct Scratch {
  EVP_PKEY *pkey;
  EVP_PKEY_CTX *pctx;
  EVP_MD_CTX *mctx;
  OSSL_DECODER_CTX *dctx;
  X509 *x509;
  X509_EXTENSION *ext;
  BIGNUM *bn;
  BIO *bio;
} Scratch;

static void scratch_release(Scratch *s) {
  EVP_PKEY_free(s->pkey);
  EVP_PKEY_CTX_free(s->pctx);
  EVP_MD_CTX_free(s->mctx);
  OSSL_DECODER_CTX_free(s->dctx);
  X509_free(s->x509);
  X509_EXTENSION_free(s->ext);
  BN_clear_free(s->bn);
  BIO_free(s->bio); /* a memory BIO clears its buffer when freed */
  memset(s, 0, sizeof *s);
}

static int scratch_gc(lua_State *L) {
  scratch_release((Scratch *)luaL_checkudata(L, 1, SCRATCH_MT));
  return 0;
}

/* Push a fresh scratch and mark it to-be-closed; must be called before any OpenSSL allocation. */
static Scratch *scratch_new(lua_State *L) {
  Scratch *s = (Scratch *)lua_newuserdatauv(L, sizeof(Scratch), 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, SCRATCH_MT);
  lua_toclose(L, -1);
  ERR_clear_error();
  return s;
}

/* Describe the most recent OpenSSL error in buf ("what (reason)") and empty the error queue. */
static const char *ossl_message(char *buf, size_t size, const char *what) {
  unsigned long e = ERR_peek_last_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  if (reason)
    snprintf(buf, size, "%s (%s)", what, reason);
  else
    snprintf(buf, size, "%s", what);
  ERR_clear_error();
  return buf;
}

/* Free everything, then push nil, "<what> (<openssl reason>)", code. */
static int scratch_fail(lua_State *L, Scratch *s, const char *what, const char *code) {
  char msg[256];
  ossl_message(msg, sizeof msg, what);
  scratch_release(s);
  return aep_fail(L, msg, code);
}

/* Keys protected by a passphrase are not supported: never prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf; (void)size; (void)rwflag; (void)u;
  return -1;
}

/* A PEM argument; BIO_new_mem_buf takes an int length. */
static const char *check_pem(lua_State *L, int arg, int *len) {
  size_t n;
  const char *pem = luaL_checklstring(L, arg, &n);
  luaL_argcheck(L, n <= INT_MAX, arg, "too large");
  *len = (int)n;
  return pem;
}

static void push_hex(lua_State *L, const unsigned char *p, size_t n) {
  char out[2 * EVP_MAX_MD_SIZE];
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = hexdigits[p[i] >> 4];
    out[2 * i + 1] = hexdigits[p[i] & 15];
  }
  lua_pushlstring(L, out, 2 * n);
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
  if (!alg) return aep_fail(L, ossl_message(msg, sizeof msg, "unknown digest"), "BAD_INPUT");
  if (!EVP_Digest(s, len, md, &mdlen, alg, NULL))
    return aep_fail(L, ossl_message(msg, sizeof msg, "digest failed"), "CRYPTO");
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
    ossl_message(msg, sizeof msg, "sha256 failed");
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
    ossl_message(msg, sizeof msg, "hmac_sha256 failed");
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
    ossl_message(msg, sizeof msg, "random_bytes failed");
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
    ossl_message(msg, sizeof msg, "uuid4 failed");
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

/* --- RS256 ----------------------------------------------------------------------------------- */

/* crypto.sign_rs256(pem_private_key, data) -> raw RSASSA-PKCS1-v1_5 SHA-256 signature
 *   | nil, msg, "BAD_KEY". Accepts PKCS#8 ("PRIVATE KEY") and PKCS#1 ("RSA PRIVATE KEY"). */
static int crypto_sign_rs256(lua_State *L) {
  const char *pem;
  size_t dlen, siglen = 0;
  const char *data;
  unsigned char sig[MAX_SIG];
  Scratch *s;
  int pemlen;
  pem = check_pem(L, 1, &pemlen);
  data = luaL_checklstring(L, 2, &dlen);
  s = scratch_new(L);

  s->bio = BIO_new_mem_buf(pem, pemlen); /* a read-only view: the PEM is never copied */
  if (!s->bio) return scratch_fail(L, s, "sign_rs256: out of memory", "CRYPTO");
  s->pkey = PEM_read_bio_PrivateKey(s->bio, NULL, no_passphrase, NULL);
  if (!s->pkey) return scratch_fail(L, s, "sign_rs256: cannot read the private key PEM", "BAD_KEY");
  if (!EVP_PKEY_is_a(s->pkey, "RSA"))
    return scratch_fail(L, s, "sign_rs256: the private key is not an RSA key", "BAD_KEY");
  if (EVP_PKEY_get_size(s->pkey) > MAX_SIG)
    return scratch_fail(L, s, "sign_rs256: the RSA key is too large", "BAD_KEY");

  s->mctx = EVP_MD_CTX_new();
  if (!s->mctx || EVP_DigestSignInit(s->mctx, NULL, EVP_sha256(), NULL, s->pkey) != 1)
    return scratch_fail(L, s, "sign_rs256: cannot use the private key", "BAD_KEY");
  siglen = sizeof sig;
  if (EVP_DigestSign(s->mctx, sig, &siglen, (const unsigned char *)data, dlen) != 1)
    return scratch_fail(L, s, "sign_rs256: signing failed", "CRYPTO");
  scratch_release(s);
  lua_pushlstring(L, (const char *)sig, siglen);
  return 1;
}

static int has_marker(const char *pem, const char *label) {
  char marker[64];
  snprintf(marker, sizeof marker, "-----BEGIN %s-----", label);
  return strstr(pem, marker) != NULL;
}

/* crypto.verify_rs256(pem, data, signature) -> boolean | nil, msg, "BAD_KEY"
 * pem: "PUBLIC KEY" (SPKI), "RSA PUBLIC KEY" (PKCS#1) or "CERTIFICATE" (the key it certifies). */
static int crypto_verify_rs256(lua_State *L) {
  const char *pem, *data, *sig;
  size_t dlen, siglen;
  Scratch *s;
  int rc, pemlen;
  pem = check_pem(L, 1, &pemlen);
  data = luaL_checklstring(L, 2, &dlen);
  sig = luaL_checklstring(L, 3, &siglen);
  s = scratch_new(L);

  s->bio = BIO_new_mem_buf(pem, pemlen);
  if (!s->bio) return scratch_fail(L, s, "verify_rs256: out of memory", "CRYPTO");
  if (has_marker(pem, "CERTIFICATE") || has_marker(pem, "X509 CERTIFICATE") ||
      has_marker(pem, "TRUSTED CERTIFICATE")) {
    s->x509 = PEM_read_bio_X509_AUX(s->bio, NULL, no_passphrase, NULL);
    if (!s->x509) return scratch_fail(L, s, "verify_rs256: cannot read the certificate PEM", "BAD_KEY");
    s->pkey = X509_get_pubkey(s->x509);
    if (!s->pkey)
      return scratch_fail(L, s, "verify_rs256: cannot read the certificate's public key", "BAD_KEY");
  } else {
    /* The decoder reads both SubjectPublicKeyInfo ("PUBLIC KEY") and PKCS#1 ("RSA PUBLIC KEY"). */
    s->dctx = OSSL_DECODER_CTX_new_for_pkey(&s->pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY,
                                            NULL, NULL);
    if (!s->dctx) return scratch_fail(L, s, "verify_rs256: cannot create a key decoder", "CRYPTO");
    if (OSSL_DECODER_from_bio(s->dctx, s->bio) != 1 || !s->pkey)
      return scratch_fail(L, s, "verify_rs256: cannot read the public key PEM", "BAD_KEY");
  }
  if (!EVP_PKEY_is_a(s->pkey, "RSA"))
    return scratch_fail(L, s, "verify_rs256: the public key is not an RSA key", "BAD_KEY");

  s->mctx = EVP_MD_CTX_new();
  if (!s->mctx || EVP_DigestVerifyInit(s->mctx, NULL, EVP_sha256(), NULL, s->pkey) != 1)
    return scratch_fail(L, s, "verify_rs256: cannot use the public key", "BAD_KEY");
  rc = EVP_DigestVerify(s->mctx, (const unsigned char *)sig, siglen, (const unsigned char *)data,
                        dlen);
  ERR_clear_error(); /* a bad signature leaves errors queued */
  scratch_release(s);
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* --- generate_rsa ---------------------------------------------------------------------------- */

/* Move the memory BIO's contents into field k of the table at index t, then free the BIO. */
static void move_bio_to_field(lua_State *L, Scratch *s, int t, const char *k) {
  char *p = NULL;
  long n = BIO_get_mem_data(s->bio, &p);
  lua_pushlstring(L, p ? p : "", n > 0 ? (size_t)n : 0);
  lua_setfield(L, t, k);
  BIO_free(s->bio);
  s->bio = NULL;
}

static int add_ext(Scratch *s, X509V3_CTX *ctx, int nid, const char *value) {
  int ok;
  s->ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
  if (!s->ext) return 0;
  ok = X509_add_ext(s->x509, s->ext, -1);
  X509_EXTENSION_free(s->ext);
  s->ext = NULL;
  return ok;
}

/* Push opts.san (array of "DNS:name" / "IP:addr" / "email:x" / "URI:x") joined with commas,
 * the form OpenSSL's subjectAltName parser takes ("" for an empty array). */
static void push_san(lua_State *L, int opts) {
  static const char *const prefixes[] = {"DNS:", "IP:", "email:", "URI:", NULL};
  luaL_Buffer b;
  lua_Integer i, n;
  int san;
  lua_getfield(L, opts, "san");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "DNS:localhost,IP:127.0.0.1");
    return;
  }
  luaL_argcheck(L, lua_istable(L, -1), opts, "san must be an array of strings");
  san = lua_gettop(L);
  n = (lua_Integer)lua_rawlen(L, san);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    const char *e;
    int k, ok = 0;
    lua_rawgeti(L, san, i);
    e = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (k = 0; e && prefixes[k]; k++)
      if (strncmp(e, prefixes[k], strlen(prefixes[k])) == 0 && e[strlen(prefixes[k])]) ok = 1;
    if (!ok || strchr(e, ','))
      luaL_argerror(L, opts, "san entries must look like \"DNS:name\" or \"IP:address\"");
    if (i > 1) luaL_addchar(&b, ',');
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_remove(L, san);
}

/* crypto.generate_rsa{bits=2048, cn="localhost", days=3650, san={"DNS:localhost","IP:127.0.0.1"}}
 *   -> {private_key = PKCS#8 PEM, private_key_pkcs1 = PEM, public_key = SPKI PEM,
 *       certificate = self-signed X.509 v3 PEM (TLS server certificate for the SAN names)} */
static int crypto_generate_rsa(lua_State *L) {
  lua_Integer bits, days;
  const char *cn, *san;
  size_t cnlen;
  int t;
  Scratch *s;
  X509V3_CTX v3;
  X509_NAME *name;
  unsigned char serial[16];

  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  bits = aep_opt_int_field(L, 1, "bits", 2048);
  luaL_argcheck(L, bits >= 1024 && bits <= 16384, 1, "bits must be between 1024 and 16384");
  days = aep_opt_int_field(L, 1, "days", 3650);
  luaL_argcheck(L, days >= 1 && days <= 365000, 1, "days must be between 1 and 365000");
  lua_getfield(L, 1, "cn"); /* index 2 */
  if (lua_isnil(L, 2)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "localhost");
  }
  luaL_argcheck(L, lua_type(L, 2) == LUA_TSTRING, 1, "cn must be a string");
  cn = lua_tolstring(L, 2, &cnlen);
  luaL_argcheck(L, cnlen >= 1 && cnlen <= 64 && strlen(cn) == cnlen, 1,
                "cn must be 1 to 64 characters");
  push_san(L, 1); /* index 3 */
  san = lua_tostring(L, 3);
  lua_newtable(L); /* index 4: the result */
  t = 4;
  s = scratch_new(L);

  /* The key */
  s->pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  if (!s->pctx || EVP_PKEY_keygen_init(s->pctx) != 1 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(s->pctx, (int)bits) != 1 ||
      EVP_PKEY_generate(s->pctx, &s->pkey) != 1)
    return scratch_fail(L, s, "generate_rsa: key generation failed", "CRYPTO");

  /* The self-signed certificate */
  s->x509 = X509_new();
  s->bn = BN_new();
  if (!s->x509 || !s->bn || RAND_bytes(serial, sizeof serial) != 1)
    return scratch_fail(L, s, "generate_rsa: out of memory", "CRYPTO");
  serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40); /* positive, 16 significant bytes */
  if (!BN_bin2bn(serial, sizeof serial, s->bn) ||
      !BN_to_ASN1_INTEGER(s->bn, X509_get_serialNumber(s->x509)) ||
      !X509_set_version(s->x509, X509_VERSION_3) ||
      !X509_gmtime_adj(X509_getm_notBefore(s->x509), -300) || /* tolerate a little clock skew */
      !X509_time_adj_ex(X509_getm_notAfter(s->x509), (int)days, 0, NULL) ||
      !X509_set_pubkey(s->x509, s->pkey))
    return scratch_fail(L, s, "generate_rsa: cannot build the certificate", "CRYPTO");
  name = X509_get_subject_name(s->x509);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                  (int)cnlen, -1, 0) ||
      !X509_set_issuer_name(s->x509, name))
    return scratch_fail(L, s, "generate_rsa: bad cn", "CRYPTO");
  X509V3_set_ctx(&v3, s->x509, s->x509, NULL, NULL, 0);
  if (!add_ext(s, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
      !add_ext(s, &v3, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
      !add_ext(s, &v3, NID_ext_key_usage, "serverAuth,clientAuth") ||
      !add_ext(s, &v3, NID_subject_key_identifier, "hash") ||
      !add_ext(s, &v3, NID_authority_key_identifier, "keyid:always"))
    return scratch_fail(L, s, "generate_rsa: cannot add certificate extensions", "CRYPTO");
  if (*san && !add_ext(s, &v3, NID_subject_alt_name, san)) {
    char msg[256];
    ossl_message(msg, sizeof msg, "bad san entry");
    scratch_release(s);
    return luaL_argerror(L, 1, lua_pushstring(L, msg));
  }
  if (X509_sign(s->x509, s->pkey, EVP_sha256()) <= 0)
    return scratch_fail(L, s, "generate_rsa: cannot sign the certificate", "CRYPTO");

  /* The PEMs */
  if (!(s->bio = BIO_new(BIO_s_mem())) ||
      !PEM_write_bio_PrivateKey(s->bio, s->pkey, NULL, NULL, 0, NULL, NULL))
    return scratch_fail(L, s, "generate_rsa: cannot write the private key", "CRYPTO");
  move_bio_to_field(L, s, t, "private_key");
  if (!(s->bio = BIO_new(BIO_s_mem())) ||
      !PEM_write_bio_PrivateKey_traditional(s->bio, s->pkey, NULL, NULL, 0, NULL, NULL))
    return scratch_fail(L, s, "generate_rsa: cannot write the PKCS#1 private key", "CRYPTO");
  move_bio_to_field(L, s, t, "private_key_pkcs1");
  if (!(s->bio = BIO_new(BIO_s_mem())) || !PEM_write_bio_PUBKEY(s->bio, s->pkey))
    return scratch_fail(L, s, "generate_rsa: cannot write the public key", "CRYPTO");
  move_bio_to_field(L, s, t, "public_key");
  if (!(s->bio = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509(s->bio, s->x509))
    return scratch_fail(L, s, "generate_rsa: cannot write the certificate", "CRYPTO");
  move_bio_to_field(L, s, t, "certificate");
  scratch_release(s);
  lua_pushvalue(L, t);
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
  if (luaL_newmetatable(L, SCRATCH_MT)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, crypto_funcs);
  return 1;
}
