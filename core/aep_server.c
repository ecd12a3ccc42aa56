/* aep.server: an HTTP/1.1 server mechanism on libmicrohttpd.
 *
 * One thread: libmicrohttpd runs in "external select" mode and is driven from srv:serve/srv:step,
 * so the Lua handler is only ever called from the thread that is inside serve/step and the
 * lua_State is never entered concurrently. Each TCP connection owns a small C struct (the MHD
 * socket context) holding the request being received: body chunks are appended to a buffer as
 * MHD delivers them (bounded by the route's limit: server_guard.h), and the handler runs once on
 * the final call.
 * A `delay` suspends the connection and resumes it from the loop when due, so other connections
 * keep being served. Response bodies are Lua strings kept alive by a registry ref until MHD has
 * sent them (no copy). */
#include <sys/select.h>
#include <unistd.h>

#include "server_handler.h"
#include "server_idle.h"

/* Set by our SIGINT/SIGTERM handler while serve() runs (signal handlers need a global). */
static volatile sig_atomic_t server_signal = 0;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#include "server_guard.h"

/* ---- per-request state ------------------------------------------------------------------ */

static void delayed_unlink(conn_t *c) {
  server_t *s = c->srv;
  if (!c->in_list) return;
  c->in_list = 0;
  if (c->prev) c->prev->next = c->next;
  else s->delayed = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

/* Forget the current request: release its response and body ref, keep the buffers. */
static void conn_reset(conn_t *c) {
  delayed_unlink(c);
  if (c->committed) {
    c->committed = 0;
    c->srv->answering--;
  }
  if (c->resp) MHD_destroy_response(c->resp);
  c->resp = NULL;
  if (c->body_ref != LUA_NOREF && c->srv->L) luaL_unref(c->srv->L, LUA_REGISTRYINDEX, c->body_ref);
  c->body_ref = LUA_NOREF;
  c->out = NULL;
  c->out_len = 0;
  c->drop = DROP_NONE;
  c->status = 0;
  c->too_large = 0;
  c->body_len = 0;
  c->body_seen = 0;
  c->requested = 0;
  if (c->body_cap > KEEP_BUF) {
    free(c->body);
    c->body = NULL;
    c->body_cap = 0;
  }
  c->state = RQ_IDLE;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  server_t *s = cls;
  conn_t *c = *socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    if ((c = calloc(1, sizeof *c)) == NULL) return; /* the access handler refuses it */
    c->srv = s;
    c->mc = mc;
    c->body_ref = LUA_NOREF;
    *socket_context = c;
    guard_open(s, c);
  } else if (c) {
    guard_close(s, c);
    conn_reset(c);
    free(c->body);
    free(c->raw_uri);
    free(c);
    *socket_context = NULL;
  }
}

static conn_t *conn_of(struct MHD_Connection *mc) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

/* Called once per request with the target as sent; its result becomes *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc) {
  conn_t *c = conn_of(mc);
  char *u;
  (void)cls;
  if (c == NULL) return NULL;
  conn_reset(c);
  if ((u = strdup(uri)) != NULL) {
    free(c->raw_uri);
    c->raw_uri = u;
  }
  c->requested = 1;
  c->phase_start = now_s();
  return c;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  conn_t *c = *con_cls;
  (void)cls, (void)mc, (void)toe;
  if (c) conn_reset(c);
}

static void on_log(void *cls, const char *fmt, va_list ap) {
  server_t *s = cls;
  if (s->starting) { /* keep the last start-up message: it says why the start failed */
    size_t n;
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    n = strlen(s->errmsg);
    while (n > 0 && (s->errmsg[n - 1] == '\n' || s->errmsg[n - 1] == '.')) s->errmsg[--n] = '\0';
  } else if (getenv("AEP_DEBUG")) {
    fputs("aep.server: ", stderr);
    vfprintf(stderr, fmt, ap);
  }
}

