#include "mapping/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "providers/registry.h"

namespace crmsync::mapping {
namespace {

using testing::AllOf;
using testing::Contains;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::Not;
using testing::StartsWith;

constexpr char kCampaignPro[] = "3f9a1c52-6a1e-4c55-9a57-2b1d1f0e8a10";
constexpr char kCampaignTrial[] = "8c2d7e41-0b6f-4d3a-a1c9-5e7f9b2d4c63";
constexpr char kTestKey[] = "test-key-0123456789";

std::optional<std::string> TestEnv(std::string_view name) {
  if (name == "REPLIFY_API_KEY" || name == "WHIPPY_API_KEY" || name == "CAMPAIGNLARK_API_KEY" ||
      name == "REPLYIO_API_KEY") {
    return std::string(kTestKey);
  }
  if (name == "EMPTY_KEY") return std::string();
  if (name == "KAFKA_SASL_PASSWORD") return std::string("kafka-pw-from-env");
  return std::nullopt;
}

std::optional<std::string> NoEnv(std::string_view) { return std::nullopt; }

// Every key but Replify's.
std::optional<std::string> NoReplifyEnv(std::string_view name) {
  if (name == "REPLIFY_API_KEY") return std::nullopt;
  return TestEnv(name);
}

// The operations of one provider.
std::vector<Operation> Of(const std::vector<Operation>& operations, const std::string& provider) {
  std::vector<Operation> out;
  for (const Operation& op : operations) {
    if (op.provider == provider) out.push_back(op);
  }
  return out;
}

std::string SourceFile(const std::string& relative_path) {
  std::ifstream in(std::string(CRMSYNC_SOURCE_DIR) + "/" + relative_path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The same bytes the binaries embed (schemas/CMakeLists.txt).
std::string Example() { return SourceFile("examples/crmsync.json"); }

// The example config with edits applied: each pair is a JSON pointer and the
// JSON text to put there, or an empty text to remove the value.
std::string Edited(std::initializer_list<std::pair<const char*, const char*>> edits) {
  rapidjson::Document doc;
  doc.Parse(Example());
  for (const auto& [pointer, json] : edits) {
    if (std::string_view(json).empty()) {
      rapidjson::Pointer(pointer).Erase(doc);
      continue;
    }
    rapidjson::Document value(&doc.GetAllocator());
    value.Parse(json);
    EXPECT_FALSE(value.HasParseError()) << json;
    rapidjson::Pointer(pointer).Set(doc, value);
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return buffer.GetString();
}

// The problems LoadConfigFromString reports; fails the test if it accepts.
std::vector<std::string> Problems(const std::string& json, EnvLookup env = &TestEnv) {
  try {
    LoadConfigFromString(providers::Catalog(), json, env);
  } catch (const ConfigError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "config was accepted";
  return {};
}

// A file under the system temp dir, removed when the test ends.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& content)
      : path_(std::filesystem::temp_directory_path() /
              ("crmsync-config-test-" + std::to_string(getpid()) + "-" + name)) {
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(LoadConfigTest, ExampleFileLoads) {
  const Config config = LoadConfigFromString(providers::Catalog(), Example(), &TestEnv);
  EXPECT_EQ(config.kafka.bootstrap_servers, "127.0.0.1:9092");
  EXPECT_EQ(config.kafka.topics, std::vector<std::string>{"crm.contacts"});
  EXPECT_EQ(config.kafka.group_id, "crmsync");
  ASSERT_EQ(config.providers.count("replify"), 1u);
  const ProviderConfig& replify = config.providers.at("replify");
  EXPECT_EQ(replify.name, "replify");
  EXPECT_EQ(replify.base_url, "http://127.0.0.1:8080/replify/api/v1");
  EXPECT_EQ(replify.api_key, kTestKey);
  EXPECT_EQ(replify.max_batch, 100u);
  EXPECT_EQ(replify.max_in_flight, 4);
  ASSERT_EQ(config.rules.rules.size(), 5u);
  EXPECT_EQ(config.rules.rules[0].name, "stop-outreach");
  EXPECT_EQ(config.worker.metrics_listen, "127.0.0.1:9464");
}

TEST(LoadConfigTest, ExampleFileLoadsFromDisk) {
  const Config config = LoadConfigFromFile(
      providers::Catalog(), std::string(CRMSYNC_SOURCE_DIR) + "/examples/crmsync.json", &TestEnv);
  EXPECT_EQ(config.rules.rules.size(), 5u);
}

CrmEvent Contact(EventKind kind, const std::string& tier,
                 std::optional<std::string> status = std::nullopt) {
  CrmEvent event;
  event.external_id_key = "hubspotId";
  event.external_id_value = "7";
  event.kind = kind;
  event.status = std::move(status);
  event.contact.email = "ava@example.com";
  event.contact.properties = {{"tier", tier}};
  return event;
}

TEST(LoadConfigTest, ExampleRulesRouteTiersToTheirCampaigns) {
  const Rules rules = LoadConfigFromString(providers::Catalog(), Example(), &TestEnv).rules;

  for (const char* tier : {"pro", "enterprise"}) {
    const MapResult pro = Map(Contact(EventKind::kCreated, tier), rules);
    const std::vector<Operation> replify = Of(pro.operations, "replify");
    ASSERT_EQ(replify.size(), 1u) << tier;
    EXPECT_EQ(replify[0].target, kCampaignPro);
    EXPECT_EQ(replify[0].action, Action::kUpsert);
    ASSERT_EQ(Of(pro.operations, "replyio").size(), 1u);
    EXPECT_EQ(Of(pro.operations, "replyio")[0].action, Action::kEnroll);
    ASSERT_EQ(Of(pro.operations, "campaignlark").size(), 1u);
    EXPECT_EQ(Of(pro.operations, "campaignlark")[0].contact.metadata.at("tier"), tier);
    // The sample contact has no phone: Whippy's action is skipped, with a reason.
    EXPECT_TRUE(Of(pro.operations, "whippy").empty());
    EXPECT_THAT(pro.skipped, Contains(HasSubstr("no phone")));
  }
  const MapResult trial = Map(Contact(EventKind::kUpdated, "trial"), rules);
  ASSERT_EQ(Of(trial.operations, "replify").size(), 1u);
  EXPECT_EQ(Of(trial.operations, "replify")[0].target, kCampaignTrial);

  CrmEvent stopped = Contact(EventKind::kStatusChanged, "pro", "disqualified");
  stopped.contact.phone = "15551234567";
  const MapResult stop = Map(stopped, rules);
  EXPECT_EQ(stop.rule, "stop-outreach");
  const std::vector<Operation> replify = Of(stop.operations, "replify");
  ASSERT_EQ(replify.size(), 2u);
  for (const Operation& op : replify) {
    EXPECT_EQ(op.action, Action::kUpdateOnly);
    EXPECT_EQ(op.contact.status, "disqualified");
  }
  EXPECT_NE(replify[0].target, replify[1].target);
  ASSERT_EQ(Of(stop.operations, "whippy").size(), 1u);
  EXPECT_EQ(Of(stop.operations, "whippy")[0].action, Action::kRemove);
  ASSERT_EQ(Of(stop.operations, "campaignlark").size(), 1u);
  EXPECT_EQ(Of(stop.operations, "campaignlark")[0].contact.status, "UNSUBSCRIBED");
  EXPECT_EQ(Of(stop.operations, "campaignlark")[0].options_json, R"({"partialUpdate":true})");
  ASSERT_EQ(Of(stop.operations, "replyio").size(), 1u);
  EXPECT_EQ(Of(stop.operations, "replyio")[0].action, Action::kUnenroll);
  EXPECT_EQ(Of(stop.operations, "replyio")[0].target, "4242");

  const MapResult deleted = Map(Contact(EventKind::kDeleted, "pro"), rules);
  ASSERT_EQ(Of(deleted.operations, "replify").size(), 2u);
  EXPECT_EQ(deleted.operations[0].action, Action::kRemove);

  EXPECT_TRUE(Map(Contact(EventKind::kCreated, "free"), rules).operations.empty());
}

// The schema documents each default; the code applies its own. They must agree.
TEST(LoadConfigTest, OmittedSettingsTakeTheSchemaDefaults) {
  const Config config = LoadConfigFromString(providers::Catalog(), R"({
    "kafka": {"bootstrapServers": "b:9092", "topics": ["t"]},
    "providers": {"replify": {"apiKey": {"env": "REPLIFY_API_KEY"}}},
    "rules": [{"name": "all",
               "actions": [{"provider": "replify",
                            "campaignId": "3f9a1c52-6a1e-4c55-9a57-2b1d1f0e8a10"}]}]
  })",
                                             &TestEnv);
  rapidjson::Document schema;
  schema.Parse(SourceFile("schemas/config.schema.json"));
  ASSERT_FALSE(schema.HasParseError());
  auto default_of = [&schema](const std::string& pointer) -> const rapidjson::Value& {
    static const rapidjson::Value kMissing;
    const rapidjson::Value* node = rapidjson::Pointer(pointer.c_str()).Get(schema);
    if (node != nullptr && node->HasMember("$ref")) {
      node = rapidjson::Pointer((*node)["$ref"].GetString() + 1).Get(schema);
    }
    if (node == nullptr || !node->HasMember("default")) {
      ADD_FAILURE() << "no default at " << pointer;
      return kMissing;
    }
    return (*node)["default"];
  };
  const std::string kafka = "/properties/kafka/properties/";
  const std::string replify = "/properties/providers/properties/replify/properties/";
  const std::string action = "/properties/rules/items/properties/actions/items/properties/";
  const std::string worker = "/properties/worker/properties/";
  const std::string retry = "/definitions/retry/properties/";
  const std::string breaker = "/definitions/circuitBreaker/properties/";

  EXPECT_EQ(config.kafka.group_id, default_of(kafka + "groupId").GetString());
  EXPECT_TRUE(config.kafka.properties.empty());
  const ProviderConfig& provider = config.providers.at("replify");
  EXPECT_EQ(provider.base_url, default_of(replify + "baseUrl").GetString());
  EXPECT_EQ(provider.max_batch, default_of(replify + "maxBatch").GetUint64());
  EXPECT_EQ(provider.linger.count(), default_of(replify + "lingerMs").GetInt64());
  EXPECT_EQ(provider.max_in_flight, default_of(replify + "maxInFlight").GetInt());
  EXPECT_EQ(provider.request_timeout.count(), default_of(replify + "requestTimeoutMs").GetInt64());
  EXPECT_EQ(provider.coalesce_window.count(), default_of(replify + "coalesceWindowMs").GetInt64());
  EXPECT_EQ(provider.circuit_breaker.failure_threshold,
            default_of(breaker + "failureThreshold").GetInt());
  EXPECT_EQ(provider.circuit_breaker.open_for.count(), default_of(breaker + "openMs").GetInt64());
  EXPECT_EQ(provider.circuit_breaker.max_open_for.count(),
            default_of(breaker + "maxOpenMs").GetInt64());
  EXPECT_EQ(provider.retry, config.worker.retry);
  const RuleAction& first = config.rules.rules.at(0).actions.at(0);
  // The default action is the provider's first (the action's description).
  EXPECT_EQ(first.action, Action::kUpsert);
  EXPECT_EQ(first.send_external_id, default_of(action + "sendExternalId").GetBool());
  EXPECT_TRUE(first.metadata_from_properties);
  EXPECT_TRUE(config.rules.input.topic_formats.empty());
  EXPECT_FALSE(first.status.has_value());
  EXPECT_FALSE(first.routing.has_value());
  EXPECT_EQ(config.worker.drain_timeout.count(), default_of(worker + "drainTimeoutMs").GetInt64());
  EXPECT_EQ(config.worker.commit_interval.count(),
            default_of(worker + "commitIntervalMs").GetInt64());
  EXPECT_EQ(config.worker.max_pending_operations,
            default_of(worker + "maxPendingOperations").GetUint64());
  EXPECT_EQ(config.worker.retry.initial_backoff.count(),
            default_of(retry + "initialBackoffMs").GetInt64());
  EXPECT_EQ(config.worker.retry.max_backoff.count(), default_of(retry + "maxBackoffMs").GetInt64());
  EXPECT_EQ(config.worker.retry.max_retry_after.count(),
            default_of(retry + "maxRetryAfterMs").GetInt64());
  EXPECT_EQ(config.worker.retry.max_attempts, default_of(retry + "maxAttempts").GetInt());
  EXPECT_EQ(config.worker.retry.max_elapsed.count(), default_of(retry + "maxElapsedMs").GetInt64());
  EXPECT_EQ(config.worker.max_message_bytes, default_of(worker + "maxMessageBytes").GetUint64());
  EXPECT_EQ(config.worker.metrics_listen,
            default_of(worker + "metrics/properties/listen").GetString());
  const std::string state = "/properties/state/properties/";
  EXPECT_EQ(config.state.backend, StateConfig::Backend::kMemory);
  EXPECT_STREQ(default_of(state + "backend").GetString(), "memory");
  EXPECT_EQ(config.state.rocksdb_block_cache_mb,
            default_of(state + "rocksdb/properties/blockCacheMb").GetInt());
  EXPECT_EQ(config.state.rocksdb_write_buffer_mb,
            default_of(state + "rocksdb/properties/writeBufferMb").GetInt());
}

TEST(LoadConfigTest, RetryPolicyIsPerProviderOverTheWorkerDefaults) {
  const Config config = LoadConfigFromString(
      providers::Catalog(),
      Edited({{"/kafka/deadLetterTopic", R"("crm.dlq")"},
              {"/worker/retry", R"({"maxAttempts": 7})"},
              {"/providers/replify/retry", R"({"maxAttempts": 0, "onExhausted": "pause"})"}}),
      &TestEnv);
  EXPECT_EQ(config.worker.retry.max_attempts, 7);
  EXPECT_EQ(config.worker.retry.on_exhausted, OnExhausted::kDeadLetter);
  const ProviderConfig& replify = config.providers.at("replify");
  EXPECT_EQ(replify.retry.max_attempts, 0);
  EXPECT_EQ(replify.retry.on_exhausted, OnExhausted::kPause);
  EXPECT_EQ(replify.retry.initial_backoff, config.worker.retry.initial_backoff);
}

TEST(LoadConfigTest, ExhaustedRetriesPauseWithoutADeadLetterTopic) {
  const Config config = LoadConfigFromString(providers::Catalog(), Edited({}), &TestEnv);
  EXPECT_TRUE(config.kafka.dead_letter_topic.empty());
  EXPECT_EQ(config.worker.retry.on_exhausted, OnExhausted::kPause);
  EXPECT_THAT(Problems(Edited({{"/worker/retry", R"({"onExhausted": "deadLetter"})"}})),
              Contains(AllOf(StartsWith("/worker/retry/onExhausted: "),
                             HasSubstr("kafka.deadLetterTopic"))));
  EXPECT_THAT(Problems(Edited({{"/worker/retry", R"({"onExhausted": "drop"})"}})),
              Contains(StartsWith("/worker/retry/onExhausted: ")));
}

TEST(LoadConfigTest, UnreadableCaBundleIsReported) {
  EXPECT_THAT(Problems(Edited({{"/worker/caBundle", R"("/nonexistent/ca.pem")"}})),
              Contains(AllOf(StartsWith("/worker/caBundle: "), HasSubstr("cannot read"))));
}

TEST(LoadConfigTest, GroupInstanceIdIsRead) {
  const Config config = LoadConfigFromString(
      providers::Catalog(), Edited({{"/kafka/groupInstanceId", R"("crmsync-0")"}}), &TestEnv);
  EXPECT_EQ(config.kafka.group_instance_id, "crmsync-0");
}

TEST(LoadConfigTest, UnknownRootKeyIsReportedAtItsPath) {
  EXPECT_THAT(Problems(Edited({{"/kafkaa", "{}"}})),
              Contains(AllOf(StartsWith("/kafkaa: "), HasSubstr("not allowed"))));
}

TEST(LoadConfigTest, MissingRulesIsReported) {
  EXPECT_THAT(Problems(Edited({{"/rules", ""}})),
              Contains("/rules: required property 'rules' is missing"));
}

TEST(LoadConfigTest, EmptyRulesIsReported) {
  EXPECT_THAT(Problems(Edited({{"/rules", "[]"}})),
              Contains(AllOf(StartsWith("/rules: "), HasSubstr("at least 1 item"))));
}

TEST(LoadConfigTest, CampaignIdMustBeAUuid) {
  EXPECT_THAT(Problems(Edited({{"/rules/1/actions/0/campaignId", "\"summer-campaign\""}})),
              Contains("/rules/1/actions/0/campaignId: 'summer-campaign' is not a UUID "
                       "(8-4-4-4-12 hex digits)"));
  EXPECT_THAT(Problems(Edited({{"/rules/1/actions/0/campaignId", ""}})),
              Contains("/rules/1/actions/0/campaignId: campaignId is required for provider "
                       "'replify'"));
}

TEST(LoadConfigTest, UnknownProviderInActionIsReported) {
  EXPECT_THAT(Problems(Edited({{"/rules/2/actions/0/provider", "\"mailchimp\""}})),
              Contains("/rules/2/actions/0/provider: unknown provider 'mailchimp' (known: "
                       "replify, whippy, campaignlark, replyio)"));
}

TEST(LoadConfigTest, ProviderMustBeConfiguredToBeUsed) {
  EXPECT_THAT(Problems(Edited({{"/providers/replify", ""}})),
              Contains("/rules/0/actions/0/provider: provider 'replify' is not configured under "
                       "/providers"));
}

TEST(LoadConfigTest, BadActionNameIsReported) {
  const std::vector<std::string> problems =
      Problems(Edited({{"/rules/2/actions/0/action", "\"delete\""}}));
  EXPECT_THAT(problems, testing::ElementsAre(AllOf(StartsWith("/rules/2/actions/0/action: "),
                                                   HasSubstr(R"("updateOnly", "remove", "add")"),
                                                   HasSubstr(R"(got "delete")"))));
  EXPECT_THAT(Problems(Edited({{"/rules/2/actions/0/action", "\"enroll\""}})),
              testing::ElementsAre("/rules/2/actions/0/action: 'enroll' is not an action of "
                                   "provider 'replify' (allowed: upsert, updateOnly, remove, "
                                   "stopOutreach)"));
}

TEST(LoadConfigTest, RoutingNeedsBothKeyAndValue) {
  EXPECT_THAT(Problems(Edited({{"/rules/2/actions/0/externalIdKey", "\"hubspotId\""}})),
              Contains(AllOf(StartsWith("/rules/2/actions/0/externalIdValue: "),
                             HasSubstr("'externalIdKey'"))));
  const Config config =
      LoadConfigFromString(providers::Catalog(),
                           Edited({{"/rules/2/actions/0/externalIdKey", "\"siteKey\""},
                                   {"/rules/2/actions/0/externalIdValue", "\"site-a\""}}),
                           &TestEnv);
  EXPECT_EQ(config.rules.rules[2].actions[0].routing, (Routing{"siteKey", "site-a"}));
}

TEST(LoadConfigTest, MissingEnvironmentVariableIsNamed) {
  EXPECT_THAT(Problems(Example(), &NoEnv),
              Contains("/providers/replify/apiKey: environment variable 'REPLIFY_API_KEY' is not "
                       "set"));
  EXPECT_THAT(Problems(Edited({{"/providers/replify/apiKey", R"({"env": "EMPTY_KEY"})"}})),
              Contains("/providers/replify/apiKey: the API key from environment variable "
                       "'EMPTY_KEY' is empty"));
}

TEST(LoadConfigTest, ApiKeyIsReadFromAFileAndTrimmed) {
  TempFile key("key", "file-key-42\n  \n");
  const std::string source = R"({"file": ")" + key.path() + R"("})";
  const Config config = LoadConfigFromString(
      providers::Catalog(), Edited({{"/providers/replify/apiKey", source.c_str()}}), &NoReplifyEnv);
  EXPECT_EQ(config.providers.at("replify").api_key, "file-key-42");
}

TEST(LoadConfigTest, UnreadableOrEmptyKeyFileIsNamed) {
  const std::string missing = R"({"file": "/nonexistent/crmsync/key"})";
  EXPECT_THAT(Problems(Edited({{"/providers/replify/apiKey", missing.c_str()}})),
              Contains(StartsWith("/providers/replify/apiKey: cannot read API key file "
                                  "'/nonexistent/crmsync/key': ")));
  TempFile empty("empty", "\n");
  const std::string source = R"({"file": ")" + empty.path() + R"("})";
  EXPECT_THAT(
      Problems(Edited({{"/providers/replify/apiKey", source.c_str()}})),
      Contains("/providers/replify/apiKey: the API key from file '" + empty.path() + "' is empty"));
}

TEST(LoadConfigTest, KeyWrittenInTheConfigIsRejectedWithoutEchoingIt) {
  for (const char* inline_key : {R"("sk-live-secret")", R"({"value": "sk-live-secret"})",
                                 R"({"env": "REPLIFY_API_KEY", "value": "sk-live-secret"})"}) {
    try {
      LoadConfigFromString(providers::Catalog(),
                           Edited({{"/providers/replify/apiKey", inline_key}}), &TestEnv);
      ADD_FAILURE() << "accepted " << inline_key;
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.problems(), Contains(StartsWith("/providers/replify/apiKey: ")));
      EXPECT_THAT(e.what(), Not(HasSubstr("sk-live-secret")));
    }
  }
}

TEST(LoadConfigTest, KeyWithControlCharactersIsRejectedWithoutEchoingIt) {
  TempFile key("ctl", "abc\r\nX-Injected: 1\n");
  const std::string source = R"({"file": ")" + key.path() + R"("})";
  try {
    LoadConfigFromString(providers::Catalog(),
                         Edited({{"/providers/replify/apiKey", source.c_str()}}), &NoEnv);
    ADD_FAILURE() << "accepted a key with CR/LF";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.problems(), Contains(HasSubstr("contains control characters")));
    EXPECT_THAT(e.what(), Not(HasSubstr("X-Injected")));
  }
}

TEST(LoadConfigTest, BaseUrlMustBeHttpOrHttps) {
  EXPECT_THAT(Problems(Edited({{"/providers/replify/baseUrl", "\"ftp://example.com\""}})),
              Contains("/providers/replify/baseUrl: 'ftp://example.com' must start with http:// "
                       "or https:// and name a host"));
  const Config config = LoadConfigFromString(
      providers::Catalog(),
      Edited({{"/providers/replify/baseUrl", "\"https://api.example.com/v1/\""}}), &TestEnv);
  EXPECT_EQ(config.providers.at("replify").base_url, "https://api.example.com/v1");
}

TEST(LoadConfigTest, PlainHttpIsRefusedExceptForLoopbackOrAnOptIn) {
  for (const char* url :
       {"http://api.example.com/v1", "http://10.0.0.7:8080", "http://127.example.com/v1",
        "http://user@192.168.1.2/x", "http://128.0.0.1"}) {
    const std::string json = "\"" + std::string(url) + "\"";
    EXPECT_THAT(Problems(Edited({{"/providers/replify/baseUrl", json.c_str()}})),
                ElementsAre(StartsWith("/providers/replify/baseUrl: '" + std::string(url) +
                                       "' is plain http: the API key would travel in clear text")))
        << url;
  }
  for (const char* url :
       {"\"http://127.0.0.1:8080/replify\"", "\"http://127.1.2.3\"", "\"http://localhost:9/x\"",
        "\"http://LOCALHOST\"", "\"http://[::1]:8080/v1\"", "\"https://api.example.com/v1\""}) {
    EXPECT_NO_THROW(LoadConfigFromString(providers::Catalog(),
                                         Edited({{"/providers/replify/baseUrl", url}}), &TestEnv))
        << url;
  }
  const Config config = LoadConfigFromString(
      providers::Catalog(),
      Edited({{"/providers/whippy/baseUrl", "\"http://whippy.internal:8080/v1\""},
              {"/providers/whippy/allowInsecureHttp", "true"}}),
      &TestEnv);
  EXPECT_EQ(config.providers.at("whippy").base_url, "http://whippy.internal:8080/v1");
  EXPECT_TRUE(config.providers.at("whippy").allow_insecure_http);
  EXPECT_THAT(Problems(Edited({{"/providers/whippy/allowInsecureHttp", "\"yes\""}})),
              ElementsAre(StartsWith("/providers/whippy/allowInsecureHttp: ")));
}

TEST(LoadConfigTest, KafkaPropertiesTakeSecretsFromTheEnvironmentOrAFile) {
  TempFile password("kafka-pw", "kafka-pw-from-file\n");
  const std::string properties = R"({"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
      "sasl.username": {"env": "KAFKA_SASL_PASSWORD"},
      "sasl.password": {"file": ")" +
                                 password.path() + R"("}})";
  const Config config = LoadConfigFromString(
      providers::Catalog(), Edited({{"/kafka/properties", properties.c_str()}}), &TestEnv);
  EXPECT_EQ(config.kafka.properties.at("sasl.username"), "kafka-pw-from-env");
  EXPECT_EQ(config.kafka.properties.at("sasl.password"), "kafka-pw-from-file");
  EXPECT_EQ(config.kafka.properties.at("security.protocol"), "SASL_SSL");

