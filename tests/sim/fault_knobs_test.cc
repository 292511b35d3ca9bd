// The simulator's fault knobs over real loopback HTTP: throttle bursts
// (429 with Retry-After in each provider's error format), injected timeouts
// (a hang, then 504, nothing applied), connection resets (applied, answer cut
// short) and the per-provider count of concurrent requests.
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sim/simulator.h"

namespace crmsync::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kKey[] = "fault-knobs-key";
constexpr char kCampaign[] = "5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3";

// One request each provider's simulator admits and applies.
struct ProviderRequest {
  std::string provider;
  std::string method;
  std::string path;
  httplib::Headers headers;
  std::string body;
};

std::vector<ProviderRequest> Requests() {
  const httplib::Headers bearer = {{"Authorization", std::string("Bearer ") + kKey}};
  return {
      {"replify",
       "POST",
       std::string("/replify/api/v1/campaigns/") + kCampaign + "/contacts",
       {{"x-api-key", kKey}},
       R"({"action": "upsert", "contacts": [{"email": "ava@example.com", "phone": "15550001"}]})"},
      {"whippy",
       "PUT",
       "/whippy/v1/contacts/lists/prospects/contacts",
       {{"X-WHIPPY-KEY", kKey}},
       R"({"action": "add", "contacts": [{"phone": "+15550001"}]})"},
      {"campaignlark", "POST", "/campaignlark/v1/contacts/upsert", bearer,
       R"({"email": "ava@example.com", "status": "SUBSCRIBED"})"},
      {"replyio", "POST", "/replyio/v3/contacts/import", bearer,
       R"({"items": [{"email": "ava@example.com"}]})"},
  };
}

class FaultKnobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim::Simulator::Options options;
    options.api_keys = {
        {"replify", kKey}, {"whippy", kKey}, {"campaignlark", kKey}, {"replyio", kKey}};
    options.knobs.enforce_rate_limits = false;
    sim_ = std::make_unique<sim::Simulator>(options);
    sim_->Start();
  }

  std::unique_ptr<httplib::Client> Client(milliseconds read_timeout = milliseconds(10000)) {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", sim_->Port());
    client->set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(read_timeout).count(),
                             static_cast<time_t>((read_timeout.count() % 1000) * 1000));
    return client;
  }

  httplib::Result Send(const ProviderRequest& r, httplib::Client& client) {
    if (r.method == "PUT") return client.Put(r.path, r.headers, r.body, "application/json");
    return client.Post(r.path, r.headers, r.body, "application/json");
  }

  httplib::Result Send(const ProviderRequest& r) { return Send(r, *Client()); }

  // Knobs through the control endpoint; returns the status.
  int PostKnobs(const std::string& json) {
    auto result = Client()->Post("/_sim/knobs", json, "application/json");
    return result ? result->status : -1;
  }

  rapidjson::Document State() {
    rapidjson::Document doc;
    doc.Parse(sim_->StateJson().c_str());
    return doc;
  }

  std::unique_ptr<sim::Simulator> sim_;
};

TEST_F(FaultKnobsTest, FaultKnobsAreSetShownAndValidatedAllOrNothing) {
  ASSERT_EQ(PostKnobs(R"({"timeoutRate": 0.25, "hangMs": 700, "resetRate": 0.5,
                          "throttleBurst": 3, "throttleRetryAfterSeconds": 2})"),
            200);
  const sim::Knobs knobs = sim_->GetKnobs();
  EXPECT_DOUBLE_EQ(knobs.timeout_rate, 0.25);
  EXPECT_EQ(knobs.hang, milliseconds(700));
  EXPECT_DOUBLE_EQ(knobs.reset_rate, 0.5);
  EXPECT_EQ(knobs.throttle_burst, 3u);
  EXPECT_EQ(knobs.throttle_retry_after_seconds, 2);
  const auto state = State();
  const auto& shown = state["knobs"];
  EXPECT_DOUBLE_EQ(shown["timeoutRate"].GetDouble(), 0.25);
  EXPECT_EQ(shown["hangMs"].GetInt64(), 700);
  EXPECT_DOUBLE_EQ(shown["resetRate"].GetDouble(), 0.5);
  EXPECT_EQ(shown["throttleBurst"].GetUint64(), 3u);
  EXPECT_EQ(shown["throttleRetryAfterSeconds"].GetInt(), 2);
  for (const char* counter : {"injectedTimeouts", "injectedResets", "throttled"}) {
    EXPECT_EQ(state["counters"][counter].GetUint64(), 0u) << counter;
  }
  EXPECT_TRUE(state["counters"]["maxConcurrent"].IsObject());

  for (const char* bad :
       {R"({"timeoutRate": 1.5})", R"({"resetRate": -0.1})", R"({"hangMs": "long"})",
        R"({"throttleBurst": -1})", R"({"throttleBurst": 2.5})",
        R"({"throttleRetryAfterSeconds": -1})", R"({"hangMs": 10, "timeoutRate": 2})"}) {
    EXPECT_EQ(PostKnobs(bad), 400) << bad;
  }
  // Nothing of a refused update was applied.
  EXPECT_EQ(sim_->GetKnobs().hang, milliseconds(700));
  EXPECT_DOUBLE_EQ(sim_->GetKnobs().timeout_rate, 0.25);
}

