// Changelog plumbing for the worker's contact state: making sure a
// compacted changelog topic exists with enough partitions, and reading one
// changelog partition from its start to its end (the restore on assignment).
//
// ChangelogReader owns one assign-mode consumer (it never joins a group, so
// it never disturbs the worker's own); not thread-safe, used from the
// worker's loop thread. Errors throw std::runtime_error naming the topic,
// partition and librdkafka error.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "worker/kafka/handle_fwd.h"

namespace crmsync::kafka {

// The partition count of `topic`, or 0 when it does not exist.
int TopicPartitions(const std::string& bootstrap_servers,
                    const std::map<std::string, std::string>& properties, const std::string& topic,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Makes sure `changelog` exists with at least as many partitions as
// `input_topic`: creates it (cleanup.policy=compact) when missing and
// `create`, else throws naming what is wrong.
void EnsureChangelogTopic(const std::string& bootstrap_servers,
                          const std::map<std::string, std::string>& properties,
                          const std::string& input_topic, const std::string& changelog, bool create,
                          int replication_factor,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

struct RestoreStats {
  uint64_t records = 0;    // records read (tombstones included)
  uint64_t bytes = 0;      // key + value bytes read
  int64_t end_offset = 0;  // the partition's end when the restore began
  std::chrono::milliseconds took{0};
};

class ChangelogReader {
 public:
  // `properties`: the user's passthrough properties (security settings).
  ChangelogReader(const std::string& bootstrap_servers,
                  const std::map<std::string, std::string>& properties);
  ~ChangelogReader();
  ChangelogReader(const ChangelogReader&) = delete;
  ChangelogReader& operator=(const ChangelogReader&) = delete;

  // A record; `null_value` marks a tombstone.
  using Handler =
      std::function<void(std::string_view key, std::string_view value, bool null_value)>;

  // Reads partition `partition` of `topic` from its log start up to the end
  // offset it has when the call begins, handing each record to `handler` in
  // order. Throws when the end is not reached within `timeout`.
  RestoreStats Read(const std::string& topic, int32_t partition, const Handler& handler,
                    std::chrono::milliseconds timeout);

 private:
  KafkaPtr handle_;
};

}  // namespace crmsync::kafka
