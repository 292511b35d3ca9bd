// Group lag: committed offsets of a consumer group against log-end offsets.
// Used by the demo (run until lag is zero), tests and the benchmark.
//
// Each call creates a short-lived client handle; thread-safe. Throws
// std::runtime_error when the broker cannot be queried within the timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace crmsync::kafka {

struct PartitionLag {
  int32_t partition = 0;
  int64_t committed = -1;  // -1: nothing committed yet
  int64_t log_start = 0;
  int64_t log_end = 0;
  int64_t Lag() const { return log_end - (committed < 0 ? log_start : committed); }
};

std::vector<PartitionLag> QueryGroupLag(
    const std::string& bootstrap_servers, const std::string& group_id, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Creates a topic (replication factor 1 unless `replication_factor` says
// otherwise) with per-topic configs, and waits until every partition has a
// leader. Throws std::runtime_error on failure, also when it exists.
void CreateTopic(const std::string& bootstrap_servers, const std::string& topic, int partitions,
                 const std::map<std::string, std::string>& configs = {}, int replication_factor = 1,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Sum of Lag() over all partitions of the topic.
int64_t TotalLag(const std::vector<PartitionLag>& lags);

}  // namespace crmsync::kafka
