// ReplifyProvider: the Replify ("Libby" assistant) campaign-contacts API as a
// Provider (its API reference): POST {baseUrl}/campaigns/{campaignId}/contacts with
// {"contacts": [...], "action": "upsert|updateOnly|remove"} and optional root
// externalIdKey/externalIdValue routing.
//
// Immutable after construction; BuildRequest and Classify are pure and safe to
// call from any thread. Holds the API key, which it only ever puts into the
// x-api-key header: reasons never contain it. Neither function throws for any
// batch or response; every problem becomes an Outcome.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/config.h"
#include "providers/provider.h"

namespace crmsync::providers::replify {

class ReplifyProvider final : public SingleRequestProvider {
 public:
  static constexpr std::string_view kName = "replify";

  // Uses config.base_url (a trailing '/' is ignored), config.api_key and
  // config.max_batch.
  explicit ReplifyProvider(const mapping::ProviderConfig& config);

  std::string_view Name() const override { return kName; }
  size_t MaxBatch() const override { return max_batch_; }
  // upsert, updateOnly and remove.
  bool Supports(mapping::Action action) const override;
  HttpRequest BuildRequest(const Batch& batch) const override;
  std::vector<Outcome> Classify(const Batch& batch, const HttpResponse& response) const override;

 private:
  // Outcome for every item of a request that failed as a whole.
  std::vector<Outcome> AllItems(const Batch& batch, Outcome outcome) const;
  std::vector<Outcome> ClassifyAccepted(const Batch& batch, const HttpResponse& response) const;
  Outcome ClassifyHttpError(const HttpResponse& response) const;
  // Masks the API key should a provider or transport message echo it.
  std::string Scrub(std::string text) const;

  std::string base_url_;
  // Follows a rotated key file; Get() on every request.
  std::shared_ptr<const mapping::SecretSource> api_key_;
  size_t max_batch_;
};

}  // namespace crmsync::providers::replify
