/* aep.kafka: a consumer-group consumer, a producer and librdkafka's mock cluster, on librdkafka.
 *
 * Mechanism only. Which offsets to commit, when to give partitions up, what to dead-letter: all
 * of that is policy in lua/aep/stream/sources/kafka_group.lua.
 *
 * Rebalances without Lua in callbacks: the consumer registers a rebalance callback that only
 * records the event (a copy of the partition list) in a C queue and returns WITHOUT assigning.
 * librdkafka then waits for the application's assign/unassign call, which is what lets the
 * policy drain and commit in-flight messages first. poll_batch surfaces each recorded event as an
 * entry {event = "assign" | "revoke", partitions, protocol, lost}; Lua answers with
 * consumer:assign / consumer:unassign (EAGER) or consumer:incremental_assign /
 * consumer:incremental_unassign (COOPERATIVE) when it is ready. No librdkafka callback here ever
 * touches the lua_State, and no Lua error unwinds through a librdkafka call.
 *
 * Handles: aep.kafka.Consumer, aep.kafka.Producer, aep.kafka.Mock (full userdata; one idempotent
 * release shared by __gc, __close and :close(); using a closed handle raises). Run-time failures
 * return nil, message, code with code = rd_kafka_err2name(err) ("_TIMED_OUT", "_TRANSPORT", ...),
 * "CONFIG" for a refused configuration, or "INTERRUPTED".
 *
 * This file: the consumer and the module. core/kafka_producer.c: the producer; core/kafka_mock.c:
 * the mock cluster; core/kafka_util.c: configuration, partition lists, errors. SIGTERM: the one
 * trap is aep.host's (host.trap_term("drain") makes poll_batch return early). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kafka_util.h"

#define CONSUMER_MT "aep.kafka.Consumer"

/* ============================== Consumer ======================================================= */

typedef struct RebalanceEvent {
  rd_kafka_resp_err_t err; /* _ASSIGN_PARTITIONS, _REVOKE_PARTITIONS, or a failure */
  int lost;                /* the assignment was lost (do not commit for it) */
  int cooperative;
  rd_kafka_topic_partition_list_t *partitions;
  struct RebalanceEvent *next;
} RebalanceEvent;

typedef struct Consumer {
  rd_kafka_t *rk;
  int closing;                /* inside release: the callback settles events itself */
  RebalanceEvent *head, *tail; /* recorded, not yet handed to Lua */
} Consumer;

/* Called by librdkafka from inside rd_kafka_consumer_poll/close on this thread. Records only. */
static void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t *partitions, void *opaque) {
  Consumer *c = (Consumer *)opaque;
  const char *proto = rd_kafka_rebalance_protocol(rk);
  int cooperative = proto && strcmp(proto, "COOPERATIVE") == 0;
  if (c->closing) {
    /* Closing: the policy has already committed what it could; let librdkafka finish. */
    if (cooperative && err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, partitions);
      if (e) rd_kafka_error_destroy(e);
    } else if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, partitions);
      if (e) rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, NULL);
    }
    return;
  }
  RebalanceEvent *ev = calloc(1, sizeof *ev);
  if (!ev) { /* cannot record it: keep librdkafka's state consistent, lose nothing committed */
    rd_kafka_assign(rk, NULL);
    return;
  }
  ev->err = err;
  ev->cooperative = cooperative;
  ev->lost = err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && rd_kafka_assignment_lost(rk);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS || err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    ev->partitions = rd_kafka_topic_partition_list_copy(partitions);
  } else {
    /* A failed rebalance: the whole assignment must go (rd_kafka_assign(NULL) from Lua). */
    ev->lost = 1;
    if (rd_kafka_assignment(rk, &ev->partitions) != RD_KAFKA_RESP_ERR_NO_ERROR)
      ev->partitions = rd_kafka_topic_partition_list_new(1);
  }
  if (c->tail) c->tail->next = ev;
  else c->head = ev;
  c->tail = ev;
}

static void event_free(RebalanceEvent *ev) {
  if (ev->partitions) rd_kafka_topic_partition_list_destroy(ev->partitions);
  free(ev);
}

