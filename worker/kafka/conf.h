// Building librdkafka clients: the one place that sets configuration
// properties, creates handles and forwards librdkafka's log lines; and the
// blocking queries whose librdkafka 2.0.2 versions need a hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "worker/kafka/handles.h"

namespace crmsync::kafka {

// Sets one property. Throws std::runtime_error
// "<context>kafka property '<name>': <librdkafka's reason>", with the value
// masked where librdkafka quotes it (it may be a secret: sasl.password).
// `context` is empty or ends in ": ".
void SetProperty(rd_kafka_conf_t* conf, const std::string& name, const std::string& value,
                 const std::string& context = "");

// Creates a client of `type` from `conf`; the handle owns the configuration
// from then on. Throws std::runtime_error "<context><librdkafka's reason>".
KafkaPtr NewClient(rd_kafka_type_t type, ConfPtr conf, const std::string& context);

// A librdkafka log line at its syslog level (0..3 error, 4 warning, 5..7
// debug), prefixed with `client` ("kafka", "kafka producer").
void ForwardLog(const char* client, int level, const char* facility, const char* message);

// Milliseconds left until `deadline` (0 once it passed), as librdkafka's
// blocking calls take them.
int RemainingMs(std::chrono::steady_clock::time_point deadline);

// The log-start (`low`) and log-end (`high`) offsets of a partition, asked of
// its leader, as rd_kafka_query_watermark_offsets() would, but within
// `timeout_ms` whatever the brokers do: librdkafka 2.0.2's own call does not
// enforce its timeout once its requests are sent (its issue 4460, fixed in
// 2.3.0) and can block its caller for good across a broker outage. This one
// asks through rd_kafka_offsets_for_times() (ListOffsets for the earliest and
// the latest offset), which does. An answer whose error a later one may not
// have (the partition's leader not known yet, as right after the topic was
// created, or moved, or a dropped connection) is asked again, with a growing
// pause, until `timeout_ms` is up. Returns RD_KAFKA_RESP_ERR__TIMED_OUT,
// librdkafka's error, or the partition's error in the last answer.
rd_kafka_resp_err_t QueryWatermarks(rd_kafka_t* rk, const char* topic, int32_t partition,
                                    int64_t* low, int64_t* high, int timeout_ms);

}  // namespace crmsync::kafka
