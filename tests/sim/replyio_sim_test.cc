#include "sim/replyio_sim.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mapping/config.h"
#include "providers/replyio/replyio.h"
#include "sim/simulator.h"
#include "tests/support/provider_fixture.h"

namespace crmsync::sim {
namespace {

using providers::HttpRequest;
using providers::HttpResponse;
using providers::Outcome;
using providers::OutcomeKind;
using std::chrono::milliseconds;

constexpr char kKey[] = "sim-replyio-key";

class ReplyIoSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Simulator::Options options;
    options.api_keys = {{"replify", "sim-replify-key"}, {"replyio", kKey}};
    sim_ = std::make_unique<Simulator>(options);
    sim_->Start();
    reply_ = dynamic_cast<ReplyIoSim*>(sim_->Provider("replyio"));
    ASSERT_NE(reply_, nullptr);
  }
  void TearDown() override { sim_->Stop(); }

  Simulator& Sim() { return *sim_; }
  ReplyIoSim& Reply() { return *reply_; }

  httplib::Client Client() {
    httplib::Client client("127.0.0.1", sim_->Port());
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    client.set_tcp_nodelay(true);
    return client;
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& authorization = std::string("Bearer ") + kKey) {
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    return Client().Post(("/replyio/v3" + path).c_str(), headers, body, "application/json");
  }

  // Posts, expects `status`, and parses the body.
  rapidjson::Document Json(const std::string& path, const std::string& body, int status = 200) {
    rapidjson::Document doc;
    const auto result = Post(path, body);
    EXPECT_TRUE(result);
    if (!result) return doc;
    EXPECT_EQ(result->status, status) << result->body;
    doc.Parse(result->body.c_str());
    EXPECT_FALSE(doc.HasParseError()) << result->body;
    return doc;
  }

  providers::replyio::ReplyIoProvider Provider(const std::string& settings = "") {
    mapping::ProviderConfig config;
    config.name = "replyio";
    config.base_url = sim_->BaseUrl("replyio");
    config.api_key = kKey;
    config.settings_json = settings;
    return providers::replyio::ReplyIoProvider(config);
  }

  // Sends one request of an exchange over loopback, as the HTTP engine would.
  HttpResponse Send(const HttpRequest& request) {
    const std::string origin = "http://127.0.0.1:" + std::to_string(sim_->Port());
    EXPECT_EQ(request.url.rfind(origin, 0), 0u) << request.url;
    httplib::Headers headers;
    std::string content_type = "application/json";
    for (const auto& [name, value] : request.headers) {
      if (name == "Content-Type") {
        content_type = value;
      } else {
        headers.emplace(name, value);
      }
    }
    const auto result = Client().Post(request.url.substr(origin.size()).c_str(), headers,
                                      request.body, content_type.c_str());
    HttpResponse response;
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

  // Drives a whole exchange: NextRound -> each request over loopback ->
  // OnResponse, until the exchange is over.
  std::vector<Outcome> Exchange(providers::Provider& provider, const providers::Batch& batch) {
    auto exchange = provider.Start(batch);
    for (int round = 0; round < 10; ++round) {
      const std::vector<HttpRequest> requests = exchange->NextRound();
      if (requests.empty()) break;
      for (size_t i = 0; i < requests.size(); ++i) exchange->OnResponse(i, Send(requests[i]));
    }
    return exchange->Outcomes();
  }

  uint64_t Requests() { return Sim().GetCounters().requests; }

 private:
  std::unique_ptr<Simulator> sim_;
  ReplyIoSim* reply_ = nullptr;
};

// Owns the operations a Batch points at.
// Contacts with a first name, by email.
std::vector<mapping::Contact> People(const std::vector<std::string>& emails) {
  std::vector<mapping::Contact> people;
  for (const auto& email : emails) {
    mapping::Contact contact;
    contact.email = email;
    contact.first_name = "First";
    people.push_back(std::move(contact));
  }
  return people;
}

struct Batch : testing::BatchFixture {
  Batch(const std::vector<std::string>& emails, mapping::Action action,
        const std::string& sequence = "42", const std::string& options = "")
      : BatchFixture("replyio", sequence, People(emails), action, options) {}
};

std::string Filter(const std::string& email, const std::string& condition = "equals") {
  return R"({"rules":[{"property":"email","condition":")" + condition + R"(","value":")" + email +
         R"("}]})";
}

std::string Ids(const std::vector<int64_t>& ids) {
  std::string out = R"({"contactIds":[)";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]}";
}

