#include "worker/kafka/conf.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace crmsync::kafka {

void SetProperty(rd_kafka_conf_t* conf, const std::string& name, const std::string& value,
                 const std::string& context) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof(errstr)) ==
      RD_KAFKA_CONF_OK) {
    return;
  }
  // librdkafka quotes the value, which may be a secret (sasl.password).
  std::string error = errstr;
  for (size_t at = value.empty() ? std::string::npos : error.find(value); at != std::string::npos;
       at = error.find(value, at + 5)) {
    error.replace(at, value.size(), "*****");
  }
  throw std::runtime_error(context + "kafka property '" + name + "': " + error);
}

KafkaPtr NewClient(rd_kafka_type_t type, ConfPtr conf, const std::string& context) {
  char errstr[512];
  // rd_kafka_new takes ownership of the configuration only on success.
  KafkaPtr handle(rd_kafka_new(type, conf.get(), errstr, sizeof(errstr)));
  if (!handle) throw std::runtime_error(context + errstr);
  conf.release();
  return handle;
}

void ForwardLog(const char* client, int level, const char* facility, const char* message) {
  if (level <= 3) {
    spdlog::error("{} {}: {}", client, facility, message);
  } else if (level == 4) {
    spdlog::warn("{} {}: {}", client, facility, message);
  } else {
    spdlog::debug("{} {}: {}", client, facility, message);
  }
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

}  // namespace crmsync::kafka
