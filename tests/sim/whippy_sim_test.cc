#include "sim/whippy_sim.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "providers/whippy/whippy.h"
#include "sim/simulator.h"
#include "tests/support/provider_fixture.h"

namespace crmsync::sim {
namespace {

using std::chrono::milliseconds;

constexpr char kList[] = "list-1";
constexpr char kKey[] = "sim-whippy-key";
constexpr char kChannel[] = "0b7e6c1a-2f3d-4e5a-8b9c-0d1e2f3a4b5c";

std::string Phones(size_t count, const std::string& prefix = "1555") {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    out += (i == 0 ? "" : ",") + std::string(R"({"phone":")") + prefix + std::to_string(i) + "\"}";
  }
  return out;
}

// A fresh simulator per test, with a Whippy key and (unless a test turns them
// on) no rate limits, so that tests may send more than 10 list writes.
class WhippySimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Simulator::Options options;
    options.api_keys = {{"replify", "sim-replify-key"}, {"whippy", kKey}};
    options.knobs.enforce_rate_limits = false;
    sim_ = std::make_unique<Simulator>(options);
    sim_->Start();
  }
  void TearDown() override { sim_->Stop(); }

  Simulator& Sim() { return *sim_; }
  WhippySim& Whippy() { return *dynamic_cast<WhippySim*>(sim_->Provider("whippy")); }

  httplib::Client Client() {
    httplib::Client client("127.0.0.1", Sim().Port());
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    client.set_tcp_nodelay(true);
    return client;
  }

  httplib::Result Send(const std::string& body, const std::string& list = kList,
                       const char* key = kKey, const std::string& method = "PUT") {
    httplib::Headers headers;
    if (key != nullptr) headers.emplace("X-WHIPPY-KEY", key);
    const std::string path = "/whippy/v1/contacts/lists/" + list + "/contacts";
    httplib::Client client = Client();
    if (method == "POST") return client.Post(path, headers, body, "application/json");
    if (method == "PATCH") return client.Patch(path, headers, body, "application/json");
    return client.Put(path, headers, body, "application/json");
  }

  // Sends and expects a 200.
  void Apply(const std::string& body, const std::string& list = kList) {
    const auto result = Send(body, list);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200) << result->body;
  }

  std::map<std::string, WhippyContact> Members(const std::string& list = kList) {
    const auto lists = Whippy().Lists();
    const auto it = lists.find(list);
    return it == lists.end() ? std::map<std::string, WhippyContact>{} : it->second;
  }

 private:
  std::unique_ptr<Simulator> sim_;
};

// The description of Whippy's error body, after checking its shape.
std::string Description(const httplib::Result& result) {
  rapidjson::Document doc;
  doc.Parse(result->body.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("errors") ||
      !doc["errors"].IsArray() || doc["errors"].Empty() ||
      !doc["errors"][0].HasMember("description") || !doc.HasMember("status") ||
      doc["status"].GetInt() != result->status) {
    return "<not a Whippy error body: " + result->body + ">";
  }
  return doc["errors"][0]["description"].GetString();
}

void ExpectError(const httplib::Result& result, int status, const std::string& description) {
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, status) << result->body;
  EXPECT_EQ(Description(result), description);
}

TEST_F(WhippySimTest, MissingOrWrongApiKeyIsUnauthorized) {
  const std::string body = R"({"action":"add","contacts":[{"phone":"1"}]})";
  ExpectError(Send(body, kList, nullptr), 401, "Unauthorized");
  ExpectError(Send(body, kList, "wrong"), 401, "Unauthorized");
  ExpectError(Send(body, kList, "sim-replify-key"), 401, "Unauthorized");
  EXPECT_EQ(Sim().GetCounters().unauthorized, 3u);
  EXPECT_EQ(Sim().GetCounters().requests, 3u);
  EXPECT_TRUE(Whippy().Lists().empty());
  EXPECT_TRUE(Whippy().Contacts().empty());
}

