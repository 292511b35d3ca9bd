// Crash loop: the real `crmsync run` binary is killed with SIGKILL again and
// again at random moments of a 50,000-event stream and restarted each time;
// a last run then drains the group. At-least-once delivery and state-set
// operations mean nothing is lost and every contact ends in the state of its
// last event, and the group's offsets reach the log end.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <regex>
#include <thread>

#include "tests/fault/replify_stream.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "tests/support/worker_process.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The worker logs "assigned N partition(s)" once it holds partitions.
bool HoldsPartitions(const WorkerProcess& worker) {
  static const std::regex assigned("assigned [1-9][0-9]* partition");
  return std::regex_search(worker.Log(), assigned);
}

class CrashLoopTest : public BrokerTest {
 protected:
  void SetUp() override {
    simulator_ = StartStreamSimulator();
    topic_ = MakeTopic(8);
    group_ = MakeGroup();
  }

  WorkerProcess StartWorker(const std::string& config_path, const std::string& name) {
    WorkerProcessOptions options;
    options.config_path = config_path;
    options.env = {{kStreamApiKeyEnv, kStreamApiKey}};
    options.log_level = "info";
    options.log_path = ::testing::TempDir() + "/" + group_ + "-" + name + ".log";
    return WorkerProcess(options);
  }

  bool FullyCommitted() { return testing::FullyCommitted(Bootstrap(), group_, topic_); }

  std::unique_ptr<sim::Simulator> simulator_;
  std::string topic_;
  std::string group_;
};

TEST_F(CrashLoopTest, RepeatedKillNineLosesNothingAndKeepsOrder) {
  const auto events = MakeEvents(50000, 5000, 31);
  ProduceEvents(Bootstrap(), topic_, events);
  // A slow provider keeps the stream going across every kill; the last run
  // gets a fast one.
  sim::Knobs slow;
  slow.latency = milliseconds(40);
  slow.latency_jitter = milliseconds(20);
  simulator_->SetKnobs(slow);

  StreamConfig config{Bootstrap(), topic_, group_, simulator_->BaseUrl("replify")};
  // Every restart finds the killed run's partitions without a handover and
  // waits before sending: long enough for its requests (40-60 ms) to be
  // answered, far shorter than the default (requestTimeoutMs) to keep the test
  // short. Each run lives past that wait, so that it makes headway.
  constexpr int kFenceMs = 500;
  config.worker.insert(1, "\"takeoverFenceMs\": " + std::to_string(kFenceMs) + ", ");
  const std::string config_path = WriteStreamConfig(config, group_);

  constexpr int kKills = 10;
  std::mt19937 random(20261123);
  std::uniform_int_distribution<int> run_ms(kFenceMs + 300, kFenceMs + 2000);
  int64_t committed = 0;
  int progressed = 0;  // runs after which more was committed than before
  for (int run = 0; run < kKills; ++run) {
    WorkerProcess worker = StartWorker(config_path, "run" + std::to_string(run));
    // A restart joins while the killed member still holds its partitions in
    // the group: it gets them once that member's session has expired.
    ASSERT_TRUE(WaitFor([&] { return HoldsPartitions(worker) || !worker.Running(); }, seconds(60)))
        << "run " << run << " never got partitions:\n"
        << worker.Log();
    ASSERT_TRUE(worker.Running()) << "run " << run << " exited:\n" << worker.Log();
    std::this_thread::sleep_for(milliseconds(run_ms(random)));
    ASSERT_TRUE(worker.Running()) << "run " << run << " exited:\n" << worker.Log();
    worker.Kill9();

    ASSERT_FALSE(FullyCommitted()) << "the stream was done before kill " << run + 1;
    const int64_t now = CommittedTotal(Bootstrap(), group_, topic_);
    if (now > committed) ++progressed;
    committed = std::max(committed, now);
  }
  // Work done between kills was committed, so runs make headway.
  EXPECT_GE(progressed, 3) << "committed " << committed << " of " << events.size();

  simulator_->SetKnobs(sim::Knobs{});
  WorkerProcess last = StartWorker(config_path, "last");
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted() || !last.Running(); }, seconds(180)))
      << last.Log();
  ASSERT_TRUE(last.Running()) << last.Log();
  EXPECT_EQ(last.Terminate(), 0) << last.Log();

  // Nothing lost, order kept: every contact is in its last event's state,
  // and everything is committed.
  ExpectCampaign(*simulator_, events);
  EXPECT_TRUE(FullyCommitted());
}

}  // namespace
}  // namespace crmsync::testing
