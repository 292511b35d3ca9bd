// ProviderSim: one provider's simulated API, plugged into the Simulator.
//
// The Simulator owns the HTTP server, the one state mutex, the knobs and the
// counters (SimHost); a ProviderSim registers its routes under its path
// prefix, keeps its own state (always touched under host.Mutex()), renders
// its provider's own error bodies, and enforces its documented rate limits.
// The explicit list of every ProviderSim is in sim/registry.cc.
#pragma once

#include <httplib.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/simulator.h"

namespace crmsync::sim {

// An HTTP answer as the simulator sends it.
struct SimReply {
  SimReply() = default;
  SimReply(int status_code, std::string json) : status(status_code), body(std::move(json)) {}

  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::optional<int> retry_after_seconds;  // sent as a Retry-After header
};

// A JSON body {"message": message} with that status.
SimReply MessageReply(int status, std::string_view message);

// Writes `reply` into `res`: status, Retry-After, body (JSON unless the
// reply says otherwise).
void SendReply(httplib::Response& res, const SimReply& reply);

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;
void WriteKey(JsonWriter& writer, std::string_view key);
// "key": "value".
void WriteString(JsonWriter& writer, std::string_view key, std::string_view value);

// `text` with ASCII letters in lower case.
std::string AsciiLower(std::string_view text);
// Whether `id` is a UUID in its 8-4-4-4-12 hex-digit form.
bool IsUuid(std::string_view id);
// The token of "Authorization: Bearer <token>" (the scheme is
// case-insensitive, RFC 7235); "" when there is none.
std::string BearerToken(const httplib::Request& req);

// Why the host refuses a request before the provider sees it.
enum class Refusal {
  kUnauthorized,  // missing or wrong API key
  kInjected500,   // failure injection (knobs)
  kInjected503,
  kThrottled,  // a throttle burst: 429 with Retry-After (knobs)
  kTimedOut,   // timeout injection: 504, sent only after the knobs' hang
};

// What a provider's refusals say, in its own spelling.
struct RefusalTexts {
  std::string_view unauthorized = "Unauthorized";
  std::string_view internal_error = "Internal Server Error";
  std::string_view unavailable = "Service Unavailable";
  std::string_view throttled = "Too many requests";
  std::string_view timed_out = "Gateway Timeout";
};

// A refusal as the provider answers it: `error_reply(status, text)` is the
// provider's own error body; a throttle burst carries the knobs' Retry-After.
SimReply RefusalReply(Refusal refusal, const Knobs& knobs,
                      SimReply (*error_reply)(int status, std::string_view text),
                      const RefusalTexts& texts);

class SimHost {
 public:
  virtual ~SimHost() = default;
  // The latency knob; call before taking the mutex.
  virtual void SleepLatency() const = 0;
  // Counts one provider request, checks its key against the configured one
  // for `provider`, and decides on an injected failure. Caller holds Mutex().
  // A refusal is answered by the provider in its own format (RefusalReply);
  // a hang or a dropped connection is carried out by the host once the
  // provider has answered, outside the mutex.
  virtual std::optional<Refusal> AdmitLocked(std::string_view provider,
                                             std::string_view api_key) = 0;
  virtual std::mutex& Mutex() const = 0;
  // Current knobs. Caller holds Mutex().
  virtual const Knobs& KnobsLocked() const = 0;
  // Counts a request answered 429 by a rate limit. Caller holds Mutex().
  virtual void CountRateLimitedLocked() = 0;
};

class ProviderSim {
 public:
  virtual ~ProviderSim() = default;
  virtual std::string_view Name() const = 0;  // "replify", "whippy", ...
  // Path prefix that stands for the provider's base URL, e.g. "/whippy/v1".
  virtual std::string_view PathPrefix() const = 0;
  // Registers the provider's routes; `host` outlives the server.
  virtual void Register(httplib::Server& server, SimHost& host) = 0;
  // {"<what>": ...} members describing the state. Caller holds the mutex.
  virtual void WriteStateLocked(rapidjson::Writer<rapidjson::StringBuffer>& writer) const = 0;
  // Forgets all state (and rate-limit windows). Caller holds the mutex.
  virtual void ResetLocked() = 0;
};

// Every simulated provider but Replify (which the Simulator holds itself).
std::vector<std::unique_ptr<ProviderSim>> MakeProviderSims();

// A sliding-window request limit: at most `limit` requests in any `window`.
// The window is divided by the knobs' rate_limit_time_scale so tests can run
// a "per minute" limit in a fraction of a second. Not synchronised: used
// under the host mutex.
class WindowLimiter {
 public:
  WindowLimiter(int limit, std::chrono::milliseconds window) : limit_(limit), window_(window) {}
  // True if the request may go; otherwise false and, in `retry_after`, when
  // the oldest request leaves the window.
  bool TryAcquire(std::chrono::steady_clock::time_point now, double time_scale,
                  std::chrono::milliseconds* retry_after);
  void Reset() { sent_.clear(); }

 private:
  int limit_;
  std::chrono::milliseconds window_;
  std::deque<std::chrono::steady_clock::time_point> sent_;
};

}  // namespace crmsync::sim
