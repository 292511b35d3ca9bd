// Contact state: merging partial events, the changelog record format, the
// status table, and ProcessMessage over recorded HubSpot, Salesforce and
// Debezium streams (tests/mapping/fixtures/state/), with the state kept in
// a map as the worker's store keeps it.
#include "mapping/contact_state.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "mapping/config.h"
#include "providers/registry.h"
#include "tests/support/fixture_stream.h"
#include "worker/dry_run.h"
#include "worker/process_message.h"

namespace crmsync::worker {
namespace {

constexpr char kCampaign[] = "5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3";

std::optional<std::string> Env(std::string_view) { return std::string("key"); }

mapping::Config StateConfig(const std::string& state = R"({"enabled": true})") {
  return mapping::LoadConfigFromString(providers::Catalog(),
                                       R"({
  "kafka": {"bootstrapServers": "127.0.0.1:9", "topics": ["crm"]},
  "formats": {"hubspot": {"statusField": "lifecyclestage"},
              "salesforce": {"statusField": "Status"},
              "debezium": {"statusField": "status"}},
  "providers": {"replify": {"baseUrl": "http://127.0.0.1:1", "apiKey": {"env": "K"}}},
  "rules": [
    {"name": "stop", "when": {"conditions": [{"field": "status", "becomes": ["completed", "disqualified"]}]},
     "actions": [{"provider": "replify", "campaignId": ")" +
                                           std::string(kCampaign) +
                                           R"(", "action": "stopOutreach"}]},
    {"name": "deleted", "when": {"kinds": ["contact.deleted"]},
     "actions": [{"provider": "replify", "campaignId": ")" +
                                           std::string(kCampaign) + R"(", "action": "remove"}]},
    {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
     "actions": [{"provider": "replify", "campaignId": ")" +
                                           std::string(kCampaign) + R"(", "action": "upsert"}]}
  ],
  "state": )" + state + R"(
})",
                                       &Env);
}

// The worker's store for one partition, in a map.
class Stream {
 public:
  explicit Stream(const mapping::Config& config) : config_(config) {}

  ProcessedMessage Process(const testing::FixtureRecord& record) {
    kafka::Message message;
    message.topic = "crm";
    message.offset = offset_++;
    message.key = record.key;
    message.payload = record.value;
    message.null_payload = record.null_value;
    return ProcessAt(message);
  }

  ProcessedMessage ProcessAt(const kafka::Message& message) {
    StateContext context;
    context.replay_floor = replay_floor_;
    context.lookup = [this](const std::string& key) -> std::optional<mapping::ContactState> {
      auto it = states_.find(key);
      if (it == states_.end()) return std::nullopt;
      return it->second;
    };
    ProcessedMessage out = ProcessMessage(message, config_.rules, context);
    for (auto& change : context.changes) {
      if (change.state) {
        states_[change.key] = std::move(*change.state);
      } else {
        states_.erase(change.key);
      }
    }
    return out;
  }

  const std::map<std::string, mapping::ContactState>& States() const { return states_; }
  void SetReplayFloor(int64_t offset) { replay_floor_ = offset; }

 private:
  int64_t replay_floor_ = -1;
  const mapping::Config& config_;
  std::map<std::string, mapping::ContactState> states_;
  int64_t offset_ = 0;
};

const mapping::Operation& OnlyOperation(const ProcessedMessage& out) {
  EXPECT_EQ(out.fate, MessageFate::kOperations) << out.reason;
  EXPECT_EQ(out.operations.size(), 1u) << out.reason;
  static const mapping::Operation kNone;
  return out.operations.empty() ? kNone : out.operations.front();
}

