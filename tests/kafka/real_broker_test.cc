// The `kafka` tier: the worker against a real Apache Kafka broker (KRaft,
// single node, tests/support/kafka_broker.h) instead of librdkafka's mock
// cluster. One broker serves every test of this binary; the tests run one at
// a time (RUN_SERIAL) so that two cores carry the broker, the workers and the
// simulator.
//
// Each test asserts behaviour the mock cannot show or shows differently: a
// real group coordinator (sessions, static membership, cooperative
// rebalances), a real log (retention deleting segments, idempotent producer
// state), and a broker process that can be stopped and killed.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mapping/config.h"
#include "tests/fault/replify_stream.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "tests/support/kafka_broker.h"
#include "tests/support/worker_process.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/producer.h"
#include "worker/metrics.h"
#include "worker/worker.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kKey[] = "kafka-tier-key";

// Lines of a worker log matching `pattern`.
int CountLines(const std::string& log, const std::string& pattern) {
  const std::regex re(pattern);
  return static_cast<int>(
      std::distance(std::sregex_iterator(log.begin(), log.end(), re), std::sregex_iterator()));
}

bool HoldsPartitions(const WorkerProcess& worker) {
  return CountLines(worker.Log(), "assigned [1-9][0-9]* partition") > 0;
}

// Partitions a worker holds according to its log: assigned minus revoked, as
// logged by the rebalance callbacks (a loss is logged as a warning and then
// as "revoked N partition(s)" too).
int HeldByLog(const std::string& log) {
  int held = 0;
  static const std::regex line("(assigned|revoked) ([0-9]+) partition");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    held += ((*it)[1] == "assigned" ? 1 : -1) * std::stoi((*it)[2]);
  }
  return held;
}

std::unique_ptr<sim::Simulator> StartFanoutSimulator(int threads = 32) {
  sim::Simulator::Options options;
  options.api_keys = {
      {"replify", kKey}, {"whippy", kKey}, {"campaignlark", kKey}, {"replyio", kKey}};
  options.knobs.enforce_rate_limits = false;
  options.threads = threads;
  auto simulator = std::make_unique<sim::Simulator>(options);
  simulator->Start();
  return simulator;
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path =
      ::testing::TempDir() + "/" + std::to_string(getpid()) + "-" + name + ".json";
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) throw std::runtime_error("cannot write " + path);
  std::fwrite(text.data(), 1, text.size(), file);
  std::fclose(file);
  return path;
}

// A record batch header of a Kafka log segment (message format v2).
struct BatchHeader {
  int64_t base_offset = 0;
  int8_t magic = 0;
  int64_t producer_id = 0;
  int16_t producer_epoch = 0;
  int32_t base_sequence = 0;
  int32_t records = 0;
};

int64_t BigEndian(const std::string& data, size_t at, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value = (value << 8) | static_cast<uint8_t>(data[at + i]);
  if (bytes < 8 && (value >> (8 * bytes - 1)) != 0) value |= ~uint64_t{0} << (8 * bytes);
  return static_cast<int64_t>(value);
}

