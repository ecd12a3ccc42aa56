/* aep.http: HTTP client mechanism on libcurl.
 *
 * http.request runs one transfer on a private multi handle kept in the module's upvalue, so the
 * connection cache survives between calls (keep-alive) and the wait is a curl_multi_poll that a
 * signal interrupts. http.pool runs many transfers on one multi handle, reusing a fixed set of
 * easy handles. No Lua runs inside curl callbacks: they only fill C buffers. Requests are parsed
 * from their Lua tables into a C `spec` first (all raising happens then), so starting a transfer
 * needs no Lua at all. */
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "http_xfer.h"

#define CLIENT_MT "aep.http.Client"
#define POOL_MT "aep.http.Pool"

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

/* ---- http.request ----------------------------------------------------------------------- */

static client_t *client_of(lua_State *L) {
  client_t *c = luaL_checkudata(L, lua_upvalueindex(1), CLIENT_MT);
  if (c->closed) luaL_error(L, "http: client is closed");
  return c;
}

/* http.request(opts) -> resp | nil, err, code, resent
 * resp.resent / resent: times curl sent the request again by itself (a reused keep-alive
 * connection that died before any answer byte), whether or not the new attempt reached the
 * server: the server may hold more than one copy.
 * opts.headers: {Name = "v" | number | {"v1", "v2"} | false}; false removes a header curl would
 * add itself (Accept, User-Agent...). No Content-Type is sent unless given; Expect is blank. */
static int http_request(lua_State *L) {
  client_t *c = client_of(L);
  xfer_t *x = &c->x;
  defaults_t d = {30.0, 10.0, NULL, 0, DEFAULT_MAX_BODY};
  CURLcode rc = CURLE_OK;
  int done = 0, interrupted = 0, n;
  http_spec_parse(L, 1, &d, &x->spec);
  if (x->easy == NULL && (x->easy = curl_easy_init()) == NULL) {
    http_spec_clear(&x->spec);
    return aep_fail(L, "http: out of memory", "HTTP");
  }
  x->abort_on_interrupt = 1;
  if ((rc = http_xfer_setup(x)) != CURLE_OK || curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
    http_spec_clear(&x->spec);
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
    n = http_xfer_outcome(L, x, rc);
  }
  http_spec_clear(&x->spec);
  http_xfer_release_buffers(x);
  return n;
}

static int client_gc(lua_State *L) {
  client_t *c = luaL_checkudata(L, 1, CLIENT_MT);
  if (!c->closed) {
    c->closed = 1;
    http_xfer_free(&c->x);
    if (c->multi) curl_multi_cleanup(c->multi);
    c->multi = NULL;
  }
  return 0;
}

/* ---- http.pool -------------------------------------------------------------------------- */

static int pool_is_open(const void *p) { return !((const pool_t *)p)->closed; }

static pool_t *check_pool(lua_State *L) {
  return aep_check_handle(L, 1, POOL_MT, pool_is_open, "http: pool is closed");
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
  http_spec_init(&p->scratch);
  p->defaults.timeout = aep_opt_seconds_field(L, 1, "timeout", 30.0);
  p->defaults.connect_timeout = aep_opt_seconds_field(L, 1, "connect_timeout", 10.0);
  p->defaults.insecure = aep_opt_bool_field(L, 1, "insecure", 0);
  p->defaults.max_body = aep_opt_int_field(L, 1, "max_body", DEFAULT_MAX_BODY);
  cainfo = aep_opt_string_field(L, 1, "cainfo", NULL);
  if ((p->xfers = calloc((size_t)n, sizeof *p->xfers)) == NULL ||
      (cainfo && (p->cainfo = strdup(cainfo)) == NULL) || (p->multi = curl_multi_init()) == NULL) {
    free(p->xfers);
    free(p->cainfo);
    return luaL_error(L, "http: out of memory");
  }
  p->defaults.cainfo = p->cainfo;
  p->nxfers = n;
  for (i = 0; i < n; i++) http_spec_init(&p->xfers[i].spec);
  curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)n);
  p->closed = 0;
  return 1;
}

/* pool:submit(request, context) */
static int pool_submit(lua_State *L) {
  pool_t *p = check_pool(L);
  spec_t *s = &p->scratch;
  http_spec_parse(L, 2, &p->defaults, s);
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
  http_spec_init(s);
  return 0;
}

/* Append a completion {context=, response= | error=, code=, resent=} to the results table at res. */
static void push_completion(lua_State *L, int res, int refs, xfer_t *x, CURLcode rc, int *n) {
  int k;
  lua_createtable(L, 0, 4);
  lua_rawgeti(L, refs, x->spec.ctx_ref);
  lua_setfield(L, -2, "context");
  k = http_xfer_outcome(L, x, rc);
  if (k == 1) {
    lua_setfield(L, -2, "response");
  } else { /* nil, msg, code, resent */
    lua_setfield(L, -5, "resent");
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
  http_spec_clear(&x->spec);
  http_xfer_release_buffers(x);
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
    } else if ((rc = http_xfer_setup(x)) == CURLE_OK) {
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

/* pool:wait([timeout_s]) -> {{context=, response=, error=, code=, resent=}, ...}; waits for at least one
 * completion (or the timeout, or SIGINT), then returns every completion available. */
static int pool_wait(lua_State *L) {
  pool_t *p = check_pool(L);
  double timeout = luaL_optnumber(L, 2, -1), deadline = timeout >= 0 ? aep_monotonic() + timeout : 0;
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
      double left = timeout >= 0 ? deadline - aep_monotonic() : 1.0;
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
    http_xfer_free(x);
  }
  while (p->qlen > 0) {
    http_spec_clear(&p->queue[p->qhead]);
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qlen--;
  }
  http_spec_clear(&p->scratch);
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

static const luaL_Reg http_funcs[] = {{"request", http_request}, {"pool", http_pool}, {NULL, NULL}};

/* libcurl's global state (and OpenSSL's through it), set up once per process by the first state
 * that requires aep.http, not at start-up: commands without HTTP never pay for it. Never cleaned
 * up: other threads' states may still use it until the process exits. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;
static void curl_init(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

int luaopen_aep_http(lua_State *L) {
  client_t *c;
  pthread_once(&curl_once, curl_init);
  if (curl_init_result != CURLE_OK)
    return luaL_error(L, "http: cannot initialise libcurl: %s", curl_easy_strerror(curl_init_result));
  aep_new_type(L, POOL_MT, pool_methods, pool_close, pool_tostring);
  aep_new_type(L, CLIENT_MT, NULL, client_gc, NULL);

  luaL_newlibtable(L, http_funcs);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  http_spec_init(&c->x.spec);
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
