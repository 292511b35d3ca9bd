#include "providers/replyio/replyio.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <functional>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "tests/support/provider_checks.h"
#include "tests/support/provider_fixture.h"

namespace crmsync::providers::replyio {
namespace {

using testing::Header;

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kBase[] = "https://api.reply.io";
constexpr char kKey[] = "secret-key-123";
constexpr char kSequence[] = "42";

mapping::ProviderConfig Config(std::string settings = "") {
  return testing::ProviderConfigFor("replyio", kBase, kKey, 200, std::move(settings));
}

mapping::Contact Person(const std::string& email) {
  mapping::Contact contact;
  contact.email = email;
  return contact;
}

struct Fixture : testing::BatchFixture {
  explicit Fixture(std::vector<mapping::Contact> contacts,
                   mapping::Action action = mapping::Action::kEnroll,
                   const std::string& options = "")
      : BatchFixture("replyio", kSequence, std::move(contacts), action, options) {}
};

HttpResponse Response(long status, std::string body,
                      std::string content_type = "application/json") {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.content_type = std::move(content_type);
  return response;
}

HttpResponse Problem(long status, const std::string& code, const std::string& detail) {
  return Response(status,
                  R"({"type":"about:blank","title":"Error","status":)" + std::to_string(status) +
                      R"(,"detail":")" + detail + R"(","code":")" + code + R"("})",
                  "application/problem+json");
}

std::string Path(const HttpRequest& request) {
  const std::string base = kBase;
  return request.url.rfind(base, 0) == 0 ? request.url.substr(base.size()) : request.url;
}

rapidjson::Document Parse(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  EXPECT_FALSE(doc.HasParseError()) << body;
  return doc;
}

// Names the violation of the request schema, or "" when the body is valid.
std::string SchemaViolation(const std::string& body) {
  return testing::RequestSchemaViolation("replyio", body);
}

// Drives an exchange to its end, answering each request with `answer`, and
// records every request by round. Every body must satisfy the schema.
struct Trace {
  std::vector<std::vector<HttpRequest>> rounds;
  std::vector<Outcome> outcomes;
};

using Answer = std::function<HttpResponse(const HttpRequest&)>;

Trace Drive(ReplyIoProvider& provider, const Batch& batch, const Answer& answer) {
  Trace run;
  auto exchange = provider.Start(batch);
  for (int guard = 0; guard < 10; ++guard) {
    std::vector<HttpRequest> round = exchange->NextRound();
    if (round.empty()) break;
    for (size_t i = 0; i < round.size(); ++i) {
      EXPECT_EQ(SchemaViolation(round[i].body), "") << round[i].body;
      exchange->OnResponse(i, answer(round[i]));
    }
    run.rounds.push_back(std::move(round));
  }
  run.outcomes = exchange->Outcomes();
  EXPECT_EQ(run.outcomes.size(), batch.items.size());
  return run;
}

// The email a filter request asks for.
std::string LookupEmail(const HttpRequest& request) {
  const auto doc = Parse(request.body);
  return doc["rules"][0]["value"].GetString();
}

std::string Found(int64_t id, const std::string& email) {
  return R"({"items":[{"id":)" + std::to_string(id) + R"(,"email":")" + email +
         R"(","firstName":"X"}],"hasMore":false,"totalCount":1})";
}

constexpr char kNone[] = R"({"items":[],"hasMore":false,"totalCount":0})";

// A fake Reply.io: known emails -> ids, and a bulk answer.
struct FakeReply {
  std::map<std::string, int64_t> known;
  std::function<HttpResponse(const HttpRequest&)> bulk = [](const HttpRequest& request) {
    const auto doc = Parse(request.body);
    std::string added;
    for (const auto& id : doc["contactIds"].GetArray()) {
      added += (added.empty() ? "" : ",") + std::to_string(id.GetInt64());
    }
    return Response(200, R"({"added":[)" + added + R"(],"notProcessed":{}})");
  };
  int64_t next_id = 500;