std::vector<BatchHeader> ReadBatches(const std::string& segment) {
  std::ifstream in(segment, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<BatchHeader> batches;
  // baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic
  // int8, crc int32, attributes int16, lastOffsetDelta int32, baseTimestamp
  // int64, maxTimestamp int64, producerId int64, producerEpoch int16,
  // baseSequence int32, records int32.
  constexpr size_t kHeader = 61;
  size_t at = 0;
  while (at + kHeader <= data.size()) {
    BatchHeader batch;
    batch.base_offset = BigEndian(data, at, 8);
    const int64_t length = BigEndian(data, at + 8, 4);
    if (length <= 0) break;  // preallocated tail
    batch.magic = static_cast<int8_t>(data[at + 16]);
    batch.producer_id = BigEndian(data, at + 43, 8);
    batch.producer_epoch = static_cast<int16_t>(BigEndian(data, at + 51, 2));
    batch.base_sequence = static_cast<int32_t>(BigEndian(data, at + 53, 4));
    batch.records = static_cast<int32_t>(BigEndian(data, at + 57, 4));
    batches.push_back(batch);
    at += 12 + static_cast<size_t>(length);
  }
  return batches;
}

// Per partition: committed/log end, for failure messages.
std::string LagText(const std::string& bootstrap, const std::string& group,
                    const std::string& topic) {
  std::string text;
  try {
    for (const auto& p : kafka::QueryGroupLag(bootstrap, group, topic)) {
      text += " p" + std::to_string(p.partition) + "=" + std::to_string(p.committed) + "/" +
              std::to_string(p.log_end);
    }
  } catch (const std::exception& e) {
    text = e.what();
  }
  return text;
}

class RealKafkaTest : public KafkaBrokerTest {
 protected:
  WorkerProcess Start(const std::string& config_path, const std::string& name, const char* key_env,
                      const char* key) {
    WorkerProcessOptions options;
    options.config_path = config_path;
    options.env = {{key_env, key}};
    options.log_level = "info";
    options.log_path =
        ::testing::TempDir() + "/" + std::to_string(getpid()) + "-" + group_ + "-" + name + ".log";
    return WorkerProcess(options);
  }
  WorkerProcess StartStream(const std::string& config_path, const std::string& name) {
    return Start(config_path, name, kStreamApiKeyEnv, kStreamApiKey);
  }
  StreamConfig Stream(const sim::Simulator& sim) {
    StreamConfig config{Bootstrap(), topic_, group_, sim.BaseUrl("replify")};
    // Real sessions: a killed member's partitions move after this long.
    config.kafka_properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
    return config;
  }
  bool FullyCommitted() { return testing::FullyCommitted(Bootstrap(), group_, topic_); }
  int64_t Committed() { return CommittedTotal(Bootstrap(), group_, topic_); }

  std::string topic_;
  std::string group_;
};

// A seeded stream fanned out to all four providers by the real binary, killed
// with SIGKILL at random moments and restarted; a last run drains the group.
TEST_F(RealKafkaTest, FanoutSurvivesKillNineAndRestarts) {
  auto simulator = StartFanoutSimulator();
  topic_ = MakeTopic(6);
  group_ = MakeGroup();
  const auto events = MakeEvents(20000, 2000, 61);
  ProduceEvents(Bootstrap(), topic_, events);
  sim::Knobs slow;
  slow.enforce_rate_limits = false;
  slow.latency = milliseconds(30);
  slow.latency_jitter = milliseconds(20);
  simulator->SetKnobs(slow);

  FanoutConfig settings = FanoutConfigFor(Bootstrap(), topic_, group_, *simulator);
  settings.kafka_properties = R"({"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"})";
  const std::string config_path = WriteFile(group_, FanoutConfigJson(settings));

  std::mt19937 random(20261202);
  std::uniform_int_distribution<int> run_ms(1500, 4000);
  int64_t committed = 0;
  int progressed = 0;
  constexpr int kKills = 5;
  for (int run = 0; run < kKills; ++run) {
    WorkerProcess worker = Start(config_path, "run" + std::to_string(run), "K", kKey);
    // A restart waits for the killed member's session (6 s) to expire.
    ASSERT_TRUE(WaitFor([&] { return HoldsPartitions(worker) || !worker.Running(); }, seconds(60)))
        << worker.Log();
    ASSERT_TRUE(worker.Running()) << worker.Log();
    std::this_thread::sleep_for(milliseconds(run_ms(random)));
    ASSERT_TRUE(worker.Running()) << worker.Log();
    worker.Kill9();
    ASSERT_FALSE(FullyCommitted()) << "the stream was done before kill " << run + 1;
    const int64_t now = Committed();
    if (now > committed) ++progressed;
    committed = std::max(committed, now);
  }
  // Not asserted: on the real broker, runs this short under a slow provider
  // often commit nothing before the kill (the replays are what is tested).
  std::cout << progressed << " of " << kKills << " runs committed more than the one before; "
            << committed << " of " << events.size() << " committed before the last run"
            << std::endl;

  simulator->SetKnobs(sim::Knobs{.enforce_rate_limits = false});
  WorkerProcess last = Start(config_path, "last", "K", kKey);
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted() || !last.Running(); }, seconds(180)))
      << last.Log();
  ASSERT_TRUE(last.Running()) << last.Log();
  EXPECT_EQ(last.Terminate(), 0) << last.Log();
  ExpectState(*simulator, ExpectedState(events));
  EXPECT_TRUE(FullyCommitted());
}