TEST_F(WhippySimTest, ActionIsRequiredAndOneOfThree) {
  ExpectError(Send(R"({"contacts":[{"phone":"1"}]})"), 400, "action is required");
  for (const char* body : {R"({"action":"upsert","contacts":[{"phone":"1"}]})",
                           R"({"action":"ADD","contacts":[{"phone":"1"}]})",
                           R"({"action":1,"contacts":[{"phone":"1"}]})"}) {
    ExpectError(Send(body), 400, "action must be one of add, remove, overwrite");
  }
  EXPECT_TRUE(Whippy().Contacts().empty());
}

TEST_F(WhippySimTest, ContactsMustHaveOneTo4000Items) {
  ExpectError(Send(R"({"action":"add"})"), 400, "contacts is required and must be an array");
  ExpectError(Send(R"({"action":"add","contacts":[]})"), 400,
              "contacts should have between 1 and 4000 item(s)");
  ExpectError(Send(R"({"action":"add","contacts":[)" + Phones(4001) + "]}"), 400,
              "contacts should have between 1 and 4000 item(s)");
  EXPECT_TRUE(Whippy().Contacts().empty());
  Apply(R"({"action":"add","contacts":[)" + Phones(4000) + "]}");
  EXPECT_EQ(Members().size(), 4000u);
}

TEST_F(WhippySimTest, EveryContactNeedsAPhone) {
  ExpectError(Send(R"({"action":"add","contacts":[{"phone":"1"},{"email":"a@example.com"}]})"), 400,
              "contacts[1].phone is required");
  ExpectError(Send(R"({"action":"remove","contacts":[{"phone":""}]})"), 400,
              "contacts[0].phone is required");
  EXPECT_TRUE(Whippy().Contacts().empty());
}

TEST_F(WhippySimTest, EmailAndNameAreAtMost255Characters) {
  const std::string long_text(256, 'x');
  ExpectError(Send(R"({"action":"add","contacts":[{"phone":"1","email":")" + long_text + R"("}]})"),
              400, "contacts[0].email should be at most 255 character(s)");
  ExpectError(Send(R"({"action":"add","contacts":[{"phone":"1","name":")" + long_text + R"("}]})"),
              400, "contacts[0].name should be at most 255 character(s)");
  std::string wide;  // 255 two-byte characters
  for (int i = 0; i < 255; ++i) wide += "\xC3\xA9";
  Apply(R"({"action":"add","contacts":[{"phone":"1","name":")" + wide + R"("}]})");
  EXPECT_EQ(Whippy().Contacts().at("1").name, wide);
}

TEST_F(WhippySimTest, OptInToMustHaveOneTo1000Channels) {
  const std::string contacts = R"("action":"add","contacts":[{"phone":"1"}])";
  std::string many;
  for (int i = 0; i < 1001; ++i) many += (i == 0 ? "" : ",") + std::string(R"({"id":"c"})");
  ExpectError(Send("{" + contacts + R"(,"opt_in_to":[]})"), 400,
              "opt_in_to should have between 1 and 1000 item(s)");
  ExpectError(Send("{" + contacts + R"(,"opt_in_to":[)" + many + "]}"), 400,
              "opt_in_to should have between 1 and 1000 item(s)");
  ExpectError(Send("{" + contacts + R"(,"opt_in_to":[{"name":"x"}]})"), 400,
              "opt_in_to[0] must have an id or a phone");
  ExpectError(Send("{" + contacts + R"(,"opt_in_to_all_channels":"no"})"), 400,
              "opt_in_to_all_channels must be a boolean");
  EXPECT_TRUE(Whippy().Contacts().empty());
  many = many.substr(0, many.size() - std::string(R"(,{"id":"c"})").size());
  Apply("{" + contacts + R"(,"opt_in_to":[)" + many + "]}");
}

TEST_F(WhippySimTest, MalformedBodiesAreBadRequests) {
  for (const char* body :
       {"not json", "[]", R"({"action":"add","contacts":{"phone":"1"}})",
        R"({"action":"add","contacts":[42]})", R"({"action":"add","contacts":[{"phone":1}]})",
        R"({"action":"add","contacts":[{"phone":"1","email":7}]})",
        R"({"action":"add","contacts":[{"phone":"1","address":"x"}]})",
        R"({"action":"add","contacts":[{"phone":"1","birth_date":{"day":"9"}}]})",
        R"({"action":"add","contacts":[{"phone":"1","properties":[]}]})"}) {
    const auto result = Send(body);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << body;
    EXPECT_EQ(Description(result).find("<not"), std::string::npos) << body;
  }
  EXPECT_TRUE(Whippy().Contacts().empty());
}

