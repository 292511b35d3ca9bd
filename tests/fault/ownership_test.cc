// Partition ownership end to end: what a member may still do with a
// partition's work once the group has moved the partition, how it commits
// around rebalances, how it bounds what it holds, and how it shuts down.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/fault/replify_stream.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "tests/support/worker_process.h"
#include "worker/kafka/producer.h"
#include "worker/sample_events.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

worker::SampleEvent Event(int contact, mapping::EventKind kind, int64_t at_ms) {
  mapping::CrmEvent event;
  event.event_id = "own-" + std::to_string(contact) + "-" + std::to_string(at_ms);
  event.occurred_at_ms = 1795435200000 + at_ms;
  event.occurred_at = "2026-11-23T12:00:00Z";
  event.external_id_key = "hubspotId";
  event.external_id_value = std::to_string(700000 + contact);
  event.kind = kind;
  event.contact.email = "owner" + std::to_string(contact) + "@example.com";
  event.contact.phone = "1555" + std::to_string(7000000 + contact);
  if (kind != mapping::EventKind::kDeleted) {
    event.contact.first_name = "Ada";
    event.contact.last_name = "Lovelace";
  }
  worker::SampleEvent sample;
  sample.key = event.ContactKey();
  sample.payload = worker::ToCanonicalJson(event);
  sample.event = event;
  return sample;
}

void ProduceTo(const std::string& bootstrap, const std::string& topic,
               const std::vector<std::pair<int32_t, worker::SampleEvent>>& events) {
  kafka::Producer producer(bootstrap);
  for (const auto& [partition, event] : events) {
    producer.Produce(topic, event.key, event.payload, partition);
  }
  producer.Flush();
}

class OwnershipTest : public BrokerTest {
 protected:
  void SetUp() override {
    simulator_ = StartStreamSimulator(64);
    topic_ = MakeTopic(2);
    group_ = MakeGroup();
  }
  StreamConfig Config() const {
    StreamConfig config;
    config.bootstrap = Bootstrap();
    config.topic = topic_;
    config.group = group_;
    config.base_url = simulator_->BaseUrl("replify");
    return config;
  }

  std::unique_ptr<sim::Simulator> simulator_;
  std::string topic_;
  std::string group_;
};

// Member A holds a contact's upsert waiting for its
// request budget; B takes the partition, replays the upsert and then a
// removal. A must never send its stale upsert afterwards — the contact
// would stay in the campaign for good.
TEST_F(OwnershipTest, WorkWaitingForBudgetIsNeverSentAfterItsPartitionMoves) {
  StreamConfig slow = Config();
  // One request per 12 s: the first batch takes the budget, the second
  // waits well past the rebalance.
  slow.replify_settings =
      R"("maxBatch": 10, "lingerMs": 200, "maxInFlight": 4, "requestTimeoutMs": 5000,
         "rateLimits": [{"requests": 1, "periodMs": 12000}])";
  slow.worker = R"({"drainTimeoutMs": 1000, "commitIntervalMs": 100,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200}, "metrics": {"listen": "127.0.0.1:0"}})";
  StreamConfig fast = Config();

  // Contacts 0 and 1 on partition 0, 2 and 3 on partition 1.
  ProduceTo(Bootstrap(), topic_,
            {{0, Event(0, mapping::EventKind::kCreated, 1)},
             {1, Event(2, mapping::EventKind::kCreated, 2)}});
  RunningWorker a(LoadStreamConfig(slow));
  ASSERT_TRUE(WaitFor([&] { return simulator_->GetCounters().requests >= 1; }, seconds(30)));
  // Now the budget is spent: these wait for it.
  ProduceTo(Bootstrap(), topic_,
            {{0, Event(1, mapping::EventKind::kCreated, 3)},
             {1, Event(3, mapping::EventKind::kCreated, 4)}});
  ASSERT_TRUE(WaitFor([&] { return a.Stats().consumed >= 4; }, seconds(30)));
  std::this_thread::sleep_for(milliseconds(400));  // past the linger: a batch waits for budget
  ASSERT_EQ(simulator_->GetCounters().requests, 1u);

  RunningWorker b(LoadStreamConfig(fast));
  ASSERT_TRUE(WaitFor([&] { return b.Stats().assigned_partitions >= 1; }, seconds(30)));
  // B owns one partition now and replays its contacts; then every contact
  // is deleted.
  ProduceTo(Bootstrap(), topic_,
            {{0, Event(0, mapping::EventKind::kDeleted, 5)},
             {0, Event(1, mapping::EventKind::kDeleted, 6)},
             {1, Event(2, mapping::EventKind::kDeleted, 7)},
             {1, Event(3, mapping::EventKind::kDeleted, 8)}});
  // A's kept partition needs two more of its budget slots (24 s): by then a
  // stale upsert, due at its first free slot, would have landed.
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(Bootstrap(), group_, topic_); }, seconds(90)));
  std::this_thread::sleep_for(seconds(1));
  EXPECT_TRUE(HeldCampaign(*simulator_).empty())
      << HeldCampaign(*simulator_).size() << " deleted contact(s) back in the campaign";
  EXPECT_GE(a.Stats().revokes, 1u);
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
  EXPECT_TRUE(HeldCampaign(*simulator_).empty());
}

