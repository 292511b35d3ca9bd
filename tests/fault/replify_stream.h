// Shared pieces of the Kafka-side fault tests: a Replify-only worker config
// (one campaign; upsert, updateOnly for "stop outreach", remove on delete), the
// campaign the last event of each contact implies, the comparison with what
// the simulator holds, the group's progress, and an in-process worker on a
// thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mapping/config.h"
#include "sim/simulator.h"
#include "tests/support/fanout_expect.h"
#include "worker/metrics.h"
#include "worker/sample_events.h"
#include "worker/worker.h"

namespace crmsync::testing {

inline constexpr char kStreamCampaign[] = "5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3";
inline constexpr char kStreamApiKeyEnv[] = "REPLIFY_API_KEY";
inline constexpr char kStreamApiKey[] = "fault-test-replify-key";

struct StreamConfig {
  std::string bootstrap;
  std::string topic;
  std::string group;
  std::string base_url;  // the simulator's Replify URL
  // kafka.properties. The mock cluster's first join of a group waits 3 s and
  // its session check runs every second, so a session timeout much below
  // 4 s expires members while they join.
  std::map<std::string, std::string> kafka_properties = {{"session.timeout.ms", "4000"},
                                                         {"heartbeat.interval.ms", "300"}};
  // Members of the replify provider object besides baseUrl and apiKey.
  std::string replify_settings =
      R"("maxBatch": 50, "lingerMs": 5, "maxInFlight": 8, "requestTimeoutMs": 5000)";
  // The worker object.
  std::string worker = R"({"drainTimeoutMs": 5000, "commitIntervalMs": 100,
    "maxPendingOperations": 5000, "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200},
    "metrics": {"listen": "127.0.0.1:0"}})";
};

std::string StreamConfigJson(const StreamConfig& config);
// Loads the config with the API key resolved from kStreamApiKey.
mapping::Config LoadStreamConfig(const StreamConfig& config);
// Writes the config JSON to a fresh file under ::testing::TempDir(); its path.
// The name is prefixed with the test process's id, so that copies of a test
// running at once never read each other's config (and broker).
std::string WriteStreamConfig(const StreamConfig& config, const std::string& name);

// A simulator accepting kStreamApiKey for Replify, started. `threads` bounds
// the connections it serves at once: a kept-alive connection holds a server
// thread, and a request on a connection waiting for one is applied only once
// a thread frees up, possibly long after its client gave up on it. Tests with
// several workers give it at least their total maxInFlight.
std::unique_ptr<sim::Simulator> StartStreamSimulator(
    int threads = sim::Simulator::Options{}.threads);

std::vector<worker::SampleEvent> MakeEvents(size_t events, size_t contacts, uint64_t seed);

// What the simulator's campaign holds, by email.
std::map<std::string, sim::ReplifyContact> HeldCampaign(const sim::Simulator& sim);
// Adds a GoogleTest failure naming a few differing contacts when the
// campaign is not what the events imply.
void ExpectCampaign(const sim::Simulator& sim, const std::vector<worker::SampleEvent>& events);

// Sum over the topic's partitions of the group's committed offsets (0 for a
// partition without a commit); -1 when the broker cannot be queried.
int64_t CommittedTotal(const std::string& bootstrap, const std::string& group,
                       const std::string& topic);

// Runs a worker::Worker on its own thread for the lifetime of the object.
class RunningWorker {
 public:
  explicit RunningWorker(mapping::Config config);
  ~RunningWorker();
  RunningWorker(const RunningWorker&) = delete;
  RunningWorker& operator=(const RunningWorker&) = delete;
  // Stops cleanly (drain, commit, leave); Run()'s result.
  int Stop();
  const worker::WorkerStats& Stats() const { return worker_.Stats(); }

 private:
  worker::Metrics metrics_;
  worker::Worker worker_;
  std::atomic<bool> stop_{false};
  int exit_code_ = -1;
  std::thread thread_;
};

}  // namespace crmsync::testing
