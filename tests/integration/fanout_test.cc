// One event stream fanned out by rules to all four providers through the test
// broker, the worker and the simulator; each provider's final state must be
// what the last event of every contact implies.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/simulator.h"
#include "sim/whippy_sim.h"
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

constexpr char kKey[] = "fanout-test-key";
// Documented rate limits run sixty times faster in this test: Whippy's ten
// list writes a minute become ten a second.
constexpr double kTimeScale = 60;

std::optional<std::string> TestEnv(std::string_view) { return std::string(kKey); }

class FanoutTest : public SimBrokerTest {
 protected:
  void SetUp() override {
    sim::Simulator::Options options = AllProvidersOptions(kKey);
    options.knobs.rate_limit_time_scale = kTimeScale;
    options.threads = 32;
    StartSimulatorAndTopics(options);
  }

  FanoutConfig Settings(bool budgets) {
    FanoutConfig config =
        FanoutConfigFor(Bootstrap(), topic_, group_, *simulator_, dead_letter_topic_);
    // Without a budget the worker sends as fast as it can.
    config.budget_time_scale = budgets ? kTimeScale : 0;
    return config;
  }

  mapping::Config Config(bool budgets) { return Load(Settings(budgets)); }

  static mapping::Config Load(const FanoutConfig& settings) {
    return mapping::LoadConfigFromString(providers::Catalog(), FanoutConfigJson(settings),
                                         &TestEnv);
  }

  std::vector<worker::SampleEvent> Produce(size_t events, size_t contacts, uint64_t seed) {
    worker::SampleOptions sample;
    sample.events = events;
    sample.contacts = contacts;
    sample.seed = seed;
    auto generated = worker::GenerateSampleEvents(sample);
    ProduceEvents(Bootstrap(), topic_, generated);
    return generated;
  }

  bool FullyCommitted() { return testing::FullyCommitted(Bootstrap(), group_, topic_); }

  void ExpectState(const Expected& expected) { testing::ExpectState(*simulator_, expected); }
};

// Returns how many operations the providers rejected.
uint64_t RunUntilCommitted(mapping::Config config, const std::function<bool()>& committed) {
  worker::Metrics metrics;
  worker::Worker worker(std::move(config), metrics);
  std::atomic<bool> stop{false};
  std::thread runner([&] { worker.Run(stop); });
  const bool done = WaitFor(committed, seconds(180));
  stop = true;
  runner.join();
  EXPECT_TRUE(done) << "consumed " << worker.Stats().consumed << ", pending "
                    << worker.Stats().pending << ", rejected " << worker.Stats().rejected;
  EXPECT_EQ(worker.Stats().dead_lettered, worker.Stats().rejected);
  return worker.Stats().rejected;
}

TEST_F(FanoutTest, EveryProviderEndsWithTheStateTheLastEventImplies) {
  const auto events = Produce(3000, 300, 21);
  EXPECT_EQ(RunUntilCommitted(Config(/*budgets=*/true), [&] { return FullyCommitted(); }), 0u);
  ExpectState(ExpectedState(events));
  // Sending within the documented budgets, the worker never trips a limit.
  EXPECT_EQ(simulator_->GetCounters().rate_limited, 0u);
}

TEST_F(FanoutTest, ProviderAnswering429IsSlowedDownNotDropped) {
  const auto events = Produce(1500, 200, 23);
  // No proactive budget: the simulator's documented limits answer 429, and
  // the worker must back off and still deliver everything.
  EXPECT_EQ(RunUntilCommitted(Config(/*budgets=*/false), [&] { return FullyCommitted(); }), 0u);
  EXPECT_GT(simulator_->GetCounters().rate_limited, 0u);
  ExpectState(ExpectedState(events));
}

TEST_F(FanoutTest, RandomLatencyWithManyRequestsInFlightKeepsOrder) {
  // Every answer takes 5 to 45 ms, so requests overtake each other; small
  // batches and 20 requests in flight per provider keep many of them
  // outstanding at once. The per-contact order must hold regardless.
  sim::Knobs knobs = simulator_->GetKnobs();
  knobs.latency = milliseconds(5);
  knobs.latency_jitter = milliseconds(40);
  simulator_->SetKnobs(knobs);
  const auto events = Produce(3000, 600, 31);
  FanoutConfig settings = Settings(/*budgets=*/true);
  settings.providers["replify"].settings = R"("maxBatch": 5, "lingerMs": 2, "maxInFlight": 20)";
  settings.providers["whippy"].settings = R"("maxBatch": 50, "lingerMs": 2, "maxInFlight": 20)";
  settings.providers["campaignlark"].settings =
      R"("maxBatch": 5, "lingerMs": 2, "maxInFlight": 20)";
  settings.providers["replyio"].settings = R"("maxBatch": 5, "lingerMs": 2, "maxInFlight": 20)";
  EXPECT_EQ(RunUntilCommitted(Load(settings), [&] { return FullyCommitted(); }), 0u);
  ExpectState(ExpectedState(events));
  const sim::Counters counters = simulator_->GetCounters();
  EXPECT_GT(counters.max_concurrent.at("replify"), 4u) << simulator_->StateJson();
  EXPECT_GT(counters.max_concurrent.at("campaignlark"), 4u) << simulator_->StateJson();
}

TEST_F(FanoutTest, RejectedOperationsAreDeadLetteredAndTheOthersFlow) {
  // An inactive Whippy list refuses every write for good (422): those
  // operations go to the dead-letter topic; the other providers are unaffected.
  auto* whippy = dynamic_cast<sim::WhippySim*>(simulator_->Provider("whippy"));
  ASSERT_NE(whippy, nullptr);
  whippy->SetListActive(kFanoutList, false);
  const auto events = Produce(600, 60, 27);
  const uint64_t rejected =
      RunUntilCommitted(Config(/*budgets=*/true), [&] { return FullyCommitted(); });
  EXPECT_GT(rejected, 0u);
  Expected expected = ExpectedState(events);
  expected.whippy_members.clear();
  ExpectState(expected);
  const auto letters = ReadAllRecords(Bootstrap(), dead_letter_topic_);
  EXPECT_EQ(letters.size(), rejected);
  for (const auto& letter : letters) {
    EXPECT_TRUE(letter.Header("crmsync.reason").has_value()) << letter.key;
  }
}

}  // namespace
}  // namespace crmsync::testing
