// Contact state end to end: recorded HubSpot, Salesforce and Debezium change
// streams (partial events: property changes, status-only updates, deletes
// that carry only a record id, tombstones) go through the test broker, the
// worker and the simulator, and all four providers end in the state the
// whole contact implies. The state survives a SIGKILL of the real binary
// and a rebalance: the new owner restores it before it processes the
// partition. Every test runs on both state backends (memory, rocksdb).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/campaignlark_sim.h"
#include "sim/replyio_sim.h"
#include "sim/simulator.h"
#include "sim/whippy_sim.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "tests/support/fixture_stream.h"
#include "tests/support/worker_process.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/producer.h"
#include "worker/metrics.h"
#include "worker/sample_events.h"
#include "worker/worker.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kKey[] = "state-test-key";
constexpr double kTimeScale = 60;

std::optional<std::string> TestEnv(std::string_view) { return std::string(kKey); }

// The fan-out rules (mapping every contact to all four providers) with
// contact state on, statuses read from each format's status field, and
// stop-outreach on the transition to completed/disqualified.
// `state` is the state section; with `replify_only` the other providers'
// actions are left out.
std::string StateConfigJson(const FanoutConfig& fanout, const std::string& state,
                            bool replify_only = false) {
  rapidjson::Document doc;
  doc.Parse(FanoutConfigJson(fanout).c_str());
  auto& a = doc.GetAllocator();
  if (replify_only) {
    for (auto& rule : doc["rules"].GetArray()) {
      auto& actions = rule["actions"];
      for (auto it = actions.Begin(); it != actions.End();) {
        it = std::string((*it)["provider"].GetString()) == "replify" ? it + 1 : actions.Erase(it);
      }
    }
  }
  rapidjson::Value when(rapidjson::kObjectType);
  rapidjson::Value condition(rapidjson::kObjectType);
  condition.AddMember("field", "status", a);
  rapidjson::Value becomes(rapidjson::kArrayType);
  becomes.PushBack("completed", a).PushBack("disqualified", a);
  condition.AddMember("becomes", becomes, a);
  rapidjson::Value conditions(rapidjson::kArrayType);
  conditions.PushBack(condition, a);
  when.AddMember("conditions", conditions, a);
  doc["rules"][0]["when"] = when;
  rapidjson::Document extra;
  extra.Parse(R"({
    "formats": {"hubspot": {"statusField": "lifecyclestage"},
                "salesforce": {"statusField": "Status"},
                "debezium": {"statusField": "status"}},
    "state": )" +
              state + "}");
  for (auto& member : extra.GetObject()) {
    doc.AddMember(rapidjson::Value(member.name, a), rapidjson::Value(member.value, a), a);
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return buffer.GetString();
}

// What the providers hold of one contact, in the terms the checks use.
struct Held {
  bool replify = false;
  std::string replify_email, replify_status, replify_last_name;
  bool whippy_member = false;
  std::string campaignlark_status;  // "" when unknown
  bool replyio_enrolled = false;
};

Held HeldOf(const sim::Simulator& sim, const std::string& email, const std::string& phone) {
  Held held;
  const auto campaigns = sim.ReplifyCampaigns();
  if (auto campaign = campaigns.find(kFanoutCampaign); campaign != campaigns.end()) {
    for (const auto& [id, contact] : campaign->second) {
      if (contact.phone == phone || contact.email == email) {
        held.replify = true;
        held.replify_email = contact.email;
        held.replify_status = contact.status;
        held.replify_last_name = contact.last_name;
      }
    }
  }
  const auto* whippy = dynamic_cast<const sim::WhippySim*>(sim.Provider("whippy"));
  const auto lists = whippy->Lists();
  if (auto list = lists.find(kFanoutList); list != lists.end()) {
    held.whippy_member = list->second.contains(phone);
  }
  const auto* lark = dynamic_cast<const sim::CampaignLarkSim*>(sim.Provider("campaignlark"));
  if (auto contact = lark->Contact(email)) held.campaignlark_status = contact->status;
  const auto* reply = dynamic_cast<const sim::ReplyIoSim*>(sim.Provider("replyio"));
  const auto sequences = reply->Sequences();
  if (auto it = sequences.find(kFanoutSequence); it != sequences.end()) {
    held.replyio_enrolled = it->second.contains(email);
  }
  return held;
}

