#include "sim/campaignlark_sim.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mapping/config.h"
#include "providers/campaignlark/campaignlark.h"
#include "sim/simulator.h"
#include "tests/support/provider_fixture.h"

namespace crmsync::sim {
namespace {

using std::chrono::milliseconds;

constexpr char kKey[] = "sim-campaignlark-key";
constexpr char kPrefix[] = "/campaignlark/v1";

// A Simulator on a free loopback port that accepts kKey for CampaignLark;
// a fresh one per test.
class CampaignLarkSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Simulator::Options options;
    options.api_keys["campaignlark"] = kKey;
    sim_ = std::make_unique<Simulator>(options);
    sim_->Start();
    lark_ = dynamic_cast<CampaignLarkSim*>(sim_->Provider("campaignlark"));
    ASSERT_NE(lark_, nullptr);
  }
  void TearDown() override {
    if (sim_) sim_->Stop();
  }

  Simulator& Sim() { return *sim_; }
  CampaignLarkSim& Lark() { return *lark_; }

  httplib::Client Client() {
    httplib::Client client("127.0.0.1", Sim().Port());
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    client.set_tcp_nodelay(true);
    return client;
  }

  static httplib::Headers Auth(const char* key) {
    httplib::Headers headers;
    if (key != nullptr) headers.emplace("Authorization", std::string("Bearer ") + key);
    return headers;
  }

  httplib::Result Upsert(const std::string& body, const char* key = kKey) {
    return Client().Post(std::string(kPrefix) + "/contacts/upsert", Auth(key), body,
                         "application/json");
  }

  httplib::Result ByEmail(const std::string& email) {
    return Client().Get(std::string(kPrefix) + "/contacts/by-email",
                        httplib::Params{{"email", email}}, Auth(kKey));
  }

  httplib::Result ChangeTags(const std::string& id, const std::string& op,
                             const std::string& body) {
    return Client().Post(std::string(kPrefix) + "/contacts/" + id + "/tags/" + op, Auth(kKey), body,
                         "application/json");
  }

  // Upserts and expects a 200; the response's "data".
  rapidjson::Document Apply(const std::string& body) {
    rapidjson::Document doc;
    const auto result = Upsert(body);
    EXPECT_TRUE(result);
    if (!result) return doc;
    EXPECT_EQ(result->status, 200) << result->body;
    doc.Parse(result->body.c_str());
    EXPECT_FALSE(doc.HasParseError()) << result->body;
    return doc;
  }

  CampaignLarkContact Stored(const std::string& email) {
    const auto contact = Lark().Contact(email);
    EXPECT_TRUE(contact.has_value()) << email;
    return contact.value_or(CampaignLarkContact{});
  }

 private:
  std::unique_ptr<Simulator> sim_;
  CampaignLarkSim* lark_ = nullptr;
};

// The message of a {"error": {"message"}} body, or "<none>".
std::string Message(const httplib::Result& result) {
  rapidjson::Document doc;
  doc.Parse(result->body.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("error") ||
      !doc["error"].IsObject() || !doc["error"].HasMember("message")) {
    return "<none>";
  }
  return doc["error"]["message"].GetString();
}

std::vector<int64_t> Ids(std::initializer_list<int64_t> ids) { return ids; }

