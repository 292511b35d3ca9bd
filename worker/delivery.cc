#include "worker/delivery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

#include "providers/registry.h"

namespace crmsync::worker {
namespace {

// Label for http_requests_total: the HTTP status, or how the transport failed.
std::string ResponseCode(const providers::HttpResponse& response) {
  switch (response.transport) {
    case providers::Transport::kOk:
      return std::to_string(response.status);
    case providers::Transport::kTimeout:
      return "timeout";
    case providers::Transport::kConnectFailed:
      return "connect_failed";
    case providers::Transport::kBroken:
      return "broken";
    case providers::Transport::kConfigError:
      return "config_error";
  }
  return "unknown";
}

int CircuitStateValue(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return 0;
    case CircuitBreaker::State::kHalfOpen:
      return 1;
    case CircuitBreaker::State::kOpen:
      return 2;
  }
  return 0;
}

// A request that cannot have this long before its partition's revoke
// deadline is not started: it could only time out.
constexpr std::chrono::milliseconds kShortestRequest{50};

std::vector<providers::Outcome> WithdrawnOutcomes(size_t items) {
  providers::Outcome withdrawn{providers::OutcomeKind::kRetry, "withdrawn by the worker", 0, {}};
  withdrawn.withdrawn = true;
  return std::vector<providers::Outcome>(items, withdrawn);
}

}  // namespace

Delivery::Delivery(const mapping::Config& config, Metrics& metrics,
                   std::map<std::string, std::unique_ptr<providers::Provider>> providers,
                   std::unique_ptr<HttpEngine> engine)
    : config_(config),
      metrics_(metrics),
      providers_(std::move(providers)),
      engine_(std::move(engine)) {
  for (const auto& [name, provider_config] : config_.providers) {
    breakers_.emplace(name, CircuitBreaker(provider_config.circuit_breaker));
    budgets_.emplace(
        name,
        RequestBudget(provider_config.rate_limits.value_or(providers::DocumentedRateLimits(name)),
                      provider_config.retry.max_retry_after));
  }
}

Delivery::~Delivery() { Stop(); }

size_t Delivery::MaySend(const std::string& provider, Clock::time_point now) {
  CircuitBreaker& breaker = breakers_.at(provider);
  const auto before = breaker.state();
  const bool allowed = breaker.AllowBatch(now);
  NoteCircuit(provider, before);
  if (!allowed) return 0;
  // A half-open circuit probes with one operation.
  return breaker.state() == CircuitBreaker::State::kHalfOpen ? 1
                                                             : std::numeric_limits<size_t>::max();
}

bool Delivery::Blocked(const std::string& provider, Clock::time_point now) const {
  return breakers_.at(provider).Blocked(now);
}

void Delivery::NoteCircuit(const std::string& provider, CircuitBreaker::State before) {
  const CircuitBreaker::State state = breakers_.at(provider).state();
  if (state == before) return;
  metrics_.SetCircuitState(provider, CircuitStateValue(state));
  // Reported once per provider however often it changed since the last take.
  if (std::find(circuit_changes_.begin(), circuit_changes_.end(), provider) ==
      circuit_changes_.end()) {
    circuit_changes_.push_back(provider);
  }
}

std::vector<std::string> Delivery::TakeCircuitChanges() {
  std::vector<std::string> changes;
  changes.swap(circuit_changes_);
  return changes;
}

void Delivery::Start(const OutgoingBatch& out, Clock::time_point now) {
  ActiveExchange& active = exchanges_[out.id];
  active.provider = out.provider;
  active.action = out.batch->action;
  active.items = out.batch->items.size();
  active.probe = out.probe;
  active.partitions = out.partitions;
  active.exchange = providers_.at(out.provider)->Start(*out.batch);
  Advance(out.id, active, now);
}

void Delivery::Finish(uint64_t batch_id, ActiveExchange& active,
                      std::vector<providers::Outcome> outcomes) {
  if (active.probe && !active.answered) {
    // The probe never reached the provider: the circuit must not wait for it.
    CircuitBreaker& breaker = breakers_.at(active.provider);
    const auto before = breaker.state();
    breaker.ReleaseProbe(Clock::now());
    NoteCircuit(active.provider, before);
  }
  finished_.push_back(
      DeliveredBatch{batch_id, active.provider, active.action, std::move(outcomes)});
  waiting_for_budget_.erase(batch_id);
  exchanges_.erase(batch_id);
}