// A member stopped while its first join is still under way (a pod stopped
// during a rollout's scale-up, SIGTERM during start-up) shuts down cleanly:
// librdkafka 2.0.2 aborts destroying a cooperative-sticky member whose
// assignor never ran (its issue 4312, fixed in 2.3.0), so the worker waits
// for that first (possibly empty) assignment before it leaves.
TEST_F(OwnershipTest, AMemberStoppedBeforeItsFirstAssignmentShutsDownCleanly) {
  StreamConfig config = Config();
  RunningWorker a(LoadStreamConfig(config));
  ASSERT_TRUE(WaitFor([&] { return a.Stats().assigned_partitions == 2; }, seconds(30)));
  // Stopped at moments across the join (about 3 s on the test broker):
  // before its JoinGroup, and between its JoinGroup and SyncGroup answers.
  for (int round = 0; round < 16; ++round) {
    RunningWorker b(LoadStreamConfig(config));
    std::this_thread::sleep_for(milliseconds(250 * round));
    EXPECT_EQ(b.Stop(), 0) << "stopped " << 250 * round << " ms after start";
  }
  EXPECT_EQ(a.Stop(), 0);
}

// A revoke commits every partition the member keeps too, not only the
// revoked ones: here the timer would not commit for a minute.
TEST_F(OwnershipTest, ARevokeCommitsThePartitionsKeptToo) {
  StreamConfig config = Config();
  config.worker = R"({"drainTimeoutMs": 2000, "commitIntervalMs": 60000,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200}, "metrics": {"listen": "127.0.0.1:0"}})";
  std::vector<std::pair<int32_t, worker::SampleEvent>> events;
  for (int i = 0; i < 20; ++i) {
    events.emplace_back(i % 2, Event(i, mapping::EventKind::kCreated, i));
  }
  ProduceTo(Bootstrap(), topic_, events);
  RunningWorker a(LoadStreamConfig(config));
  ASSERT_TRUE(WaitFor([&] { return a.Stats().delivered >= 20; }, seconds(30)));
  EXPECT_FALSE(FullyCommitted(Bootstrap(), group_, topic_)) << "committed before any rebalance";
  RunningWorker b(LoadStreamConfig(config));
  // The revoke of one partition commits both.
  EXPECT_TRUE(WaitFor([&] { return FullyCommitted(Bootstrap(), group_, topic_); }, seconds(30)));
  // B is stopped only once it holds the partition: librdkafka 2.0.2 aborts
  // when a cooperative-sticky member that never got an assignment is
  // destroyed (its issue 4312, fixed in 2.3.0).
  EXPECT_TRUE(WaitFor([&] { return b.Stats().assigned_partitions > 0; }, seconds(30)));
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
}