  EXPECT_THAT(
      Problems(Edited({{"/kafka/properties", R"({"sasl.password": {"env": "UNSET_PW"}})"}})),
      ElementsAre("/kafka/properties/sasl.password: environment variable 'UNSET_PW' is not set"));
  EXPECT_THAT(Problems(Edited({{"/kafka/properties", R"({"sasl.password": {"value": "x"}})"}})),
              Contains(StartsWith("/kafka/properties/sasl.password")));
}

TEST(LoadConfigTest, AnInvalidSecretKafkaValueIsNeverEchoed) {
  try {
    LoadConfigFromString(
        providers::Catalog(),
        Edited({{"/kafka/properties", R"({"security.protocol": {"env": "KAFKA_SASL_PASSWORD"}})"}}),
        &TestEnv);
    ADD_FAILURE() << "accepted an invalid security.protocol";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.problems(),
                ElementsAre("/kafka/properties/security.protocol: the value from environment "
                            "variable 'KAFKA_SASL_PASSWORD' is not valid for librdkafka property "
                            "'security.protocol'"));
    EXPECT_THAT(e.what(), Not(HasSubstr("kafka-pw-from-env")));
  }
}

TEST(LoadConfigTest, AnEmptySecretNameIsReportedOnce) {
  for (const char* source : {R"({"env": ""})", R"({"file": ""})"}) {
    EXPECT_THAT(Problems(Edited({{"/providers/whippy/apiKey", source}})),
                ElementsAre(StartsWith("/providers/whippy/apiKey: property 'apiKey' must be "
                                       "exactly one of")))
        << source;
  }
}

