// Simulator: a loopback HTTP server that behaves like the documented provider
// APIs (validation, per-item results, error bodies, auth), holding state in
// memory, with knobs for latency and injected failures.
//
// Routes by path prefix, one per provider:
//   /replify/api/v1/...   Replify: POST /campaigns/{id}/contacts
//   others: see sim/registry.cc and each provider's <name>_sim.h
// Control endpoints (no auth):
//   GET  /_sim/state   JSON of every provider's state and request counters
//   POST /_sim/knobs   JSON {"latencyMs", "latencyJitterMs", "failureRate", "failAll",
//                      "rateLimits", "rateLimitTimeScale", "timeoutRate", "hangMs",
//                      "resetRate", "throttleBurst", "throttleRetryAfterSeconds",
//                      "normalizeIdentities"}
//                      (any subset; see Knobs)
//   POST /_sim/reset   forget all state, counters and the request log
//   GET  /_sim/requests the request log as JSON {"requests": [...], "dropped"}:
//                      per request "seq", "arrivedUs" and "respondedUs"
//                      (microseconds since the simulator was constructed),
//                      "provider", "method", "path", "query", "status",
//                      "keyLabel" and "body" (see RequestRecord)
//
// Request log: every provider request (a path under a provider's prefix),
// admitted or refused, is recorded once its response is complete, with the
// label of the API key that authenticated it. Several keys per provider may
// be accepted (Options::labelled_api_keys), so that a test giving each
// client its own key can tell which client sent what. The log keeps the
// newest Options::request_log_limit records (Counters::request_log_dropped
// counts the ones it let go), holding at most Options::request_log_max_bytes
// of bodies; Reset() clears it.
//
// Thread-safe: handlers run on the server's worker threads; all state is
// behind one mutex. Start() throws std::runtime_error if it cannot listen.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crmsync::sim {

struct Knobs {
  std::chrono::milliseconds latency{0};  // added before every provider response
  // A further uniformly random delay in [0, latency_jitter] per response.
  std::chrono::milliseconds latency_jitter{0};
  double failure_rate = 0.0;        // fraction of requests answered 500 or 503
  bool fail_all = false;            // answer every provider request 503
  bool enforce_rate_limits = true;  // each provider's documented limits, with 429
  // Divides every rate-limit window ("per minute" becomes "per second" at 60),
  // so tests and benchmarks can run documented limits in scaled time.
  double rate_limit_time_scale = 1.0;

  // Transport faults, decided per admitted provider request (after the API
  // key check; at most one fault per request):
  //
  // Fraction of requests that are not applied and are answered 504 in the
  // provider's error format only after `hang`, so that a client with a
  // shorter request timeout sees a timeout.
  double timeout_rate = 0.0;
  std::chrono::milliseconds hang{2000};
  // Fraction of requests that are applied and whose connection is then
  // dropped mid-response: the client sees a transport error, not a status.
  double reset_rate = 0.0;
  // The next `throttle_burst` requests are answered 429 in the provider's
  // error format with a Retry-After of `throttle_retry_after_seconds`, and
  // not applied. Counts down as they are answered (GetKnobs shows what is
  // left); setting it again starts a new burst.
  uint64_t throttle_burst = 0;
  int throttle_retry_after_seconds = 1;

  // Replify answers as an API that normalises identities would: emails are
  // stored and echoed lower-case, phones as E.164 ("+" and digits; a
  // 10-digit number gets country code 1) in every success and error entry,
  // and a contact whose email has no '@' or whose phone has no digit fails
  // ("invalid email" / "invalid phone") with its identity echoed normalised.
  bool normalize_identities = false;
};

// One contact as Replify holds it in a campaign.
struct ReplifyContact {
  std::string first_name, last_name, email, phone, status;
  std::map<std::string, std::string> metadata;
  std::string external_id_key, external_id_value;
  bool operator==(const ReplifyContact&) const = default;
};