static rd_kafka_resp_err_t consumer_release(Consumer *c) {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (c->rk) {
    c->closing = 1;
    /* Answer events Lua never saw, so that librdkafka is not left waiting for an assign call. */
    for (RebalanceEvent *ev = c->head; ev; ev = ev->next) {
      if (ev->cooperative && ev->err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(c->rk, ev->partitions);
        if (e) rd_kafka_error_destroy(e);
      } else if (!ev->cooperative) {
        rd_kafka_assign(c->rk, NULL);
      }
    }
    err = rd_kafka_consumer_close(c->rk); /* leaves the group; revokes through the callback */
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
  }
  while (c->head) {
    RebalanceEvent *ev = c->head;
    c->head = ev->next;
    event_free(ev);
  }
  c->tail = NULL;
  return err;
}

static int consumer_is_open(const void *c) { return ((const Consumer *)c)->rk != NULL; }

static Consumer *check_consumer(lua_State *L) {
  return aep_check_handle(L, 1, CONSUMER_MT, consumer_is_open, "kafka: attempt to use a closed consumer");
}

/* kafka.consumer{brokers=, group=, topics={...}, config={name=value}} -> Consumer | nil, msg, code
 * Without topics the consumer joins nothing: it can still read the group's committed offsets and
 * the watermarks (what tests and reports need). Defaults: enable.auto.commit=false, enable.auto.offset.store=false,
 * auto.offset.reset=earliest (config may override any of them). */
static int kafka_consumer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "group");
  const char *group = lua_tostring(L, -1);
  if (!group) luaL_argerror(L, 1, "'group' (string) is required");
  lua_getfield(L, 1, "topics");
  if (!lua_isnil(L, -1) && !lua_istable(L, -1))
    luaL_argerror(L, 1, "'topics' must be an array of topic names");
  int topics = lua_gettop(L);
  lua_Integer ntopics = lua_istable(L, topics) ? (lua_Integer)lua_rawlen(L, topics) : 0;
  for (lua_Integer i = 1; i <= ntopics; i++) {
    if (lua_rawgeti(L, topics, i) != LUA_TSTRING) luaL_argerror(L, 1, "'topics' must hold strings");
    lua_pop(L, 1);
  }

  Consumer *c = (Consumer *)lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CONSUMER_MT);

  char err[KAFKA_ERRLEN];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (!kafka_conf_set(conf, "group.id", group, err) ||
      !kafka_conf_set(conf, "enable.auto.commit", "false", err) ||
      !kafka_conf_set(conf, "enable.auto.offset.store", "false", err) ||
      !kafka_conf_set(conf, "auto.offset.reset", "earliest", err)) {
    rd_kafka_conf_destroy(conf);
    return aep_fail(L, err, "CONFIG");
  }
  rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
  rd_kafka_conf_set_opaque(conf, c);
  rd_kafka_t *rk = kafka_client_new(L, 1, RD_KAFKA_CONSUMER, conf, err);
  if (!rk) return aep_fail(L, err, "CONFIG");
  rd_kafka_poll_set_consumer(rk); /* errors and events arrive through consumer_poll */

  if (ntopics > 0) {
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (lua_Integer i = 1; i <= ntopics; i++) {
      lua_rawgeti(L, topics, i);
      rd_kafka_topic_partition_list_add(subs, lua_tostring(L, -1), RD_KAFKA_PARTITION_UA);
      lua_pop(L, 1);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
      rd_kafka_destroy(rk);
      return kafka_fail(L, "subscribe", e);
    }
  }
  c->rk = rk;
  return 1;
}

/* Push one recorded rebalance event as a poll_batch entry. */
static void push_event(lua_State *L, const RebalanceEvent *ev) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, ev->err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assign" : "revoke");
  lua_setfield(L, -2, "event");
  kafka_push_tplist(L, ev->partitions);
  lua_setfield(L, -2, "partitions");
  lua_pushstring(L, ev->cooperative ? "COOPERATIVE" : "EAGER");
  lua_setfield(L, -2, "protocol");
  lua_pushboolean(L, ev->lost);
  lua_setfield(L, -2, "lost");
}