class StateTest : public BrokerTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    sim::Simulator::Options options;
    options.api_keys = {
        {"replify", kKey}, {"whippy", kKey}, {"campaignlark", kKey}, {"replyio", kKey}};
    options.knobs.rate_limit_time_scale = kTimeScale;
    simulator_ = std::make_unique<sim::Simulator>(options);
    simulator_->Start();
    topic_ = MakeTopic(4);
    group_ = MakeGroup();
    // The mock cluster does not answer CreateTopics: the changelog exists
    // beforehand, as state.createTopics=false deployments have it.
    Broker().CreateTopic(topic_ + ".crmsync-state", 4);
  }

  FanoutConfig Settings() {
    FanoutConfig config = FanoutConfigFor(Bootstrap(), topic_, group_, *simulator_);
    config.kafka_properties = R"({"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"})";
    config.worker = R"({"commitIntervalMs": 100, "drainTimeoutMs": 5000,
      "retry": {"initialBackoffMs": 20, "maxBackoffMs": 500},
      "metrics": {"listen": "127.0.0.1:0"}})";
    return config;
  }
  void TearDown() override { std::filesystem::remove_all(StateRoot()); }

  // The state section for the backend under test; each worker process or
  // in-process worker (`member`) has a directory of its own, as each pod has.
  bool OnRocksDb() const { return GetParam() == "rocksdb"; }
  std::string StateRoot() const { return ::testing::TempDir() + "/" + group_ + "-state"; }
  std::string StateDir(const std::string& member) const { return StateRoot() + "/" + member; }
  std::string StateSection(const std::string& member = "a") const {
    if (!OnRocksDb()) return R"({"enabled": true})";
    return R"({"enabled": true, "backend": "rocksdb", "dir": ")" + StateDir(member) +
           R"(", "rocksdb": {"blockCacheMb": 8, "writeBufferMb": 4}})";
  }
  // The member's states are in its database when the backend is rocksdb.
  void ExpectDatabase(const std::string& member) const {
    if (OnRocksDb()) {
      EXPECT_TRUE(std::filesystem::exists(StateDir(member) + "/rocksdb/CURRENT")) << member;
    }
  }
  mapping::Config Config(const std::string& member = "a") {
    return mapping::LoadConfigFromString(
        providers::Catalog(), StateConfigJson(Settings(), StateSection(member)), &TestEnv);
  }

  void Produce(const std::vector<FixtureRecord>& records) {
    kafka::Producer producer(Bootstrap());
    for (const FixtureRecord& record : records) {
      producer.ProduceRecord(
          topic_, record.key,
          record.null_value ? std::string_view() : std::string_view(record.value), {},
          [](bool, const std::string&) {});
    }
    producer.Flush();
  }

  // Every partition that holds messages is committed to its end (some of
  // the few keys here leave partitions empty, with nothing to commit).
  bool Committed() {
    try {
      const auto lags = kafka::QueryGroupLag(Bootstrap(), group_, topic_);
      return !lags.empty() && std::all_of(lags.begin(), lags.end(), [](const auto& lag) {
        return lag.log_end == 0 || lag.committed == lag.log_end;
      });
    } catch (const std::exception&) {
      return false;
    }
  }

  std::unique_ptr<sim::Simulator> simulator_;
  std::string topic_;
  std::string group_;
};

class RunningWorker {
 public:
  explicit RunningWorker(mapping::Config config)
      : metrics_(config.worker.metrics_listen), worker_(std::move(config), metrics_) {
    thread_ = std::thread([this] { worker_.Run(stop_); });
  }
  ~RunningWorker() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const worker::WorkerStats& Stats() const { return worker_.Stats(); }

