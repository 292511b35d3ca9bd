// TopicPartition: value identity of one Kafka partition, usable as a map key.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace crmsync::kafka {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  auto operator<=>(const TopicPartition&) const = default;
  std::string ToString() const { return topic + "/" + std::to_string(partition); }
};

}  // namespace crmsync::kafka