/* ---- answers ---------------------------------------------------------------------------- */

static enum MHD_Result queue_json(conn_t *c, unsigned status, const char *title, const char *detail) {
  size_t n = strlen(detail), i, j = 0;
  char *out = malloc(n * 6 + strlen(title) + 64);
  struct MHD_Response *r;
  enum MHD_Result ret;
  if (out == NULL) return MHD_NO;
  j += (size_t)sprintf(out, "{\"title\":\"%s\",\"status\":%u,\"detail\":\"", title, status);
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)detail[i];
    if (ch == '"' || ch == '\\') {
      out[j++] = '\\';
      out[j++] = (char)ch;
    } else if (ch < 0x20) {
      j += (size_t)sprintf(out + j, "\\u%04x", ch);
    } else {
      out[j++] = (char)ch;
    }
  }
  memcpy(out + j, "\"}", 3);
  j += 2;
  r = MHD_create_response_from_buffer(j, out, MHD_RESPMEM_MUST_FREE);
  if (r == NULL) {
    free(out);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  ret = MHD_queue_response(c->mc, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result queue_too_large(conn_t *c) {
  char detail[96];
  snprintf(detail, sizeof detail, "request body exceeds %zu bytes", c->limit);
  c->state = RQ_DONE;
  return queue_json(c, 413, "Payload Too Large", detail);
}

/* The request was handled (committed); instead of its answer: "close" ends the connection with
 * zero bytes, "reset" with a TCP reset (SO_LINGER 0: the socket is replaced under MHD's descriptor
 * by a fresh unconnected one, which closes the original at once; MHD then closes the stand-in),
 * "die" kills the whole process as kill -9 would. */
static enum MHD_Result answer_fault(conn_t *c) {
  if (c->drop == DROP_DIE) {
    fflush(NULL);
    raise(SIGKILL);
  }
  if (c->drop == DROP_RESET) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct linger lg = {1, 0};
    int spare = ci ? socket(AF_INET, SOCK_STREAM, 0) : -1;
    if (spare >= 0) {
      setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      dup2(spare, ci->connect_fd);
      close(spare);
    }
  }
  return MHD_NO;
}

/* Queue the answer prepared in c (or drop the connection). */
static enum MHD_Result answer(conn_t *c) {
  enum MHD_Result ret;
  c->state = RQ_DONE;
  if (c->drop >= DROP_CLOSE) return answer_fault(c);
  if (c->drop == DROP_BEFORE || c->resp == NULL) return MHD_NO;
  ret = MHD_queue_response(c->mc, c->status, c->resp);
  MHD_destroy_response(c->resp);
  c->resp = NULL;
  return ret;
}

static enum MHD_Result run_handler(conn_t *c, const char *url, const char *method) {
  server_t *s = c->srv;
  lua_State *L = s->L;
  int top = lua_gettop(L), rc;
  call_t call;
  call.c = c;
  call.url = url;
  call.method = method;
  call.delay = 0;
  if (!lua_checkstack(L, 8)) return MHD_NO;
  if (!c->committed) {
    c->committed = 1;
    s->answering++;
  }
  lua_pushcfunction(L, call_handler);
  lua_pushlightuserdata(L, &call);
  lua_pushvalue(L, s->handler);
  rc = lua_pcall(L, 2, 0, 0);
  if (rc != LUA_OK) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(error object is not a string)";
    enum MHD_Result ret;
    if (c->resp) MHD_destroy_response(c->resp);
    c->resp = NULL;
    if (c->body_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, c->body_ref);
    c->body_ref = LUA_NOREF;
    c->drop = DROP_NONE;
    c->state = RQ_DONE;
    ret = queue_json(c, 500, "Internal Server Error", msg ? msg : "?");
    lua_settop(L, top);
    return ret;
  }
  lua_settop(L, top);
  if (call.delay > 0) {
    c->state = RQ_DELAYED;
    c->in_list = 1;
    c->due = now_s() + call.delay;
    c->prev = NULL;
    c->next = s->delayed;
    if (s->delayed) s->delayed->prev = c;
    s->delayed = c;
    MHD_suspend_connection(c->mc);
    return MHD_YES;
  }
  return answer(c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  server_t *s = cls;
  conn_t *c = *con_cls;
  (void)version;
  if (c == NULL || s->closing) return MHD_NO;
  if (s->draining && c->state == RQ_IDLE) { /* a new request while shutting down: not taken */
    c->state = RQ_DONE;
    return queue_json(c, 503, "Service Unavailable", "the server is shutting down");
  }
  switch (c->state) {
    case RQ_IDLE: { /* headers only */
      const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      c->state = RQ_BODY;
      c->phase_start = now_s();
      c->limit = guard_limit(s, c, url, method);
      if (cl) {
        unsigned long long n = strtoull(cl, NULL, 10);
        if (n > c->limit) { /* answer before reading: MHD will not read the body */
          c->too_large = 1;
          c->body_seen = n > (unsigned long long)SIZE_MAX ? SIZE_MAX : (size_t)n;
          return s->limit_ref == LUA_NOREF ? queue_too_large(c) : run_handler(c, url, method);
        }
        if (n > c->body_cap) {
          char *p = realloc(c->body, (size_t)n);
          if (p == NULL) return MHD_NO;
          c->body = p;
          c->body_cap = (size_t)n;
        }
      }
      return MHD_YES;
    }
    case RQ_BODY:
      if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        c->body_seen += n;
        if (c->too_large) return MHD_YES;
        if (c->body_len + n > c->limit) { /* chunked: discard the rest, answer 413 at the end */
          c->too_large = 1;
          return MHD_YES;
        }
        if (c->body_len + n > c->body_cap) {
          size_t cap = c->body_cap ? c->body_cap : 16384;
          char *p;
          while (cap < c->body_len + n) cap *= 2;
          if (cap > c->limit) cap = c->limit;
          if ((p = realloc(c->body, cap)) == NULL) return MHD_NO;
          c->body = p;
          c->body_cap = cap;
        }
        memcpy(c->body + c->body_len, upload, n);
        c->body_len += n;
        return MHD_YES;
      }
      if (c->too_large && s->limit_ref == LUA_NOREF) return queue_too_large(c);
      return run_handler(c, url, method);
    case RQ_DELAYED: /* resumed */
      return answer(c);
    default: /* answered early (413): MHD discards the rest */
      *upload_size = 0;
      return MHD_YES;
  }
}

