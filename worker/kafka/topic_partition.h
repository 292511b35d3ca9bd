// TopicPartition: value identity of one Kafka partition, usable as a map key.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace crmsync::kafka {

// The name of a Kafka topic, interned: every TopicName of one name points at
// the same string, kept for the life of the process (a worker reads a
// handful of topics), so a copy is a pointer's and equality compares
// pointers. Every message's partition, offset record and origin carries
// one; as a std::string each copy of a name longer than the short-string
// buffer was an allocation. Thread-safe.
class TopicName {
 public:
  TopicName();
  TopicName(std::string_view name);  // NOLINT(google-explicit-constructor): a name is a name
  TopicName(const std::string& name) : TopicName(std::string_view(name)) {}  // NOLINT
  TopicName(const char* name) : TopicName(std::string_view(name)) {}         // NOLINT

  const std::string& str() const { return *name_; }
  operator const std::string&() const { return *name_; }  // NOLINT
  operator std::string_view() const { return *name_; }    // NOLINT
  const char* c_str() const { return name_->c_str(); }
  const char* data() const { return name_->data(); }
  size_t size() const { return name_->size(); }
  bool empty() const { return name_->empty(); }

  friend bool operator==(const TopicName& a, const TopicName& b) { return a.name_ == b.name_; }
  friend bool operator==(const TopicName& a, std::string_view b) { return *a.name_ == b; }
  friend bool operator==(const TopicName& a, const std::string& b) { return *a.name_ == b; }
  friend bool operator==(const TopicName& a, const char* b) { return *a.name_ == b; }
  // By name, as the strings compare.
  friend std::strong_ordering operator<=>(const TopicName& a, const TopicName& b) {
    if (a.name_ == b.name_) return std::strong_ordering::equal;
    return a.name_->compare(*b.name_) <=> 0;
  }
  friend std::string operator+(const TopicName& a, std::string_view b) {
    return std::string(*a.name_).append(b);
  }
  friend std::string operator+(std::string_view a, const TopicName& b) {
    return std::string(a).append(*b.name_);
  }

 private:
  const std::string* name_;
};

struct TopicPartition {
  TopicName topic;
  int32_t partition = 0;

  // Ordered by partition, then topic: a worker's partitions are mostly of a
  // few topics, and the per-message look-ups in maps keyed by partition then
  // decide on an integer and compare one topic name, not one per tree level.
  std::strong_ordering operator<=>(const TopicPartition& other) const {
    if (const auto by_partition = partition <=> other.partition; by_partition != 0) {
      return by_partition;
    }
    return topic <=> other.topic;
  }
  bool operator==(const TopicPartition&) const = default;
  std::string ToString() const { return topic + "/" + std::to_string(partition); }
};

}  // namespace crmsync::kafka
