/* Transfers for aep.http, shared by core/aep_http.c and core/http_xfer.c (and the http_headers
 * fuzz target): request specs parsed from Lua tables, easy handles, curl callbacks that fill C
 * buffers only, and the finished transfer as a Lua response or nil, msg, code. */
#ifndef AEP_HTTP_XFER_H
#define AEP_HTTP_XFER_H

#include <stddef.h>

#include <curl/curl.h>

#include "aep.h"

#define DEFAULT_MAX_BODY ((lua_Integer)64 * 1024 * 1024)
#define KEEP_BUF 65536 /* buffer capacity kept between transfers */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

/* A request, parsed from its Lua table: everything curl needs, no Lua. */
typedef struct {
  char *url, *method, *cainfo; /* owned */
  struct curl_slist *headers;  /* owned */
  const char *body;            /* points into a Lua string kept alive by the caller */
  size_t body_len;
  int has_body, insecure;
  long timeout_ms, connect_timeout_ms;
  curl_off_t max_body;
  int body_ref, ctx_ref; /* refs in the pool's uservalue table (pool only) */
} spec_t;

typedef struct {
  double timeout, connect_timeout;
  const char *cainfo;
  int insecure;
  lua_Integer max_body;
} defaults_t;

/* One easy handle and its buffers. */
typedef struct {
  CURL *easy;
  spec_t spec;
  buf_t body, hdrs;
  int too_large, oom, abort_on_interrupt, busy;
  int sent, resend_counted; /* see on_prereq */
  int resent;               /* times curl sent (or tried to send) the request again by itself */
  char errbuf[CURL_ERROR_SIZE];
} xfer_t;

/* A spec that owns nothing (refs LUA_NOREF). */
void http_spec_init(spec_t *s);
/* Free what the spec owns (not its refs: the pool releases those). */
void http_spec_clear(spec_t *s);
/* Parse the request table at idx into s (cleared first), defaults from d. Raises on misuse. */
void http_spec_parse(lua_State *L, int idx, const defaults_t *d, spec_t *s);
/* Configure x->easy from x->spec. */
CURLcode http_xfer_setup(xfer_t *x);
/* Push the outcome of a finished transfer: the response table (returns 1) or nil, msg, code,
 * resent (returns 4). */
int http_xfer_outcome(lua_State *L, xfer_t *x, CURLcode rc);
/* Drop the buffers' memory past what is worth keeping for the next transfer. */
void http_xfer_release_buffers(xfer_t *x);
/* Free the easy handle, the spec and the buffers. */
void http_xfer_free(xfer_t *x);
/* curl's write and header callbacks (ud: the xfer_t). */
size_t http_on_body(char *p, size_t size, size_t nmemb, void *ud);
size_t http_on_header(char *p, size_t size, size_t nmemb, void *ud);

#endif
