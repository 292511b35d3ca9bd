// Metrics: the worker's Prometheus metrics and, optionally, the HTTP listener
// that serves them at /metrics (and an always-200 /healthz for liveness
// probes).
//
// Owns a prometheus::Registry and, when `listen` is non-empty, a
// prometheus::Exposer bound to it; both live as long as the Metrics object.
// Every method is thread-safe and cheap on the hot path: the metric of each
// label set is looked up once and cached. Label values come from the
// configuration and from fixed vocabularies (topic, provider, outcome, HTTP
// code); never pass secrets or contact data. The constructor throws
// std::runtime_error when the listener cannot bind; the other methods do not
// throw.
//
// Families (all prefixed crmsync_): events_consumed_total{topic},
// events_skipped_total{reason}, operations_total{provider,outcome},
// http_requests_total{provider,code}, http_request_duration_seconds{provider},
// delivery_latency_seconds{provider},
// operations_pending, committed_offset{topic,partition}, batch_size{provider}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace crmsync::worker {

class Metrics {
 public:
  // `listen` is "host:port" (port 0 picks a free one); empty serves nothing.
  explicit Metrics(const std::string& listen = "");
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // A message was read from `topic`.
  void EventConsumed(std::string_view topic);
  // A message was skipped; `reason` is "malformed" or "unmatched".
  void EventSkipped(std::string_view reason);
  // `n` operations of `provider` ended as `outcome`: "delivered", "rejected"
  // or "retried".
  void Operation(std::string_view provider, std::string_view outcome, uint64_t n);
  // One HTTP exchange with `provider`; `code` is the HTTP status ("200") or
  // how the transport failed ("timeout", ...).
  void HttpRequest(std::string_view provider, std::string_view code, double seconds);
  // An operation was acknowledged `seconds` after its event's Kafka timestamp.
  void DeliveryLatency(std::string_view provider, double seconds);
  // Operations queued or in flight.
  void SetPending(size_t n);
  // The offset last committed (stored) for a partition.
  void SetCommitted(std::string_view topic, int32_t partition, int64_t offset);
  // A batch of `size` operations was sent to `provider`.
  void BatchSent(std::string_view provider, size_t size);

  // The port the listener is bound to, or 0 when not listening.
  int Port() const;
  std::shared_ptr<prometheus::Registry> Registry() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crmsync::worker