TEST_F(WhippySimTest, AddRemoveAndOverwriteChangeMembership) {
  Apply(R"({"action":"add","contacts":[{"phone":"1"},{"phone":"2"},{"phone":"3"}]})");
  Apply(R"({"action":"add","contacts":[{"phone":"4"}]})", "other-list");
  EXPECT_EQ(Members().size(), 3u);
  Apply(R"({"action":"remove","contacts":[{"phone":"2"},{"phone":"9"}]})");
  auto members = Members();
  EXPECT_EQ(members.size(), 2u);
  EXPECT_EQ(members.count("2"), 0u);
  Apply(R"({"action":"overwrite","contacts":[{"phone":"3"},{"phone":"5"}]})");
  members = Members();
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members.count("3"), 1u);
  EXPECT_EQ(members.count("5"), 1u);
  EXPECT_EQ(Members("other-list").size(), 1u);  // other lists untouched
  // Contacts leave lists, never the organisation.
  EXPECT_EQ(Whippy().Contacts().size(), 6u);
}

TEST_F(WhippySimTest, ContactsAreUpsertedByPhoneBeforeTheAction) {
  Apply(R"({"action":"add","contacts":[{"phone":"15551234567","email":"ava@example.com",
    "name":"Ava","external_id":"crm-1","language":"es","default_channel_id":")" +
        std::string(kChannel) + R"(",
    "address":{"address_line_one":"1 Main St","city":"Austin","post_code":"73301"},
    "birth_date":{"day":9,"month":12,"year":1990},
    "properties":{"tier":"trial","seats":3}}]})");
  // Absent fields stay; properties merge; remove upserts too.
  Apply(R"({"action":"remove","contacts":[{"phone":"15551234567","name":"Ava Lopez",
    "properties":{"tier":"pro"}}]})");
  WhippyContact expected;
  expected.phone = "15551234567";
  expected.email = "ava@example.com";
  expected.name = "Ava Lopez";
  expected.external_id = "crm-1";
  expected.language = "es";
  expected.default_channel_id = kChannel;
  expected.address = {
      {"address_line_one", "1 Main St"}, {"city", "Austin"}, {"post_code", "73301"}};
  expected.birth_date = WhippyBirthDate{9, 12, 1990};
  expected.properties = {{"tier", "pro"}, {"seats", "3"}};
  expected.opted_in_all_channels = true;
  EXPECT_EQ(Whippy().Contacts().at("15551234567"), expected);
  EXPECT_TRUE(Members().empty());
}

TEST_F(WhippySimTest, EmailOrExternalIdConflictRejectsTheWholeRequest) {
  Apply(
      R"({"action":"add","contacts":[{"phone":"1","email":"a@example.com","external_id":"x1"}]})");
  ExpectError(
      Send(R"({"action":"add","contacts":[{"phone":"2"},{"phone":"3","email":"a@example.com"}]})"),
      422, "email a@example.com has already been taken by another contact");
  ExpectError(Send(R"({"action":"overwrite","contacts":[{"phone":"4","external_id":"x1"}]})"), 422,
              "external_id x1 has already been taken by another contact");
  EXPECT_EQ(Whippy().Contacts().size(), 1u);
  EXPECT_EQ(Members().size(), 1u);
  // The owner itself may resend them, and a changed email frees the old one.
  Apply(R"({"action":"add","contacts":[{"phone":"1","email":"b@example.com"}]})");
  Apply(R"({"action":"add","contacts":[{"phone":"2","email":"a@example.com"}]})");
  EXPECT_EQ(Whippy().Contacts().at("2").email, "a@example.com");
}

