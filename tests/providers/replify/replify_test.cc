#include "providers/replify/replify.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "tests/support/provider_checks.h"
#include "tests/support/provider_fixture.h"

namespace crmsync::providers::replify {
namespace {

using testing::Header;

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kCampaign[] = "6f1c2b8e-3d4a-4c5b-9e7f-0a1b2c3d4e5f";
constexpr char kKey[] = "secret-key-123";

mapping::ProviderConfig Config() {
  return testing::ProviderConfigFor("replify", "https://api.heylibby.com/api/v1", kKey, 250);
}

mapping::Contact Person(const std::string& email, const std::string& phone) {
  mapping::Contact contact;
  contact.email = email;
  contact.phone = phone;
  return contact;
}

struct Fixture : testing::BatchFixture {
  explicit Fixture(std::vector<mapping::Contact> contacts,
                   mapping::Action action = mapping::Action::kUpsert)
      : BatchFixture("replify", kCampaign, std::move(contacts), action) {}
};

rapidjson::Document ParseBody(const HttpRequest& request) {
  rapidjson::Document doc;
  doc.Parse(request.body.c_str());
  EXPECT_FALSE(doc.HasParseError()) << request.body;
  return doc;
}

HttpResponse Response(long status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.content_type = "application/json";
  return response;
}

// Names every violation of the request schema, or "" when the body is valid.
std::string SchemaViolation(const std::string& body) {
  return testing::RequestSchemaViolation("replify", body);
}

TEST(ReplifyProvider, NameAndMaxBatchComeFromConfig) {
  const ReplifyProvider provider(Config());
  EXPECT_EQ(provider.Name(), "replify");
  EXPECT_EQ(provider.MaxBatch(), 250u);
}

TEST(ReplifyProvider, BuildsPostToCampaignContactsWithHeaders) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("ava@example.com", "15551234567")});
  const HttpRequest request = provider.BuildRequest(f.batch);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url,
            std::string("https://api.heylibby.com/api/v1/campaigns/") + kCampaign + "/contacts");
  EXPECT_EQ(Header(request, "Content-Type"), "application/json");
  EXPECT_EQ(Header(request, "Accept"), "application/json");
  EXPECT_EQ(Header(request, "x-api-key"), kKey);
}

TEST(ReplifyProvider, IgnoresTrailingSlashOfBaseUrl) {
  mapping::ProviderConfig config = Config();
  config.base_url = "http://127.0.0.1:8080/replify/api/v1/";
  const ReplifyProvider provider(config);
  Fixture f({Person("a@example.com", "1")});
  EXPECT_EQ(
      provider.BuildRequest(f.batch).url,
      std::string("http://127.0.0.1:8080/replify/api/v1/campaigns/") + kCampaign + "/contacts");
}

TEST(ReplifyProvider, PercentEncodesCampaignId) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1")});
  f.batch.target = "a b/c?d#e%f~g.h_i-j";
  EXPECT_EQ(provider.BuildRequest(f.batch).url,
            "https://api.heylibby.com/api/v1/campaigns/a%20b%2Fc%3Fd%23e%25f~g.h_i-j/contacts");
}

TEST(ReplifyProvider, SendsEveryContactField) {
  const ReplifyProvider provider(Config());
  mapping::Contact contact = Person("ava@example.com", "15551234567");
  contact.first_name = "Ava";
  contact.last_name = "Lopez";
  contact.status = "active";
  contact.metadata = {{"source", "web_form"}, {"tier", "trial"}};
  contact.external_id_key = "hubspotId";
  contact.external_id_value = "1234";
  Fixture f({contact});
  const rapidjson::Document doc = ParseBody(provider.BuildRequest(f.batch));
  ASSERT_TRUE(doc["contacts"].IsArray());
  ASSERT_EQ(doc["contacts"].Size(), 1u);
  const auto& c = doc["contacts"][0];
  EXPECT_STREQ(c["firstName"].GetString(), "Ava");
  EXPECT_STREQ(c["lastName"].GetString(), "Lopez");
  EXPECT_STREQ(c["email"].GetString(), "ava@example.com");
  EXPECT_STREQ(c["phone"].GetString(), "15551234567");
  EXPECT_STREQ(c["status"].GetString(), "active");
  EXPECT_STREQ(c["contactMetadata"]["source"].GetString(), "web_form");
  EXPECT_STREQ(c["contactMetadata"]["tier"].GetString(), "trial");
  EXPECT_STREQ(c["externalIdKey"].GetString(), "hubspotId");
  EXPECT_STREQ(c["externalIdValue"].GetString(), "1234");
  EXPECT_EQ(c.MemberCount(), 8u);
}

