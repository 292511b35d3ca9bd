// RequestBudget: a provider's proactive request budget, so the worker sends
// at the documented limit instead of collecting 429s.
//
// Each limit is a sliding window ("at most N requests in any P"), the shape
// providers enforce; a token bucket would let through up to twice N in some
// window of length P. A request occupies a slot from the moment it is sent
// and counts as sent at the moment its answer arrives: the provider saw it at
// some point in between, and requests queued in the client must not make the
// window look emptier than the provider's. On a 429 the budget halves (down
// to a tenth) and holds off until Retry-After, capped at `max_retry_after`
// (the provider's retry.maxRetryAfterMs) so that one absurd header cannot stop
// a provider for an hour; each quiet period of the shortest window after that
// brings it back up by a quarter.
//
// Pure logic with an injected clock; not thread-safe (the worker's loop
// thread owns it). Never throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "mapping/config.h"

namespace crmsync::worker {

class RequestBudget {
 public:
  using Clock = std::chrono::steady_clock;

  // `max_retry_after` bounds every hold a 429's Retry-After asks for; the
  // default is RetryConfig's.
  explicit RequestBudget(
      std::vector<mapping::RateLimit> limits,
      std::chrono::milliseconds max_retry_after = mapping::RetryConfig{}.max_retry_after);

  // How many requests may be sent at `now` (SIZE_MAX when unlimited).
  size_t Available(Clock::time_point now);
  // Records `n` requests sent (n <= Available(now)).
  void Take(size_t n);
  // One request taken earlier was answered (or failed) at `now`.
  void Complete(Clock::time_point now);
  // When the next request may go, if none may go now.
  std::optional<Clock::time_point> NextFree(Clock::time_point now);

  // The provider answered 429: slow down, and wait `retry_after` if given
  // (clamped to [0, max_retry_after]).
  void OnThrottled(Clock::time_point now, std::optional<std::chrono::milliseconds> retry_after);

  // Current fraction of the configured limits in use (1.0 when recovered).
  double Factor() const { return factor_; }
  bool Unlimited() const { return windows_.empty(); }

 private:
  struct Window {
    mapping::RateLimit limit;
    Clock::duration period;  // with a safety margin for clock and network skew
    std::deque<Clock::time_point> sent;
  };
  size_t Allowed(const Window& window) const;
  void Expire(Clock::time_point now);
  void Recover(Clock::time_point now);

  std::vector<Window> windows_;
  std::chrono::milliseconds max_retry_after_;
  double factor_ = 1.0;
  Clock::time_point hold_until_{};
  Clock::time_point last_throttle_{};
  Clock::duration shortest_period_{};
  size_t in_flight_ = 0;
};

}  // namespace crmsync::worker
