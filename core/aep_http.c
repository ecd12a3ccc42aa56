/* aep.http: HTTP client mechanism on libcurl.
 *
 * http.request runs one transfer on a private multi handle kept in the module's upvalue, so the
 * connection cache survives between calls (keep-alive) and the wait is a curl_multi_poll that a
 * signal interrupts. http.pool runs many transfers on one multi handle, reusing a fixed set of
 * easy handles. No Lua runs inside curl callbacks: they only fill C buffers. Requests are parsed
 * from their Lua tables into a C `spec` first (all raising happens then), so starting a transfer
 * needs no Lua at all. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "aep.h"

#define CLIENT_MT "aep.http.Client"
#define POOL_MT "aep.http.Pool"
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
  char errbuf[CURL_ERROR_SIZE];
} xfer_t;

typedef struct {
  CURLM *multi;
  xfer_t x;
  int closed;
} client_t;

typedef struct {
  CURLM *multi;
  xfer_t *xfers;
  int nxfers, in_flight;
  spec_t *queue; /* ring buffer of submitted requests not yet started */
  size_t qhead, qlen, qcap;
  spec_t scratch; /* request being parsed; owned here so a raise cannot leak it */
  defaults_t defaults;
  char *cainfo;
  int closed;
} pool_t;

/* ---- buffers ---------------------------------------------------------------------------- */

static int buf_append(buf_t *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 16384;
    char *np;
    while (cap < b->len + n) cap *= 2;
    if ((np = realloc(b->p, cap)) == NULL) return 0;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 1;
}

static void buf_reset(buf_t *b) {
  b->len = 0;
  if (b->cap > KEEP_BUF) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
  }
}

static void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* ---- request specs ---------------------------------------------------------------------- */

static void spec_init(spec_t *s) {
  memset(s, 0, sizeof *s);
  s->body_ref = s->ctx_ref = LUA_NOREF;
}

/* Free what the spec owns (not its refs: see refs_release). */
static void spec_clear(spec_t *s) {
  free(s->url);
  free(s->method);
  free(s->cainfo);
  curl_slist_free_all(s->headers);
  spec_init(s);
}

static char *dup_or_raise(lua_State *L, const char *s) {
  char *d = strdup(s);
  if (d == NULL) luaL_error(L, "http: out of memory");
  return d;
}

static double field_num(lua_State *L, int idx, const char *k, double d) {
  double v = d;
  lua_getfield(L, idx, k);
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) luaL_error(L, "http: '%s' must be a number", k);
    v = lua_tonumber(L, -1);
    if (!(v > 0)) luaL_error(L, "http: '%s' must be positive", k);
  }
  lua_pop(L, 1);
  return v;
}

static const char *field_str(lua_State *L, int idx, const char *k, const char *d) {
  const char *v = d;
  lua_getfield(L, idx, k);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "http: '%s' must be a string", k);
    v = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the string stays alive in the options table */
  return v;
}

static int is_token(const char *s, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?={}", c)) return 0;
  }
  return 1;
}

static void add_header(lua_State *L, spec_t *s, const char *name, int vidx) {
  const char *line;
  struct curl_slist *l;
  if (lua_type(L, vidx) == LUA_TBOOLEAN && !lua_toboolean(L, vidx)) {
    line = lua_pushfstring(L, "%s:", name); /* false: suppress a header curl would add */
  } else {
    size_t vlen;
    const char *v;
    if (lua_type(L, vidx) != LUA_TSTRING && lua_type(L, vidx) != LUA_TNUMBER)
      luaL_error(L, "http: header '%s' must be a string, a number, false or a list", name);
    lua_pushvalue(L, vidx);
    v = lua_tolstring(L, -1, &vlen);
    if (strlen(v) != vlen || strpbrk(v, "\r\n"))
      luaL_error(L, "http: header '%s' contains a NUL, CR or LF", name);
    line = vlen ? lua_pushfstring(L, "%s: %s", name, v) : lua_pushfstring(L, "%s;", name);
    lua_remove(L, -2);
  }
  if ((l = curl_slist_append(s->headers, line)) == NULL) luaL_error(L, "http: out of memory");
  s->headers = l;
  lua_pop(L, 1);
}

