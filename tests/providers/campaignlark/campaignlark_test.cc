#include "providers/campaignlark/campaignlark.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <string>
#include <variant>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "tests/support/provider_checks.h"
#include "tests/support/provider_fixture.h"

namespace crmsync::providers::campaignlark {
namespace {

using testing::Header;

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kKey[] = "lark-secret-key-42";
constexpr char kBaseUrl[] = "https://api.campaignlark.com/v1";

mapping::ProviderConfig Config(std::string settings_json = "") {
  return testing::ProviderConfigFor("campaignlark", kBaseUrl, kKey, 80, std::move(settings_json));
}

mapping::Contact Person(const std::string& email) {
  mapping::Contact contact;
  contact.email = email;
  return contact;
}

struct Fixture : testing::BatchFixture {
  explicit Fixture(std::vector<mapping::Contact> contacts, const std::string& options_json = "",
                   mapping::Action action = mapping::Action::kUpsert)
      : BatchFixture("campaignlark", "contacts", std::move(contacts), action, options_json) {}
};

CampaignLarkOptions Options(const std::string& json) {
  const auto parsed = testing::ParsedOptions("campaignlark", json);
  const auto* options = dynamic_cast<const CampaignLarkOptions*>(parsed.get());
  EXPECT_NE(options, nullptr) << json;
  return options != nullptr ? *options : CampaignLarkOptions{};
}

HttpRequest Build(const CampaignLarkProvider& provider, const mapping::Contact& contact,
                  const std::string& options_json = "") {
  auto built = provider.BuildRequest(contact, Options(options_json));
  EXPECT_TRUE(std::holds_alternative<HttpRequest>(built));
  return std::holds_alternative<HttpRequest>(built) ? std::get<HttpRequest>(built) : HttpRequest{};
}

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

std::string ErrorBody(const std::string& message) {
  return R"({"error":{"message":")" + message + R"("}})";
}

// Names the first violation of the request schema, or "" when the body is
// valid.
std::string SchemaViolation(const std::string& body) {
  return testing::RequestSchemaViolation("campaignlark", body);
}

std::vector<int64_t> Tags(const rapidjson::Value& array) {
  std::vector<int64_t> out;
  for (const auto& tag : array.GetArray()) out.push_back(tag.GetInt64());
  return out;
}

TEST(CampaignLarkProvider, NameAndMaxBatchComeFromConfig) {
  CampaignLarkProvider provider(Config());
  EXPECT_EQ(provider.Name(), "campaignlark");
  EXPECT_EQ(provider.MaxBatch(), 80u);
}

TEST(CampaignLarkProvider, RegistryCreatesItByName) {
  bool known = false;
  for (const std::string_view name : KnownProviders()) known = known || name == "campaignlark";
  EXPECT_TRUE(known);
  const auto provider = CreateProvider(Config());
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->Name(), "campaignlark");
  EXPECT_EQ(provider->MaxBatch(), 80u);
}

TEST(CampaignLarkProvider, BuildsPostToContactsUpsertWithBearerKey) {
  const CampaignLarkProvider provider(Config());
  const HttpRequest request = Build(provider, Person("ava@example.com"));
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, "https://api.campaignlark.com/v1/contacts/upsert");
  EXPECT_EQ(Header(request, "Authorization"), std::string("Bearer ") + kKey);
  EXPECT_EQ(Header(request, "Content-Type"), "application/json");
  EXPECT_EQ(Header(request, "Accept"), "application/json");
}

TEST(CampaignLarkProvider, IgnoresTrailingSlashOfBaseUrl) {
  mapping::ProviderConfig config = Config();
  config.base_url = "http://127.0.0.1:9000/campaignlark/v1//";
  const CampaignLarkProvider provider(config);
  EXPECT_EQ(Build(provider, Person("a@example.com")).url,
            "http://127.0.0.1:9000/campaignlark/v1/contacts/upsert");
}