  HttpResponse operator()(const HttpRequest& request) {
    const std::string path = Path(request);
    if (path == "/v3/contacts/filter") {
      const std::string email = LookupEmail(request);
      const auto it = known.find(email);
      return Response(200, it == known.end() ? kNone : Found(it->second, email));
    }
    if (path == "/v3/contacts/import") {
      const auto doc = Parse(request.body);
      std::string items;
      for (const auto& item : doc["items"].GetArray()) {
        const int64_t id = next_id++;
        known[item["email"].GetString()] = id;
        items += (items.empty() ? "" : ",") + std::string(R"({"id":)") + std::to_string(id) +
                 R"(,"status":"created","error":null})";
      }
      return Response(
          200, R"({"items":[)" + items + R"(],"added":1,"updated":0,"skipped":0,"failed":0})");
    }
    return bulk(request);
  }
};

TEST(ReplyIoProvider, NameAndMaxBatchComeFromConfig) {
  const ReplyIoProvider provider(Config());
  EXPECT_EQ(provider.Name(), "replyio");
  EXPECT_EQ(provider.MaxBatch(), 200u);
}

TEST(ReplyIoProvider, RegistryCreatesIt) {
  const auto provider = CreateProvider(Config());
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->Name(), "replyio");
  bool known = false;
  for (const auto name : KnownProviders()) known = known || name == "replyio";
  EXPECT_TRUE(known);
}

TEST(ReplyIoProvider, SettingsHaveDefaults) {
  const ReplyIoProvider provider(Config());
  EXPECT_TRUE(provider.Settings().create_missing_contacts);
  EXPECT_EQ(provider.Settings().id_cache_size, 10000u);
  EXPECT_EQ(provider.Settings().lookup_condition, "equals");
}

TEST(ReplyIoProvider, SettingsAreReadFromProviderConfig) {
  const ReplyIoProvider provider(Config(
      R"({"baseUrl":"x","createMissingContacts":false,"idCacheSize":5,"lookupCondition":"eq"})"));
  EXPECT_FALSE(provider.Settings().create_missing_contacts);
  EXPECT_EQ(provider.Settings().id_cache_size, 5u);
  EXPECT_EQ(provider.Settings().lookup_condition, "eq");
}

TEST(ReplyIoProvider, BadSettingsNameEveryPath) {
  try {
    ReplyIoProvider provider(
        Config(R"({"createMissingContacts":"yes","idCacheSize":-1,"lookupCondition":""})"));
    FAIL() << "no ConfigError";
  } catch (const mapping::ConfigError& error) {
    ASSERT_EQ(error.problems().size(), 3u);
    EXPECT_EQ(error.problems()[0], "/providers/replyio/createMissingContacts: must be a boolean");
    EXPECT_EQ(error.problems()[1], "/providers/replyio/idCacheSize: must be an integer >= 0");
    EXPECT_EQ(error.problems()[2],
              "/providers/replyio/lookupCondition: must be a non-empty string");
  }
}

TEST(ReplyIoProvider, UnsupportedActionsRejectWithoutRequest) {
  ReplyIoProvider provider(Config());
  for (const auto action :
       {mapping::Action::kUpsert, mapping::Action::kUpdateOnly, mapping::Action::kRemove,
        mapping::Action::kAdd, mapping::Action::kOverwrite}) {
    Fixture f({Person("a@example.com")}, action);
    const Trace run = Drive(provider, f.batch, FakeReply{});
    EXPECT_TRUE(run.rounds.empty());
    ASSERT_EQ(run.outcomes.size(), 1u);
    EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject);
    EXPECT_EQ(run.outcomes[0].reason,
              "replyio does not support action '" + std::string(mapping::ActionName(action)) + "'");
  }
}

TEST(ReplyIoProvider, NonIntegerSequenceRejectsWithoutRequest) {
  ReplyIoProvider provider(Config());
  for (const char* target : {"abc", "0", "-3", "12/../1", "+5", "99999999999999999999"}) {
    Fixture f({Person("a@example.com")});
    f.batch.target = target;
    const Trace run = Drive(provider, f.batch, FakeReply{});
    EXPECT_TRUE(run.rounds.empty()) << target;
    EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject) << target;
    EXPECT_NE(run.outcomes[0].reason.find("sequence id must be a positive integer"),
              std::string::npos);
  }
}