TEST_F(CampaignLarkSimTest, CreatesContactSubscribedByDefault) {
  const auto doc = Apply(R"({"email_address":"tywin@example.com",
    "fields":{"first_name":"Tywin","last_name":"Lannister"},"tags":[2,1]})");
  ASSERT_TRUE(doc.IsObject());
  const auto& data = doc["data"];
  EXPECT_EQ(data["id"].GetStringLength(), 24u);
  EXPECT_STREQ(data["status"].GetString(), "SUBSCRIBED");
  ASSERT_EQ(data["tags"].Size(), 2u);
  EXPECT_EQ(data["tags"][0]["id"].GetInt64(), 1);
  EXPECT_STREQ(data["tags"][0]["name"].GetString(), "newsletter");
  EXPECT_EQ(data["tags"][1]["id"].GetInt64(), 2);
  EXPECT_STREQ(data["tags"][1]["name"].GetString(), "vip");
  EXPECT_STREQ(data["data"]["email_address"].GetString(), "tywin@example.com");
  EXPECT_STREQ(data["data"]["first_name"].GetString(), "Tywin");
  EXPECT_STREQ(data["data"]["last_name"].GetString(), "Lannister");
  for (const char* counter : {"total_opens", "total_clicks", "total_bounces", "total_delivered"}) {
    EXPECT_EQ(data["statistics"][counter].GetInt(), 0) << counter;
  }
  EXPECT_STREQ(data["created_at"].GetString(), data["updated_at"].GetString());
  EXPECT_EQ(data["created_at"].GetStringLength(), 20u);  // 2024-02-15T10:30:00Z

  const CampaignLarkContact stored = Stored("tywin@example.com");
  EXPECT_EQ(stored.id, data["id"].GetString());
  EXPECT_EQ(stored.status, "SUBSCRIBED");
  EXPECT_EQ(stored.tags, Ids({1, 2}));
  const std::map<std::string, std::string> fields = {{"first_name", "Tywin"},
                                                     {"last_name", "Lannister"}};
  EXPECT_EQ(stored.fields, fields);
}

TEST_F(CampaignLarkSimTest, PartialUpdateMergesAndPreservesTagsAndStatus) {
  Apply(R"({"email_address":"a@example.com","fields":{"first_name":"Ava","company":"Acme"},
    "tags":[1,2],"status":"UNSUBSCRIBED"})");
  const std::string id = Stored("a@example.com").id;
  Apply(R"({"email_address":"a@example.com","fields":{"last_name":"Lopez","company":"Initech"},
    "partial_update":true})");
  const CampaignLarkContact stored = Stored("a@example.com");
  EXPECT_EQ(stored.id, id);
  EXPECT_EQ(stored.status, "UNSUBSCRIBED");
  EXPECT_EQ(stored.tags, Ids({1, 2}));
  const std::map<std::string, std::string> fields = {
      {"first_name", "Ava"}, {"last_name", "Lopez"}, {"company", "Initech"}};
  EXPECT_EQ(stored.fields, fields);
  EXPECT_EQ(Lark().Contacts().size(), 1u);
}

TEST_F(CampaignLarkSimTest, PartialUpdateSetsGivenStatusAndTags) {
  Apply(R"({"email_address":"a@example.com","tags":[1,2]})");
  Apply(R"({"email_address":"a@example.com","tags":[3],"status":"CLEANED",
    "partial_update":true})");
  EXPECT_EQ(Stored("a@example.com").status, "CLEANED");
  EXPECT_EQ(Stored("a@example.com").tags, Ids({3}));  // the tags to assign

  CampaignLarkWorkspace workspace = CampaignLarkWorkspace::Default();
  workspace.partial_update_merges_tags = true;
  Lark().SetWorkspace(workspace);
  Apply(R"({"email_address":"a@example.com","tags":[5],"partial_update":true})");
  EXPECT_EQ(Stored("a@example.com").tags, Ids({3, 5}));
}

TEST_F(CampaignLarkSimTest, FullReplaceReplacesFieldsTagsAndStatus) {
  Apply(R"({"email_address":"a@example.com","fields":{"first_name":"Ava","company":"Acme"},
    "tags":[1,2],"status":"UNSUBSCRIBED"})");
  const std::string id = Stored("a@example.com").id;
  Apply(R"({"email_address":"a@example.com","fields":{"tier":"gold"},"partial_update":false})");
  const CampaignLarkContact stored = Stored("a@example.com");
  EXPECT_EQ(stored.id, id);
  EXPECT_EQ(stored.status, "SUBSCRIBED");  // omitted on a full replace
  EXPECT_TRUE(stored.tags.empty());
  const std::map<std::string, std::string> fields = {{"tier", "gold"}};
  EXPECT_EQ(stored.fields, fields);
}