TEST(ReplifyProvider, OmitsAbsentFieldsAndEmptyMetadata) {
  const ReplifyProvider provider(Config());
  mapping::Contact contact;
  contact.email = "only@example.com";
  Fixture f({contact});
  const rapidjson::Document doc = ParseBody(provider.BuildRequest(f.batch));
  const auto& c = doc["contacts"][0];
  EXPECT_EQ(c.MemberCount(), 1u);
  EXPECT_STREQ(c["email"].GetString(), "only@example.com");
  EXPECT_FALSE(c.HasMember("contactMetadata"));
  EXPECT_FALSE(doc.HasMember("externalIdKey"));
  EXPECT_FALSE(doc.HasMember("externalIdValue"));
}

TEST(ReplifyProvider, PutsRoutingAtRequestRoot) {
  const ReplifyProvider provider(Config());
  mapping::Contact contact = Person("a@example.com", "1");
  contact.external_id_key = "hubspotId";
  contact.external_id_value = "77";
  Fixture f({contact});
  f.batch.routing = mapping::Routing{"siteKey", "site-a"};
  const rapidjson::Document doc = ParseBody(provider.BuildRequest(f.batch));
  EXPECT_STREQ(doc["externalIdKey"].GetString(), "siteKey");
  EXPECT_STREQ(doc["externalIdValue"].GetString(), "site-a");
  EXPECT_STREQ(doc["contacts"][0]["externalIdKey"].GetString(), "hubspotId");
  EXPECT_STREQ(doc["contacts"][0]["externalIdValue"].GetString(), "77");
}

TEST(ReplifyProvider, SendsEveryActionByItsWireName) {
  const ReplifyProvider provider(Config());
  const std::pair<mapping::Action, const char*> cases[] = {
      {mapping::Action::kUpsert, "upsert"},
      {mapping::Action::kUpdateOnly, "updateOnly"},
      {mapping::Action::kRemove, "remove"},
  };
  for (const auto& [action, name] : cases) {
    Fixture f({Person("a@example.com", "1")}, action);
    const rapidjson::Document doc = ParseBody(provider.BuildRequest(f.batch));
    ASSERT_TRUE(doc.HasMember("action")) << name;
    EXPECT_STREQ(doc["action"].GetString(), name);
  }
}

TEST(ReplifyProvider, RemovePayloadCarriesIdentityOfEveryContact) {
  const ReplifyProvider provider(Config());
  mapping::Contact by_phone;
  by_phone.phone = "15550000002";
  Fixture f({Person("gone@example.com", "15550000001"), by_phone}, mapping::Action::kRemove);
  const rapidjson::Document doc = ParseBody(provider.BuildRequest(f.batch));
  EXPECT_STREQ(doc["action"].GetString(), "remove");
  ASSERT_EQ(doc["contacts"].Size(), 2u);
  EXPECT_STREQ(doc["contacts"][0]["email"].GetString(), "gone@example.com");
  EXPECT_STREQ(doc["contacts"][1]["phone"].GetString(), "15550000002");
  EXPECT_FALSE(doc["contacts"][1].HasMember("email"));
}