TEST(ReplyIoProvider, ItemWithoutEmailIsRejectedLocally) {
  ReplyIoProvider provider(Config());
  mapping::Contact phone_only;
  phone_only.phone = "15550001";
  Fixture f({phone_only, Person("  "), Person("a@example.com")});
  FakeReply reply;
  reply.known = {{"a@example.com", 7}};
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(run.rounds[0].size(), 1u);  // one lookup, for the one email
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[0].reason, "reply.io: contact has no email to look it up by");
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[2].kind, OutcomeKind::kDone);
}

TEST(ReplyIoProvider, LookupIsAFilterByEmailWithBearerAuth) {
  ReplyIoProvider provider(Config());
  Fixture f({Person("Ava@Example.com")});
  auto exchange = provider.Start(f.batch);
  const auto round = exchange->NextRound();
  ASSERT_EQ(round.size(), 1u);
  EXPECT_EQ(round[0].method, "POST");
  EXPECT_EQ(round[0].url, "https://api.reply.io/v3/contacts/filter");
  EXPECT_EQ(Header(round[0], "Authorization"), std::string("Bearer ") + kKey);
  EXPECT_EQ(Header(round[0], "Content-Type"), "application/json");
  EXPECT_EQ(round[0].body,
            R"({"rules":[{"property":"email","condition":"equals","value":"Ava@Example.com"}]})");
  EXPECT_EQ(SchemaViolation(round[0].body), "");
}

TEST(ReplyIoProvider, LookupConditionIsConfigurable) {
  ReplyIoProvider provider(Config(R"({"lookupCondition":"eq"})"));
  Fixture f({Person("a@example.com")});
  const auto round = provider.Start(f.batch)->NextRound();
  ASSERT_EQ(round.size(), 1u);
  EXPECT_STREQ(Parse(round[0].body)["rules"][0]["condition"].GetString(), "eq");
}

TEST(ReplyIoProvider, IgnoresTrailingSlashOfBaseUrl) {
  mapping::ProviderConfig config = Config();
  config.base_url = "http://127.0.0.1:8080/replyio/";
  ReplyIoProvider provider(config);
  Fixture f({Person("a@example.com")});
  EXPECT_EQ(provider.Start(f.batch)->NextRound()[0].url,
            "http://127.0.0.1:8080/replyio/v3/contacts/filter");
}

TEST(ReplyIoProvider, LookupThenEnrollWithCacheMissAndHit) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@example.com", 11}, {"b@example.com", 12}};

  Fixture first({Person("a@example.com")});
  Trace run = Drive(provider, first.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(Path(run.rounds[0][0]), "/v3/contacts/filter");
  EXPECT_EQ(Path(run.rounds[1][0]), "/v3/sequences/42/contact-links/bulk");
  EXPECT_EQ(run.rounds[1][0].body, R"({"contactIds":[11]})");
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(provider.CachedId("A@EXAMPLE.COM"), 11);

  // a@ is cached (case-insensitively): only b@ is looked up.
  Fixture second({Person("A@example.com"), Person("b@example.com")});
  run = Drive(provider, second.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  ASSERT_EQ(run.rounds[0].size(), 1u);
  EXPECT_EQ(LookupEmail(run.rounds[0][0]), "b@example.com");
  EXPECT_EQ(run.rounds[1][0].body, R"({"contactIds":[11,12]})");
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kDone);

  // Everything cached: straight to the write.
  run = Drive(provider, second.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 1u);
  EXPECT_EQ(Path(run.rounds[0][0]), "/v3/sequences/42/contact-links/bulk");
}

TEST(ReplyIoProvider, ItemsSharingAnEmailShareOneLookupAndOneId) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@example.com", 11}};
  Fixture f({Person("a@example.com"), Person("A@EXAMPLE.COM")});
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(run.rounds[0].size(), 1u);
  EXPECT_EQ(run.rounds[1][0].body, R"({"contactIds":[11]})");
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kDone);
}