 private:
  worker::Metrics metrics_;
  worker::Worker worker_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::vector<FixtureRecord> Pick(const std::vector<FixtureRecord>& records,
                                std::initializer_list<size_t> indexes) {
  std::vector<FixtureRecord> out;
  for (size_t i : indexes) out.push_back(records.at(i));
  return out;
}

TEST_P(StateTest, RealShapedStreamsEndInTheRightStateAtEveryProvider) {
  const auto hubspot = ReadFixtureStream("hubspot.txt");
  const auto salesforce = ReadFixtureStream("salesforce.txt");
  const auto debezium = ReadFixtureStream("debezium.txt");
  ASSERT_EQ(hubspot.size(), 5u);
  ASSERT_EQ(salesforce.size(), 5u);
  ASSERT_EQ(debezium.size(), 5u);
  struct Contact {
    std::string email, phone;
  };
  const Contact ava{"ava.lopez@example.com", "+15551230001"};
  const Contact ben{"ben.okafor@example.com", "+15551230002"};
  const Contact cleo{"cleo.marsh@example.com", "+15551230003"};

  RunningWorker worker(Config());
  // 1. Creations and property changes: everyone is in, subscribed, enrolled.
  Produce(Pick(hubspot, {0, 1, 2}));
  Produce(Pick(salesforce, {0}));
  Produce(Pick(debezium, {0, 1}));
  auto synced = [&](const Contact& c) {
    const Held held = HeldOf(*simulator_, c.email, c.phone);
    return held.replify && held.replify_email == c.email && held.whippy_member &&
           held.campaignlark_status == "SUBSCRIBED" && held.replyio_enrolled;
  };
  EXPECT_TRUE(WaitFor([&] { return synced(ava) && synced(ben) && synced(cleo); }, seconds(60)))
      << simulator_->StateJson();
  EXPECT_EQ(HeldOf(*simulator_, cleo.email, cleo.phone).replify_last_name, "Marsh-Reyes");
  EXPECT_EQ(HeldOf(*simulator_, ben.email, ben.phone).replify_status, "Open - Not Contacted");

  // 2. Status changes carrying no identity (a lifecycle stage, a status-only
  // CDC update, a status column) stop outreach everywhere; gap and overflow
  // events change nothing.
  Produce(Pick(hubspot, {3}));
  Produce(Pick(salesforce, {1, 2, 3}));
  Produce(Pick(debezium, {2}));
  auto stopped = [&](const Contact& c, const std::string& status) {
    const Held held = HeldOf(*simulator_, c.email, c.phone);
    return held.replify && held.replify_status == status && !held.whippy_member &&
           held.campaignlark_status == "UNSUBSCRIBED" && !held.replyio_enrolled;
  };
  EXPECT_TRUE(WaitFor(
      [&] {
        return stopped(ava, "completed") && stopped(ben, "disqualified") &&
               stopped(cleo, "completed");
      },
      seconds(60)))
      << simulator_->StateJson();

  // 3. Deletions that carry only the record id (and a tombstone) remove
  // the contacts their state identifies.
  Produce(Pick(hubspot, {4}));
  Produce(Pick(salesforce, {4}));
  Produce(Pick(debezium, {3, 4}));
  auto removed = [&](const Contact& c) {
    const Held held = HeldOf(*simulator_, c.email, c.phone);
    return !held.replify && !held.whippy_member && held.campaignlark_status == "UNSUBSCRIBED" &&
           !held.replyio_enrolled;
  };
  EXPECT_TRUE(WaitFor([&] { return removed(ava) && removed(ben) && removed(cleo); }, seconds(60)))
      << simulator_->StateJson();
  EXPECT_TRUE(WaitFor([&] { return Committed(); }, seconds(30)));
  EXPECT_EQ(worker.Stats().malformed, 0u) << "partial events are never malformed";
  EXPECT_EQ(worker.Stats().skipped, 1u) << "only HubSpot's bare contact.creation";
  EXPECT_GT(worker.Stats().suppressed, 0u)
      << "the deletion's CampaignLark stop-outreach repeats the one already confirmed";
  ExpectDatabase("a");
}

// Ben's lead again, under `id` and `email`.
std::vector<FixtureRecord> Lead(const std::vector<FixtureRecord>& salesforce, size_t index,
                                const std::string& id, const std::string& email) {
  FixtureRecord record = salesforce.at(index);
  auto replace = [](std::string& text, const std::string& from, const std::string& to) {
    for (size_t at = text.find(from); at != std::string::npos;
         at = text.find(from, at + to.size())) {
      text.replace(at, from.size(), to);
    }
  };
  replace(record.key, "00Q5e00000AbCdEEAV", id);
  replace(record.value, "00Q5e00000AbCdEEAV", id);
  replace(record.value, "ben.okafor@example.com", email);
  return {record};
}

std::string LeadId(int i) {
  std::string id = "00Q5e00000AbC" + std::to_string(100 + i) + "AV";
  return id;
}
std::string LeadEmail(int i) { return "lead" + std::to_string(i) + "@example.com"; }

bool ReplifyStatusIs(const sim::Simulator& sim, const std::string& email,
                     const std::string& status) {
  const auto campaigns = sim.ReplifyCampaigns();
  auto campaign = campaigns.find(kFanoutCampaign);
  if (campaign == campaigns.end()) return false;
  auto it = campaign->second.find(email);
  return it != campaign->second.end() && it->second.status == status;
}

TEST_P(StateTest, StateSurvivesAKillNineAndIsRestoredBeforeTheRestartProcesses) {
  const auto salesforce = ReadFixtureStream("salesforce.txt");
  ASSERT_EQ(salesforce.size(), 5u);
  constexpr int kLeads = 8;
  for (int i = 0; i < kLeads; ++i) Produce(Lead(salesforce, 0, LeadId(i), LeadEmail(i)));

  const std::string config_path = ::testing::TempDir() + "/" + group_ + ".json";
  {
    std::ofstream out(config_path);
    out << StateConfigJson(Settings(), StateSection());
  }
  WorkerProcessOptions options;
  options.config_path = config_path;
  options.env = {{"K", kKey}};
  options.log_level = "info";
  options.log_path = ::testing::TempDir() + "/" + group_ + "-first.log";
  {
    WorkerProcess first(options);
    ASSERT_TRUE(WaitFor(
        [&] {
          for (int i = 0; i < kLeads; ++i) {
            if (!ReplifyStatusIs(*simulator_, LeadEmail(i), "Open - Not Contacted")) return false;
          }
          return true;
        },
        seconds(60)))
        << first.Log();
    ASSERT_TRUE(WaitFor([&] { return Committed(); }, seconds(30))) << first.Log();
    first.Kill9();  // no drain, no commit, no goodbye to the group
  }
  // Status-only updates: without the restored state they would name no
  // contact that Replify knows.
  for (int i = 0; i < kLeads; ++i) Produce(Lead(salesforce, 1, LeadId(i), LeadEmail(i)));
  options.log_path = ::testing::TempDir() + "/" + group_ + "-second.log";
  WorkerProcess second(options);
  EXPECT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < kLeads; ++i) {
          if (!ReplifyStatusIs(*simulator_, LeadEmail(i), "disqualified")) return false;
        }
        return true;
      },
      seconds(90)))
      << simulator_->StateJson() << "\n"
      << second.Log();
  EXPECT_TRUE(WaitFor([&] { return Committed(); }, seconds(30)));
  const std::string log = second.Log();
  // Every partition's state was restored before its messages were handled.
  static const std::regex restored(R"(restored the state of [^ ]+: ([0-9]+) contact)");
  size_t contacts = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), restored);
       it != std::sregex_iterator(); ++it) {
    contacts += std::stoul((*it)[1]);
  }
  EXPECT_EQ(contacts, static_cast<size_t>(kLeads)) << log;
  EXPECT_EQ(log.find("unknown_contact"), std::string::npos) << log;
  EXPECT_EQ(log.find("never seen"), std::string::npos) << log;
  // The restart reopened (and wiped) the directory the killed process left.
  if (OnRocksDb()) {
    EXPECT_NE(log.find("contact state in RocksDB at"), std::string::npos) << log;
  }
}