TEST(ReplifyProvider, KeepsItemOrderAndEscapesText) {
  const ReplifyProvider provider(Config());
  mapping::Contact tricky = Person("q@example.com", "2");
  tricky.first_name = "Zoë \"Q\"\n\\";
  Fixture f({Person("p@example.com", "1"), tricky, Person("r@example.com", "3")});
  const rapidjson::Document doc = ParseBody(provider.BuildRequest(f.batch));
  ASSERT_EQ(doc["contacts"].Size(), 3u);
  EXPECT_STREQ(doc["contacts"][0]["email"].GetString(), "p@example.com");
  EXPECT_STREQ(doc["contacts"][1]["firstName"].GetString(), "Zoë \"Q\"\n\\");
  EXPECT_STREQ(doc["contacts"][2]["email"].GetString(), "r@example.com");
}

// The body is written directly; it must stay byte for byte what RapidJSON's
// Writer writes for the same contacts, every byte value included.
TEST(ReplifyProvider, BodyIsByteForByteWhatJsonWriterWrites) {
  const ReplifyProvider provider(Config());
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte += static_cast<char>(c);
  mapping::Contact full = Person("Ava@Example.com", "+1 (555) 123-4567");
  full.first_name = every_byte;
  full.last_name = "Zoë \"Q\"\n\\/";
  full.status = "active";
  full.metadata = {{"a\tkey", every_byte}, {"tier", "trial"}};
  full.external_id_key = "hubspotId";
  full.external_id_value = "1234";
  mapping::Contact sparse;
  sparse.phone = "2";
  mapping::Contact only_metadata;
  only_metadata.metadata = {{"k", "v"}};
  Fixture f({full, sparse, only_metadata, mapping::Contact{}});
  f.batch.routing = mapping::Routing{"siteKey", "site\x01"};
  for (const mapping::Action action :
       {mapping::Action::kUpsert, mapping::Action::kUpdateOnly, mapping::Action::kRemove}) {
    f.batch.action = action;
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    const auto string = [&w](const std::string& text) {
      w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    };
    const auto optional = [&](const char* key, const std::optional<std::string>& value) {
      if (!value) return;
      w.Key(key);
      string(*value);
    };
    w.StartObject();
    w.Key("contacts");
    w.StartArray();
    for (const mapping::Operation* item : f.batch.items) {
      const mapping::Contact& c = item->contact;
      w.StartObject();
      optional("firstName", c.first_name);
      optional("lastName", c.last_name);
      optional("email", c.email);
      optional("phone", c.phone);
      optional("status", c.status);
      if (!c.metadata.empty()) {
        w.Key("contactMetadata");
        w.StartObject();
        for (const auto& [name, value] : c.metadata) {
          w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
          string(value);
        }
        w.EndObject();
      }
      optional("externalIdKey", c.external_id_key);
      optional("externalIdValue", c.external_id_value);
      w.EndObject();
    }
    w.EndArray();
    w.Key("action");
    w.String(action == mapping::Action::kUpsert       ? "upsert"
             : action == mapping::Action::kUpdateOnly ? "updateOnly"
                                                      : "remove");
    w.Key("externalIdKey");
    string(f.batch.routing->external_id_key);
    w.Key("externalIdValue");
    string(f.batch.routing->external_id_value);
    w.EndObject();
    EXPECT_EQ(provider.BuildRequest(f.batch).body,
              std::string(buffer.GetString(), buffer.GetSize()));
  }
}

TEST(ReplifyProvider, BuiltBodiesValidateAgainstRequestSchema) {
  const ReplifyProvider provider(Config());
  mapping::Contact full = Person("ava@example.com", "15551234567");
  full.first_name = "Ava";
  full.last_name = "Lopez";
  full.status = "completed";
  full.metadata = {{"tier", "pro"}};
  full.external_id_key = "hubspotId";
  full.external_id_value = "1";
  mapping::Contact phone_only;
  phone_only.phone = "15550000000";

  Fixture upsert({full, phone_only});
  Fixture routed({full}, mapping::Action::kUpdateOnly);
  routed.batch.routing = mapping::Routing{"hubspotId", "site-a"};
  Fixture remove({Person("x@example.com", "1"), phone_only}, mapping::Action::kRemove);
  for (const Batch* batch : {&upsert.batch, &routed.batch, &remove.batch}) {
    EXPECT_EQ(SchemaViolation(provider.BuildRequest(*batch).body), "");
  }
}

