// The simulator's request log over real loopback HTTP: every provider request
// is recorded with the label of the key that authenticated it, refused ones
// with their status, in the order of their responses, bounded, and cleared by
// a reset.
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/simulator.h"

namespace crmsync::testing {
namespace {

constexpr char kDefaultKey[] = "log-default-key";
constexpr char kKeyA[] = "log-member-a-key";
constexpr char kKeyB[] = "log-member-b-key";
constexpr char kList[] = "/whippy/v1/contacts/lists/prospects/contacts";
constexpr char kAdd[] = R"({"action": "add", "contacts": [{"phone": "+15550001"}]})";

class RequestLogTest : public ::testing::Test {
 protected:
  void Start(size_t limit = sim::Simulator::Options{}.request_log_limit) {
    sim::Simulator::Options options;
    options.api_keys = {{"whippy", kDefaultKey}, {"replyio", kDefaultKey}};
    options.labelled_api_keys = {{"whippy", {{kKeyA, "member-a"}, {kKeyB, "member-b"}}},
                                 {"replyio", {{kKeyA, "member-a"}}}};
    options.knobs.enforce_rate_limits = false;
    options.request_log_limit = limit;
    sim_ = std::make_unique<sim::Simulator>(options);
    sim_->Start();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", sim_->Port());
  }

  int PutList(const std::string& key, const std::string& body = kAdd) {
    auto res = client_->Put(kList, {{"X-WHIPPY-KEY", key}}, body, "application/json");
    return res ? res->status : -1;
  }

  std::unique_ptr<sim::Simulator> sim_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(RequestLogTest, EachRequestCarriesTheLabelOfItsKey) {
  Start();
  const auto before = std::chrono::steady_clock::now();
  ASSERT_EQ(PutList(kKeyA), 200);
  ASSERT_EQ(PutList(kKeyB), 200);
  ASSERT_EQ(PutList(kDefaultKey), 200);
  auto filter = client_->Post("/replyio/v3/contacts/filter?page=1",
                              {{"Authorization", std::string("Bearer ") + kKeyA}},
                              R"({"rules": [{"property": "email", "condition": "equals",
                                             "value": "ava@example.com"}]})",
                              "application/json");
  ASSERT_TRUE(filter);
  ASSERT_EQ(filter->status, 200);
  const auto after = std::chrono::steady_clock::now();

  const std::vector<sim::RequestRecord> log = sim_->RequestLog();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].key_label, "member-a");
  EXPECT_EQ(log[1].key_label, "member-b");
  EXPECT_EQ(log[2].key_label, sim::kDefaultKeyLabel);
  EXPECT_EQ(log[3].key_label, "member-a");
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(log[i].provider, "whippy");
    EXPECT_EQ(log[i].method, "PUT");
    EXPECT_EQ(log[i].path, kList);
    EXPECT_EQ(log[i].status, 200);
    EXPECT_EQ(log[i].body, kAdd);
  }
  EXPECT_EQ(log[3].provider, "replyio");
  EXPECT_EQ(log[3].path, "/replyio/v3/contacts/filter");
  EXPECT_EQ(log[3].query, "page=1");
  EXPECT_NE(log[3].body.find("ava@example.com"), std::string::npos);
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].seq, i + 1);
    EXPECT_LE(before, log[i].arrived);
    EXPECT_LE(log[i].arrived, log[i].responded);
    EXPECT_LE(log[i].responded, after);
    if (i > 0) {
      EXPECT_LE(log[i - 1].responded, log[i].arrived);  // one client, in turn
    }
  }
  // A key is accepted only for the providers it is configured for.
  auto other =
      client_->Post("/replyio/v3/contacts/filter",
                    {{"Authorization", std::string("Bearer ") + kKeyB}}, "{}", "application/json");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 401);
  EXPECT_EQ(sim_->RequestLog().back().key_label, "");
}

