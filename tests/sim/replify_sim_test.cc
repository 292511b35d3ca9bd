#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "mapping/config.h"
#include "providers/replify/replify.h"
#include "sim/simulator.h"
#include "tests/support/sim_fixture.h"
#include "worker/dispatcher.h"

namespace crmsync::sim {
namespace {

using std::chrono::milliseconds;

constexpr char kCampaign[] = "6f1c2b8e-3d4a-4c5b-9e7f-0a1b2c3d4e5f";
constexpr char kKey[] = "sim-replify-key";  // the Simulator's default

class ReplifySim : public crmsync::testing::SimTest {
 protected:
  httplib::Client Client() {
    httplib::Client client("127.0.0.1", Sim().Port());
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    client.set_tcp_nodelay(true);
    return client;
  }

  httplib::Result Post(const std::string& body, const std::string& campaign = kCampaign,
                       const char* key = kKey) {
    httplib::Headers headers;
    if (key != nullptr) headers.emplace("x-api-key", key);
    return Client().Post("/replify/api/v1/campaigns/" + campaign + "/contacts", headers, body,
                         "application/json");
  }

  // Posts and expects a 200; the parsed response.
  rapidjson::Document Apply(const std::string& body) {
    rapidjson::Document doc;
    const auto result = Post(body);
    EXPECT_TRUE(result);
    if (!result) return doc;
    EXPECT_EQ(result->status, 200) << result->body;
    doc.Parse(result->body.c_str());
    EXPECT_FALSE(doc.HasParseError()) << result->body;
    return doc;
  }

  std::map<std::string, ReplifyContact> Campaign() {
    const auto campaigns = Sim().ReplifyCampaigns();
    const auto it = campaigns.find(kCampaign);
    return it == campaigns.end() ? std::map<std::string, ReplifyContact>{} : it->second;
  }
};

std::string Message(const httplib::Result& result) {
  rapidjson::Document doc;
  doc.Parse(result->body.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("message")) return "<none>";
  return doc["message"].GetString();
}

std::string ResultAction(const rapidjson::Document& doc, rapidjson::SizeType i) {
  return doc["success"][i]["action"].GetString();
}

TEST_F(ReplifySim, MissingApiKeyIsUnauthorized) {
  const auto result = Post(R"({"contacts":[{"email":"a@example.com"}]})", kCampaign, nullptr);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  EXPECT_EQ(Message(result), "Unauthorized");
  EXPECT_EQ(Sim().GetCounters().unauthorized, 1u);
  EXPECT_EQ(Sim().GetCounters().requests, 1u);
  EXPECT_TRUE(Campaign().empty());
}

TEST_F(ReplifySim, WrongApiKeyIsUnauthorized) {
  const auto result = Post(R"({"contacts":[{"email":"a@example.com"}]})", kCampaign, "wrong");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  EXPECT_EQ(Message(result), "Unauthorized");
  EXPECT_EQ(Sim().GetCounters().unauthorized, 1u);
  EXPECT_TRUE(Campaign().empty());
}

TEST_F(ReplifySim, NonUuidCampaignIsBadRequest) {
  const auto result = Post(R"({"contacts":[{"email":"a@example.com"}]})", "campaign-1");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_EQ(Message(result), "Invalid campaignId");
  EXPECT_TRUE(Sim().ReplifyCampaigns().empty());
}

TEST_F(ReplifySim, MalformedBodiesAreBadRequests) {
  for (const char* body :
       {"not json", "[]", R"({"action":"upsert"})", R"({"contacts":[]})",
        R"({"contacts":{"email":"a"}})", R"({"contacts":[42]})", R"({"contacts":[{"email":7}]})"}) {
    const auto result = Post(body);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << body;
    EXPECT_NE(Message(result), "<none>") << body;
  }
  EXPECT_TRUE(Campaign().empty());
}

TEST_F(ReplifySim, UnknownActionIsBadRequest) {
  for (const char* body : {R"({"contacts":[{"email":"a@example.com"}],"action":"delete"})",
                           R"({"contacts":[{"email":"a@example.com"}],"action":1})"}) {
    const auto result = Post(body);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400);
    EXPECT_EQ(Message(result), "action must be one of upsert, updateOnly, remove");
  }
  EXPECT_TRUE(Campaign().empty());
}

TEST_F(ReplifySim, AbsentActionUpserts) {
  auto doc = Apply(R"({"contacts":[{"email":"a@example.com","phone":"1","firstName":"Ava"}]})");
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(ResultAction(doc, 0), "created");
  EXPECT_STREQ(doc["message"].GetString(), "Processed 1 contacts successfully, 0 failed");
  doc = Apply(R"({"contacts":[{"email":"a@example.com","lastName":"Lopez"}]})");
  EXPECT_EQ(ResultAction(doc, 0), "updated");

  const auto campaign = Campaign();
  ASSERT_EQ(campaign.size(), 1u);
  const ReplifyContact& ava = campaign.at("a@example.com");
  EXPECT_EQ(ava.first_name, "Ava");  // absent fields are left as they were
  EXPECT_EQ(ava.last_name, "Lopez");
  EXPECT_EQ(ava.phone, "1");
}

TEST_F(ReplifySim, UpsertStoresEveryField) {
  Apply(R"({"action":"upsert","contacts":[{"firstName":"Ava","lastName":"Lopez",
    "email":"ava@example.com","phone":"15551234567","status":"active",
    "contactMetadata":{"source":"web_form","score":3},
    "externalIdKey":"hubspotId","externalIdValue":"1234"}]})");
  ReplifyContact expected;
  expected.first_name = "Ava";
  expected.last_name = "Lopez";
  expected.email = "ava@example.com";
  expected.phone = "15551234567";
  expected.status = "active";
  expected.metadata = {{"source", "web_form"}, {"score", "3"}};
  expected.external_id_key = "hubspotId";
  expected.external_id_value = "1234";
  EXPECT_EQ(Campaign().at("ava@example.com"), expected);
}