TEST(ReplifyProvider, RequestSchemaRejectsRemoveWithoutIdentity) {
  // The schema is strict enough to catch what Replify documents as invalid.
  EXPECT_NE(SchemaViolation(R"({"contacts":[{"firstName":"A"}],"action":"remove"})"), "");
  EXPECT_NE(SchemaViolation(R"({"contacts":[],"action":"upsert"})"), "");
  EXPECT_NE(SchemaViolation(R"({"contacts":[{"email":"a"}],"action":"delete"})"), "");
  EXPECT_NE(SchemaViolation(R"({"contacts":[{"email":"a"}],"externalIdKey":"k"})"), "");
}

TEST(ReplifyProvider, AllSuccessIsDone) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1"), Person("b@example.com", "2")});
  const auto outcomes = provider.Classify(
      f.batch, Response(200, R"({"message":"Processed 2 contacts successfully","success":[
        {"phone":"1","email":"a@example.com","action":"created"},
        {"phone":"2","email":"b@example.com","action":"updated"}],"errors":[]})"));
  ASSERT_EQ(outcomes.size(), 2u);
  for (const Outcome& outcome : outcomes) {
    EXPECT_EQ(outcome.kind, OutcomeKind::kDone);
    EXPECT_EQ(outcome.http_status, 200);
  }
}

TEST(ReplifyProvider, ErrorEntriesRejectTheirItemsAndTheRestAreDone) {
  const ReplifyProvider provider(Config());
  mapping::Contact by_phone;
  by_phone.phone = "15550000003";
  mapping::Contact with_reason = Person("d@example.com", "4");
  Fixture f({Person("a@example.com", "1"), Person("b@example.com", "2"), by_phone, with_reason,
             Person("e@example.com", "5")});
  const auto outcomes = provider.Classify(
      f.batch, Response(200, R"({"message":"Processed 2 contacts successfully, 3 failed",
        "success":[{"phone":"1","email":"a@example.com","action":"created"}],
        "errors":[{"email":"b@example.com","phone":"2","error":"invalid phone"},
                  {"email":null,"phone":"15550000003","message":"blocked number"},
                  {"email":"d@example.com","reason":"duplicate"}]})"));
  ASSERT_EQ(outcomes.size(), 5u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason, "replify rejected contact: invalid phone");
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].reason, "replify rejected contact: blocked number");
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[3].reason, "replify rejected contact: duplicate");
  // Not named at all (e.g. a completed contact that upsert skips): done.
  EXPECT_EQ(outcomes[4].kind, OutcomeKind::kDone);
  for (const Outcome& outcome : outcomes) EXPECT_EQ(outcome.http_status, 200);
}

TEST(ReplifyProvider, DuplicateEmailsMatchByPhoneThenInOrder) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("same@example.com", "1"), Person("same@example.com", "2"),
             Person("twin@example.com", "9"), Person("twin@example.com", "9")});
  const auto outcomes = provider.Classify(f.batch, Response(200, R"({"success":[
          {"phone":"1","email":"same@example.com","action":"updated"},
          {"phone":"9","email":"twin@example.com","action":"updated"}],
        "errors":[{"email":"same@example.com","phone":"2","error":"bad phone"},
                  {"email":"twin@example.com","phone":"9","error":"conflict"}]})"));
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason, "replify rejected contact: bad phone");
  // Identical duplicates: each entry consumes one item, successes first.
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[3].reason, "replify rejected contact: conflict");
}

TEST(ReplifyProvider, ErrorEntryWithoutIdentityRejectsContactWithoutIdentity) {
  const ReplifyProvider provider(Config());
  mapping::Contact nobody;
  nobody.first_name = "Nobody";
  Fixture f({Person("a@example.com", "1"), nobody});
  const auto outcomes = provider.Classify(
      f.batch, Response(200, R"({"success":[{"phone":"1","email":"a@example.com"}],
        "errors":[{"email":null,"phone":null,"error":"contact requires email or phone"}]})"));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason, "replify rejected contact: contact requires email or phone");
}