std::string Slug(const rapidjson::Document& doc, int64_t id) {
  const std::string key = std::to_string(id);
  const auto& not_processed = doc["notProcessed"];
  return not_processed.HasMember(key.c_str()) ? not_processed[key.c_str()].GetString() : "<none>";
}

void ExpectProblem(const httplib::Result& result, int status, const std::string& code) {
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, status);
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/problem+json");
  rapidjson::Document doc;
  doc.Parse(result->body.c_str());
  ASSERT_FALSE(doc.HasParseError()) << result->body;
  EXPECT_STREQ(doc["code"].GetString(), code.c_str());
  EXPECT_EQ(doc["status"].GetInt(), status);
  EXPECT_TRUE(doc["title"].IsString());
  EXPECT_TRUE(doc["detail"].IsString());
  EXPECT_TRUE(doc["type"].IsString());
}

TEST_F(ReplyIoSimTest, BadOrMissingTokenIsUnauthorizedWithEmptyBody) {
  for (const std::string& authorization : {std::string(""), std::string("Bearer wrong"),
                                           std::string("Basic ") + kKey, std::string(kKey)}) {
    const auto result = Post("/contacts/filter", Filter("a@x.io"), authorization);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 401) << authorization;
    EXPECT_EQ(result->get_header_value("WWW-Authenticate"), "Bearer");
    // ReplyIoSim sends no body; the Simulator's shared error handler
    // (simulator.cc) currently fills empty error bodies with {"message"}, so
    // only "not a problem document" is asserted here.
    EXPECT_NE(result->get_header_value("Content-Type"), "application/problem+json");
    EXPECT_EQ(result->body.find("\"code\""), std::string::npos);
  }
  EXPECT_EQ(Sim().GetCounters().unauthorized, 4u);
  EXPECT_EQ(Json("/contacts/filter", Filter("a@x.io"))["totalCount"].GetInt(), 0);
}

TEST_F(ReplyIoSimTest, FilterFindsContactsByEmailCaseInsensitively) {
  const int64_t ava = Reply().CreateContact("Ava@Example.com");
  Reply().CreateContact("bo@example.com");
  auto doc = Json("/contacts/filter", Filter("ava@EXAMPLE.com"));
  ASSERT_EQ(doc["items"].Size(), 1u);
  EXPECT_EQ(doc["items"][0]["id"].GetInt64(), ava);
  EXPECT_STREQ(doc["items"][0]["email"].GetString(), "Ava@Example.com");
  EXPECT_FALSE(doc["hasMore"].GetBool());
  EXPECT_EQ(doc["totalCount"].GetInt(), 1);

  EXPECT_EQ(Json("/contacts/filter", Filter("nobody@example.com"))["items"].Size(), 0u);
  EXPECT_EQ(Json("/contacts/filter", Filter("example.com", "contains"))["totalCount"].GetInt(), 2);
  doc = Json("/contacts/filter?top=1", Filter("example.com", "contains"));
  EXPECT_EQ(doc["items"].Size(), 1u);
  EXPECT_TRUE(doc["hasMore"].GetBool());
}

TEST_F(ReplyIoSimTest, FilterWithUnknownRuleIsValidationProblem) {
  const auto result = Post("/contacts/filter", Filter("a@x.io", "regex"));
  ExpectProblem(result, 400, "contact.invalidInput");
  rapidjson::Document doc;
  doc.Parse(result->body.c_str());
  EXPECT_STREQ(doc["errors"][0]["pointer"].GetString(), "/rules/0/condition");
  ExpectProblem(Post("/contacts/filter", "[]"), 400, "contact.invalidInput");
}