/* ---- the loop --------------------------------------------------------------------------- */

static server_t *check_server(lua_State *L) {
  server_t *s = luaL_checkudata(L, 1, SERVER_MT);
  if (s->closed) luaL_error(L, "server: server is closed");
  return s;
}

/* Resume the connections whose delay is over; returns seconds until the next one is due (or -1). */
static double resume_due(server_t *s) {
  double now = now_s(), next = -1;
  conn_t *c = s->delayed, *n;
  for (; c; c = n) {
    n = c->next;
    if (c->due <= now || s->closing) {
      delayed_unlink(c);
      MHD_resume_connection(c->mc); /* on_request answers it */
      next = 0;
    } else if (next < 0 || c->due - now < next) {
      next = c->due - now;
    }
  }
  return next;
}

/* One iteration: wait up to timeout seconds (<0: no limit) for activity, then let MHD work.
 * With catch_signals, SIGINT/SIGTERM are blocked except inside pselect, so one arriving between the
 * check of server_signal and the wait still ends the wait.
 * select, not MHD's epoll mode: libmicrohttpd 0.9.75's edge-triggered epoll misses a client's EOF
 * that arrives with the last bytes of an incomplete body, and such a connection then lingers until
 * the idle timeout (a storm of them exhausts descriptors); level-triggered select sees it at once
 * (tests/lua/emulator_safety_spec.lua). */
