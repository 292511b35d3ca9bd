#include "worker/version.h"

#include <curl/curl.h>

#include "worker/kafka/version.h"

#ifndef CRMSYNC_VERSION
#error "CRMSYNC_VERSION must be defined by the build"
#endif

namespace crmsync::worker {

std::string CrmsyncVersion() { return CRMSYNC_VERSION; }

std::string LibcurlVersion() {
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  return info != nullptr && info->version != nullptr ? info->version : "unknown";
}

std::string LibrdkafkaVersion() { return kafka::LibrdkafkaVersion(); }

std::string VersionText() {
  return "crmsync " + CrmsyncVersion() + "\nlibrdkafka " + LibrdkafkaVersion() + "\nlibcurl " +
         LibcurlVersion() + "\n";
}

}  // namespace crmsync::worker