/* Parse the request table at idx into s (cleared first). Raises on misuse. */
static void spec_parse(lua_State *L, int idx, const defaults_t *d, spec_t *s) {
  size_t i, n;
  const char *str;
  int has_ctype = 0, has_expect = 0;
  spec_clear(s);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "url");
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "http: 'url' must be a string");
  s->url = dup_or_raise(L, lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, idx, "method");
  str = lua_isnil(L, -1) ? "GET" : lua_tolstring(L, -1, &n);
  if (str == NULL || !is_token(str, strlen(str))) luaL_error(L, "http: bad 'method'");
  s->method = dup_or_raise(L, str);
  for (i = 0; s->method[i]; i++) s->method[i] = (char)toupper((unsigned char)s->method[i]);
  lua_pop(L, 1);
  lua_getfield(L, idx, "body");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "http: 'body' must be a string");
    s->body = lua_tolstring(L, -1, &s->body_len);
    s->has_body = 1;
  }
  lua_pop(L, 1);
  s->timeout_ms = (long)(field_num(L, idx, "timeout", d->timeout) * 1000.0 + 0.5);
  s->connect_timeout_ms = (long)(field_num(L, idx, "connect_timeout", d->connect_timeout) * 1000.0 + 0.5);
  if ((str = field_str(L, idx, "cainfo", d->cainfo)) != NULL) s->cainfo = dup_or_raise(L, str);
  lua_getfield(L, idx, "insecure");
  s->insecure = lua_isnil(L, -1) ? d->insecure : lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "max_body");
  s->max_body = lua_isnil(L, -1) ? d->max_body : lua_tointeger(L, -1);
  if (!lua_isnil(L, -1) && (!lua_isinteger(L, -1) || s->max_body < 0))
    luaL_error(L, "http: 'max_body' must be a non-negative integer");
  lua_pop(L, 1);
  lua_getfield(L, idx, "headers");
  if (lua_istable(L, -1)) {
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
      const char *name;
      if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "http: header names must be strings");
      name = lua_tolstring(L, -2, &n);
      if (!is_token(name, n)) luaL_error(L, "http: bad header name '%s'", name);
      if (strcasecmp(name, "content-type") == 0) has_ctype = 1;
      if (strcasecmp(name, "expect") == 0) has_expect = 1;
      if (lua_istable(L, -1)) {
        lua_Integer j, len = luaL_len(L, -1);
        for (j = 1; j <= len; j++) {
          lua_rawgeti(L, -1, j);
          add_header(L, s, name, lua_gettop(L));
          lua_pop(L, 1);
        }
      } else {
        add_header(L, s, name, lua_gettop(L));
      }
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "http: 'headers' must be a table");
  }
  lua_pop(L, 1);
  /* The wire carries only what Lua asked for: no form content type, no 100-continue round trip. */
  if (!has_expect) {
    lua_pushboolean(L, 0);
    add_header(L, s, "Expect", lua_gettop(L));
    lua_pop(L, 1);
  }
  if (s->has_body && !has_ctype) {
    lua_pushboolean(L, 0);
    add_header(L, s, "Content-Type", lua_gettop(L));
    lua_pop(L, 1);
  }
}

/* ---- transfers -------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  xfer_t *x = ud;
  size_t n = size * nmemb;
  if ((curl_off_t)(x->body.len + n) > x->spec.max_body) {
    x->too_large = 1;
    return 0;
  }
  if (!buf_append(&x->body, p, n)) {
    x->oom = 1;
    return 0;
  }
  return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  xfer_t *x = ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) x->hdrs.len = 0; /* keep the final response only */
  if (!buf_append(&x->hdrs, p, n)) {
    x->oom = 1;
    return 0;
  }
  return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  xfer_t *x = ud;
  (void)dt, (void)dn, (void)ut, (void)un;
  return x->abort_on_interrupt && aep_interrupted;
}

