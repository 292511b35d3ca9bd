// TopicPartition: value identity of one Kafka partition, usable as a map key.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace crmsync::kafka {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  // Ordered by partition, then topic: a worker's partitions are mostly of a
  // few topics, and the per-message look-ups in maps keyed by partition then
  // decide on an integer and compare one topic name, not one per tree level.
  std::strong_ordering operator<=>(const TopicPartition& other) const {
    if (const auto by_partition = partition <=> other.partition; by_partition != 0) {
      return by_partition;
    }
    return topic.compare(other.topic) <=> 0;
  }
  bool operator==(const TopicPartition&) const = default;
  std::string ToString() const { return topic + "/" + std::to_string(partition); }
};

}  // namespace crmsync::kafka