TEST(ReplifyProvider, EntriesEchoingNormalisedIdentitiesMatchTheirItems) {
  // Replify answers with a lower-case email and an E.164 phone; the request
  // carried the CRM's spelling. Before, the errors matched nothing and the
  // rejected contacts counted as delivered.
  const ReplifyProvider provider(Config());
  mapping::Contact phone_only;
  phone_only.phone = "(555) 000-0003";
  Fixture f({Person("Ava@Example.com", "+1 555 123 4567"), Person("BO@example.com", "15550000002"),
             phone_only, Person("dee@example.com", "5550000004")});
  const auto outcomes = provider.Classify(f.batch, Response(200, R"({"success":[
          {"phone":"15551234567","email":"ava@example.com","action":"created"},
          {"phone":"+15550000004","email":"dee@example.com","action":"created"}],
        "errors":[{"email":"bo@example.com","phone":"+15550000002","error":"invalid phone"},
                  {"email":null,"phone":"+15550000003","error":"blocked number"}]})"));
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason, "replify rejected contact: invalid phone");
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].reason, "replify rejected contact: blocked number");
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kDone);
}

TEST(ReplifyProvider, ErrorNamingNoItemRetriesEveryUnansweredItem) {
  // The error belongs to one of the items the success list does not name,
  // and which one cannot be told: those are retried, not counted as done.
  const ReplifyProvider provider(Config());
  Fixture f(
      {Person("a@example.com", "1"), Person("b@example.com", "2"), Person("c@example.com", "3")});
  const auto outcomes = provider.Classify(
      f.batch, Response(200, R"({"message":"Processed 1 contacts successfully, 1 failed",
        "success":[{"phone":"1","email":"a@example.com","action":"updated"}],
        "errors":[{"email":"someone.else@example.org","phone":"99","error":"invalid"}]})"));
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kRetry);
  EXPECT_NE(outcomes[1].reason.find("invalid"), std::string::npos) << outcomes[1].reason;
  EXPECT_EQ(outcomes[1].http_status, 200);
}

// Entries are read as a DOM with FindMember would: the first member of a
// name decides, an error text may sit in {"error": {"message"}}, and only
// arrays count as lists.
TEST(ReplifyProvider, EntriesAreReadByTheirFirstMemberOfEachName) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1"), Person("b@example.com", "2"),
             Person("c@example.com", "3"), Person("d@example.com", "4")});
  const auto outcomes =
      provider.Classify(f.batch, Response(200, R"({"success":{"email":"a@example.com"},
        "errors":[{"email":"a@example.com","email":"b@example.com","error":{"message":"nested"}},
                  {"email":null,"email":"c@example.com","phone":"3","error":"x"},
                  {"email":"d@example.com","error":"","message":"","reason":"late"}],
        "success":[{"email":"a@example.com"}],
        "errors":[{"email":"b@example.com","error":"ignored"}]})"));
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason, "replify rejected contact: nested");
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kDone);
  // The first email is null, so this entry names its phone's item.
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].reason, "replify rejected contact: x");
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[3].reason, "replify rejected contact: late");
}

// An entry that is no object names no item: as any unplaced error, every
// item the answer does not account for is retried.
TEST(ReplifyProvider, ErrorEntryThatIsNoObjectRetriesUnansweredItems) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1"), Person("b@example.com", "2")});
  const auto outcomes = provider.Classify(
      f.batch, Response(200, R"({"success":[{"email":"a@example.com"}, "b@example.com"],
        "errors":["b@example.com"]})"));
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kRetry);
  EXPECT_NE(outcomes[1].reason.find("unspecified error"), std::string::npos) << outcomes[1].reason;
}

