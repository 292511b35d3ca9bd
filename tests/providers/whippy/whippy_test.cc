#include "providers/whippy/whippy.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "tests/support/provider_checks.h"
#include "tests/support/provider_fixture.h"

namespace crmsync::providers::whippy {
namespace {

using testing::Header;

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kList[] = "list-1";
constexpr char kKey[] = "whippy-secret-key";
constexpr char kChannel[] = "0b7e6c1a-2f3d-4e5a-8b9c-0d1e2f3a4b5c";

mapping::ProviderConfig Config(const std::string& settings = "") {
  return testing::ProviderConfigFor("whippy", "https://api.whippy.co/v1", kKey, 4000, settings);
}

mapping::Contact Person(const std::string& phone, const std::string& email = "") {
  mapping::Contact contact;
  contact.phone = phone;
  if (!email.empty()) contact.email = email;
  return contact;
}

std::vector<mapping::Contact> People(size_t count) {
  std::vector<mapping::Contact> people;
  people.reserve(count);
  for (size_t i = 0; i < count; ++i) people.push_back(Person("1555" + std::to_string(1000000 + i)));
  return people;
}

struct Fixture : testing::BatchFixture {
  explicit Fixture(std::vector<mapping::Contact> contacts,
                   mapping::Action action = mapping::Action::kAdd, const std::string& options = "")
      : BatchFixture("whippy", kList, std::move(contacts), action, options) {}
};

HttpResponse Response(long status, std::string body = "{}") {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.content_type = "application/json";
  return response;
}

HttpResponse TransportFailure(Transport transport, std::string error) {
  HttpResponse response;
  response.transport = transport;
  response.transport_error = std::move(error);
  return response;
}

// What one exchange sent and how it ended.
struct ExchangeRun {
  std::vector<HttpRequest> requests;
  std::vector<Outcome> outcomes;
  size_t rounds = 0;
};

using Responder = std::function<HttpResponse(const HttpRequest&, size_t request_number)>;

ExchangeRun Drive(WhippyProvider& provider, const Batch& batch, const Responder& respond) {
  ExchangeRun run;
  const auto exchange = provider.Start(batch);
  for (auto round = exchange->NextRound(); !round.empty(); round = exchange->NextRound()) {
    ++run.rounds;
    for (size_t i = 0; i < round.size(); ++i) {
      const HttpResponse response = respond(round[i], run.requests.size());
      run.requests.push_back(round[i]);
      exchange->OnResponse(i, response);
    }
  }
  run.outcomes = exchange->Outcomes();
  return run;
}

ExchangeRun DriveOk(WhippyProvider& provider, const Batch& batch) {
  return Drive(provider, batch, [](const HttpRequest&, size_t) { return Response(200); });
}

// The single request an exchange sends when answered 200.
HttpRequest OnlyRequest(WhippyProvider& provider, const Batch& batch) {
  const ExchangeRun run = DriveOk(provider, batch);
  EXPECT_EQ(run.requests.size(), 1u);
  return run.requests.empty() ? HttpRequest{} : run.requests.front();
}

// The outcomes of a one-request exchange answered with `response`.
std::vector<Outcome> ClassifyOne(WhippyProvider& provider, const Batch& batch,
                                 const HttpResponse& response) {
  const ExchangeRun run =
      Drive(provider, batch, [&](const HttpRequest&, size_t) { return response; });
  EXPECT_EQ(run.requests.size(), 1u);
  return run.outcomes;
}

rapidjson::Document ParseBody(const HttpRequest& request) {
  rapidjson::Document doc;
  doc.Parse(request.body.c_str());
  EXPECT_FALSE(doc.HasParseError()) << request.body;
  return doc;
}

// Names every violation of the request schema, or "" when the body is valid.
std::string SchemaViolation(const std::string& body) {
  return testing::RequestSchemaViolation("whippy", body);
}

void ExpectAll(const std::vector<Outcome>& outcomes, OutcomeKind kind) {
  for (size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].kind, kind) << "item " << i << ": " << outcomes[i].reason;
  }
}

TEST(WhippyProvider, RegistryCreatesIt) {
  EXPECT_NE(std::find(KnownProviders().begin(), KnownProviders().end(), "whippy"),
            KnownProviders().end());
  const auto provider = CreateProvider(Config());
  EXPECT_EQ(provider->Name(), "whippy");
}