/* Configure x->easy from x->spec. */
static CURLcode xfer_setup(xfer_t *x) {
  CURL *e = x->easy;
  spec_t *s = &x->spec;
  CURLcode rc = CURLE_OK;
#define SET(opt, val) \
  do { \
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); \
  } while (0)
  curl_easy_reset(e);
  x->body.len = x->hdrs.len = 0;
  x->too_large = x->oom = 0;
  x->errbuf[0] = '\0';
  SET(CURLOPT_URL, s->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, x);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, x);
  SET(CURLOPT_NOPROGRESS, 0L);
  SET(CURLOPT_XFERINFOFUNCTION, on_progress);
  SET(CURLOPT_XFERINFODATA, x);
  SET(CURLOPT_PRIVATE, x);
  SET(CURLOPT_TIMEOUT_MS, s->timeout_ms);
  SET(CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
  SET(CURLOPT_MAXFILESIZE_LARGE, s->max_body);
  SET(CURLOPT_USERAGENT, "aep/" AEP_VERSION);
  SET(CURLOPT_HTTPHEADER, s->headers);
  if (s->cainfo) SET(CURLOPT_CAINFO, s->cainfo);
  if (s->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (strcmp(s->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (s->has_body || !strcmp(s->method, "POST") || !strcmp(s->method, "PUT") ||
             !strcmp(s->method, "PATCH")) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    SET(CURLOPT_POSTFIELDS, s->has_body ? s->body : "");
    if (strcmp(s->method, "POST")) SET(CURLOPT_CUSTOMREQUEST, s->method);
  } else if (strcmp(s->method, "GET")) {
    SET(CURLOPT_CUSTOMREQUEST, s->method);
  }
#undef SET
  return rc;
}

static const char *code_of(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "TIMEOUT";
    case CURLE_COULDNT_CONNECT: return "CONNECT";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "DNS";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT: return "TLS";
    case CURLE_FILESIZE_EXCEEDED: return "TOO_LARGE";
    case CURLE_ABORTED_BY_CALLBACK: return "INTERRUPTED";
    case CURLE_SEND_ERROR: return "SEND";
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return "RECV";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return "URL";
    default: return "HTTP";
  }
}

/* Push the outcome of a finished transfer: the response table (returns 1) or nil, msg, code
 * (returns 3). */
static int push_outcome(lua_State *L, xfer_t *x, CURLcode rc) {
  const char *p, *end;
  double t;
  long status = 0;
  int n = 0;
  if (rc != CURLE_OK) {
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      lua_pushnil(L);
      lua_pushfstring(L, "response body exceeds max_body (%I bytes)", (lua_Integer)x->spec.max_body);
      lua_pushliteral(L, "TOO_LARGE");
      return 3;
    }
    if (x->oom) return aep_fail(L, "http: out of memory", "HTTP");
    if (rc == CURLE_ABORTED_BY_CALLBACK) return aep_fail(L, "interrupted", "INTERRUPTED");
    return aep_fail(L, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc), code_of(rc));
  }
  lua_createtable(L, 0, 5);
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_newtable(L); /* headers */
  lua_newtable(L); /* header_list */
  p = x->hdrs.p;
  end = p ? p + x->hdrs.len : p;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon, *v, *ve;
    const char *next = eol ? eol + 1 : end;
    size_t i;
    luaL_Buffer b;
    ve = eol ? eol : end;
    colon = memchr(p, ':', (size_t)(ve - p));
    if (colon == NULL || colon == p || (ve - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      p = next;
      continue;
    }
    for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++) {}
    while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    luaL_buffinit(L, &b);
    for (i = 0; p + i < colon; i++) luaL_addchar(&b, (char)tolower((unsigned char)p[i]));
    luaL_pushresult(&b);                               /* name */
    lua_createtable(L, 2, 0);                          /* {name, value} */
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, v, (size_t)(ve - v));
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -3, ++n);                           /* header_list[n] */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -4) == LUA_TSTRING) {            /* repeated: join */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, v, (size_t)(ve - v));
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, v, (size_t)(ve - v));
    }
    lua_rawset(L, -4);
    p = next;
  }
  lua_setfield(L, -3, "header_list");
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
  lua_setfield(L, -2, "body");
  lua_createtable(L, 0, 3);
  curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME, &t);
  lua_pushnumber(L, t);
  lua_setfield(L, -2, "total");
  curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME, &t);
  lua_pushnumber(L, t);
  lua_setfield(L, -2, "connect");
  curl_easy_getinfo(x->easy, CURLINFO_STARTTRANSFER_TIME, &t);
  lua_pushnumber(L, t);
  lua_setfield(L, -2, "ttfb");
  lua_setfield(L, -2, "timing");
  return 1;
}