static void push_message(lua_State *L, const rd_kafka_message_t *m) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, rd_kafka_topic_name(m->rkt));
  lua_setfield(L, -2, "topic");
  lua_pushinteger(L, m->partition);
  lua_setfield(L, -2, "partition");
  lua_pushinteger(L, m->offset);
  lua_setfield(L, -2, "offset");
  if (m->key) {
    lua_pushlstring(L, (const char *)m->key, m->key_len);
    lua_setfield(L, -2, "key");
  }
  if (m->payload) {
    lua_pushlstring(L, (const char *)m->payload, m->len);
    lua_setfield(L, -2, "value");
  }
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(m, &tstype);
  if (ts >= 0) {
    lua_pushinteger(L, ts);
    lua_setfield(L, -2, "timestamp");
  }
  rd_kafka_headers_t *hdrs = NULL; /* owned by the message */
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
    lua_createtable(L, 0, (int)rd_kafka_header_cnt(hdrs));
    const char *name;
    const void *value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == 0; i++) {
      if (value) lua_pushlstring(L, (const char *)value, size);
      else lua_pushboolean(L, 0); /* a header without a value */
      lua_setfield(L, -2, name);
    }
    lua_setfield(L, -2, "headers");
  }
}

/* A consumer error delivered as a message: {event="error", code, message, fatal, topic?,
 * partition?}. Most are informational (librdkafka retries); fatal ones end the consumer. */
static void push_error(lua_State *L, rd_kafka_t *rk, const rd_kafka_message_t *m) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? "eof" : "error");
  lua_setfield(L, -2, "event");
  lua_pushstring(L, rd_kafka_err2name(m->err));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, rd_kafka_message_errstr(m));
  lua_setfield(L, -2, "message");
  lua_pushboolean(L, m->err == RD_KAFKA_RESP_ERR__FATAL || rd_kafka_fatal_error(rk, NULL, 0));
  lua_setfield(L, -2, "fatal");
  if (m->rkt) {
    lua_pushstring(L, rd_kafka_topic_name(m->rkt));
    lua_setfield(L, -2, "topic");
    lua_pushinteger(L, m->partition);
    lua_setfield(L, -2, "partition");
    lua_pushinteger(L, m->offset);
    lua_setfield(L, -2, "offset");
  }
}

/* Move every recorded rebalance event into the result array at the top of the stack. */
static void push_events(lua_State *L, Consumer *c, lua_Integer *n) {
  while (c->head) {
    RebalanceEvent *ev = c->head;
    push_event(L, ev);
    lua_rawseti(L, -2, ++*n);
    c->head = ev->next;
    if (!c->head) c->tail = NULL;
    event_free(ev);
  }
}

/* consumer:poll_batch([max=100], [timeout_s=1]) -> array of entries, in arrival order:
 *   messages {topic, partition, offset, key?, value?, timestamp? (ms), headers? {name=value}}
 *   rebalance events {event="assign"|"revoke", partitions={{topic, partition}...},
 *                     protocol="EAGER"|"COOPERATIVE", lost=bool} (the batch ends after one)
 *   errors {event="error", code, message, fatal}
 * Waits up to timeout_s for the first entry, then takes only what is already there. Returns
 * early (possibly empty) when Ctrl-C arrives, or SIGTERM under host.trap_term(). */
static int consumer_poll_batch(lua_State *L) {
  Consumer *c = check_consumer(L);
  lua_Integer max = luaL_optinteger(L, 2, 100);
  luaL_argcheck(L, max >= 1, 2, "max must be >= 1");
  double deadline = (aep_monotonic() * 1000.0) + aep_opt_millis(L, 3, 1.0);
  lua_createtable(L, max < 1024 ? (int)max : 1024, 0);
  lua_Integer n = 0;
  while (n < max && !aep_interrupted && !aep_term_requested) {
    if (c->head) { /* a rebalance happened: hand it over now and end the batch */
      push_events(L, c, &n);
      break;
    }
    int wait = 0;
    if (n == 0) {
      double left = deadline - (aep_monotonic() * 1000.0);
      wait = left <= 0 ? 0 : (left < KAFKA_SLICE_MS ? (int)left + 1 : KAFKA_SLICE_MS);
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, wait);
    if (!m) {
      if (c->head) continue;
      if (n > 0 || (aep_monotonic() * 1000.0) >= deadline) break;
      continue;
    }
    /* An event recorded during this poll precedes the message. The message is never dropped
     * here: a gap in a partition's sequence would let the policy commit past it. */
    int stop = c->head != NULL;
    if (stop) push_events(L, c, &n);
    if (m->err) push_error(L, c->rk, m);
    else push_message(L, m);
    rd_kafka_message_destroy(m);
    lua_rawseti(L, -2, ++n);
    if (stop) break;
  }
  return 1;
}

