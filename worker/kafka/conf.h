// Building librdkafka clients: the one place that sets configuration
// properties, creates handles and forwards librdkafka's log lines.
#pragma once

#include <chrono>
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

}  // namespace crmsync::kafka