// 10,000 messages for one hot contact coalesce into a few operations, but
// each message is held until done: the member pauses on messages too.
TEST_F(OwnershipTest, BackpressureCountsMessagesNotOnlyOperations) {
  topic_ = MakeTopic(1);
  simulator_->SetKnobs([] {
    sim::Knobs knobs;
    knobs.latency = milliseconds(300);
    return knobs;
  }());
  StreamConfig config = Config();
  config.worker = R"({"drainTimeoutMs": 2000, "commitIntervalMs": 100,
    "maxPendingMessages": 500,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200}, "metrics": {"listen": "127.0.0.1:0"}})";
  std::vector<std::pair<int32_t, worker::SampleEvent>> events;
  for (int i = 0; i < 10000; ++i) {
    events.emplace_back(0, Event(1, mapping::EventKind::kUpdated, i));
  }
  ProduceTo(Bootstrap(), topic_, events);
  RunningWorker worker(LoadStreamConfig(config));
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(Bootstrap(), group_, topic_); }, seconds(120)));
  // One poll hands out at most 1,000 messages after the limit is reached.
  EXPECT_LE(worker.Stats().max_outstanding_messages, 500u + 2 * 1000u);
  EXPECT_EQ(worker.Stop(), 0);
}

// A malformed message of 1,000,100 bytes is larger than the dead-letter
// producer may write: it is dead-lettered as its key, a prefix and the
// value's size and hash, and the member goes on.
TEST_F(OwnershipTest, AnOversizedPoisonMessageIsDeadLetteredWithinTheLimit) {
  topic_ = MakeTopic(1);
  const std::string dead_letters = MakeTopic(1);
  StreamConfig config = Config();
  config.worker = R"({"drainTimeoutMs": 2000, "commitIntervalMs": 100,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200}, "metrics": {"listen": "127.0.0.1:0"}})";
  mapping::Config loaded = LoadStreamConfig(config);
  loaded.kafka.dead_letter_topic = dead_letters;
  loaded.worker.retry.on_exhausted = mapping::OnExhausted::kDeadLetter;
  {
    kafka::Producer producer(Bootstrap(), {{"message.max.bytes", "2000000"}});
    const worker::SampleEvent good = Event(5, mapping::EventKind::kCreated, 1);
    producer.Produce(topic_, "hubspotId:poison", std::string(1000100, '{'), 0);
    producer.Produce(topic_, good.key, good.payload, 0);
    producer.Flush();
  }
  RunningWorker worker(std::move(loaded));
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(Bootstrap(), group_, topic_); }, seconds(60)));
  EXPECT_EQ(worker.Stats().dead_lettered, 1u);
  EXPECT_EQ(worker.Stats().delivered, 1u);
  EXPECT_EQ(worker.Stop(), 0);
  const auto letters = ReadAllRecords(Bootstrap(), dead_letters);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].key, "hubspotId:poison");
  EXPECT_EQ(letters[0].Header("crmsync.value.truncated"), "true");
  EXPECT_EQ(letters[0].Header("crmsync.value.bytes"), "1000100");
  EXPECT_EQ(letters[0].Header("crmsync.value.sha256").value_or("").size(), 64u);
  EXPECT_EQ(letters[0].value, std::string(1024, '{'));
}

// SIGTERM with work stuck on a provider that does not answer: one drain
// within drainTimeoutMs, then leave and exit 0 — not a second drain on the
// way out of the group.
TEST_F(OwnershipTest, ShutdownWithStuckWorkEndsWithinOneDrain) {
  simulator_->SetKnobs([] {
    sim::Knobs knobs;
    knobs.latency = seconds(8);
    return knobs;
  }());
  StreamConfig config = Config();
  config.replify_settings =
      R"("maxBatch": 50, "lingerMs": 5, "maxInFlight": 8, "requestTimeoutMs": 20000)";
  config.worker = R"({"drainTimeoutMs": 4000, "commitIntervalMs": 100,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200}, "metrics": {"listen": "127.0.0.1:0"}})";
  ProduceTo(Bootstrap(), topic_,
            {{0, Event(0, mapping::EventKind::kCreated, 1)},
             {1, Event(1, mapping::EventKind::kCreated, 2)}});
  WorkerProcess worker(WriteStreamConfig(config, "shutdown"), {{kStreamApiKeyEnv, kStreamApiKey}});
  ASSERT_TRUE(WaitFor([&] { return simulator_->GetCounters().requests >= 1; }, seconds(30)));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(worker.Terminate(), 0) << worker.Log();
  const auto took = std::chrono::steady_clock::now() - started;
  // The drain (4 s), a commit and the group leave; twice the drain is what
  // a second drain would take.
  EXPECT_LT(took, milliseconds(7500))
      << std::chrono::duration_cast<milliseconds>(took).count() << " ms\n"
      << worker.Log();
}

}  // namespace
}  // namespace crmsync::testing