// Answers out of request order match as well as answers in order.
TEST(ReplifyProvider, EntriesOutOfRequestOrderMatchTheirItems) {
  const ReplifyProvider provider(Config());
  Fixture f(
      {Person("a@example.com", "1"), Person("b@example.com", "2"), Person("c@example.com", "3")});
  const auto outcomes = provider.Classify(
      f.batch, Response(200, R"({"success":[{"email":"C@example.com","phone":"+3"},
        {"email":"a@example.com","phone":"1"}],
        "errors":[{"email":"b@example.com","phone":"2","error":"bad"}]})"));
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kDone);
}

TEST(ReplifyProvider, UnreadableSuccessBodyIsDone) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1"), Person("b@example.com", "2")});
  for (const char* body : {"", "<html>ok</html>", "[1,2]", R"({"errors":"nope"})"}) {
    const auto outcomes = provider.Classify(f.batch, Response(200, body));
    ASSERT_EQ(outcomes.size(), 2u);
    for (const Outcome& outcome : outcomes) {
      EXPECT_EQ(outcome.kind, OutcomeKind::kDone) << body;
      EXPECT_EQ(outcome.http_status, 200);
    }
  }
}

TEST(ReplifyProvider, AuthenticationFailureRetriesWithoutLeakingKey) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1")});
  for (const long status : {401L, 403L}) {
    const auto outcomes = provider.Classify(
        f.batch, Response(status, std::string(R"({"message":"bad key )") + kKey + "\"}"));
    ASSERT_EQ(outcomes.size(), 1u);
    EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry);
    EXPECT_EQ(outcomes[0].reason, "replify: authentication failed (HTTP " + std::to_string(status) +
                                      ") — check the API key");
    EXPECT_EQ(outcomes[0].http_status, status);
  }
}

TEST(ReplifyProvider, RequestsAfterAKeyRotationCarryTheNewKey) {
  // The key file is mounted as Kubernetes does: key -> ..data/key, and a
  // rotation swaps the ..data symlink to a new directory.
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("crmsync-replify-key-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "..v1");
  fs::create_directories(dir / "..v2");
  std::ofstream(dir / "..v1" / "key") << "key-before-rotation\n";
  fs::create_directory_symlink("..v1", dir / "..data");
  fs::create_symlink("..data/key", dir / "key");

  mapping::ProviderConfig config = Config();
  config.api_key = "key-before-rotation";
  config.api_key_source = std::make_shared<mapping::SecretSource>(
      (dir / "key").string(), config.api_key, std::chrono::hours(1));
  const ReplifyProvider provider(config);
  Fixture f({Person("ava@example.com", "15551234567")});
  EXPECT_EQ(Header(provider.BuildRequest(f.batch), "x-api-key"), "key-before-rotation");

  std::ofstream(dir / "..v2" / "key") << "key-after-rotation\n";
  fs::create_directory_symlink("..v2", dir / "..data_tmp");
  fs::rename(dir / "..data_tmp", dir / "..data");
  // Within the check interval the old key is still used...
  EXPECT_EQ(Header(provider.BuildRequest(f.batch), "x-api-key"), "key-before-rotation");
  // ...but a 401 makes the next request look at the file.
  provider.Classify(f.batch, Response(401, "{}"));
  EXPECT_EQ(Header(provider.BuildRequest(f.batch), "x-api-key"), "key-after-rotation");
  fs::remove_all(dir);
}

TEST(ReplifyProvider, TransientStatusesRetryAfterProvidersDelay) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1"), Person("b@example.com", "2")});
  for (const long status : {408L, 425L, 429L, 500L, 502L, 503L, 504L}) {
    HttpResponse response = Response(status, R"({"message":"Service Unavailable"})");
    response.retry_after = seconds(7);
    const auto outcomes = provider.Classify(f.batch, response);
    ASSERT_EQ(outcomes.size(), 2u);
    for (const Outcome& outcome : outcomes) {
      EXPECT_EQ(outcome.kind, OutcomeKind::kRetry) << status;
      EXPECT_EQ(outcome.http_status, status);
      EXPECT_EQ(outcome.retry_after, milliseconds(7000));
    }
  }
  const auto without = provider.Classify(f.batch, Response(503, ""));
  EXPECT_EQ(without[0].kind, OutcomeKind::kRetry);
  EXPECT_FALSE(without[0].retry_after.has_value());
}