void Delivery::Advance(uint64_t batch_id, ActiveExchange& active, Clock::time_point now) {
  std::vector<providers::HttpRequest> round = active.exchange->NextRound();
  if (round.empty()) {
    // The exchange and the batch it points into must outlive Outcomes().
    Finish(batch_id, active, active.exchange->Outcomes());
    return;
  }
  active.awaiting = round.size();
  active.unsent.clear();
  active.unsent.reserve(round.size());
  for (size_t index = 0; index < round.size(); ++index) {
    active.unsent.emplace_back(index, std::move(round[index]));
  }
  SendWithinBudget(batch_id, active, now);
}

std::optional<Clock::time_point> Delivery::DeadlineOf(const ActiveExchange& active) const {
  std::optional<Clock::time_point> deadline;
  for (const auto& tp : active.partitions) {
    if (auto it = revoking_.find(tp); it != revoking_.end()) {
      if (!deadline || it->second < *deadline) deadline = it->second;
    }
  }
  return deadline;
}

void Delivery::SendWithinBudget(uint64_t batch_id, ActiveExchange& active, Clock::time_point now) {
  auto timeout = config_.providers.at(active.provider).request_timeout;
  if (auto deadline = DeadlineOf(active)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now);
    if (left < kShortestRequest) {
      WithdrawExchange(batch_id, active);
      return;
    }
    timeout = std::min(timeout, left);
  }
  RequestBudget& budget = budgets_.at(active.provider);
  const size_t n = std::min(budget.Available(now), active.unsent.size());
  budget.Take(n);
  for (size_t i = 0; i < n; ++i) {
    auto& [index, request] = active.unsent[i];
    const auto started = Clock::now();
    metrics_.HttpInFlight(active.provider, 1);
    const uint64_t id = engine_->Submit(
        std::move(request), timeout,
        [this, batch_id, index = index, started,
         provider = active.provider](providers::HttpResponse response) {
          metrics_.HttpInFlight(provider, -1);
          Completion completion{batch_id, index, std::move(response),
                                std::chrono::duration<double>(Clock::now() - started).count()};
          {
            std::lock_guard lock(completions_mutex_);
            completions_.push_back(std::move(completion));
          }
          completions_cv_.notify_one();
        });
    active.in_flight.emplace(index, id);
  }
  active.unsent.erase(active.unsent.begin(), active.unsent.begin() + static_cast<ptrdiff_t>(n));
  if (active.unsent.empty()) {
    waiting_for_budget_.erase(batch_id);
  } else {
    waiting_for_budget_.insert(batch_id);
  }
}

void Delivery::WithdrawExchange(uint64_t batch_id, ActiveExchange& active) {
  if (active.withdrawn) return;
  active.withdrawn = true;
  active.awaiting -= std::min(active.awaiting, active.unsent.size());
  active.unsent.clear();
  waiting_for_budget_.erase(batch_id);
  if (active.in_flight.empty()) {
    Finish(batch_id, active, WithdrawnOutcomes(active.items));
    return;
  }
  if (engine_) {
    std::vector<uint64_t> ids;
    ids.reserve(active.in_flight.size());
    for (const auto& [index, id] : active.in_flight) ids.push_back(id);
    engine_->Cancel(ids);
  }
}

std::vector<DeliveredBatch> Delivery::Pump(Clock::time_point now) {
  std::vector<Completion> done;
  {
    std::lock_guard lock(completions_mutex_);
    done.swap(completions_);
  }
  for (Completion& completion : done) {
    auto it = exchanges_.find(completion.batch_id);
    if (it == exchanges_.end()) continue;
    ActiveExchange& active = it->second;
    active.in_flight.erase(completion.index);
    budgets_.at(active.provider).Complete(now);
    const bool cancelled = active.withdrawn &&
                           completion.response.transport == providers::Transport::kBroken &&
                           completion.response.transport_error == "cancelled";
    if (!cancelled) {
      metrics_.HttpRequest(active.provider, ResponseCode(completion.response), completion.seconds);
      CircuitBreaker& breaker = breakers_.at(active.provider);
      const auto before = breaker.state();
      breaker.OnRequest(CircuitBreaker::IsFailure(completion.response), now);
      if (CircuitBreaker::IsAuthFailure(completion.response)) {
        metrics_.ProviderAuthFailure(active.provider);
      }
      NoteCircuit(active.provider, before);
      if (completion.response.transport == providers::Transport::kOk &&
          completion.response.status == 429) {
        RequestBudget& budget = budgets_.at(active.provider);
        const double factor = budget.Factor();
        budget.OnThrottled(now, completion.response.retry_after);
        if (budget.Factor() != factor) {
          spdlog::info("{} answered 429: sending at {:.0f}% of its budget", active.provider,
                       budget.Factor() * 100);
        }
      }
      active.answered = true;
    }
    if (active.withdrawn) {
      if (active.in_flight.empty()) {
        Finish(completion.batch_id, active, WithdrawnOutcomes(active.items));
      }
      continue;
    }
    active.exchange->OnResponse(completion.index, completion.response);
    if (--active.awaiting == 0) Advance(completion.batch_id, active, now);
  }

  for (auto it = waiting_for_budget_.begin(); it != waiting_for_budget_.end();) {
    const uint64_t id = *it++;  // SendWithinBudget may erase it
    if (auto active = exchanges_.find(id); active != exchanges_.end()) {
      SendWithinBudget(id, active->second, now);
    }
  }
  return TakeFinished();
}