TEST_F(WhippySimTest, OptInIsRecordedForAddAndOverwrite) {
  Apply(R"({"action":"add","contacts":[{"phone":"1"}]})");
  Apply(R"({"action":"overwrite","contacts":[{"phone":"2"}],
    "opt_in_to":[{"id":")" +
        std::string(kChannel) + R"("},{"phone":"15550001111"}]})");
  Apply(R"({"action":"add","contacts":[{"phone":"3"}],"opt_in_to_all_channels":false})");
  Apply(R"({"action":"remove","contacts":[{"phone":"4"}]})");
  const auto contacts = Whippy().Contacts();
  EXPECT_TRUE(contacts.at("1").opted_in_all_channels);
  EXPECT_TRUE(contacts.at("1").opted_in_channels.empty());
  EXPECT_FALSE(contacts.at("2").opted_in_all_channels);
  EXPECT_EQ(contacts.at("2").opted_in_channels,
            (std::set<std::string>{std::string("id:") + kChannel, "phone:15550001111"}));
  EXPECT_FALSE(contacts.at("3").opted_in_all_channels);
  EXPECT_TRUE(contacts.at("3").opted_in_channels.empty());
  EXPECT_FALSE(contacts.at("4").opted_in_all_channels);
}

TEST_F(WhippySimTest, InactiveListRefusesRequests) {
  Apply(R"({"action":"add","contacts":[{"phone":"1"}]})");
  Whippy().SetListActive(kList, false);
  ExpectError(Send(R"({"action":"overwrite","contacts":[{"phone":"2"}]})"), 422,
              "contact list is not active");
  EXPECT_EQ(Members().size(), 1u);
  EXPECT_EQ(Whippy().Contacts().count("2"), 0u);

  const auto result = Client().Post("/_sim/whippy/lists/" + std::string(kList),
                                    R"({"active":true})", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  Apply(R"({"action":"overwrite","contacts":[{"phone":"2"}]})");
  EXPECT_EQ(Members().count("2"), 1u);
}

TEST_F(WhippySimTest, OnlyTheConfiguredMethodAnswers) {
  const std::string body = R"({"action":"add","contacts":[{"phone":"1"}]})";
  EXPECT_EQ(Whippy().ListMethod(), "PUT");
  ExpectError(Send(body, kList, kKey, "POST"), 405, "method POST is not allowed on this route");
  ExpectError(Send(body, kList, kKey, "PATCH"), 405, "method PATCH is not allowed on this route");
  EXPECT_TRUE(Whippy().Contacts().empty());

  EXPECT_TRUE(Whippy().SetListMethod("patch"));
  EXPECT_FALSE(Whippy().SetListMethod("GET"));
  EXPECT_EQ(Whippy().ListMethod(), "PATCH");
  ExpectError(Send(body, kList, kKey, "PUT"), 405, "method PUT is not allowed on this route");
  auto result = Send(body, kList, kKey, "PATCH");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);

  result = Client().Post("/_sim/whippy/settings", R"({"listMethod":"POST"})", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  result = Send(body, kList, kKey, "POST");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  result = Client().Post("/_sim/whippy/settings", R"({"listMethod":"GET"})", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_EQ(Whippy().ListMethod(), "POST");
}

TEST_F(WhippySimTest, RateLimitAnswers429AfterTenWritesAndRecovers) {
  Knobs knobs = Sim().GetKnobs();
  knobs.enforce_rate_limits = true;
  knobs.rate_limit_time_scale = 30;  // 10 per minute becomes 10 per 2 seconds
  Sim().SetKnobs(knobs);
  const std::string body = R"({"action":"add","contacts":[{"phone":"1"}]})";
  for (int i = 0; i < WhippySim::kListWritesPerMinute; ++i) {
    const auto result = Send(body);
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200) << "write " << i;
  }
  const auto limited = Send(body);
  ExpectError(limited, 429, "Too many requests");
  EXPECT_FALSE(limited->has_header("Retry-After"));
  EXPECT_EQ(Sim().GetCounters().rate_limited, 1u);

  // The window slides on: a write is admitted again within a few seconds.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  int status = 429;
  while (status == 429 && std::chrono::steady_clock::now() < deadline) {
    const auto result = Send(body);
    ASSERT_TRUE(result);
    status = result->status;
  }
  EXPECT_EQ(status, 200);
}

TEST_F(WhippySimTest, InjectedFailuresUseWhippysErrorBody) {
  Knobs knobs = Sim().GetKnobs();
  knobs.fail_all = true;
  Sim().SetKnobs(knobs);
  ExpectError(Send(R"({"action":"add","contacts":[{"phone":"1"}]})"), 503, "Service unavailable");
  EXPECT_TRUE(Whippy().Contacts().empty());
  EXPECT_EQ(Sim().GetCounters().injected_failures, 1u);
}

TEST_F(WhippySimTest, StateJsonShowsListsAndContacts) {
  Apply(R"({"action":"add","contacts":[{"phone":"1","email":"a@example.com",
    "properties":{"k":"v"}}]})");
  Whippy().SetListActive("closed", false);
  rapidjson::Document doc;
  const auto result = Client().Get("/_sim/state");
  ASSERT_TRUE(result);
  doc.Parse(result->body.c_str());
  ASSERT_FALSE(doc.HasParseError());
  const auto& whippy = doc["whippy"];
  EXPECT_STREQ(whippy["listMethod"].GetString(), "PUT");
  EXPECT_TRUE(whippy["lists"][kList]["active"].GetBool());
  ASSERT_EQ(whippy["lists"][kList]["members"].Size(), 1u);
  EXPECT_STREQ(whippy["lists"][kList]["members"][0].GetString(), "1");
  EXPECT_FALSE(whippy["lists"]["closed"]["active"].GetBool());
  ASSERT_EQ(whippy["contacts"].Size(), 1u);
  EXPECT_STREQ(whippy["contacts"][0]["email"].GetString(), "a@example.com");
  EXPECT_STREQ(whippy["contacts"][0]["properties"]["k"].GetString(), "v");
  EXPECT_TRUE(whippy["contacts"][0]["opted_in_all_channels"].GetBool());
}

