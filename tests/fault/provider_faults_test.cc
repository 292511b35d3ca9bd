// Provider faults during a fan-out stream to all four providers: 5xx
// answers, requests that hang past the worker's request timeout, connections
// dropped mid-response and bursts of 429 with Retry-After. The worker must
// retry all of them: nothing is lost, per-contact order holds (every
// provider ends with what the last event of each contact implies) and every
// offset is committed.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/simulator.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "tests/support/sim_fixture.h"
#include "worker/metrics.h"
#include "worker/sample_events.h"
#include "worker/worker.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kKey[] = "provider-faults-key";
// Documented rate limits run sixty times faster, as in the fan-out test.
constexpr double kTimeScale = 60;

std::optional<std::string> TestEnv(std::string_view) { return std::string(kKey); }

class ProviderFaultsTest : public SimBrokerTest {
 protected:
  void SetUp() override {
    sim::Simulator::Options options = AllProvidersOptions(kKey);
    options.knobs.rate_limit_time_scale = kTimeScale;
    // Hung requests hold a server thread each.
    options.threads = 64;
    options.seed = 7;
    StartSimulatorAndTopics(options);
  }
};

TEST_F(ProviderFaultsTest, FiveHundredsTimeoutsResetsAndThrottlingLoseNothing) {
  worker::SampleOptions sample;
  sample.events = 2000;
  sample.contacts = 300;
  sample.seed = 41;
  const auto events = worker::GenerateSampleEvents(sample);
  ProduceEvents(Bootstrap(), topic_, events);

  FanoutConfig settings =
      FanoutConfigFor(Bootstrap(), topic_, group_, *simulator_, dead_letter_topic_);
  settings.budget_time_scale = kTimeScale;
  // A request timeout well below the simulator's hang: an injected timeout
  // is a timeout to the worker. Small batches make many requests, so every
  // kind of fault meets every provider.
  // Short circuit-breaker pauses keep the test's run time down; the faults
  // still open circuits now and then.
  const std::string common =
      R"("requestTimeoutMs": 400, "circuitBreaker": {"openMs": 200, "maxOpenMs": 1000})";
  settings.providers["replify"].settings =
      R"("maxBatch": 20, "lingerMs": 10, "maxInFlight": 8, )" + common;
  settings.providers["whippy"].settings = R"("maxBatch": 500, "lingerMs": 50, )" + common;
  settings.providers["campaignlark"].settings = R"("maxBatch": 20, "maxInFlight": 8, )" + common;
  settings.providers["replyio"].settings =
      R"("maxBatch": 20, "lingerMs": 20, "maxInFlight": 4, )" + common;
  // Unbounded attempts: a fault is never a reason to give an item up.
  settings.worker = R"({"commitIntervalMs": 100,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 500, "maxAttempts": 0},
    "metrics": {"listen": "127.0.0.1:0"}})";
  mapping::Config config =
      mapping::LoadConfigFromString(providers::Catalog(), FanoutConfigJson(settings), &TestEnv);

  sim::Knobs knobs = simulator_->GetKnobs();
  knobs.failure_rate = 0.1;
  knobs.timeout_rate = 0.05;
  knobs.hang = milliseconds(2000);
  knobs.reset_rate = 0.05;
  simulator_->SetKnobs(knobs);

  worker::Metrics metrics;
  worker::Worker worker(std::move(config), metrics);
  std::atomic<bool> stop{false};
  std::thread runner([&] { worker.Run(stop); });
  // Bursts of ten 429s (Retry-After: 1) while the stream flows: eight of
  // them, 700 ms apart, then the providers recover.
  std::atomic<bool> bursts_done{false};
  std::thread throttler([&] {
    for (int burst = 0; burst < 8 && !bursts_done; ++burst) {
      sim::Knobs now = simulator_->GetKnobs();
      now.throttle_burst = 10;
      simulator_->SetKnobs(now);
      for (int i = 0; i < 35 && !bursts_done; ++i) std::this_thread::sleep_for(milliseconds(20));
    }
  });
  const bool done =
      WaitFor([&] { return FullyCommitted(Bootstrap(), group_, topic_); }, seconds(200));
  bursts_done = true;
  throttler.join();
  stop = true;
  runner.join();

  const sim::Counters counters = simulator_->GetCounters();
  EXPECT_TRUE(done) << "consumed " << worker.Stats().consumed << ", pending "
                    << worker.Stats().pending << ", retried " << worker.Stats().retried;
  EXPECT_GT(counters.injected_failures, 0u);
  EXPECT_GT(counters.injected_timeouts, 0u);
  EXPECT_GT(counters.injected_resets, 0u);
  EXPECT_GT(counters.throttled, 0u);
  EXPECT_GT(worker.Stats().retried, 0u);
  EXPECT_EQ(worker.Stats().rejected, 0u);
  EXPECT_EQ(worker.Stats().exhausted, 0u);
  EXPECT_EQ(worker.Stats().dead_lettered, 0u);
  EXPECT_TRUE(ReadAllRecords(Bootstrap(), dead_letter_topic_).empty());
  ExpectState(*simulator_, ExpectedState(events));
  EXPECT_TRUE(FullyCommitted(Bootstrap(), group_, topic_));
}

}  // namespace
}  // namespace crmsync::testing
