/* Helpers of aep.kafka (core/aep_kafka.c, core/kafka_producer.c, core/kafka_mock.c):
 * configuration from Lua tables, topic+partition lists to and from Lua, and the error triple.
 *
 * Rule kept throughout: nothing here raises while it owns a librdkafka object. Functions that
 * build librdkafka objects from Lua values report problems through an error buffer; the caller
 * frees what it holds and only then raises or returns nil, message, code. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_util.h"

/* nil, message, code where code is librdkafka's name for err ("_TIMED_OUT", "UNKNOWN_TOPIC..."). */
int kafka_fail(lua_State *L, const char *what, rd_kafka_resp_err_t err) {
  lua_pushnil(L);
  if (what && *what)
    lua_pushfstring(L, "kafka: %s: %s", what, rd_kafka_err2str(err));
  else
    lua_pushfstring(L, "kafka: %s", rd_kafka_err2str(err));
  lua_pushstring(L, rd_kafka_err2name(err));
  return 3;
}

/* Set one property; on failure write "kafka config 'name': reason" into err and return 0. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err) {
  char why[KAFKA_ERRLEN / 2];
  if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
    snprintf(err, KAFKA_ERRLEN, "kafka config '%.200s': %s", name, why);
    return 0;
  }
  return 1;
}

/* Apply opts.config = {["name"] = value (string, number or boolean)} to conf. Values of other
 * types are misuse, reported through err like librdkafka's own refusals (so that nothing raises
 * while conf is owned). Returns 1 on success. opts is at stack index idx. */
static int kafka_conf_apply_table(lua_State *L, int idx, rd_kafka_conf_t *conf, char *err) {
  int ok = 1;
  lua_getfield(L, idx, "config");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 1;
  }
  if (!lua_istable(L, -1)) {
    snprintf(err, KAFKA_ERRLEN, "kafka config: 'config' must be a table of name = value");
    lua_pop(L, 1);
    return 0;
  }
  lua_pushnil(L);
  while (ok && lua_next(L, -2) != 0) {
    /* key at -2, value at -1; never lua_tostring the key in place (it would confuse lua_next) */
    if (lua_type(L, -2) != LUA_TSTRING) {
      snprintf(err, KAFKA_ERRLEN, "kafka config: property names must be strings");
      ok = 0;
    } else {
      const char *name = lua_tostring(L, -2);
      char buf[64];
      const char *value = NULL;
      switch (lua_type(L, -1)) {
        case LUA_TSTRING: value = lua_tostring(L, -1); break;
        case LUA_TBOOLEAN: value = lua_toboolean(L, -1) ? "true" : "false"; break;
        case LUA_TNUMBER:
          if (lua_isinteger(L, -1))
            snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, -1));
          else
            snprintf(buf, sizeof buf, "%.17g", (double)lua_tonumber(L, -1));
          value = buf;
          break;
        default: break;
      }
      if (!value) {
        snprintf(err, KAFKA_ERRLEN, "kafka config '%s': value must be a string, number or boolean",
                 name);
        ok = 0;
      } else {
        ok = kafka_conf_set(conf, name, value, err);
      }
    }
    lua_pop(L, ok ? 1 : 2); /* keep the key for lua_next, or drop key and value when stopping */
  }
  lua_pop(L, 1); /* config table */
  return ok;
}

/* Read entry i of a partition list given as {{topic, partition[, offset]} | {topic=, partition=,
 * offset=, metadata=}, ...}. Fills the out parameters; returns 0 (message in err) when the entry
 * is malformed. Leaves the stack as it found it. */
