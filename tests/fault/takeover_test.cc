// A partition's new owner and the requests its previous owner may still have
// at the provider. A member that stops cleanly drains its work and commits
// with a handover mark; its successor starts at once. A member killed with
// requests in flight leaves no mark; its successor holds the partition's work
// for worker.takeoverFenceMs (by default the longest requestTimeoutMs), so
// that those requests are answered before it sends anything. Without that
// wait a successor replaying from the committed offset can write a contact's
// later state before a killed member's request lands with an earlier one.
//
// Each process gets its own API key, so that the simulator's request log
// tells whose request it received and answered when.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/fault/replify_stream.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "tests/support/worker_process.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr char kFenceLine[] = "taken over without a handover";

class TakeoverTest : public BrokerTest {
 protected:
  void SetUp() override {
    sim::Simulator::Options options;
    options.api_keys = {{"replify", kStreamApiKey}};
    options.labelled_api_keys["replify"] = {
        {"key-first", "first"}, {"key-second", "second"}, {"key-third", "third"}};
    options.request_log_limit = 1'000'000;
    options.threads = 32;
    simulator_ = std::make_unique<sim::Simulator>(options);
    simulator_->Start();
    topic_ = MakeTopic(2);
    group_ = MakeGroup();
    StreamConfig config;
    config.bootstrap = Bootstrap();
    config.topic = topic_;
    config.group = group_;
    config.base_url = simulator_->BaseUrl("replify");
    // The fence is the request timeout: requests of a killed member that
    // take kSlow are answered well inside it.
    config.replify_settings =
        R"("maxBatch": 20, "lingerMs": 5, "maxInFlight": 4, "requestTimeoutMs": 10000)";
    config_path_ = WriteStreamConfig(config, group_);
  }

  static constexpr milliseconds kSlow{8000};

  std::unique_ptr<WorkerProcess> Start(const std::string& label) {
    WorkerProcessOptions options;
    options.config_path = config_path_;
    options.env = {{kStreamApiKeyEnv, "key-" + label}};
    options.log_level = "info";
    options.log_path =
        ::testing::TempDir() + "/" + std::to_string(getpid()) + "-" + group_ + "-" + label + ".log";
    return std::make_unique<WorkerProcess>(options);
  }

  void SetLatency(milliseconds latency) {
    sim::Knobs knobs;
    knobs.latency = latency;
    simulator_->SetKnobs(knobs);
  }
  bool RequestsInFlight() {
    const auto counters = simulator_->GetCounters();
    auto it = counters.in_flight.find("replify");
    return it != counters.in_flight.end() && it->second > 0;
  }
  // When the first request of `label` was received, and when its last was
  // answered.
  std::optional<SteadyTime> FirstArrival(const std::string& label) {
    std::optional<SteadyTime> first;
    for (const auto& r : simulator_->RequestLog()) {
      if (r.key_label == label && (!first || r.arrived < *first)) first = r.arrived;
    }
    return first;
  }
  std::optional<SteadyTime> LastAnswer(const std::string& label) {
    std::optional<SteadyTime> last;
    for (const auto& r : simulator_->RequestLog()) {
      if (r.key_label == label && (!last || r.responded > *last)) last = r.responded;
    }
    return last;
  }
  // The successor's first request reached the provider only after the
  // killed member's last one was answered.
  void ExpectNoOverlap(const std::string& killed, const std::string& successor) {
    const auto last = LastAnswer(killed);
    const auto first = FirstArrival(successor);
    ASSERT_TRUE(last && first) << killed << " or " << successor << " sent nothing";
    EXPECT_TRUE(*first > *last) << successor << "'s first request arrived "
                                << std::chrono::duration_cast<milliseconds>(*last - *first).count()
                                << " ms before " << killed << "'s last was answered";
  }
  bool FullyCommitted() { return testing::FullyCommitted(Bootstrap(), group_, topic_); }
  int64_t Committed() { return CommittedTotal(Bootstrap(), group_, topic_); }

  std::unique_ptr<sim::Simulator> simulator_;
  std::string topic_, group_, config_path_;
};

// first stops cleanly: second is not fenced, and clears first's handover
// mark. second is killed with requests in flight before it committed
// anything: third finds no mark (the one first left is gone), waits, and
// sends only after second's last request was answered.
TEST_F(TakeoverTest, OnlyAMemberThatDrainedLetsItsSuccessorStartAtOnce) {
  const auto events = MakeEvents(6000, 600, 91);
  const auto half = events.begin() + 2000;
  ProduceEvents(Bootstrap(), topic_, {events.begin(), half});

  SetLatency(milliseconds(20));
  auto first = Start("first");
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted() || !first->Running(); }, seconds(60)))
      << first->Log();
  ASSERT_EQ(first->Terminate(), 0) << first->Log();
  // The rest of the stream is for first's successors.
  ProduceEvents(Bootstrap(), topic_, {half, events.end()});

  // Every request second sends stays at the provider for kSlow: it commits
  // nothing before it is killed.
  SetLatency(kSlow);
  const int64_t committed_by_first = Committed();
  auto second = Start("second");
  ASSERT_TRUE(WaitFor([&] { return FirstArrival("second") || !second->Running(); }, seconds(60)))
      << second->Log();
  EXPECT_FALSE(second->LogContains(kFenceLine)) << second->Log();
  ASSERT_TRUE(WaitFor([&] { return RequestsInFlight(); }, seconds(10)));
  second->Kill9();
  EXPECT_EQ(Committed(), committed_by_first) << "second committed before it was killed";
  // second's requests are still at the provider; third's go fast.
  SetLatency(milliseconds(0));

  auto third = Start("third");
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted() || !third->Running(); }, seconds(120)))
      << third->Log();
  EXPECT_TRUE(third->LogContains(kFenceLine)) << third->Log();
  EXPECT_EQ(third->Terminate(), 0) << third->Log();
  ExpectNoOverlap("second", "third");
  ExpectCampaign(*simulator_, events);
}

// The first owner of partitions nobody committed has nothing to wait for,
// also when their leader answers the first ListOffsets requests with
// NOT_LEADER_FOR_PARTITION, as a real broker does for a moment after a topic
// is created: the start offset is asked again, not taken for a takeover.
TEST_F(TakeoverTest, AFirstOwnerStartsAtOnceWhileTheLeaderIsNotKnownYet) {
  constexpr int16_t kListOffsetsRequest = 2;  // Kafka protocol API key
  const auto events = MakeEvents(400, 100, 17);
  ProduceEvents(Bootstrap(), topic_, events);
  // Enough for librdkafka's own look-ups of where to start fetching and the
  // worker's of where a partition starts (it asks the same leader).
  Broker().PushBrokerRequestErrors(1, kListOffsetsRequest,
                                   std::vector<std::pair<rd_kafka_resp_err_t, int>>(
                                       10, {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0}));
  auto first = Start("first");
  // Until the provider has it all, this test asks the broker nothing (its
  // own lag queries would take the errors).
  const auto expected = ExpectedCampaign(events);
  ASSERT_TRUE(WaitFor([&] { return HeldCampaign(*simulator_) == expected || !first->Running(); },
                      seconds(60)))
      << first->Log();
  EXPECT_FALSE(first->LogContains(kFenceLine)) << first->Log();
  EXPECT_EQ(Broker().BrokerErrorsLeft(1, kListOffsetsRequest), 0u);
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(30)));
  EXPECT_EQ(first->Terminate(), 0) << first->Log();
}

}  // namespace
}  // namespace crmsync::testing