TEST_F(ReplifySim, CompletedOrDisqualifiedContactIsNotAdded) {
  const auto doc = Apply(R"({"action":"upsert","contacts":[
    {"email":"done@example.com","status":"Completed"},
    {"phone":"15550000001","status":"DISQUALIFIED"},
    {"email":"new@example.com","status":"active"}]})");
  EXPECT_EQ(ResultAction(doc, 0), "skipped");
  EXPECT_EQ(ResultAction(doc, 1), "skipped");
  EXPECT_EQ(ResultAction(doc, 2), "created");
  const auto campaign = Campaign();
  EXPECT_EQ(campaign.size(), 1u);
  EXPECT_EQ(campaign.count("new@example.com"), 1u);

  // A contact already there takes the status: that is how outreach stops.
  Apply(R"({"contacts":[{"email":"new@example.com","status":"completed"}]})");
  EXPECT_EQ(Campaign().at("new@example.com").status, "completed");
}

TEST_F(ReplifySim, UpdateOnlyIgnoresContactsNotInCampaign) {
  Apply(R"({"contacts":[{"email":"here@example.com","firstName":"Old"}]})");
  const auto doc = Apply(R"({"action":"updateOnly","contacts":[
    {"email":"here@example.com","firstName":"New"},
    {"email":"absent@example.com","firstName":"Ghost"}]})");
  EXPECT_EQ(ResultAction(doc, 0), "updated");
  EXPECT_EQ(ResultAction(doc, 1), "ignored");
  const auto campaign = Campaign();
  ASSERT_EQ(campaign.size(), 1u);
  EXPECT_EQ(campaign.at("here@example.com").first_name, "New");
}

TEST_F(ReplifySim, RemoveNeedsEmailOrPhone) {
  Apply(R"({"contacts":[{"email":"a@example.com"},{"phone":"15550000002"}]})");
  const auto doc = Apply(R"({"action":"remove","contacts":[
    {"email":"a@example.com"},{"phone":"15550000002"},{"firstName":"Who"},
    {"email":"never@example.com"}]})");
  ASSERT_EQ(doc["success"].Size(), 3u);
  EXPECT_EQ(ResultAction(doc, 0), "removed");
  EXPECT_EQ(ResultAction(doc, 1), "removed");
  EXPECT_EQ(ResultAction(doc, 2), "not_found");
  ASSERT_EQ(doc["errors"].Size(), 1u);
  EXPECT_STREQ(doc["errors"][0]["error"].GetString(),
               "email or phone is required to remove a contact");
  EXPECT_STREQ(doc["message"].GetString(), "Processed 3 contacts successfully, 1 failed");
  EXPECT_TRUE(Campaign().empty());
}

TEST_F(ReplifySim, UpsertWithoutEmailOrPhoneFails) {
  const auto doc = Apply(R"({"contacts":[{"firstName":"Anon"},{"email":"a@example.com"}]})");
  ASSERT_EQ(doc["errors"].Size(), 1u);
  EXPECT_STREQ(doc["errors"][0]["error"].GetString(), "contact requires email or phone");
  EXPECT_TRUE(doc["errors"][0]["email"].IsNull());
  EXPECT_EQ(doc["success"].Size(), 1u);
  EXPECT_EQ(Campaign().size(), 1u);
}

