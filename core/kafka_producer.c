/* aep.kafka.Producer (core/aep_kafka.c's kafka.producer). No Lua in librdkafka callbacks
 * (delivery reports only count); nothing raises while a librdkafka object is owned. */
#include <stdint.h>
#include <string.h>

#include "kafka_util.h"

#define PRODUCER_MT "aep.kafka.Producer"

typedef struct Producer {
  rd_kafka_t *rk;
  long delivered, failed; /* delivery reports since the last flush */
  rd_kafka_resp_err_t last_err;
} Producer;

/* Delivery reports arrive during rd_kafka_poll/flush on this thread: count them, nothing more. */
static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  Producer *p = (Producer *)opaque;
  if (m->err) {
    p->failed++;
    p->last_err = m->err;
  } else {
    p->delivered++;
  }
}

static void producer_release(Producer *p) {
  if (!p->rk) return;
  rd_kafka_flush(p->rk, 5000); /* best effort; flush() is where callers learn about failures */
  rd_kafka_destroy(p->rk);
  p->rk = NULL;
}

static int producer_is_open(const void *p) { return ((const Producer *)p)->rk != NULL; }

static Producer *check_producer(lua_State *L) {
  return aep_check_handle(L, 1, PRODUCER_MT, producer_is_open, "kafka: attempt to use a closed producer");
}

/* kafka.producer{brokers=, config={name=value}} -> Producer | nil, msg, code */
int kafka_producer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  Producer *p = (Producer *)lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, PRODUCER_MT);
  char err[KAFKA_ERRLEN];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
  rd_kafka_conf_set_opaque(conf, p);
  rd_kafka_t *rk = kafka_client_new(L, 1, RD_KAFKA_PRODUCER, conf, err);
  if (!rk) return aep_fail(L, err, "CONFIG");
  p->rk = rk;
  return 1;
}

/* Build librdkafka headers from the Lua table at idx ({name = string}); NULL if absent. Checks
 * everything before allocating, so that a misuse error never leaks the list. */
static rd_kafka_headers_t *check_headers(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return NULL;
  luaL_checktype(L, idx, LUA_TTABLE);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, idx, "headers must be a table of name = string value");
    n++;
    lua_pop(L, 1);
  }
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new(n ? n : 1);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t vlen;
    const char *v = lua_tolstring(L, -1, &vlen);
    rd_kafka_header_add(hdrs, lua_tostring(L, -2), -1, v, (ssize_t)vlen);
    lua_pop(L, 1);
  }
  return hdrs;
}

/* producer:produce(topic, value, [key], [partition], [headers]) -> true | nil, msg, code
 * Queues the message (copied); delivery is confirmed by flush(). When the local queue is full it
 * serves delivery reports and retries for up to 10 s. headers = {name = string value}. */
static int producer_produce(lua_State *L) {
  Producer *p = check_producer(L);
  const char *topic = luaL_checkstring(L, 2);
  size_t vlen = 0, klen = 0;
  const char *value = luaL_optlstring(L, 3, NULL, &vlen);
  const char *key = luaL_optlstring(L, 4, NULL, &klen);
  lua_Integer partition = luaL_optinteger(L, 5, RD_KAFKA_PARTITION_UA);
  luaL_argcheck(L, partition >= RD_KAFKA_PARTITION_UA && partition <= INT32_MAX, 5,
                "partition must be an integer >= 0");
  rd_kafka_headers_t *hdrs = check_headers(L, 6); /* last check: nothing raises after this */
  double deadline = (aep_monotonic() * 1000.0) + 10000;
  rd_kafka_resp_err_t e;
  for (;;) {
    /* librdkafka owns the headers only when producev succeeds; pass a copy each try. */
    rd_kafka_headers_t *h = hdrs ? rd_kafka_headers_copy(hdrs) : NULL;
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)partition),
                          RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_KEY(key, klen),
                          RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
    if (e && h) rd_kafka_headers_destroy(h);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || aep_interrupted || (aep_monotonic() * 1000.0) >= deadline) break;
    rd_kafka_poll(p->rk, KAFKA_SLICE_MS);
  }
  if (hdrs) rd_kafka_headers_destroy(hdrs);
  rd_kafka_poll(p->rk, 0);
  if (e) return kafka_fail(L, topic, e);
  lua_pushboolean(L, 1);
  return 1;
}

/* producer:flush([timeout_s=10]) -> delivered | nil, msg, code
 * Waits until every queued message is delivered or failed. delivered counts the successes since
 * the previous flush. Fails with "_TIMED_OUT" if messages remain queued, with the last delivery
 * error's code if any message failed, with "INTERRUPTED" on Ctrl-C. */
static int producer_flush(lua_State *L) {
  Producer *p = check_producer(L);
  double deadline = (aep_monotonic() * 1000.0) + aep_opt_millis(L, 2, 10.0);
  while (rd_kafka_outq_len(p->rk) > 0 && !aep_interrupted) {
    double left = deadline - (aep_monotonic() * 1000.0);
    if (left <= 0) break;
    rd_kafka_flush(p->rk, left < KAFKA_SLICE_MS ? (int)left + 1 : KAFKA_SLICE_MS);
  }
  rd_kafka_poll(p->rk, 0);
  long delivered = p->delivered, failed = p->failed;
  rd_kafka_resp_err_t last = p->last_err;
  int queued = rd_kafka_outq_len(p->rk);
  p->delivered = p->failed = 0;
  p->last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (failed > 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "kafka: %d message(s) not delivered: %s", (int)failed, rd_kafka_err2str(last));
    lua_pushstring(L, rd_kafka_err2name(last));
    return 3;
  }
  if (queued > 0) {
    if (aep_interrupted) return aep_fail(L, "interrupted", "INTERRUPTED");
    lua_pushnil(L);
    lua_pushfstring(L, "kafka: %d message(s) still queued after the flush timeout", queued);
    lua_pushstring(L, rd_kafka_err2name(RD_KAFKA_RESP_ERR__TIMED_OUT));
    return 3;
  }
  lua_pushinteger(L, delivered);
  return 1;
}

/* producer:close(): flushes for up to 5 s, then releases. Idempotent. */
static int producer_close(lua_State *L) {
  producer_release((Producer *)luaL_checkudata(L, 1, PRODUCER_MT));
  return 0;
}

static int producer_tostring(lua_State *L) {
  Producer *p = (Producer *)luaL_checkudata(L, 1, PRODUCER_MT);
  lua_pushfstring(L, "aep.kafka.Producer (%s)", p->rk ? rd_kafka_name(p->rk) : "closed");
  return 1;
}

static const luaL_Reg producer_methods[] = {
    {"produce", producer_produce}, {"flush", producer_flush}, {"close", producer_close}, {NULL, NULL}};

void kafka_producer_type(lua_State *L) {
  aep_new_type(L, PRODUCER_MT, producer_methods, producer_close, producer_tostring);
}
