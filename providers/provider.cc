#include "providers/provider.h"

#include <string>
#include <utility>

namespace crmsync::providers {
namespace {

class SingleRequestExchange final : public Exchange {
 public:
  SingleRequestExchange(const SingleRequestProvider& provider, const Batch& batch)
      : provider_(provider), batch_(batch) {}

  std::vector<HttpRequest> NextRound() override {
    if (sent_) return {};
    sent_ = true;
    if (!provider_.Supports(batch_.action)) {
      outcomes_.assign(batch_.items.size(),
                       Outcome{OutcomeKind::kReject,
                               std::string(provider_.Name()) + " does not support action '" +
                                   std::string(mapping::ActionName(batch_.action)) + "'",
                               0,
                               {}});
      return {};
    }
    std::vector<HttpRequest> round;
    round.push_back(provider_.BuildRequest(batch_));
    return round;
  }

  void OnResponse(size_t, const HttpResponse& response) override {
    outcomes_ = provider_.Classify(batch_, response);
  }

  std::vector<Outcome> Outcomes() override { return std::move(outcomes_); }

 private:
  const SingleRequestProvider& provider_;
  const Batch& batch_;
  bool sent_ = false;
  std::vector<Outcome> outcomes_;
};

}  // namespace

std::unique_ptr<Exchange> SingleRequestProvider::Start(const Batch& batch) {
  return std::make_unique<SingleRequestExchange>(*this, batch);
}

}  // namespace crmsync::providers