TEST(WhippyProvider, MaxBatchIsConfigCappedAtOneRequest) {
  mapping::ProviderConfig config = Config();
  config.max_batch = 250;
  EXPECT_EQ(WhippyProvider(config).MaxBatch(), 250u);
  EXPECT_EQ(WhippyProvider(config).MaxOverwriteBatch(), 250u);
  config.max_batch = 100000;
  EXPECT_EQ(WhippyProvider(config).MaxBatch(), 4000u);
  EXPECT_EQ(WhippyProvider(config).MaxOverwriteBatch(), 100000u);
}

TEST(WhippyProvider, SendsPutToListContactsWithHeaders) {
  WhippyProvider provider(Config());
  Fixture f({Person("15551234567")});
  const HttpRequest request = OnlyRequest(provider, f.batch);
  EXPECT_EQ(request.method, "PUT");
  EXPECT_EQ(request.url, "https://api.whippy.co/v1/contacts/lists/list-1/contacts");
  EXPECT_EQ(Header(request, "Content-Type"), "application/json");
  EXPECT_EQ(Header(request, "Accept"), "application/json");
  EXPECT_EQ(Header(request, "X-WHIPPY-KEY"), kKey);
}

TEST(WhippyProvider, ListMethodSettingChoosesTheMethod) {
  for (const auto& [setting, method] :
       std::vector<std::pair<std::string, std::string>>{{R"({"listMethod":"POST"})", "POST"},
                                                        {R"({"listMethod":"patch"})", "PATCH"},
                                                        {R"({"listMethod":"PUT"})", "PUT"},
                                                        {R"({"maxBatch":100})", "PUT"},
                                                        {"", "PUT"}}) {
    WhippyProvider provider(Config(setting));
    EXPECT_EQ(provider.ListMethod(), method) << setting;
    Fixture f({Person("1")});
    EXPECT_EQ(OnlyRequest(provider, f.batch).method, method) << setting;
  }
}

TEST(WhippyProvider, InvalidListMethodIsAConfigError) {
  for (const char* setting : {R"({"listMethod":"GET"})", R"({"listMethod":"DELETE"})",
                              R"({"listMethod":3})", R"({"listMethod":""})"}) {
    try {
      WhippyProvider provider(Config(setting));
      ADD_FAILURE() << "accepted " << setting;
    } catch (const mapping::ConfigError& error) {
      ASSERT_EQ(error.problems().size(), 1u);
      EXPECT_EQ(error.problems()[0],
                "/providers/whippy/listMethod: must be one of PUT, POST, PATCH");
    }
  }
}

TEST(WhippyProvider, IgnoresTrailingSlashAndPercentEncodesListId) {
  mapping::ProviderConfig config = Config();
  config.base_url = "http://127.0.0.1:8080/whippy/v1/";
  WhippyProvider provider(config);
  Fixture f({Person("1")});
  f.batch.target = "a b/c?d#e%f~g.h_i-j";
  EXPECT_EQ(
      OnlyRequest(provider, f.batch).url,
      "http://127.0.0.1:8080/whippy/v1/contacts/lists/a%20b%2Fc%3Fd%23e%25f~g.h_i-j/contacts");
}

TEST(WhippyProvider, SendsEveryContactField) {
  WhippyProvider provider(Config());
  mapping::Contact contact = Person("15551234567", "ava@example.com");
  contact.first_name = "Ignored";
  contact.fields = {{"name", "Ava Lopez"},
                    {"external_id", "crm-42"},
                    {"language", "es"},
                    {"default_channel_id", kChannel},
                    {"address.address_line_one", "1 Main St"},
                    {"address.address_line_two", "Apt 2"},
                    {"address.city", "Austin"},
                    {"address.state", "TX"},
                    {"address.country", "US"},
                    {"address.post_code", "73301"},
                    {"birth_date.day", "9"},
                    {"birth_date.month", "12"},
                    {"birth_date.year", "1990"}};
  contact.metadata = {{"tier", "pro"}, {"source", "web"}};
  Fixture f({contact});
  const HttpRequest request = OnlyRequest(provider, f.batch);
  EXPECT_EQ(SchemaViolation(request.body), "");
  const rapidjson::Document doc = ParseBody(request);
  EXPECT_STREQ(doc["action"].GetString(), "add");
  ASSERT_EQ(doc["contacts"].Size(), 1u);
  const auto& sent = doc["contacts"][0];
  EXPECT_STREQ(sent["phone"].GetString(), "15551234567");
  EXPECT_STREQ(sent["email"].GetString(), "ava@example.com");
  EXPECT_STREQ(sent["name"].GetString(), "Ava Lopez");
  EXPECT_STREQ(sent["external_id"].GetString(), "crm-42");
  EXPECT_STREQ(sent["language"].GetString(), "es");
  EXPECT_STREQ(sent["default_channel_id"].GetString(), kChannel);
  const auto& address = sent["address"];
  EXPECT_EQ(address.MemberCount(), 6u);
  EXPECT_STREQ(address["address_line_one"].GetString(), "1 Main St");
  EXPECT_STREQ(address["address_line_two"].GetString(), "Apt 2");
  EXPECT_STREQ(address["city"].GetString(), "Austin");
  EXPECT_STREQ(address["state"].GetString(), "TX");
  EXPECT_STREQ(address["country"].GetString(), "US");
  EXPECT_STREQ(address["post_code"].GetString(), "73301");
  EXPECT_EQ(sent["birth_date"]["day"].GetInt(), 9);
  EXPECT_EQ(sent["birth_date"]["month"].GetInt(), 12);
  EXPECT_EQ(sent["birth_date"]["year"].GetInt(), 1990);
  EXPECT_STREQ(sent["properties"]["tier"].GetString(), "pro");
  EXPECT_STREQ(sent["properties"]["source"].GetString(), "web");
  EXPECT_FALSE(doc.HasMember("opt_in_to"));
  EXPECT_FALSE(doc.HasMember("opt_in_to_all_channels"));
}