std::vector<DeliveredBatch> Delivery::TakeFinished() {
  std::vector<DeliveredBatch> finished;
  finished.swap(finished_);
  return finished;
}

std::optional<Clock::time_point> Delivery::NextDeadline(Clock::time_point now) {
  std::optional<Clock::time_point> next;
  auto consider = [&next](Clock::time_point at) {
    if (!next || at < *next) next = at;
  };
  for (const auto& [name, breaker] : breakers_) {
    // Once the probe time has passed, the next batch that is due asks for it.
    auto probe = breaker.ProbeAt();
    if (probe && *probe > now) consider(*probe);
  }
  for (uint64_t id : waiting_for_budget_) {
    auto it = exchanges_.find(id);
    if (it == exchanges_.end()) continue;
    RequestBudget& budget = budgets_.at(it->second.provider);
    // No slot free and none due by time: an answer to a request in flight
    // frees one, and answers wake the loop anyway.
    if (budget.Available(now) > 0) {
      consider(now);
    } else if (auto at = budget.NextFree(now)) {
      consider(*at);
    }
  }
  if (!finished_.empty()) consider(now);
  return next;
}

void Delivery::WaitForAnswers(Clock::time_point until) {
  std::unique_lock lock(completions_mutex_);
  completions_cv_.wait_until(lock, until, [this] { return !completions_.empty(); });
}

void Delivery::Revoking(const kafka::TopicPartition& tp, Clock::time_point deadline) {
  revoking_[tp] = deadline;
}

void Delivery::Withdraw(const std::vector<kafka::TopicPartition>& partitions) {
  if (partitions.empty()) return;
  std::vector<uint64_t> touching;
  for (const auto& [id, active] : exchanges_) {
    for (const auto& tp : partitions) {
      if (std::binary_search(active.partitions.begin(), active.partitions.end(), tp)) {
        touching.push_back(id);
        break;
      }
    }
  }
  for (uint64_t id : touching) {
    if (auto it = exchanges_.find(id); it != exchanges_.end()) WithdrawExchange(id, it->second);
  }
  for (const auto& tp : partitions) revoking_.erase(tp);
}

size_t Delivery::ExchangesTouching(const kafka::TopicPartition& tp) const {
  size_t n = 0;
  for (const auto& [id, active] : exchanges_) {
    if (std::binary_search(active.partitions.begin(), active.partitions.end(), tp)) ++n;
  }
  return n;
}

void Delivery::Stop() {
  std::vector<uint64_t> ids;
  ids.reserve(exchanges_.size());
  for (const auto& [id, active] : exchanges_) ids.push_back(id);
  for (uint64_t id : ids) {
    if (auto it = exchanges_.find(id); it != exchanges_.end()) WithdrawExchange(id, it->second);
  }
  // Fails what is still in flight (their answers can no longer be used) and
  // joins the I/O thread: no request leaves this process after this line.
  if (engine_) engine_->Stop();
  Pump(Clock::now());
}

void Delivery::RefreshGauges(Clock::time_point now) {
  for (auto& [provider, budget] : budgets_) {
    const size_t available = budget.Available(now);  // SIZE_MAX: no limit
    metrics_.SetRateLimitTokens(provider, available == std::numeric_limits<size_t>::max()
                                              ? std::numeric_limits<double>::infinity()
                                              : static_cast<double>(available));
  }
  for (const auto& [provider, breaker] : breakers_) {
    metrics_.SetCircuitState(provider, CircuitStateValue(breaker.state()));
  }
}

}  // namespace crmsync::worker