// Malformed messages go to the dead-letter topic through an idempotent
// (acks=all) producer: read back with their headers, and the broker's own
// log shows the batches carry a producer id (an idempotent producer's; -1
// otherwise).
TEST_F(RealKafkaTest, DeadLettersAreWrittenIdempotentlyWithTheirHeaders) {
  auto simulator = StartFanoutSimulator();
  topic_ = MakeTopic(3);
  group_ = MakeGroup();
  const std::string dead_letter_topic = MakeTopic(1, {{"min.insync.replicas", "1"}});
  auto good = MakeEvents(3000, 500, 67);
  std::vector<worker::SampleEvent> stream;
  std::set<std::pair<std::string, std::string>> bad;
  for (size_t i = 0; i < good.size(); ++i) {
    stream.push_back(good[i]);
    if (i % 100 == 99) {
      worker::SampleEvent poison;
      poison.key = good[i].key;
      poison.payload = R"({"eventId": "bad-)" + std::to_string(i) + R"(", "kind": )";
      poison.malformed = true;
      bad.emplace(poison.key, poison.payload);
      stream.push_back(poison);
    }
  }
  ProduceEvents(Bootstrap(), topic_, stream);

  FanoutConfig settings =
      FanoutConfigFor(Bootstrap(), topic_, group_, *simulator, dead_letter_topic);
  WorkerProcess worker = Start(WriteFile(group_, FanoutConfigJson(settings)), "dlq", "K", kKey);
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted() || !worker.Running(); }, seconds(120)))
      << worker.Log();
  EXPECT_EQ(worker.Terminate(), 0) << worker.Log();

  const auto letters = ReadAllRecords(Bootstrap(), dead_letter_topic);
  std::set<std::pair<std::string, std::string>> dead;
  for (const auto& letter : letters) {
    dead.emplace(letter.key, letter.value);
    const auto reason = letter.Header("crmsync.reason");
    EXPECT_TRUE(reason.has_value() && !reason->empty()) << letter.key;
    EXPECT_EQ(letter.Header("crmsync.source.topic"), topic_);
    EXPECT_TRUE(letter.Header("crmsync.dead.lettered.at.ms").has_value());
  }
  EXPECT_EQ(letters.size(), bad.size());
  EXPECT_TRUE(dead == bad);
  ExpectState(*simulator, ExpectedState(good));

  // The broker's own segment of the dead-letter partition: every record
  // batch (format v2) carries a producer id and sequence numbers, as only an
  // idempotent producer's do (-1 otherwise).
  const auto batches =
      ReadBatches(Broker().Dir() + "/logs/" + dead_letter_topic + "-0/00000000000000000000.log");
  ASSERT_FALSE(batches.empty());
  int64_t records = 0;
  int32_t next_sequence = 0;
  for (const auto& batch : batches) {
    EXPECT_EQ(batch.magic, 2);
    EXPECT_GE(batch.producer_id, 0);
    EXPECT_EQ(batch.producer_id, batches.front().producer_id);
    // One producer session: sequences run on without gaps or repeats.
    EXPECT_EQ(batch.base_sequence, next_sequence);
    next_sequence = batch.base_sequence + batch.records;
    records += batch.records;
  }
  EXPECT_EQ(records, static_cast<int64_t>(bad.size()));
}

