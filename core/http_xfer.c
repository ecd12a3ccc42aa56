/* Transfers for aep.http (core/aep_http.c): growable buffers, request specs parsed from Lua
 * tables, easy-handle setup, curl callbacks (C buffers only, no Lua), and turning a finished
 * transfer into a Lua response or nil, msg, code. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_xfer.h"

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

void http_spec_init(spec_t *s) {
  memset(s, 0, sizeof *s);
  s->body_ref = s->ctx_ref = LUA_NOREF;
}

/* Free what the spec owns (not its refs: see refs_release). */
void http_spec_clear(spec_t *s) {
  free(s->url);
  free(s->method);
  free(s->cainfo);
  curl_slist_free_all(s->headers);
  http_spec_init(s);
}

static char *dup_or_raise(lua_State *L, const char *s) {
  char *d = strdup(s);
  if (d == NULL) luaL_error(L, "http: out of memory");
  return d;
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
void http_spec_parse(lua_State *L, int idx, const defaults_t *d, spec_t *s) {
  size_t i, n;
  const char *str;
  int has_ctype = 0, has_expect = 0;
  http_spec_clear(s);
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
  s->timeout_ms = (long)(aep_opt_seconds_field(L, idx, "timeout", d->timeout) * 1000.0 + 0.5);
  s->connect_timeout_ms = (long)(aep_opt_seconds_field(L, idx, "connect_timeout", d->connect_timeout) * 1000.0 + 0.5);
  if ((str = aep_opt_string_field(L, idx, "cainfo", d->cainfo)) != NULL) s->cainfo = dup_or_raise(L, str);
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

size_t http_on_body(char *p, size_t size, size_t nmemb, void *ud) {
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

size_t http_on_header(char *p, size_t size, size_t nmemb, void *ud) {
  xfer_t *x = ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) x->hdrs.len = 0; /* keep the final response only */
  if (!buf_append(&x->hdrs, p, n)) {
    x->oom = 1;
    return 0;
  }
  return n;
}

/* curl sends a request again by itself when a reused keep-alive connection dies before any answer
 * byte (it opens a new connection, or takes another cached one, and repeats the request). The
 * server may have taken the first copy, so every such resend is counted: on_prereq runs each time
 * the request is about to go on the wire, on_sockopt each time a new connection is opened; either
 * one after the request was already sent is a resend (one per retry, even when the new connection
 * is refused and the resend never leaves). */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port) {
  xfer_t *x = ud;
  (void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
  if (x->sent && !x->resend_counted) x->resent++;
  x->sent = 1;
  x->resend_counted = 0;
  return CURL_PREREQFUNC_OK;
}

static int on_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose) {
  xfer_t *x = ud;
  (void)fd, (void)purpose;
  if (x->sent && !x->resend_counted) {
    x->resent++;
    x->resend_counted = 1;
  }
  return CURL_SOCKOPT_OK;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  xfer_t *x = ud;
  (void)dt, (void)dn, (void)ut, (void)un;
  return x->abort_on_interrupt && aep_interrupted;
}

/* Configure x->easy from x->spec. */
CURLcode http_xfer_setup(xfer_t *x) {
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
  x->sent = x->resend_counted = x->resent = 0;
  x->errbuf[0] = '\0';
  SET(CURLOPT_URL, s->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_WRITEFUNCTION, http_on_body);
  SET(CURLOPT_WRITEDATA, x);
  SET(CURLOPT_HEADERFUNCTION, http_on_header);
  SET(CURLOPT_HEADERDATA, x);
  SET(CURLOPT_NOPROGRESS, 0L);
  SET(CURLOPT_XFERINFOFUNCTION, on_progress);
  SET(CURLOPT_XFERINFODATA, x);
  SET(CURLOPT_PRIVATE, x);
  SET(CURLOPT_PREREQFUNCTION, on_prereq);
  SET(CURLOPT_PREREQDATA, x);
  SET(CURLOPT_SOCKOPTFUNCTION, on_sockopt);
  SET(CURLOPT_SOCKOPTDATA, x);
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
    if (strcmp(s->method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, s->method);
  } else if (strcmp(s->method, "GET") != 0) {
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

/* Push the outcome of a finished transfer: the response table (returns 1) or nil, msg, code,
 * resent (returns 4). resent (also a field of the response) counts the times curl sent the request
 * again by itself (see on_prereq). */
int http_xfer_outcome(lua_State *L, xfer_t *x, CURLcode rc) {
  const char *p, *end;
  double t;
  long status = 0;
  int n = 0;
  if (rc != CURLE_OK) {
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      lua_pushnil(L);
      lua_pushfstring(L, "response body exceeds max_body (%I bytes)", (lua_Integer)x->spec.max_body);
      lua_pushliteral(L, "TOO_LARGE");
    } else if (x->oom) {
      aep_fail(L, "http: out of memory", "HTTP");
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
      aep_fail(L, "interrupted", "INTERRUPTED");
    } else {
      aep_fail(L, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc), code_of(rc));
    }
    lua_pushinteger(L, x->resent);
    return 4;
  }
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, x->resent);
  lua_setfield(L, -2, "resent");
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

void http_xfer_release_buffers(xfer_t *x) {
  buf_reset(&x->body);
  buf_reset(&x->hdrs);
}

void http_xfer_free(xfer_t *x) {
  if (x->easy) curl_easy_cleanup(x->easy);
  x->easy = NULL;
  http_spec_clear(&x->spec);
  buf_free(&x->body);
  buf_free(&x->hdrs);
}