TEST(WhippyProvider, MinimalContactSendsOnlyPhone) {
  WhippyProvider provider(Config());
  mapping::Contact contact = Person("15551234567");
  contact.email = "";
  contact.status = "completed";                            // not a Whippy field
  contact.fields = {{"nickname", "x"}, {"language", ""}};  // unknown and empty: not sent
  Fixture f({contact});
  const HttpRequest request = OnlyRequest(provider, f.batch);
  EXPECT_EQ(SchemaViolation(request.body), "");
  EXPECT_EQ(request.body, R"({"action":"add","contacts":[{"phone":"15551234567"}]})");
}

TEST(WhippyProvider, NameFallsBackToFirstAndLastName) {
  WhippyProvider provider(Config());
  mapping::Contact both = Person("1");
  both.first_name = "Ava";
  both.last_name = "Lopez";
  mapping::Contact first = Person("2");
  first.first_name = "Bo";
  mapping::Contact last = Person("3");
  last.last_name = "Chen";
  Fixture f({both, first, last, Person("4")});
  const rapidjson::Document doc = ParseBody(OnlyRequest(provider, f.batch));
  EXPECT_STREQ(doc["contacts"][0]["name"].GetString(), "Ava Lopez");
  EXPECT_STREQ(doc["contacts"][1]["name"].GetString(), "Bo");
  EXPECT_STREQ(doc["contacts"][2]["name"].GetString(), "Chen");
  EXPECT_FALSE(doc["contacts"][3].HasMember("name"));
}

TEST(WhippyProvider, ExternalIdFallsBackToCrmIdentity) {
  WhippyProvider provider(Config());
  mapping::Contact identity = Person("1");
  identity.external_id_key = "hubspotId";
  identity.external_id_value = "1234";
  mapping::Contact half = Person("2");
  half.external_id_key = "hubspotId";
  Fixture f({identity, half});
  const rapidjson::Document doc = ParseBody(OnlyRequest(provider, f.batch));
  EXPECT_STREQ(doc["contacts"][0]["external_id"].GetString(), "hubspotId:1234");
  EXPECT_FALSE(doc["contacts"][1].HasMember("external_id"));
}

TEST(WhippyProvider, ActionsUseWhippyWireNames) {
  WhippyProvider provider(Config());
  for (const auto& [action, name] : std::vector<std::pair<mapping::Action, std::string>>{
           {mapping::Action::kAdd, "add"},
           {mapping::Action::kRemove, "remove"},
           {mapping::Action::kOverwrite, "overwrite"}}) {
    Fixture f({Person("1")}, action);
    const HttpRequest request = OnlyRequest(provider, f.batch);
    EXPECT_EQ(ParseBody(request)["action"].GetString(), name);
    EXPECT_EQ(SchemaViolation(request.body), "");
  }
}

TEST(WhippyProvider, OtherActionsAreRejectedWithoutRequest) {
  WhippyProvider provider(Config());
  for (const mapping::Action action : {mapping::Action::kUpsert, mapping::Action::kUpdateOnly,
                                       mapping::Action::kEnroll, mapping::Action::kUnenroll}) {
    EXPECT_FALSE(provider.Supports(action));
    Fixture f({Person("1"), Person("2")}, action);
    const ExchangeRun run = DriveOk(provider, f.batch);
    EXPECT_TRUE(run.requests.empty());
    ASSERT_EQ(run.outcomes.size(), 2u);
    ExpectAll(run.outcomes, OutcomeKind::kReject);
    EXPECT_EQ(run.outcomes[0].reason, "whippy does not support action '" +
                                          std::string(mapping::ActionName(action)) +
                                          "' (supported: add, remove, overwrite)");
  }
}

