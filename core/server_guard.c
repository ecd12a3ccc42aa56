/* What keeps aep.server's loop answering: the connection guard (connection limits, eviction of
 * stalled clients, header and body deadlines, per-route body limits). */
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>

#include "server_conn.h"

/* Slow or idle clients must not keep others out (select() also cannot watch a descriptor past
 * FD_SETSIZE). MHD refuses connections over max_conns (below both FD_SETSIZE and the descriptor
 * limit). Past soft_conns, or past per_ip for one client address, a new connection evicts the
 * oldest one that has not finished sending its headers (that client's first): a stalled client
 * loses its place, a new one gets in. A request line must be followed by complete headers within
 * header_timeout, and a body must arrive within body_timeout plus a second per MiB. Eviction is a
 * shutdown() of the socket: MHD sees the end of the stream and closes the connection itself. */

#define GUARD_RESERVE_FDS 64        /* descriptors kept for SQLite, logs, clients of our own */
#define GUARD_MIN_BODY_RATE 1048576.0 /* bytes per second a body must at least arrive at */

static int same_client(const conn_t *a, const conn_t *b) {
  if (a->addr.ss_family != b->addr.ss_family) return 0;
  if (a->addr.ss_family == AF_INET)
    return memcmp(&((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr,
                  &((const struct sockaddr_in *)(const void *)&b->addr)->sin_addr, sizeof(struct in_addr)) == 0;
  if (a->addr.ss_family == AF_INET6)
    return memcmp(&((const struct sockaddr_in6 *)(const void *)&a->addr)->sin6_addr,
                  &((const struct sockaddr_in6 *)(const void *)&b->addr)->sin6_addr, sizeof(struct in6_addr)) == 0;
  return 0;
}

static void guard_evict(conn_t *c) {
  const union MHD_ConnectionInfo *ci;
  if (c->evicted) return;
  c->evicted = 1;
  c->srv->nconns--;
  ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci) shutdown(ci->connect_fd, SHUT_RDWR);
}

/* A connection opened: remember it and its client, and make room if needed. */
void guard_open(server_t *s, conn_t *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  conn_t *x, *oldest = NULL, *oldest_mine = NULL;
  int mine = 0;
  if (ci && ci->client_addr) {
    size_t n = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&c->addr, ci->client_addr, n);
  }
  c->phase_start = aep_monotonic();
  for (x = s->conns; x; x = x->anext) { /* newest first: the last stalled one seen is the oldest */
    if (x->evicted) continue;
    if (x->state == RQ_IDLE) oldest = x;
    if (same_client(x, c)) {
      mine++;
      if (x->state == RQ_IDLE) oldest_mine = x;
    }
  }
  c->anext = s->conns;
  if (s->conns) s->conns->aprev = c;
  s->conns = c;
  s->nconns++;
  if (mine >= s->per_ip) guard_evict(oldest_mine ? oldest_mine : c);
  else if (s->nconns > s->soft_conns && (oldest_mine || oldest)) guard_evict(oldest_mine ? oldest_mine : oldest);
}

void guard_close(server_t *s, conn_t *c) {
  if (!c->evicted) s->nconns--;
  if (c->aprev) c->aprev->anext = c->anext;
  else if (s->conns == c) s->conns = c->anext;
  if (c->anext) c->anext->aprev = c->aprev;
  c->aprev = c->anext = NULL;
}

/* Evict the connections past their deadline; returns seconds until the next deadline (or -1). */
double guard_sweep(server_t *s) {
  double now = aep_monotonic(), next = -1, due;
  conn_t *x;
  for (x = s->conns; x; x = x->anext) {
    if (x->evicted) continue;
    if (x->state == RQ_IDLE && x->requested) due = x->phase_start + s->header_timeout;
    else if (x->state == RQ_BODY) /* a chunked body discarded past its limit earns no more time */
      due = x->phase_start + s->body_timeout +
            (double)(x->body_seen < x->limit ? x->body_seen : x->limit) / GUARD_MIN_BODY_RATE;
    else continue;
    if (due <= now) guard_evict(x);
    else if (next < 0 || due - now < next) next = due - now;
  }
  return next;
}

/* How many connections this process can serve: below FD_SETSIZE (select) and RLIMIT_NOFILE. */
static int guard_capacity(lua_Integer wanted) {
  struct rlimit rl;
  long cap = FD_SETSIZE;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < cap)
    cap = (long)rl.rlim_cur;
  cap -= GUARD_RESERVE_FDS;
  if (wanted > 0 && wanted < cap) cap = (long)wanted;
  return cap < 8 ? 8 : (int)cap;
}

/* The body limit of this request: the Lua body_limit(method, raw path) if given (never above
 * max_body), else max_body. A failing body_limit gives max_body. */
size_t guard_limit(server_t *s, const conn_t *c, const char *url, const char *method) {
  lua_State *L = s->L;
  size_t limit = s->max_body;
  int top;
  if (s->limit_ref == LUA_NOREF || L == NULL || !lua_checkstack(L, 4)) return limit;
  top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->limit_ref);
  lua_pushstring(L, method);
  if (c->raw_uri) /* the path as sent: routes match percent-encoded segments (schema $ids) */
    lua_pushlstring(L, c->raw_uri, strcspn(c->raw_uri, "?"));
  else
    lua_pushstring(L, url);
  if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_isinteger(L, -1)) {
    lua_Integer n = lua_tointeger(L, -1);
    if (n >= 0 && (size_t)n < limit) limit = (size_t)n;
  }
  lua_settop(L, top);
  return limit;
}

/* listen's guard options (table at index 1); the body_limit function is kept by a registry ref */
void guard_options(lua_State *L, server_t *s) {
  lua_Integer max_conns = aep_opt_int_field(L, 1, "max_connections", 0);
  lua_Integer per_ip = aep_opt_int_field(L, 1, "per_ip_connections", 0);
  s->header_timeout = (double)aep_opt_int_field(L, 1, "header_timeout", 10);
  s->body_timeout = (double)aep_opt_int_field(L, 1, "body_timeout", 30);
  s->max_conns = guard_capacity(max_conns);
  s->soft_conns = s->max_conns - (s->max_conns / 16 > 4 ? s->max_conns / 16 : 4);
  s->per_ip = per_ip > 0 && per_ip < s->soft_conns ? (int)per_ip : s->soft_conns * 3 / 4;
  if (s->per_ip < 1) s->per_ip = 1;
  lua_getfield(L, 1, "body_limit");
  if (lua_isfunction(L, -1)) s->limit_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else lua_pop(L, 1);
}
