/* aep.server: an HTTP/1.1 server mechanism on libmicrohttpd.
 *
 * One thread: libmicrohttpd runs in "external select" mode and is driven from srv:serve/srv:step,
 * so the Lua handler is only ever called from the thread that is inside serve/step and the
 * lua_State is never entered concurrently. Each TCP connection owns a small C struct (the MHD
 * socket context) holding the request being received (core/server_conn.c; the connection guard:
 * core/server_guard.c; the request table and the answer: core/server_handler.c).
 * A `delay` suspends the connection and resumes it from the loop when due, so other connections
 * keep being served. Response bodies are Lua strings kept alive by a registry ref until MHD has
 * sent them (no copy). */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "server_conn.h"

/* Set by our SIGINT/SIGTERM handler while serve() runs (signal handlers need a global). */
static volatile sig_atomic_t server_signal = 0;

/* ---- the loop --------------------------------------------------------------------------- */

static int server_is_open(const void *s) { return !((const server_t *)s)->closed; }

static server_t *check_server(lua_State *L) {
  return aep_check_handle(L, 1, SERVER_MT, server_is_open, "server: server is closed");
}

/* Resume the connections whose delay is over; returns seconds until the next one is due (or -1). */
static double resume_due(server_t *s) {
  double now = aep_monotonic(), next = -1;
  conn_t *c = s->delayed, *n;
  for (; c; c = n) {
    n = c->next;
    if (c->due <= now || s->closing) {
      server_delayed_unlink(c);
      MHD_resume_connection(c->mc); /* server_on_request answers it */
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
  double limit = aep_monotonic() + DRAIN_GRACE;
  MHD_socket ls;
  conn_t *c;
  s->draining = 1;
  ls = MHD_quiesce_daemon(s->d);
  if (ls != MHD_INVALID_SOCKET) close(ls);
  for (c = s->delayed; c; c = c->next) c->due = 0; /* resume_due answers them now */
  while (s->answering > 0 && aep_monotonic() < limit) server_iterate(s, 0.25, 0);
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
    double wait = server_run_idle(L, 4);
    while (!s->stop && !server_signal && !s->close_pending) {
      server_iterate(s, wait, 1);
      wait = server_run_idle(L, 4);
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

/* A PEM option of listen, copied (MHD keeps pointing at it). */
static char *opt_pem(lua_State *L, const char *k) {
  const char *pem = aep_opt_string_field(L, 1, k, NULL);
  char *p = pem ? strdup(pem) : NULL;
  if (pem && p == NULL) luaL_error(L, "server: out of memory");
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
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, server_on_request, s, MHD_OPTION_EXTERNAL_LOGGER, server_on_log, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_CONNECTION, server_on_connection,
                            s, MHD_OPTION_URI_LOG_CALLBACK, server_on_uri, s, MHD_OPTION_NOTIFY_COMPLETED,
                            server_on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)idle,
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

static const luaL_Reg server_funcs[] = {{"listen", server_listen}, {NULL, NULL}};

int luaopen_aep_server(lua_State *L) {
  aep_new_type(L, SERVER_MT, server_methods, server_close, server_tostring);
  luaL_newlib(L, server_funcs);
  return 1;
}
