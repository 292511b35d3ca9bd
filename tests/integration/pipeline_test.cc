// End to end: real Kafka protocol (the mock cluster over loopback TCP) →
// worker → real HTTP → provider simulator. Each test checks the simulator's
// final state against the last event of every contact and the group's
// committed offsets against the log.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/simulator.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "tests/support/worker_process.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/handles.h"
#include "worker/kafka/producer.h"
#include "worker/metrics.h"
#include "worker/sample_events.h"
#include "worker/worker.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kCampaign[] = "5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3";
constexpr char kKey[] = "pipeline-test-key";

std::optional<std::string> TestEnv(std::string_view name) {
  if (name == "REPLIFY_API_KEY") return std::string(kKey);
  return std::nullopt;
}

std::string ConfigJson(const std::string& bootstrap, const std::string& topic,
                       const std::string& group, const std::string& base_url,
                       const std::string& dead_letter_topic = "") {
  const std::string dead_letters =
      dead_letter_topic.empty() ? "" : R"("deadLetterTopic": ")" + dead_letter_topic + R"(", )";
  return R"({
  "kafka": {"bootstrapServers": ")" +
         bootstrap + R"(", "topics": [")" + topic + R"("], "groupId": ")" + group + R"(", )" +
         dead_letters + R"(
            "properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}},
  "providers": {"replify": {"baseUrl": ")" +
         base_url + R"(", "apiKey": {"env": "REPLIFY_API_KEY"},
                            "maxBatch": 50, "lingerMs": 5, "maxInFlight": 8, "requestTimeoutMs": 5000}},
  "rules": [
    {"name": "stop-outreach", "when": {"kinds": ["contact.status_changed"], "statuses": ["completed", "disqualified"]},
     "actions": [{"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "updateOnly"}]},
    {"name": "deleted", "when": {"kinds": ["contact.deleted"]},
     "actions": [{"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "remove"}]},
    {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
     "actions": [{"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "upsert"}]}
  ],
  "worker": {"drainTimeoutMs": 10000, "commitIntervalMs": 100, "maxPendingOperations": 5000,
             "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200},
             "metrics": {"listen": "127.0.0.1:0"}}
})";
}

class PipelineTest : public BrokerTest {
 protected:
  void SetUp() override {
    sim::Simulator::Options options;
    options.api_keys = {{"replify", kKey}};
    simulator_ = std::make_unique<sim::Simulator>(options);
    simulator_->Start();
    topic_ = MakeTopic(8);
    group_ = MakeGroup();
  }

  mapping::Config LoadConfig(const std::string& dead_letter_topic = "") {
    return mapping::LoadConfigFromString(
        providers::Catalog(),
        ConfigJson(Bootstrap(), topic_, group_, simulator_->BaseUrl("replify"), dead_letter_topic),
        &TestEnv);
  }

  void Produce(const std::vector<worker::SampleEvent>& events) {
    kafka::Producer producer(Bootstrap());
    for (const auto& e : events) producer.Produce(topic_, e.key, e.payload);
    producer.Flush();
  }

  std::map<std::string, sim::ReplifyContact> Campaign() {
    auto campaigns = simulator_->ReplifyCampaigns();
    auto it = campaigns.find(kCampaign);
    return it == campaigns.end() ? std::map<std::string, sim::ReplifyContact>{} : it->second;
  }

  std::vector<kafka::PartitionLag> Lags() {
    return kafka::QueryGroupLag(Bootstrap(), group_, topic_);
  }

  bool FullyCommitted() {
    try {
      auto lags = Lags();
      return kafka::TotalLag(lags) == 0 &&
             std::all_of(lags.begin(), lags.end(),
                         [](const kafka::PartitionLag& l) { return l.committed == l.log_end; });
    } catch (const std::exception&) {
      return false;
    }
  }

  std::unique_ptr<sim::Simulator> simulator_;
  std::string topic_;
  std::string group_;
};

// Runs a Worker on its own thread for the lifetime of the object.
class RunningWorker {
 public:
  explicit RunningWorker(mapping::Config config)
      : metrics_(config.worker.metrics_listen), worker_(std::move(config), metrics_) {
    thread_ = std::thread([this] { exit_code_ = worker_.Run(stop_); });
  }
  ~RunningWorker() { Stop(); }
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return exit_code_;
  }
  const worker::WorkerStats& Stats() const { return worker_.Stats(); }

 private:
  worker::Metrics metrics_;
  worker::Worker worker_;
  std::atomic<bool> stop_{false};
  int exit_code_ = -1;
  std::thread thread_;
};

TEST_F(PipelineTest, TenThousandEventsReachTheLastStateOfEveryContact) {
  worker::SampleOptions sample;
  sample.events = 10000;
  sample.contacts = 2000;
  sample.seed = 7;
  const auto events = worker::GenerateSampleEvents(sample);
  Produce(events);

  RunningWorker running(LoadConfig());
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(120)))
      << "consumed " << running.Stats().consumed << ", pending " << running.Stats().pending;
  EXPECT_EQ(running.Stop(), 0);

  const auto expected = ExpectedCampaign(events);
  EXPECT_GT(expected.size(), 100u);
  EXPECT_EQ(Campaign(), expected);
  EXPECT_EQ(running.Stats().consumed, events.size());
  EXPECT_EQ(running.Stats().rejected, 0u);
  EXPECT_TRUE(FullyCommitted());
}

TEST_F(PipelineTest, OutageNeverCommitsPastUndeliveredEventsAndRecovers) {
  worker::SampleOptions sample;
  sample.events = 3000;
  sample.contacts = 500;
  sample.seed = 11;
  const auto events = worker::GenerateSampleEvents(sample);
  const std::vector<worker::SampleEvent> first(events.begin(), events.begin() + 1000);
  const std::vector<worker::SampleEvent> second(events.begin() + 1000, events.end());

  // Retries alone: unbounded, and the circuit breaker (tests/fault/outage_test)
  // kept out of the way, so every request keeps failing for the whole outage.
  mapping::Config config = LoadConfig();
  mapping::ProviderConfig& replify = config.providers.at("replify");
  replify.retry.max_attempts = 0;
  replify.retry.max_elapsed = milliseconds(0);
  replify.circuit_breaker.failure_threshold = 1'000'000;
  RunningWorker running(std::move(config));
  Produce(first);
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(60)));
  const auto before = Lags();

  simulator_->SetKnobs(
      sim::Knobs{.latency = milliseconds(0), .failure_rate = 0.0, .fail_all = true});
  Produce(second);
  ASSERT_TRUE(WaitFor(
      [&] { return running.Stats().consumed >= events.size() && running.Stats().retried >= 200; },
      seconds(60)));
  // Several commit intervals pass while every request fails.
  const uint64_t retried = running.Stats().retried;
  ASSERT_TRUE(WaitFor([&] { return running.Stats().retried >= retried + 100; }, seconds(30)));
  const auto during = Lags();
  ASSERT_EQ(during.size(), before.size());
  for (size_t p = 0; p < during.size(); ++p) {
    EXPECT_EQ(during[p].committed, before[p].committed) << "partition " << p;
    EXPECT_GT(during[p].log_end, during[p].committed) << "partition " << p;
  }

  simulator_->SetKnobs(sim::Knobs{});
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(120)));
  EXPECT_EQ(Campaign(), ExpectedCampaign(events));
  EXPECT_EQ(running.Stop(), 0);
}