TEST_F(WhippySimTest, ResetForgetsListsAndContactsButKeepsTheMethod) {
  ASSERT_TRUE(Whippy().SetListMethod("POST"));
  ASSERT_EQ(Send(R"({"action":"add","contacts":[{"phone":"1"}]})", kList, kKey, "POST")->status,
            200);
  Sim().Reset();
  EXPECT_TRUE(Whippy().Lists().empty());
  EXPECT_TRUE(Whippy().Contacts().empty());
  EXPECT_EQ(Whippy().ListMethod(), "POST");
}

// End to end: requests built by WhippyProvider, sent over loopback, answered
// by the simulator and classified by WhippyProvider.
class WhippyRoundTrip : public WhippySimTest {
 protected:
  providers::whippy::WhippyProvider Provider(const std::string& key = kKey,
                                             const std::string& settings = "") {
    mapping::ProviderConfig config;
    config.name = "whippy";
    config.base_url = Sim().BaseUrl("whippy");
    config.api_key = key;
    config.max_batch = 100000;
    config.settings_json = settings;
    return providers::whippy::WhippyProvider(config);
  }

  providers::HttpResponse Transmit(const providers::HttpRequest& request) {
    const std::string origin = "http://127.0.0.1:" + std::to_string(Sim().Port());
    EXPECT_EQ(request.url.rfind(origin, 0), 0u) << request.url;
    const std::string path = request.url.substr(origin.size());
    httplib::Headers headers;
    std::string content_type;
    for (const auto& [name, value] : request.headers) {
      if (name == "Content-Type") {
        content_type = value;
      } else {
        headers.emplace(name, value);
      }
    }
    EXPECT_TRUE(request.method == "PUT" || request.method == "POST" || request.method == "PATCH")
        << request.method;
    httplib::Client client = Client();
    httplib::Result result =
        request.method == "POST"    ? client.Post(path, headers, request.body, content_type)
        : request.method == "PATCH" ? client.Patch(path, headers, request.body, content_type)
                                    : client.Put(path, headers, request.body, content_type);
    providers::HttpResponse response;
    if (!result) {
      response.transport = providers::Transport::kConnectFailed;
      response.transport_error = httplib::to_string(result.error());
      return response;
    }
    response.status = result->status;
    response.body = result->body;
    response.content_type = result->get_header_value("Content-Type");
    if (result->has_header("Retry-After")) {
      response.retry_after =
          std::chrono::seconds(std::stoi(result->get_header_value("Retry-After")));
    }
    return response;
  }