TEST(WhippyProvider, OptInOptionsAreSentAsChannelObjects) {
  WhippyProvider provider(Config());
  Fixture f({Person("1")}, mapping::Action::kAdd,
            std::string(R"({"opt_in_to":[{"id":")") + kChannel +
                R"("},{"phone":"+15550001111"},{"id":"c2"},{"phone":"15550002222"}],)"
                R"("opt_in_to_all_channels":false})");
  const HttpRequest request = OnlyRequest(provider, f.batch);
  EXPECT_EQ(SchemaViolation(request.body), "");
  const rapidjson::Document doc = ParseBody(request);
  const auto& opt_in_to = doc["opt_in_to"];
  ASSERT_EQ(opt_in_to.Size(), 4u);
  EXPECT_STREQ(opt_in_to[0]["id"].GetString(), kChannel);
  EXPECT_STREQ(opt_in_to[1]["phone"].GetString(), "+15550001111");
  EXPECT_STREQ(opt_in_to[2]["id"].GetString(), "c2");
  EXPECT_STREQ(opt_in_to[3]["phone"].GetString(), "15550002222");
  EXPECT_FALSE(doc["opt_in_to_all_channels"].GetBool());
}

TEST(WhippyProvider, OptInToAllChannelsIsSentOnlyWhenSet) {
  WhippyProvider provider(Config());
  Fixture set({Person("1")}, mapping::Action::kOverwrite, R"({"opt_in_to_all_channels":true})");
  const rapidjson::Document doc = ParseBody(OnlyRequest(provider, set.batch));
  EXPECT_TRUE(doc["opt_in_to_all_channels"].GetBool());
  EXPECT_FALSE(doc.HasMember("opt_in_to"));
  Fixture unset({Person("1")}, mapping::Action::kOverwrite, "{}");
  EXPECT_FALSE(ParseBody(OnlyRequest(provider, unset.batch)).HasMember("opt_in_to_all_channels"));
}

// Request options are checked once, when the config is loaded.
TEST(WhippyProvider, SpecRefusesInvalidOptions) {
  std::string thousand_and_one = R"({"opt_in_to":[)";
  for (int i = 0; i < 1001; ++i)
    thousand_and_one += (i == 0 ? "" : ",") + std::string(R"({"id":"c"})");
  thousand_and_one += "]}";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"opt_in_to":[]})", "/options/opt_in_to: must be an array of 1..1000 channels"},
      {thousand_and_one, "/options/opt_in_to: must be an array of 1..1000 channels"},
      {R"({"opt_in_to":"c1"})", "/options/opt_in_to: must be an array of 1..1000 channels"},
      {R"({"opt_in_to":[7]})",
       R"(/options/opt_in_to/0: must be {"id": "<channel id>"} or {"phone": "<channel phone>"})"},
      {R"({"opt_in_to":[{"id":"c1"},{"name":"x"}]})",
       R"(/options/opt_in_to/1: must be {"id": "<channel id>"} or {"phone": "<channel phone>"})"},
      {R"({"opt_in_to":[{"phone":""}]})",
       R"(/options/opt_in_to/0: must be {"id": "<channel id>"} or {"phone": "<channel phone>"})"},
      {R"({"opt_in_to_all_channels":"yes"})",
       "/options/opt_in_to_all_channels: must be true or false"},
      {R"({"optInTo":[{"id":"c1"}]})",
       "/options/optInTo: 'optInTo' is not an option of provider 'whippy' (allowed: opt_in_to, "
       "opt_in_to_all_channels)"},
  };
  for (const auto& [options, problem] : cases) {
    EXPECT_EQ(testing::OptionProblems("whippy", options), std::vector<std::string>{problem})
        << options;
  }
}

TEST(WhippyProvider, ThousandOptInChannelsAreAccepted) {
  WhippyProvider provider(Config());
  std::string options = R"({"opt_in_to":[)";
  for (int i = 0; i < 1000; ++i) {
    options += (i == 0 ? "" : ",") + std::string(R"({"phone":")") + std::to_string(i) + "\"}";
  }
  options += "]}";
  Fixture f({Person("1")}, mapping::Action::kAdd, options);
  const HttpRequest request = OnlyRequest(provider, f.batch);
  EXPECT_EQ(ParseBody(request)["opt_in_to"].Size(), 1000u);
  EXPECT_EQ(SchemaViolation(request.body), "");
}