// The broker is stopped (controlled shutdown) and later killed with SIGKILL
// while the worker is mid-stream; the worker rides both out, and nothing is
// lost.
TEST_F(RealKafkaTest, WorkerRidesOutBrokerStopAndKill) {
  auto simulator = StartStreamSimulator();
  topic_ = MakeTopic(4);
  group_ = MakeGroup();
  const auto events = MakeEvents(20000, 2000, 71);
  ProduceEvents(Bootstrap(), topic_, events);
  sim::Knobs slow;
  slow.latency = milliseconds(30);
  simulator->SetKnobs(slow);
  WorkerProcess worker = StartStream(WriteStreamConfig(Stream(*simulator), group_), "w");
  ASSERT_TRUE(WaitFor([&] { return Committed() > 0 || !worker.Running(); }, seconds(60)))
      << worker.Log();

  for (const bool kill : {false, true}) {
    ASSERT_FALSE(FullyCommitted()) << "the stream ended before the broker went down";
    const int64_t before = Committed();
    if (kill) {
      Broker().Kill();
    } else {
      Broker().Stop();
    }
    // Down for a while: the worker keeps delivering what it has and retries
    // its commits and fetches.
    std::this_thread::sleep_for(seconds(4));
    ASSERT_TRUE(worker.Running()) << worker.Log();
    Broker().Start();
    std::cout << (kill ? "killed" : "stopped") << " broker back in "
              << Broker().LastStartTime().count() << " ms" << std::endl;
    ASSERT_TRUE(WaitFor([&] { return Committed() > before || !worker.Running(); }, seconds(90)))
        << worker.Log();
    ASSERT_TRUE(worker.Running()) << worker.Log();
  }
  simulator->SetKnobs(sim::Knobs{});
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted() || !worker.Running(); }, seconds(120)))
      << worker.Log();
  EXPECT_EQ(worker.Terminate(), 0) << worker.Log();
  ExpectCampaign(*simulator, events);
  EXPECT_TRUE(FullyCommitted());
}