  // Runs one batch of these contacts through a whole exchange.
  std::vector<providers::Outcome> Deliver(providers::whippy::WhippyProvider& provider,
                                          mapping::Action action,
                                          std::vector<mapping::Contact> contacts,
                                          const std::string& options = "",
                                          const std::string& list = kList) {
    testing::BatchFixture fixture("whippy", list, std::move(contacts), action, options);
    const auto exchange = provider.Start(fixture.batch);
    for (auto round = exchange->NextRound(); !round.empty(); round = exchange->NextRound()) {
      for (size_t i = 0; i < round.size(); ++i) exchange->OnResponse(i, Transmit(round[i]));
    }
    return exchange->Outcomes();
  }
};

mapping::Contact Person(const std::string& phone) {
  mapping::Contact contact;
  contact.phone = phone;
  return contact;
}

std::vector<mapping::Contact> People(size_t count, const std::string& prefix) {
  std::vector<mapping::Contact> people;
  for (size_t i = 0; i < count; ++i) people.push_back(Person(prefix + std::to_string(i)));
  return people;
}

void ExpectAll(const std::vector<providers::Outcome>& outcomes, providers::OutcomeKind kind) {
  for (size_t i = 0; i < outcomes.size(); ++i) {
    ASSERT_EQ(outcomes[i].kind, kind) << "item " << i << ": " << outcomes[i].reason;
  }
}

TEST_F(WhippyRoundTrip, AddOutcomesMatchSimulatorState) {
  auto provider = Provider();
  mapping::Contact ava = Person("15551234567");
  ava.email = "ava@example.com";
  ava.first_name = "Ava";
  ava.last_name = "Lopez";
  ava.external_id_key = "hubspotId";
  ava.external_id_value = "1";
  ava.metadata = {{"tier", "trial"}};
  ava.fields = {{"language", "es"},
                {"address.city", "Austin"},
                {"birth_date.day", "9"},
                {"birth_date.month", "12"}};
  mapping::Contact no_phone;
  no_phone.email = "nophone@example.com";

  const auto outcomes = Deliver(provider, mapping::Action::kAdd, {ava, no_phone, Person("2")},
                                std::string(R"({"opt_in_to":[{"id":")") + kChannel + R"("}]})");
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(outcomes[0].http_status, 200);
  EXPECT_EQ(outcomes[1].kind, providers::OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason, "whippy: contact not sent: phone is required");
  EXPECT_EQ(outcomes[2].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(Sim().GetCounters().requests, 1u);

  const auto members = Members();
  ASSERT_EQ(members.size(), 2u);
  const WhippyContact& stored = members.at("15551234567");
  EXPECT_EQ(stored.email, "ava@example.com");
  EXPECT_EQ(stored.name, "Ava Lopez");
  EXPECT_EQ(stored.external_id, "hubspotId:1");
  EXPECT_EQ(stored.language, "es");
  EXPECT_EQ(stored.address, (std::map<std::string, std::string>{{"city", "Austin"}}));
  EXPECT_EQ(stored.birth_date, (WhippyBirthDate{9, 12, std::nullopt}));
  EXPECT_EQ(stored.properties.at("tier"), "trial");
  EXPECT_FALSE(stored.opted_in_all_channels);
  EXPECT_EQ(stored.opted_in_channels, std::set<std::string>{std::string("id:") + kChannel});
}

TEST_F(WhippyRoundTrip, OverwriteBeyond4000ReplacesTheWholeList) {
  auto provider = Provider();
  ExpectAll(Deliver(provider, mapping::Action::kAdd, People(3, "old-")),
            providers::OutcomeKind::kDone);
  const auto outcomes = Deliver(provider, mapping::Action::kOverwrite, People(4500, "new-"));
  ASSERT_EQ(outcomes.size(), 4500u);
  ExpectAll(outcomes, providers::OutcomeKind::kDone);
  EXPECT_EQ(Sim().GetCounters().requests, 3u);  // one add, then overwrite + add
  const auto members = Members();
  EXPECT_EQ(members.size(), 4500u);
  EXPECT_EQ(members.count("old-0"), 0u);
  EXPECT_EQ(members.count("new-0"), 1u);
  EXPECT_EQ(members.count("new-4499"), 1u);
}

TEST_F(WhippyRoundTrip, RemoveReachesSimulator) {
  auto provider = Provider();
  Deliver(provider, mapping::Action::kAdd, {Person("1"), Person("2")});
  ExpectAll(Deliver(provider, mapping::Action::kRemove, {Person("1")}),
            providers::OutcomeKind::kDone);
  const auto members = Members();
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members.count("2"), 1u);
}

TEST_F(WhippyRoundTrip, WrongKeyIsRetriedWithoutLeakingIt) {
  auto provider = Provider("not-the-key");
  const auto outcomes = Deliver(provider, mapping::Action::kAdd, {Person("1")});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].http_status, 401);
  EXPECT_EQ(outcomes[0].reason.find("not-the-key"), std::string::npos);
  EXPECT_TRUE(Whippy().Contacts().empty());
}