TEST_F(CampaignLarkSimTest, PartialUpdateDefaultsToFalse) {
  Apply(R"({"email_address":"a@example.com","fields":{"first_name":"Ava"},"tags":[4],
    "status":"UNCONFIRMED"})");
  Apply(R"({"email_address":"a@example.com","fields":{"last_name":"Lopez"}})");
  const CampaignLarkContact stored = Stored("a@example.com");
  EXPECT_EQ(stored.status, "SUBSCRIBED");
  EXPECT_TRUE(stored.tags.empty());
  const std::map<std::string, std::string> fields = {{"last_name", "Lopez"}};
  EXPECT_EQ(stored.fields, fields);
}

TEST_F(CampaignLarkSimTest, PartialUpdateOfAbsentContactCreatesIt) {
  Apply(R"({"email_address":"new@example.com","fields":{"tier":"pro"},"partial_update":true})");
  EXPECT_EQ(Stored("new@example.com").status, "SUBSCRIBED");
  EXPECT_EQ(Stored("new@example.com").fields.at("tier"), "pro");
}

TEST_F(CampaignLarkSimTest, AcceptsEveryDocumentedStatus) {
  for (const char* status :
       {"SUBSCRIBED", "UNSUBSCRIBED", "UNCONFIRMED", "CLEANED", "COMPLAINED"}) {
    Apply(std::string(R"({"email_address":"a@example.com","status":")") + status + "\"}");
    EXPECT_EQ(Stored("a@example.com").status, status);
  }
}

TEST_F(CampaignLarkSimTest, EmailAddressIsAlwaysWrittenAndIgnoredInFields) {
  Apply(R"({"email_address":"Ava@Example.com","fields":{"email_address":"x@example.com",
    "first_name":"Ava"}})");
  const auto doc = Apply(R"({"email_address":"ava@example.com","partial_update":true})");
  EXPECT_STREQ(doc["data"]["data"]["email_address"].GetString(), "ava@example.com");
  const auto contacts = Lark().Contacts();
  ASSERT_EQ(contacts.size(), 1u);
  const CampaignLarkContact& stored = contacts.at("ava@example.com");
  EXPECT_EQ(stored.email_address, "ava@example.com");
  EXPECT_EQ(stored.fields.count("email_address"), 0u);
  EXPECT_EQ(stored.fields.at("first_name"), "Ava");
}

TEST_F(CampaignLarkSimTest, MissingEmailIsBadRequest) {
  for (const char* body : {R"({"fields":{"first_name":"A"}})", R"({"email_address":""})",
                           R"({"email_address":7})", R"({"email_address":null})"}) {
    const auto result = Upsert(body);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << body;
    EXPECT_EQ(Message(result), "Email address is required for upsert operation.") << body;
  }
  EXPECT_TRUE(Lark().Contacts().empty());
}

TEST_F(CampaignLarkSimTest, InvalidStatusIsBadRequest) {
  for (const char* status : {R"("ACTIVE")", R"("subscribed")", "5", R"("")"}) {
    const auto result =
        Upsert(std::string(R"({"email_address":"a@example.com","status":)") + status + "}");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << status;
    EXPECT_EQ(Message(result), "The status you provided is not valid.") << status;
  }
  EXPECT_TRUE(Lark().Contacts().empty());
}

TEST_F(CampaignLarkSimTest, UnknownMergeTagIsBadRequest) {
  Apply(R"({"email_address":"a@example.com","fields":{"first_name":"Ava"}})");
  const auto result = Upsert(R"({"email_address":"a@example.com",
    "fields":{"first_name":"Changed","favourite_colour":"teal"},"partial_update":true})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_EQ(Message(result), "We were unable to find a field with the merge_tag favourite_colour");
  EXPECT_EQ(Stored("a@example.com").fields.at("first_name"), "Ava");  // nothing applied
}