static void server_iterate(server_t *s, double timeout, int catch_signals) {
  MHD_UNSIGNED_LONG_LONG mto;
  double due = resume_due(s), guard_due = guard_sweep(s);
  fd_set rs, ws, es;
  MHD_socket max = -1;
  struct timespec ts, *tsp = NULL;
  int n = -1;
  if (due >= 0 && (timeout < 0 || due < timeout)) timeout = due;
  if (guard_due >= 0 && (timeout < 0 || guard_due < timeout)) timeout = guard_due;
  if (MHD_get_timeout(s->d, &mto) == MHD_YES && (timeout < 0 || mto / 1000.0 < timeout)) timeout = mto / 1000.0;
  if (timeout > 3600) timeout = 3600; /* a wake-up bound, not a deadline (the loop recomputes): a huge
                                        delay or step() timeout must not overflow time_t */
  if (timeout >= 0) {
    ts.tv_sec = (time_t)timeout;
    ts.tv_nsec = (long)((timeout - (double)ts.tv_sec) * 1e9);
    tsp = &ts;
  }
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_ZERO(&es);
  if (MHD_get_fdset2(s->d, &rs, &ws, &es, &max, FD_SETSIZE) != MHD_YES) max = -1;
  if (catch_signals) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    if (!server_signal) n = pselect(max + 1, &rs, &ws, &es, tsp, &old);
    sigprocmask(SIG_SETMASK, &old, NULL);
  } else {
    n = pselect(max + 1, &rs, &ws, &es, tsp, NULL);
  }
  if (n < 0) { /* interrupted: nothing is known to be ready, but MHD still handles its timeouts */
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
  }
  s->running = 1;
  MHD_run_from_select(s->d, &rs, &ws, &es);
  s->running = 0;
}

static void server_release(server_t *s) {
  if (s->closed) return;
  s->closed = 1;
  if (s->d) {
    s->closing = 1;
    resume_due(s); /* MHD must not be stopped with suspended connections */
    MHD_run(s->d);
    MHD_stop_daemon(s->d);
    s->d = NULL;
  }
  free(s->tls_cert);
  free(s->tls_key);
  s->tls_cert = s->tls_key = NULL;
  if (s->limit_ref != LUA_NOREF && s->L) luaL_unref(s->L, LUA_REGISTRYINDEX, s->limit_ref);
  s->limit_ref = LUA_NOREF;
}

/* After the signal that ends serve(): accept nothing new, refuse new requests on open connections
 * (503), send the answers held by a delay at once, and keep the loop running until every request
 * already handled (committed) has its answer sent, for at most DRAIN_GRACE seconds. A client thus
 * never has to guess whether a request the server took was stored. */
#define DRAIN_GRACE 10.0
static void server_drain(server_t *s) {
  double limit = now_s() + DRAIN_GRACE;
  MHD_socket ls;
  conn_t *c;
  s->draining = 1;
  ls = MHD_quiesce_daemon(s->d);
  if (ls != MHD_INVALID_SOCKET) close(ls);
  for (c = s->delayed; c; c = c->next) c->due = 0; /* resume_due answers them now */
  while (s->answering > 0 && now_s() < limit) server_iterate(s, 0.25, 0);
}

/* The first SIGINT/SIGTERM ends serve() after the current iteration; a second one (say, a handler
 * stuck in a loop) kills as if we had not caught it. */
static void on_signal(int sig) {
  if (server_signal) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  server_signal = sig;
}

/* srv:serve(handler[, ready[, idle]]) -> "signal" | "stopped". ready() is called once the
 * SIGINT/SIGTERM handlers are in place: print "ready" lines there, so a signal sent on seeing them
 * is caught. idle: see run_idle. */
