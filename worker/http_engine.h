// HttpEngine: asynchronous HTTP over one libcurl multi handle driven by one
// I/O thread, with keep-alive connection reuse.
//
// Submit() is thread-safe and never blocks on the network; the callback runs on
// the I/O thread exactly once per request (also when the engine shuts down:
// then with Transport::kBroken and "engine stopped", and when a request is
// cancelled: then with Transport::kBroken and "cancelled"). Stop() and the
// destructor stop the thread after failing outstanding requests that way.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/provider.h"

namespace crmsync::worker {

// Largest Retry-After the parser reports; longer ones saturate here. Callers
// cap it further with the provider's retry.maxRetryAfterMs.
inline constexpr std::chrono::seconds kMaxRetryAfter = std::chrono::hours(24);

// A Retry-After header value (RFC 9110 §10.2.3: delta-seconds or an
// HTTP-date), as a wait from `now`: negative numbers and dates in the past
// mean 0, values beyond kMaxRetryAfter saturate there, and anything else
// (empty, "5.5", "+3", "soon") is nullopt, as if the header were absent.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::time_t now = std::time(nullptr));

class HttpEngine {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{5000};
    // Cap on connections kept open per host (CURLMOPT_MAX_HOST_CONNECTIONS);
    // requests beyond it queue inside libcurl.
    long max_host_connections = 16;
    // CA bundle for https; empty uses the system default. Verification is
    // always on.
    std::string ca_bundle;
    // Largest response body kept in memory. A bigger answer (announced by
    // Content-Length or seen while reading) ends the request as a transport
    // failure (Transport::kBroken, "response body exceeds ... bytes").
    size_t max_response_bytes = size_t{4} << 20;
  };
  using Callback = std::function<void(providers::HttpResponse)>;

  explicit HttpEngine(Options options);
  ~HttpEngine();
  HttpEngine(const HttpEngine&) = delete;
  HttpEngine& operator=(const HttpEngine&) = delete;

  // Queues a request; `timeout` bounds the whole transfer, from this call on
  // (time spent waiting for a connection included). Returns the request's id.
  uint64_t Submit(providers::HttpRequest request, std::chrono::milliseconds timeout,
                  Callback callback);

  // Aborts requests that have not completed yet: a queued one is never sent,
  // a running one is torn down mid-transfer (the provider may or may not have
  // acted on what it already received). Unknown or finished ids are ignored.
  void Cancel(const std::vector<uint64_t>& ids);

  // Fails every outstanding request and stops the I/O thread; later Submit()
  // calls fail at once. Idempotent.
  void Stop();

  // Requests submitted and not yet completed.
  size_t InFlight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crmsync::worker
