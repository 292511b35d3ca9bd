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
};

// Operations that travel together: same provider, target, routing and action.
struct Batch {
  std::string target;
  mapping::Action action = mapping::Action::kUpsert;
  std::optional<mapping::Routing> routing;
  std::vector<const mapping::Operation*> items;  // not owned; outlive the call
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual std::string_view Name() const = 0;
  // Largest number of items one request may carry.
  virtual size_t MaxBatch() const = 0;
  virtual HttpRequest BuildRequest(const Batch& batch) const = 0;
  // Exactly one Outcome per batch item, in item order.
  virtual std::vector<Outcome> Classify(const Batch& batch, const HttpResponse& response) const = 0;
};

}  // namespace crmsync::providers
