/* aep.server's parts (core/aep_server.c: the loop and the Lua API; core/server_conn.c: each
 * connection's request, MHD's callbacks and the answers; core/server_handler.c: the request table
 * for the Lua handler and its answer as an MHD response, the idle hook; core/server_guard.c: the
 * connection guard): the shared state and what each part offers the others. */
#ifndef AEP_SERVER_CONN_H
#define AEP_SERVER_CONN_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "aep.h"

#define SERVER_MT "aep.server.Server"
#define DEFAULT_MAX_BODY ((lua_Integer)10 * 1024 * 1024)
#define KEEP_BUF (256 * 1024) /* body buffer capacity kept between requests on a connection */

typedef struct server server_t;
typedef struct conn conn_t;

enum { RQ_IDLE, RQ_BODY, RQ_DELAYED, RQ_DONE };
enum { DROP_NONE, DROP_BEFORE, DROP_AFTER, DROP_CLOSE, DROP_RESET, DROP_DIE };

struct conn {
  server_t *srv;
  struct MHD_Connection *mc;
  char *raw_uri; /* request target as sent */
  char *body;
  size_t body_len, body_cap;
  int state, too_large, in_list;
  /* the answer: built by the handler, queued now or when the delay is over */
  struct MHD_Response *resp;
  unsigned status;
  int drop, body_ref;
  int committed;        /* the handler ran: counted in srv->answering until the answer is done */
  const char *out;      /* response body (inside the ref'd string) for drop="after" */
  size_t out_len;
  double due;
  conn_t *prev, *next; /* list of delayed connections */
  /* the connection guard (server_guard.c): every open connection, its client and its deadlines */
  conn_t *aprev, *anext;
  struct sockaddr_storage addr;
  double phase_start; /* request line seen (headers phase) or headers done (body phase) */
  size_t limit, body_seen; /* this request's body limit; bytes of body received (kept or not) */
  int requested, evicted;
};

struct server {
  struct MHD_Daemon *d;
  lua_State *L; /* the thread inside serve/step/close: the only one MHD callbacks may use */
  int handler;  /* stack index of the handler in L while serving */
  size_t max_body;
  char host[64], url[128];
  int port, tls, running, stop, close_pending, closed, closing, starting;
  int answering, draining; /* requests handled but not yet answered; shutting down after a signal */
  char *tls_cert, *tls_key;
  conn_t *delayed;
  char errmsg[256];
  /* the connection guard */
  conn_t *conns;
  int nconns, max_conns, soft_conns, per_ip;
  double header_timeout, body_timeout;
  int limit_ref; /* Lua body_limit(method, path) -> bytes, or LUA_NOREF */
};

/* One call of the Lua handler: the connection, MHD's decoded path and method, and the delay the
 * answer asked for. */
typedef struct {
  conn_t *c;
  const char *url, *method;
  double delay;
} call_t;

/* server_conn.c: the daemon's callbacks and the answers */
void server_on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe);
void *server_on_uri(void *cls, const char *uri, struct MHD_Connection *mc);
void server_on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe);
void server_on_log(void *cls, const char *fmt, va_list ap);
enum MHD_Result server_on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls);
/* Take c off the list of delayed connections (if it is on it). */
void server_delayed_unlink(conn_t *c);

/* server_handler.c: protected (lua_pcall'd with the call as light userdata and the handler):
 * builds the request table, calls the handler, turns its result into c->resp. */
int server_call_handler(lua_State *L);
/* The idle hook at idx, between iterations: the wait bound in seconds, <0: none (see there). */
double server_run_idle(lua_State *L, int idx);

/* server_guard.c: the connection guard */
void guard_open(server_t *s, conn_t *c);
void guard_close(server_t *s, conn_t *c);
/* Evict the connections past their deadline; returns seconds until the next deadline (or -1). */
double guard_sweep(server_t *s);
/* The body limit of this request (the Lua body_limit, never above max_body). */
size_t guard_limit(server_t *s, const conn_t *c, const char *url, const char *method);
/* listen's guard options (the table at index 1). */
void guard_options(lua_State *L, server_t *s);

#endif