TEST(CampaignLarkProvider, SendsEmailFieldsTagsStatusAndPartialUpdate) {
  const CampaignLarkProvider provider(Config());
  mapping::Contact contact = Person("tywin@example.com");
  contact.first_name = "Tywin";
  contact.last_name = "Lannister";
  contact.phone = "15551234567";  // no phone merge tag configured: not sent
  contact.status = "SUBSCRIBED";
  contact.metadata = {{"company", "Casterly Rock"}, {"tier", "gold"}};
  contact.tags = {1, 2};
  const rapidjson::Document doc = ParseBody(Build(provider, contact));
  EXPECT_STREQ(doc["email_address"].GetString(), "tywin@example.com");
  const auto& fields = doc["fields"];
  EXPECT_EQ(fields.MemberCount(), 4u);
  EXPECT_STREQ(fields["first_name"].GetString(), "Tywin");
  EXPECT_STREQ(fields["last_name"].GetString(), "Lannister");
  EXPECT_STREQ(fields["company"].GetString(), "Casterly Rock");
  EXPECT_STREQ(fields["tier"].GetString(), "gold");
  EXPECT_EQ(Tags(doc["tags"]), (std::vector<int64_t>{1, 2}));
  EXPECT_STREQ(doc["status"].GetString(), "SUBSCRIBED");
  EXPECT_TRUE(doc["partial_update"].GetBool());
  EXPECT_EQ(doc.MemberCount(), 5u);
}

TEST(CampaignLarkProvider, PartialUpdateByDefaultSendsOnlyWhatIsKnown) {
  const CampaignLarkProvider provider(Config());
  const HttpRequest request = Build(provider, Person("only@example.com"));
  EXPECT_EQ(request.body, R"({"email_address":"only@example.com","partial_update":true})");
}

TEST(CampaignLarkProvider, FullReplaceSendsFieldsAndTagsEvenWhenEmpty) {
  const CampaignLarkProvider provider(Config());
  const HttpRequest request =
      Build(provider, Person("only@example.com"), R"({"partialUpdate":false})");
  EXPECT_EQ(request.body,
            R"({"email_address":"only@example.com","fields":{},"tags":[],"partial_update":false})");
}

TEST(CampaignLarkProvider, OptionTagsAreAddedToEveryContactOnce) {
  const CampaignLarkProvider provider(Config());
  mapping::Contact tagged = Person("a@example.com");
  tagged.tags = {3, 5, 3};
  const std::string options = R"({"tags":[5,7],"partialUpdate":true})";
  EXPECT_EQ(Tags(ParseBody(Build(provider, tagged, options))["tags"]),
            (std::vector<int64_t>{3, 5, 7}));
  EXPECT_EQ(Tags(ParseBody(Build(provider, Person("b@example.com"), options))["tags"]),
            (std::vector<int64_t>{5, 7}));
}

TEST(CampaignLarkProvider, NameMergeTagsAreConfigurable) {
  const CampaignLarkProvider provider(
      Config(R"({"baseUrl":"x","firstNameTag":"fname","lastNameTag":"","phoneTag":"phone"})"));
  EXPECT_EQ(provider.first_name_tag(), "fname");
  EXPECT_EQ(provider.last_name_tag(), "");
  EXPECT_EQ(provider.phone_tag(), "phone");
  mapping::Contact contact = Person("a@example.com");
  contact.first_name = "Ava";
  contact.last_name = "Lopez";
  contact.phone = "15550001111";
  const rapidjson::Document doc = ParseBody(Build(provider, contact));
  const auto& fields = doc["fields"];
  EXPECT_EQ(fields.MemberCount(), 2u);
  EXPECT_STREQ(fields["fname"].GetString(), "Ava");
  EXPECT_STREQ(fields["phone"].GetString(), "15550001111");
}

TEST(CampaignLarkProvider, DefaultMergeTagsAreFirstNameAndLastName) {
  const CampaignLarkProvider provider(Config("{}"));
  EXPECT_EQ(provider.first_name_tag(), "first_name");
  EXPECT_EQ(provider.last_name_tag(), "last_name");
  EXPECT_EQ(provider.phone_tag(), "");
}

TEST(CampaignLarkProvider, ExplicitMergeTagWinsOverName) {
  const CampaignLarkProvider provider(Config());
  mapping::Contact contact = Person("a@example.com");
  contact.first_name = "Generic";
  contact.metadata = {{"first_name", "Explicit"}};
  const rapidjson::Document doc = ParseBody(Build(provider, contact));
  EXPECT_EQ(doc["fields"].MemberCount(), 1u);
  EXPECT_STREQ(doc["fields"]["first_name"].GetString(), "Explicit");
}