static int server_serve(lua_State *L) {
  server_t *s = check_server(L);
  struct sigaction sa, old_int, old_term;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TFUNCTION);
  if (s->handler) return luaL_error(L, "server: serve/step called from inside a handler");
  lua_settop(L, 4);
  s->L = L;
  s->handler = 2;
  s->stop = 0;
  server_signal = 0;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART; /* the handler's own I/O is not disturbed; pselect is never restarted */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  if (!lua_isnil(L, 3)) {
    lua_pushvalue(L, 3);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
      sigaction(SIGINT, &old_int, NULL);
      sigaction(SIGTERM, &old_term, NULL);
      s->handler = 0;
      return lua_error(L);
    }
    lua_settop(L, 4);
  }
  {
    double wait = run_idle(L, 4);
    while (!s->stop && !server_signal && !s->close_pending) {
      server_iterate(s, wait, 1);
      wait = run_idle(L, 4);
    }
  }
  if (server_signal && !s->stop && !s->close_pending) server_drain(s);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  s->handler = 0;
  if (s->close_pending) server_release(s);
  lua_pushstring(L, server_signal && !s->stop && !s->closed ? "signal" : "stopped");
  server_signal = 0;
  return 1;
}

/* srv:step(timeout_s, handler): one iteration of the loop (for tests and custom loops) */
static int server_step(lua_State *L) {
  server_t *s = check_server(L);
  double timeout = luaL_checknumber(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (s->handler) return luaL_error(L, "server: serve/step called from inside a handler");
  lua_settop(L, 3);
  s->L = L;
  s->handler = 3;
  server_iterate(s, timeout >= 0 ? timeout : 0, 0); /* NaN too */
  s->handler = 0;
  if (s->close_pending) server_release(s);
  return 0;
}

/* srv:stop(): make serve return "stopped" after the current iteration */
static int server_stop(lua_State *L) {
  server_t *s = check_server(L);
  s->stop = 1;
  return 0;
}

/* srv:close(); also __gc and __close. Inside a handler the close happens when MHD returns. */
static int server_close(lua_State *L) {
  server_t *s = luaL_checkudata(L, 1, SERVER_MT);
  if (s->closed) return 0;
  if (s->running) {
    s->close_pending = 1;
    s->stop = 1;
    return 0;
  }
  s->L = L;
  server_release(s);
  return 0;
}

/* srv:port() -> number */
static int server_port(lua_State *L) {
  lua_pushinteger(L, check_server(L)->port);
  return 1;
}

/* srv:url() -> "http://127.0.0.1:PORT" */
static int server_url(lua_State *L) {
  lua_pushstring(L, check_server(L)->url);
  return 1;
}

static int server_tostring(lua_State *L) {
  server_t *s = luaL_checkudata(L, 1, SERVER_MT);
  lua_pushfstring(L, "aep.server.Server (%s)", s->closed ? "closed" : s->url);
  return 1;
}

static char *opt_pem(lua_State *L, const char *k) {
  char *p;
  lua_getfield(L, 1, k);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "server: '%s' must be a PEM string", k);
  if ((p = strdup(lua_tostring(L, -1))) == NULL) luaL_error(L, "server: out of memory");
  lua_pop(L, 1);
  return p;
}

/* server.listen{host="127.0.0.1", port=0, tls_cert, tls_key, max_body=10MB, idle_timeout=60,
 *   body_limit=fn(method, raw_path) -> bytes, max_connections, per_ip_connections, header_timeout=10,
 *   body_timeout=30} -> Server | nil, msg, code */