struct Counters {
  uint64_t requests = 0;  // provider requests received
  uint64_t injected_failures = 0;
  uint64_t unauthorized = 0;
  uint64_t rate_limited = 0;       // answered 429 by a documented rate limit
  uint64_t injected_timeouts = 0;  // hung, then answered 504 (timeout_rate)
  uint64_t injected_resets = 0;    // connection dropped mid-response (reset_rate)
  uint64_t throttled = 0;          // answered 429 by a throttle burst
  // Per provider name: the most of its requests in the server at once
  // (from routing to the written response, latency and hangs included).
  std::map<std::string, uint64_t> max_concurrent;
  // ... and how many are in the server now.
  std::map<std::string, uint64_t> in_flight;
  uint64_t request_log_dropped = 0;  // oldest records let go (request_log_limit)
};

// The label of the key in Options::api_keys, in RequestRecord::key_label.
inline constexpr char kDefaultKeyLabel[] = "default";

// One provider request as the simulator saw it.
struct RequestRecord {
  uint64_t seq = 0;  // 1, 2, ... in the order the responses completed
  // When the server had read the request line and headers (before the
  // latency knob, the key check and the provider's handling): the client
  // had sent the request by then.
  std::chrono::steady_clock::time_point arrived;
  // When the response was complete and about to be written (after latency
  // and an injected hang).
  std::chrono::steady_clock::time_point responded;
  std::string provider;  // "replify", "whippy", ...
  std::string method;    // "POST", "PUT", ...
  std::string path;      // without the query
  std::string query;     // "a=1&b=2" as parsed (decoded), "" for none
  int status = 0;        // HTTP status answered (also for a dropped connection)
  // The label of the API key that authenticated it (kDefaultKeyLabel for
  // Options::api_keys' key); "" when no accepted key was presented or the
  // request was refused before its key was checked (e.g. Whippy's 405).
  std::string key_label;
  std::string body;  // as received: the identities the request carries
};

class ProviderSim;

class Simulator {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 0;  // 0: any free port
    // Accepted API key per provider name ("replify", ...).
    std::map<std::string, std::string> api_keys = {{"replify", "sim-replify-key"}};
    // Further accepted keys: provider name -> (API key -> label). The label
    // names the key's holder in the request log; keys are per provider.
    std::map<std::string, std::map<std::string, std::string>> labelled_api_keys;
    // Records the request log keeps (the newest); 0 turns the log off.
    size_t request_log_limit = 10000;
    // And the most body bytes its records hold together (big batches).
    size_t request_log_max_bytes = size_t{64} << 20;
    Knobs knobs;
    int threads = 16;   // server worker threads (bounds concurrent requests)
    uint64_t seed = 1;  // for failure injection
  };

  explicit Simulator(Options options);
  ~Simulator();  // stops the server
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Binds and starts serving; returns once requests are accepted.
  void Start();
  void Stop();

  int Port() const;
  // Base URL of one provider's API, e.g. "http://127.0.0.1:4242/replify/api/v1".
  std::string BaseUrl(const std::string& provider) const;

  void SetKnobs(const Knobs& knobs);
  Knobs GetKnobs() const;

  // Snapshot of Replify campaigns: campaignId -> (contact identity -> contact).
  // The identity is the email if the contact has one, else the phone.
  std::map<std::string, std::map<std::string, ReplifyContact>> ReplifyCampaigns() const;
  Counters GetCounters() const;
  // A simulated provider other than Replify ("whippy", ...), for typed state
  // access in tests (dynamic_cast to its class); nullptr if unknown.
  ProviderSim* Provider(std::string_view name) const;
  // The same as GET /_sim/state.
  std::string StateJson() const;
  // The request log, oldest first (see the header comment).
  std::vector<RequestRecord> RequestLog() const;
  // Forgets all state, counters and the request log.
  void Reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crmsync::sim
