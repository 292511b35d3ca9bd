#include "worker/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace crmsync::worker {
namespace {

// Per-label-set cache in front of a Family. Family::Add is thread-safe but
// builds a std::map of labels and hashes it on every call; the worker calls
// these on every message, so remember the metric per joined label values.
template <typename T>
class CachedFamily {
 public:
  CachedFamily(prometheus::Family<T>& family, std::vector<std::string> label_names,
               prometheus::Histogram::BucketBoundaries buckets = {})
      : family_(family), label_names_(std::move(label_names)), buckets_(std::move(buckets)) {}

  // `values` are in the order of the label names given at construction.
  T& Get(std::initializer_list<std::string_view> values) {
    std::string key;
    for (std::string_view value : values) {
      key.append(value);
      key.push_back('\x1f');  // unit separator: never part of a sane label value
    }
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
    prometheus::Labels labels;
    size_t i = 0;
    for (std::string_view value : values) labels.emplace(label_names_.at(i++), std::string(value));
    T* metric = nullptr;
    if constexpr (std::is_same_v<T, prometheus::Histogram>) {
      metric = &family_.Add(labels, buckets_);
    } else {
      metric = &family_.Add(labels);
    }
    cache_.emplace(std::move(key), metric);
    return *metric;
  }

 private:
  prometheus::Family<T>& family_;
  const std::vector<std::string> label_names_;
  const prometheus::Histogram::BucketBoundaries buckets_;
  std::mutex mutex_;
  std::unordered_map<std::string, T*> cache_;  // guarded by mutex_
};

// Request latencies from a fast loopback simulator up to a provider's timeout.
const prometheus::Histogram::BucketBoundaries kDurationBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
// From the event's Kafka timestamp to the provider's acknowledgement: tens of
// milliseconds when keeping up, minutes for a lagging group.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600};
// Providers cap batches between tens and a thousand items.
const prometheus::Histogram::BucketBoundaries kBatchBuckets = {1,  2,   5,   10,  25,
                                                               50, 100, 250, 500, 1000};

}  // namespace

struct Metrics::Impl {
  Impl()
      : registry(std::make_shared<prometheus::Registry>()),
        events_consumed(prometheus::BuildCounter()
                            .Name("crmsync_events_consumed_total")
                            .Help("Kafka messages read, per topic.")
                            .Register(*registry),
                        {"topic"}),
        events_skipped(prometheus::BuildCounter()
                           .Name("crmsync_events_skipped_total")
                           .Help("Messages skipped: malformed, or matching no rule.")
                           .Register(*registry),
                       {"reason"}),
        operations(prometheus::BuildCounter()
                       .Name("crmsync_operations_total")
                       .Help("Provider operations by outcome: delivered, rejected, retried.")
                       .Register(*registry),
                   {"provider", "outcome"}),
        http_requests(prometheus::BuildCounter()
                          .Name("crmsync_http_requests_total")
                          .Help("HTTP exchanges per provider, by status or transport failure.")
                          .Register(*registry),
                      {"provider", "code"}),
        http_duration(prometheus::BuildHistogram()
                          .Name("crmsync_http_request_duration_seconds")
                          .Help("Time from sending a provider request to its completion.")
                          .Register(*registry),
                      {"provider"}, kDurationBuckets),
        delivery_latency(prometheus::BuildHistogram()
                             .Name("crmsync_delivery_latency_seconds")
                             .Help("From an event's Kafka timestamp to the provider's "
                                   "acknowledgement of its operation.")
                             .Register(*registry),
                         {"provider"}, kLatencyBuckets),
        batch_size(prometheus::BuildHistogram()
                       .Name("crmsync_batch_size")
                       .Help("Operations per provider request.")
                       .Register(*registry),
                   {"provider"}, kBatchBuckets),
        committed(prometheus::BuildGauge()
                      .Name("crmsync_committed_offset")
                      .Help("Last offset stored for commit, per partition.")
                      .Register(*registry),
                  {"topic", "partition"}),
        pending(prometheus::BuildGauge()
                    .Name("crmsync_operations_pending")
                    .Help("Provider operations queued or in flight.")
                    .Register(*registry)
                    .Add({})) {}

  std::shared_ptr<prometheus::Registry> registry;
  CachedFamily<prometheus::Counter> events_consumed;
  CachedFamily<prometheus::Counter> events_skipped;
  CachedFamily<prometheus::Counter> operations;
  CachedFamily<prometheus::Counter> http_requests;
  CachedFamily<prometheus::Histogram> http_duration;
  CachedFamily<prometheus::Histogram> delivery_latency;
  CachedFamily<prometheus::Histogram> batch_size;
  CachedFamily<prometheus::Gauge> committed;
  prometheus::Gauge& pending;

  // /healthz answers 200 with an empty body as long as the process serves
  // HTTP at all: an empty registry is the exposer's only way to add a path.
  std::shared_ptr<prometheus::Registry> health = std::make_shared<prometheus::Registry>();
  // Declared last so it stops serving before the registries go away.
  std::unique_ptr<prometheus::Exposer> exposer;
};

Metrics::Metrics(const std::string& listen) : impl_(std::make_unique<Impl>()) {
  if (listen.empty()) return;
  try {
    impl_->exposer = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    // civetweb reports a bind failure as an exception from the constructor.
    throw std::runtime_error("metrics listener: cannot listen on '" + listen + "': " + e.what());
  }
  impl_->exposer->RegisterCollectable(impl_->registry, "/metrics");
  impl_->exposer->RegisterCollectable(impl_->health, "/healthz");
}

Metrics::~Metrics() = default;

void Metrics::EventConsumed(std::string_view topic) {
  impl_->events_consumed.Get({topic}).Increment();
}

void Metrics::EventSkipped(std::string_view reason) {
  impl_->events_skipped.Get({reason}).Increment();
}

void Metrics::Operation(std::string_view provider, std::string_view outcome, uint64_t n) {
  impl_->operations.Get({provider, outcome}).Increment(static_cast<double>(n));
}

void Metrics::HttpRequest(std::string_view provider, std::string_view code, double seconds) {
  impl_->http_requests.Get({provider, code}).Increment();
  impl_->http_duration.Get({provider}).Observe(seconds);
}

void Metrics::DeliveryLatency(std::string_view provider, double seconds) {
  impl_->delivery_latency.Get({provider}).Observe(seconds);
}

void Metrics::SetPending(size_t n) { impl_->pending.Set(static_cast<double>(n)); }

void Metrics::SetCommitted(std::string_view topic, int32_t partition, int64_t offset) {
  impl_->committed.Get({topic, std::to_string(partition)}).Set(static_cast<double>(offset));
}

void Metrics::BatchSent(std::string_view provider, size_t size) {
  impl_->batch_size.Get({provider}).Observe(static_cast<double>(size));
}

int Metrics::Port() const {
  if (!impl_->exposer) return 0;
  const std::vector<int> ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::shared_ptr<prometheus::Registry> Metrics::Registry() const { return impl_->registry; }

}  // namespace crmsync::worker