TEST(WhippyProvider, ContactWithoutPhoneIsRejectedLocally) {
  WhippyProvider provider(Config());
  mapping::Contact no_phone;
  no_phone.email = "nophone@example.com";
  mapping::Contact empty_phone = Person("");
  Fixture f({Person("1"), no_phone, Person("3"), empty_phone});
  const ExchangeRun run = DriveOk(provider, f.batch);
  ASSERT_EQ(run.requests.size(), 1u);
  const rapidjson::Document doc = ParseBody(run.requests[0]);
  ASSERT_EQ(doc["contacts"].Size(), 2u);
  EXPECT_STREQ(doc["contacts"][0]["phone"].GetString(), "1");
  EXPECT_STREQ(doc["contacts"][1]["phone"].GetString(), "3");
  ASSERT_EQ(run.outcomes.size(), 4u);
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[1].reason, "whippy: contact not sent: phone is required");
  EXPECT_EQ(run.outcomes[2].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[3].kind, OutcomeKind::kReject);
}

TEST(WhippyProvider, BatchWithoutAnyPhoneSendsNothing) {
  WhippyProvider provider(Config());
  mapping::Contact no_phone;
  no_phone.email = "a@example.com";
  Fixture f({no_phone}, mapping::Action::kOverwrite);
  const ExchangeRun run = DriveOk(provider, f.batch);
  EXPECT_TRUE(run.requests.empty());
  ASSERT_EQ(run.outcomes.size(), 1u);
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject);
}

TEST(WhippyProvider, ContactsWhippyWouldRefuseAreRejectedLocally) {
  WhippyProvider provider(Config());
  mapping::Contact long_email = Person("1", std::string(250, 'a') + "@x.com");
  mapping::Contact long_name = Person("2");
  long_name.fields["name"] = std::string(256, 'n');
  mapping::Contact wide_name = Person("3");  // 255 characters, 510 bytes: fine
  std::string name;
  for (int i = 0; i < 255; ++i) name += "\xC3\xA9";
  wide_name.fields["name"] = name;
  mapping::Contact bad_month = Person("4");
  bad_month.fields["birth_date.month"] = "13";
  mapping::Contact bad_day = Person("5");
  bad_day.fields["birth_date.day"] = "1st";
  Fixture f({long_email, long_name, wide_name, bad_month, bad_day});
  const ExchangeRun run = DriveOk(provider, f.batch);
  ASSERT_EQ(run.requests.size(), 1u);
  EXPECT_EQ(ParseBody(run.requests[0])["contacts"].Size(), 1u);
  EXPECT_EQ(run.outcomes[0].reason,
            "whippy: contact not sent: email is longer than 255 characters");
  EXPECT_EQ(run.outcomes[1].reason, "whippy: contact not sent: name is longer than 255 characters");
  EXPECT_EQ(run.outcomes[2].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[3].reason,
            "whippy: contact not sent: birth_date.month must be an integer from 1 to 12");
  EXPECT_EQ(run.outcomes[4].reason,
            "whippy: contact not sent: birth_date.day must be an integer from 1 to 31");
  EXPECT_EQ(SchemaViolation(run.requests[0].body), "");
}

TEST(WhippyProvider, OverwriteBeyond4000IsOverwriteThenSequentialAdds) {
  mapping::ProviderConfig config = Config();
  config.max_batch = 100000;
  WhippyProvider provider(config);
  Fixture f(People(9001), mapping::Action::kOverwrite, R"({"opt_in_to_all_channels":false})");
  const ExchangeRun run = DriveOk(provider, f.batch);
  ASSERT_EQ(run.requests.size(), 3u);
  EXPECT_EQ(run.rounds, 3u);  // one request per round: strictly in order
  const std::vector<std::pair<std::string, size_t>> expected = {
      {"overwrite", 4000}, {"add", 4000}, {"add", 1001}};
  size_t offset = 0;
  for (size_t r = 0; r < expected.size(); ++r) {
    EXPECT_EQ(SchemaViolation(run.requests[r].body), "");
    const rapidjson::Document doc = ParseBody(run.requests[r]);
    EXPECT_EQ(doc["action"].GetString(), expected[r].first);
    ASSERT_EQ(doc["contacts"].Size(), expected[r].second);
    // Items keep their order and every one is sent exactly once.
    EXPECT_EQ(doc["contacts"][0]["phone"].GetString(), *f.ops[offset].contact.phone);
    EXPECT_FALSE(doc["opt_in_to_all_channels"].GetBool());
    offset += expected[r].second;
  }
  EXPECT_EQ(offset, 9001u);
  ASSERT_EQ(run.outcomes.size(), 9001u);
  ExpectAll(run.outcomes, OutcomeKind::kDone);
}