TEST_F(ReplifySim, MetadataKeysAreMerged) {
  Apply(
      R"({"contacts":[{"email":"a@example.com","contactMetadata":{"tier":"trial","src":"web"}}]})");
  Apply(R"({"contacts":[{"email":"a@example.com","contactMetadata":{"tier":"pro","seats":"5"}}]})");
  const std::map<std::string, std::string> expected = {
      {"tier", "pro"}, {"src", "web"}, {"seats", "5"}};
  EXPECT_EQ(Campaign().at("a@example.com").metadata, expected);
}

TEST_F(ReplifySim, MatchesByPhoneWhenEmailDoesNotMatch) {
  Apply(R"({"contacts":[{"phone":"15550000003","firstName":"Pat"}]})");
  Apply(R"({"contacts":[{"phone":"15550000003","email":"pat@example.com"}]})");
  auto campaign = Campaign();
  ASSERT_EQ(campaign.size(), 1u);
  EXPECT_EQ(campaign.at("pat@example.com").first_name, "Pat");  // re-keyed by its new email

  // A different email on the same phone is a different person.
  Apply(R"({"contacts":[{"phone":"15550000003","email":"other@example.com"}]})");
  EXPECT_EQ(Campaign().size(), 2u);
}

TEST_F(ReplifySim, InjectedFailuresApplyNoChange) {
  Sim().SetKnobs(Knobs{.latency = milliseconds(0), .failure_rate = 1.0, .fail_all = false});
  for (int i = 0; i < 6; ++i) {
    const auto result =
        Post(R"({"contacts":[{"email":"a)" + std::to_string(i) + R"(@example.com"}]})");
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->status == 500 || result->status == 503) << result->status;
  }
  EXPECT_TRUE(Campaign().empty());
  EXPECT_EQ(Sim().GetCounters().injected_failures, 6u);
  EXPECT_EQ(Sim().GetCounters().requests, 6u);
}

