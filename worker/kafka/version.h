// The librdkafka the binary runs with (rd_kafka_version_str()), e.g. "2.0.2".
#pragma once

#include <string>

namespace crmsync::kafka {

std::string LibrdkafkaVersion();

}  // namespace crmsync::kafka
