/* aep.server: each connection's request as libmicrohttpd delivers it (body chunks appended to a
 * buffer bounded by the route's limit, the handler run once on the final call), and the answers:
 * the handler's, a delayed one, a fault (drop), or the server's own JSON errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server_conn.h"

/* ---- per-request state ------------------------------------------------------------------ */

void server_delayed_unlink(conn_t *c) {
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
  server_delayed_unlink(c);
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

void server_on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
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
void *server_on_uri(void *cls, const char *uri, struct MHD_Connection *mc) {
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
  c->phase_start = aep_monotonic();
  return c;
}

void server_on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  conn_t *c = *con_cls;
  (void)cls, (void)mc, (void)toe;
  if (c) conn_reset(c);
}

void server_on_log(void *cls, const char *fmt, va_list ap) {
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
  lua_pushcfunction(L, server_call_handler);
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
    c->due = aep_monotonic() + call.delay;
    c->prev = NULL;
    c->next = s->delayed;
    if (s->delayed) s->delayed->prev = c;
    s->delayed = c;
    MHD_suspend_connection(c->mc);
    return MHD_YES;
  }
  return answer(c);
}

enum MHD_Result server_on_request(void *cls, struct MHD_Connection *mc, const char *url,
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
      c->phase_start = aep_monotonic();
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