TEST(WhippyProvider, ExactlyFourThousandIsOneRequest) {
  WhippyProvider provider(Config());
  Fixture f(People(4000), mapping::Action::kOverwrite);
  const ExchangeRun run = DriveOk(provider, f.batch);
  ASSERT_EQ(run.requests.size(), 1u);
  EXPECT_EQ(ParseBody(run.requests[0])["contacts"].Size(), 4000u);
}

TEST(WhippyProvider, FailedOverwriteSendsNothingElse) {
  WhippyProvider provider(Config());
  Fixture f(People(8500), mapping::Action::kOverwrite);

  HttpResponse unavailable = Response(503, R"({"errors":[{"description":"down"}],"status":503})");
  unavailable.retry_after = seconds(7);
  ExchangeRun run =
      Drive(provider, f.batch, [&](const HttpRequest&, size_t) { return unavailable; });
  ASSERT_EQ(run.requests.size(), 1u);
  ExpectAll(run.outcomes, OutcomeKind::kRetry);
  EXPECT_EQ(run.outcomes[0].reason, "whippy: HTTP 503: down");
  EXPECT_EQ(run.outcomes[8499].reason,
            "whippy: not sent, the list overwrite must succeed first: whippy: HTTP 503: down");
  EXPECT_EQ(run.outcomes[8499].retry_after, milliseconds(7000));

  const HttpResponse invalid =
      Response(422, R"({"errors":[{"description":"contact list is not active"}],"status":422})");
  run = Drive(provider, f.batch, [&](const HttpRequest&, size_t) { return invalid; });
  ASSERT_EQ(run.requests.size(), 1u);
  ExpectAll(run.outcomes, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[0].reason, "whippy: HTTP 422: contact list is not active");
  EXPECT_EQ(run.outcomes[4000].reason,
            "whippy: not sent, the list overwrite was rejected: whippy: HTTP 422: contact list "
            "is not active");
}

TEST(WhippyProvider, OverwriteRetriedAsAWholeWhenALaterChunkFails) {
  WhippyProvider provider(Config());
  Fixture f(People(9000), mapping::Action::kOverwrite);
  f.ops[10].contact.phone.reset();
  const ExchangeRun run = Drive(provider, f.batch, [](const HttpRequest&, size_t n) {
    return n == 1 ? TransportFailure(Transport::kTimeout, "timed out") : Response(200);
  });
  ASSERT_EQ(run.requests.size(), 2u);  // the third chunk is not sent
  EXPECT_EQ(run.outcomes[10].kind, OutcomeKind::kReject);
  for (size_t i = 0; i < run.outcomes.size(); ++i) {
    if (i == 10) continue;
    ASSERT_EQ(run.outcomes[i].kind, OutcomeKind::kRetry) << i;
  }
  EXPECT_EQ(run.outcomes[0].reason,
            "whippy: overwrite incomplete, the whole overwrite is retried: whippy: request timed "
            "out: timed out");
}

TEST(WhippyProvider, RejectedLaterOverwriteChunkDoesNotStopTheRest) {
  WhippyProvider provider(Config());
  Fixture f(People(9000), mapping::Action::kOverwrite);
  const ExchangeRun run = Drive(provider, f.batch, [](const HttpRequest&, size_t n) {
    return n == 1 ? Response(400, R"({"errors":[{"description":"bad phone"}],"status":400})")
                  : Response(200);
  });
  ASSERT_EQ(run.requests.size(), 3u);
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[4000].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[7999].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[8000].kind, OutcomeKind::kDone);
}

// MaxBatch() keeps add and remove batches within one request; should a larger
// one arrive anyway it is split into independent chunks rather than sent as a
// request Whippy refuses.
TEST(WhippyProvider, AddBeyond4000IsSplitIntoIndependentChunks) {
  WhippyProvider provider(Config());
  for (const mapping::Action action : {mapping::Action::kAdd, mapping::Action::kRemove}) {
    Fixture f(People(8001), action);
    const ExchangeRun run = Drive(provider, f.batch, [](const HttpRequest&, size_t n) {
      return n == 0 ? Response(500) : Response(200);
    });
    ASSERT_EQ(run.requests.size(), 3u);
    for (const HttpRequest& request : run.requests) {
      EXPECT_EQ(ParseBody(request)["action"].GetString(), mapping::ActionName(action));
    }
    EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
    EXPECT_EQ(run.outcomes[3999].kind, OutcomeKind::kRetry);
    EXPECT_EQ(run.outcomes[4000].kind, OutcomeKind::kDone);
    EXPECT_EQ(run.outcomes[8000].kind, OutcomeKind::kDone);
  }
}

