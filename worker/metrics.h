// Metrics: the worker's Prometheus metrics, its health state and, optionally,
// the HTTP listener that serves them:
//
//   GET /metrics  the registry in the Prometheus text format (0.0.4)
//   GET /healthz  200 while the worker loop makes progress (Progress() within
//                 the liveness timeout, 30 s by default), else 503
//   GET /readyz   200 once the config is loaded, the consumer group is joined
//                 and a broker is reachable, else 503
//
// The health answers carry a small JSON body saying which condition holds.
// The listener is cpp-httplib's server with two threads: prometheus-cpp's
// Exposer answers every registered path with 200 and offers no handler of
// our own, so it cannot express a failing probe.
//
// Owns a prometheus::Registry and, when `listen` is non-empty, the listener;
// both live as long as the Metrics object. Every method is thread-safe and
// cheap on the hot path: the metric of each label set is looked up once and
// cached. Label values come from the configuration and from fixed
// vocabularies (topic, provider, action, outcome, reason, HTTP code); never
// pass secrets or contact data. The constructor throws std::runtime_error
// when the listener cannot bind; the other methods do not throw.
//
// Families (all prefixed crmsync_):
//   events_consumed_total{topic}            events_decoded_total{format}
//   events_skipped_total{reason}            events_dead_lettered_total{reason}
//   operations_total{provider,action,outcome}
//   http_requests_total{provider,code}      http_request_duration_seconds{provider}
//   http_requests_in_flight{provider}       http_throttled_total{provider}
//   retries_total{provider}                 batch_size{provider}
//   delivery_latency_seconds{provider}      operations_pending
//   circuit_state{provider}                 rate_limit_tokens{provider}
//   rebalances_total{kind}                  committed_offset{topic,partition}
//   consumer_lag{topic,partition}       build_info{version,librdkafka} (1)
//   provider_auth_failures_total{provider}  offset_resets_total{topic}
//   partition_takeovers_total{handover}
// and, read from /proc/self at each scrape, process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds.
//
// Initialize(config) creates the series of every label set the config
// implies at zero (see there), so that a fresh or idle worker's first scrape
// already has them: rate() and the dashboard's variables need a series to
// exist before its first increment.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace crmsync::mapping {
struct Config;
}  // namespace crmsync::mapping

namespace crmsync::worker {

class Metrics {
 public:
  // `listen` is "host:port" (port 0 picks a free one); empty serves nothing.
  explicit Metrics(const std::string& listen = "");
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Creates, at zero, the series of the label sets `config` implies:
  //   events_consumed_total{topic}        per configured topic
  //   events_decoded_total{format}        the topics' fixed formats (all four
  //                                       when a topic is detected per message)
  //   events_skipped_total{reason}        malformed, unmatched, oversized
  //   events_dead_lettered_total{reason}  malformed, rejected, exhausted
  //   rebalances_total{kind}              assigned, revoked, lost
  //   operations_total{provider,action,outcome}  per action the rules send to
  //                                       a provider x the four outcomes
  //   retries_total, http_throttled_total, http_requests_in_flight,
  //   circuit_state (0), http_request_duration_seconds, batch_size and
  //   delivery_latency_seconds            per configured provider
  // Existing series keep their values; calling it again is harmless.
  void Initialize(const mapping::Config& config);

  // --- Kafka side ---
  // `n` messages were read from `topic`.
  void EventConsumed(std::string_view topic, uint64_t n = 1);
  // `n` messages were decoded into events of `format` ("canonical",
  // "hubspot", "salesforce", "debezium").
  void EventDecoded(std::string_view format, uint64_t n = 1);
  // A message produced no operation; `reason` is "malformed", "unmatched",
  // "oversized", or with contact state "unknown_contact" (a deletion or
  // status change of a contact never seen) and "incomplete" (a contact
  // without its identity yet).
  void EventSkipped(std::string_view reason);
  // A record was written to the dead-letter topic; `reason` is "malformed"
  // (the message itself), "rejected" (an operation the provider refused) or
  // "exhausted" (an operation whose retries ran out).
  void EventDeadLettered(std::string_view reason);
  // Contact state: a provider operation not sent because the provider last
  // confirmed exactly it for the contact.
  void OperationSuppressed(std::string_view provider);
  // Contact state: a partition's state was restored from its changelog.
  void StateRestored(uint64_t records, uint64_t bytes, double seconds);
  // A rebalance callback; `kind` is "assigned", "revoked" or "lost".
  void Rebalance(std::string_view kind);
  // The consumer reset a partition's position of `topic` because the offset
  // to fetch from was gone (e.g. deleted by retention while the group lagged).
  void OffsetReset(std::string_view topic);
  // A partition was assigned; `handover` is "drained" (its previous owner
  // finished its work and said so), "fenced" (it may not have: the
  // partition's work waits out the previous owner's requests) or
  // "uncommitted" (the group has no offset for it yet).
  void PartitionTakenOver(std::string_view handover, uint64_t partitions);
  // The offset last stored for commit for a partition.
  void SetCommitted(std::string_view topic, int32_t partition, int64_t offset);
  // High watermark minus the committed position of a partition.
  void SetConsumerLag(std::string_view topic, int32_t partition, int64_t lag);
  // The partition is no longer owned: its committed-offset and lag series go.
  void RemovePartition(std::string_view topic, int32_t partition);

  // --- Provider side ---
  // `n` operations of `provider` with `action` ("upsert", ...) ended as
  // `outcome`: "delivered", "rejected", "exhausted" or "retried".
  void Operation(std::string_view provider, std::string_view action, std::string_view outcome,
                 uint64_t n);
  // `n` operations of `provider` will be sent again.
  void Retried(std::string_view provider, uint64_t n);
  // `provider` refused the credentials of one request (HTTP 401/403).
  void ProviderAuthFailure(std::string_view provider);
  // One HTTP exchange with `provider` completed; `code` is the HTTP status
  // ("200") or how the transport failed ("timeout", ...). A "429" also counts
  // in http_throttled_total.
  void HttpRequest(std::string_view provider, std::string_view code, double seconds);
  // A request to `provider` went on the wire (+1) or finished (-1).
  void HttpInFlight(std::string_view provider, int delta);
  // Operations were acknowledged these many seconds after their events'
  // Kafka timestamps (one label look-up for all of them).
  void DeliveryLatency(std::string_view provider, const std::vector<double>& seconds);
  // A batch of `size` operations was sent to `provider`.
  void BatchSent(std::string_view provider, size_t size);
  // Operations queued or in flight.
  void SetPending(size_t n);
  // 0 closed, 1 half-open, 2 open.
  void SetCircuitState(std::string_view provider, int state);
  // Requests the provider's budget allows now (+Inf when unlimited).
  void SetRateLimitTokens(std::string_view provider, double tokens);

  // --- Health ---
  // The worker loop went round once (liveness).
  void Progress();
  // Readiness conditions.
  void SetConfigLoaded(bool loaded);
  void SetGroupJoined(bool joined);
  void SetBrokerReachable(bool reachable);
  // /healthz fails when Progress() was last called longer ago than this
  // (counted from construction before the first call).
  void SetLivenessTimeout(std::chrono::milliseconds timeout);
  bool Live() const;
  bool Ready() const;

  // The port the listener is bound to, or 0 when not listening.
  int Port() const;
  std::shared_ptr<prometheus::Registry> Registry() const;
  // The registry in the Prometheus text format, as /metrics serves it.
  std::string Text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crmsync::worker