TEST(CampaignLarkProvider, NeverSendsEmailAddressAsField) {
  const CampaignLarkProvider provider(Config());
  mapping::Contact contact = Person("a@example.com");
  contact.metadata = {{"email_address", "other@example.com"}, {"tier", "pro"}};
  const rapidjson::Document doc = ParseBody(Build(provider, contact));
  EXPECT_FALSE(doc["fields"].HasMember("email_address"));
  EXPECT_STREQ(doc["email_address"].GetString(), "a@example.com");
}

TEST(CampaignLarkProvider, SendsStatusAsGiven) {
  const CampaignLarkProvider provider(Config());
  mapping::Contact contact = Person("a@example.com");
  contact.status = "unsubscribed";
  EXPECT_STREQ(ParseBody(Build(provider, contact))["status"].GetString(), "unsubscribed");
}

TEST(CampaignLarkProvider, EscapesText) {
  const CampaignLarkProvider provider(Config());
  mapping::Contact contact = Person("q@example.com");
  contact.first_name = "Zoë \"Q\"\n\\";
  EXPECT_STREQ(ParseBody(Build(provider, contact))["fields"]["first_name"].GetString(),
               "Zoë \"Q\"\n\\");
}

TEST(CampaignLarkProvider, MalformedSettingsThrowConfigError) {
  for (const char* settings :
       {"not json", "[]", R"({"firstNameTag":3})", R"({"lastNameTag":null})",
        R"({"phoneTag":["phone"]})", R"({"firstNameTag":"email_address"})"}) {
    EXPECT_THROW(CampaignLarkProvider{Config(settings)}, mapping::ConfigError) << settings;
  }
}

TEST(CampaignLarkProvider, SpecParsesOptions) {
  CampaignLarkOptions options = Options("");
  EXPECT_TRUE(options.partial_update);
  EXPECT_TRUE(options.tags.empty());
  EXPECT_FALSE(options.UpsertReplacesRecord());
  options = Options(R"({"partialUpdate":false,"tags":[4,9]})");
  EXPECT_FALSE(options.partial_update);
  EXPECT_TRUE(options.UpsertReplacesRecord());
  EXPECT_EQ(options.tags, (std::vector<int64_t>{4, 9}));
  EXPECT_EQ(testing::OptionProblems("campaignlark", R"({"partialUpdate":"yes"})"),
            std::vector<std::string>{"/options/partialUpdate: must be true or false"});
  for (const char* bad : {R"({"tags":5})", R"({"tags":["vip"]})", R"({"tags":[1.5]})"}) {
    EXPECT_EQ(testing::OptionProblems("campaignlark", bad),
              std::vector<std::string>{"/options/tags: must be an array of integer tag ids"})
        << bad;
  }
  EXPECT_EQ(testing::OptionProblems("campaignlark", R"({"status":"x"})").size(), 1u);
}

TEST(CampaignLarkProvider, BuiltBodiesValidateAgainstRequestSchema) {
  const CampaignLarkProvider provider(Config(R"({"phoneTag":"phone"})"));
  mapping::Contact full = Person("ava@example.com");
  full.first_name = "Ava";
  full.last_name = "Lopez";
  full.phone = "15551234567";
  full.status = "UNSUBSCRIBED";
  full.metadata = {{"tier", "pro"}, {"email_address", "x@example.com"}};
  full.tags = {1, 2, 2};
  for (const char* options : {"", R"({"partialUpdate":false})", R"({"tags":[2,3]})"}) {
    for (const mapping::Contact& contact : {full, Person("min@example.com")}) {
      EXPECT_EQ(SchemaViolation(Build(provider, contact, options).body), "") << options;
    }
  }
}