static void xfer_release_buffers(xfer_t *x) {
  buf_reset(&x->body);
  buf_reset(&x->hdrs);
}

static void xfer_free(xfer_t *x) {
  if (x->easy) curl_easy_cleanup(x->easy);
  x->easy = NULL;
  spec_clear(&x->spec);
  buf_free(&x->body);
  buf_free(&x->hdrs);
}

/* ---- http.request ----------------------------------------------------------------------- */

static client_t *client_of(lua_State *L) {
  client_t *c = luaL_checkudata(L, lua_upvalueindex(1), CLIENT_MT);
  if (c->closed) luaL_error(L, "http: client is closed");
  return c;
}

/* http.request(opts) -> resp | nil, err, code
 * opts.headers: {Name = "v" | number | {"v1", "v2"} | false}; false removes a header curl would
 * add itself (Accept, User-Agent...). No Content-Type is sent unless given; Expect is blank. */
static int http_request(lua_State *L) {
  client_t *c = client_of(L);
  xfer_t *x = &c->x;
  defaults_t d = {30.0, 10.0, NULL, 0, DEFAULT_MAX_BODY};
  CURLcode rc = CURLE_OK;
  int done = 0, interrupted = 0, n;
  spec_parse(L, 1, &d, &x->spec);
  if (x->easy == NULL && (x->easy = curl_easy_init()) == NULL) {
    spec_clear(&x->spec);
    return aep_fail(L, "http: out of memory", "HTTP");
  }
  x->abort_on_interrupt = 1;
  if ((rc = xfer_setup(x)) != CURLE_OK || curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
    spec_clear(&x->spec);
    return aep_fail(L, rc != CURLE_OK ? curl_easy_strerror(rc) : "http: cannot start transfer", "HTTP");
  }
  while (!done) {
    int running, q;
    CURLMsg *m;
    if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
      rc = CURLE_FAILED_INIT;
      break;
    }
    while ((m = curl_multi_info_read(c->multi, &q)) != NULL) {
      if (m->msg == CURLMSG_DONE) {
        rc = m->data.result;
        done = 1;
      }
    }
    if (done) break;
    if (aep_interrupted) {
      interrupted = 1;
      break;
    }
    curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
  }
  curl_multi_remove_handle(c->multi, x->easy);
  if (interrupted) {
    n = aep_fail(L, "interrupted", "INTERRUPTED");
  } else if (!done) {
    n = aep_fail(L, "http: curl multi failure", "HTTP");
  } else {
    n = push_outcome(L, x, rc);
  }
  spec_clear(&x->spec);
  xfer_release_buffers(x);
  return n;
}

static int client_gc(lua_State *L) {
  client_t *c = luaL_checkudata(L, 1, CLIENT_MT);
  if (!c->closed) {
    c->closed = 1;
    xfer_free(&c->x);
    if (c->multi) curl_multi_cleanup(c->multi);
    c->multi = NULL;
  }
  return 0;
}

/* ---- http.pool -------------------------------------------------------------------------- */

static pool_t *check_pool(lua_State *L) {
  pool_t *p = luaL_checkudata(L, 1, POOL_MT);
  if (p->closed) luaL_error(L, "http: pool is closed");
  return p;
}

/* Release a spec's refs in the pool's ref table (at the top of the stack). */
static void refs_release(lua_State *L, spec_t *s) {
  luaL_unref(L, -1, s->body_ref);
  luaL_unref(L, -1, s->ctx_ref);
  s->body_ref = s->ctx_ref = LUA_NOREF;
}