TEST_F(ReplifySim, PartialFailureRateAppliesOnlyAnsweredRequests) {
  Sim().SetKnobs(Knobs{.latency = milliseconds(0), .failure_rate = 0.5, .fail_all = false});
  int ok = 0, failed = 0;
  for (int i = 0; i < 40; ++i) {
    const auto result =
        Post(R"({"contacts":[{"email":"c)" + std::to_string(i) + R"(@example.com"}]})");
    ASSERT_TRUE(result);
    if (result->status == 200) {
      ++ok;
    } else {
      EXPECT_TRUE(result->status == 500 || result->status == 503);
      EXPECT_EQ(Campaign().count("c" + std::to_string(i) + "@example.com"), 0u);
      ++failed;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(failed, 0);
  EXPECT_EQ(Campaign().size(), static_cast<size_t>(ok));
  EXPECT_EQ(Sim().GetCounters().injected_failures, static_cast<uint64_t>(failed));
}

TEST_F(ReplifySim, FailAllAnswers503) {
  Sim().SetKnobs(Knobs{.latency = milliseconds(0), .failure_rate = 0.0, .fail_all = true});
  const auto result = Post(R"({"contacts":[{"email":"a@example.com"}]})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
  EXPECT_EQ(Message(result), "Service Unavailable");
  EXPECT_TRUE(Campaign().empty());
  EXPECT_EQ(Sim().GetCounters().injected_failures, 1u);
}

TEST_F(ReplifySim, LatencyDelaysProviderResponses) {
  Sim().SetKnobs(Knobs{.latency = milliseconds(150), .failure_rate = 0.0, .fail_all = false});
  const auto started = std::chrono::steady_clock::now();
  const auto result = Post(R"({"contacts":[{"email":"a@example.com"}]})");
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_GE(elapsed, milliseconds(150));
}

TEST_F(ReplifySim, StateEndpointShowsCampaignsCountersAndKnobs) {
  Apply(R"({"contacts":[{"email":"a@example.com","phone":"1","contactMetadata":{"k":"v"}}]})");
  Post(R"({"contacts":[{"email":"b@example.com"}]})", kCampaign, "wrong");
  Sim().SetKnobs(Knobs{.latency = milliseconds(0), .failure_rate = 0.25, .fail_all = false});

  const auto result = Client().Get("/_sim/state");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, Sim().StateJson());
  rapidjson::Document doc;
  doc.Parse(result->body.c_str());
  ASSERT_FALSE(doc.HasParseError());
  const auto& contacts = doc["replify"]["campaigns"][kCampaign];
  ASSERT_EQ(contacts.Size(), 1u);
  EXPECT_STREQ(contacts[0]["email"].GetString(), "a@example.com");
  EXPECT_STREQ(contacts[0]["phone"].GetString(), "1");
  EXPECT_STREQ(contacts[0]["contactMetadata"]["k"].GetString(), "v");
  EXPECT_EQ(doc["counters"]["requests"].GetUint64(), 2u);
  EXPECT_EQ(doc["counters"]["unauthorized"].GetUint64(), 1u);
  EXPECT_EQ(doc["counters"]["injectedFailures"].GetUint64(), 0u);
  EXPECT_EQ(doc["knobs"]["failureRate"].GetDouble(), 0.25);
  EXPECT_EQ(doc["knobs"]["latencyMs"].GetInt64(), 0);
  EXPECT_FALSE(doc["knobs"]["failAll"].GetBool());
}

TEST_F(ReplifySim, KnobsEndpointUpdatesOnlyGivenKnobs) {
  Sim().SetKnobs(Knobs{.latency = milliseconds(20), .failure_rate = 0.1, .fail_all = false});
  auto result = Client().Post("/_sim/knobs", R"({"failAll":true})", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  Knobs knobs = Sim().GetKnobs();
  EXPECT_TRUE(knobs.fail_all);
  EXPECT_EQ(knobs.latency, milliseconds(20));
  EXPECT_EQ(knobs.failure_rate, 0.1);

  result = Client().Post("/_sim/knobs", R"({"latencyMs":5,"failureRate":0,"failAll":false})",
                         "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  knobs = Sim().GetKnobs();
  EXPECT_FALSE(knobs.fail_all);
  EXPECT_EQ(knobs.latency, milliseconds(5));
  EXPECT_EQ(knobs.failure_rate, 0.0);

  // A bad value changes nothing.
  for (const char* bad :
       {R"({"failureRate":1.5,"failAll":true})", R"({"latencyMs":-1})", R"({"speed":3})", "nope"}) {
    result = Client().Post("/_sim/knobs", bad, "application/json");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << bad;
  }
  knobs = Sim().GetKnobs();
  EXPECT_FALSE(knobs.fail_all);
  EXPECT_EQ(knobs.failure_rate, 0.0);
  EXPECT_EQ(knobs.latency, milliseconds(5));
}

TEST_F(ReplifySim, NormalizingIdentitiesEchoesAndStoresThemNormalized) {
  auto result = Client().Post("/_sim/knobs", R"({"normalizeIdentities":true})", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_TRUE(Sim().GetKnobs().normalize_identities);
  const auto doc = Apply(R"({"contacts":[{"email":"Ava@Example.COM","phone":"(555) 123-4567"},
      {"email":"not an email","phone":"15550000002"},{"phone":"n/a"}]})");
  ASSERT_EQ(doc["success"].Size(), 1u);
  EXPECT_STREQ(doc["success"][0]["email"].GetString(), "ava@example.com");
  EXPECT_STREQ(doc["success"][0]["phone"].GetString(), "+15551234567");
  ASSERT_EQ(doc["errors"].Size(), 2u);
  EXPECT_STREQ(doc["errors"][0]["email"].GetString(), "not an email");
  EXPECT_STREQ(doc["errors"][0]["phone"].GetString(), "+15550000002");
  EXPECT_STREQ(doc["errors"][0]["error"].GetString(), "invalid email");
  EXPECT_STREQ(doc["errors"][1]["phone"].GetString(), "n/a");
  EXPECT_STREQ(doc["errors"][1]["error"].GetString(), "invalid phone");
  const auto campaign = Campaign();
  ASSERT_EQ(campaign.size(), 1u);
  EXPECT_EQ(campaign.at("ava@example.com").phone, "+15551234567");
}

TEST_F(ReplifySim, ResetEndpointForgetsStateAndCounters) {
  Apply(R"({"contacts":[{"email":"a@example.com"}]})");
  const auto result = Client().Post("/_sim/reset", "", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_TRUE(Sim().ReplifyCampaigns().empty());
  EXPECT_EQ(Sim().GetCounters().requests, 0u);
}

TEST_F(ReplifySim, ConcurrentRequestsAreAllApplied) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> answered_ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // One kept-alive connection per thread, as a real client pool uses.
      httplib::Client client("127.0.0.1", Sim().Port());
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      const httplib::Headers headers = {{"x-api-key", kKey}};
      for (int i = 0; i < kPerThread; ++i) {
        const std::string email = std::to_string(t) + "-" + std::to_string(i) + "@example.com";
        const auto result = client.Post(
            std::string("/replify/api/v1/campaigns/") + kCampaign + "/contacts", headers,
            R"({"contacts":[{"email":")" + email + R"("}]})", "application/json");
        if (result && result->status == 200) ++answered_ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(answered_ok.load(), kThreads * kPerThread);
  EXPECT_EQ(Campaign().size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(Sim().GetCounters().requests, static_cast<uint64_t>(kThreads * kPerThread));
}

// End to end: requests built by ReplifyProvider, sent over loopback, answered
// by the simulator and classified by ReplifyProvider.
class ReplifyRoundTrip : public ReplifySim {
 protected:
  providers::replify::ReplifyProvider Provider(const std::string& key = kKey) {
    mapping::ProviderConfig config;
    config.name = "replify";
    config.base_url = Sim().BaseUrl("replify");
    config.api_key = key;
    return providers::replify::ReplifyProvider(config);
  }

  providers::HttpResponse Send(const providers::HttpRequest& request) {
    const std::string origin = "http://127.0.0.1:" + std::to_string(Sim().Port());
    EXPECT_EQ(request.url.rfind(origin, 0), 0u) << request.url;
    httplib::Headers headers;
    std::string content_type;
    for (const auto& [name, value] : request.headers) {
      if (name == "Content-Type") {
        content_type = value;
      } else {
        headers.emplace(name, value);
      }
    }
    EXPECT_EQ(request.method, "POST");
    const auto result =
        Client().Post(request.url.substr(origin.size()), headers, request.body, content_type);
    providers::HttpResponse response;
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

  // Builds, sends and classifies one batch of these operations.
  std::vector<providers::Outcome> Deliver(const providers::replify::ReplifyProvider& provider,
                                          mapping::Action action,
                                          std::vector<mapping::Contact> contacts) {
    std::vector<mapping::Operation> ops(contacts.size());
    providers::Batch batch;
    batch.target = kCampaign;
    batch.action = action;
    for (size_t i = 0; i < contacts.size(); ++i) {
      ops[i].provider = "replify";
      ops[i].target = kCampaign;
      ops[i].action = action;
      ops[i].contact = contacts[i];
      batch.items.push_back(&ops[i]);
    }
    return provider.Classify(batch, Send(provider.BuildRequest(batch)));
  }
};

mapping::Contact Person(const std::string& email, const std::string& phone) {
  mapping::Contact contact;
  contact.email = email;
  contact.phone = phone;
  return contact;
}

TEST_F(ReplifyRoundTrip, UpsertOutcomesMatchSimulatorState) {
  const auto provider = Provider();
  mapping::Contact ava = Person("ava@example.com", "15551234567");
  ava.first_name = "Ava";
  ava.metadata = {{"tier", "trial"}};
  ava.external_id_key = "hubspotId";
  ava.external_id_value = "1";
  mapping::Contact finished = Person("done@example.com", "15550000009");
  finished.status = "completed";
  mapping::Contact anonymous;
  anonymous.first_name = "Anon";

  const auto outcomes =
      Deliver(provider, mapping::Action::kUpsert,
              {ava, finished, anonymous, Person("bo@example.com", "15550000002")});
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, providers::OutcomeKind::kDone);  // not added, as documented
  EXPECT_EQ(outcomes[2].kind, providers::OutcomeKind::kReject);
  EXPECT_EQ(outcomes[2].reason, "replify rejected contact: contact requires email or phone");
  EXPECT_EQ(outcomes[3].kind, providers::OutcomeKind::kDone);
  for (const auto& outcome : outcomes) EXPECT_EQ(outcome.http_status, 200);

  const auto campaign = Campaign();
  ASSERT_EQ(campaign.size(), 2u);
  const ReplifyContact& stored = campaign.at("ava@example.com");
  EXPECT_EQ(stored.first_name, "Ava");
  EXPECT_EQ(stored.metadata.at("tier"), "trial");
  EXPECT_EQ(stored.external_id_key, "hubspotId");
  EXPECT_EQ(stored.external_id_value, "1");
  EXPECT_EQ(campaign.count("bo@example.com"), 1u);
}

TEST_F(ReplifyRoundTrip, StopOutreachAndRemoveReachSimulator) {
  const auto provider = Provider();
  Deliver(provider, mapping::Action::kUpsert, {Person("a@example.com", "1")});
  mapping::Contact stop = Person("a@example.com", "1");
  stop.status = "disqualified";
  mapping::Contact stranger = Person("stranger@example.com", "2");
  stranger.status = "disqualified";
  auto outcomes = Deliver(provider, mapping::Action::kUpdateOnly, {stop, stranger});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(Campaign().at("a@example.com").status, "disqualified");
  EXPECT_EQ(Campaign().count("stranger@example.com"), 0u);

  mapping::Contact no_identity;
  no_identity.first_name = "X";
  outcomes =
      Deliver(provider, mapping::Action::kRemove, {Person("a@example.com", "1"), no_identity});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, providers::OutcomeKind::kReject);
  EXPECT_TRUE(Campaign().empty());
}

TEST_F(ReplifyRoundTrip, WrongKeyAndOutageAreRetried) {
  auto outcomes =
      Deliver(Provider("not-the-key"), mapping::Action::kUpsert, {Person("a@example.com", "1")});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].http_status, 401);
  EXPECT_EQ(outcomes[0].reason.find("not-the-key"), std::string::npos);

  Sim().SetKnobs(Knobs{.latency = milliseconds(0), .failure_rate = 0.0, .fail_all = true});
  outcomes = Deliver(Provider(), mapping::Action::kUpsert, {Person("a@example.com", "1")});
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].http_status, 503);
  EXPECT_TRUE(Campaign().empty());
}