TEST(CampaignLarkProvider, RequestSchemaRejectsWhatCampaignLarkRejects) {
  EXPECT_NE(SchemaViolation(R"({"fields":{"first_name":"A"}})"), "");
  EXPECT_NE(SchemaViolation(R"({"email_address":""})"), "");
  EXPECT_NE(SchemaViolation(R"({"email_address":"a@example.com","status":"ACTIVE"})"), "");
  EXPECT_NE(SchemaViolation(R"({"email_address":"a@example.com","tags":["vip"]})"), "");
  EXPECT_NE(SchemaViolation(R"({"email_address":"a@example.com","partial_update":"yes"})"), "");
  EXPECT_NE(SchemaViolation(R"({"email_address":"a@example.com","contacts":[]})"), "");
  EXPECT_EQ(SchemaViolation(R"({"email_address":"tywin@example.com",
    "fields":{"first_name":"Tywin","last_name":"Lannister"},"tags":[1,2],
    "status":"SUBSCRIBED","partial_update":true})"),
            "");
}

TEST(CampaignLarkProvider, ContactWithoutEmailIsRejectedWithoutRequest) {
  CampaignLarkProvider provider(Config());
  mapping::Contact no_email;
  no_email.first_name = "Anon";
  mapping::Contact empty_email = Person("");
  Fixture f({Person("a@example.com"), no_email, empty_email, Person("d@example.com")});
  const auto exchange = provider.Start(f.batch);
  const auto round = exchange->NextRound();
  ASSERT_EQ(round.size(), 2u);
  EXPECT_STREQ(ParseBody(round[0])["email_address"].GetString(), "a@example.com");
  EXPECT_STREQ(ParseBody(round[1])["email_address"].GetString(), "d@example.com");
  exchange->OnResponse(0, Response(200, "{}"));
  exchange->OnResponse(1, Response(200, "{}"));
  EXPECT_TRUE(exchange->NextRound().empty());
  const auto outcomes = exchange->Outcomes();
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  for (const size_t i : {1u, 2u}) {
    EXPECT_EQ(outcomes[i].kind, OutcomeKind::kReject);
    EXPECT_EQ(outcomes[i].reason, "campaignlark rejected contact: email_address is required");
    EXPECT_EQ(outcomes[i].http_status, 0);
  }
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kDone);
}

TEST(CampaignLarkProvider, OnlyUpsertIsSupported) {
  CampaignLarkProvider provider(Config());
  EXPECT_TRUE(provider.Supports(mapping::Action::kUpsert));
  for (const mapping::Action action :
       {mapping::Action::kUpdateOnly, mapping::Action::kRemove, mapping::Action::kAdd,
        mapping::Action::kOverwrite, mapping::Action::kEnroll, mapping::Action::kUnenroll}) {
    EXPECT_FALSE(provider.Supports(action));
    Fixture f({Person("a@example.com"), Person("b@example.com")}, "", action);
    const auto exchange = provider.Start(f.batch);
    EXPECT_TRUE(exchange->NextRound().empty());
    const auto outcomes = exchange->Outcomes();
    ASSERT_EQ(outcomes.size(), 2u);
    for (const Outcome& outcome : outcomes) {
      EXPECT_EQ(outcome.kind, OutcomeKind::kReject);
      EXPECT_EQ(outcome.reason, "campaignlark does not support action '" +
                                    std::string(mapping::ActionName(action)) + "'");
    }
  }
}

TEST(CampaignLarkProvider, ExchangeSendsOneRequestPerItemInOneRound) {
  CampaignLarkProvider provider(Config());
  std::vector<mapping::Contact> contacts;
  for (int i = 0; i < 7; ++i) contacts.push_back(Person("c" + std::to_string(i) + "@example.com"));
  Fixture f(contacts, R"({"tags":[9]})");
  const auto exchange = provider.Start(f.batch);
  const auto round = exchange->NextRound();
  ASSERT_EQ(round.size(), 7u);
  for (size_t i = 0; i < round.size(); ++i) {
    const rapidjson::Document doc = ParseBody(round[i]);
    EXPECT_EQ(doc["email_address"].GetString(), "c" + std::to_string(i) + "@example.com");
    EXPECT_EQ(Tags(doc["tags"]), (std::vector<int64_t>{9}));
    EXPECT_EQ(round[i].url, "https://api.campaignlark.com/v1/contacts/upsert");
  }
}