// Static membership (KIP-345): a member killed with SIGKILL and restarted
// with the same group.instance.id within its session timeout takes its place
// again. The broker does not rebalance the group: the other member's
// assignment callbacks stay silent and the broker logs no new rebalance,
// where a dynamic member (or the mock cluster, which ignores the id) would
// rebalance both. Taking its partitions back at once, the restarted member
// finds no handover mark (it was killed mid-request) and holds their work
// until the killed process's requests have been answered.
TEST_F(RealKafkaTest, StaticMemberRestartedWithinSessionTakesItsPartitionsWithoutRebalance) {
  // Each process has its own key, so that the request log tells the killed
  // process's requests from its successor's.
  sim::Simulator::Options options;
  options.api_keys = {{"replify", kStreamApiKey}};
  options.labelled_api_keys["replify"] = {
      {"key-a1", "a1"}, {"key-a2", "a2"}, {"key-b1", "b1"}, {"key-b2", "b2"}};
  options.request_log_limit = 1'000'000;
  options.threads = 48;
  auto simulator = std::make_unique<sim::Simulator>(options);
  simulator->Start();
  constexpr int kPartitions = 8;
  topic_ = MakeTopic(kPartitions);
  group_ = MakeGroup();
  const auto events = MakeEvents(40000, 3000, 73);
  ProduceEvents(Bootstrap(), topic_, events);
  sim::Knobs slow;
  slow.latency = milliseconds(300);
  simulator->SetKnobs(slow);

  auto config_for = [&](const std::string& id) {
    StreamConfig config = Stream(*simulator);
    config.kafka_properties["session.timeout.ms"] = "30000";
    // The config file's kafka object takes the instance id.
    std::string text = StreamConfigJson(config);
    const std::string marker = "\"groupId\"";
    const size_t at = text.find(marker);
    if (at == std::string::npos) throw std::runtime_error("no groupId in config");
    text.insert(at, "\"groupInstanceId\": \"" + id + "\", ");
    return WriteFile(group_ + "-" + id, text);
  };
  // B first: the group's leader stays up; A is the member restarted.
  auto start = [&](const std::string& id, const std::string& incarnation) {
    return std::make_unique<WorkerProcess>(
        WorkerProcessOptions{config_for("static-" + id.substr(0, 1)),
                             {{kStreamApiKeyEnv, "key-" + incarnation}},
                             ::testing::TempDir() + "/" + group_ + "-" + incarnation + ".log",
                             "info"});
  };
  auto b = start("b", "b1");
  ASSERT_TRUE(WaitFor([&] { return HoldsPartitions(*b) || !b->Running(); }, seconds(60)))
      << b->Log();
  auto a = start("a", "a1");
  ASSERT_TRUE(WaitFor(
      [&] {
        return HeldByLog(a->Log()) > 0 && HeldByLog(b->Log()) + HeldByLog(a->Log()) == kPartitions;
      },
      seconds(60)))
      << "A:\n"
      << a->Log() << "\nB:\n"
      << b->Log();
  const int a_held = HeldByLog(a->Log());
  ASSERT_TRUE(WaitFor([&] { return Committed() > 0; }, seconds(60)));
  // A is killed in the middle of its work: it has had answers and has
  // requests in flight.
  auto sent_by = [&](const std::string& label) {
    size_t n = 0;
    for (const auto& r : simulator->RequestLog()) n += r.key_label == label ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return sent_by("a1") >= 3; }, seconds(60))) << a->Log();
  ASSERT_FALSE(FullyCommitted()) << "the stream ended before the restart";

  const std::string b_before = b->Log();
  const std::string rebalance = "Preparing to rebalance group " + group_ + " ";
  const int broker_rebalances = CountLines(Broker().Log(), rebalance);
  a->Kill9();
  a = start("a", "a2");
  // Back well within the 30 s session, with the same partitions.
  ASSERT_TRUE(WaitFor([&] { return HeldByLog(a->Log()) > 0 || !a->Running(); }, seconds(25)))
      << a->Log();
  EXPECT_EQ(HeldByLog(a->Log()), a_held) << a->Log();

  // A works off its partitions; B's callbacks stay silent meanwhile.
  simulator->SetKnobs(sim::Knobs{});
  std::this_thread::sleep_for(seconds(5));
  ASSERT_TRUE(a->Running()) << a->Log();
  const std::string b_after = b->Log().substr(b_before.size());
  EXPECT_EQ(CountLines(b_after, "assigned [0-9]+ partition|revoked [0-9]+ partition|lost"), 0)
      << "B was rebalanced:\n"
      << b_after;

  // Then B is restarted the same way (a rolling restart of the group): it
  // takes its own partitions back, again without a rebalance of A.
  const int b_held = HeldByLog(b->Log());
  const std::string a_before = a->Log();
  b->Kill9();
  auto b2 = start("b", "b2");
  ASSERT_TRUE(WaitFor([&] { return HeldByLog(b2->Log()) > 0 || !b2->Running(); }, seconds(25)))
      << b2->Log();
  EXPECT_EQ(HeldByLog(b2->Log()), b_held) << b2->Log();
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(120)))
      << LagText(Bootstrap(), group_, topic_) << "\nA:\n"
      << a->Log() << "\nB:\n"
      << b2->Log();
  const std::string a_after = a->Log().substr(a_before.size());
  EXPECT_EQ(CountLines(a_after, "assigned [0-9]+ partition|revoked [0-9]+ partition|lost"), 0)
      << "A was rebalanced:\n"
      << a_after;
  EXPECT_EQ(CountLines(Broker().Log(), rebalance), broker_rebalances)
      << "the broker rebalanced the group";
  EXPECT_EQ(a->Terminate(), 0) << a->Log();
  EXPECT_EQ(b2->Terminate(), 0) << b2->Log();
  // A killed process's requests were all answered before its successor,
  // which found no handover mark, sent its first: a successor replaying from
  // the committed offset must not write a contact's later state before an
  // earlier one of the killed process lands.
  EXPECT_TRUE(a->LogContains("taken over without a handover")) << a->Log();
  const auto log = simulator->RequestLog();
  auto expect_no_overlap = [&](const std::string& killed, const std::string& successor) {
    std::optional<std::chrono::steady_clock::time_point> last_answer, first_arrival;
    for (const auto& r : log) {
      if (r.key_label == killed && (!last_answer || r.responded > *last_answer))
        last_answer = r.responded;
      if (r.key_label == successor && (!first_arrival || r.arrived < *first_arrival))
        first_arrival = r.arrived;
    }
    if (!last_answer || !first_arrival) return;  // one of them had nothing to send
    EXPECT_TRUE(*first_arrival > *last_answer)
        << successor << "'s first request arrived "
        << duration_cast<milliseconds>(*last_answer - *first_arrival).count() << " ms before "
        << killed << "'s last was answered";
  };
  expect_no_overlap("a1", "a2");
  expect_no_overlap("b1", "b2");
  ExpectCampaign(*simulator, events);
}