TEST(ReplifyProvider, MissingCampaignRejects) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1")});
  const auto outcomes = provider.Classify(f.batch, Response(404, R"({"message":"Not Found"})"));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_NE(outcomes[0].reason.find("campaign not found"), std::string::npos);
  EXPECT_EQ(outcomes[0].http_status, 404);
}

TEST(ReplifyProvider, OtherClientErrorsRejectWithProvidersText) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1")});
  auto outcomes =
      provider.Classify(f.batch, Response(400, R"({"message":"contacts must be an array"})"));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason, "replify: HTTP 400: contacts must be an array");
  EXPECT_EQ(outcomes[0].http_status, 400);

  outcomes = provider.Classify(f.batch, Response(422, R"({"error":"unprocessable"})"));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason, "replify: HTTP 422: unprocessable");

  outcomes = provider.Classify(f.batch, Response(413, "<html>too large</html>"));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason, "replify: HTTP 413");
}

TEST(ReplifyProvider, TruncatesLongProviderText) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1")});
  const std::string long_text(1000, 'x');
  const auto outcomes =
      provider.Classify(f.batch, Response(400, R"({"message":")" + long_text + "\"}"));
  EXPECT_EQ(outcomes[0].reason, "replify: HTTP 400: " + std::string(300, 'x') + "...");
}

TEST(ReplifyProvider, TransportFailuresRetry) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1"), Person("b@example.com", "2")});
  for (const Transport transport : {Transport::kTimeout, Transport::kConnectFailed,
                                    Transport::kBroken, Transport::kConfigError}) {
    HttpResponse response;
    response.transport = transport;
    response.transport_error = "Operation failed near x-api-key: " + std::string(kKey);
    const auto outcomes = provider.Classify(f.batch, response);
    ASSERT_EQ(outcomes.size(), 2u);
    for (const Outcome& outcome : outcomes) {
      EXPECT_EQ(outcome.kind, OutcomeKind::kRetry);
      EXPECT_EQ(outcome.http_status, 0);
      EXPECT_NE(outcome.reason.find("Operation failed"), std::string::npos) << outcome.reason;
      EXPECT_EQ(outcome.reason.find(kKey), std::string::npos) << outcome.reason;
    }
  }
}

TEST(ReplifyProvider, ReasonsNeverContainApiKey) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1")});
  const std::string echo = std::string(R"({"message":"key )") + kKey + " refused " + kKey + "\"}";
  for (const long status : {400L, 401L, 409L, 500L}) {
    const auto outcomes = provider.Classify(f.batch, Response(status, echo));
    EXPECT_EQ(outcomes[0].reason.find(kKey), std::string::npos) << outcomes[0].reason;
  }
  const auto accepted = provider.Classify(
      f.batch, Response(200, std::string(R"({"errors":[{"email":"a@example.com","error":")") +
                                 kKey + "\"}]}"));
  EXPECT_EQ(accepted[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(accepted[0].reason.find(kKey), std::string::npos) << accepted[0].reason;
}

TEST(ReplifyProvider, UnexpectedStatusRetries) {
  const ReplifyProvider provider(Config());
  Fixture f({Person("a@example.com", "1")});
  const auto outcomes = provider.Classify(f.batch, Response(302, ""));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].http_status, 302);
}

TEST(ProviderRegistry, KnowsReplify) {
  const auto& names = KnownProviders();
  EXPECT_NE(std::find(names.begin(), names.end(), "replify"), names.end());
  const auto provider = CreateProvider(Config());
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->Name(), "replify");
  EXPECT_EQ(provider->MaxBatch(), 250u);
}

TEST(ProviderRegistry, RejectsUnknownProvider) {
  mapping::ProviderConfig config = Config();
  config.name = "mailchimp";
  EXPECT_THROW(CreateProvider(config), mapping::ConfigError);
}

}  // namespace
}  // namespace crmsync::providers::replify