TEST(CampaignLarkProvider, ExchangeMapsResponsesInAnyOrderToTheirItems) {
  CampaignLarkProvider provider(Config());
  mapping::Contact no_email;
  no_email.first_name = "Anon";
  Fixture f({Person("a@example.com"), no_email, Person("b@example.com"), Person("c@example.com"),
             Person("d@example.com")});
  const auto exchange = provider.Start(f.batch);
  const auto round = exchange->NextRound();
  ASSERT_EQ(round.size(), 4u);  // a, b, c, d
  exchange->OnResponse(3, Response(503, ErrorBody("Service Unavailable")));
  exchange->OnResponse(1, Response(400, ErrorBody("The status you provided is not valid.")));
  exchange->OnResponse(2, Response(429, ErrorBody("Too many requests")));
  exchange->OnResponse(0, Response(200, R"({"data":{"id":"1"}})"));
  EXPECT_TRUE(exchange->NextRound().empty());
  const auto outcomes = exchange->Outcomes();
  ASSERT_EQ(outcomes.size(), 5u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[0].http_status, 200);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].http_status, 0);
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].reason,
            "campaignlark rejected contact: The status you provided is not valid.");
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[3].http_status, 429);
  EXPECT_EQ(outcomes[4].kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[4].http_status, 503);
}

TEST(CampaignLarkProvider, SuccessIsDone) {
  const CampaignLarkProvider provider(Config());
  for (const long status : {200L, 201L, 204L}) {
    const Outcome outcome = provider.Classify(Response(status, R"({"data":{}})"));
    EXPECT_EQ(outcome.kind, OutcomeKind::kDone);
    EXPECT_EQ(outcome.http_status, status);
    EXPECT_EQ(outcome.reason, "");
  }
  // The contact was written: an unreadable body changes nothing.
  EXPECT_EQ(provider.Classify(Response(200, "<html>")).kind, OutcomeKind::kDone);
}

TEST(CampaignLarkProvider, DocumentedBadRequestsRejectWithTheirMessage) {
  const CampaignLarkProvider provider(Config());
  for (const std::string message :
       {"Email address is required for upsert operation.",
        "We were unable to find a field with the merge_tag favourite_colour",
        "The status you provided is not valid.", "Field 'Company' is required."}) {
    const Outcome outcome = provider.Classify(Response(400, ErrorBody(message)));
    EXPECT_EQ(outcome.kind, OutcomeKind::kReject);
    EXPECT_EQ(outcome.reason, "campaignlark rejected contact: " + message);
    EXPECT_EQ(outcome.http_status, 400);
  }
  const Outcome bare = provider.Classify(Response(400, ""));
  EXPECT_EQ(bare.kind, OutcomeKind::kReject);
  EXPECT_EQ(bare.reason, "campaignlark rejected contact: HTTP 400");
}

TEST(CampaignLarkProvider, BadKeyIsRetriedAsConfigurationError) {
  const CampaignLarkProvider provider(Config());
  const Outcome outcome = provider.Classify(Response(401, ErrorBody("Unauthorized")));
  EXPECT_EQ(outcome.kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcome.http_status, 401);
  EXPECT_EQ(outcome.reason,
            "campaignlark: configuration error: authentication failed (HTTP 401) — check the "
            "API key");
}

TEST(CampaignLarkProvider, ForbiddenIpIsRetriedAsConfigurationError) {
  const CampaignLarkProvider provider(Config());
  const Outcome outcome = provider.Classify(Response(403, ErrorBody("IP address not allowed")));
  EXPECT_EQ(outcome.kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcome.http_status, 403);
  EXPECT_EQ(outcome.reason,
            "campaignlark: configuration error: forbidden (HTTP 403: IP address not allowed) — "
            "check the workspace's IP allow-list");
}

TEST(CampaignLarkProvider, MissingEndpointIsRetriedAsConfigurationError) {
  const CampaignLarkProvider provider(Config());
  for (const long status : {404L, 405L}) {
    const Outcome outcome = provider.Classify(Response(status, ErrorBody("Not Found")));
    EXPECT_EQ(outcome.kind, OutcomeKind::kRetry);
    EXPECT_EQ(outcome.reason.rfind("campaignlark: configuration error: ", 0), 0u) << outcome.reason;
  }
}

