#include "worker/worker.h"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

#include "providers/registry.h"
#include "worker/process_message.h"
#include "worker/redact.h"

namespace crmsync::worker {
namespace {

RetryPolicy PolicyFrom(const mapping::RetryConfig& retry) {
  return RetryPolicy{retry.initial_backoff, retry.max_backoff,
                     retry.max_retry_after, retry.max_attempts,
                     retry.max_elapsed,     retry.on_exhausted == mapping::OnExhausted::kPause};
}

std::map<std::string, ProviderLimits> LimitsFrom(const mapping::Config& config) {
  std::map<std::string, ProviderLimits> limits;
  for (const auto& [name, provider] : config.providers) {
    limits[name] = ProviderLimits{provider.max_batch, provider.linger, provider.max_in_flight,
                                  provider.coalesce_window, PolicyFrom(provider.retry)};
  }
  return limits;
}

int64_t EpochMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Wall-clock milliseconds of a steady-clock moment in the past.
int64_t WallMillis(Clock::time_point t) {
  return EpochMillis(
      std::chrono::system_clock::now() -
      std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - t));
}

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

constexpr size_t kMaxMessagesPerPoll = 1000;
constexpr std::chrono::milliseconds kIdlePoll{100};
constexpr std::chrono::milliseconds kBusyPoll{5};
constexpr std::chrono::milliseconds kCommitDeadline{5000};
constexpr std::chrono::milliseconds kStuckRefresh{200};
// How often the circuit-state and rate-limit-token gauges are refreshed.
constexpr std::chrono::milliseconds kGaugeRefresh{100};

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

}  // namespace

Worker::Worker(mapping::Config config, Metrics& metrics)
    : config_(std::move(config)),
      metrics_(metrics),
      dispatcher_(LimitsFrom(config_), PolicyFrom(config_.worker.retry)) {
  for (const auto& [name, provider_config] : config_.providers) {
    providers_[name] = providers::CreateProvider(provider_config);
    breakers_.emplace(name, CircuitBreaker(provider_config.circuit_breaker));
    budgets_.emplace(
        name,
        RequestBudget(provider_config.rate_limits.value_or(providers::DocumentedRateLimits(name))));
  }
  HttpEngine::Options options;
  int connections = 0;
  for (const auto& [name, provider_config] : config_.providers) {
    connections = std::max(connections, provider_config.max_in_flight);
  }
  options.max_host_connections = std::max(connections, 1);
  options.ca_bundle = config_.worker.ca_bundle;
  engine_ = std::make_unique<HttpEngine>(options);
  if (!config_.kafka.dead_letter_topic.empty()) {
    // The user's passthrough properties carry the cluster's security settings.
    dead_letters_ = std::make_unique<kafka::Producer>(config_.kafka.bootstrap_servers,
                                                      config_.kafka.properties);
  }
  RefreshGauges(Clock::now());
  metrics_.SetConfigLoaded(true);
}

Worker::~Worker() {
  // Delivery reports of dead letters and the engine's callbacks touch the
  // pipeline's state: stop both first.
  destroying_ = true;
  dead_letters_.reset();
  engine_.reset();
  consumer_.reset();
}

bool Worker::IsCurrent(const MessageRef& ref) const {
  auto it = epochs_.find(ref.tp);
  return it != epochs_.end() && it->second == ref.epoch && tracker_.IsAssigned(ref.tp);
}

