// Provider: the HTTP contract of one outreach provider, as pure functions.
//
// A Provider turns a batch of Operations into one HTTP request and classifies
// the response into one Outcome per item. It owns no sockets, threads or
// clocks (worker/ does the I/O); implementations are immutable after
// construction and safe to call from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mapping/operation.h"
#include "mapping/provider_options.h"

namespace crmsync::providers {

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// How the exchange ended below HTTP. The HTTP engine maps every libcurl code
// onto one of these.
enum class Transport {
  kOk,             // a complete HTTP response was received
  kTimeout,        // connect or transfer timed out
  kConnectFailed,  // refused, unreachable, DNS failure
  kBroken,         // reset, partial response, protocol or TLS error mid-transfer
  kConfigError,    // malformed URL, unsupported protocol, TLS verification failure
};

struct HttpResponse {
  Transport transport = Transport::kOk;
  std::string transport_error;  // libcurl's message when transport != kOk
  long status = 0;              // HTTP status when transport == kOk
  std::string body;
  std::string content_type;
  // Parsed Retry-After (delta-seconds or HTTP date), if the response had one.
  std::optional<std::chrono::seconds> retry_after;
};

enum class OutcomeKind {
  kDone,    // the provider holds the desired state
  kRetry,   // transient: send again later (after retry_after if set)
  kReject,  // permanent: will never succeed as sent (reason says why)
};

struct Outcome {
  OutcomeKind kind = OutcomeKind::kDone;
  std::string reason;  // human-readable; never contains secrets
  int http_status = 0;
  std::optional<std::chrono::milliseconds> retry_after;
  // kRetry only: the worker withdrew the request before the provider could
  // answer (its partition was revoked, or the worker is stopping). Not an
  // attempt of the operation, and sent again at once by its new batch.
  bool withdrawn = false;
};

// Operations that travel together: same provider, target, routing, options
// and action.
struct Batch {
  std::string target;
  mapping::Action action = mapping::Action::kUpsert;
  std::optional<mapping::Routing> routing;
  // The request options, parsed when the config was loaded (see
  // mapping::Operation); null: the provider's defaults.
  std::shared_ptr<const mapping::ProviderOptions> options;
  std::vector<const mapping::Operation*> items;  // not owned; outlive the call
};

// One batch's conversation with a provider: one or more rounds of HTTP
// requests (the requests of a round may be sent concurrently), then one
// Outcome per item. Multi-round exchanges serve look-ups before a write
// (Reply.io ids by email) and writes split over several requests (a Whippy
// overwrite beyond 4000 contacts, CampaignLark's one contact per request).
//
// Driven by one thread at a time; the Batch outlives the Exchange.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // The requests of the next round; empty when the exchange is over.
  virtual std::vector<HttpRequest> NextRound() = 0;
  // The response to request `index` of the current round. Called exactly
  // once per request of the round, in any order, before the next NextRound().
  virtual void OnResponse(size_t index, const HttpResponse& response) = 0;
  // Once NextRound() came back empty: one Outcome per batch item, in order.
  virtual std::vector<Outcome> Outcomes() = 0;
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual std::string_view Name() const = 0;
  // Largest number of items one batch may carry.
  virtual size_t MaxBatch() const = 0;
  // Starts the exchange for a batch. Providers may keep caches (e.g. id
  // look-ups) across exchanges, so Start() is called from one thread only.
  virtual std::unique_ptr<Exchange> Start(const Batch& batch) = 0;
};

// A provider whose every batch is exactly one request, described by two pure
// functions.
class SingleRequestProvider : public Provider {
 public:
  virtual bool Supports(mapping::Action action) const = 0;
  virtual HttpRequest BuildRequest(const Batch& batch) const = 0;
  // Exactly one Outcome per batch item, in item order.
  virtual std::vector<Outcome> Classify(const Batch& batch, const HttpResponse& response) const = 0;

  // One round of one request; a batch whose action the provider does not
  // support is rejected without a request.
  std::unique_ptr<Exchange> Start(const Batch& batch) override;
};

}  // namespace crmsync::providers