TEST_F(CampaignLarkSimTest, RequiredFieldIsNeededOnCreateAndFullReplace) {
  CampaignLarkWorkspace workspace = CampaignLarkWorkspace::Default();
  for (CampaignLarkField& field : workspace.fields) {
    if (field.merge_tag == "company") field.required = true;
  }
  Lark().SetWorkspace(workspace);

  for (const char* body : {R"({"email_address":"a@example.com","partial_update":true})",
                           R"({"email_address":"a@example.com","fields":{"company":""}})"}) {
    const auto result = Upsert(body);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << body;
    EXPECT_EQ(Message(result), "Field 'Company' is required.") << body;
  }
  EXPECT_TRUE(Lark().Contacts().empty());

  Apply(R"({"email_address":"a@example.com","fields":{"company":"Acme"}})");
  // A merge keeps the stored value, so it may omit the field.
  Apply(R"({"email_address":"a@example.com","fields":{"tier":"pro"},"partial_update":true})");
  const auto result = Upsert(R"({"email_address":"a@example.com","fields":{"tier":"gold"}})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_EQ(Message(result), "Field 'Company' is required.");
  EXPECT_EQ(Stored("a@example.com").fields.at("tier"), "pro");
}

TEST_F(CampaignLarkSimTest, MissingOrWrongKeyIsUnauthorized) {
  httplib::Headers basic = {{"Authorization", std::string("Basic ") + kKey}};
  const httplib::Result results[] = {
      Upsert(R"({"email_address":"a@example.com"})", nullptr),
      Upsert(R"({"email_address":"a@example.com"})", "wrong"),
      Client().Post(std::string(kPrefix) + "/contacts/upsert", basic,
                    R"({"email_address":"a@example.com"})", "application/json"),
  };
  for (const auto& result : results) {
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 401);
    EXPECT_EQ(result->body, R"({"error":{"message":"Unauthorized"}})");
  }
  EXPECT_EQ(Sim().GetCounters().unauthorized, 3u);
  EXPECT_TRUE(Lark().Contacts().empty());
  // Auth comes first: even a bad body is answered 401.
  const auto bad = Upsert("not json", "wrong");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
}

TEST_F(CampaignLarkSimTest, DisallowedIpIsForbidden) {
  Lark().SetIpAllowed(false);
  auto result = Upsert(R"({"email_address":"a@example.com"})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 403);
  EXPECT_EQ(Message(result), "IP address not allowed");
  EXPECT_TRUE(Lark().Contacts().empty());
  result = ByEmail("a@example.com");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 403);

  Lark().SetIpAllowed(true);
  Apply(R"({"email_address":"a@example.com"})");
  EXPECT_EQ(Lark().Contacts().size(), 1u);
}

TEST_F(CampaignLarkSimTest, RateLimitAnswers429WithoutRetryAfterAndRecovers) {
  // A 10 s window: the 100 requests surely fit in it, so the 101st is over.
  Knobs knobs = Sim().GetKnobs();
  knobs.rate_limit_time_scale = 0.1;
  Sim().SetKnobs(knobs);
  httplib::Client client = Client();
  client.set_keep_alive(true);
  for (int i = 0; i < 100; ++i) {
    const auto result = client.Get(std::string(kPrefix) + "/contacts/by-email",
                                   httplib::Params{{"email", "nobody@example.com"}}, Auth(kKey));
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 404) << i;
  }
  const auto limited = Upsert(R"({"email_address":"late@example.com"})");
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  EXPECT_EQ(Message(limited), "Too many requests");
  EXPECT_FALSE(limited->has_header("Retry-After"));
  EXPECT_EQ(Sim().GetCounters().rate_limited, 1u);
  EXPECT_FALSE(Lark().Contact("late@example.com").has_value());

  // A 1 ms window: the requests above leave it at once.
  knobs.rate_limit_time_scale = 1000;
  Sim().SetKnobs(knobs);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto result = Upsert(R"({"email_address":"late@example.com"})");
    ASSERT_TRUE(result);
    status = result->status;
    if (status == 200) break;
  }
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(Lark().Contact("late@example.com").has_value());
}