TEST_F(ReplyIoSimTest, ImportCreatesSkipsUpdatesAndFailsPerItem) {
  const int64_t old = Reply().CreateContact("old@x.io");
  auto doc = Json("/contacts/import",
                  R"({"items":[{"email":"new@x.io","firstName":"Ava"},{"email":"OLD@x.io"},)"
                  R"({"firstName":"NoEmail"},{"email":"not-an-email"}],)"
                  R"("options":{"overwriteExisting":false}})");
  ASSERT_EQ(doc["items"].Size(), 4u);
  EXPECT_STREQ(doc["items"][0]["status"].GetString(), "created");
  const int64_t created = doc["items"][0]["id"].GetInt64();
  EXPECT_STREQ(doc["items"][1]["status"].GetString(), "skipped");
  EXPECT_EQ(doc["items"][1]["id"].GetInt64(), old);
  EXPECT_STREQ(doc["items"][2]["status"].GetString(), "failed");
  EXPECT_TRUE(doc["items"][2]["id"].IsNull());
  EXPECT_STREQ(doc["items"][2]["error"].GetString(), "Email is required");
  EXPECT_STREQ(doc["items"][3]["status"].GetString(), "failed");
  EXPECT_EQ(doc["added"].GetInt(), 1);
  EXPECT_EQ(doc["skipped"].GetInt(), 1);
  EXPECT_EQ(doc["failed"].GetInt(), 2);
  EXPECT_EQ(Reply().Contacts().at(created).first_name, "Ava");

  doc = Json(
      "/contacts/import",
      R"({"items":[{"email":"old@x.io","lastName":"Updated"}],"options":{"overwriteExisting":true}})");
  EXPECT_STREQ(doc["items"][0]["status"].GetString(), "updated");
  EXPECT_EQ(Reply().Contacts().at(old).last_name, "Updated");
  EXPECT_EQ(Reply().Contacts().size(), 2u);
  ExpectProblem(Post("/contacts/import", R"({"items":[]})"), 400, "contact.invalidInput");
}

TEST_F(ReplyIoSimTest, BulkAddReportsEverySlug) {
  const int64_t a = Reply().CreateContact("a@x.io");
  const int64_t b = Reply().CreateContact("b@x.io");
  const int64_t c = Reply().CreateContact("c@x.io");
  Reply().MarkContactForbidden(c);
  Json("/sequences/42/contact-links/bulk", Ids({b}));

  const auto doc = Json("/sequences/42/contact-links/bulk", Ids({a, b, c, 999, 0, -1, a}));
  ASSERT_EQ(doc["added"].Size(), 1u);
  EXPECT_EQ(doc["added"][0].GetInt64(), a);
  EXPECT_EQ(doc["notProcessed"].MemberCount(), 5u);
  EXPECT_EQ(Slug(doc, b), "contactAlreadyInSequence");
  EXPECT_EQ(Slug(doc, c), "forbidden");
  EXPECT_EQ(Slug(doc, 999), "contactNotFound");
  EXPECT_EQ(Slug(doc, 0), "invalidInput");
  EXPECT_EQ(Slug(doc, -1), "invalidInput");
  EXPECT_EQ(Reply().Sequences().at(42), (std::set<std::string>{"a@x.io", "b@x.io"}));
}

TEST_F(ReplyIoSimTest, PlanLimitCountsContactsInAllSequences) {
  const int64_t a = Reply().CreateContact("a@x.io");
  const int64_t b = Reply().CreateContact("b@x.io");
  const int64_t c = Reply().CreateContact("c@x.io");
  Reply().SetContactLimit(2);
  Json("/sequences/1/contact-links/bulk", Ids({a}));
  auto doc = Json("/sequences/2/contact-links/bulk", Ids({b, c}));
  EXPECT_EQ(doc["added"].Size(), 1u);
  EXPECT_EQ(Slug(doc, c), "contactLimitExceeded");
  // Moving a contact with removeFromExisting frees its old place first.
  doc = Json("/sequences/2/contact-links/bulk",
             R"({"contactIds":[)" + std::to_string(a) + R"(],"removeFromExisting":true})");
  EXPECT_EQ(doc["added"].Size(), 1u);
  EXPECT_EQ(Reply().Sequences().at(1).size(), 0u);
  EXPECT_EQ(Reply().Sequences().at(2), (std::set<std::string>{"a@x.io", "b@x.io"}));
}

TEST_F(ReplyIoSimTest, ForbiddenSequenceForbidsEveryContact) {
  const int64_t a = Reply().CreateContact("a@x.io");
  Reply().MarkSequenceForbidden(7);
  const auto doc = Json("/sequences/7/contact-links/bulk", Ids({a}));
  EXPECT_EQ(doc["added"].Size(), 0u);
  EXPECT_EQ(Slug(doc, a), "forbidden");
  ExpectProblem(Post("/sequences/7/contact-links/bulk-delete", Ids({a})), 403,
                "sequence.forbidden");
}