static int server_listen(lua_State *L) {
  server_t *s;
  const char *host;
  lua_Integer port, max_body, idle;
  struct addrinfo hints, *ai = NULL;
  char portstr[16];
  unsigned flags = MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG; /* external select: see server_iterate */
  int rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "host");
  host = lua_isnil(L, -1) ? "127.0.0.1" : lua_tostring(L, -1);
  if (host == NULL || strlen(host) >= 64) return luaL_error(L, "server: bad 'host'");
  port = aep_opt_int_field(L, 1, "port", 0);
  max_body = aep_opt_int_field(L, 1, "max_body", DEFAULT_MAX_BODY);
  idle = aep_opt_int_field(L, 1, "idle_timeout", 60);
  if (port < 0 || port > 65535) return luaL_error(L, "server: bad 'port'");
  if (max_body < 0) return luaL_error(L, "server: bad 'max_body'");
  if (idle < 0) return luaL_error(L, "server: bad 'idle_timeout'");
  s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->limit_ref = LUA_NOREF;
  s->closed = 1;
  luaL_setmetatable(L, SERVER_MT);
  s->tls_cert = opt_pem(L, "tls_cert");
  s->tls_key = opt_pem(L, "tls_key");
  if (!s->tls_cert != !s->tls_key) {
    s->closed = 0;
    server_release(s);
    return luaL_error(L, "server: 'tls_cert' and 'tls_key' go together");
  }
  s->tls = s->tls_cert != NULL;
  s->max_body = (size_t)max_body;
  s->limit_ref = LUA_NOREF;
  guard_options(L, s);
  snprintf(s->host, sizeof s->host, "%s", host);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  snprintf(portstr, sizeof portstr, "%d", (int)port);
  if ((rc = getaddrinfo(host, portstr, &hints, &ai)) != 0) {
    s->closed = 0;
    server_release(s);
    lua_pushnil(L);
    lua_pushfstring(L, "cannot resolve '%s': %s", host, gai_strerror(rc));
    lua_pushliteral(L, "LISTEN");
    return 3;
  }
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  if (s->tls) flags |= MHD_USE_TLS;
  s->starting = 1;
  s->L = L;
  { /* the TLS options, or none (an empty array) */
    struct MHD_OptionItem tls[] = {{MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
                                   {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert}, {MHD_OPTION_END, 0, NULL}};
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
                            s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)idle,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->max_conns, MHD_OPTION_ARRAY,
                            s->tls ? tls : tls + 2, MHD_OPTION_END);
  }
  s->starting = 0;
  freeaddrinfo(ai);
  s->closed = 0;
  if (s->d == NULL) {
    const char *code = s->tls && (strstr(s->errmsg, "TLS") || strstr(s->errmsg, "certificate") ||
                                  strstr(s->errmsg, "key")) ? "TLS" : "LISTEN";
    lua_pushnil(L);
    lua_pushfstring(L, "cannot listen on %s:%d: %s", host, (int)port,
                    s->errmsg[0] ? s->errmsg : "libmicrohttpd failed to start");
    lua_pushstring(L, code);
    server_release(s);
    return 3;
  }
  {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    int v6 = strchr(host, ':') != NULL;
    const char *shown = host;
    s->port = di ? di->port : (int)port;
    if (strcmp(host, "0.0.0.0") == 0) shown = "127.0.0.1";
    if (strcmp(host, "::") == 0) shown = "::1";
    snprintf(s->url, sizeof s->url, "%s://%s%s%s:%d", s->tls ? "https" : "http", v6 ? "[" : "", shown,
             v6 ? "]" : "", s->port);
  }
  return 1;
}

static const luaL_Reg server_methods[] = {
  {"port", server_port}, {"url", server_url},   {"serve", server_serve}, {"step", server_step},
  {"stop", server_stop}, {"close", server_close}, {NULL, NULL}};

static const luaL_Reg server_meta[] = {
  {"__gc", server_close}, {"__close", server_close}, {"__tostring", server_tostring}, {NULL, NULL}};

static const luaL_Reg server_funcs[] = {{"listen", server_listen}, {NULL, NULL}};

int luaopen_aep_server(lua_State *L) {
  luaL_newmetatable(L, SERVER_MT);
  luaL_setfuncs(L, server_meta, 0);
  luaL_newlib(L, server_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, server_funcs);
  return 1;
}
