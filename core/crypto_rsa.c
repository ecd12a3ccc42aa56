/* aep.crypto's RSA part (core/aep_crypto.c has the rest): RS256 signatures over PEM keys and
 * certificates, and test keys with self-signed certificates. OpenSSL 3 (EVP, PEM, X509) only.
 *
 * OpenSSL objects live in a "scratch" userdata marked to-be-closed, so they are freed on every
 * path: explicitly before a normal return, and by __close if anything raises in between. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto_rsa.h"

#define SCRATCH_MT "aep.crypto.Scratch"
#define MAX_SIG 2048 /* bytes: an RSA-16384 signature, OpenSSL's largest modulus */

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

/* Free everything, then push nil, "<what> (<openssl reason>)", code. */
static int scratch_fail(lua_State *L, Scratch *s, const char *what, const char *code) {
  char msg[256];
  crypto_ossl_message(msg, sizeof msg, what);
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

/* --- RS256 ----------------------------------------------------------------------------------- */

/* crypto.sign_rs256(pem_private_key, data) -> raw RSASSA-PKCS1-v1_5 SHA-256 signature
 *   | nil, msg, "BAD_KEY". Accepts PKCS#8 ("PRIVATE KEY") and PKCS#1 ("RSA PRIVATE KEY"). */
int crypto_sign_rs256(lua_State *L) {
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
int crypto_verify_rs256(lua_State *L) {
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
int crypto_generate_rsa(lua_State *L) {
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
    crypto_ossl_message(msg, sizeof msg, "bad san entry");
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

void crypto_rsa_type(lua_State *L) { aep_new_type(L, SCRATCH_MT, NULL, scratch_gc, NULL); }
