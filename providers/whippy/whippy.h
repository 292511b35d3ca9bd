// WhippyProvider: Whippy's "Update Contact List Contacts" API as a Provider
// (its API reference): {listMethod} {baseUrl}/contacts/lists/{id}/contacts with header
// X-WHIPPY-KEY and {"action": "add|remove|overwrite", "contacts": [...],
// "opt_in_to": [...], "opt_in_to_all_channels": bool}. The batch target is the
// contact list id.
//
// A request carries at most 4000 contacts, so a batch may take several
// sequential requests: an overwrite beyond 4000 contacts is sent as one
// "overwrite" of the first 4000 followed by "add"s of the rest (nothing more
// is sent if the overwrite fails); add and remove chunks are independent.
// Contacts Whippy would refuse for certain (no phone, an email or name over
// 255 characters, a malformed birth date) are rejected without a request, so
// one bad contact never sinks the whole request.
//
// Immutable after construction; Start() may be called from any thread, and
// each Exchange is driven by one thread at a time. Holds the API key, which it
// only ever puts into the X-WHIPPY-KEY header: reasons never contain it.
// Nothing throws after construction; every problem becomes an Outcome. The
// constructor throws mapping::ConfigError for an invalid listMethod.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "mapping/config.h"
#include "providers/provider.h"

namespace crmsync::providers::whippy {

class WhippyProvider final : public Provider {
 public:
  static constexpr std::string_view kName = "whippy";
  // Documented bounds of one request: contacts 1..4000, opt_in_to 1..1000,
  // email and name at most 255 characters.
  static constexpr size_t kMaxContactsPerRequest = 4000;
  static constexpr size_t kMaxOptInTo = 1000;
  static constexpr size_t kMaxTextLength = 255;

  // Uses config.base_url (a trailing '/' is ignored), config.api_key,
  // config.max_batch and, from config.settings_json, "listMethod": the HTTP
  // method of the list endpoint, which Whippy's reference page does not show
  // (inferred default "PUT"; "POST" or "PATCH" accepted, any case).
  explicit WhippyProvider(const mapping::ProviderConfig& config);

  std::string_view Name() const override { return kName; }
  // min(config.max_batch, 4000): one request's worth.
  size_t MaxBatch() const override { return max_batch_; }
  // config.max_batch: an overwrite must carry the list's whole membership, so
  // it may exceed one request and is split by the exchange.
  size_t MaxOverwriteBatch() const { return max_overwrite_batch_; }
  // "PUT", "POST" or "PATCH".
  const std::string& ListMethod() const { return list_method_; }
  // add, remove and overwrite; other actions are rejected without a request.
  bool Supports(mapping::Action action) const;

  // Request options are the batch's WhippyOptions (whippy_spec.h), parsed
  // when the config was loaded. Contact
  // fields: phone (required), email, metadata as "properties", and from
  // Contact::fields "name" (else first and last name), "external_id" (else
  // externalIdKey:externalIdValue), "language", "default_channel_id",
  // "address.<part>" and "birth_date.day|month|year".
  std::unique_ptr<Exchange> Start(const Batch& batch) override;

  // Implementation details shared with the exchange (whippy.cc).
  const std::string& BaseUrl() const { return base_url_; }
  std::string ApiKey() const { return api_key_->Get(); }
  // After a 401/403: a rotated key file is looked at before the next request.
  void InvalidateApiKey() const { api_key_->Invalidate(); }
  // Masks the API key should a provider or transport message echo it.
  std::string Scrub(std::string text) const;

 private:
  std::string base_url_;
  // Follows a rotated key file; Get() on every request.
  std::shared_ptr<const mapping::SecretSource> api_key_;
  std::string list_method_;
  size_t max_batch_;
  size_t max_overwrite_batch_;
};

}  // namespace crmsync::providers::whippy