TEST(WhippyProvider, AnySuccessfulResponseIsDone) {
  WhippyProvider provider(Config());
  for (const auto& response :
       {Response(200, ""), Response(200, "not json"), Response(201, R"({"data":{"id":"l"}})"),
        Response(202, "[]"), Response(204, ""),
        Response(200, R"({"errors":[{"description":"no phone named"}]})")}) {
    Fixture f({Person("1"), Person("2")});
    const auto outcomes = ClassifyOne(provider, f.batch, response);
    ExpectAll(outcomes, OutcomeKind::kDone);
    EXPECT_EQ(outcomes[0].http_status, response.status);
  }
}

TEST(WhippyProvider, PerContactErrorsInSuccessRejectThoseContacts) {
  WhippyProvider provider(Config());
  Fixture f({Person("1"), Person("2"), Person("2"), Person("3")});
  auto outcomes =
      ClassifyOne(provider, f.batch,
                  Response(200, R"({"errors":[{"phone":"2","description":"invalid phone"}]})"));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason, "whippy rejected contact: invalid phone");
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kDone);

  outcomes =
      ClassifyOne(provider, f.batch,
                  Response(200, R"({"data":{"errors":[{"phone":"3","message":"blocked"}]}})"));
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[3].reason, "whippy rejected contact: blocked");
}

TEST(WhippyProvider, ErrorsEchoingNormalisedIdentitiesRejectTheirContacts) {
  // Whippy answers in E.164 and lower case; the request carried the CRM's
  // spelling. Before, the errors matched nothing and every contact was done.
  WhippyProvider provider(Config());
  Fixture f({Person("(555) 123-4567"), Person("1 555 000 0002"),
             Person("15550000003", "Cy@Example.COM"), Person("15550000004")});
  const auto outcomes = ClassifyOne(
      provider, f.batch,
      Response(200, R"({"errors":[{"phone":"+15551234567","description":"blocked number"},)"
                    R"({"phone":"+15550000002","description":"invalid phone"},)"
                    R"({"email":"cy@example.com","description":"duplicate email"}]})"));
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason, "whippy rejected contact: blocked number");
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason, "whippy rejected contact: invalid phone");
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].reason, "whippy rejected contact: duplicate email");
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kDone);
}

TEST(WhippyProvider, ErrorForAContactThatCannotBeFoundRetriesTheRest) {
  // An error names a contact none of ours matches: one of them failed, and
  // which cannot be told, so none is counted as delivered.
  WhippyProvider provider(Config());
  Fixture f({Person("15550000001"), Person("15550000002"), Person("15550000003")});
  const auto outcomes =
      ClassifyOne(provider, f.batch,
                  Response(200, R"({"errors":[{"phone":"+15550000002","description":"bad"},)"
                                R"({"phone":"+449999","description":"unknown"}]})"));
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry) << outcomes[0].reason;
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kRetry);
  EXPECT_NE(outcomes[0].reason.find("unknown"), std::string::npos) << outcomes[0].reason;
  EXPECT_EQ(outcomes[0].http_status, 200);
}

TEST(WhippyProvider, AuthenticationFailuresAreRetried) {
  WhippyProvider provider(Config());
  for (const long status : {401L, 403L}) {
    Fixture f({Person("1")});
    const auto outcomes = ClassifyOne(
        provider, f.batch,
        Response(status,
                 R"({"errors":[{"description":"bad key whippy-secret-key"}],"status":401})"));
    EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry);
    EXPECT_EQ(outcomes[0].http_status, status);
    EXPECT_EQ(outcomes[0].reason, "whippy: authentication failed (HTTP " + std::to_string(status) +
                                      ") — check the API key");
  }
}

TEST(WhippyProvider, NotFoundOrWrongMethodIsAConfigurationReject) {
  WhippyProvider provider(Config(R"({"listMethod":"POST"})"));
  Fixture f({Person("1"), Person("2")});
  auto outcomes = ClassifyOne(provider, f.batch, Response(404, "<html>nope</html>"));
  ExpectAll(outcomes, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason,
            "whippy: list endpoint not found with method POST (HTTP 404) — check "
            "providers.whippy.listMethod and the list id");
  outcomes =
      ClassifyOne(provider, f.batch,
                  Response(405, R"({"errors":[{"description":"not allowed"}],"status":405})"));
  ExpectAll(outcomes, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason,
            "whippy: list endpoint not found with method POST (HTTP 405: not allowed) — check "
            "providers.whippy.listMethod and the list id");
}

