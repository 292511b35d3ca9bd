// Delivery with a fake provider module over real loopback HTTP: withdrawn
// exchanges send nothing more, requests of a revoking partition end by its
// deadline, and a half-open circuit whose probe never becomes a request
// admits the next one instead of wedging.
#include "worker/delivery.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sim/simulator.h"
#include "worker/metrics.h"

namespace crmsync::worker {
namespace {

using std::chrono::milliseconds;

// An exchange of one round of one request to `url`, or of none (a batch the
// module refuses locally) when `url` is empty.
class FakeExchange : public providers::Exchange {
 public:
  FakeExchange(std::string url, size_t items) : url_(std::move(url)), items_(items) {}
  std::vector<providers::HttpRequest> NextRound() override {
    if (url_.empty() || sent_) return {};
    sent_ = true;
    providers::HttpRequest request;
    request.url = url_;
    request.body = "{}";
    return {request};
  }
  void OnResponse(size_t, const providers::HttpResponse& response) override {
    answered_ok_ = response.transport == providers::Transport::kOk && response.status < 300;
  }
  std::vector<providers::Outcome> Outcomes() override {
    if (url_.empty()) {
      return std::vector<providers::Outcome>(
          items_, providers::Outcome{providers::OutcomeKind::kReject, "refused locally", 0, {}});
    }
    return std::vector<providers::Outcome>(
        items_, providers::Outcome{
                    answered_ok_ ? providers::OutcomeKind::kDone : providers::OutcomeKind::kRetry,
                    "",
                    0,
                    {}});
  }

 private:
  std::string url_;
  size_t items_;
  bool sent_ = false;
  bool answered_ok_ = false;
};

class FakeProvider : public providers::Provider {
 public:
  explicit FakeProvider(std::shared_ptr<std::string> url) : url_(std::move(url)) {}
  std::string_view Name() const override { return "fake"; }
  size_t MaxBatch() const override { return 10; }
  std::unique_ptr<providers::Exchange> Start(const providers::Batch& batch) override {
    return std::make_unique<FakeExchange>(*url_, batch.items.size());
  }

 private:
  std::shared_ptr<std::string> url_;
};

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim::Simulator::Options options;
    options.api_keys = {{"replify", "key"}};
    options.knobs.enforce_rate_limits = false;
    simulator_ = std::make_unique<sim::Simulator>(options);
    simulator_->Start();
    mapping::ProviderConfig provider;
    provider.name = "fake";
    provider.request_timeout = milliseconds(5000);
    provider.circuit_breaker = {1, milliseconds(50), milliseconds(200)};
    provider.rate_limits = std::vector<mapping::RateLimit>{{1, std::chrono::seconds(60)}};
    config_.providers["fake"] = provider;
  }

  std::unique_ptr<Delivery> Make() {
    std::map<std::string, std::unique_ptr<providers::Provider>> providers;
    providers["fake"] = std::make_unique<FakeProvider>(url_);
    return std::make_unique<Delivery>(config_, metrics_, std::move(providers),
                                      std::make_unique<HttpEngine>(HttpEngine::Options{}));
  }

  // A batch of `ops` operations from partition `partition` of topic "t".
  OutgoingBatch Batch(uint64_t id, int32_t partition, bool probe = false) {
    batches_.push_back(std::make_unique<providers::Batch>());
    ops_.push_back(std::make_unique<mapping::Operation>());
    batches_.back()->items = {ops_.back().get()};
    return OutgoingBatch{id, "fake", batches_.back().get(), {{"t", partition}}, probe};
  }

  std::vector<DeliveredBatch> PumpUntil(Delivery& delivery, size_t batches) {
    std::vector<DeliveredBatch> out;
    const auto end = Clock::now() + std::chrono::seconds(10);
    while (out.size() < batches && Clock::now() < end) {
      delivery.WaitForAnswers(Clock::now() + milliseconds(20));
      for (auto& done : delivery.Pump(Clock::now())) out.push_back(std::move(done));
    }
    return out;
  }