/* Apply an assignment change; shared by the four acknowledgement methods. */
enum { ASSIGN, UNASSIGN, INC_ASSIGN, INC_UNASSIGN };

static int consumer_apply(lua_State *L, int how) {
  Consumer *c = check_consumer(L);
  char err[KAFKA_ERRLEN];
  rd_kafka_topic_partition_list_t *list = NULL;
  if (how != UNASSIGN) {
    luaL_checktype(L, 2, LUA_TTABLE);
    list = kafka_check_tplist(L, 2, 0, err);
    if (!list) return luaL_argerror(L, 2, err);
  }
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_error_t *error = NULL;
  switch (how) {
    case ASSIGN: e = rd_kafka_assign(c->rk, list); break;
    case UNASSIGN: e = rd_kafka_assign(c->rk, NULL); break;
    case INC_ASSIGN: error = rd_kafka_incremental_assign(c->rk, list); break;
    default: error = rd_kafka_incremental_unassign(c->rk, list); break;
  }
  if (list) rd_kafka_topic_partition_list_destroy(list);
  if (error) {
    lua_pushnil(L);
    lua_pushfstring(L, "kafka: %s", rd_kafka_error_string(error));
    lua_pushstring(L, rd_kafka_error_name(error));
    rd_kafka_error_destroy(error);
    return 3;
  }
  if (e) return kafka_fail(L, "assign", e);
  lua_pushboolean(L, 1);
  return 1;
}

/* consumer:assign(partitions) -> true | nil, msg, code  (acknowledges an EAGER "assign") */
static int consumer_assign(lua_State *L) { return consumer_apply(L, ASSIGN); }
/* consumer:unassign() -> true | nil, msg, code  (acknowledges an EAGER "revoke") */
static int consumer_unassign(lua_State *L) { return consumer_apply(L, UNASSIGN); }
/* consumer:incremental_assign(partitions) -> true | nil, msg, code  (COOPERATIVE "assign") */
static int consumer_incremental_assign(lua_State *L) { return consumer_apply(L, INC_ASSIGN); }
/* consumer:incremental_unassign(partitions) -> true | nil, msg, code  (COOPERATIVE "revoke") */
static int consumer_incremental_unassign(lua_State *L) { return consumer_apply(L, INC_UNASSIGN); }

/* consumer:commit({{topic, partition, offset, metadata?}...}, [sync=true]) -> true | nil, msg,
 * code. offset is the next offset to read (last processed + 1), as Kafka has it. An empty list
 * commits nothing and succeeds. */
static int consumer_commit(lua_State *L) {
  Consumer *c = check_consumer(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  int sync = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  char err[KAFKA_ERRLEN] = "";
  rd_kafka_topic_partition_list_t *list = kafka_check_tplist(L, 2, 1, err);
  if (!list) return luaL_argerror(L, 2, err);
  if (list->cnt == 0) {
    rd_kafka_topic_partition_list_destroy(list);
    lua_pushboolean(L, 1);
    return 1;
  }
  rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, list, !sync);
  for (int i = 0; !e && sync && i < list->cnt; i++) {
    if (list->elems[i].err) {
      e = list->elems[i].err;
      snprintf(err, sizeof err, "commit %s [%d]", list->elems[i].topic, list->elems[i].partition);
    }
  }
  if (e && !strchr(err, '[')) snprintf(err, sizeof err, "commit");
  rd_kafka_topic_partition_list_destroy(list);
  if (e) return kafka_fail(L, err, e);
  lua_pushboolean(L, 1);
  return 1;
}

/* consumer:committed(topic, partition, [timeout_s=10]) -> offset, metadata | nil, msg, code
 * offset is -1 when the group has committed nothing for that partition. */