TEST(ContactStateTest, MergeKeepsWhatAPartialEventDoesNotCarry) {
  mapping::ContactSnapshot before;
  before.contact.email = "ava@example.com";
  before.contact.phone = "+15551230001";
  before.contact.properties = {{"tier", "gold"}, {"region", "west"}};
  before.status = "active";
  mapping::CrmEvent event;
  event.kind = mapping::EventKind::kUpdated;
  event.contact.properties = {{"tier", "platinum"}};
  event.changed_fields = {"properties.tier", "properties.region", "contact.phone"};
  const mapping::ContactSnapshot after = mapping::MergeEvent(before, event);
  EXPECT_EQ(after.contact.email, "ava@example.com");
  EXPECT_FALSE(after.contact.phone) << "listed as changed without a value: cleared";
  EXPECT_EQ(after.contact.properties, (std::map<std::string, std::string>{{"tier", "platinum"}}));
  EXPECT_EQ(after.status, "active");

  mapping::ApplySnapshot(before, after, event);
  EXPECT_EQ(event.contact.email, "ava@example.com");
  EXPECT_EQ(event.previous.at("contact.phone"), "+15551230001");
  EXPECT_EQ(event.changed_fields,
            (mapping::FieldSet{"contact.phone", "properties.region", "properties.tier"}));
}

