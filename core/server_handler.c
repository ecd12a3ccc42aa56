/* aep.server: the conversion between libmicrohttpd and Lua (the request table given to the
 * handler, and the handler's answer turned into an MHD response), and the serve loop's idle hook.
 * server_call_handler runs under the lua_pcall in server_conn.c's run_handler, so a raise unwinds
 * to that pcall and never through libmicrohttpd's frames; MHD's own callbacks here use no Lua. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server_conn.h"

/* drop="after": announce the whole body, send half of it, then fail so MHD closes the socket. */
static ssize_t read_half(void *cls, uint64_t pos, char *buf, size_t max) {
  conn_t *c = cls;
  size_t half = c->out_len / 2, n;
  if (pos >= half) return MHD_CONTENT_READER_END_WITH_ERROR;
  n = half - (size_t)pos < max ? half - (size_t)pos : max;
  memcpy(buf, c->out + pos, n);
  return (ssize_t)n;
}


typedef struct {
  const char *k, *v;
  size_t klen, vlen;
} kv_t;

typedef struct {
  kv_t *a;
  int n, max;
} kvs_t;

static enum MHD_Result collect_kv(void *cls, enum MHD_ValueKind kind, const char *k, size_t klen,
                                  const char *v, size_t vlen) {
  kvs_t *kv = cls;
  (void)kind;
  if (kv->n < kv->max) {
    kv->a[kv->n].k = k;
    kv->a[kv->n].klen = klen;
    kv->a[kv->n].v = v ? v : "";
    kv->a[kv->n].vlen = v ? vlen : 0;
    kv->n++;
  }
  return MHD_YES;
}

/* Copy MHD's values of one kind into a scratch userdata left on the stack (no Lua runs inside
 * MHD's iterator). */
static kvs_t get_values(lua_State *L, struct MHD_Connection *mc, enum MHD_ValueKind kind) {
  kvs_t kv = {NULL, 0, 0};
  int n = MHD_get_connection_values_n(mc, kind, NULL, NULL);
  kv.max = n > 0 ? n : 0;
  kv.a = lua_newuserdatauv(L, (size_t)kv.max * sizeof *kv.a + 1, 0);
  if (n > 0) MHD_get_connection_values_n(mc, kind, collect_kv, &kv);
  return kv;
}

static void push_request(lua_State *L, call_t *call) {
  conn_t *c = call->c;
  const union MHD_ConnectionInfo *ci;
  const char *raw = c->raw_uri ? c->raw_uri : call->url, *q = strchr(raw, '?');
  kvs_t kv;
  int i, qi;
  lua_createtable(L, 0, 11);
  lua_pushstring(L, call->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, call->url);
  lua_setfield(L, -2, "path");
  lua_pushlstring(L, raw, q ? (size_t)(q - raw) : strlen(raw));
  lua_setfield(L, -2, "raw_path");
  lua_pushstring(L, q ? q + 1 : "");
  lua_setfield(L, -2, "raw_query");

  lua_newtable(L);
  qi = lua_gettop(L); /* query: last value wins */
  lua_newtable(L);    /* query_all: every value */
  kv = get_values(L, c->mc, MHD_GET_ARGUMENT_KIND);
  for (i = 0; i < kv.n; i++) {
    lua_pushlstring(L, kv.a[i].k, kv.a[i].klen); /* qi+3 */
    lua_pushlstring(L, kv.a[i].v, kv.a[i].vlen); /* qi+4 */
    lua_pushvalue(L, qi + 3);
    lua_pushvalue(L, qi + 4);
    lua_rawset(L, qi);
    lua_pushvalue(L, qi + 3);
    if (lua_rawget(L, qi + 1) != LUA_TTABLE) { /* qi+5 */
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, qi + 3);
      lua_pushvalue(L, qi + 5);
      lua_rawset(L, qi + 1);
    }
    lua_pushvalue(L, qi + 4);
    lua_rawseti(L, qi + 5, (lua_Integer)lua_rawlen(L, qi + 5) + 1);
    lua_settop(L, qi + 2);
  }
  lua_pop(L, 1);
  lua_setfield(L, qi - 1, "query_all");
  lua_setfield(L, qi - 1, "query");

  lua_newtable(L); /* headers: lower-cased names, repeats joined with ", " */
  qi = lua_gettop(L);
  kv = get_values(L, c->mc, MHD_HEADER_KIND);
  for (i = 0; i < kv.n; i++) {
    luaL_Buffer b;
    size_t j;
    luaL_buffinit(L, &b);
    for (j = 0; j < kv.a[i].klen; j++) {
      char ch = kv.a[i].k[j];
      luaL_addchar(&b, (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch));
    }
    luaL_pushresult(&b);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, qi) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, kv.a[i].v, kv.a[i].vlen);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, kv.a[i].v, kv.a[i].vlen);
    }
    lua_rawset(L, qi);
  }
  lua_pop(L, 1);
  lua_setfield(L, qi - 1, "headers");

  lua_pushlstring(L, c->body ? c->body : "", c->body_len);
  lua_setfield(L, -2, "body");
  if (c->too_large) { /* refused before (or while) reading: the body is not there */
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "too_large");
    lua_pushinteger(L, (lua_Integer)c->limit);
    lua_setfield(L, -2, "body_limit");
    lua_pushinteger(L, (lua_Integer)c->body_seen);
    lua_setfield(L, -2, "body_size");
  }
  ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci && ci->client_addr) {
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ci->client_addr->sa_family == AF_INET) {
      const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ci->client_addr;
      inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
      port = ntohs(a->sin_port);
    } else if (ci->client_addr->sa_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ci->client_addr;
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    }
    lua_pushstring(L, ip);
    lua_setfield(L, -2, "remote");
    lua_pushinteger(L, port);
    lua_setfield(L, -2, "remote_port");
  }
}