TEST_F(FaultKnobsTest, ThrottleBurstAnswers429WithRetryAfterInEachProvidersFormat) {
  sim::Knobs knobs = sim_->GetKnobs();
  knobs.throttle_burst = 4;
  knobs.throttle_retry_after_seconds = 1;
  sim_->SetKnobs(knobs);
  for (const auto& request : Requests()) {
    auto result = Send(request);
    ASSERT_TRUE(result) << request.provider;
    EXPECT_EQ(result->status, 429) << request.provider;
    EXPECT_EQ(result->get_header_value("Retry-After"), "1") << request.provider;
    rapidjson::Document body;
    body.Parse(result->body.c_str());
    ASSERT_TRUE(body.IsObject()) << request.provider << ": " << result->body;
    // Each provider's documented error body.
    if (request.provider == "replify") {
      EXPECT_TRUE(body["message"].IsString());
    } else if (request.provider == "whippy") {
      EXPECT_TRUE(body["errors"][0]["description"].IsString());
      EXPECT_EQ(body["status"].GetInt(), 429);
    } else if (request.provider == "campaignlark") {
      EXPECT_TRUE(body["error"]["message"].IsString());
    } else {
      EXPECT_EQ(body["status"].GetInt(), 429);
      EXPECT_TRUE(body["title"].IsString());
    }
  }
  EXPECT_EQ(sim_->GetCounters().throttled, 4u);
  EXPECT_EQ(sim_->GetKnobs().throttle_burst, 0u);
  // Throttled requests were not applied; after the burst they go through.
  EXPECT_TRUE(sim_->ReplifyCampaigns()[kCampaign].empty());
  auto result = Send(Requests()[0]);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(sim_->ReplifyCampaigns()[kCampaign].size(), 1u);
}

TEST_F(FaultKnobsTest, InjectedTimeoutHangsThen504sWithoutApplying) {
  sim::Knobs knobs = sim_->GetKnobs();
  knobs.timeout_rate = 1.0;
  knobs.hang = milliseconds(1500);
  sim_->SetKnobs(knobs);
  const ProviderRequest request = Requests()[0];
  // A client that waits less than the hang sees a timeout, not an answer.
  auto impatient = Client(milliseconds(300));
  auto result = Send(request, *impatient);
  EXPECT_FALSE(result);
  if (!result) {
    EXPECT_EQ(result.error(), httplib::Error::Read);
  }
  // A patient one gets the provider's 504 once the hang is over.
  const auto start = std::chrono::steady_clock::now();
  result = Send(request);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 504) << result->body;
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(1500));
  EXPECT_EQ(sim_->GetCounters().injected_timeouts, 2u);
  EXPECT_TRUE(sim_->ReplifyCampaigns()[kCampaign].empty());
}

TEST_F(FaultKnobsTest, ResetAppliesTheRequestThenCutsTheAnswerShort) {
  sim::Knobs knobs = sim_->GetKnobs();
  knobs.reset_rate = 1.0;
  sim_->SetKnobs(knobs);
  for (const auto& request : Requests()) {
    auto result = Send(request);
    EXPECT_FALSE(result) << request.provider << " answered " << result->status;
  }
  EXPECT_EQ(sim_->GetCounters().injected_resets, 4u);
  // The changes were applied; only their answers were lost.
  EXPECT_EQ(sim_->ReplifyCampaigns()[kCampaign].size(), 1u);
  // The control endpoints are never cut short.
  auto state = Client()->Get("/_sim/state");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status, 200);
}

TEST_F(FaultKnobsTest, CountsTheMostConcurrentRequestsPerProvider) {
  sim::Knobs knobs = sim_->GetKnobs();
  knobs.latency = milliseconds(1000);
  sim_->SetKnobs(knobs);
  constexpr int kParallel = 6;
  std::vector<std::thread> clients;
  for (int i = 0; i < kParallel; ++i) {
    clients.emplace_back([&] { EXPECT_TRUE(Send(Requests()[2])); });
  }
  for (auto& client : clients) client.join();
  // One more, alone.
  EXPECT_TRUE(Send(Requests()[0]));
  const sim::Counters counters = sim_->GetCounters();
  EXPECT_EQ(counters.max_concurrent.at("campaignlark"), static_cast<uint64_t>(kParallel));
  EXPECT_EQ(counters.max_concurrent.at("replify"), 1u);
  EXPECT_FALSE(counters.max_concurrent.contains("whippy"));
  const auto state = State();
  EXPECT_EQ(state["counters"]["maxConcurrent"]["campaignlark"].GetUint64(),
            static_cast<uint64_t>(kParallel));
}

}  // namespace
}  // namespace crmsync::testing