TEST(ContactStateTest, ChangelogRecordRoundTrips) {
  mapping::ContactState state;
  state.current.contact.first_name = "Ava";
  state.current.contact.email = "ava@example.com";
  state.current.contact.properties = {{"tier", "gold \"vip\""}};
  state.current.status = "completed";
  state.offset = 41;
  state.history = {{40, std::nullopt}, {41, mapping::ContactSnapshot{}}};
  state.delivered = {{"replify/" + std::string(kCampaign), 0xfedcba9876543210ull}};
  state.delivered_at = {{"replify/" + std::string(kCampaign), 41}};
  std::string error;
  const auto parsed = mapping::StateFromJson(mapping::StateToJson(state), error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(*parsed, state);
  EXPECT_FALSE(mapping::StateFromJson(R"({"v": 2, "c": {}})", error));
  EXPECT_NE(error.find("version"), std::string::npos) << error;
}

TEST(ContactStateTest, StatusTableIsCaseInsensitiveAndKeepsUnknownValues) {
  mapping::StatusTable table = mapping::StatusTable::Defaults();
  EXPECT_EQ(table.Canonical("Disqualified"), "disqualified");
  EXPECT_EQ(table.Canonical("closed - converted"), "completed");
  EXPECT_EQ(table.Canonical(" Customer "), "completed");
  EXPECT_EQ(table.Canonical("Working - Contacted"), "Working - Contacted");
  table.Set("Nurture", "active");
  EXPECT_EQ(table.Canonical("NURTURE"), "active");
}

TEST(ContactStateTest, HubSpotPropertyChangesBuildTheContact) {
  const mapping::Config config = StateConfig();
  Stream stream(config);
  const auto records = testing::ReadFixtureStream("hubspot.txt");
  ASSERT_EQ(records.size(), 5u);

  ProcessedMessage created = stream.Process(records[0]);
  EXPECT_EQ(created.fate, MessageFate::kSkipped) << created.reason;
  EXPECT_EQ(created.skip_label, "incomplete");

  const mapping::Operation named = OnlyOperation(stream.Process(records[1]));
  EXPECT_EQ(named.action, mapping::Action::kUpsert);
  EXPECT_EQ(named.contact.first_name, "Ava");
  EXPECT_EQ(named.contact.phone, "+15551230001");
  EXPECT_FALSE(named.contact.email);

  const mapping::Operation emailed = OnlyOperation(stream.Process(records[2]));
  EXPECT_EQ(emailed.contact.email, "ava.lopez@example.com");
  EXPECT_EQ(emailed.contact.first_name, "Ava") << "kept from the state";

  const mapping::Operation stopped = OnlyOperation(stream.Process(records[3]));
  EXPECT_EQ(stopped.action, mapping::Action::kUpdateOnly);
  EXPECT_EQ(stopped.contact.status, "completed") << "lifecycle stage customer is completed";
  EXPECT_EQ(stopped.contact.email, "ava.lopez@example.com");

  const mapping::Operation removed = OnlyOperation(stream.Process(records[4]));
  EXPECT_EQ(removed.action, mapping::Action::kRemove);
  EXPECT_EQ(removed.contact.email, "ava.lopez@example.com");
  ASSERT_TRUE(stream.States().contains("hubspotId:1201"));
  EXPECT_TRUE(stream.States().at("hubspotId:1201").current.deleted);
}

TEST(ContactStateTest, HubSpotPrivacyDeletionRemovesAndErasesTheState) {
  const mapping::Config config = StateConfig();
  Stream stream(config);
  const auto records = testing::ReadFixtureStream("hubspot.txt");
  ASSERT_EQ(records.size(), 5u);
  for (size_t i = 0; i < 3; ++i) stream.Process(records[i]);
  testing::FixtureRecord privacy = records[4];
  const size_t at = privacy.value.find("contact.deletion");
  ASSERT_NE(at, std::string::npos);
  privacy.value.replace(at, 16, "contact.privacyDeletion");
  const mapping::Operation removed = OnlyOperation(stream.Process(privacy));
  EXPECT_EQ(removed.action, mapping::Action::kRemove);
  EXPECT_EQ(removed.contact.email, "ava.lopez@example.com");
  EXPECT_FALSE(stream.States().contains("hubspotId:1201"));
}

TEST(ContactStateTest, SalesforceStatusOnlyUpdateStopsOutreachWithTheKnownEmail) {
  const mapping::Config config = StateConfig();
  Stream stream(config);
  const auto records = testing::ReadFixtureStream("salesforce.txt");
  ASSERT_EQ(records.size(), 5u);
  const mapping::Operation created = OnlyOperation(stream.Process(records[0]));
  EXPECT_EQ(created.contact.email, "ben.okafor@example.com");
  EXPECT_EQ(created.contact.first_name, "Ben");

  const mapping::Operation stopped = OnlyOperation(stream.Process(records[1]));
  EXPECT_EQ(stopped.action, mapping::Action::kUpdateOnly);
  EXPECT_EQ(stopped.contact.status, "disqualified") << "the picklist value, canonical";
  EXPECT_EQ(stopped.contact.email, "ben.okafor@example.com");

  for (size_t i : {2u, 3u}) {
    ProcessedMessage gap = stream.Process(records[i]);
    EXPECT_EQ(gap.fate, MessageFate::kUnmatched) << gap.reason;
  }
  const mapping::Operation removed = OnlyOperation(stream.Process(records[4]));
  EXPECT_EQ(removed.action, mapping::Action::kRemove);
  EXPECT_EQ(removed.contact.email, "ben.okafor@example.com");
}

TEST(ContactStateTest, EventsOfAContactNeverSeenAreSkippedNotMalformed) {
  const mapping::Config config = StateConfig();
  Stream stream(config);
  const auto records = testing::ReadFixtureStream("salesforce.txt");
  ASSERT_EQ(records.size(), 5u);
  for (size_t i : {4u, 1u}) {
    ProcessedMessage out = stream.Process(records[i]);
    EXPECT_EQ(out.fate, MessageFate::kSkipped) << out.reason;
    EXPECT_EQ(out.skip_label, "unknown_contact");
    EXPECT_NE(out.reason.find("salesforceId:00Q5e00000AbCdEEAV"), std::string::npos) << out.reason;
  }
  EXPECT_FALSE(stream.States().empty()) << "the status update is remembered for later";
  // Known now, but still without an email or phone.
  ProcessedMessage again = stream.Process(records[4]);
  EXPECT_EQ(again.fate, MessageFate::kSkipped) << again.reason;
  EXPECT_EQ(again.skip_label, "incomplete");
}

TEST(ContactStateTest, DebeziumCreateUpdatesDeleteAndTombstone) {
  const mapping::Config config = StateConfig();
  Stream stream(config);
  const auto records = testing::ReadFixtureStream("debezium.txt");
  ASSERT_EQ(records.size(), 5u);
  const mapping::Operation created = OnlyOperation(stream.Process(records[0]));
  EXPECT_EQ(created.contact_key, "dbId:77");
  EXPECT_EQ(created.contact.last_name, "Marsh");
  const mapping::Operation renamed = OnlyOperation(stream.Process(records[1]));
  EXPECT_EQ(renamed.contact.last_name, "Marsh-Reyes");
  const mapping::Operation stopped = OnlyOperation(stream.Process(records[2]));
  EXPECT_EQ(stopped.action, mapping::Action::kUpdateOnly);
  EXPECT_EQ(stopped.contact.status, "completed");
  const mapping::Operation removed = OnlyOperation(stream.Process(records[3]));
  EXPECT_EQ(removed.action, mapping::Action::kRemove);
  EXPECT_EQ(removed.contact.email, "cleo.marsh@example.com") << "from the state";
  ASSERT_TRUE(stream.States().contains("dbId:77"));
  ProcessedMessage tombstone = stream.Process(records[4]);
  EXPECT_EQ(tombstone.fate, MessageFate::kUnmatched) << tombstone.reason;
  EXPECT_FALSE(stream.States().contains("dbId:77"));
}

TEST(ContactStateTest, AReplayedMessageSeesTheStateBeforeIt) {
  const mapping::Config config = StateConfig();
  Stream stream(config);
  const auto records = testing::ReadFixtureStream("salesforce.txt");
  ASSERT_EQ(records.size(), 5u);
  stream.Process(records[0]);
  kafka::Message update;
  update.topic = "crm";
  update.offset = 1;
  update.key = records[1].key;
  update.payload = records[1].value;
  EXPECT_EQ(OnlyOperation(stream.ProcessAt(update)).contact.status, "disqualified");
  // The same offset again (the worker restarted before committing it): the
  // status still becomes disqualified, against the state before offset 1.
  const mapping::Operation again = OnlyOperation(stream.ProcessAt(update));
  EXPECT_EQ(again.action, mapping::Action::kUpdateOnly);
  EXPECT_EQ(again.contact.status, "disqualified");
  // A later, different message with the same status is no transition.
  update.offset = 2;
  ProcessedMessage later = stream.ProcessAt(update);
  ASSERT_EQ(later.fate, MessageFate::kOperations);
  EXPECT_EQ(later.operations.front().action, mapping::Action::kUpsert);
}

// The history keeps the state before every message that is not durably
// committed (a replay may still bring it), up to kMaxHistory, and drops what
// is: a contact's record does not carry snapshots nothing can ask for.
TEST(ContactStateTest, HistoryKeepsWhatIsNotCommittedYet) {
  const mapping::Config config = StateConfig();
  Stream stream(config);
  const auto records = testing::ReadFixtureStream("salesforce.txt");
  stream.Process(records[0]);
  kafka::Message update;
  update.topic = "crm";
  update.key = records[1].key;
  update.payload = records[1].value;
  auto history = [&] { return stream.States().begin()->second.history; };
  for (int64_t offset = 1; offset <= 40; ++offset) {
    update.offset = offset;
    stream.ProcessAt(update);
  }
  ASSERT_EQ(history().size(), mapping::ContactState::kMaxHistory) << "nothing committed: the cap";
  EXPECT_EQ(history().front().offset,
            41 - static_cast<int64_t>(mapping::ContactState::kMaxHistory));
  stream.SetReplayFloor(38);  // offsets up to 37 are committed
  update.offset = 41;
  stream.ProcessAt(update);
  ASSERT_EQ(history().size(), 4u);
  EXPECT_EQ(history().front().offset, 38);
  EXPECT_EQ(history().back().offset, 41);
}

TEST(ContactStateTest, MetadataGetsTheAllowListNotEveryCrmColumn) {
  const auto records = testing::ReadFixtureStream("salesforce.txt");
  ASSERT_EQ(records.size(), 5u);
  {
    const mapping::Config config = StateConfig();
    Stream stream(config);
    EXPECT_TRUE(OnlyOperation(stream.Process(records[0])).contact.metadata.empty());
  }
  const mapping::Config config =
      StateConfig(R"({"enabled": true, "metadataProperties": ["Company", "LeadSource"]})");
  Stream stream(config);
  EXPECT_EQ(
      OnlyOperation(stream.Process(records[0])).contact.metadata,
      (std::map<std::string, std::string>{{"Company", "Okafor Farms"}, {"LeadSource", "Web"}}));
}

TEST(ContactStateTest, AChangelogThatWouldBeTheInputTopicIsAConfigError) {
  try {
    StateConfig(R"({"enabled": true, "changelogTopic": "{topic}"})");
    FAIL() << "accepted";
  } catch (const mapping::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/state/changelogTopic"), std::string::npos) << e.what();
  }
  EXPECT_EQ(StateConfig(R"({"enabled": true, "changelogTopic": "{topic}-state-{topic}"})")
                .state.ChangelogTopic("crm"),
            "crm-state-crm");
}

TEST(ContactStateTest, TheRocksDbBackendNeedsADirectoryAndSaneSizes) {
  auto problem = [](const std::string& state) {
    try {
      StateConfig(state);
      return std::string("accepted");
    } catch (const mapping::ConfigError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_NE(problem(R"({"enabled": true, "backend": "rocksdb"})").find("/state/dir"),
            std::string::npos);
  EXPECT_NE(problem(R"({"enabled": true, "backend": "disk", "dir": "/x"})").find("/state/backend"),
            std::string::npos);
  EXPECT_NE(problem(R"({"enabled": true, "backend": "rocksdb", "dir": "/x",
                        "rocksdb": {"blockCacheMb": 0}})")
                .find("/state/rocksdb/blockCacheMb"),
            std::string::npos);
  EXPECT_NE(problem(R"({"enabled": true, "backend": "rocksdb", "dir": "/x",
                        "rocksdb": {"writeBufferMb": "big"}})")
                .find("/state/rocksdb/writeBufferMb"),
            std::string::npos);
  const mapping::StateConfig state =
      StateConfig(R"({"enabled": true, "backend": "rocksdb", "dir": "/var/lib/crmsync/state",
                      "rocksdb": {"blockCacheMb": 256, "writeBufferMb": 16}})")
          .state;
  EXPECT_EQ(state.backend, mapping::StateConfig::Backend::kRocksDb);
  EXPECT_EQ(state.dir, "/var/lib/crmsync/state");
  EXPECT_EQ(state.rocksdb_block_cache_mb, 256);
  EXPECT_EQ(state.rocksdb_write_buffer_mb, 16);
  EXPECT_EQ(StateConfig().state.backend, mapping::StateConfig::Backend::kMemory);
}

TEST(ContactStateTest, DryRunKeepsTheStateAcrossItsInput) {
  std::ifstream in(std::string(CRMSYNC_SOURCE_DIR) + "/examples/crmsync-state.json");
  std::stringstream config;
  config << in.rdbuf();
  std::string input;
  for (const testing::FixtureRecord& record : testing::ReadFixtureStream("salesforce.txt")) {
    input += record.key + "\t" + record.value + "\n";
  }
  std::ostringstream out, err;
  ASSERT_EQ(DryRunText(config.str(), input, DryRunOptions{}, out, err), 0) << err.str();
  std::vector<std::string> lines;
  std::istringstream printed(out.str());
  for (std::string line; std::getline(printed, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u) << out.str();
  // The status-only update: stop outreach, with the email from the state.
  EXPECT_NE(lines[1].find(R"("rule":"stop-outreach")"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(R"("status":"disqualified")"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("ben.okafor@example.com"), std::string::npos) << lines[1];
  EXPECT_NE(lines[4].find(R"("action":"remove")"), std::string::npos) << lines[4];
}

}  // namespace
}  // namespace crmsync::worker
