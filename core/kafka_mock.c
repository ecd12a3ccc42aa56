/* aep.kafka.Mock: librdkafka's in-process mock Kafka cluster, for tests and the Kafka test helper
 * (tests/lua/support/kafka_mock.lua). */
#include <string.h>

#include "kafka_util.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (kafka_util.h) */

#define MOCK_MT "aep.kafka.Mock"

typedef struct Mock {
  rd_kafka_t *rk; /* the client instance librdkafka's mock cluster lives in */
  rd_kafka_mock_cluster_t *mcluster;
  int partitions;
} Mock;

static void mock_release(Mock *m) {
  if (m->mcluster) {
    rd_kafka_mock_cluster_destroy(m->mcluster);
    m->mcluster = NULL;
  }
  if (m->rk) {
    rd_kafka_destroy(m->rk);
    m->rk = NULL;
  }
}

static int mock_is_open(const void *m) { return ((const Mock *)m)->mcluster != NULL; }

static Mock *check_mock(lua_State *L) {
  return aep_check_handle(L, 1, MOCK_MT, mock_is_open, "kafka: attempt to use a closed mock cluster");
}

/* kafka.mock_cluster{brokers=1, partitions=4} -> Mock | nil, msg, code
 * librdkafka's in-process mock Kafka cluster, listening on loopback sockets (other processes can
 * connect). partitions is the default for create_topic. For tests and the Kafka test helper. */
int kafka_mock_cluster(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer brokers = aep_opt_int_field(L, 1, "brokers", 1);
  lua_Integer partitions = aep_opt_int_field(L, 1, "partitions", 4);
  luaL_argcheck(L, brokers >= 1 && brokers <= 16, 1, "brokers must be 1..16");
  luaL_argcheck(L, partitions >= 1 && partitions <= 10000, 1, "partitions must be 1..10000");
  Mock *m = (Mock *)lua_newuserdatauv(L, sizeof *m, 0);
  memset(m, 0, sizeof *m);
  luaL_setmetatable(L, MOCK_MT);
  m->partitions = (int)partitions;
  char err[KAFKA_ERRLEN];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (!kafka_conf_set(conf, "log_level", kafka_default_log_level(), err)) {
    rd_kafka_conf_destroy(conf);
    return aep_fail(L, err, "CONFIG");
  }
  char why[KAFKA_ERRLEN / 2];
  m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
  if (!m->rk) {
    rd_kafka_conf_destroy(conf);
    lua_pushnil(L);
    lua_pushfstring(L, "kafka: %s", why);
    lua_pushstring(L, "CONFIG");
    return 3;
  }
  m->mcluster = rd_kafka_mock_cluster_new(m->rk, (int)brokers);
  if (!m->mcluster) {
    mock_release(m);
    return aep_fail(L, "kafka: cannot start the mock cluster", "MOCK");
  }
  return 1;
}

/* mock:bootstrap() -> "127.0.0.1:PORT,..." (the bootstrap.servers of the mock brokers) */
static int mock_bootstrap(lua_State *L) {
  lua_pushstring(L, rd_kafka_mock_cluster_bootstraps(check_mock(L)->mcluster));
  return 1;
}

/* mock:create_topic(name, [partitions]) -> true | nil, msg, code */
static int mock_create_topic(lua_State *L) {
  Mock *m = check_mock(L);
  const char *name = luaL_checkstring(L, 2);
  lua_Integer partitions = luaL_optinteger(L, 3, m->partitions);
  luaL_argcheck(L, partitions >= 1 && partitions <= 10000, 3, "partitions must be 1..10000");
  rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(m->mcluster, name, (int)partitions, 1);
  if (e) return kafka_fail(L, name, e);
  lua_pushboolean(L, 1);
  return 1;
}

/* mock:close(): stops the brokers. Idempotent. */
static int mock_close(lua_State *L) {
  mock_release((Mock *)luaL_checkudata(L, 1, MOCK_MT));
  return 0;
}

static int mock_tostring(lua_State *L) {
  Mock *m = (Mock *)luaL_checkudata(L, 1, MOCK_MT);
  if (m->mcluster)
    lua_pushfstring(L, "aep.kafka.Mock (%s)", rd_kafka_mock_cluster_bootstraps(m->mcluster));
  else
    lua_pushstring(L, "aep.kafka.Mock (closed)");
  return 1;
}

static const luaL_Reg mock_methods[] = {{"bootstrap", mock_bootstrap},
                                        {"create_topic", mock_create_topic},
                                        {"close", mock_close},
                                        {NULL, NULL}};

void kafka_mock_type(lua_State *L) { aep_new_type(L, MOCK_MT, mock_methods, mock_close, mock_tostring); }