static void add_headers(lua_State *L, int idx, conn_t *c) {
  if (lua_isnil(L, idx)) return;
  if (!lua_istable(L, idx)) luaL_error(L, "server: response headers must be a table");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int vi = lua_gettop(L), j, n = 1;
    const char *k;
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "server: header names must be strings");
    k = lua_tostring(L, -2);
    if (lua_istable(L, vi)) n = (int)lua_rawlen(L, vi);
    for (j = 1; j <= n; j++) {
      const char *v;
      if (lua_istable(L, vi)) lua_rawgeti(L, vi, j);
      else lua_pushvalue(L, vi);
      if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "server: header '%s' must be a string or a number", k);
      v = lua_tostring(L, -1);
      if (strpbrk(k, "\r\n: ") || strpbrk(v, "\r\n"))
        luaL_error(L, "server: bad response header '%s'", k);
      /* MHD sets Content-Length itself and refuses a second one: ignore it */
      if (strcasecmp(k, "content-length") != 0 && MHD_add_response_header(c->resp, k, v) != MHD_YES)
        luaL_error(L, "server: cannot set response header '%s'", k);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

int server_call_handler(lua_State *L) {
  call_t *call = lua_touserdata(L, 1);
  conn_t *c = call->c;
  int hidx, bidx, nres;
  lua_Integer status = 200;
  size_t blen = 0;
  const char *body;
  lua_settop(L, 2);
  push_request(L, call);
  lua_call(L, 1, LUA_MULTRET);
  nres = lua_gettop(L) - 1;
  if (nres >= 1 && lua_istable(L, 2)) {
    const char *drop;
    lua_getfield(L, 2, "status");
    lua_getfield(L, 2, "headers");
    lua_getfield(L, 2, "body");
    lua_getfield(L, 2, "delay");
    lua_getfield(L, 2, "drop");
    if (!lua_isnil(L, -5)) {
      int ok;
      status = lua_tointegerx(L, -5, &ok);
      if (!ok) luaL_error(L, "server: 'status' must be an integer");
    }
    if (!lua_isnil(L, -2)) {
      if (!lua_isnumber(L, -2) || !(lua_tonumber(L, -2) >= 0)) /* NaN too: it was never due */
        luaL_error(L, "server: 'delay' must be a number >= 0");
      call->delay = lua_tonumber(L, -2);
    }
    drop = lua_tostring(L, -1);
    if (drop && strcmp(drop, "before") == 0) c->drop = DROP_BEFORE;
    else if (drop && strcmp(drop, "after") == 0) c->drop = DROP_AFTER;
    else if (drop && strcmp(drop, "close") == 0) c->drop = DROP_CLOSE;
    else if (drop && strcmp(drop, "reset") == 0) c->drop = DROP_RESET;
    else if (drop && strcmp(drop, "die") == 0) c->drop = DROP_DIE;
    else if (!lua_isnil(L, -1))
      luaL_error(L, "server: 'drop' must be \"before\", \"after\", \"close\", \"reset\" or \"die\"");
    lua_pop(L, 2);
    hidx = lua_gettop(L) - 1;
    bidx = lua_gettop(L);
  } else if (nres >= 1 && lua_type(L, 2) == LUA_TNUMBER) {
    int ok;
    lua_settop(L, 4);
    status = lua_tointegerx(L, 2, &ok);
    if (!ok) luaL_error(L, "server: status must be an integer");
    hidx = 3;
    bidx = 4;
  } else {
    return luaL_error(L, "server: handler must return status, headers, body or a response table (got %s)",
                      nres >= 1 ? luaL_typename(L, 2) : "nothing");
  }
  if (status < 100 || status > 999) luaL_error(L, "server: bad status %I", status);
  c->status = (unsigned)status;
  if (!lua_isnil(L, bidx) && !lua_isstring(L, bidx)) luaL_error(L, "server: body must be a string");
  body = lua_isnil(L, bidx) ? "" : lua_tolstring(L, bidx, &blen);
  if (c->drop == DROP_BEFORE) return 0;
  lua_pushvalue(L, bidx);
  c->body_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* nil gives LUA_REFNIL: nothing to keep */
  c->out = body;
  c->out_len = blen;
  if (c->drop == DROP_AFTER)
    c->resp = MHD_create_response_from_callback(blen ? blen : 2, 4096, read_half, c, NULL);
  else
    c->resp = MHD_create_response_from_buffer(blen, (void *)body, MHD_RESPMEM_PERSISTENT);
  if (c->resp == NULL) luaL_error(L, "server: cannot create response");
  add_headers(L, hidx, c);
  return 0;
}

/* Between iterations: idle() -> true while it has more work (the next wait is then 0 s), a number
 * of seconds until it next has work (the wait is at most that), or false/nil (wait for requests
 * only). Long work done in slices never keeps requests waiting longer than one slice; timed work
 * (a window that closes) runs without a request to wake the loop. An error stops the hook.
 * Returns the wait bound in seconds, <0: none. */
double server_run_idle(lua_State *L, int idx) {
  double wait = -1;
  if (lua_isnil(L, idx)) return -1;
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "aep.server: idle: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_replace(L, idx);
    return -1;
  }
  if (lua_type(L, -1) == LUA_TNUMBER) {
    wait = lua_tonumber(L, -1);
    if (!(wait >= 0)) wait = 0; /* NaN too */
  } else if (lua_toboolean(L, -1)) {
    wait = 0;
  }
  lua_pop(L, 1);
  return wait;
}
