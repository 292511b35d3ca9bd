// CircuitBreaker: one provider's failure detector.
//
// Closed: requests flow; `failure_threshold` consecutive failed requests
// (transport failures, 5xx, 408, and 401/403: a bad, revoked or rotated key or
// a refused client is a provider-wide condition, never one item's fault — not
// 429, which the request budget handles) open it. Open: no new batches until the open period ends,
// so queued work waits instead of burning attempts. Half-open: one probe batch is let through; its
// first answered request closes the circuit or opens it again for twice as long (up to
// max_open_for).
//
// Pure logic with an injected clock; owned by the worker's loop thread.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "mapping/config.h"
#include "providers/provider.h"

namespace crmsync::worker {

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kClosed = 0, kHalfOpen = 1, kOpen = 2 };

  explicit CircuitBreaker(mapping::CircuitBreakerConfig config = {});

  // Whether a new batch may be sent now. When the open period is over this
  // admits exactly one probe and moves to half-open.
  bool AllowBatch(Clock::time_point now);
  // True while no batch could be admitted (open before its probe time, or a
  // probe outstanding).
  bool Blocked(Clock::time_point now) const;
  // Records one answered request. Returns true if the state changed.
  bool OnRequest(bool failed, Clock::time_point now);
  // The probe ended without an answered request (the provider module refused
  // it locally, or the worker withdrew it): admit the next probe at once
  // instead of waiting for an answer that will never come. Returns true if
  // the state changed.
  bool ReleaseProbe(Clock::time_point now);

  State state() const { return state_; }
  // When an open circuit will admit its probe.
  std::optional<Clock::time_point> ProbeAt() const;
  std::chrono::milliseconds OpenFor() const { return open_for_; }

  // Whether a response counts as a failure of the provider.
  static bool IsFailure(const providers::HttpResponse& response);
  // Whether the provider refused the credentials (HTTP 401 or 403).
  static bool IsAuthFailure(const providers::HttpResponse& response);
  static std::string_view StateName(State state);

 private:
  mapping::CircuitBreakerConfig config_;
  State state_ = State::kClosed;
  int consecutive_failures_ = 0;
  std::chrono::milliseconds open_for_;
  Clock::time_point open_until_{};
};

}  // namespace crmsync::worker