TEST_F(PipelineTest, MalformedEventsAreSkippedAndNeverStopTheirPartition) {
  worker::SampleOptions sample;
  sample.events = 2000;
  sample.contacts = 300;
  sample.seed = 13;
  sample.malformed_every = 10;
  const auto events = worker::GenerateSampleEvents(sample);
  Produce(events);

  RunningWorker running(LoadConfig());
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(60)));
  EXPECT_EQ(running.Stats().malformed, 200u);
  EXPECT_EQ(Campaign(), ExpectedCampaign(events));
  EXPECT_EQ(running.Stop(), 0);
}

struct DeadLetter {
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Reads `count` records of a one-partition topic from the beginning.
std::vector<DeadLetter> ReadTopic(const std::string& bootstrap, const std::string& topic,
                                  size_t count) {
  kafka::ConfPtr conf(rd_kafka_conf_new());
  char err[256];
  rd_kafka_conf_set(conf.get(), "bootstrap.servers", bootstrap.c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf.get(), "group.id", (topic + "-reader").c_str(), err, sizeof(err));
  kafka::KafkaPtr rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf.release(), err, sizeof(err)));
  kafka::TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), 0)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk.get(), list.get());
  std::vector<DeadLetter> out;
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    kafka::MessagePtr msg(rd_kafka_consumer_poll(rk.get(), 100));
    if (!msg || msg->err) continue;
    DeadLetter record;
    record.key.assign(static_cast<const char*>(msg->key), msg->key_len);
    record.value.assign(static_cast<const char*>(msg->payload), msg->len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(msg.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0;
           rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        record.headers[name] = std::string(static_cast<const char*>(value), size);
      }
    }
    out.push_back(std::move(record));
  }
  rd_kafka_consumer_close(rk.get());
  return out;
}