void Worker::HandleMessage(const kafka::Message& message, Clock::time_point now) {
  kafka::TopicPartition tp{std::string(message.topic), message.partition};
  ++stats_.consumed;
  metrics_.EventConsumed(tp.topic);
  if (!tracker_.IsAssigned(tp)) return;
  if (tracker_.AlreadyAdded(tp, message.offset)) {
    spdlog::debug("{}@{} delivered again; already being processed", tp.ToString(), message.offset);
    return;
  }

  ProcessedMessage processed;
  bool oversized = false;
  if (message.payload.size() > config_.worker.max_message_bytes) {
    ++stats_.oversized;
    oversized = true;
    processed.fate = MessageFate::kMalformed;
    processed.reason = "message of " + std::to_string(message.payload.size()) +
                       " bytes exceeds worker.maxMessageBytes (" +
                       std::to_string(config_.worker.max_message_bytes) + ")";
  } else {
    processed = ProcessMessage(message, config_.rules);
  }
  if (processed.format) metrics_.EventDecoded(mapping::InputFormatName(*processed.format));
  switch (processed.fate) {
    case MessageFate::kMalformed:
      // Logged without the payload, and with contact data masked.
      spdlog::warn("{} malformed message {}@{}: {}", dead_letters_ ? "dead-lettering" : "skipping",
                   tp.ToString(), message.offset, MaskPii(processed.reason));
      ++stats_.malformed;
      metrics_.EventSkipped(oversized ? "oversized" : "malformed");
      if (!dead_letters_) {
        tracker_.Add(tp, message.offset, 0);
        return;
      }
      // Done only once the dead-letter topic has it.
      tracker_.Add(tp, message.offset, 1);
      DeadLetter(MessageRef{tp, message.offset, epochs_[tp], message.timestamp_ms},
                 std::string(message.key), std::string(message.payload),
                 {{"crmsync.reason", processed.reason}}, "malformed");
      return;
    case MessageFate::kUnmatched:
      spdlog::debug("skipping {}@{}: {}", tp.ToString(), message.offset, MaskPii(processed.reason));
      ++stats_.unmatched;
      metrics_.EventSkipped("unmatched");
      tracker_.Add(tp, message.offset, 0);
      return;
    case MessageFate::kOperations:
      break;
  }
  for (const std::string& note : processed.notes) {
    spdlog::info("{}@{}: {}", tp.ToString(), message.offset, MaskPii(note));
  }
  tracker_.Add(tp, message.offset, processed.operations.size());
  const MessageRef origin{tp, message.offset, epochs_[tp], message.timestamp_ms};
  if (dead_letters_) {
    retained_[tp][message.offset] = Retained{std::string(message.key), std::string(message.payload),
                                             processed.operations.size()};
  }
  for (mapping::Operation& op : processed.operations) {
    // A provider whose circuit is open takes nothing more from this partition.
    if (auto paused = circuit_paused_.find(op.provider); paused != circuit_paused_.end()) {
      paused->second.insert(tp);
    }
    dispatcher_.Enqueue(std::move(op), origin, now);
  }
}

void Worker::Finish(uint64_t batch_id, const std::string& provider, mapping::Action action,
                    const std::vector<providers::Outcome>& outcomes, Clock::time_point now) {
  uint64_t retried = 0;
  for (const auto& outcome : outcomes) {
    if (outcome.kind == providers::OutcomeKind::kRetry) ++retried;
  }
  if (retried > 0) {
    stats_.retried += retried;
    metrics_.Operation(provider, mapping::ActionName(action), "retried", retried);
    metrics_.Retried(provider, retried);
    spdlog::debug("{}: {} item(s) will be retried", provider, retried);
  }
  auto keep_retrying = [this](const MessageRef& ref) { return IsCurrent(ref); };
  for (const Finished& finished : dispatcher_.OnResult(batch_id, outcomes, now, keep_retrying)) {
    if (finished.kind == providers::OutcomeKind::kReject) {
      ++stats_.rejected;
      if (finished.exhausted) ++stats_.exhausted;
      metrics_.Operation(finished.provider, mapping::ActionName(finished.action),
                         finished.exhausted ? "exhausted" : "rejected", 1);
      spdlog::warn("{} {} an operation of {}@{} after {} attempt(s): {}", finished.provider,
                   finished.exhausted ? "gave up on" : "rejected", finished.origin.tp.ToString(),
                   finished.origin.offset, finished.attempts, MaskPii(finished.reason));
      if (dead_letters_ && IsCurrent(finished.origin)) {
        std::string key, value;
        auto partition = retained_.find(finished.origin.tp);
        if (partition != retained_.end()) {
          if (auto it = partition->second.find(finished.origin.offset);
              it != partition->second.end()) {
            key = it->second.key;
            value = it->second.value;
          }
        }
        Release(finished.origin);
        // The operation is finished once the dead-letter topic has it.
        std::vector<std::pair<std::string, std::string>> headers = {
            {"crmsync.provider", finished.provider},
            {"crmsync.target", finished.target},
            {"crmsync.reason", finished.reason},
            {"crmsync.http.status", std::to_string(finished.http_status)},
            {"crmsync.attempts", std::to_string(finished.attempts)}};
        if (finished.first_failure) {
          headers.emplace_back("crmsync.failed.first.ms",
                               std::to_string(WallMillis(*finished.first_failure)));
        }
        if (finished.last_failure) {
          headers.emplace_back("crmsync.failed.last.ms",
                               std::to_string(WallMillis(*finished.last_failure)));
        }
        DeadLetter(finished.origin, key, value, std::move(headers),
                   finished.exhausted ? "exhausted" : "rejected");
        continue;
      }
    } else {
      ++stats_.delivered;
      metrics_.Operation(finished.provider, mapping::ActionName(finished.action), "delivered", 1);
      if (finished.origin.timestamp_ms >= 0) {
        const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
        metrics_.DeliveryLatency(finished.provider,
                                 static_cast<double>(now_ms - finished.origin.timestamp_ms) / 1000);
      }
    }
    // A result for an earlier assignment of the partition must not count
    // towards the current one's messages.
    if (!IsCurrent(finished.origin)) continue;
    Release(finished.origin);
    tracker_.Complete(finished.origin.tp, finished.origin.offset);
  }
}