TEST(LoadConfigTest, AKeyFromAFileFollowsTheFile) {
  TempFile key("rotating", "first-key\n");
  const std::string source = R"({"file": ")" + key.path() + R"("})";
  const Config config = LoadConfigFromString(
      providers::Catalog(), Edited({{"/providers/replify/apiKey", source.c_str()}}), &NoReplifyEnv);
  const std::shared_ptr<const SecretSource> api_key = ApiKeySource(config.providers.at("replify"));
  EXPECT_EQ(api_key->Get(), "first-key");
  { std::ofstream(key.path(), std::ios::binary | std::ios::trunc) << "second-key-longer\n"; }
  api_key->Invalidate();
  EXPECT_EQ(api_key->Get(), "second-key-longer");
  // An environment key is fixed.
  EXPECT_FALSE(ApiKeySource(config.providers.at("whippy"))->FromFile());
  EXPECT_EQ(ApiKeySource(config.providers.at("whippy"))->Get(), kTestKey);
}

TEST(LoadConfigTest, LimitsAreRangeChecked) {
  const std::vector<std::string> problems =
      Problems(Edited({{"/providers/replify/maxBatch", "0"},
                       {"/providers/replify/maxInFlight", "257"},
                       {"/kafka/topics", "[]"}}));
  EXPECT_THAT(problems, Contains("/providers/replify/maxBatch: property 'maxBatch' must be >= 1 "
                                 "(minimum)"));
  EXPECT_THAT(problems, Contains("/providers/replify/maxInFlight: property 'maxInFlight' must be "
                                 "<= 256 (maximum)"));
  EXPECT_THAT(problems, Contains(StartsWith("/kafka/topics: ")));
  EXPECT_THAT(Problems(Edited({{"/providers/replify/maxBatch", "1001"}})),
              Contains(StartsWith("/providers/replify/maxBatch: ")));
}

