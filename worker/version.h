// Versions: crmsync's own (the CMake project version) and those of the
// libraries it runs with, for `crmsync --version` and crmsync_build_info.
#pragma once

#include <string>

namespace crmsync::worker {

// e.g. "0.1.0".
std::string CrmsyncVersion();
// The running libcurl (curl_version_info()), e.g. "7.88.1".
std::string LibcurlVersion();
// The running librdkafka (rd_kafka_version_str()), e.g. "2.0.2".
std::string LibrdkafkaVersion();
// What `crmsync --version` prints: one line per component,
//   crmsync 0.1.0
//   librdkafka 2.0.2
//   libcurl 7.88.1
std::string VersionText();

}  // namespace crmsync::worker