TEST(ReplyIoProvider, LookupMatchesOnlyTheExactEmail) {
  ReplyIoProvider provider(Config(R"({"createMissingContacts":false})"));
  Fixture f({Person("a@example.com")});
  const Trace run = Drive(provider, f.batch, [](const HttpRequest&) {
    return Response(200, Found(9, "aa@example.com"));
  });
  EXPECT_EQ(run.rounds.size(), 1u);
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject);
}

TEST(ReplyIoProvider, EnrollSendsEveryStartOption) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@example.com", 11}};
  Fixture f({Person("a@example.com")}, mapping::Action::kEnroll,
            R"({"removeFromExisting":true,"startStepId":7,"ignoreStepDelay":true,)"
            R"("startFrom":"2026-11-23T12:00:00Z"})");
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(run.rounds[1][0].body,
            R"({"contactIds":[11],"removeFromExisting":true,"startStepId":7,)"
            R"("ignoreStepDelay":true,"startFrom":"2026-11-23T12:00:00Z"})");
}

TEST(ReplyIoProvider, EnrollOmitsAbsentOptions) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@example.com", 11}};
  Fixture f({Person("a@example.com")}, mapping::Action::kEnroll, R"({"ignoreStepDelay":false})");
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(run.rounds[1][0].body, R"({"contactIds":[11],"ignoreStepDelay":false})");
}

// Request options are checked once, when the config is loaded.
TEST(ReplyIoProvider, SpecRefusesInvalidOptions) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"startStepId":"7"})", "/options/startStepId: must be a positive integer"},
      {R"({"startStepId":null})", "/options/startStepId: must be a positive integer"},
      {R"({"removeFromExisting":1})", "/options/removeFromExisting: must be true or false"},
      {R"({"startFrom":5})",
       "/options/startFrom: must be an RFC 3339 date-time, e.g. 2026-11-23T12:00:00Z"},
      {R"({"other":1})",
       "/options/other: 'other' is not an option of provider 'replyio' (allowed: "
       "removeFromExisting, startStepId, ignoreStepDelay, startFrom)"},
  };
  for (const auto& [options, problem] : cases) {
    EXPECT_EQ(testing::OptionProblems("replyio", options), std::vector<std::string>{problem})
        << options;
  }
}

TEST(ReplyIoProvider, MissingContactIsImportedThenEnrolled) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"old@example.com", 3}};
  mapping::Contact ava = Person("ava@example.com");
  ava.first_name = "Ava";
  ava.last_name = "Lopez";
  ava.phone = "15551234567";
  ava.metadata = {{"tier", "pro"}};
  Fixture f({ava, Person("old@example.com"), Person("bo@example.com")});
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 3u);
  EXPECT_EQ(run.rounds[0].size(), 3u);
  ASSERT_EQ(run.rounds[1].size(), 1u);
  EXPECT_EQ(Path(run.rounds[1][0]), "/v3/contacts/import");
  EXPECT_EQ(run.rounds[1][0].body,
            R"({"items":[{"email":"ava@example.com","firstName":"Ava","lastName":"Lopez",)"
            R"("phone":"15551234567"},{"email":"bo@example.com"}],)"
            R"("options":{"overwriteExisting":false}})");
  EXPECT_EQ(run.rounds[2][0].body, R"({"contactIds":[3,500,501]})");
  for (const Outcome& outcome : run.outcomes) EXPECT_EQ(outcome.kind, OutcomeKind::kDone);
  EXPECT_EQ(provider.CachedId("ava@example.com"), 500);
}

TEST(ReplyIoProvider, MissingContactIsRejectedWhenCreationIsOff) {
  ReplyIoProvider provider(Config(R"({"createMissingContacts":false})"));
  FakeReply reply;
  reply.known = {{"a@example.com", 11}};
  Fixture f({Person("a@example.com"), Person("new@example.com")});
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(run.rounds[1][0].body, R"({"contactIds":[11]})");
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[1].reason,
            "reply.io: contact not found in Reply.io (createMissingContacts is off)");
}