/* http.pool{max_in_flight=16, timeout=30, connect_timeout=10, cainfo, insecure, max_body} -> Pool */
static int http_pool(lua_State *L) {
  pool_t *p;
  int n, i;
  const char *cainfo;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "max_in_flight");
  n = lua_isnil(L, -1) ? 16 : (int)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  if (n < 1 || n > 1024) return luaL_error(L, "http: 'max_in_flight' must be between 1 and 1024");
  p = lua_newuserdatauv(L, sizeof *p, 1);
  memset(p, 0, sizeof *p);
  p->closed = 1; /* until fully built, so __gc has nothing to release */
  luaL_setmetatable(L, POOL_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  spec_init(&p->scratch);
  p->defaults.timeout = field_num(L, 1, "timeout", 30.0);
  p->defaults.connect_timeout = field_num(L, 1, "connect_timeout", 10.0);
  p->defaults.insecure = aep_opt_bool_field(L, 1, "insecure", 0);
  p->defaults.max_body = aep_opt_int_field(L, 1, "max_body", DEFAULT_MAX_BODY);
  cainfo = field_str(L, 1, "cainfo", NULL);
  if ((p->xfers = calloc((size_t)n, sizeof *p->xfers)) == NULL ||
      (cainfo && (p->cainfo = strdup(cainfo)) == NULL) || (p->multi = curl_multi_init()) == NULL) {
    free(p->xfers);
    free(p->cainfo);
    return luaL_error(L, "http: out of memory");
  }
  p->defaults.cainfo = p->cainfo;
  p->nxfers = n;
  for (i = 0; i < n; i++) spec_init(&p->xfers[i].spec);
  curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)n);
  p->closed = 0;
  return 1;
}

/* pool:submit(request, context) */
static int pool_submit(lua_State *L) {
  pool_t *p = check_pool(L);
  spec_t *s = &p->scratch;
  spec_parse(L, 2, &p->defaults, s);
  if (p->qlen == p->qcap) {
    size_t cap = p->qcap ? p->qcap * 2 : 64, i;
    spec_t *q = malloc(cap * sizeof *q);
    if (q == NULL) return luaL_error(L, "http: out of memory");
    for (i = 0; i < p->qlen; i++) q[i] = p->queue[(p->qhead + i) % p->qcap];
    free(p->queue);
    p->queue = q;
    p->qcap = cap;
    p->qhead = 0;
  }
  lua_settop(L, 3);
  lua_getiuservalue(L, 1, 1);
  if (s->has_body) {
    lua_getfield(L, 2, "body");
    s->body_ref = luaL_ref(L, -2); /* keeps s->body alive until the transfer is done */
  }
  lua_pushvalue(L, 3);
  s->ctx_ref = luaL_ref(L, -2);
  p->queue[(p->qhead + p->qlen) % p->qcap] = *s;
  p->qlen++;
  spec_init(s);
  return 0;
}

/* Append a completion {context=, response= | error=, code=} to the results table at res. */
static void push_completion(lua_State *L, int res, int refs, xfer_t *x, CURLcode rc, int *n) {
  int k;
  lua_createtable(L, 0, 3);
  lua_rawgeti(L, refs, x->spec.ctx_ref);
  lua_setfield(L, -2, "context");
  k = push_outcome(L, x, rc);
  if (k == 1) {
    lua_setfield(L, -2, "response");
  } else {
    lua_setfield(L, -4, "code");
    lua_setfield(L, -3, "error");
    lua_pop(L, 1);
  }
  lua_rawseti(L, res, ++*n);
}

static void pool_finish(lua_State *L, int refs, xfer_t *x) {
  lua_pushvalue(L, refs);
  refs_release(L, &x->spec);
  lua_pop(L, 1);
  spec_clear(&x->spec);
  xfer_release_buffers(x);
  x->busy = 0;
}