TEST_F(ReplyIoSimTest, BulkAddKeepsStartOptions) {
  const int64_t a = Reply().CreateContact("a@x.io");
  Json("/sequences/42/contact-links/bulk",
       R"({"contactIds":[)" + std::to_string(a) +
           R"(],"startStepId":5,"ignoreStepDelay":true,"startFrom":"2026-11-23T12:00:00Z"})");
  const auto enrollment = Reply().Enrollment(42, a);
  ASSERT_TRUE(enrollment);
  EXPECT_EQ(enrollment->start_step_id, 5);
  EXPECT_TRUE(enrollment->ignore_step_delay);
  EXPECT_EQ(enrollment->start_from, "2026-11-23T12:00:00Z");
}

TEST_F(ReplyIoSimTest, MalformedBulkBodiesAreValidationProblems) {
  for (const char* body :
       {"not json", "{}", R"({"contactIds":[]})", R"({"contactIds":["1"]})",
        R"({"contactIds":[1],"startFrom":"tomorrow"})", R"({"contactIds":[1],"startStepId":"x"})",
        R"({"contactIds":[1],"removeFromExisting":"yes"})"}) {
    ExpectProblem(Post("/sequences/42/contact-links/bulk", body), 400, "sequence.invalidInput");
  }
  ExpectProblem(Post("/sequences/abc/contact-links/bulk", Ids({1})), 400, "sequence.invalidInput");
  EXPECT_TRUE(Reply().Sequences().empty());
}

TEST_F(ReplyIoSimTest, BulkDeleteCountsEachCase) {
  const int64_t a = Reply().CreateContact("a@x.io");
  const int64_t b = Reply().CreateContact("b@x.io");
  Json("/sequences/42/contact-links/bulk", Ids({a}));
  const auto doc = Json("/sequences/42/contact-links/bulk-delete", Ids({a, b, 999}));
  EXPECT_EQ(doc["requested"].GetInt(), 3);
  EXPECT_EQ(doc["removed"].GetInt(), 1);
  EXPECT_EQ(doc["notFound"].GetInt(), 1);
  EXPECT_EQ(doc["notInSequence"].GetInt(), 1);
  ASSERT_EQ(doc["removedIds"].Size(), 1u);
  EXPECT_EQ(doc["removedIds"][0].GetInt64(), a);
  EXPECT_TRUE(Reply().Sequences().at(42).empty());
}

TEST_F(ReplyIoSimTest, MissingSequenceIsNotFoundProblem) {
  const int64_t a = Reply().CreateContact("a@x.io");
  Reply().MarkSequenceMissing(9);
  ExpectProblem(Post("/sequences/9/contact-links/bulk", Ids({a})), 404, "sequence.notFound");
  ExpectProblem(Post("/sequences/9/contact-links/bulk-delete", Ids({a})), 404, "sequence.notFound");
  ExpectProblem(Post("/sequences/0/contact-links/bulk", Ids({a})), 404, "sequence.notFound");
}

TEST_F(ReplyIoSimTest, InjectedFailuresAreProblemDocuments) {
  Knobs knobs = Sim().GetKnobs();
  knobs.fail_all = true;
  Sim().SetKnobs(knobs);
  ExpectProblem(Post("/contacts/filter", Filter("a@x.io")), 503, "server.unavailable");
  EXPECT_EQ(Sim().GetCounters().injected_failures, 1u);
}

TEST_F(ReplyIoSimTest, DocumentedRateLimitsAreTheDefaults) {
  const ReplyIoRateLimits limits;
  EXPECT_EQ(limits.per_minute, 100);
  EXPECT_EQ(limits.per_hour, 3000);
}

TEST_F(ReplyIoSimTest, PerMinuteLimitAnswers429WithRetryAfterAndRecovers) {
  Knobs knobs = Sim().GetKnobs();
  knobs.rate_limit_time_scale = 20;  // a minute lasts 3 s
  Sim().SetKnobs(knobs);
  for (int i = 0; i < 100; ++i) {
    const auto result = Post("/contacts/filter", Filter("a@x.io"));
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200) << i;
  }
  const auto limited = Post("/contacts/filter", Filter("a@x.io"));
  ExpectProblem(limited, 429, "rateLimit.exceeded");
  const int retry_after = std::stoi(limited->get_header_value("Retry-After"));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 3);
  EXPECT_EQ(Sim().GetCounters().rate_limited, 1u);

  // Requests flow again once the scaled minute has passed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 429;
  while (status == 429 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
    const auto result = Post("/contacts/filter", Filter("a@x.io"));
    ASSERT_TRUE(result);
    status = result->status;
  }
  EXPECT_EQ(status, 200);
}