TEST(ReplyIoProvider, ImportFailureRejectsAndMissingIdRetries) {
  ReplyIoProvider provider(Config());
  Fixture f({Person("bad@example.com"), Person("odd@example.com")});
  const Trace run = Drive(provider, f.batch, [](const HttpRequest& request) {
    if (Path(request) == "/v3/contacts/filter") return Response(200, kNone);
    return Response(200, R"({"items":[{"id":null,"status":"Failed","error":"Email is invalid"},)"
                         R"({"id":null,"status":"skipped","error":null}],"failed":1})");
  });
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[0].reason, "reply.io could not create the contact: Email is invalid");
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kRetry);
}

TEST(ReplyIoProvider, UnenrollIsABulkDeleteAndEveryCounterIsDone) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@example.com", 11}, {"b@example.com", 12}, {"c@example.com", 13}};
  reply.bulk = [](const HttpRequest& request) {
    EXPECT_EQ(Path(request), "/v3/sequences/42/contact-links/bulk-delete");
    return Response(
        200, R"({"requested":3,"removed":1,"notFound":1,"notInSequence":1,"removedIds":[11]})");
  };
  Fixture f({Person("a@example.com"), Person("b@example.com"), Person("c@example.com")},
            mapping::Action::kUnenroll, R"({"startStepId":7})");
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  // Enroll options never travel with a removal.
  EXPECT_EQ(run.rounds[1][0].body, R"({"contactIds":[11,12,13]})");
  for (const Outcome& outcome : run.outcomes) EXPECT_EQ(outcome.kind, OutcomeKind::kDone);
}

TEST(ReplyIoProvider, UnenrollOfUnknownContactIsDoneWithoutWrite) {
  ReplyIoProvider provider(Config());
  Fixture f({Person("ghost@example.com")}, mapping::Action::kUnenroll);
  const Trace run = Drive(provider, f.batch, FakeReply{});
  ASSERT_EQ(run.rounds.size(), 1u);  // the lookup only; no import for a removal
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
}

TEST(ReplyIoProvider, EachSlugHasItsOutcome) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  const std::vector<std::string> emails = {"added@x.io",      "already@x.io", "forbidden@x.io",
                                           "invalid@x.io",    "limit@x.io",   "mystery@x.io",
                                           "unmentioned@x.io"};
  for (size_t i = 0; i < emails.size(); ++i) reply.known[emails[i]] = static_cast<int64_t>(i + 1);
  reply.bulk = [](const HttpRequest&) {
    return Response(200, R"({"added":[1],"notProcessed":{"2":"contactAlreadyInSequence",)"
                         R"("3":"forbidden","4":"invalidInput","5":"contactLimitExceeded",)"
                         R"("6":"somethingNew"}})");
  };
  std::vector<mapping::Contact> contacts;
  for (const auto& email : emails) contacts.push_back(Person(email));
  Fixture f(contacts);
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.outcomes.size(), 7u);
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[2].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[2].reason,
            "reply.io: not permitted to enroll contact 3 in sequence 42 (forbidden)");
  EXPECT_EQ(run.outcomes[3].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[3].reason, "reply.io: contact 4 rejected by sequence 42 (invalidInput)");
  EXPECT_EQ(run.outcomes[4].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[4].reason,
            "Reply.io plan contact limit exceeded — raise the plan; items are not retried");
  EXPECT_EQ(run.outcomes[5].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[5].reason, "reply.io: contact 6 not processed: somethingNew");
  EXPECT_EQ(run.outcomes[6].kind, OutcomeKind::kDone);
  for (const Outcome& outcome : run.outcomes) EXPECT_EQ(outcome.http_status, 200);
}

TEST(ReplyIoProvider, SlugAsObjectIsUnderstood) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  reply.bulk = [](const HttpRequest&) {
    return Response(200, R"({"added":[],"notProcessed":{"1":{"code":"forbidden"}}})");
  };
  Fixture f({Person("a@x.io")});
  EXPECT_EQ(Drive(provider, f.batch, std::ref(reply)).outcomes[0].kind, OutcomeKind::kReject);
}