TEST_F(ReplifyRoundTrip, ErrorsEchoingNormalizedIdentitiesRejectTheirContacts) {
  // Replify answering with normalised identities: before, its error entry
  // matched no item and the contact that failed counted as delivered.
  Knobs knobs;
  knobs.normalize_identities = true;
  Sim().SetKnobs(knobs);
  const auto outcomes =
      Deliver(Provider(), mapping::Action::kUpsert,
              {Person("Ava@Example.COM", "(555) 123-4567"),
               Person("Not An Email", "1 555 000 0002"), Person("cy@example.com", "15550000003")});
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, providers::OutcomeKind::kReject) << outcomes[1].reason;
  EXPECT_EQ(outcomes[1].reason, "replify rejected contact: invalid email");
  EXPECT_EQ(outcomes[2].kind, providers::OutcomeKind::kDone);
  EXPECT_EQ(Campaign().size(), 2u);
}

TEST_F(ReplifyRoundTrip, PlainThenCompletedUpsertThroughTheDispatcherAddsAndStops) {
  // Both events wait together, as they would behind a busy provider: the
  // contact must end in the campaign with status completed, as it would had
  // each event been sent on its own.
  const auto provider = Provider();
  worker::Dispatcher dispatcher(
      {{"replify", worker::ProviderLimits{10, milliseconds(0), 1, milliseconds(0), std::nullopt}}},
      worker::RetryPolicy{});
  const auto t0 = worker::Clock::now();
  mapping::Operation plain;
  plain.provider = "replify";
  plain.target = kCampaign;
  plain.action = mapping::Action::kUpsert;
  plain.contact_key = "ava@example.com";
  plain.contact = Person("ava@example.com", "15551234567");
  plain.contact.first_name = "Ava";
  mapping::Operation completed = plain;
  completed.contact.first_name.reset();
  completed.contact.status = "completed";
  dispatcher.Enqueue(std::move(plain), worker::MessageRef{{"t", 0}, 0, 1}, t0);
  dispatcher.Enqueue(std::move(completed), worker::MessageRef{{"t", 0}, 1, 1}, t0);

  size_t finished = 0;
  for (int round = 0; round < 5 && dispatcher.Pending() > 0; ++round) {
    for (const worker::OutgoingBatch& out : dispatcher.TakeReady(t0, true)) {
      const auto outcomes = provider.Classify(*out.batch, Send(provider.BuildRequest(*out.batch)));
      finished +=
          dispatcher.OnResult(out.id, outcomes, t0, [](const worker::MessageRef&) { return true; })
              .size();
    }
  }
  EXPECT_EQ(finished, 2u);
  const auto campaign = Campaign();
  ASSERT_EQ(campaign.count("ava@example.com"), 1u) << "the contact was never added";
  EXPECT_EQ(campaign.at("ava@example.com").status, "completed");
  EXPECT_EQ(campaign.at("ava@example.com").first_name, "Ava");
}

}  // namespace
}  // namespace crmsync::sim