void Worker::Release(const MessageRef& origin) {
  auto partition = retained_.find(origin.tp);
  if (partition == retained_.end()) return;
  auto it = partition->second.find(origin.offset);
  if (it == partition->second.end()) return;
  if (--it->second.pending == 0) partition->second.erase(it);
}

void Worker::DeadLetter(const MessageRef& origin, const std::string& key, const std::string& value,
                        std::vector<std::pair<std::string, std::string>> headers,
                        const char* kind) {
  const auto now = std::chrono::system_clock::now();
  headers.emplace_back("crmsync.source.topic", origin.tp.topic);
  headers.emplace_back("crmsync.source.partition", std::to_string(origin.tp.partition));
  headers.emplace_back("crmsync.source.offset", std::to_string(origin.offset));
  headers.emplace_back("crmsync.dead.lettered.at.ms", std::to_string(EpochMillis(now)));
  SendDeadLetter(origin, key, value, headers, kind);
}

void Worker::SendDeadLetter(const MessageRef& origin, const std::string& key,
                            const std::string& value,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            const char* kind) {
  ++dead_letters_in_flight_;
  dead_letters_->ProduceRecord(
      config_.kafka.dead_letter_topic, key, value, headers,
      [this, origin, key, value, headers, kind](bool delivered, const std::string& error) {
        --dead_letters_in_flight_;
        if (delivered) {
          ++stats_.dead_lettered;
          metrics_.EventDeadLettered(kind);
          if (IsCurrent(origin)) tracker_.Complete(origin.tp, origin.offset);
          return;
        }
        if (destroying_) return;
        // Never committed past: the record is written again, however long the
        // dead-letter topic is unavailable.
        spdlog::error("dead-letter write for {}@{} failed ({}); retrying", origin.tp.ToString(),
                      origin.offset, error);
        SendDeadLetter(origin, key, value, headers, kind);
      });
}

