// Broker faults while events flow, injected through librdkafka's mock
// cluster (three brokers on loopback): errors on Fetch and on OffsetCommit,
// partition leaders moving to other brokers, and a broker going down and
// coming back. The in-process worker must end with every contact in the
// state its last event implies and the group committed up to the log end.
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "tests/fault/replify_stream.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "worker/kafka/producer.h"
#include "worker/kafka/test_broker.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Kafka protocol request types (ApiKey); librdkafka does not install its
// protocol header.
constexpr int16_t kFetchRequest = 1;
constexpr int16_t kOffsetCommitRequest = 8;

constexpr int kBrokers = 3;
constexpr int kPartitions = 6;

// Warnings and errors logged in this process, for checking that the worker
// really met the injected faults.
class LogCapture : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> Lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  size_t Count(const std::string& text) {
    size_t n = 0;
    for (const auto& line : Lines()) n += line.find(text) != std::string::npos ? 1 : 0;
    return n;
  }
  void Clear() {
    std::lock_guard lock(mutex_);
    lines_.clear();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::warn) return;
    lines_.emplace_back(msg.payload.begin(), msg.payload.end());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;  // guarded by the base sink's mutex
};

LogCapture& Captured() {
  static std::shared_ptr<LogCapture> capture = [] {
    auto sink = std::make_shared<LogCapture>();
    spdlog::default_logger()->sinks().push_back(sink);
    return sink;
  }();
  return *capture;
}

class BrokerFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Captured().Clear();
    // A cluster per test: injected errors are cluster state.
    broker_ = std::make_unique<kafka::TestBroker>(kBrokers);
    broker_->CreateTopic(topic_, kPartitions, kBrokers);
    // Leaders spread over the brokers: partition p on broker p % 3 + 1.
    for (int p = 0; p < kPartitions; ++p) broker_->SetPartitionLeader(topic_, p, p % kBrokers + 1);
    broker_->SetGroupCoordinator(group_, kCoordinator);
    simulator_ = StartStreamSimulator();
    events_ = MakeEvents(40000, 3000, 41);
  }

  void TearDown() override {
    if (producer_.joinable()) producer_.join();
  }

  mapping::Config Config() {
    StreamConfig config;
    config.bootstrap = broker_->BootstrapServers();
    config.topic = topic_;
    config.group = group_;
    config.base_url = simulator_->BaseUrl("replify");
    config.kafka_properties["session.timeout.ms"] = "6000";
    return LoadStreamConfig(config);
  }

  // Produces the events in slices on a thread, paced so that the stream
  // keeps flowing until FinishProducing() (or the events run out); an
  // idempotent producer keeps each partition's order through the faults.
  void StartProducing() {
    producer_ = std::thread([this] {
      kafka::Producer producer(broker_->BootstrapServers(), {{"enable.idempotence", "true"}});
      constexpr size_t kSlice = 400;
      size_t i = 0;
      for (; i < events_.size() && !(finish_ && i >= kMinimumEvents); ++i) {
        producer.Produce(topic_, events_[i].key, events_[i].payload);
        if ((i + 1) % kSlice == 0) std::this_thread::sleep_for(milliseconds(200));
      }
      producer.Flush();
      produced_count_ = i;
      produced_ = true;
    });
  }
  void FinishProducing() { finish_ = true; }

  // The stream is in progress: still being produced, and not yet committed.
  bool Streaming() {
    return !produced_ && !FullyCommitted(broker_->BootstrapServers(), group_, topic_);
  }

  // Waits until the worker has consumed `count` events.
  void AwaitConsumed(const RunningWorker& worker, uint64_t count) {
    ASSERT_TRUE(WaitFor([&] { return worker.Stats().consumed >= count; }, seconds(60)))
        << "consumed " << worker.Stats().consumed;
  }

  // Ends the test: the stream completes, and nothing is lost or reordered.
  void ExpectCompletes(RunningWorker& worker) {
    FinishProducing();
    ASSERT_TRUE(WaitFor([&] { return produced_.load(); }, seconds(120)));
    producer_.join();
    const std::vector<worker::SampleEvent> produced(
        events_.begin(), events_.begin() + static_cast<ptrdiff_t>(produced_count_.load()));
    ASSERT_TRUE(WaitFor([&] { return FullyCommitted(broker_->BootstrapServers(), group_, topic_); },
                        seconds(120)))
        << "consumed " << worker.Stats().consumed << ", pending " << worker.Stats().pending;
    EXPECT_EQ(worker.Stop(), 0);
    ExpectCampaign(*simulator_, produced);
    EXPECT_GE(worker.Stats().consumed, produced.size());
    EXPECT_EQ(worker.Stats().rejected, 0u);
    EXPECT_TRUE(FullyCommitted(broker_->BootstrapServers(), group_, topic_));
  }

  static constexpr int32_t kCoordinator = 1;
  const std::string topic_ = "crm.contacts";
  const std::string group_ = "crmsync-broker-faults";
  std::unique_ptr<kafka::TestBroker> broker_;
  std::unique_ptr<sim::Simulator> simulator_;
  std::vector<worker::SampleEvent> events_;
  std::thread producer_;
  std::atomic<bool> finish_{false};
  std::atomic<bool> produced_{false};
  std::atomic<size_t> produced_count_{0};
  static constexpr size_t kMinimumEvents = 6000;
};

