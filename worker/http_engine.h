// HttpEngine: asynchronous HTTP over one libcurl multi handle driven by one
// I/O thread, with keep-alive connection reuse.
//
// Submit() is thread-safe and never blocks on the network; the callback runs on
// the I/O thread exactly once per request (also when the engine shuts down:
// then with Transport::kBroken and "engine stopped"). The destructor stops the
// thread after failing outstanding requests that way.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "providers/provider.h"

namespace crmsync::worker {

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

  // Queues a request; `timeout` bounds the whole transfer.
  void Submit(providers::HttpRequest request, std::chrono::milliseconds timeout, Callback callback);

  // Requests submitted and not yet completed.
  size_t InFlight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crmsync::worker
