// One provider down for a while: its circuit opens, so its operations wait
// instead of burning their attempts (a bound of a few attempts that plain
// backoff would exhaust within the outage is never hit) and its topic is
// paused; the other providers, fed from another topic by topic-routed rules,
// keep delivering everything; nothing is committed past the provider's
// undelivered operations; after the outage the circuit closes by itself, and
// the same worker, never restarted, ends with every provider in the state the
// last event of each contact implies.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

constexpr char kKey[] = "outage-test-key";
constexpr double kTimeScale = 60;

std::optional<std::string> TestEnv(std::string_view) { return std::string(kKey); }

std::unique_ptr<sim::Simulator> StartSimulator() {
  sim::Simulator::Options options = AllProvidersOptions(kKey);
  options.knobs.rate_limit_time_scale = kTimeScale;
  options.threads = 32;
  auto simulator = std::make_unique<sim::Simulator>(options);
  simulator->Start();
  return simulator;
}

// The fan-out config split by topic: events of `whippy_topic` go to Whippy
// only, events of `others_topic` to the three other providers only.
std::string RoutedByTopic(const std::string& fanout_json, const std::string& whippy_topic,
                          const std::string& others_topic) {
  rapidjson::Document doc;
  doc.Parse(fanout_json.c_str());
  auto& alloc = doc.GetAllocator();
  rapidjson::Value topics(rapidjson::kArrayType);
  topics.PushBack(rapidjson::Value(whippy_topic.c_str(), alloc), alloc);
  topics.PushBack(rapidjson::Value(others_topic.c_str(), alloc), alloc);
  doc["kafka"]["topics"] = topics;
  rapidjson::Value rules(rapidjson::kArrayType);
  for (const auto& rule : doc["rules"].GetArray()) {
    for (bool whippy : {false, true}) {
      rapidjson::Value copy(rule, alloc);
      rapidjson::Value actions(rapidjson::kArrayType);
      for (const auto& action : rule["actions"].GetArray()) {
        if ((std::string(action["provider"].GetString()) == "whippy") == whippy) {
          actions.PushBack(rapidjson::Value(action, alloc), alloc);
        }
      }
      copy["actions"] = actions;
      copy["name"].SetString(
          (std::string(rule["name"].GetString()) + (whippy ? "-whippy" : "")).c_str(), alloc);
      rapidjson::Value only(rapidjson::kArrayType);
      only.PushBack(rapidjson::Value((whippy ? whippy_topic : others_topic).c_str(), alloc), alloc);
      copy["when"].AddMember("topics", only, alloc);
      rules.PushBack(copy, alloc);
    }
  }
  doc["rules"] = rules;
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return buffer.GetString();
}

class OutageTest : public BrokerTest {};

TEST_F(OutageTest, CircuitOpensOthersFlowAndItRecoversWithoutARestart) {
  // Replify, CampaignLark and Reply.io on one simulator; Whippy on its own,
  // which goes down.
  auto others = StartSimulator();
  auto whippy = StartSimulator();
  const std::string topic = MakeTopic(4);         // to the three providers that stay up
  const std::string whippy_topic = MakeTopic(2);  // to Whippy
  const std::string group = MakeGroup();
  const std::string dead_letters = MakeTopic(1);

  worker::SampleOptions sample;
  sample.events = 2000;
  sample.contacts = 300;
  sample.seed = 77;
  const auto events = worker::GenerateSampleEvents(sample);
  const Expected expected = ExpectedState(events);

  FanoutConfig settings = FanoutConfigFor(Bootstrap(), topic, group, *others, dead_letters);
  settings.budget_time_scale = kTimeScale;
  // Four attempts with backoff of at most 200 ms would be spent within a
  // second of an outage of several seconds; the circuit must keep them.
  settings.providers["whippy"] = {whippy->BaseUrl("whippy"), "K",
                                  R"("maxBatch": 200, "lingerMs": 20, "maxInFlight": 2,
        "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200, "maxAttempts": 4},
        "circuitBreaker": {"failureThreshold": 2, "openMs": 2500, "maxOpenMs": 2500})"};
  whippy->SetKnobs(sim::Knobs{.fail_all = true, .rate_limit_time_scale = kTimeScale});

  worker::Metrics metrics;
  worker::Worker worker(
      mapping::LoadConfigFromString(providers::Catalog(),
                                    RoutedByTopic(FanoutConfigJson(settings), whippy_topic, topic),
                                    &TestEnv),
      metrics);
  std::atomic<bool> stop{false};
  std::thread runner([&] { worker.Run(stop); });
  ProduceEvents(Bootstrap(), whippy_topic, events);
  ProduceEvents(Bootstrap(), topic, events);

  // The circuit opens; the other providers deliver everything meanwhile.
  EXPECT_TRUE(WaitFor([&] { return worker.Stats().circuit_opened.load() > 0; }, seconds(60)));
  EXPECT_TRUE(WaitFor(
      [&] {
        const Expected actual = ActualState(*others);
        return actual.replify_present == expected.replify_present &&
               actual.campaignlark_status == expected.campaignlark_status &&
               actual.replyio_enrolled == expected.replyio_enrolled;
      },
      seconds(90)))
      << "the providers that are up did not reach their final state during the outage";
  EXPECT_TRUE(WaitFor([&] { return FullyCommitted(Bootstrap(), group, topic); }, seconds(30)));
  // Whippy's operations hold their messages: its topic is not committed.
  EXPECT_FALSE(FullyCommitted(Bootstrap(), group, whippy_topic));
  EXPECT_GT(worker.Stats().pending.load(), 0u);
  // Outage of several open periods, then recovery.
  std::this_thread::sleep_for(seconds(6));
  EXPECT_EQ(worker.Stats().rejected.load(), 0u) << "attempts were spent while the circuit was open";
  whippy->SetKnobs(sim::Knobs{.rate_limit_time_scale = kTimeScale});

  const bool committed =
      WaitFor([&] { return FullyCommitted(Bootstrap(), group, whippy_topic); }, seconds(120));
  stop = true;
  runner.join();
  EXPECT_TRUE(committed) << "pending " << worker.Stats().pending.load();
  EXPECT_EQ(worker.Stats().rejected.load(), 0u);
  EXPECT_EQ(worker.Stats().dead_lettered.load(), 0u);
  EXPECT_GE(worker.Stats().circuit_opened.load(), 1u);
  const Expected actual = ActualState(*others);
  EXPECT_EQ(actual.replify_present, expected.replify_present);
  EXPECT_EQ(actual.campaignlark_status, expected.campaignlark_status);
  EXPECT_EQ(actual.replyio_enrolled, expected.replyio_enrolled);
  EXPECT_EQ(ActualState(*whippy).whippy_members, expected.whippy_members);
}

}  // namespace
}  // namespace crmsync::testing