TEST(CampaignLarkProvider, TransientStatusesRetryAfterProvidersDelay) {
  const CampaignLarkProvider provider(Config());
  for (const long status : {408L, 425L, 429L, 500L, 502L, 503L, 504L}) {
    HttpResponse response = Response(status, ErrorBody("Too many requests"));
    response.retry_after = seconds(3);
    const Outcome outcome = provider.Classify(response);
    EXPECT_EQ(outcome.kind, OutcomeKind::kRetry) << status;
    EXPECT_EQ(outcome.http_status, status);
    EXPECT_EQ(outcome.retry_after, milliseconds(3000));
    EXPECT_EQ(outcome.reason,
              "campaignlark: HTTP " + std::to_string(status) + ": Too many requests");
  }
  // CampaignLark documents no Retry-After: then the worker's backoff decides.
  const Outcome limited = provider.Classify(Response(429, ErrorBody("Too many requests")));
  EXPECT_EQ(limited.kind, OutcomeKind::kRetry);
  EXPECT_FALSE(limited.retry_after.has_value());
}

TEST(CampaignLarkProvider, OtherClientErrorsReject) {
  const CampaignLarkProvider provider(Config());
  Outcome outcome = provider.Classify(Response(422, R"({"message":"unprocessable"})"));
  EXPECT_EQ(outcome.kind, OutcomeKind::kReject);
  EXPECT_EQ(outcome.reason, "campaignlark: HTTP 422: unprocessable");
  outcome = provider.Classify(Response(413, "<html>too large</html>"));
  EXPECT_EQ(outcome.kind, OutcomeKind::kReject);
  EXPECT_EQ(outcome.reason, "campaignlark: HTTP 413");
}

TEST(CampaignLarkProvider, UnexpectedStatusRetries) {
  const CampaignLarkProvider provider(Config());
  const Outcome outcome = provider.Classify(Response(302, ""));
  EXPECT_EQ(outcome.kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcome.http_status, 302);
}

TEST(CampaignLarkProvider, TransportFailuresRetry) {
  const CampaignLarkProvider provider(Config());
  const std::pair<Transport, const char*> cases[] = {
      {Transport::kTimeout, "campaignlark: request timed out: "},
      {Transport::kConnectFailed, "campaignlark: connection failed: "},
      {Transport::kBroken, "campaignlark: connection broken: "},
      {Transport::kConfigError, "campaignlark: request not sent (configuration): "},
  };
  for (const auto& [transport, prefix] : cases) {
    HttpResponse response;
    response.transport = transport;
    response.transport_error = "Operation failed";
    const Outcome outcome = provider.Classify(response);
    EXPECT_EQ(outcome.kind, OutcomeKind::kRetry);
    EXPECT_EQ(outcome.http_status, 0);
    EXPECT_EQ(outcome.reason, std::string(prefix) + "Operation failed");
  }
}

TEST(CampaignLarkProvider, TruncatesLongProviderText) {
  const CampaignLarkProvider provider(Config());
  const Outcome outcome = provider.Classify(Response(400, ErrorBody(std::string(1000, 'x'))));
  EXPECT_EQ(outcome.reason, "campaignlark rejected contact: " + std::string(300, 'x') + "...");
}

TEST(CampaignLarkProvider, ReasonsNeverContainApiKey) {
  const CampaignLarkProvider provider(Config());
  const std::string echo = ErrorBody(std::string("Bearer ") + kKey + " refused " + kKey);
  for (const long status : {400L, 401L, 403L, 404L, 409L, 429L, 500L, 302L}) {
    const Outcome outcome = provider.Classify(Response(status, echo));
    EXPECT_EQ(outcome.reason.find(kKey), std::string::npos) << outcome.reason;
  }
  for (const Transport transport : {Transport::kTimeout, Transport::kConnectFailed,
                                    Transport::kBroken, Transport::kConfigError}) {
    HttpResponse response;
    response.transport = transport;
    response.transport_error = std::string("failed near Authorization: Bearer ") + kKey;
    const Outcome outcome = provider.Classify(response);
    EXPECT_EQ(outcome.reason.find(kKey), std::string::npos) << outcome.reason;
    EXPECT_NE(outcome.reason.find("[redacted]"), std::string::npos) << outcome.reason;
  }
}

}  // namespace
}  // namespace crmsync::providers::campaignlark