TEST_F(CampaignLarkSimTest, RateLimitIsOffWhenKnobSaysSo) {
  Knobs knobs = Sim().GetKnobs();
  knobs.enforce_rate_limits = false;
  knobs.rate_limit_time_scale = 0.01;
  Sim().SetKnobs(knobs);
  httplib::Client client = Client();
  client.set_keep_alive(true);
  for (int i = 0; i < 120; ++i) {
    const auto result = client.Get(std::string(kPrefix) + "/contacts/by-email",
                                   httplib::Params{{"email", "nobody@example.com"}}, Auth(kKey));
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 404) << i;
  }
  EXPECT_EQ(Sim().GetCounters().rate_limited, 0u);
}

TEST_F(CampaignLarkSimTest, ByEmailFindsContactOr404) {
  auto result = ByEmail("ava@example.com");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_EQ(Message(result), "Contact not found");

  Apply(R"({"email_address":"ava@example.com","fields":{"first_name":"Ava"},"tags":[1]})");
  result = ByEmail("AVA@example.com");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  rapidjson::Document doc;
  doc.Parse(result->body.c_str());
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_EQ(doc["data"]["id"].GetString(), Stored("ava@example.com").id);
  EXPECT_STREQ(doc["data"]["data"]["first_name"].GetString(), "Ava");
  EXPECT_EQ(doc["data"]["tags"][0]["id"].GetInt64(), 1);
}

