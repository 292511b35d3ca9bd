#include "worker/request_budget.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace crmsync::worker {
namespace {

constexpr double kMinFactor = 0.1;
constexpr double kBackoffFactor = 0.5;
constexpr double kRecoveryFactor = 1.25;

}  // namespace

RequestBudget::RequestBudget(std::vector<mapping::RateLimit> limits,
                             std::chrono::milliseconds max_retry_after)
    : max_retry_after_(std::max(max_retry_after, std::chrono::milliseconds(0))) {
  for (const auto& limit : limits) {
    if (limit.requests <= 0 || limit.period.count() <= 0) continue;
    // The provider counts a request when it arrives, we when we send it: a 2%
    // (at least 20 ms) margin keeps connection set-up jitter from making a
    // request land inside the previous window.
    const auto margin = std::max<Clock::duration>(limit.period / 50, std::chrono::milliseconds(20));
    windows_.push_back(Window{limit, limit.period + margin, {}});
    if (shortest_period_ == Clock::duration::zero() || windows_.back().period < shortest_period_) {
      shortest_period_ = windows_.back().period;
    }
  }
}

size_t RequestBudget::Allowed(const Window& window) const {
  return std::max<size_t>(1, static_cast<size_t>(std::floor(window.limit.requests * factor_)));
}

void RequestBudget::Expire(Clock::time_point now) {
  for (Window& window : windows_) {
    while (!window.sent.empty() && window.sent.front() + window.period <= now) {
      window.sent.pop_front();
    }
  }
}

void RequestBudget::Recover(Clock::time_point now) {
  if (factor_ >= 1.0) return;
  // One recovery step per quiet shortest window since the last step.
  while (factor_ < 1.0 && now - last_throttle_ >= shortest_period_) {
    factor_ = std::min(1.0, factor_ * kRecoveryFactor);
    last_throttle_ += shortest_period_;
  }
}

size_t RequestBudget::Available(Clock::time_point now) {
  if (windows_.empty() && now >= hold_until_) return std::numeric_limits<size_t>::max();
  if (now < hold_until_) return 0;
  Recover(now);
  Expire(now);
  size_t available = std::numeric_limits<size_t>::max();
  for (const Window& window : windows_) {
    const size_t allowed = Allowed(window);
    const size_t used = window.sent.size() + in_flight_;
    available = std::min(available, allowed > used ? allowed - used : 0);
  }
  return available;
}

void RequestBudget::Take(size_t n) {
  if (!windows_.empty()) in_flight_ += n;
}

void RequestBudget::Complete(Clock::time_point now) {
  if (windows_.empty() || in_flight_ == 0) return;
  --in_flight_;
  for (Window& window : windows_) window.sent.push_back(now);
}

std::optional<RequestBudget::Clock::time_point> RequestBudget::NextFree(Clock::time_point now) {
  if (Available(now) > 0) return std::nullopt;
  if (now < hold_until_) return hold_until_;
  Clock::time_point next = now;
  for (const Window& window : windows_) {
    const size_t allowed = Allowed(window);
    if (window.sent.size() + in_flight_ < allowed) continue;
    // Only answers free slots while requests are in flight.
    if (window.sent.size() < allowed) return std::nullopt;
    // The slot frees when enough of the oldest requests leave the window.
    next = std::max(next, window.sent[window.sent.size() - allowed] + window.period);
  }
  return next;
}

void RequestBudget::OnThrottled(Clock::time_point now,
                                std::optional<std::chrono::milliseconds> retry_after) {
  // The answers to one burst arrive together: halve once for all of them.
  const bool same_burst =
      factor_ < 1.0 && now - last_throttle_ < std::max(shortest_period_, Clock::duration(1));
  if (!same_burst) factor_ = std::max(kMinFactor, factor_ * kBackoffFactor);
  last_throttle_ = now;
  if (retry_after) {
    // Clamped before it is added to `now`, which also keeps the sum from
    // overflowing the clock's representation.
    const auto hold = std::clamp(*retry_after, std::chrono::milliseconds(0), max_retry_after_);
    hold_until_ = std::max(hold_until_, now + hold);
  }
}

}  // namespace crmsync::worker
