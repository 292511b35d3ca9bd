#include "worker/metrics.h"

#include <dirent.h>
#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mapping/config.h"
#include "mapping/event.h"
#include "mapping/operation.h"
#include "worker/version.h"

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
    std::string key = Key(values);
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

  // Drops the series of these label values, if it exists.
  void Remove(std::initializer_list<std::string_view> values) {
    const std::string key = Key(values);
    std::lock_guard lock(mutex_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return;
    family_.Remove(it->second);
    cache_.erase(it);
  }

 private:
  static std::string Key(std::initializer_list<std::string_view> values) {
    std::string key;
    for (std::string_view value : values) {
      key.append(value);
      key.push_back('\x1f');  // unit separator: never part of a sane label value
    }
    return key;
  }

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
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5,
    0.75,  1,     2,     5,    10,   20,   30,  60,    120,  300, 600};
// Providers cap batches between tens and a thousand items.
const prometheus::Histogram::BucketBoundaries kBatchBuckets = {1,  2,   5,   10,  25,
                                                               50, 100, 250, 500, 1000};

constexpr std::chrono::milliseconds kDefaultLivenessTimeout{30000};

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

prometheus::Family<prometheus::Counter>& Counter(prometheus::Registry& registry,
                                                 const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& Gauge(prometheus::Registry& registry,
                                             const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Histogram>& Histogram(prometheus::Registry& registry,
                                                     const std::string& name,
                                                     const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
}

// Only SO_REUSEADDR: httplib's default also sets SO_REUSEPORT, which would
// let a second process bind the same port and take half the scrapes.
void ListenerSocketOptions(int sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

prometheus::MetricFamily ProcessFamily(std::string name, std::string help,
                                       prometheus::MetricType type, double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {metric}};
}

// Seconds since the epoch at which the system booted (btime of /proc/stat).
double BootTimeSeconds() {
  std::ifstream stat("/proc/stat");
  std::string line;
  while (std::getline(stat, line)) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

// The process collector of the Prometheus client libraries (the standard
// process_* names), read from /proc/self; empty where /proc is missing.
std::vector<prometheus::MetricFamily> ProcessFamilies() {
  std::vector<prometheus::MetricFamily> families;
  std::ifstream stat_file("/proc/self/stat");
  const std::string stat((std::istreambuf_iterator<char>(stat_file)),
                         std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: the
  // fields are counted from after its closing parenthesis.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return families;
  std::istringstream fields(stat.substr(paren + 1));
  std::vector<std::string> after;  // after[0] is field 3 (state)
  for (std::string field; fields >> field;) after.push_back(field);
  if (after.size() < 20) return families;
  const auto field = [&after](size_t number) { return std::stod(after.at(number - 3)); };
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  families.push_back(
      ProcessFamily("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                    prometheus::MetricType::Counter, (field(14) + field(15)) / ticks));
  families.push_back(ProcessFamily(
      "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
      prometheus::MetricType::Gauge, BootTimeSeconds() + field(22) / ticks));

  std::ifstream statm("/proc/self/statm");
  double size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    families.push_back(ProcessFamily("process_virtual_memory_bytes",
                                     "Virtual memory size in bytes.", prometheus::MetricType::Gauge,
                                     size_pages * page));
    families.push_back(ProcessFamily("process_resident_memory_bytes",
                                     "Resident memory size in bytes.",
                                     prometheus::MetricType::Gauge, resident_pages * page));
  }

  if (DIR* dir = opendir("/proc/self/fd")) {
    double fds = 0;
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++fds;
    }
    closedir(dir);
    fds -= 1;  // the descriptor opendir itself holds
    families.push_back(ProcessFamily("process_open_fds", "Number of open file descriptors.",
                                     prometheus::MetricType::Gauge, fds));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    families.push_back(ProcessFamily("process_max_fds", "Maximum number of open file descriptors.",
                                     prometheus::MetricType::Gauge,
                                     static_cast<double>(limit.rlim_cur)));
  }
  return families;
}

}  // namespace

struct Metrics::Impl {
  Impl()
      : registry(std::make_shared<prometheus::Registry>()),
        events_consumed(
            Counter(*registry, "crmsync_events_consumed_total", "Kafka messages read, per topic."),
            {"topic"}),
        events_decoded(Counter(*registry, "crmsync_events_decoded_total",
                               "Messages decoded into CRM events, per input format."),
                       {"format"}),
        events_skipped(Counter(*registry, "crmsync_events_skipped_total",
                               "Messages that produced no operation: malformed, unmatched "
                               "(no rule applies), oversized, unknown_contact or incomplete."),
                       {"reason"}),
        operations_suppressed(Counter(*registry, "crmsync_operations_suppressed_total",
                                      "Operations not sent because the provider last confirmed "
                                      "exactly them for the contact."),
                              {"provider"}),
        state_restored_records(Counter(*registry, "crmsync_state_restored_records_total",
                                       "Changelog records read while restoring contact state.")
                                   .Add({})),
        state_restored_bytes(Counter(*registry, "crmsync_state_restored_bytes_total",
                                     "Changelog bytes read while restoring contact state.")
                                 .Add({})),
        state_restore_seconds(Counter(*registry, "crmsync_state_restore_seconds_total",
                                      "Time spent restoring contact state on assignment.")
                                  .Add({})),
        events_dead_lettered(Counter(*registry, "crmsync_events_dead_lettered_total",
                                     "Records written to the dead-letter topic: malformed "
                                     "messages, rejected and exhausted operations."),
                             {"reason"}),
        operations(Counter(*registry, "crmsync_operations_total",
                           "Provider operations by action and outcome: delivered, rejected, "
                           "exhausted, retried."),
                   {"provider", "action", "outcome"}),
        retries(Counter(*registry, "crmsync_retries_total",
                        "Operations a provider asked to send again."),
                {"provider"}),
        auth_failures(Counter(*registry, "crmsync_provider_auth_failures_total",
                              "Requests whose credentials the provider refused (HTTP 401/403)."),
                      {"provider"}),
        http_requests(Counter(*registry, "crmsync_http_requests_total",
                              "HTTP exchanges per provider, by status or transport failure."),
                      {"provider", "code"}),
        http_throttled(Counter(*registry, "crmsync_http_throttled_total",
                               "Provider answers 429 Too Many Requests."),
                       {"provider"}),
        http_in_flight(Gauge(*registry, "crmsync_http_requests_in_flight",
                             "Provider requests sent and not yet answered."),
                       {"provider"}),
        http_duration(Histogram(*registry, "crmsync_http_request_duration_seconds",
                                "Time from sending a provider request to its completion."),
                      {"provider"}, kDurationBuckets),
        delivery_latency(Histogram(*registry, "crmsync_delivery_latency_seconds",
                                   "From an event's Kafka timestamp to the provider's "
                                   "acknowledgement of its operation."),
                         {"provider"}, kLatencyBuckets),
        batch_size(Histogram(*registry, "crmsync_batch_size", "Operations per provider request."),
                   {"provider"}, kBatchBuckets),
        circuit_state(Gauge(*registry, "crmsync_circuit_state",
                            "Provider circuit breaker: 0 closed, 1 half-open, 2 open."),
                      {"provider"}),
        rate_limit_tokens(Gauge(*registry, "crmsync_rate_limit_tokens",
                                "Requests the provider's rate-limit budget allows now "
                                "(+Inf without limits)."),
                          {"provider"}),
        rebalances(Counter(*registry, "crmsync_rebalances_total",
                           "Consumer group rebalance callbacks: assigned, revoked, lost."),
                   {"kind"}),
        offset_resets(Counter(*registry, "crmsync_offset_resets_total",
                              "Positions reset because the offset to fetch from was no longer "
                              "on the broker (retention overtook the group): events skipped."),
                      {"topic"}),
        takeovers(Counter(*registry, "crmsync_partition_takeovers_total",
                          "Partitions assigned, by how their previous owner handed them over: "
                          "drained, fenced (its work waits out the previous owner's requests), "
                          "uncommitted."),
                  {"handover"}),
        committed(Gauge(*registry, "crmsync_committed_offset",
                        "Last offset stored for commit, per partition."),
                  {"topic", "partition"}),
        lag(Gauge(*registry, "crmsync_consumer_lag",
                  "High watermark minus the committed position, per owned partition."),
            {"topic", "partition"}),
        pending(Gauge(*registry, "crmsync_operations_pending",
                      "Provider operations queued or in flight.")
                    .Add({})) {
    Gauge(*registry, "crmsync_build_info",
          "Always 1; the labels name the crmsync and librdkafka versions.")
        .Add({{"version", CrmsyncVersion()}, {"librdkafka", LibrdkafkaVersion()}})
        .Set(1);
  }

  std::shared_ptr<prometheus::Registry> registry;
  CachedFamily<prometheus::Counter> events_consumed;
  CachedFamily<prometheus::Counter> events_decoded;
  CachedFamily<prometheus::Counter> events_skipped;
  CachedFamily<prometheus::Counter> operations_suppressed;
  prometheus::Counter& state_restored_records;
  prometheus::Counter& state_restored_bytes;
  prometheus::Counter& state_restore_seconds;
  CachedFamily<prometheus::Counter> events_dead_lettered;
  CachedFamily<prometheus::Counter> operations;
  CachedFamily<prometheus::Counter> retries;
  CachedFamily<prometheus::Counter> auth_failures;
  CachedFamily<prometheus::Counter> http_requests;
  CachedFamily<prometheus::Counter> http_throttled;
  CachedFamily<prometheus::Gauge> http_in_flight;
  CachedFamily<prometheus::Histogram> http_duration;
  CachedFamily<prometheus::Histogram> delivery_latency;
  CachedFamily<prometheus::Histogram> batch_size;
  CachedFamily<prometheus::Gauge> circuit_state;
  CachedFamily<prometheus::Gauge> rate_limit_tokens;
  CachedFamily<prometheus::Counter> rebalances;
  CachedFamily<prometheus::Counter> offset_resets;
  CachedFamily<prometheus::Counter> takeovers;
  CachedFamily<prometheus::Gauge> committed;
  CachedFamily<prometheus::Gauge> lag;
  prometheus::Gauge& pending;

  // Health.
  std::atomic<int64_t> last_progress_ns{SteadyNanos()};
  std::atomic<int64_t> liveness_timeout_ns{
      std::chrono::duration_cast<std::chrono::nanoseconds>(kDefaultLivenessTimeout).count()};
  std::atomic<bool> config_loaded{false};
  std::atomic<bool> group_joined{false};
  std::atomic<bool> broker_reachable{false};

  // The listener; `thread` runs its accept loop.
  httplib::Server server;
  std::thread thread;
  int port = 0;
};

Metrics::Metrics(const std::string& listen) : impl_(std::make_unique<Impl>()) {
  if (listen.empty()) return;
  const size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? std::string() : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:9464
  }
  int port = -1;
  try {
    if (colon != std::string::npos) port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    port = -1;
  }
  if (host.empty() || port < 0 || port > 65535) {
    throw std::runtime_error("metrics listener: '" + listen + "' is not host:port");
  }

  Impl& impl = *impl_;
  impl.server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  impl.server.set_socket_options(&ListenerSocketOptions);
  impl.server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(Text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl.server.Get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
    const bool live = Live();
    const double idle = static_cast<double>(SteadyNanos() - impl_->last_progress_ns.load()) / 1e9;
    response.status = live ? 200 : 503;
    response.set_content(std::string(R"({"live":)") + (live ? "true" : "false") +
                             R"(,"secondsSinceProgress":)" + std::to_string(idle) + "}\n",
                         "application/json");
  });
  impl.server.Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    auto flag = [](const std::atomic<bool>& value) { return value.load() ? "true" : "false"; };
    const bool ready = Ready();
    response.status = ready ? 200 : 503;
    response.set_content(std::string(R"({"ready":)") + (ready ? "true" : "false") +
                             R"(,"configLoaded":)" + flag(impl_->config_loaded) +
                             R"(,"groupJoined":)" + flag(impl_->group_joined) +
                             R"(,"brokerReachable":)" + flag(impl_->broker_reachable) + "}\n",
                         "application/json");
  });

  impl.port = port == 0 ? impl.server.bind_to_any_port(host)
                        : (impl.server.bind_to_port(host, port) ? port : -1);
  if (impl.port <= 0) {
    throw std::runtime_error("metrics listener: cannot listen on '" + listen + "'");
  }
  impl.thread = std::thread([&impl] { impl.server.listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs: wait for it, so
  // that the destructor can always stop it. The socket queues connections
  // meanwhile.
  while (!impl.server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

Metrics::~Metrics() {
  if (impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

void Metrics::Initialize(const mapping::Config& config) {
  Impl& impl = *impl_;
  for (const std::string& topic : config.kafka.topics) {
    impl.events_consumed.Get({topic});
    impl.offset_resets.Get({topic});
  }

  std::set<std::string> formats;
  for (const std::string& topic : config.kafka.topics) {
    const mapping::InputFormat format = config.rules.input.FormatOf(topic);
    if (format == mapping::InputFormat::kAuto) {
      for (mapping::InputFormat each :
           {mapping::InputFormat::kCanonical, mapping::InputFormat::kHubSpot,
            mapping::InputFormat::kSalesforce, mapping::InputFormat::kDebezium}) {
        formats.emplace(mapping::InputFormatName(each));
      }
    } else {
      formats.emplace(mapping::InputFormatName(format));
    }
  }
  for (const std::string& format : formats) impl.events_decoded.Get({format});

  for (std::string_view reason : {"malformed", "unmatched", "oversized"}) {
    impl.events_skipped.Get({reason});
  }
  if (config.state.enabled) {
    for (std::string_view reason : {"unknown_contact", "incomplete"}) {
      impl.events_skipped.Get({reason});
    }
    for (const auto& [name, provider] : config.providers) impl.operations_suppressed.Get({name});
  }
  for (std::string_view reason : {"malformed", "rejected", "exhausted"}) {
    impl.events_dead_lettered.Get({reason});
  }
  for (std::string_view kind : {"assigned", "revoked", "lost"}) impl.rebalances.Get({kind});
  for (std::string_view handover : {"drained", "fenced", "uncommitted"}) {
    impl.takeovers.Get({handover});
  }

  for (const auto& [name, provider] : config.providers) {
    impl.retries.Get({name});
    impl.http_throttled.Get({name});
    impl.http_in_flight.Get({name});
    impl.circuit_state.Get({name});
    impl.http_duration.Get({name});
    impl.delivery_latency.Get({name});
    impl.batch_size.Get({name});
    impl.auth_failures.Get({name});
  }
  for (const mapping::Rule& rule : config.rules.rules) {
    for (const mapping::RuleAction& action : rule.actions) {
      for (std::string_view outcome : {"delivered", "rejected", "exhausted", "retried"}) {
        impl.operations.Get({action.provider, mapping::ActionName(action.action), outcome});
      }
    }
  }
}

void Metrics::EventConsumed(std::string_view topic, uint64_t n) {
  impl_->events_consumed.Get({topic}).Increment(static_cast<double>(n));
}

void Metrics::EventDecoded(std::string_view format, uint64_t n) {
  impl_->events_decoded.Get({format}).Increment(static_cast<double>(n));
}

void Metrics::EventSkipped(std::string_view reason) {
  impl_->events_skipped.Get({reason}).Increment();
}

void Metrics::OperationSuppressed(std::string_view provider) {
  impl_->operations_suppressed.Get({provider}).Increment();
}

void Metrics::StateRestored(uint64_t records, uint64_t bytes, double seconds) {
  impl_->state_restored_records.Increment(static_cast<double>(records));
  impl_->state_restored_bytes.Increment(static_cast<double>(bytes));
  impl_->state_restore_seconds.Increment(seconds);
}

void Metrics::EventDeadLettered(std::string_view reason) {
  impl_->events_dead_lettered.Get({reason}).Increment();
}

void Metrics::Rebalance(std::string_view kind) { impl_->rebalances.Get({kind}).Increment(); }

void Metrics::OffsetReset(std::string_view topic) { impl_->offset_resets.Get({topic}).Increment(); }

void Metrics::PartitionTakenOver(std::string_view handover, uint64_t partitions) {
  if (partitions > 0) impl_->takeovers.Get({handover}).Increment(static_cast<double>(partitions));
}

void Metrics::SetCommitted(std::string_view topic, int32_t partition, int64_t offset) {
  impl_->committed.Get({topic, std::to_string(partition)}).Set(static_cast<double>(offset));
}

void Metrics::SetConsumerLag(std::string_view topic, int32_t partition, int64_t lag) {
  impl_->lag.Get({topic, std::to_string(partition)}).Set(static_cast<double>(lag));
}

void Metrics::RemovePartition(std::string_view topic, int32_t partition) {
  const std::string number = std::to_string(partition);
  impl_->committed.Remove({topic, number});
  impl_->lag.Remove({topic, number});
}

void Metrics::Operation(std::string_view provider, std::string_view action,
                        std::string_view outcome, uint64_t n) {
  impl_->operations.Get({provider, action, outcome}).Increment(static_cast<double>(n));
}

void Metrics::Retried(std::string_view provider, uint64_t n) {
  impl_->retries.Get({provider}).Increment(static_cast<double>(n));
}

void Metrics::ProviderAuthFailure(std::string_view provider) {
  impl_->auth_failures.Get({provider}).Increment();
}

void Metrics::HttpRequest(std::string_view provider, std::string_view code, double seconds) {
  impl_->http_requests.Get({provider, code}).Increment();
  impl_->http_duration.Get({provider}).Observe(seconds);
  if (code == "429") impl_->http_throttled.Get({provider}).Increment();
}

void Metrics::HttpInFlight(std::string_view provider, int delta) {
  impl_->http_in_flight.Get({provider}).Increment(static_cast<double>(delta));
}

void Metrics::DeliveryLatency(std::string_view provider, const std::vector<double>& seconds) {
  if (seconds.empty()) return;
  prometheus::Histogram& histogram = impl_->delivery_latency.Get({provider});
  for (double value : seconds) histogram.Observe(value);
}

void Metrics::BatchSent(std::string_view provider, size_t size) {
  impl_->batch_size.Get({provider}).Observe(static_cast<double>(size));
}

void Metrics::SetPending(size_t n) { impl_->pending.Set(static_cast<double>(n)); }

void Metrics::SetCircuitState(std::string_view provider, int state) {
  impl_->circuit_state.Get({provider}).Set(state);
}

void Metrics::SetRateLimitTokens(std::string_view provider, double tokens) {
  impl_->rate_limit_tokens.Get({provider}).Set(tokens);
}

void Metrics::Progress() { impl_->last_progress_ns.store(SteadyNanos()); }

void Metrics::SetConfigLoaded(bool loaded) { impl_->config_loaded.store(loaded); }

void Metrics::SetGroupJoined(bool joined) { impl_->group_joined.store(joined); }

void Metrics::SetBrokerReachable(bool reachable) { impl_->broker_reachable.store(reachable); }

void Metrics::SetLivenessTimeout(std::chrono::milliseconds timeout) {
  impl_->liveness_timeout_ns.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
}

bool Metrics::Live() const {
  return SteadyNanos() - impl_->last_progress_ns.load() <= impl_->liveness_timeout_ns.load();
}

bool Metrics::Ready() const {
  return impl_->config_loaded.load() && impl_->group_joined.load() &&
         impl_->broker_reachable.load();
}

int Metrics::Port() const { return impl_->port; }

std::shared_ptr<prometheus::Registry> Metrics::Registry() const { return impl_->registry; }

std::string Metrics::Text() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry->Collect();
  std::vector<prometheus::MetricFamily> process;
  try {
    process = ProcessFamilies();
  } catch (const std::exception&) {
    process.clear();  // an unreadable /proc costs the process_* metrics, not the scrape
  }
  for (prometheus::MetricFamily& family : process) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace crmsync::worker