static int kafka_read_tp(lua_State *L, int list, lua_Integer i, int need_offset, const char **topic,
                         lua_Integer *partition, lua_Integer *offset, const char **metadata,
                         size_t *metalen, char *err) {
  int ok = 1;
  int top = lua_gettop(L);
  if (lua_rawgeti(L, list, i) != LUA_TTABLE) {
    snprintf(err, KAFKA_ERRLEN, "entry %lld is not a table {topic, partition%s}", (long long)i,
             need_offset ? ", offset" : "");
    lua_settop(L, top);
    return 0;
  }
  int e = lua_gettop(L);
  if (lua_getfield(L, e, "topic") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_rawgeti(L, e, 1);
  }
  if (lua_getfield(L, e, "partition") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_rawgeti(L, e, 2);
  }
  if (lua_getfield(L, e, "offset") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_rawgeti(L, e, 3);
  }
  lua_getfield(L, e, "metadata");
  int isnum;
  *topic = lua_type(L, e + 1) == LUA_TSTRING ? lua_tostring(L, e + 1) : NULL;
  *partition = lua_tointegerx(L, e + 2, &isnum);
  if (!*topic || !isnum || *partition < 0 || *partition > INT32_MAX) {
    snprintf(err, KAFKA_ERRLEN, "entry %lld needs a topic (string) and a partition (integer >= 0)",
             (long long)i);
    ok = 0;
  }
  *offset = lua_tointegerx(L, e + 3, &isnum);
  if (ok && need_offset && (!isnum || *offset < 0)) {
    snprintf(err, KAFKA_ERRLEN, "entry %lld needs an offset (integer >= 0)", (long long)i);
    ok = 0;
  }
  if (!need_offset && !isnum) *offset = RD_KAFKA_OFFSET_INVALID;
  *metadata = NULL;
  *metalen = 0;
  if (ok && lua_type(L, e + 4) == LUA_TSTRING) *metadata = lua_tolstring(L, e + 4, metalen);
  /* The strings stay valid: they belong to the entry table, which belongs to the list. */
  lua_settop(L, top);
  return ok;
}

/* Build a partition list from the Lua array at idx. Returns NULL (message in err) on a malformed
 * entry. With need_offset, offsets (and optional metadata) are required and copied. */
rd_kafka_topic_partition_list_t *kafka_check_tplist(lua_State *L, int idx, int need_offset,
                                                           char *err) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)(n > 0 ? n : 1));
  for (lua_Integer i = 1; i <= n; i++) {
    const char *topic, *metadata;
    lua_Integer partition, offset;
    size_t metalen;
    if (!kafka_read_tp(L, idx, i, need_offset, &topic, &partition, &offset, &metadata, &metalen,
                       err)) {
      rd_kafka_topic_partition_list_destroy(list);
      return NULL;
    }
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(list, topic, (int32_t)partition);
    tp->offset = offset;
    if (metadata) {
      tp->metadata = malloc(metalen ? metalen : 1);
      if (tp->metadata) {
        memcpy(tp->metadata, metadata, metalen);
        tp->metadata_size = metalen;
      }
    }
  }
  return list;
}

/* Push {{topic=, partition=}, ...} for a partition list. */
void kafka_push_tplist(lua_State *L, const rd_kafka_topic_partition_list_t *list) {
  lua_createtable(L, list ? list->cnt : 0, 0);
  for (int i = 0; list && i < list->cnt; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, list->elems[i].topic);
    lua_setfield(L, -2, "topic");
    lua_pushinteger(L, list->elems[i].partition);
    lua_setfield(L, -2, "partition");
    lua_rawseti(L, -2, i + 1);
  }
}

/* The log level for librdkafka's own logger: quiet unless AEP_DEBUG is set, because every
 * problem it logs also reaches the caller as an error (returned, or an "error" entry of
 * poll_batch) and the policy in Lua decides what users see. Config "log_level" overrides. */
const char *kafka_default_log_level(void) {
  const char *dbg = getenv("AEP_DEBUG");
  return (dbg && dbg[0] && strcmp(dbg, "0") != 0) ? "6" : "0";
}

/* Build a client. Defaults first, then opts.config (the user's word wins), then callbacks.
 * Returns the handle or NULL with a message in err. */
rd_kafka_t *kafka_client_new(lua_State *L, int opts, rd_kafka_type_t type, rd_kafka_conf_t *conf,
                              char *err) {
  if (!kafka_conf_set(conf, "client.id", "aep", err) ||
      !kafka_conf_set(conf, "log_level", kafka_default_log_level(), err))
    goto fail;
  lua_getfield(L, opts, "brokers");
  const char *brokers = lua_tostring(L, -1);
  int ok = !brokers || kafka_conf_set(conf, "bootstrap.servers", brokers, err);
  lua_pop(L, 1);
  if (!ok || !kafka_conf_apply_table(L, opts, conf, err)) goto fail;
  char why[KAFKA_ERRLEN / 2];
  rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why); /* owns conf on success */
  if (rk) return rk;
  snprintf(err, KAFKA_ERRLEN, "kafka: %s", why);
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}
