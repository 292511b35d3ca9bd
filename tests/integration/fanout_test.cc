// One event stream fanned out by rules to all four providers through the test
// broker, the worker and the simulator; each provider's final state must be
// what the last event of every contact implies.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/campaignlark_sim.h"
#include "sim/replyio_sim.h"
#include "sim/simulator.h"
#include "sim/whippy_sim.h"
#include "tests/support/broker_fixture.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/producer.h"
#include "worker/metrics.h"
#include "worker/sample_events.h"
#include "worker/worker.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kCampaign[] = "5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3";
constexpr char kList[] = "crm-prospects";
constexpr int64_t kSequence = 4242;
constexpr char kKey[] = "fanout-test-key";
// Documented rate limits run sixty times faster in this test: Whippy's ten
// list writes a minute become ten a second.
constexpr double kTimeScale = 60;

std::optional<std::string> TestEnv(std::string_view) { return std::string(kKey); }

std::string ConfigJson(const std::string& bootstrap, const std::string& topic,
                       const std::string& group, const sim::Simulator& sim,
                       const std::string& dead_letter_topic) {
  const std::string seq = std::to_string(kSequence);
  return R"({
  "kafka": {"bootstrapServers": ")" +
         bootstrap + R"(", "topics": [")" + topic + R"("], "groupId": ")" + group +
         R"(", "deadLetterTopic": ")" + dead_letter_topic + R"("},
  "providers": {
    "replify": {"baseUrl": ")" +
         sim.BaseUrl("replify") + R"(", "apiKey": {"env": "K"}, "maxBatch": 100, "lingerMs": 20},
    "whippy": {"baseUrl": ")" +
         sim.BaseUrl("whippy") + R"(", "apiKey": {"env": "K"}, "maxBatch": 4000, "lingerMs": 100},
    "campaignlark": {"baseUrl": ")" +
         sim.BaseUrl("campaignlark") +
         R"(", "apiKey": {"env": "K"}, "maxBatch": 50, "maxInFlight": 8},
    "replyio": {"baseUrl": ")" +
         sim.BaseUrl("replyio") + R"(", "apiKey": {"env": "K"}, "maxBatch": 100, "lingerMs": 50}
  },
  "rules": [
    {"name": "stop-outreach", "when": {"kinds": ["contact.status_changed"], "statuses": ["completed", "disqualified"]},
     "actions": [
       {"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "stopOutreach"},
       {"provider": "whippy", "listId": ")" +
         kList + R"(", "action": "stopOutreach"},
       {"provider": "campaignlark", "action": "stopOutreach"},
       {"provider": "replyio", "sequenceId": )" +
         seq + R"(, "action": "stopOutreach"}]},
    {"name": "deleted", "when": {"kinds": ["contact.deleted"]},
     "actions": [
       {"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "remove"},
       {"provider": "whippy", "listId": ")" +
         kList + R"(", "action": "remove"},
       {"provider": "campaignlark", "action": "stopOutreach"},
       {"provider": "replyio", "sequenceId": )" +
         seq + R"(, "action": "unenroll"}]},
    {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
     "actions": [
       {"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "upsert"},
       {"provider": "whippy", "listId": ")" +
         kList + R"(", "action": "add"},
       {"provider": "campaignlark", "action": "upsert", "status": "SUBSCRIBED"},
       {"provider": "replyio", "sequenceId": )" +
         seq + R"(, "action": "enroll"}]}
  ],
  "worker": {"commitIntervalMs": 100, "retry": {"initialBackoffMs": 20, "maxBackoffMs": 500},
             "metrics": {"listen": "127.0.0.1:0"}}
})";
}

// What the last event of each contact implies, per provider.
struct Expected {
  std::set<std::string> replify_present;                   // emails in the campaign
  std::set<std::string> whippy_members;                    // phones in the list
  std::map<std::string, std::string> campaignlark_status;  // email -> status
  std::set<std::string> replyio_enrolled;                  // emails in the sequence
};

Expected ExpectedState(const std::vector<worker::SampleEvent>& events) {
  std::map<std::string, const mapping::CrmEvent*> last;
  std::map<std::string, bool> replify_present;
  for (const auto& sample : events) {
    const mapping::CrmEvent& e = sample.event;
    const std::string email = *e.contact.email;
    last[email] = &e;
    switch (e.kind) {
      case mapping::EventKind::kCreated:
      case mapping::EventKind::kUpdated:
        replify_present[email] = true;
        break;
      case mapping::EventKind::kDeleted:
        replify_present[email] = false;
        break;
      case mapping::EventKind::kStatusChanged:  // updateOnly never adds or removes
      case mapping::EventKind::kMerged:
      case mapping::EventKind::kRestored:
        break;
    }
  }
  Expected expected;
  for (const auto& [email, present] : replify_present) {
    if (present) expected.replify_present.insert(email);
  }
  for (const auto& [email, e] : last) {
    const bool active =
        e->kind == mapping::EventKind::kCreated || e->kind == mapping::EventKind::kUpdated;
    if (active) {
      expected.whippy_members.insert(*e->contact.phone);
      expected.replyio_enrolled.insert(email);
    }
    expected.campaignlark_status[email] = active ? "SUBSCRIBED" : "UNSUBSCRIBED";
  }
  return expected;
}

class FanoutTest : public BrokerTest {
 protected:
  void SetUp() override {
    sim::Simulator::Options options;
    options.api_keys = {
        {"replify", kKey}, {"whippy", kKey}, {"campaignlark", kKey}, {"replyio", kKey}};
    options.knobs.rate_limit_time_scale = kTimeScale;
    options.threads = 32;
    simulator_ = std::make_unique<sim::Simulator>(options);
    simulator_->Start();
    topic_ = MakeTopic(4);
    group_ = MakeGroup();
    dead_letter_topic_ = MakeTopic(1);
  }

  mapping::Config Config(bool budgets) {
    mapping::Config config = mapping::LoadConfigFromString(
        ConfigJson(Bootstrap(), topic_, group_, *simulator_, dead_letter_topic_), &TestEnv);
    for (auto& [name, provider] : config.providers) {
      std::vector<mapping::RateLimit> limits;
      if (budgets) {
        for (mapping::RateLimit limit : providers::DocumentedRateLimits(name)) {
          limit.period = std::chrono::duration_cast<milliseconds>(limit.period / kTimeScale);
          limits.push_back(limit);
        }
      }
      provider.rate_limits = limits;  // empty: the worker sends as fast as it can
    }
    return config;
  }

  std::vector<worker::SampleEvent> Produce(size_t events, size_t contacts, uint64_t seed) {
    worker::SampleOptions sample;
    sample.events = events;
    sample.contacts = contacts;
    sample.seed = seed;
    auto generated = worker::GenerateSampleEvents(sample);
    kafka::Producer producer(Bootstrap());
    for (const auto& e : generated) producer.Produce(topic_, e.key, e.payload);
    producer.Flush();
    return generated;
  }

  bool FullyCommitted() {
    try {
      auto lags = kafka::QueryGroupLag(Bootstrap(), group_, topic_);
      return kafka::TotalLag(lags) == 0 &&
             std::all_of(lags.begin(), lags.end(),
                         [](const kafka::PartitionLag& l) { return l.committed == l.log_end; });
    } catch (const std::exception&) {
      return false;
    }
  }

  void ExpectState(const Expected& expected) {
    std::set<std::string> replify;
    const auto campaigns = simulator_->ReplifyCampaigns();
    const auto campaign = campaigns.find(kCampaign);
    ASSERT_NE(campaign, campaigns.end());
    for (const auto& [id, contact] : campaign->second) {
      replify.insert(contact.email);
    }
    EXPECT_EQ(replify, expected.replify_present);

    auto* whippy = dynamic_cast<sim::WhippySim*>(simulator_->Provider("whippy"));
    ASSERT_NE(whippy, nullptr);
    std::set<std::string> members;
    const auto lists = whippy->Lists();
    const auto list = lists.find(kList);
    ASSERT_NE(list, lists.end());
    for (const auto& [phone, contact] : list->second) members.insert(phone);
    EXPECT_EQ(members, expected.whippy_members);

    auto* lark = dynamic_cast<sim::CampaignLarkSim*>(simulator_->Provider("campaignlark"));
    ASSERT_NE(lark, nullptr);
    std::map<std::string, std::string> statuses;
    for (const auto& [email, contact] : lark->Contacts()) statuses[email] = contact.status;
    EXPECT_EQ(statuses, expected.campaignlark_status);

    auto* reply = dynamic_cast<sim::ReplyIoSim*>(simulator_->Provider("replyio"));
    ASSERT_NE(reply, nullptr);
    EXPECT_EQ(reply->Sequences()[kSequence], expected.replyio_enrolled);
  }

  std::unique_ptr<sim::Simulator> simulator_;
  std::string topic_;
  std::string group_;
  std::string dead_letter_topic_;
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

TEST_F(FanoutTest, RejectedOperationsAreDeadLetteredAndTheOthersFlow) {
  // An inactive Whippy list refuses every write for good (422): those
  // operations go to the dead-letter topic; the other providers are unaffected.
  auto* whippy = dynamic_cast<sim::WhippySim*>(simulator_->Provider("whippy"));
  ASSERT_NE(whippy, nullptr);
  whippy->SetListActive(kList, false);
  const auto events = Produce(600, 60, 27);
  const uint64_t rejected =
      RunUntilCommitted(Config(/*budgets=*/true), [&] { return FullyCommitted(); });
  EXPECT_GT(rejected, 0u);
  Expected expected = ExpectedState(events);
  expected.whippy_members.clear();
  auto lists = whippy->Lists();
  EXPECT_TRUE(lists[kList].empty());
  auto campaigns = simulator_->ReplifyCampaigns();
  std::set<std::string> replify;
  for (const auto& [id, contact] : campaigns[kCampaign]) replify.insert(contact.email);
  EXPECT_EQ(replify, expected.replify_present);
  auto lags = kafka::QueryGroupLag(Bootstrap(), "unused-" + group_, dead_letter_topic_);
  ASSERT_EQ(lags.size(), 1u);
  EXPECT_EQ(static_cast<uint64_t>(lags[0].log_end), rejected);
}

}  // namespace
}  // namespace crmsync::testing