TEST(ReplyIoProvider, ContactNotFoundDropsCachedIdAndLooksUpOnceMore) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}, {"b@x.io", 2}};
  Fixture f({Person("a@x.io"), Person("b@x.io")});
  Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(provider.CachedId("a@x.io"), 1);

  // a@ was deleted and recreated in Reply.io under a new id.
  reply.known["a@x.io"] = 77;
  reply.bulk = [](const HttpRequest& request) {
    if (request.body == R"({"contactIds":[1,2]})") {
      return Response(200, R"({"added":[2],"notProcessed":{"1":"contactNotFound"}})");
    }
    EXPECT_EQ(request.body, R"({"contactIds":[77]})");
    return Response(200, R"({"added":[77],"notProcessed":{}})");
  };
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 3u);
  EXPECT_EQ(Path(run.rounds[0][0]), "/v3/sequences/42/contact-links/bulk");
  ASSERT_EQ(run.rounds[1].size(), 1u);
  EXPECT_EQ(LookupEmail(run.rounds[1][0]), "a@x.io");
  EXPECT_EQ(Path(run.rounds[2][0]), "/v3/sequences/42/contact-links/bulk");
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kDone);
  EXPECT_EQ(provider.CachedId("a@x.io"), 77);
}

TEST(ReplyIoProvider, ContactStillMissingAfterRelookupRetries) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  Fixture f({Person("a@x.io")});
  Drive(provider, f.batch, std::ref(reply));

  // Deleted: the re-lookup finds nobody. No import this time: retry.
  reply.known.clear();
  reply.bulk = [](const HttpRequest&) {
    return Response(200, R"({"added":[],"notProcessed":{"1":"contactNotFound"}})");
  };
  Trace run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(Path(run.rounds[1][0]), "/v3/contacts/filter");
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(provider.CachedId("a@x.io"), std::nullopt);

  // The lookup keeps answering the same id that the write says is missing.
  reply.known = {{"a@x.io", 1}};
  run = Drive(provider, f.batch, std::ref(reply));
  ASSERT_EQ(run.rounds.size(), 4u);  // lookup, write, re-lookup, write
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_NE(run.outcomes[0].reason.find("not found even after a fresh look-up"), std::string::npos);
}

TEST(ReplyIoProvider, UnauthorizedWithEmptyBodyRetries) {
  ReplyIoProvider provider(Config());
  Fixture f({Person("a@x.io")});
  const Trace run =
      Drive(provider, f.batch, [](const HttpRequest&) { return Response(401, "", ""); });
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(run.outcomes[0].reason,
            "reply.io: authentication failed (HTTP 401) — check the API key");
  EXPECT_EQ(run.outcomes[0].http_status, 401);
}

TEST(ReplyIoProvider, SequenceNotFoundRejects) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  reply.bulk = [](const HttpRequest&) {
    return Problem(404, "sequence.notFound", "Sequence 42 was not found");
  };
  for (const auto action : {mapping::Action::kEnroll, mapping::Action::kUnenroll}) {
    Fixture f({Person("a@x.io")}, action);
    const Trace run = Drive(provider, f.batch, std::ref(reply));
    EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject);
    EXPECT_EQ(run.outcomes[0].reason.rfind("reply.io: sequence 42 not found", 0), 0u)
        << run.outcomes[0].reason;
  }
}

TEST(ReplyIoProvider, ForbiddenSequenceRejects) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  reply.bulk = [](const HttpRequest&) { return Problem(403, "sequence.forbidden", "denied"); };
  Fixture f({Person("a@x.io")}, mapping::Action::kUnenroll);
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[0].reason,
            "reply.io: access to sequence 42 denied (HTTP 403): sequence.forbidden: denied");
}