TEST_F(BrokerFaultTest, FetchErrorsOnEveryBrokerAreRetried) {
  StartProducing();
  RunningWorker worker(Config());
  AwaitConsumed(worker, 2000);
  ASSERT_TRUE(Streaming());
  // Every broker answers its next fetches with partition errors (after a
  // delay) and a dropped connection.
  const std::vector<std::pair<rd_kafka_resp_err_t, int>> errors = {
      {RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR, 300},
      {RD_KAFKA_RESP_ERR__TRANSPORT, 0},
      {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0}};
  for (int b = 1; b <= kBrokers; ++b) broker_->PushBrokerRequestErrors(b, kFetchRequest, errors);
  // Only the worker's consumer fetches: once every error has been returned,
  // it met all of them.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int b = 1; b <= kBrokers; ++b) {
          if (broker_->BrokerErrorsLeft(b, kFetchRequest) > 0) return false;
        }
        return true;
      },
      seconds(60)));
  // The errors were met while events were still arriving.
  EXPECT_TRUE(Streaming());
  ExpectCompletes(worker);
}

TEST_F(BrokerFaultTest, FailedOffsetCommitsAreRetriedByLaterCommits) {
  StartProducing();
  RunningWorker worker(Config());
  AwaitConsumed(worker, 2000);
  ASSERT_TRUE(Streaming());
  // The coordinator fails the next commits: retriable coordinator errors,
  // a dropped connection, and errors the commit is refused with outright.
  broker_->PushBrokerRequestErrors(kCoordinator, kOffsetCommitRequest,
                                   {{RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0},
                                    {RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, 0},
                                    {RD_KAFKA_RESP_ERR_NOT_COORDINATOR, 0},
                                    {RD_KAFKA_RESP_ERR__TRANSPORT, 0},
                                    {RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE, 0},
                                    {RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE, 0},
                                    {RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE, 200}});
  ASSERT_TRUE(
      WaitFor([&] { return broker_->BrokerErrorsLeft(kCoordinator, kOffsetCommitRequest) == 0; },
              seconds(60)));
  // The errors were met while events were still arriving.
  EXPECT_TRUE(Streaming());
  // The worker saw commits fail (and logged it), and went on.
  EXPECT_GT(Captured().Count("kafka commit"), 0u);
  ExpectCompletes(worker);
}

TEST_F(BrokerFaultTest, PartitionLeadersMovingMidStreamAreFollowed) {
  StartProducing();
  RunningWorker worker(Config());
  AwaitConsumed(worker, 2000);
  ASSERT_TRUE(Streaming());
  // Every partition's leader moves to the next broker; the old leader
  // answers fetches for it with NOT_LEADER_FOR_PARTITION from then on.
  const uint64_t consumed = worker.Stats().consumed;
  for (int p = 0; p < kPartitions; ++p) {
    broker_->SetPartitionLeader(topic_, p, (p + 1) % kBrokers + 1);
  }
  // Events produced after the move can only be fetched from the new leaders.
  AwaitConsumed(worker, consumed + 1000);
  EXPECT_TRUE(Streaming());
  ExpectCompletes(worker);
}

TEST_F(BrokerFaultTest, BrokerDownThenUpMidStream) {
  StartProducing();
  RunningWorker worker(Config());
  AwaitConsumed(worker, 2000);
  ASSERT_TRUE(Streaming());
  // The group coordinator, which also leads partitions 0 and 3, goes down
  // for longer than several commit intervals and heartbeats, then comes back.
  const uint64_t consumed = worker.Stats().consumed;
  broker_->SetBrokerDown(kCoordinator);
  std::this_thread::sleep_for(milliseconds(2500));
  broker_->SetBrokerUp(kCoordinator);
  AwaitConsumed(worker, consumed + 1000);
  EXPECT_TRUE(Streaming());
  // The worker's consumer was refused by the brokers that were down (its
  // lines read "kafka ...", the test producer's "kafka producer ...").
  size_t refused = 0;
  for (const auto& line : Captured().Lines()) {
    if (line.rfind("kafka producer", 0) != 0 &&
        line.find("Connection refused") != std::string::npos) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0u);
  ExpectCompletes(worker);
}

}  // namespace
}  // namespace crmsync::testing