namespace crmsync::testing {
namespace {

// After a restart the lag is the high watermark minus the group's committed
// offset from the first scrape on — not 0 until this member first commits,
// which a member stuck behind a failing provider never does.
TEST_F(OwnershipTest, LagAfterARestartCountsFromTheGroupsCommittedOffset) {
  topic_ = MakeTopic(1);
  StreamConfig config = Config();
  std::vector<std::pair<int32_t, worker::SampleEvent>> first, second;
  for (int i = 0; i < 10; ++i) first.emplace_back(0, Event(i, mapping::EventKind::kCreated, i));
  for (int i = 0; i < 10; ++i) {
    second.emplace_back(0, Event(i, mapping::EventKind::kUpdated, 100 + i));
  }
  ProduceTo(Bootstrap(), topic_, first);
  {
    RunningWorker worker(LoadStreamConfig(config));
    ASSERT_TRUE(WaitFor([&] { return FullyCommitted(Bootstrap(), group_, topic_); }, seconds(30)));
    EXPECT_EQ(worker.Stop(), 0);
  }
  ProduceTo(Bootstrap(), topic_, second);
  simulator_->SetKnobs([] {
    sim::Knobs knobs;
    knobs.fail_all = true;
    return knobs;
  }());
  worker::Metrics metrics;
  worker::Worker stuck(LoadStreamConfig(config), metrics);
  std::atomic<bool> stop{false};
  std::thread runner([&] { stuck.Run(stop); });
  const std::string lag = "crmsync_consumer_lag{partition=\"0\",topic=\"" + topic_ + "\"} 10";
  const bool seen = WaitFor(
      [&] { return stuck.Stats().consumed >= 10 && metrics.Text().find(lag) != std::string::npos; },
      seconds(30));
  stop = true;
  runner.join();
  EXPECT_TRUE(seen) << metrics.Text().substr(0, 4000);
}

}  // namespace
}  // namespace crmsync::testing

namespace crmsync::testing {
namespace {

// A member the group never gave a partition stops cleanly: unsubscribing
// before closing keeps librdkafka 2.0.2's sticky assignor from asserting.
TEST_F(OwnershipTest, AMemberWithoutPartitionsShutsDownCleanly) {
  topic_ = MakeTopic(1);
  StreamConfig config = Config();
  ProduceTo(Bootstrap(), topic_, {{0, Event(0, mapping::EventKind::kCreated, 1)}});
  WorkerProcessOptions first_options;
  first_options.config_path = WriteStreamConfig(config, "first");
  first_options.env = {{kStreamApiKeyEnv, kStreamApiKey}};
  first_options.log_level = "info";
  WorkerProcess first(first_options);
  ASSERT_TRUE(WaitFor([&] { return first.LogContains("assigned 1 partition"); }, seconds(30)))
      << first.Log();
  WorkerProcessOptions idle_options = first_options;
  idle_options.config_path = WriteStreamConfig(config, "idle");
  idle_options.log_path.clear();
  WorkerProcess idle(idle_options);
  // The rebalance the second member causes keeps the one partition where it is.
  ASSERT_TRUE(WaitFor([&] { return idle.LogContains("assigned 0 partition"); }, seconds(30)))
      << idle.Log();
  EXPECT_EQ(idle.Terminate(), 0) << idle.Log();
  EXPECT_EQ(first.Terminate(), 0) << first.Log();
}

}  // namespace
}  // namespace crmsync::testing