TEST(ReplyIoProvider, BadRequestRejectsWithDetail) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  reply.bulk = [](const HttpRequest&) {
    return Response(400,
                    R"({"title":"Validation failed","status":400,"detail":"One or more fields )"
                    R"(are invalid","code":"sequence.invalidInput","errors":[{"pointer":)"
                    R"("/startFrom","detail":"must be a date-time"}]})",
                    "application/problem+json");
  };
  Fixture f({Person("a@x.io")});
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kReject);
  EXPECT_EQ(run.outcomes[0].reason,
            "reply.io: sequence update rejected (HTTP 400): sequence.invalidInput: One or more "
            "fields are invalid (/startFrom: must be a date-time)");
}

TEST(ReplyIoProvider, RateLimitRetriesAfterRetryAfter) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  reply.bulk = [](const HttpRequest&) {
    HttpResponse response = Problem(429, "rateLimit.exceeded", "100 requests per minute exceeded");
    response.retry_after = seconds(7);
    return response;
  };
  Fixture f({Person("a@x.io")});
  const Trace run = Drive(provider, f.batch, std::ref(reply));
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(run.outcomes[0].retry_after, milliseconds(7000));
  EXPECT_EQ(run.outcomes[0].http_status, 429);
  EXPECT_EQ(run.outcomes[0].reason,
            "reply.io: rate limited (HTTP 429): rateLimit.exceeded: 100 requests per minute "
            "exceeded");
}

TEST(ReplyIoProvider, FailedLookupsRetryTheirItemsOnly) {
  ReplyIoProvider provider(Config());
  Fixture f({Person("limited@x.io"), Person("broken@x.io"), Person("fine@x.io")});
  const Trace run = Drive(provider, f.batch, [](const HttpRequest& request) {
    if (Path(request) != "/v3/contacts/filter") {
      EXPECT_EQ(request.body, R"({"contactIds":[3]})");
      return Response(200, R"({"added":[3],"notProcessed":{}})");
    }
    const std::string email = LookupEmail(request);
    if (email == "limited@x.io") {
      HttpResponse response = Problem(429, "rateLimit.exceeded", "slow down");
      response.retry_after = seconds(30);
      return response;
    }
    if (email == "broken@x.io") return Problem(503, "server.unavailable", "later");
    return Response(200, Found(3, email));
  });
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_EQ(run.outcomes[0].retry_after, milliseconds(30000));
  EXPECT_EQ(run.outcomes[1].kind, OutcomeKind::kRetry);
  EXPECT_EQ(run.outcomes[1].http_status, 503);
  EXPECT_EQ(run.outcomes[2].kind, OutcomeKind::kDone);
}

TEST(ReplyIoProvider, ServerErrorsAndTransportFailuresRetry) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  Fixture f({Person("a@x.io")});
  Drive(provider, f.batch, std::ref(reply));  // caches the id

  for (const long status : {500L, 502L, 503L, 504L, 408L}) {
    reply.bulk = [status](const HttpRequest&) { return Response(status, "oops"); };
    const Trace run = Drive(provider, f.batch, std::ref(reply));
    EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry) << status;
    EXPECT_EQ(run.outcomes[0].http_status, status);
  }
  for (const auto transport : {Transport::kTimeout, Transport::kConnectFailed, Transport::kBroken,
                               Transport::kConfigError}) {
    reply.bulk = [transport](const HttpRequest&) {
      HttpResponse response;
      response.transport = transport;
      response.transport_error = "failure";
      return response;
    };
    const Trace run = Drive(provider, f.batch, std::ref(reply));
    EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
    EXPECT_NE(run.outcomes[0].reason.find("failure"), std::string::npos);
  }
}

TEST(ReplyIoProvider, UnreadableLookupAnswerRetries) {
  ReplyIoProvider provider(Config());
  Fixture f({Person("a@x.io")});
  const Trace run =
      Drive(provider, f.batch, [](const HttpRequest&) { return Response(200, "<html>"); });
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
}

TEST(ReplyIoProvider, UnreadableWriteAnswerCountsAsDone) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  reply.bulk = [](const HttpRequest&) { return Response(200, ""); };
  Fixture f({Person("a@x.io")});
  EXPECT_EQ(Drive(provider, f.batch, std::ref(reply)).outcomes[0].kind, OutcomeKind::kDone);
}