TEST_F(PipelineTest, MalformedAndUnmappableEventsAreDeadLetteredWithTheirReason) {
  worker::SampleOptions sample;
  sample.events = 2000;
  sample.contacts = 300;
  sample.seed = 29;
  sample.malformed_every = 10;
  const auto events = worker::GenerateSampleEvents(sample);
  Produce(events);
  // A contact with neither email nor phone cannot be sent to Replify: the
  // mapping refuses it with a reason.
  std::vector<worker::SampleEvent> rejected;
  for (int i = 0; i < 5; ++i) {
    mapping::CrmEvent event;
    event.event_id = "nobody-" + std::to_string(i);
    event.occurred_at = "2026-11-23T12:00:00Z";
    event.external_id_key = "hubspotId";
    event.external_id_value = "9900" + std::to_string(i);
    event.kind = mapping::EventKind::kCreated;
    event.contact.first_name = "Nobody";
    rejected.push_back({event.ContactKey(), worker::ToCanonicalJson(event), false, event});
  }
  Produce(rejected);
  const std::string dead_letter_topic = MakeTopic(1);

  RunningWorker running(LoadConfig(dead_letter_topic));
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(60)));
  EXPECT_EQ(running.Stats().dead_lettered, 205u);
  EXPECT_EQ(running.Stop(), 0);
  EXPECT_EQ(Campaign(), ExpectedCampaign(events));

  const auto letters = ReadTopic(Bootstrap(), dead_letter_topic, 205);
  ASSERT_EQ(letters.size(), 205u);
  size_t unreachable = 0;
  for (const auto& letter : letters) {
    EXPECT_EQ(letter.headers.at("crmsync.source.topic"), topic_);
    EXPECT_FALSE(letter.headers.at("crmsync.reason").empty());
    EXPECT_TRUE(letter.headers.contains("crmsync.source.offset"));
    if (letter.value.find("Nobody") != std::string::npos) {
      ++unreachable;
      EXPECT_NE(letter.headers.at("crmsync.reason").find("neither email nor phone"),
                std::string::npos)
          << letter.headers.at("crmsync.reason");
    }
    for (const auto& [name, value] : letter.headers) {
      EXPECT_EQ(value.find(kKey), std::string::npos) << name << " carries the API key";
    }
  }
  EXPECT_EQ(unreachable, 5u);
}

TEST_F(PipelineTest, KillNineMidStreamLosesNothing) {
  worker::SampleOptions sample;
  sample.events = 10000;
  sample.contacts = 2000;
  sample.seed = 17;
  const auto events = worker::GenerateSampleEvents(sample);
  // Slow the provider down so that the kill lands mid-stream.
  simulator_->SetKnobs(
      sim::Knobs{.latency = milliseconds(15), .failure_rate = 0.0, .fail_all = false});
  Produce(events);

  const std::string config_path = ::testing::TempDir() + "/" + group_ + ".json";
  std::ofstream(config_path) << ConfigJson(Bootstrap(), topic_, group_,
                                           simulator_->BaseUrl("replify"));
  {
    WorkerProcess first(config_path, {{"REPLIFY_API_KEY", kKey}});
    ASSERT_TRUE(WaitFor([&] { return simulator_->GetCounters().requests >= 30; }, seconds(60)));
    first.Kill9();
  }
  EXPECT_FALSE(FullyCommitted()) << "the kill came too late to test anything";
  simulator_->SetKnobs(sim::Knobs{});

  WorkerProcess second(config_path, {{"REPLIFY_API_KEY", kKey}});
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(120)));
  EXPECT_EQ(second.Terminate(), 0);
  EXPECT_EQ(Campaign(), ExpectedCampaign(events));
}

}  // namespace
}  // namespace crmsync::testing