TEST(LoadConfigTest, MultipleErrorsAreReportedTogether) {
  try {
    LoadConfigFromString(providers::Catalog(),
                         Edited({{"/color", "\"blue\""},
                                 {"/kafka/topics", "\"crm.contacts\""},
                                 {"/providers/replify/baseUrl", "\"api.example.com\""},
                                 {"/rules/0/actions/1/campaignId", "\"nope\""},
                                 {"/rules/1/actions/0/action", "\"erase\""},
                                 {"/rules/3/actions/0/action", "\"erase\""},
                                 {"/worker/drainTimeoutMs", "\"10s\""}}),
                         &NoReplifyEnv);
    FAIL() << "config was accepted";
  } catch (const ConfigError& e) {
    const std::vector<std::string> expected_paths = {
        "/color: ",
        "/kafka/topics: ",
        "/providers/replify/baseUrl: ",
        "/providers/replify/apiKey: ",
        "/rules/0/actions/1/campaignId: ",
        "/rules/1/actions/0/action: ",
        "/rules/3/actions/0/action: ",
        "/worker/drainTimeoutMs: ",
    };
    for (const std::string& path : expected_paths) {
      EXPECT_THAT(e.problems(), Contains(StartsWith(path)));
    }
    EXPECT_EQ(e.problems().size(), expected_paths.size());
    std::string joined;
    for (const std::string& problem : e.problems()) {
      joined += (joined.empty() ? "" : "\n") + problem;
    }
    EXPECT_EQ(std::string(e.what()), joined);
  }
}