TEST(ReplyIoProvider, ReasonsNeverContainTheApiKey) {
  ReplyIoProvider provider(Config());
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  reply.bulk = [](const HttpRequest&) {
    return Problem(400, "sequence.invalidInput", std::string("bad token ") + kKey);
  };
  Fixture f({Person("a@x.io")});
  Trace run = Drive(provider, f.batch, std::ref(reply));
  EXPECT_EQ(run.outcomes[0].reason.find(kKey), std::string::npos);
  EXPECT_NE(run.outcomes[0].reason.find("[redacted]"), std::string::npos);

  reply.bulk = [](const HttpRequest&) {
    HttpResponse response;
    response.transport = Transport::kBroken;
    response.transport_error = std::string("header Bearer ") + kKey;
    return response;
  };
  run = Drive(provider, f.batch, std::ref(reply));
  EXPECT_EQ(run.outcomes[0].reason.find(kKey), std::string::npos);
}

TEST(ReplyIoProvider, ContactsEndpointNotFoundRetriesAsConfiguration) {
  ReplyIoProvider provider(Config());
  Fixture f({Person("a@x.io")});
  const Trace run =
      Drive(provider, f.batch, [](const HttpRequest&) { return Response(404, "Not Found"); });
  EXPECT_EQ(run.outcomes[0].kind, OutcomeKind::kRetry);
  EXPECT_NE(run.outcomes[0].reason.find("check baseUrl"), std::string::npos);
}

TEST(ReplyIoProvider, CacheOffLooksUpEveryTime) {
  ReplyIoProvider provider(Config(R"({"idCacheSize":0})"));
  FakeReply reply;
  reply.known = {{"a@x.io", 1}};
  Fixture f({Person("a@x.io")});
  EXPECT_EQ(Drive(provider, f.batch, std::ref(reply)).rounds.size(), 2u);
  EXPECT_EQ(Drive(provider, f.batch, std::ref(reply)).rounds.size(), 2u);
  EXPECT_EQ(provider.CachedIds(), 0u);
}

TEST(IdCache, EvictsTheLeastRecentlyUsed) {
  IdCache cache(2);
  cache.Put("a", 1);
  cache.Put("b", 2);
  EXPECT_EQ(cache.Get("a"), 1);  // a is now the most recent
  cache.Put("c", 3);
  EXPECT_EQ(cache.Get("b"), std::nullopt);
  EXPECT_EQ(cache.Get("a"), 1);
  EXPECT_EQ(cache.Get("c"), 3);
  EXPECT_EQ(cache.Size(), 2u);
}

TEST(IdCache, EraseIfKeepsANewerId) {
  IdCache cache(4);
  cache.Put("a", 1);
  cache.Put("a", 2);
  cache.EraseIf("a", 1);
  EXPECT_EQ(cache.Get("a"), 2);
  cache.EraseIf("a", 2);
  EXPECT_EQ(cache.Get("a"), std::nullopt);
}

TEST(ReplyIoSchema, RejectsBodiesOutsideTheContract) {
  EXPECT_NE(SchemaViolation(R"({"contactIds":[]})"), "");
  EXPECT_NE(SchemaViolation(R"({"contactIds":[0]})"), "");
  EXPECT_NE(SchemaViolation(R"({"contactIds":[1],"startFrom":"tomorrow"})"), "");
  EXPECT_NE(SchemaViolation(R"({"contactIds":[1],"extra":true})"), "");
  EXPECT_NE(SchemaViolation(R"({"rules":[{"property":"phone","condition":"equals","value":"1"}]})"),
            "");
  EXPECT_NE(
      SchemaViolation(R"({"items":[{"firstName":"x"}],"options":{"overwriteExisting":false}})"),
      "");
  EXPECT_EQ(SchemaViolation(R"({"contactIds":[1,2],"startFrom":"2026-01-01T00:00:00+02:00"})"), "");
}

}  // namespace
}  // namespace crmsync::providers::replyio