// Three cooperative-sticky members with churn (a clean leave, a SIGKILL,
// joins) while the provider is slow and rate-limited: nothing lost, per-contact
// order kept. Prints how the rebalances reached the members: incremental
// revokes (drained, committed) versus losses (session expiry or a fenced
// generation).
TEST_F(RealKafkaTest, ThreeCooperativeMembersWithChurnLoseNothing) {
  constexpr int kPartitions = 12;
  sim::Simulator::Options options;
  options.api_keys = {{"replify", kStreamApiKey}};
  options.threads = 64;
  // Slow enough that the stream outlasts the churn below (the stream is
  // sped up to the end afterwards).
  options.knobs.latency = milliseconds(1000);
  options.knobs.rate_limit_time_scale = 60;  // Replify's documented limits, 60x faster
  auto simulator = std::make_unique<sim::Simulator>(options);
  simulator->Start();
  topic_ = MakeTopic(kPartitions);
  group_ = MakeGroup();
  const auto events = MakeEvents(60000, 4000, 79);
  ProduceEvents(Bootstrap(), topic_, events);
  const std::string config_path = WriteStreamConfig(Stream(*simulator), group_);

  std::vector<std::unique_ptr<WorkerProcess>> all;
  auto start = [&](const std::string& name) {
    WorkerProcessOptions o{
        config_path,
        {{kStreamApiKeyEnv, kStreamApiKey}},
        ::testing::TempDir() + "/" + std::to_string(getpid()) + "-" + group_ + "-" + name + ".log",
        "info"};
    all.push_back(std::make_unique<WorkerProcess>(o));
    return all.back().get();
  };
  auto holds = [](WorkerProcess* w) { return HeldByLog(w->Log()) > 0 || !w->Running(); };
  WorkerProcess* a = start("a");
  ASSERT_TRUE(WaitFor([&] { return holds(a); }, seconds(60))) << a->Log();
  WorkerProcess* b = start("b");
  ASSERT_TRUE(WaitFor([&] { return holds(b); }, seconds(60))) << b->Log();
  WorkerProcess* c = start("c");
  ASSERT_TRUE(WaitFor([&] { return holds(c); }, seconds(60))) << c->Log();
  ASSERT_FALSE(FullyCommitted());
  // Churn: B leaves cleanly, D joins, C is killed, E joins.
  EXPECT_EQ(b->Terminate(), 0) << b->Log();
  WorkerProcess* d = start("d");
  ASSERT_TRUE(WaitFor([&] { return holds(d); }, seconds(60))) << d->Log();
  ASSERT_FALSE(FullyCommitted()) << "the stream ended before the churn was done";
  c->Kill9();
  WorkerProcess* e = start("e");
  ASSERT_TRUE(WaitFor([&] { return holds(e); }, seconds(60))) << e->Log();
  for (WorkerProcess* w : {a, d, e}) ASSERT_TRUE(w->Running()) << w->Log();

  simulator->SetKnobs(sim::Knobs{});
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(180)));
  for (WorkerProcess* w : {a, d, e}) EXPECT_EQ(w->Terminate(), 0) << w->Log();

  int revoked = 0, lost = 0, assigned = 0;
  for (const auto& w : all) {
    const std::string log = w->Log();
    assigned += CountLines(log, "assigned [0-9]+ partition");
    revoked += CountLines(log, "revoked [0-9]+ partition");
    lost += CountLines(log, "partition\\(s\\) lost");
  }
  std::cout << "rebalance callbacks over 5 members: " << assigned << " assigned, " << revoked
            << " revoked (incremental, drained), " << lost << " lost" << std::endl;
  // A clean leave and joins under cooperative-sticky revoke incrementally.
  EXPECT_GT(revoked, 0);
  ExpectCampaign(*simulator, events);
  EXPECT_TRUE(FullyCommitted());
}