TEST_F(ReplyIoSimTest, HourlyLimitAnswers429WithRetryAfter) {
  Reply().SetRateLimits({1'000'000, 3000});  // the hourly limit on its own
  Knobs knobs = Sim().GetKnobs();
  knobs.rate_limit_time_scale = 60;  // an hour lasts a minute
  Sim().SetKnobs(knobs);
  auto client = Client();
  httplib::Headers headers = {{"Authorization", std::string("Bearer ") + kKey}};
  for (int i = 0; i < 3000; ++i) {
    const auto result =
        client.Post("/replyio/v3/contacts/filter", headers, Filter("a@x.io"), "application/json");
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200) << i;
  }
  const auto limited = Post("/contacts/filter", Filter("a@x.io"));
  ExpectProblem(limited, 429, "rateLimit.exceeded");
  EXPECT_GT(std::stoi(limited->get_header_value("Retry-After")), 1);
  EXPECT_NE(limited->body.find("3000 requests per hour"), std::string::npos);
}

TEST_F(ReplyIoSimTest, RateLimitsOffByKnob) {
  Reply().SetRateLimits({2, 3000});
  Knobs knobs = Sim().GetKnobs();
  knobs.enforce_rate_limits = false;
  Sim().SetKnobs(knobs);
  for (int i = 0; i < 5; ++i) Json("/contacts/filter", Filter("a@x.io"));
  EXPECT_EQ(Sim().GetCounters().rate_limited, 0u);
}

TEST_F(ReplyIoSimTest, StateJsonShowsContactsAndSequences) {
  const int64_t a = Reply().CreateContact("a@x.io");
  Json("/sequences/42/contact-links/bulk", Ids({a}));
  rapidjson::Document state;
  state.Parse(Sim().StateJson().c_str());
  ASSERT_TRUE(state.HasMember("replyio"));
  EXPECT_STREQ(state["replyio"]["contacts"][0]["email"].GetString(), "a@x.io");
  EXPECT_STREQ(state["replyio"]["sequences"]["42"][0].GetString(), "a@x.io");
  Sim().Reset();
  EXPECT_TRUE(Reply().Contacts().empty());
  EXPECT_TRUE(Reply().Sequences().empty());
}

TEST_F(ReplyIoSimTest, ExchangeEnrollsKnownAndNewContactsThenUsesTheCache) {
  Reply().CreateContact("known@x.io");
  auto provider = Provider();
  Batch batch({"known@x.io", "New@X.io"}, mapping::Action::kEnroll);
  auto outcomes = Exchange(provider, batch.batch);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone) << outcomes[0].reason;
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kDone) << outcomes[1].reason;
  EXPECT_EQ(Reply().Sequences().at(42), (std::set<std::string>{"known@x.io", "New@X.io"}));
  EXPECT_EQ(Requests(), 4u);  // two lookups, one import, one bulk add
  const auto contacts = Reply().Contacts();
  EXPECT_EQ(contacts.size(), 2u);

  // Every id is cached now: one request, and "already in sequence" is done.
  outcomes = Exchange(provider, batch.batch);
  EXPECT_EQ(Requests(), 5u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kDone);
}

TEST_F(ReplyIoSimTest, ExchangePassesStartOptions) {
  const int64_t a = Reply().CreateContact("a@x.io");
  auto provider = Provider();
  Batch batch({"a@x.io"}, mapping::Action::kEnroll, "42",
              R"({"startStepId":3,"ignoreStepDelay":true,"startFrom":"2026-12-01T09:00:00Z"})");
  EXPECT_EQ(Exchange(provider, batch.batch)[0].kind, OutcomeKind::kDone);
  const auto enrollment = Reply().Enrollment(42, a);
  ASSERT_TRUE(enrollment);
  EXPECT_EQ(enrollment->start_step_id, 3);
  EXPECT_TRUE(enrollment->ignore_step_delay);
  EXPECT_EQ(enrollment->start_from, "2026-12-01T09:00:00Z");
}

TEST_F(ReplyIoSimTest, ExchangeUnenrollsAndUnknownContactsAreDone) {
  auto provider = Provider();
  Batch enroll({"a@x.io", "b@x.io"}, mapping::Action::kEnroll);
  Exchange(provider, enroll.batch);
  Batch unenroll({"a@x.io", "b@x.io", "ghost@x.io"}, mapping::Action::kUnenroll);
  const auto outcomes = Exchange(provider, unenroll.batch);
  for (const Outcome& outcome : outcomes) EXPECT_EQ(outcome.kind, OutcomeKind::kDone);
  EXPECT_TRUE(Reply().Sequences().at(42).empty());
  EXPECT_EQ(Reply().Contacts().size(), 2u);  // a removal never creates a contact
}

