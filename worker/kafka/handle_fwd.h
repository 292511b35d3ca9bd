// The librdkafka client handle as the public kafka headers hold it, declared
// without rdkafka.h so that the rest of the worker never sees librdkafka.
// worker/kafka/handles.h has every other handle type.
#pragma once

#include <memory>

struct rd_kafka_s;        // rd_kafka_t
struct rd_kafka_queue_s;  // rd_kafka_queue_t

namespace crmsync::kafka {

struct KafkaDeleter {
  void operator()(rd_kafka_s* rk) const;  // rd_kafka_destroy(), in handles.cc
};
using KafkaPtr = std::unique_ptr<rd_kafka_s, KafkaDeleter>;

}  // namespace crmsync::kafka
