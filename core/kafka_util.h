/* What the parts of aep.kafka share: core/kafka_util.c (configuration, partition lists, errors),
 * core/kafka_producer.c (aep.kafka.Producer), core/kafka_mock.c (aep.kafka.Mock, librdkafka's mock
 * cluster); core/aep_kafka.c has the consumer and the module. Nothing declared here raises while
 * it owns a librdkafka object. */
#ifndef AEP_KAFKA_UTIL_H
#define AEP_KAFKA_UTIL_H

#include <librdkafka/rdkafka.h>

#include "aep.h"

#define KAFKA_ERRLEN 512
/* Longest single wait inside a blocking call, so that Ctrl-C (aep_interrupted) is seen promptly. */
#define KAFKA_SLICE_MS 100

/* nil, message, code where code is librdkafka's name for err ("_TIMED_OUT", "UNKNOWN_TOPIC..."). */
int kafka_fail(lua_State *L, const char *what, rd_kafka_resp_err_t err);
/* Set one property; on failure write "kafka config 'name': reason" into err and return 0. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err);
/* Build a partition list from the Lua array at idx ({{topic, partition[, offset]} | {topic=,
 * partition=, offset=, metadata=}, ...}). Returns NULL (message in err) on a malformed entry.
 * With need_offset, offsets (and optional metadata) are required and copied. */
rd_kafka_topic_partition_list_t *kafka_check_tplist(lua_State *L, int idx, int need_offset, char *err);
/* Push {{topic=, partition=}, ...} for a partition list. */
void kafka_push_tplist(lua_State *L, const rd_kafka_topic_partition_list_t *list);
/* librdkafka's log level: quiet unless AEP_DEBUG is set. */
const char *kafka_default_log_level(void);
/* Build a client from the options at index opts (brokers, config) and conf (owned: destroyed on
 * failure). Returns the handle or NULL with a message in err. */
rd_kafka_t *kafka_client_new(lua_State *L, int opts, rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err);

/* kafka.producer{brokers=, config=} (core/kafka_producer.c), and its metatable. */
int kafka_producer(lua_State *L);
void kafka_producer_type(lua_State *L);
/* kafka.mock_cluster{brokers=1, partitions=4} (core/kafka_mock.c), and its metatable. */
int kafka_mock_cluster(lua_State *L);
void kafka_mock_type(lua_State *L);

#endif