TEST_P(StateTest, RepeatedKillNineMidStreamLosesNoState) {
  const auto salesforce = ReadFixtureStream("salesforce.txt");
  ASSERT_EQ(salesforce.size(), 5u);
  constexpr int kLeads = 400;
  // Every lead's creation, then every lead's status-only update: each update
  // reaches Replify with the right email only if the state of its creation
  // survived every kill before it.
  std::vector<FixtureRecord> stream;
  for (int i = 0; i < kLeads; ++i) {
    for (auto& record : Lead(salesforce, 0, LeadId(i), LeadEmail(i))) stream.push_back(record);
  }
  for (int i = 0; i < kLeads; ++i) {
    for (auto& record : Lead(salesforce, 1, LeadId(i), LeadEmail(i))) stream.push_back(record);
  }
  Produce(stream);
  sim::Knobs slow;
  slow.latency = milliseconds(30);
  simulator_->SetKnobs(slow);

  const std::string config_path = ::testing::TempDir() + "/" + group_ + ".json";
  {
    std::ofstream out(config_path);
    // Replify only: the other providers' hourly rate limits, which the
    // simulator keeps across the worker's restarts, would set the pace.
    out << StateConfigJson(Settings(), StateSection(), /*replify_only=*/true);
  }
  WorkerProcessOptions options;
  options.config_path = config_path;
  options.env = {{"K", kKey}};
  options.log_level = "info";
  static const std::regex assigned("assigned [1-9][0-9]* partition");
  for (int run = 0; run < 4; ++run) {
    options.log_path = ::testing::TempDir() + "/" + group_ + "-run" + std::to_string(run) + ".log";
    WorkerProcess worker(options);
    ASSERT_TRUE(WaitFor([&] { return std::regex_search(worker.Log(), assigned); }, seconds(60)))
        << worker.Log();
    std::this_thread::sleep_for(milliseconds(700 + 300 * run));
    worker.Kill9();
  }
  simulator_->SetKnobs(sim::Knobs{});
  options.log_path = ::testing::TempDir() + "/" + group_ + "-last.log";
  WorkerProcess last(options);
  EXPECT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < kLeads; ++i) {
          if (!ReplifyStatusIs(*simulator_, LeadEmail(i), "disqualified")) return false;
        }
        return true;
      },
      seconds(120)))
      << last.Log();
  EXPECT_TRUE(WaitFor([&] { return Committed(); }, seconds(120))) << last.Log();
  const std::string log = last.Log();
  EXPECT_EQ(log.find("never seen"), std::string::npos) << log;
  // The earlier runs may have done all the work: the last one may still be
  // starting (reopening the directory the killed run left).
  if (OnRocksDb()) {
    EXPECT_TRUE(
        WaitFor([&] { return last.LogContains("contact state in RocksDB at"); }, seconds(30)))
        << last.Log();
  }
}