TEST(LoadConfigTest, InvalidJsonReportsLineAndColumn) {
  EXPECT_THAT(Problems("{\n  \"kafka\": ,\n}"),
              testing::ElementsAre("/: invalid JSON at line 2 column 12: Invalid value"));
  EXPECT_THAT(Problems(""),
              testing::ElementsAre("/: invalid JSON at line 1 column 1: The document is empty"));
}

TEST(LoadConfigTest, UnreadableConfigFileIsNamed) {
  try {
    LoadConfigFromFile(providers::Catalog(), "/nonexistent/crmsync.json", &TestEnv);
    FAIL() << "missing file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.problems(), testing::ElementsAre(StartsWith(
                                  "/: cannot read config file '/nonexistent/crmsync.json': ")));
  }
}

TEST(LoadConfigTest, KafkaPropertiesPassThroughAsText) {
  const Config config =
      LoadConfigFromString(providers::Catalog(),
                           Edited({{"/kafka/properties",
                                    R"({"security.protocol": "SASL_SSL", "session.timeout.ms": 6000,
                   "enable.ssl.certificate.verification": true})"}}),
                           &TestEnv);
  EXPECT_EQ(config.kafka.properties,
            (std::map<std::string, std::string>{{"security.protocol", "SASL_SSL"},
                                                {"session.timeout.ms", "6000"},
                                                {"enable.ssl.certificate.verification", "true"}}));
}

}  // namespace
}  // namespace crmsync::mapping