TEST_F(CampaignLarkSimTest, TagsAddAndRemoveById) {
  Apply(R"({"email_address":"a@example.com","tags":[1,2]})");
  const std::string id = Stored("a@example.com").id;

  auto result = ChangeTags(id, "add", R"({"tags":[3,77]})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(Stored("a@example.com").tags, Ids({1, 2, 3, 77}));
  EXPECT_EQ(Lark().Workspace().tags.at(77), "tag-77");  // any id exists

  result = ChangeTags(id, "remove", R"({"tags":[1,3,9]})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(Stored("a@example.com").tags, Ids({2, 77}));

  result = ChangeTags("000000000000000000000000", "add", R"({"tags":[1]})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  result = ChangeTags(id, "add", R"({"tags":["vip"]})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
}

TEST_F(CampaignLarkSimTest, InjectedFailuresUseCampaignLarksErrorShape) {
  Knobs knobs = Sim().GetKnobs();
  knobs.fail_all = true;
  Sim().SetKnobs(knobs);
  const auto result = Upsert(R"({"email_address":"a@example.com"})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
  EXPECT_EQ(Message(result), "Service Unavailable");
  EXPECT_TRUE(Lark().Contacts().empty());
}

TEST_F(CampaignLarkSimTest, StateJsonShowsContactsUnderCampaignLark) {
  Apply(R"({"email_address":"a@example.com","fields":{"tier":"pro"},"tags":[5]})");
  const auto result = Client().Get("/_sim/state");
  ASSERT_TRUE(result);
  rapidjson::Document doc;
  doc.Parse(result->body.c_str());
  ASSERT_FALSE(doc.HasParseError());
  const auto& contacts = doc["campaignlark"]["contacts"];
  ASSERT_EQ(contacts.Size(), 1u);
  EXPECT_STREQ(contacts[0]["email_address"].GetString(), "a@example.com");
  EXPECT_STREQ(contacts[0]["status"].GetString(), "SUBSCRIBED");
  EXPECT_EQ(contacts[0]["tags"][0].GetInt64(), 5);
  EXPECT_STREQ(contacts[0]["fields"]["tier"].GetString(), "pro");
}

TEST_F(CampaignLarkSimTest, ResetForgetsContactsAndKeepsWorkspace) {
  Lark().SetIpAllowed(false);
  Lark().SetIpAllowed(true);
  CampaignLarkWorkspace workspace = CampaignLarkWorkspace::Default();
  workspace.fields.push_back({"plan", "Plan", false});
  Lark().SetWorkspace(workspace);
  Apply(R"({"email_address":"a@example.com","fields":{"plan":"team"}})");
  Sim().Reset();
  EXPECT_TRUE(Lark().Contacts().empty());
  EXPECT_EQ(Lark().Workspace().fields, workspace.fields);
}

// End to end: an exchange's requests built by CampaignLarkProvider, sent
// concurrently over loopback, answered by the simulator and classified.
class CampaignLarkRoundTrip : public CampaignLarkSimTest {
 protected:
  static constexpr size_t kConnections = 8;

  providers::campaignlark::CampaignLarkProvider Provider(const std::string& key = kKey) {
    mapping::ProviderConfig config;
    config.name = "campaignlark";
    config.base_url = Sim().BaseUrl("campaignlark");
    config.api_key = key;
    return providers::campaignlark::CampaignLarkProvider(config);
  }

  providers::HttpResponse Send(httplib::Client& client, const providers::HttpRequest& request) {
    const std::string origin = "http://127.0.0.1:" + std::to_string(Sim().Port());
    providers::HttpResponse response;
    if (request.url.rfind(origin, 0) != 0 || request.method != "POST") {
      response.transport = providers::Transport::kConfigError;
      response.transport_error = "unexpected request " + request.method + " " + request.url;
      return response;
    }
    httplib::Headers headers;
    std::string content_type;
    for (const auto& [name, value] : request.headers) {
      if (name == "Content-Type") {
        content_type = value;
      } else {
        headers.emplace(name, value);
      }
    }
    const auto result =
        client.Post(request.url.substr(origin.size()), headers, request.body, content_type);
    if (!result) {
      response.transport = providers::Transport::kConnectFailed;
      response.transport_error = httplib::to_string(result.error());
      return response;
    }
    response.status = result->status;
    response.body = result->body;
    response.content_type = result->get_header_value("Content-Type");
    return response;
  }

  // Runs a whole exchange: each round's requests concurrently over a few
  // kept-alive connections, as the HTTP engine sends them, the responses
  // handed back last-first (they may arrive in any order).
  std::vector<providers::Outcome> Deliver(providers::campaignlark::CampaignLarkProvider& provider,
                                          std::vector<mapping::Contact> contacts,
                                          const std::string& options_json = "") {
    testing::BatchFixture fixture("campaignlark", "contacts", std::move(contacts),
                                  mapping::Action::kUpsert, options_json);
    const auto exchange = provider.Start(fixture.batch);
    for (auto round = exchange->NextRound(); !round.empty(); round = exchange->NextRound()) {
      std::vector<providers::HttpResponse> responses(round.size());
      std::atomic<size_t> next{0};
      std::vector<std::thread> connections;
      for (size_t c = 0; c < std::min<size_t>(kConnections, round.size()); ++c) {
        connections.emplace_back([&] {
          httplib::Client client = Client();
          client.set_keep_alive(true);
          for (size_t i = next++; i < round.size(); i = next++) {
            responses[i] = Send(client, round[i]);
          }
        });
      }
      for (auto& connection : connections) connection.join();
      requests_ += round.size();
      for (size_t i = round.size(); i-- > 0;) exchange->OnResponse(i, responses[i]);
    }
    return exchange->Outcomes();
  }

  size_t requests_ = 0;
};

mapping::Contact Person(const std::string& email) {
  mapping::Contact contact;
  contact.email = email;
  return contact;
}

TEST_F(CampaignLarkRoundTrip, EveryItemGetsItsOwnOutcomeAndState) {
  auto provider = Provider();
  mapping::Contact ava = Person("ava@example.com");
  ava.first_name = "Ava";
  ava.last_name = "Lopez";
  ava.metadata = {{"tier", "pro"}};
  ava.tags = {1};
  ava.status = "UNCONFIRMED";
  mapping::Contact unknown_tag = Person("bo@example.com");
  unknown_tag.metadata = {{"favourite_colour", "teal"}};
  mapping::Contact bad_status = Person("cy@example.com");
  bad_status.status = "subscribed";
  mapping::Contact no_email;
  no_email.first_name = "Anon";

  const auto outcomes =
      Deliver(provider, {ava, unknown_tag, bad_status, no_email, Person("di@example.com")},
              R"({"tags":[7]})");
  EXPECT_EQ(requests_, 4u);  // the contact without email never leaves
  ASSERT_EQ(outcomes.size(), 5u);
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, providers::OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason,
            "campaignlark rejected contact: We were unable to find a field with the merge_tag "
            "favourite_colour");
  EXPECT_EQ(outcomes[2].kind, providers::OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].reason,
            "campaignlark rejected contact: The status you provided is not valid.");
  EXPECT_EQ(outcomes[3].kind, providers::OutcomeKind::kReject);
  EXPECT_EQ(outcomes[3].reason, "campaignlark rejected contact: email_address is required");
  EXPECT_EQ(outcomes[4].kind, providers::OutcomeKind::kDone);

  const auto contacts = Lark().Contacts();
  ASSERT_EQ(contacts.size(), 2u);
  const CampaignLarkContact& stored = contacts.at("ava@example.com");
  EXPECT_EQ(stored.status, "UNCONFIRMED");
  EXPECT_EQ(stored.tags, Ids({1, 7}));
  const std::map<std::string, std::string> fields = {
      {"first_name", "Ava"}, {"last_name", "Lopez"}, {"tier", "pro"}};
  EXPECT_EQ(stored.fields, fields);
  EXPECT_EQ(contacts.at("di@example.com").tags, Ids({7}));
}

TEST_F(CampaignLarkRoundTrip, DefaultPartialUpdateKeepsWhatTheEventOmits) {
  auto provider = Provider();
  mapping::Contact first = Person("a@example.com");
  first.first_name = "Ava";
  first.metadata = {{"company", "Acme"}};
  first.tags = {2};
  first.status = "UNSUBSCRIBED";
  ASSERT_EQ(Deliver(provider, {first})[0].kind, providers::OutcomeKind::kDone);

  mapping::Contact change = Person("a@example.com");
  change.metadata = {{"tier", "gold"}};
  ASSERT_EQ(Deliver(provider, {change})[0].kind, providers::OutcomeKind::kDone);
  CampaignLarkContact stored = Stored("a@example.com");
  EXPECT_EQ(stored.status, "UNSUBSCRIBED");  // not resubscribed
  EXPECT_EQ(stored.tags, Ids({2}));
  EXPECT_EQ(stored.fields.size(), 3u);

  ASSERT_EQ(Deliver(provider, {change}, R"({"partialUpdate":false})")[0].kind,
            providers::OutcomeKind::kDone);
  stored = Stored("a@example.com");
  EXPECT_EQ(stored.status, "SUBSCRIBED");
  EXPECT_TRUE(stored.tags.empty());
  const std::map<std::string, std::string> fields = {{"tier", "gold"}};
  EXPECT_EQ(stored.fields, fields);
}

TEST_F(CampaignLarkRoundTrip, BadKeyForbiddenIpAndRateLimitAreRetried) {
  auto wrong = Provider("not-the-key");
  auto outcomes = Deliver(wrong, {Person("a@example.com")});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].http_status, 401);
  EXPECT_NE(outcomes[0].reason.find("configuration error"), std::string::npos);

  auto provider = Provider();
  Lark().SetIpAllowed(false);
  outcomes = Deliver(provider, {Person("a@example.com")});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].http_status, 403);
  EXPECT_NE(outcomes[0].reason.find("IP address not allowed"), std::string::npos);
  Lark().SetIpAllowed(true);

  // A 100 s window: of 110 requests in one round exactly 100 pass.
  Knobs knobs = Sim().GetKnobs();
  knobs.rate_limit_time_scale = 0.01;
  Sim().SetKnobs(knobs);
  std::vector<mapping::Contact> many;
  for (int i = 0; i < 110; ++i) many.push_back(Person("m" + std::to_string(i) + "@example.com"));
  outcomes = Deliver(provider, many);
  size_t done = 0, limited = 0;
  for (const auto& outcome : outcomes) {
    if (outcome.kind == providers::OutcomeKind::kDone) ++done;
    if (outcome.kind == providers::OutcomeKind::kRetry && outcome.http_status == 429) ++limited;
  }
  EXPECT_EQ(done, 100u);
  EXPECT_EQ(limited, 10u);
  EXPECT_EQ(Lark().Contacts().size(), 100u);
}

}  // namespace
}  // namespace crmsync::sim