TEST_P(StateTest, ARebalanceHandsTheStateToTheNewOwner) {
  const auto salesforce = ReadFixtureStream("salesforce.txt");
  ASSERT_EQ(salesforce.size(), 5u);
  constexpr int kLeads = 16;
  for (int i = 0; i < kLeads; ++i) Produce(Lead(salesforce, 0, LeadId(i), LeadEmail(i)));
  RunningWorker first(Config("first"));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < kLeads; ++i) {
          if (!ReplifyStatusIs(*simulator_, LeadEmail(i), "Open - Not Contacted")) return false;
        }
        return true;
      },
      seconds(60)));
  // A second member joins: the cooperative rebalance moves partitions to it.
  RunningWorker second(Config("second"));
  ASSERT_TRUE(WaitFor([&] { return second.Stats().assigned_partitions > 0; }, seconds(60)));
  ASSERT_TRUE(WaitFor([&] { return first.Stats().assigned_partitions < 4; }, seconds(60)));
  for (int i = 0; i < kLeads; ++i) Produce(Lead(salesforce, 1, LeadId(i), LeadEmail(i)));
  EXPECT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < kLeads; ++i) {
          if (!ReplifyStatusIs(*simulator_, LeadEmail(i), "disqualified")) return false;
        }
        return true;
      },
      seconds(60)))
      << simulator_->StateJson();
  EXPECT_GT(second.Stats().restored_contacts, 0u);
  EXPECT_GT(first.Stats().revokes, 0u);
  EXPECT_EQ(first.Stats().skipped + second.Stats().skipped, 0u)
      << "every status update found its contact's state";
  EXPECT_TRUE(WaitFor([&] { return Committed(); }, seconds(30)));
  ExpectDatabase("first");
  ExpectDatabase("second");
}

// What the providers hold: the simulator's state without its counters.
std::string HeldByProviders(const sim::Simulator& sim) {
  rapidjson::Document doc;
  doc.Parse(sim.StateJson().c_str());
  doc.RemoveMember("counters");
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return buffer.GetString();
}

