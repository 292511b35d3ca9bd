#include "worker/kafka/version.h"

#include <librdkafka/rdkafka.h>

namespace crmsync::kafka {

std::string LibrdkafkaVersion() { return rd_kafka_version_str(); }

}  // namespace crmsync::kafka