TEST_F(RequestLogTest, RefusedRequestsAreRecordedWithTheirStatus) {
  Start();
  ASSERT_EQ(PutList("wrong-key"), 401);
  ASSERT_EQ(PutList(""), 401);
  // Whippy's router refuses other methods before it looks at the key.
  auto post = client_->Post(kList, {{"X-WHIPPY-KEY", kKeyA}}, kAdd, "application/json");
  ASSERT_TRUE(post);
  ASSERT_EQ(post->status, 405);
  // Invalid for Whippy, but authenticated: recorded with the key's label.
  ASSERT_EQ(PutList(kKeyA, R"({"action": "add"})"), 400);
  // A throttle burst refuses an authenticated request with 429.
  sim::Knobs knobs = sim_->GetKnobs();
  knobs.throttle_burst = 1;
  sim_->SetKnobs(knobs);
  ASSERT_EQ(PutList(kKeyB), 429);
  // Not a provider's path: not in the log.
  ASSERT_TRUE(client_->Get("/_sim/state"));

  const std::vector<sim::RequestRecord> log = sim_->RequestLog();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[0].status, 401);
  EXPECT_EQ(log[0].key_label, "");
  EXPECT_EQ(log[1].status, 401);
  EXPECT_EQ(log[1].key_label, "");
  EXPECT_EQ(log[2].status, 405);
  EXPECT_EQ(log[2].method, "POST");
  EXPECT_EQ(log[2].key_label, "");
  EXPECT_EQ(log[3].status, 400);
  EXPECT_EQ(log[3].key_label, "member-a");
  EXPECT_EQ(log[4].status, 429);
  EXPECT_EQ(log[4].key_label, "member-b");
  for (const auto& record : log) EXPECT_EQ(record.provider, "whippy");
}

TEST_F(RequestLogTest, KeepsTheNewestRecordsAndCountsTheRest) {
  Start(/*limit=*/3);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(PutList(kKeyA), 200);
  const std::vector<sim::RequestRecord> log = sim_->RequestLog();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log.front().seq, 3u);
  EXPECT_EQ(log.back().seq, 5u);
  EXPECT_EQ(sim_->GetCounters().request_log_dropped, 2u);
}

TEST_F(RequestLogTest, KeepsTheNewestBodiesWithinItsByteBound) {
  sim::Simulator::Options options;
  options.labelled_api_keys = {{"whippy", {{kKeyA, "member-a"}}}};
  options.knobs.enforce_rate_limits = false;
  options.request_log_max_bytes = 2 * std::string_view(kAdd).size();
  sim_ = std::make_unique<sim::Simulator>(options);
  sim_->Start();
  client_ = std::make_unique<httplib::Client>("127.0.0.1", sim_->Port());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(PutList(kKeyA), 200);
  const std::vector<sim::RequestRecord> log = sim_->RequestLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log.front().seq, 2u);
  EXPECT_EQ(sim_->GetCounters().request_log_dropped, 1u);
}

TEST_F(RequestLogTest, ResetClearsTheLog) {
  Start();
  ASSERT_EQ(PutList(kKeyA), 200);
  ASSERT_EQ(sim_->RequestLog().size(), 1u);
  sim_->Reset();
  EXPECT_TRUE(sim_->RequestLog().empty());
  ASSERT_EQ(PutList(kKeyB), 200);
  ASSERT_EQ(sim_->RequestLog().size(), 1u);
  EXPECT_EQ(sim_->RequestLog()[0].key_label, "member-b");
}

TEST_F(RequestLogTest, ALimitOfZeroTurnsTheLogOff) {
  Start(/*limit=*/0);
  ASSERT_EQ(PutList(kKeyA), 200);
  EXPECT_TRUE(sim_->RequestLog().empty());
  EXPECT_EQ(sim_->GetCounters().request_log_dropped, 0u);
}

TEST_F(RequestLogTest, TheControlEndpointServesTheLogAsJson) {
  Start();
  ASSERT_EQ(PutList(kKeyA), 200);
  ASSERT_EQ(PutList("wrong-key"), 401);
  auto res = client_->Get("/_sim/requests");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  rapidjson::Document doc;
  doc.Parse(res->body.c_str());
  ASSERT_FALSE(doc.HasParseError()) << res->body;
  ASSERT_TRUE(doc["requests"].IsArray());
  ASSERT_EQ(doc["requests"].Size(), 2u);
  const auto& first = doc["requests"][0];
  EXPECT_EQ(first["seq"].GetUint64(), 1u);
  EXPECT_STREQ(first["provider"].GetString(), "whippy");
  EXPECT_STREQ(first["method"].GetString(), "PUT");
  EXPECT_STREQ(first["path"].GetString(), kList);
  EXPECT_EQ(first["status"].GetInt(), 200);
  EXPECT_STREQ(first["keyLabel"].GetString(), "member-a");
  EXPECT_STREQ(first["body"].GetString(), kAdd);
  EXPECT_LE(first["arrivedUs"].GetInt64(), first["respondedUs"].GetInt64());
  EXPECT_EQ(doc["requests"][1]["status"].GetInt(), 401);
  EXPECT_STREQ(doc["requests"][1]["keyLabel"].GetString(), "");
  EXPECT_EQ(doc["dropped"].GetUint64(), 0u);
}

}  // namespace
}  // namespace crmsync::testing