TEST(WhippyProvider, ValidationErrorsRejectWithEveryDescription) {
  WhippyProvider provider(Config());
  for (const long status : {400L, 422L}) {
    Fixture f({Person("1"), Person("2")});
    const auto outcomes = ClassifyOne(
        provider, f.batch,
        Response(status, R"({"errors":[{"description":"contacts[0].email is invalid"},)"
                         R"({"description":"contact list is not active"}],"status":422})"));
    ExpectAll(outcomes, OutcomeKind::kReject);
    EXPECT_EQ(outcomes[0].reason, "whippy: HTTP " + std::to_string(status) +
                                      ": contacts[0].email is invalid; contact list is not active");
  }
  Fixture f({Person("1")});
  const auto outcomes = ClassifyOne(provider, f.batch, Response(400, ""));
  EXPECT_EQ(outcomes[0].reason, "whippy: HTTP 400: no error description");
}

TEST(WhippyProvider, TransientStatusesAreRetriedHonouringRetryAfter) {
  WhippyProvider provider(Config());
  for (const long status : {408L, 425L, 429L, 500L, 502L, 503L, 504L}) {
    HttpResponse response = Response(status, R"({"errors":[{"description":"Too many requests"}]})");
    response.retry_after = seconds(3);
    Fixture f({Person("1")});
    const auto outcomes = ClassifyOne(provider, f.batch, response);
    EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry) << status;
    EXPECT_EQ(outcomes[0].http_status, status);
    EXPECT_EQ(outcomes[0].retry_after, milliseconds(3000));
    EXPECT_EQ(outcomes[0].reason, "whippy: HTTP " + std::to_string(status) + ": Too many requests");
  }
  Fixture f({Person("1")});
  const auto outcomes = ClassifyOne(provider, f.batch, Response(429, ""));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_FALSE(outcomes[0].retry_after.has_value());  // Whippy documents none
}

TEST(WhippyProvider, OtherClientErrorsRejectAndOddStatusesRetry) {
  WhippyProvider provider(Config());
  Fixture f({Person("1")});
  auto outcomes = ClassifyOne(provider, f.batch, Response(409, R"({"message":"conflict"})"));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason, "whippy: HTTP 409: conflict");
  outcomes = ClassifyOne(provider, f.batch, Response(302, ""));
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].reason, "whippy: unexpected HTTP 302");
}

TEST(WhippyProvider, EveryTransportFailureIsRetried) {
  WhippyProvider provider(Config());
  const std::vector<std::pair<Transport, std::string>> cases = {
      {Transport::kTimeout, "whippy: request timed out: "},
      {Transport::kConnectFailed, "whippy: connection failed: "},
      {Transport::kBroken, "whippy: connection broken: "},
      {Transport::kConfigError, "whippy: request not sent (configuration): "}};
  for (const auto& [transport, prefix] : cases) {
    Fixture f({Person("1"), Person("2")});
    const auto outcomes = ClassifyOne(provider, f.batch,
                                      TransportFailure(transport, "boom at key=whippy-secret-key"));
    ExpectAll(outcomes, OutcomeKind::kRetry);
    EXPECT_EQ(outcomes[0].reason, prefix + "boom at key=[redacted]");
  }
}

TEST(WhippyProvider, ReasonsNeverContainTheApiKey) {
  WhippyProvider provider(Config());
  const std::string echo =
      R"({"errors":[{"phone":"1","description":"key whippy-secret-key refused"}],"status":400})";
  for (const long status : {200L, 400L, 404L, 409L, 429L, 500L, 302L}) {
    Fixture f({Person("1")});
    const auto outcomes = ClassifyOne(provider, f.batch, Response(status, echo));
    EXPECT_EQ(outcomes[0].reason.find(kKey), std::string::npos) << outcomes[0].reason;
  }
  Fixture f({Person("1")});
  const auto outcomes = ClassifyOne(provider, f.batch, Response(400, echo));
  EXPECT_EQ(outcomes[0].reason, "whippy: HTTP 400: key [redacted] refused");
}

TEST(WhippyProvider, LongErrorTextIsTruncated) {
  WhippyProvider provider(Config());
  Fixture f({Person("1")});
  const auto outcomes = ClassifyOne(
      provider, f.batch,
      Response(422, R"({"errors":[{"description":")" + std::string(1000, 'x') + R"("}]})"));
  EXPECT_LT(outcomes[0].reason.size(), 350u);
  EXPECT_EQ(outcomes[0].reason.substr(outcomes[0].reason.size() - 3), "...");
}

}  // namespace
}  // namespace crmsync::providers::whippy
