// CampaignLarkProvider: CampaignLark's documented contact upsert as a
// Provider. CampaignLark has no batch endpoint, so an exchange sends one
// POST {baseUrl}/contacts/upsert per item, all in one round (concurrently),
// with {"email_address", "fields": {merge_tag: value}, "tags": [id],
// "status", "partial_update"} and Authorization: Bearer <key>. There is no
// target resource: the workspace is the key's (the mapping's target is
// "contacts" and is not sent).
//
// Settings: CampaignLarkSettings (campaignlark_spec.h: the merge tags of the
// first and last name and the phone). Batch options: CampaignLarkOptions,
// parsed when the config was loaded.
//
// Immutable after construction; BuildRequest and Classify are pure and safe to
// call from any thread, an Exchange is driven by one thread. Holds the API key,
// which it only ever puts into the Authorization header: reasons never contain
// it. The constructor throws mapping::ConfigError for malformed settings;
// nothing else throws, every per-item problem is an Outcome.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mapping/config.h"
#include "providers/campaignlark/campaignlark_spec.h"
#include "providers/provider.h"

namespace crmsync::providers::campaignlark {

class CampaignLarkProvider final : public Provider {
 public:
  static constexpr std::string_view kName = "campaignlark";

  // Uses config.base_url (a trailing '/' is ignored), config.api_key,
  // config.max_batch and the settings above from config.settings_json.
  explicit CampaignLarkProvider(const mapping::ProviderConfig& config);

  std::string_view Name() const override { return kName; }
  size_t MaxBatch() const override { return max_batch_; }
  // One request per item, all in the first and only round. Items that cannot
  // be sent (unsupported action, no email) are rejected without a request.
  std::unique_ptr<Exchange> Start(const Batch& batch) override;

  // Only kUpsert: CampaignLark's upsert is the one write a sync needs.
  bool Supports(mapping::Action action) const;
  // The request for one contact, or the reject Outcome when it cannot be sent.
  std::variant<HttpRequest, Outcome> BuildRequest(const mapping::Contact& contact,
                                                  const CampaignLarkOptions& options) const;
  // The Outcome of one contact's request.
  Outcome Classify(const HttpResponse& response) const;

  const std::string& first_name_tag() const { return settings_.first_name_tag; }
  const std::string& last_name_tag() const { return settings_.last_name_tag; }
  const std::string& phone_tag() const { return settings_.phone_tag; }

 private:
  Outcome ClassifyHttpError(const HttpResponse& response) const;
  // Masks the API key should a provider or transport message echo it.
  std::string Scrub(std::string text) const;

  std::string base_url_;
  // Follows a rotated key file; Get() on every request.
  std::shared_ptr<const mapping::SecretSource> api_key_;
  size_t max_batch_;
  CampaignLarkSettings settings_;
};

}  // namespace crmsync::providers::campaignlark
