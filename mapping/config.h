// Config: the whole crmsync configuration file, validated against
// schemas/config.schema.json and resolved (API keys read from the environment
// or mounted files) at start-up.
//
// LoadConfig* throw ConfigError on any problem; the message names every
// offending JSON path (e.g. "/providers/replify/baseUrl: ..."). After start-up
// a Config is an immutable value shared read-only between threads.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/rules.h"
#include "mapping/secret.h"

namespace crmsync::mapping {

class ProviderCatalog;  // mapping/provider_spec.h

class ConfigError : public std::runtime_error {
 public:
  // Each problem is "<json path>: <what is wrong>".
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

struct KafkaConfig {
  std::string bootstrap_servers;
  std::vector<std::string> topics;
  std::string group_id = "crmsync";
  // Static group membership (librdkafka group.instance.id): a restarted
  // replica with the same id gets its partitions back without a rebalance.
  std::string group_instance_id;
  // Where undecodable messages and permanently rejected operations go, with
  // their reason in headers; empty: they are skipped, logged and counted.
  std::string dead_letter_topic;
  // librdkafka properties passed through as-is (security.protocol, sasl.*, ...).
  // The worker applies its forced settings after these.
  std::map<std::string, std::string> properties;
};

// A request budget: at most `requests` requests in any `period`.
struct RateLimit {
  int requests = 0;
  std::chrono::milliseconds period{1000};
  bool operator==(const RateLimit&) const = default;
};

// What happens to an operation whose retries are exhausted.
enum class OnExhausted {
  kDeadLetter,  // written to kafka.deadLetterTopic, then its offset may be committed
  kPause,       // retried forever at the largest backoff, its partition paused meanwhile
};

// Retries of an operation the provider could not take now (5xx, timeouts,
// 429, connection failures). A bound of 0 means unbounded.
struct RetryConfig {
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30000};
  // Upper bound for a provider's Retry-After.
  std::chrono::milliseconds max_retry_after{std::chrono::minutes(5)};
  int max_attempts = 20;
  std::chrono::milliseconds max_elapsed{std::chrono::hours(1)};
  OnExhausted on_exhausted = OnExhausted::kDeadLetter;
  bool operator==(const RetryConfig&) const = default;
};

// Per-provider circuit breaker: after `failure_threshold` consecutive failed
// requests the provider gets no requests for `open_for` (doubling after each
// failed probe up to `max_open_for`), then one probe batch decides.
struct CircuitBreakerConfig {
  int failure_threshold = 5;
  std::chrono::milliseconds open_for{5000};
  std::chrono::milliseconds max_open_for{30000};
  bool operator==(const CircuitBreakerConfig&) const = default;
};

struct ProviderConfig {
  std::string name;      // "replify"
  std::string base_url;  // e.g. "https://api.heylibby.com/api/v1"
  std::string api_key;   // resolved secret (its value at start-up); never log it
  // Set when the key comes from {"file": ...}: follows the file as it is
  // rotated. Providers use ApiKeySource(), never api_key directly.
  std::shared_ptr<const SecretSource> api_key_source;
  // providers.<name>.allowInsecureHttp: a plain http:// baseUrl to a
  // non-loopback host is accepted (the key then travels in clear text).
  bool allow_insecure_http = false;
  size_t max_batch = 100;
  std::chrono::milliseconds linger{50};
  int max_in_flight = 4;
  std::chrono::milliseconds request_timeout{10000};
  // A contact that receives further operations while one is being sent is
  // hot: its next send waits until this long after the previous one, so that
  // everything arriving meanwhile coalesces into one operation. 0 disables.
  std::chrono::milliseconds coalesce_window{1000};
  // worker.retry overlaid with the provider's own "retry" settings.
  RetryConfig retry;
  CircuitBreakerConfig circuit_breaker;
  // Proactive request budgets, all of which must allow a request. Unset: the
  // provider's documented limits (its spec in providers/<name>/); empty:
  // unlimited.
  std::optional<std::vector<RateLimit>> rate_limits;
  // The provider's whole config object as JSON text, for provider-specific
  // settings (e.g. Whippy's listMethod) that its constructor reads.
  std::string settings_json;
};

struct WorkerConfig {
  // Deadline for draining in-flight work on SIGTERM or partition revoke.
  std::chrono::milliseconds drain_timeout{10000};
  // How long a partition taken over without a handover mark from its
  // previous owner (a crash, a lost assignment, an unfinished drain) holds
  // its work, so that requests that owner may still have had in flight are
  // answered or timed out first. Unset: the longest provider
  // requestTimeoutMs; 0: never wait.
  std::optional<std::chrono::milliseconds> takeover_fence;
  std::chrono::milliseconds commit_interval{1000};
  // Backpressure: partitions pause above this many undelivered operations.
  size_t max_pending_operations = 50000;
  // ... and above this many consumed messages not yet done (one hot contact's
  // operations coalesce into one, but each message is tracked until done).
  size_t max_pending_messages = 200000;
  // ... and above this many bytes of message keys and values retained for
  // dead-lettering.
  size_t max_retained_bytes = 64u << 20;
  // Defaults of every provider's retry policy.
  RetryConfig retry;
  // Messages larger than this are not decoded: they are dead-lettered (or
  // skipped) with a reason.
  size_t max_message_bytes = 1 << 20;
  // PEM file of CA certificates for https providers (default: the system's).
  // Certificate and host verification are always on.
  std::string ca_bundle;
  // "host:port" for /metrics and /healthz; empty disables the listener.
  std::string metrics_listen = "0.0.0.0:9464";
};

// Per-contact state (docs/STATE.md); parsed by mapping/state_config.cc.
struct StateConfig {
  bool enabled = false;
  // "{topic}" stands for the input topic.
  std::string changelog_topic = "{topic}.crmsync-state";
  bool create_topics = true;
  int replication_factor = 1;
  std::chrono::milliseconds restore_timeout{120000};
  // Skipped events (contact never seen, or without its identity yet) are
  // dead-lettered too, not only counted and logged.
  bool dead_letter_skipped = false;
  bool suppress_unchanged = true;
  // Where the states live between changelog writes: in memory, or in an
  // embedded RocksDB under `dir` (a cache the worker wipes at start-up).
  enum class Backend { kMemory, kRocksDb };
  Backend backend = Backend::kMemory;
  std::string dir;
  int rocksdb_block_cache_mb = 64;
  int rocksdb_write_buffer_mb = 32;

  // The changelog topic of an input topic.
  std::string ChangelogTopic(const std::string& input_topic) const;
};

struct Config {
  KafkaConfig kafka;
  std::map<std::string, ProviderConfig> providers;  // by name
  Rules rules;
  WorkerConfig worker;
  StateConfig state;
};

// Where an API key comes from: {"env": "NAME"} or {"file": "/path"}.
// Reads the environment through this function so that tests can inject one.
using EnvLookup = std::optional<std::string> (*)(std::string_view name);
std::optional<std::string> ProcessEnv(std::string_view name);

// The provider's API key as the providers read it: the rotating file source,
// or a fixed source holding config.api_key.
std::shared_ptr<const SecretSource> ApiKeySource(const ProviderConfig& config);

// Parses, validates (schema + semantic checks such as rules referring to
// configured providers, and each provider's own checks through its spec in
// `catalog`) and resolves a config document. `path` "-" reads standard input.
Config LoadConfigFromString(const ProviderCatalog& catalog, std::string_view json,
                            EnvLookup env = ProcessEnv);
Config LoadConfigFromFile(const ProviderCatalog& catalog, const std::string& path,
                          EnvLookup env = ProcessEnv);

}  // namespace crmsync::mapping