  Metrics metrics_;
  mapping::Config config_;
  std::unique_ptr<sim::Simulator> simulator_;
  std::shared_ptr<std::string> url_ = std::make_shared<std::string>();
  std::vector<std::unique_ptr<providers::Batch>> batches_;
  std::vector<std::unique_ptr<mapping::Operation>> ops_;
};

TEST_F(DeliveryTest, WithdrawnWorkWaitingForBudgetIsNeverSent) {
  *url_ = simulator_->BaseUrl("replify") + "/campaigns/x/contacts";
  auto delivery = Make();
  delivery->Start(Batch(1, 0), Clock::now());
  ASSERT_EQ(PumpUntil(*delivery, 1).size(), 1u);  // the budget's one request
  // The second waits for the budget (one per minute), then its partition goes.
  delivery->Start(Batch(2, 1), Clock::now());
  EXPECT_TRUE(delivery->Pump(Clock::now()).empty());
  EXPECT_EQ(delivery->ExchangesTouching({"t", 1}), 1u);
  delivery->Withdraw({{"t", 1}});
  auto done = delivery->Pump(Clock::now());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, 2u);
  ASSERT_EQ(done[0].outcomes.size(), 1u);
  EXPECT_TRUE(done[0].outcomes[0].withdrawn);
  EXPECT_EQ(delivery->ExchangesTouching({"t", 1}), 0u);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(simulator_->GetCounters().requests, 1u);
}

TEST_F(DeliveryTest, RequestsOfARevokingPartitionEndByItsDeadline) {
  config_.providers["fake"].rate_limits = std::vector<mapping::RateLimit>{};
  config_.providers["fake"].request_timeout = milliseconds(20000);
  simulator_->SetKnobs([] {
    sim::Knobs knobs;
    knobs.latency = milliseconds(3000);
    knobs.enforce_rate_limits = false;
    return knobs;
  }());
  *url_ = simulator_->BaseUrl("replify") + "/campaigns/x/contacts";
  auto delivery = Make();
  const auto started = Clock::now();
  delivery->Revoking({"t", 0}, started + milliseconds(300));
  delivery->Start(Batch(1, 0), started);
  auto done = PumpUntil(*delivery, 1);
  ASSERT_EQ(done.size(), 1u);
  // Timed out at the deadline, not after the provider's 3 s or the 20 s timeout.
  EXPECT_LT(Clock::now() - started, milliseconds(2500));
  EXPECT_EQ(done[0].outcomes[0].kind, providers::OutcomeKind::kRetry);
  // Past the deadline nothing of the partition starts at all.
  delivery->Start(Batch(2, 0), Clock::now());
  done = delivery->Pump(Clock::now());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].outcomes[0].withdrawn);
}

TEST_F(DeliveryTest, AProbeRefusedLocallyDoesNotWedgeTheCircuit) {
  config_.providers["fake"].rate_limits = std::vector<mapping::RateLimit>{};
  *url_ = "http://127.0.0.1:1/refused";  // nothing listens: a transport failure
  auto delivery = Make();
  ASSERT_EQ(delivery->MaySend("fake", Clock::now()), SIZE_MAX);
  delivery->Start(Batch(1, 0), Clock::now());
  ASSERT_EQ(PumpUntil(*delivery, 1).size(), 1u);
  ASSERT_EQ(delivery->Breaker("fake").state(), CircuitBreaker::State::kOpen);
  std::this_thread::sleep_for(milliseconds(60));
  ASSERT_EQ(delivery->MaySend("fake", Clock::now()), 1u);  // the probe
  *url_ = "";  // the module refuses the probe's operation without a request
  delivery->Start(Batch(2, 0, /*probe=*/true), Clock::now());
  auto done = delivery->Pump(Clock::now());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].outcomes[0].kind, providers::OutcomeKind::kReject);
  // The circuit asks for another probe instead of waiting forever.
  EXPECT_EQ(delivery->MaySend("fake", Clock::now()), 1u);
}

}  // namespace
}  // namespace crmsync::worker
