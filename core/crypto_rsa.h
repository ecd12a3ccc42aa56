/* What core/aep_crypto.c and core/crypto_rsa.c (the RSA part of aep.crypto) share. */
#ifndef AEP_CRYPTO_RSA_H
#define AEP_CRYPTO_RSA_H

#include <stddef.h>

#include "aep.h"

/* Describe the most recent OpenSSL error in buf ("what (reason)") and empty the error queue. */
const char *crypto_ossl_message(char *buf, size_t size, const char *what);

/* crypto.sign_rs256, crypto.verify_rs256, crypto.generate_rsa (core/crypto_rsa.c) */
int crypto_sign_rs256(lua_State *L);
int crypto_verify_rs256(lua_State *L);
int crypto_generate_rsa(lua_State *L);
/* The metatable of the scratch userdata those use. */
void crypto_rsa_type(lua_State *L);

#endif