TEST_F(WhippyRoundTrip, WrongMethodIsAConfigurationReject) {
  auto provider = Provider(kKey, R"({"listMethod":"POST"})");
  const auto outcomes = Deliver(provider, mapping::Action::kOverwrite, People(4100, "p"));
  ExpectAll(outcomes, providers::OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason,
            "whippy: list endpoint not found with method POST (HTTP 405: method POST is not "
            "allowed on this route) — check providers.whippy.listMethod and the list id");
  EXPECT_EQ(outcomes[4099].reason.rfind("whippy: not sent, the list overwrite was rejected", 0),
            0u);
  ASSERT_TRUE(Whippy().SetListMethod("POST"));
  ExpectAll(Deliver(provider, mapping::Action::kOverwrite, People(4100, "p")),
            providers::OutcomeKind::kDone);
  EXPECT_EQ(Members().size(), 4100u);
}

TEST_F(WhippyRoundTrip, InactiveListAndConflictsAreRejectedWithWhippysDescription) {
  auto provider = Provider();
  Whippy().SetListActive("closed", false);
  auto outcomes = Deliver(provider, mapping::Action::kAdd, {Person("1")}, "", "closed");
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason, "whippy: HTTP 422: contact list is not active");

  mapping::Contact first = Person("1");
  first.email = "a@example.com";
  mapping::Contact second = Person("2");
  second.email = "a@example.com";
  Deliver(provider, mapping::Action::kAdd, {first});
  outcomes = Deliver(provider, mapping::Action::kAdd, {second});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kReject);
  EXPECT_EQ(outcomes[0].reason,
            "whippy: HTTP 422: email a@example.com has already been taken by another contact");
}

TEST_F(WhippyRoundTrip, RateLimitedWritesAreRetried) {
  Knobs knobs = Sim().GetKnobs();
  knobs.enforce_rate_limits = true;  // real time: the window outlasts the test
  Sim().SetKnobs(knobs);
  auto provider = Provider();
  for (int i = 0; i < WhippySim::kListWritesPerMinute; ++i) {
    ExpectAll(Deliver(provider, mapping::Action::kAdd, {Person(std::to_string(i))}),
              providers::OutcomeKind::kDone);
  }
  const auto outcomes = Deliver(provider, mapping::Action::kAdd, {Person("late")});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].http_status, 429);
  EXPECT_EQ(outcomes[0].reason, "whippy: HTTP 429: Too many requests");
  EXPECT_FALSE(outcomes[0].retry_after.has_value());
  EXPECT_EQ(Members().count("late"), 0u);
}

TEST_F(WhippyRoundTrip, ListIdIsPercentEncodedAndDecoded) {
  auto provider = Provider();
  ExpectAll(Deliver(provider, mapping::Action::kAdd, {Person("1")}, "", "list one+ü"),
            providers::OutcomeKind::kDone);
  EXPECT_EQ(Members("list one+ü").size(), 1u);
}

}  // namespace
}  // namespace crmsync::sim