void Worker::Advance(uint64_t batch_id, ActiveExchange& active, Clock::time_point now) {
  std::vector<providers::HttpRequest> round = active.exchange->NextRound();
  if (round.empty()) {
    // The exchange and the batch it points into must outlive Outcomes().
    std::vector<providers::Outcome> outcomes = active.exchange->Outcomes();
    const std::string provider = active.provider;
    const mapping::Action action = active.action;
    exchanges_.erase(batch_id);
    Finish(batch_id, provider, action, outcomes, now);
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

void Worker::SendWithinBudget(uint64_t batch_id, ActiveExchange& active, Clock::time_point now) {
  RequestBudget& budget = budgets_.at(active.provider);
  const size_t n = std::min(budget.Available(now), active.unsent.size());
  budget.Take(n);
  const auto timeout = config_.providers.at(active.provider).request_timeout;
  for (size_t i = 0; i < n; ++i) {
    auto& [index, request] = active.unsent[i];
    const auto started = Clock::now();
    metrics_.HttpInFlight(active.provider, 1);
    engine_->Submit(std::move(request), timeout,
                    [this, batch_id, index = index, started,
                     provider = active.provider](providers::HttpResponse response) {
                      metrics_.HttpInFlight(provider, -1);
                      Completion completion{
                          batch_id, index, std::move(response),
                          std::chrono::duration<double>(Clock::now() - started).count()};
                      {
                        std::lock_guard lock(completions_mutex_);
                        completions_.push_back(std::move(completion));
                      }
                      completions_cv_.notify_one();
                    });
  }
  active.unsent.erase(active.unsent.begin(), active.unsent.begin() + static_cast<ptrdiff_t>(n));
  if (active.unsent.empty()) {
    waiting_for_budget_.erase(batch_id);
  } else {
    waiting_for_budget_.insert(batch_id);
  }
}

std::optional<Clock::time_point> Worker::NextDeadline() {
  const Clock::time_point now = Clock::now();
  std::optional<Clock::time_point> next = dispatcher_.NextDeadline(
      [this, now](const std::string& provider) { return breakers_.at(provider).Blocked(now); });
  for (const auto& [name, breaker] : breakers_) {
    // Once the probe time has passed, the next batch that is due asks for it.
    auto probe = breaker.ProbeAt();
    if (probe && *probe > now && (!next || *probe < *next)) next = *probe;
  }
  for (uint64_t id : waiting_for_budget_) {
    auto it = exchanges_.find(id);
    if (it == exchanges_.end()) continue;
    RequestBudget& budget = budgets_.at(it->second.provider);
    // No slot free and none due by time: an answer to a request in flight
    // frees one, and answers wake the loop anyway.
    std::optional<Clock::time_point> at =
        budget.Available(now) > 0 ? std::optional(now) : budget.NextFree(now);
    if (at && (!next || *at < *next)) next = *at;
  }
  return next;
}

void Worker::Pump(bool flush_all) {
  if (dead_letters_) dead_letters_->Poll();
  std::vector<Completion> done;
  {
    std::lock_guard lock(completions_mutex_);
    done.swap(completions_);
  }
  const Clock::time_point now = Clock::now();
  for (Completion& completion : done) {
    auto it = exchanges_.find(completion.batch_id);
    if (it == exchanges_.end()) continue;
    ActiveExchange& active = it->second;
    metrics_.HttpRequest(active.provider, ResponseCode(completion.response), completion.seconds);
    budgets_.at(active.provider).Complete(now);
    if (breakers_.at(active.provider)
            .OnRequest(CircuitBreaker::IsFailure(completion.response), now)) {
      OnCircuitChange(active.provider, now);
    }
    if (completion.response.transport == providers::Transport::kOk &&
        completion.response.status == 429) {
      RequestBudget& budget = budgets_.at(active.provider);
      const double before = budget.Factor();
      budget.OnThrottled(now, completion.response.retry_after);
      if (budget.Factor() != before) {
        spdlog::info("{} answered 429: sending at {:.0f}% of its budget", active.provider,
                     budget.Factor() * 100);
      }
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

  auto may_send = [this, now](const std::string& provider) -> size_t {
    CircuitBreaker& breaker = breakers_.at(provider);
    const auto before = breaker.state();
    const bool allowed = breaker.AllowBatch(now);
    if (breaker.state() != before) OnCircuitChange(provider, now);
    if (!allowed) return 0;
    // A half-open circuit probes with one operation.
    return breaker.state() == CircuitBreaker::State::kHalfOpen ? 1
                                                               : std::numeric_limits<size_t>::max();
  };
  for (const OutgoingBatch& out : dispatcher_.TakeReady(now, flush_all, may_send)) {
    metrics_.BatchSent(out.provider, out.batch->items.size());
    ActiveExchange& active = exchanges_[out.id];
    active.provider = out.provider;
    active.action = out.batch->action;
    active.exchange = providers_.at(out.provider)->Start(*out.batch);
    Advance(out.id, active, now);
  }
  stats_.pending = dispatcher_.Pending();
  metrics_.SetPending(dispatcher_.Pending());
}

void Worker::WaitForCompletions(Clock::time_point until) {
  if (auto next = NextDeadline(); next && *next < until) until = *next;
  // Dead-letter acknowledgements arrive through polling, not this queue.
  if (dead_letters_in_flight_ > 0) until = std::min(until, Clock::now() + kBusyPoll);
  std::unique_lock lock(completions_mutex_);
  completions_cv_.wait_until(lock, until, [this] { return !completions_.empty(); });
}

void Worker::Drain(const std::vector<kafka::TopicPartition>& partitions,
                   Clock::time_point deadline) {
  auto outstanding = [&] {
    if (partitions.empty()) return tracker_.Outstanding();
    size_t total = 0;
    for (const auto& tp : partitions) total += tracker_.Outstanding(tp);
    return total;
  };
  Pump(/*flush_all=*/true);
  while (outstanding() > 0 && Clock::now() < deadline) {
    metrics_.Progress();
    WaitForCompletions(deadline);
    Pump(/*flush_all=*/true);
  }
  if (size_t left = outstanding(); left > 0) {
    spdlog::warn("drain deadline passed with {} message(s) unfinished; they will be replayed",
                 left);
  }
}

void Worker::StoreAndCommit() {
  auto advanced = tracker_.TakeAllCommittable();
  if (!advanced.empty()) {
    consumer_->StoreOffsets(advanced);
    for (const auto& [tp, offset] : advanced) {
      stored_[tp] = offset;
      metrics_.SetCommitted(tp.topic, tp.partition, offset);
    }
  }
  consumer_->CommitStoredAsync();
}

bool Worker::CommitNow(const std::vector<kafka::TopicPartition>& partitions) {
  for (const auto& [tp, offset] : tracker_.TakeAllCommittable()) stored_[tp] = offset;
  std::vector<std::pair<kafka::TopicPartition, int64_t>> offsets;
  for (const auto& tp : partitions) {
    if (auto it = stored_.find(tp); it != stored_.end()) {
      offsets.emplace_back(tp, it->second);
      metrics_.SetCommitted(tp.topic, tp.partition, it->second);
    }
  }
  return consumer_->CommitSync(offsets, kCommitDeadline);
}

void Worker::OnCircuitChange(const std::string& provider, Clock::time_point now) {
  const CircuitBreaker& breaker = breakers_.at(provider);
  metrics_.SetCircuitState(provider, CircuitStateValue(breaker.state()));
  switch (breaker.state()) {
    case CircuitBreaker::State::kOpen: {
      ++stats_.circuit_opened;
      auto waiting = dispatcher_.PartitionsWaitingFor(provider);
      circuit_paused_[provider] = {waiting.begin(), waiting.end()};
      spdlog::warn("{} circuit open: no requests for {} ms, {} partition(s) paused", provider,
                   breaker.OpenFor().count(), waiting.size());
      break;
    }
    case CircuitBreaker::State::kHalfOpen:
      spdlog::info("{} circuit half-open: sending a probe", provider);
      break;
    case CircuitBreaker::State::kClosed:
      circuit_paused_.erase(provider);
      spdlog::info("{} circuit closed: delivering again", provider);
      break;
  }
  UpdatePauses(now);
}

void Worker::UpdatePauses(Clock::time_point now) {
  const size_t pending = dispatcher_.Pending();
  const size_t limit = config_.worker.max_pending_operations;
  if (!backpressure_ && pending >= limit) {
    backpressure_ = true;
    spdlog::info("backpressure: {} operations pending, pausing consumption", pending);
  } else if (backpressure_ && pending <= limit / 2) {
    backpressure_ = false;
    spdlog::info("backpressure released: {} operations pending", pending);
  }
  if (now - stuck_refreshed_ >= kStuckRefresh) {
    stuck_ = dispatcher_.StuckPartitions();
    stuck_refreshed_ = now;
  }
  std::set<kafka::TopicPartition> want;
  if (backpressure_) {
    want = assigned_;
  } else {
    auto add = [&](const kafka::TopicPartition& tp) {
      if (assigned_.count(tp) != 0) want.insert(tp);
    };
    for (const auto& [provider, partitions] : circuit_paused_) {
      for (const auto& tp : partitions) add(tp);
    }
    for (const auto& tp : stuck_) add(tp);
  }
  if (want == paused_set_) return;
  std::vector<kafka::TopicPartition> pause, resume;
  std::set_difference(want.begin(), want.end(), paused_set_.begin(), paused_set_.end(),
                      std::back_inserter(pause));
  std::set_difference(paused_set_.begin(), paused_set_.end(), want.begin(), want.end(),
                      std::back_inserter(resume));
  if (!pause.empty()) consumer_->Pause(pause);
  if (!resume.empty()) consumer_->Resume(resume);
  paused_set_ = std::move(want);
}

void Worker::RefreshGauges(Clock::time_point now) {
  gauges_refreshed_ = now;
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

void Worker::UpdateLag() {
  for (const kafka::TopicPartition& tp : assigned_) {
    const std::optional<int64_t> high = consumer_->HighWatermark(tp);
    if (!high) continue;
    // The stored (committed) position; before the first store, where the
    // consumer stands.
    std::optional<int64_t> position;
    if (auto it = stored_.find(tp); it != stored_.end()) {
      position = it->second;
    } else {
      position = consumer_->Position(tp);
    }
    if (!position) continue;
    metrics_.SetConsumerLag(tp.topic, tp.partition, std::max<int64_t>(0, *high - *position));
  }
}

void Worker::OnAssigned(const std::vector<kafka::TopicPartition>& partitions) {
  for (const auto& tp : partitions) {
    tracker_.Assign(tp);
    ++epochs_[tp];
  }
  assigned_.insert(partitions.begin(), partitions.end());
  stats_.assigned_partitions += partitions.size();
  metrics_.Rebalance("assigned");
  // Joined, even when the group gave this member no partition.
  metrics_.SetGroupJoined(true);
  spdlog::info("assigned {} partition(s)", partitions.size());
}

void Worker::OnRevoking(const std::vector<kafka::TopicPartition>& partitions, bool lost) {
  metrics_.Rebalance(lost ? "lost" : "revoked");
  if (lost) {
    spdlog::warn("{} partition(s) lost; their unfinished work will be replayed by the new owner",
                 partitions.size());
  } else {
    Drain(partitions, Clock::now() + config_.worker.drain_timeout);
    CommitNow(partitions);
  }
  for (const auto& tp : partitions) {
    dispatcher_.DropPartition(tp);
    tracker_.Revoke(tp);
    retained_.erase(tp);
    ++epochs_[tp];
    stored_.erase(tp);
    assigned_.erase(tp);
    paused_set_.erase(tp);
    for (auto& [provider, paused] : circuit_paused_) paused.erase(tp);
    metrics_.RemovePartition(tp.topic, tp.partition);
  }
  stats_.assigned_partitions -= std::min<uint64_t>(stats_.assigned_partitions, partitions.size());
  stats_.pending = dispatcher_.Pending();
  spdlog::info("revoked {} partition(s)", partitions.size());
}

int Worker::Run(const std::atomic<bool>& stop) {
  kafka::ConsumerOptions options{config_.kafka.bootstrap_servers, config_.kafka.group_id,
                                 config_.kafka.topics, config_.kafka.properties};
  if (!config_.kafka.group_instance_id.empty()) {
    options.properties["group.instance.id"] = config_.kafka.group_instance_id;
  }
  options.on_offset_reset = [this](const kafka::TopicPartition& tp, const std::string&) {
    metrics_.OffsetReset(tp.topic);
  };
  consumer_ = std::make_unique<kafka::Consumer>(options, this);
  spdlog::info("consuming {} as group '{}'", fmt::join(config_.kafka.topics, ","),
               config_.kafka.group_id);

  Clock::time_point next_commit = Clock::now() + config_.worker.commit_interval;
  while (!stop.load()) {
    std::chrono::milliseconds timeout = kIdlePoll;
    if (dispatcher_.Pending() > 0 || dead_letters_in_flight_ > 0) timeout = kBusyPoll;
    if (auto next = NextDeadline()) {
      auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now());
      timeout = std::clamp(until, std::chrono::milliseconds(0), timeout);
    }
    consumer_->Poll(timeout, kMaxMessagesPerPoll, [this](const kafka::Message& message) {
      HandleMessage(message, Clock::now());
    });
    Pump(/*flush_all=*/false);
    UpdatePauses(Clock::now());
    if (Clock::now() >= next_commit) {
      StoreAndCommit();
      UpdateLag();
      next_commit = Clock::now() + config_.worker.commit_interval;
    }
    metrics_.Progress();
    metrics_.SetBrokerReachable(consumer_->BrokerReachable());
    if (const auto now = Clock::now(); now - gauges_refreshed_ >= kGaugeRefresh) {
      RefreshGauges(now);
    }
  }

  // Draining and leaving: no longer a member to route work to.
  metrics_.SetGroupJoined(false);
  spdlog::info("stopping: draining {} pending operation(s)", dispatcher_.Pending());
  const auto assignment = consumer_->Assignment();
  consumer_->Pause(assignment);  // stop fetching
  Drain({}, Clock::now() + config_.worker.drain_timeout);
  CommitNow(assignment);
  consumer_->Close();  // revokes through OnRevoking (already drained) and leaves
  spdlog::info("stopped: consumed {}, delivered {}, rejected {}, malformed {}",
               stats_.consumed.load(), stats_.delivered.load(), stats_.rejected.load(),
               stats_.malformed.load());
  return 0;
}

}  // namespace crmsync::worker