// The identities a provider request names (Reply.io names contacts by id:
// their emails, from the simulator's state).
std::string Identities(const sim::Simulator& sim, const sim::RequestRecord& request) {
  std::string text = request.body + " " + request.query;
  rapidjson::Document body;
  body.Parse(request.body.c_str());
  if (!body.IsObject() || !body.HasMember("contactIds")) return text;
  rapidjson::Document held;
  held.Parse(sim.StateJson().c_str());
  for (const auto& id : body["contactIds"].GetArray()) {
    for (const auto& contact : held["replyio"]["contacts"].GetArray()) {
      if (contact["id"].GetInt64() == id.GetInt64())
        text += std::string(" ") + contact["email"].GetString();
    }
  }
  return text;
}

// A new owner replays from an older offset (here: a second group on the same
// changelog replays the whole topic, as after a crash that committed
// nothing). The contact's state records, per target, the latest input offset
// whose operation the provider confirmed: nothing at or below it is sent
// again, whatever the contact's history holds, and the providers keep what
// they have. Messages after it (new ones here) are sent as usual.
TEST_P(StateTest, ReplayedMessagesTheProviderConfirmedAreNotSentAgain) {
  worker::SampleOptions options;
  options.events = 200;
  options.contacts = 5;
  options.seed = 1203;
  const auto events = worker::GenerateSampleEvents(options);
  std::map<std::string, size_t> per_contact;
  for (const auto& event : events) ++per_contact[event.key];
  ASSERT_TRUE(std::any_of(
      per_contact.begin(), per_contact.end(),
      [](const auto& entry) { return entry.second > mapping::ContactState::kMaxHistory; }))
      << "the stream must have a contact with more messages than its history keeps, so that "
         "skipping does not depend on the history";
  auto produce = [&](const std::vector<worker::SampleEvent>& batch) {
    kafka::Producer producer(Bootstrap());
    for (const auto& event : batch) producer.Produce(topic_, event.key, event.payload);
    producer.Flush();
  };
  produce(events);
  {
    RunningWorker first(Config("first"));
    ASSERT_TRUE(WaitFor([&] { return Committed(); }, seconds(60)));
    first.Stop();
  }
  const std::string held = HeldByProviders(*simulator_);
  const size_t sent = simulator_->RequestLog().size();

  const std::string first_state = StateRoot();
  group_ += "-replay";
  RunningWorker second(Config("second"));
  ASSERT_TRUE(WaitFor([&] { return Committed(); }, seconds(60)));
  EXPECT_GT(second.Stats().restored_contacts, 0u);
  EXPECT_GT(second.Stats().replays_skipped, 0u);
  EXPECT_EQ(simulator_->RequestLog().size(), sent) << "the replay sent requests again";
  EXPECT_TRUE(HeldByProviders(*simulator_) == held) << "the replay changed what providers hold";

  // New messages of three contacts (their first events again, at new offsets).
  std::vector<worker::SampleEvent> again;
  std::set<std::string> contacts;
  for (const auto& event : events) {
    if (contacts.size() < 3 && event.event.kind == mapping::EventKind::kCreated &&
        contacts.insert(*event.event.contact.email).second) {
      again.push_back(event);
    }
  }
  produce(again);
  ASSERT_TRUE(WaitFor([&] { return Committed(); }, seconds(60)));
  second.Stop();
  std::filesystem::remove_all(first_state);
  const auto log = simulator_->RequestLog();
  EXPECT_GT(log.size(), sent) << "new messages after the replay are sent";
  for (size_t i = sent; i < log.size(); ++i) {
    const std::string text = Identities(*simulator_, log[i]);
    EXPECT_TRUE(
        std::any_of(contacts.begin(), contacts.end(),
                    [&](const std::string& email) { return text.find(email) != text.npos; }))
        << "a request for a contact without new messages: " << log[i].provider << " " << log[i].path
        << " " << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StateTest, ::testing::Values("memory", "rocksdb"),
                         [](const ::testing::TestParamInfo<std::string>& backend) {
                           return backend.param;
                         });

}  // namespace
}  // namespace crmsync::testing
