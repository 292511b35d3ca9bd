#include "worker/circuit_breaker.h"

#include <algorithm>

namespace crmsync::worker {

CircuitBreaker::CircuitBreaker(mapping::CircuitBreakerConfig config)
    : config_(config), open_for_(config.open_for) {}

bool CircuitBreaker::AllowBatch(Clock::time_point now) {
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kHalfOpen:
      return false;  // the probe is outstanding
    case State::kOpen:
      if (now < open_until_) return false;
      state_ = State::kHalfOpen;
      return true;
  }
  return false;
}

bool CircuitBreaker::Blocked(Clock::time_point now) const {
  switch (state_) {
    case State::kClosed:
      return false;
    case State::kHalfOpen:
      return true;
    case State::kOpen:
      return now < open_until_;
  }
  return false;
}

bool CircuitBreaker::OnRequest(bool failed, Clock::time_point now) {
  switch (state_) {
    case State::kClosed:
      consecutive_failures_ = failed ? consecutive_failures_ + 1 : 0;
      if (consecutive_failures_ < config_.failure_threshold) return false;
      state_ = State::kOpen;
      open_for_ = config_.open_for;
      open_until_ = now + open_for_;
      return true;
    case State::kHalfOpen:
      if (failed) {
        state_ = State::kOpen;
        open_for_ = std::min(open_for_ * 2, config_.max_open_for);
        open_until_ = now + open_for_;
      } else {
        state_ = State::kClosed;
        consecutive_failures_ = 0;
        open_for_ = config_.open_for;
      }
      return true;
    case State::kOpen:
      // Answers to requests sent before the circuit opened change nothing.
      return false;
  }
  return false;
}

bool CircuitBreaker::ReleaseProbe(Clock::time_point now) {
  if (state_ != State::kHalfOpen) return false;
  state_ = State::kOpen;
  open_until_ = now;
  return true;
}

std::optional<CircuitBreaker::Clock::time_point> CircuitBreaker::ProbeAt() const {
  if (state_ != State::kOpen) return std::nullopt;
  return open_until_;
}

bool CircuitBreaker::IsFailure(const providers::HttpResponse& response) {
  if (response.transport != providers::Transport::kOk) return true;
  return response.status >= 500 || response.status == 408 || IsAuthFailure(response);
}

bool CircuitBreaker::IsAuthFailure(const providers::HttpResponse& response) {
  return response.transport == providers::Transport::kOk &&
         (response.status == 401 || response.status == 403);
}

std::string_view CircuitBreaker::StateName(State state) {
  switch (state) {
    case State::kClosed:
      return "closed";
    case State::kHalfOpen:
      return "half-open";
    case State::kOpen:
      return "open";
  }
  return "unknown";
}

}  // namespace crmsync::worker