static int consumer_committed(lua_State *L) {
  Consumer *c = check_consumer(L);
  const char *topic = luaL_checkstring(L, 2);
  lua_Integer partition = luaL_checkinteger(L, 3);
  int ms = aep_opt_millis(L, 4, 10.0);
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(list, topic, (int32_t)partition);
  rd_kafka_resp_err_t e = rd_kafka_committed(c->rk, list, ms);
  if (!e) e = tp->err;
  if (e) {
    rd_kafka_topic_partition_list_destroy(list);
    return kafka_fail(L, "committed", e);
  }
  lua_pushinteger(L, tp->offset >= 0 ? tp->offset : -1);
  if (tp->metadata && tp->metadata_size > 0) lua_pushlstring(L, tp->metadata, tp->metadata_size);
  else lua_pushnil(L);
  rd_kafka_topic_partition_list_destroy(list);
  return 2;
}

/* consumer:watermarks(topic, partition, [timeout_s=10]) -> low, high | nil, msg, code
 * (high = the offset the next produced message will get) */
static int consumer_watermarks(lua_State *L) {
  Consumer *c = check_consumer(L);
  const char *topic = luaL_checkstring(L, 2);
  lua_Integer partition = luaL_checkinteger(L, 3);
  int64_t low = 0, high = 0;
  rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c->rk, topic, (int32_t)partition, &low,
                                                           &high, aep_opt_millis(L, 4, 10.0));
  if (e) return kafka_fail(L, "watermarks", e);
  lua_pushinteger(L, low);
  lua_pushinteger(L, high);
  return 2;
}

/* consumer:assignment() -> {{topic, partition}...} | nil, msg, code (what assign has set) */
static int consumer_assignment(lua_State *L) {
  Consumer *c = check_consumer(L);
  rd_kafka_topic_partition_list_t *list = NULL;
  rd_kafka_resp_err_t e = rd_kafka_assignment(c->rk, &list);
  if (e) return kafka_fail(L, "assignment", e);
  kafka_push_tplist(L, list);
  rd_kafka_topic_partition_list_destroy(list);
  return 1;
}

/* consumer:close() -> true | nil, msg, code: leaves the group (revoking what is still assigned,
 * without committing: commit first). Idempotent. */
static int consumer_close(lua_State *L) {
  Consumer *c = (Consumer *)luaL_checkudata(L, 1, CONSUMER_MT);
  rd_kafka_resp_err_t e = consumer_release(c);
  if (e) return kafka_fail(L, "close", e);
  lua_pushboolean(L, 1);
  return 1;
}

static int consumer_gc(lua_State *L) {
  consumer_release((Consumer *)luaL_checkudata(L, 1, CONSUMER_MT));
  return 0;
}

static int consumer_tostring(lua_State *L) {
  Consumer *c = (Consumer *)luaL_checkudata(L, 1, CONSUMER_MT);
  lua_pushfstring(L, "aep.kafka.Consumer (%s)", c->rk ? rd_kafka_name(c->rk) : "closed");
  return 1;
}

/* ============================== Module ========================================================= */

/* kafka.version() -> librdkafka's version string */
static int kafka_version(lua_State *L) {
  lua_pushstring(L, rd_kafka_version_str());
  return 1;
}

static const luaL_Reg consumer_methods[] = {
    {"poll_batch", consumer_poll_batch},
    {"assign", consumer_assign},
    {"unassign", consumer_unassign},
    {"incremental_assign", consumer_incremental_assign},
    {"incremental_unassign", consumer_incremental_unassign},
    {"commit", consumer_commit},
    {"committed", consumer_committed},
    {"watermarks", consumer_watermarks},
    {"assignment", consumer_assignment},
    {"close", consumer_close},
    {NULL, NULL}};

static const luaL_Reg kafka_funcs[] = {{"consumer", kafka_consumer},
                                       {"producer", kafka_producer},
                                       {"mock_cluster", kafka_mock_cluster},
                                       {"version", kafka_version},
                                       {NULL, NULL}};

int luaopen_aep_kafka(lua_State *L) {
  aep_new_type(L, CONSUMER_MT, consumer_methods, consumer_gc, consumer_tostring);
  kafka_producer_type(L);
  kafka_mock_type(L);
  luaL_newlib(L, kafka_funcs);
  return 1;
}