/* Move queued requests onto idle easy handles. */
static void pool_start(lua_State *L, pool_t *p, int res, int refs, int *n) {
  int i;
  for (i = 0; i < p->nxfers && p->qlen > 0; i++) {
    xfer_t *x = &p->xfers[i];
    CURLcode rc;
    if (x->busy) continue;
    x->spec = p->queue[p->qhead];
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qlen--;
    x->busy = 1;
    if (x->easy == NULL && (x->easy = curl_easy_init()) == NULL) {
      rc = CURLE_OUT_OF_MEMORY;
    } else if ((rc = xfer_setup(x)) == CURLE_OK) {
      if (curl_multi_add_handle(p->multi, x->easy) == CURLM_OK) {
        p->in_flight++;
        continue;
      }
      rc = CURLE_OUT_OF_MEMORY;
    }
    x->oom = 1;
    push_completion(L, res, refs, x, rc, n);
    pool_finish(L, refs, x);
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* pool:wait([timeout_s]) -> {{context=, response=, error=, code=}, ...}; waits for at least one
 * completion (or the timeout, or SIGINT), then returns every completion available. */
static int pool_wait(lua_State *L) {
  pool_t *p = check_pool(L);
  double timeout = luaL_optnumber(L, 2, -1), deadline = timeout >= 0 ? now_s() + timeout : 0;
  int n = 0, res, refs, running;
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);
  refs = lua_gettop(L);
  lua_newtable(L);
  res = lua_gettop(L);
  for (;;) {
    CURLMsg *m;
    int q;
    pool_start(L, p, res, refs, &n);
    curl_multi_perform(p->multi, &running);
    while ((m = curl_multi_info_read(p->multi, &q)) != NULL) {
      xfer_t *x;
      char *priv = NULL;
      if (m->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
      x = (xfer_t *)priv;
      curl_multi_remove_handle(p->multi, x->easy);
      p->in_flight--;
      push_completion(L, res, refs, x, m->data.result, &n);
      pool_finish(L, refs, x);
    }
    if (n > 0) {
      /* keep the connections busy while Lua looks at the completions */
      pool_start(L, p, res, refs, &n);
      curl_multi_perform(p->multi, &running);
      break;
    }
    if (p->in_flight == 0 && p->qlen == 0) break;
    if (aep_interrupted) break;
    {
      double left = timeout >= 0 ? deadline - now_s() : 1.0;
      if (left <= 0) break;
      curl_multi_poll(p->multi, NULL, 0, left > 1.0 ? 1000 : (int)(left * 1000) + 1, NULL);
    }
  }
  lua_pushvalue(L, res);
  return 1;
}

/* pool:pending() -> number of requests in flight or queued */
static int pool_pending(lua_State *L) {
  pool_t *p = check_pool(L);
  lua_pushinteger(L, (lua_Integer)p->in_flight + (lua_Integer)p->qlen);
  return 1;
}

/* pool:close(); also __gc and __close */
static int pool_close(lua_State *L) {
  pool_t *p = luaL_checkudata(L, 1, POOL_MT);
  int i;
  if (p->closed) return 0;
  p->closed = 1;
  for (i = 0; i < p->nxfers; i++) {
    xfer_t *x = &p->xfers[i];
    if (x->busy && x->easy) curl_multi_remove_handle(p->multi, x->easy);
    xfer_free(x);
  }
  while (p->qlen > 0) {
    spec_clear(&p->queue[p->qhead]);
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qlen--;
  }
  spec_clear(&p->scratch);
  free(p->queue);
  free(p->xfers);
  free(p->cainfo);
  p->queue = NULL;
  p->xfers = NULL;
  p->cainfo = NULL;
  if (p->multi) curl_multi_cleanup(p->multi);
  p->multi = NULL;
  lua_pushnil(L); /* drop every ref'd context and body at once */
  lua_setiuservalue(L, 1, 1);
  return 0;
}

static int pool_tostring(lua_State *L) {
  pool_t *p = luaL_checkudata(L, 1, POOL_MT);
  if (p->closed) lua_pushliteral(L, "aep.http.Pool (closed)");
  else lua_pushfstring(L, "aep.http.Pool (%d in flight, %d queued)", p->in_flight, (int)p->qlen);
  return 1;
}

static const luaL_Reg pool_methods[] = {
  {"submit", pool_submit}, {"wait", pool_wait}, {"pending", pool_pending}, {"close", pool_close},
  {NULL, NULL}};

static const luaL_Reg pool_meta[] = {
  {"__gc", pool_close}, {"__close", pool_close}, {"__tostring", pool_tostring}, {NULL, NULL}};

static const luaL_Reg http_funcs[] = {{"request", http_request}, {"pool", http_pool}, {NULL, NULL}};

int luaopen_aep_http(lua_State *L) {
  client_t *c;
  luaL_newmetatable(L, POOL_MT);
  luaL_setfuncs(L, pool_meta, 0);
  luaL_newlib(L, pool_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, CLIENT_MT);
  lua_pushcfunction(L, client_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  luaL_newlibtable(L, http_funcs);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  spec_init(&c->x.spec);
  c->closed = 1;
  luaL_setmetatable(L, CLIENT_MT);
  if ((c->multi = curl_multi_init()) == NULL) return luaL_error(L, "http: cannot create curl multi handle");
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 8L);
  c->closed = 0;
  luaL_setfuncs(L, http_funcs, 1); /* the client is every function's upvalue */
  lua_pushliteral(L, AEP_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
