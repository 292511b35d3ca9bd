// ReplyIoProvider: Reply.io sequence enrollment (its V3 API reference) as
// a Provider. A batch targets one sequence (its integer id as
// text) with action enroll or unenroll; every other action is rejected
// without a request.
//
// Events carry emails, Reply.io wants its own contact ids, so an exchange has
// up to five rounds, each only as large as it must be:
//   1. POST /v3/contacts/filter, one request per email not in the id cache;
//   2. enroll only, when createMissingContacts: POST /v3/contacts/import (one
//      request) for the emails Reply.io does not know;
//   3. POST /v3/sequences/{id}/contact-links/bulk (enroll) or .../bulk-delete
//      (unenroll) with the resolved ids;
//   4./5. once per item, when the write answers contactNotFound (a stale cached
//      id): a fresh lookup of that email and a second write.
//
// Ownership and threads: the provider owns a bounded LRU cache email -> id,
// shared by its exchanges and guarded by a mutex. An Exchange refers to its
// provider and batch, both of which must outlive it; one thread drives it at
// a time. Errors: the constructor throws mapping::ConfigError for bad
// settings; nothing else throws for any batch or response. Every problem
// becomes an Outcome whose reason never contains the API key.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "mapping/config.h"
#include "providers/provider.h"
#include "providers/replyio/replyio_spec.h"

namespace crmsync::providers::replyio {

// A bounded, least-recently-used map of lower-cased email -> Reply contact id.
// Thread-safe.
class IdCache {
 public:
  explicit IdCache(size_t capacity) : capacity_(capacity) {}
  std::optional<int64_t> Get(const std::string& key);
  void Put(const std::string& key, int64_t id);
  // Forgets `key` only while it still maps to `id`: a newer resolution that
  // another exchange stored meanwhile is kept.
  void EraseIf(const std::string& key, int64_t id);
  size_t Size() const;

 private:
  using Entries = std::list<std::pair<std::string, int64_t>>;  // most recent first

  const size_t capacity_;
  mutable std::mutex mutex_;
  Entries entries_;
  std::unordered_map<std::string, Entries::iterator> index_;
};

class ReplyIoProvider final : public Provider {
 public:
  static constexpr std::string_view kName = "replyio";

  // Uses config.base_url (a trailing '/' is ignored; paths under /v3 are
  // appended), config.api_key, config.max_batch and config.settings_json.
  explicit ReplyIoProvider(const mapping::ProviderConfig& config);

  std::string_view Name() const override { return kName; }
  size_t MaxBatch() const override { return max_batch_; }
  std::unique_ptr<Exchange> Start(const Batch& batch) override;

  const ReplyIoSettings& Settings() const { return settings_; }
  // The cached contact id of an email (case-insensitive), for diagnostics and
  // tests; touches the LRU order.
  std::optional<int64_t> CachedId(std::string_view email);
  size_t CachedIds() const { return cache_.Size(); }

 private:
  friend class ReplyIoExchange;

  // Masks the API key should a provider or transport message echo it.
  std::string Scrub(std::string text) const;

  std::string base_url_;
  // Follows a rotated key file; Get() on every request.
  std::shared_ptr<const mapping::SecretSource> api_key_;
  size_t max_batch_;
  ReplyIoSettings settings_;
  IdCache cache_;
};

}  // namespace crmsync::providers::replyio