TEST_F(ReplyIoSimTest, ExchangeLooksUpAStaleIdAgain) {
  auto provider = Provider();
  Batch first({"a@x.io"}, mapping::Action::kEnroll, "1");
  Exchange(provider, first.batch);
  const auto old_id = provider.CachedId("a@x.io");
  ASSERT_TRUE(old_id);
  // Deleted and recreated in Reply.io: the cached id is stale.
  Reply().DeleteContact(*old_id);
  const int64_t new_id = Reply().CreateContact("a@x.io");

  const uint64_t before = Requests();
  Batch second({"a@x.io"}, mapping::Action::kEnroll, "2");
  const auto outcomes = Exchange(provider, second.batch);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kDone) << outcomes[0].reason;
  EXPECT_EQ(Requests() - before, 3u);  // bulk (contactNotFound), lookup, bulk
  EXPECT_EQ(provider.CachedId("a@x.io"), new_id);
  EXPECT_EQ(Reply().Sequences().at(2), (std::set<std::string>{"a@x.io"}));
}

TEST_F(ReplyIoSimTest, ExchangeRetriesWhenTheContactVanished) {
  auto provider = Provider();
  Batch batch({"a@x.io"}, mapping::Action::kEnroll, "1");
  Exchange(provider, batch.batch);
  Reply().DeleteContact(*provider.CachedId("a@x.io"));
  Batch again({"a@x.io"}, mapping::Action::kEnroll, "2");
  const auto outcomes = Exchange(provider, again.batch);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry);
  // The retry starts afresh and creates the contact again.
  EXPECT_EQ(Exchange(provider, again.batch)[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(Reply().Sequences().at(2), (std::set<std::string>{"a@x.io"}));
}

TEST_F(ReplyIoSimTest, ExchangeRejectsWhatCannotSucceed) {
  auto provider = Provider(R"({"createMissingContacts":false})");
  const int64_t forbidden = Reply().CreateContact("forbidden@x.io");
  Reply().CreateContact("capped@x.io");
  Reply().CreateContact("fine@x.io");
  Reply().MarkContactForbidden(forbidden);
  Reply().SetContactLimit(1);

  Batch batch({"forbidden@x.io", "fine@x.io", "capped@x.io", "unknown@x.io"},
              mapping::Action::kEnroll);
  const auto outcomes = Exchange(provider, batch.batch);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_NE(outcomes[0].reason.find("forbidden"), std::string::npos);
  // Ids go out in ascending order: "capped" (2) takes the one place first.
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[1].reason,
            "Reply.io plan contact limit exceeded — raise the plan; items are not retried");
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::kDone);
  EXPECT_EQ(outcomes[3].kind, OutcomeKind::kReject);
  EXPECT_EQ(outcomes[3].reason,
            "reply.io: contact not found in Reply.io (createMissingContacts is off)");

  Reply().MarkSequenceMissing(77);
  Batch missing({"fine@x.io"}, mapping::Action::kEnroll, "77");
  const auto rejected = Exchange(provider, missing.batch);
  EXPECT_EQ(rejected[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(rejected[0].reason.rfind("reply.io: sequence 77 not found", 0), 0u);
}

TEST_F(ReplyIoSimTest, ExchangeRetriesAfterRateLimitWithRetryAfter) {
  Reply().SetRateLimits({1, 3000});
  auto provider = Provider();
  Batch batch({"a@x.io"}, mapping::Action::kEnroll);
  // The lookup takes the minute's one request; the import is refused.
  const auto outcomes = Exchange(provider, batch.batch);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].http_status, 429);
  ASSERT_TRUE(outcomes[0].retry_after);
  EXPECT_GE(*outcomes[0].retry_after, milliseconds(1000));
  EXPECT_EQ(Sim().GetCounters().rate_limited, 1u);
}

TEST_F(ReplyIoSimTest, ExchangeWithWrongKeyRetries) {
  mapping::ProviderConfig config;
  config.name = "replyio";
  config.base_url = Sim().BaseUrl("replyio");
  config.api_key = "wrong-key";
  providers::replyio::ReplyIoProvider provider(config);
  Batch batch({"a@x.io"}, mapping::Action::kEnroll);
  const auto outcomes = Exchange(provider, batch.batch);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(outcomes[0].reason, "reply.io: authentication failed (HTTP 401) — check the API key");
}

}  // namespace
}  // namespace crmsync::sim