// Retention overtakes a stopped, lagging group: segments holding the group's
// committed position are deleted. On restart the reset of its position is
// reported loudly: a warning naming the partition and
// crmsync_offset_resets_total{topic}.
TEST_F(RealKafkaTest, RetentionOvertakingALaggingGroupIsReportedLoudly) {
  auto simulator = StartStreamSimulator();
  // Kafka's smallest segment (1 MiB); retention keeps about one.
  topic_ = MakeTopic(1, {{"segment.bytes", "1048576"},
                         {"retention.bytes", "1048576"},
                         {"compression.type", "uncompressed"}});
  group_ = MakeGroup();
  auto first = MakeEvents(2000, 500, 83);
  ProduceEvents(Bootstrap(), topic_, first);
  StreamConfig config = Stream(*simulator);
  {
    RunningWorker worker(LoadStreamConfig(config));
    ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(60)));
    EXPECT_EQ(worker.Stop(), 0);
  }
  const int64_t committed = Committed();

  // The group is stopped; the topic grows until retention deletes the
  // segment with the committed position.
  kafka::Producer producer(Bootstrap(), {{"compression.type", "none"}});
  uint64_t seed = 89;
  int64_t log_start = 0;
  const auto deadline = std::chrono::steady_clock::now() + seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& event : MakeEvents(5000, 500, seed++)) {
      producer.Produce(topic_, event.key, event.payload);
    }
    producer.Flush();
    const auto lag = kafka::QueryGroupLag(Bootstrap(), group_, topic_);
    log_start = lag.at(0).log_start;
    if (log_start > committed) break;
    std::this_thread::sleep_for(milliseconds(500));
  }
  ASSERT_GT(log_start, committed) << "retention never deleted the committed position";
  // Retention deletes one segment per check; let it finish so the log start
  // stops moving while the worker reads.
  for (int stable = 0; stable < 3 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(milliseconds(1500));
    const int64_t now_start = kafka::QueryGroupLag(Bootstrap(), group_, topic_).at(0).log_start;
    stable = now_start == log_start ? stable + 1 : 0;
    log_start = now_start;
  }

  auto captured = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000);
  spdlog::default_logger()->sinks().push_back(captured);
  worker::Metrics metrics;
  worker::Worker worker(LoadStreamConfig(config), metrics);
  std::atomic<bool> stop{false};
  std::thread runner([&] { worker.Run(stop); });
  const std::string series = "crmsync_offset_resets_total{topic=\"" + topic_ + "\"} ";
  const auto resets = [&] {
    const std::string text = metrics.Text();
    const auto at = text.find(series);
    return at == std::string::npos ? 0.0 : std::stod(text.substr(at + series.size()));
  };
  const bool reported = WaitFor([&] { return resets() >= 1; }, seconds(60));
  const bool drained = WaitFor([&] { return FullyCommitted(); }, seconds(120));
  stop = true;
  runner.join();
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_TRUE(reported) << metrics.Text();
  int warnings = 0;
  for (const auto& line : captured->last_formatted()) {
    if (line.find("OFFSET RESET on " + topic_ + "/0") != std::string::npos &&
        line.find("warn") != std::string::npos) {
      ++warnings;
    }
  }
  // Every reset is counted and logged once as a warning.
  EXPECT_GE(warnings, 1);
  EXPECT_EQ(warnings, static_cast<int>(resets()));
  EXPECT_TRUE(drained);
  // What was deleted never reached the worker.
  EXPECT_LE(worker.Stats().consumed,
            static_cast<uint64_t>(kafka::QueryGroupLag(Bootstrap(), group_, topic_).at(0).log_end -
                                  log_start));
}

}  // namespace
}  // namespace crmsync::testing
