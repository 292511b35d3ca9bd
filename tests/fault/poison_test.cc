// Poison messages: 1,000 malformed events of several kinds mixed into 20,000
// good ones, on the keys of real contacts so that they sit in the same
// partitions between good events. Every bad one must end in the dead-letter
// topic with its original key and value and a reason; every good one must be
// delivered (each provider ends with what the last event of every contact
// implies); no partition may be left stuck behind a bad message.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <utility>

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

using std::chrono::seconds;

constexpr char kKey[] = "poison-test-key";
constexpr size_t kGood = 20000;
constexpr size_t kBad = 1000;

std::optional<std::string> TestEnv(std::string_view) { return std::string(kKey); }

// The n-th malformed message for the contact keyed `key` ("idKey:idValue"):
// each kind of fault the decoder refuses, every payload distinct.
std::string Malformed(const std::string& key, size_t n) {
  const std::string id_key = key.substr(0, key.find(':'));
  const std::string id_value = key.substr(key.find(':') + 1);
  const std::string head =
      R"({"eventId": "bad-)" + std::to_string(n) + R"(", "externalIdKey": ")" + id_key + R"(", )";
  const std::string at = R"("occurredAt": "2026-11-23T12:00:00Z", )";
  const std::string identity = R"("externalIdValue": ")" + id_value + R"(", )";
  switch (n % 8) {
    case 0:  // cut short
      return R"({"eventId": "bad-)" + std::to_string(n) + R"(", "kind": )";
    case 1:
      return head + at + identity + R"("kind": "contact.exploded"})";
    case 2:  // names another contact than its Kafka key
      return head + at + R"("externalIdValue": "other-)" + std::to_string(n) +
             R"(", "kind": "contact.updated"})";
    case 3:
      return head + at + identity + R"("kind": "contact.updated", "contact": {"email": 42}})";
    case 4:
      return head + at + identity + R"("kind": "contact.updated"} {"trailing": true})";
    case 5:
      return head + identity + R"("occurredAt": "yesterday", "kind": "contact.updated"})";
    case 6:
      return head + at + R"("kind": "contact.updated"})";
    default:  // not text at all
      return std::string("\xff\xfe\0poison-", 10) + std::to_string(n);
  }
}

class PoisonTest : public SimBrokerTest {
 protected:
  void SetUp() override {
    sim::Simulator::Options options = AllProvidersOptions(kKey);
    // Rate limits are not what this test is about: none on either side.
    options.knobs.enforce_rate_limits = false;
    options.threads = 32;
    StartSimulatorAndTopics(options);
  }
};

TEST_F(PoisonTest, EveryBadMessageIsDeadLetteredAndEveryGoodOneDelivered) {
  worker::SampleOptions sample;
  sample.events = kGood;
  sample.contacts = 2000;
  sample.seed = 43;
  const auto good = worker::GenerateSampleEvents(sample);
  ASSERT_EQ(good.size(), kGood);
  // After every twentieth good event, a bad one for the same contact.
  std::vector<worker::SampleEvent> stream;
  std::multiset<std::pair<std::string, std::string>> bad;  // key, value
  for (size_t i = 0; i < good.size(); ++i) {
    stream.push_back(good[i]);
    if ((i + 1) % (kGood / kBad) == 0) {
      worker::SampleEvent poison;
      poison.key = good[i].key;
      poison.payload = Malformed(poison.key, bad.size());
      poison.malformed = true;
      bad.emplace(poison.key, poison.payload);
      stream.push_back(std::move(poison));
    }
  }
  ASSERT_EQ(bad.size(), kBad);
  ProduceEvents(Bootstrap(), topic_, stream);

  FanoutConfig settings =
      FanoutConfigFor(Bootstrap(), topic_, group_, *simulator_, dead_letter_topic_);
  settings.budget_time_scale = 0;
  worker::Metrics metrics;
  worker::Worker worker(
      mapping::LoadConfigFromString(providers::Catalog(), FanoutConfigJson(settings), &TestEnv),
      metrics);
  std::atomic<bool> stop{false};
  std::thread runner([&] { worker.Run(stop); });
  const bool done =
      WaitFor([&] { return FullyCommitted(Bootstrap(), group_, topic_); }, seconds(200));
  stop = true;
  runner.join();
  ASSERT_TRUE(done) << "consumed " << worker.Stats().consumed << " of " << stream.size()
                    << ", pending " << worker.Stats().pending;
  EXPECT_EQ(worker.Stats().malformed, kBad);
  EXPECT_EQ(worker.Stats().rejected, 0u);
  EXPECT_EQ(worker.Stats().dead_lettered, kBad);

  const auto letters = ReadAllRecords(Bootstrap(), dead_letter_topic_);
  std::multiset<std::pair<std::string, std::string>> dead;
  for (const auto& letter : letters) {
    dead.emplace(letter.key, letter.value);
    const auto reason = letter.Header("crmsync.reason");
    EXPECT_TRUE(reason.has_value() && !reason->empty()) << letter.key << " " << letter.value;
    EXPECT_EQ(letter.Header("crmsync.source.topic"), topic_);
  }
  EXPECT_EQ(letters.size(), kBad);
  EXPECT_TRUE(dead == bad) << letters.size() << " dead letters for " << kBad << " bad messages";

  ExpectState(*simulator_, ExpectedState(good));
}

}  // namespace
}  // namespace crmsync::testing
