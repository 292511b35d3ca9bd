#include "worker/worker.h"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <thread>
#include <utility>

#include "providers/registry.h"
#include "worker/process_message.h"
#include "worker/redact.h"
#include "worker/state/rocksdb_backend.h"

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
    ProviderLimits& limit = limits[name];
    limit = ProviderLimits{provider.max_batch, provider.linger, provider.max_in_flight,
                           provider.coalesce_window, PolicyFrom(provider.retry)};
    // Without a request budget a partial batch costs nothing: idle request
    // slots take what is ready instead of waiting out the linger.
    limit.send_when_idle =
        provider.rate_limits.value_or(providers::DocumentedRateLimits(name)).empty();
  }
  return limits;
}

std::map<std::string, std::unique_ptr<providers::Provider>> ProvidersFrom(
    const mapping::Config& config) {
  std::map<std::string, std::unique_ptr<providers::Provider>> out;
  for (const auto& [name, provider_config] : config.providers) {
    out[name] = providers::CreateProvider(provider_config);
  }
  return out;
}

std::unique_ptr<HttpEngine> EngineFor(const mapping::Config& config) {
  HttpEngine::Options options;
  int connections = 0;
  for (const auto& [name, provider_config] : config.providers) {
    connections = std::max(connections, provider_config.max_in_flight);
  }
  options.max_host_connections = std::max(connections, 1);
  options.ca_bundle = config.worker.ca_bundle;
  return std::make_unique<HttpEngine>(options);
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

// "topic/0, topic/3" for log lines, at most a dozen named.
std::string Named(const std::vector<kafka::TopicPartition>& partitions) {
  std::string out;
  size_t shown = 0;
  for (const auto& tp : partitions) {
    if (shown == 12) {
      out += ", ... " + std::to_string(partitions.size() - shown) + " more";
      break;
    }
    if (shown++ > 0) out += ", ";
    out += tp.ToString();
  }
  return out;
}

constexpr size_t kMaxMessagesPerPoll = 1000;
constexpr std::chrono::milliseconds kIdlePoll{100};
constexpr std::chrono::milliseconds kBusyPoll{5};
constexpr std::chrono::milliseconds kCommitDeadline{5000};
constexpr std::chrono::milliseconds kCloseDeadline{5000};
constexpr std::chrono::milliseconds kStuckRefresh{200};
constexpr std::chrono::milliseconds kStoreInterval{100};
// How often the circuit-state and rate-limit-token gauges are refreshed.
constexpr std::chrono::milliseconds kGaugeRefresh{100};
// The commit metadata of a partition whose owner gave it up with all its
// work done: its next owner need not wait for requests still in flight.
constexpr std::string_view kHandoverMark = "crmsync:handover:drained";

std::chrono::milliseconds TakeoverFence(const mapping::Config& config) {
  if (config.worker.takeover_fence) return *config.worker.takeover_fence;
  std::chrono::milliseconds longest{0};
  for (const auto& [name, provider] : config.providers) {
    longest = std::max(longest, provider.request_timeout);
  }
  return longest;
}

}  // namespace

Worker::Worker(mapping::Config config, Metrics& metrics)
    : config_(std::move(config)),
      metrics_(metrics),
      dispatcher_(LimitsFrom(config_), PolicyFrom(config_.worker.retry)),
      delivery_(config_, metrics_, ProvidersFrom(config_), EngineFor(config_)),
      takeover_fence_(TakeoverFence(config_)) {
  if (!config_.kafka.dead_letter_topic.empty()) {
    // The user's passthrough properties carry the cluster's security settings.
    dead_letters_ = std::make_unique<DeadLetterWriter>(
        config_.kafka.dead_letter_topic, config_.kafka.bootstrap_servers, config_.kafka.properties);
  }
  if (config_.state.enabled) {
    // Contact state: the changelog topics exist (or are created) before the
    // group is joined.
    state_ = std::make_unique<ContactStateStore>(config_, MakeStateBackend(config_.state));
    state_->EnsureTopics();
  }
  metrics_.Initialize(config_);
  delivery_.RefreshGauges(Clock::now());
  metrics_.SetConfigLoaded(true);
}

Worker::~Worker() {
  // Teardown order: nothing is sent once delivery stops, then the consumer
  // leaves (its revoke callback only withdraws), then the dead-letter
  // producer flushes what it still holds.
  stopping_ = true;
  delivery_.Stop();
  consumer_.reset();
  dead_letters_.reset();
  state_.reset();
}

bool Worker::IsCurrent(const MessageRef& ref) const {
  auto it = epochs_.find(ref.tp);
  return it != epochs_.end() && it->second == ref.epoch && tracker_.IsAssigned(ref.tp);
}

void Worker::HandleMessage(const kafka::Message& message, Clock::time_point now) {
  const kafka::TopicPartition tp{kafka::TopicName(message.topic), message.partition};
  if (!fences_.empty()) {
    // Taken before its pause did: processed when the fence ends.
    if (auto fence = fences_.find(tp); fence != fences_.end()) {
      fence->second.held.push_back(HeldRecord{message.offset, std::string(message.key),
                                              std::string(message.payload), message.null_payload,
                                              message.timestamp_ms});
      return;
    }
  }
  ++stats_.consumed;
  if (consumed_tally_.empty() || consumed_tally_.back().first != message.topic) {
    auto it = std::find_if(consumed_tally_.begin(), consumed_tally_.end(),
                           [&](const auto& entry) { return entry.first == message.topic; });
    if (it == consumed_tally_.end()) {
      consumed_tally_.emplace_back(std::string(message.topic), 0);
    } else {
      std::iter_swap(it, consumed_tally_.end() - 1);
    }
  }
  ++consumed_tally_.back().second;
  // While stopping, or for a partition no longer ours, a message is left
  // for whoever consumes it next (it was never added, so never committed).
  if (stopping_ || !tracker_.IsAssigned(tp)) return;
  if (tracker_.AlreadyAdded(tp, message.offset)) {
    spdlog::debug("{}@{} delivered again; already being processed", tp.ToString(), message.offset);
    return;
  }

  std::vector<StateContext::Change> changes;
  const bool oversized = message.payload.size() > config_.worker.max_message_bytes;
  // Built where it is returned: no empty message first and a move into it.
  ProcessedMessage processed = [&] {
    if (oversized) {
      ++stats_.oversized;
      ProcessedMessage refused;
      refused.fate = MessageFate::kMalformed;
      refused.reason = "message of " + std::to_string(message.payload.size()) +
                       " bytes exceeds worker.maxMessageBytes (" +
                       std::to_string(config_.worker.max_message_bytes) + ")";
      return refused;
    }
    if (!state_) return ProcessMessage(message, config_.rules);
    // Contact state: events are merged onto the partition's states; the
    // changes are applied below, once the message is registered.
    StateContext context;
    context.lookup = [this, &tp](const std::string& key) { return state_->Get(tp, key); };
    if (consumer_) context.replay_floor = consumer_->DurableCommit(tp).value_or(-1);
    ProcessedMessage merged = ProcessMessage(message, config_.rules, context);
    changes = std::move(context.changes);
    return merged;
  }();
  if (processed.format) ++decoded_tally_.at(static_cast<size_t>(*processed.format));
  // Each state change is one more completion the message waits for: its
  // offset is not committable before the changelog has the change.
  const size_t state_writes = changes.size();
  const MessageRef origin{tp, message.offset, epochs_[tp], message.timestamp_ms};
  switch (processed.fate) {
    case MessageFate::kSkipped: {
      // A contact without its identity yet is routine (HubSpot creations
      // carry no properties); one never seen is worth a line.
      spdlog::log(processed.skip_label == "incomplete" ? spdlog::level::debug : spdlog::level::info,
                  "{} {}@{}: {}", config_.state.dead_letter_skipped ? "dead-lettering" : "skipping",
                  tp.ToString(), message.offset, MaskPii(processed.reason));
      ++stats_.skipped;
      metrics_.EventSkipped(processed.skip_label);
      const bool dead_letter = dead_letters_ && config_.state.dead_letter_skipped;
      tracker_.Add(tp, message.offset, state_writes + (dead_letter ? 1 : 0));
      ApplyStateChanges(origin, changes);
      if (dead_letter) {
        DeadLetter(origin, message.key, message.payload, {{"crmsync.reason", processed.reason}},
                   "skipped");
      }
      return;
    }
    case MessageFate::kMalformed:
      // Logged without the payload, and with contact data masked.
      spdlog::warn("{} malformed message {}@{}: {}", dead_letters_ ? "dead-lettering" : "skipping",
                   tp.ToString(), message.offset, MaskPii(processed.reason));
      ++stats_.malformed;
      metrics_.EventSkipped(oversized ? "oversized" : "malformed");
      if (!dead_letters_) {
        tracker_.Add(tp, message.offset, state_writes);
        ApplyStateChanges(origin, changes);
        return;
      }
      // Done only once the dead-letter topic has it.
      tracker_.Add(tp, message.offset, state_writes + 1);
      ApplyStateChanges(origin, changes);
      DeadLetter(origin, message.key, message.payload, {{"crmsync.reason", processed.reason}},
                 "malformed");
      return;
    case MessageFate::kUnmatched:
      spdlog::debug("skipping {}@{}: {}", tp.ToString(), message.offset, MaskPii(processed.reason));
      ++stats_.unmatched;
      metrics_.EventSkipped("unmatched");
      tracker_.Add(tp, message.offset, state_writes);
      ApplyStateChanges(origin, changes);
      return;
    case MessageFate::kOperations:
      break;
  }
  for (const std::string& note : processed.notes) {
    spdlog::info("{}@{}: {}", tp.ToString(), message.offset, MaskPii(note));
  }
  // Contact state first: the delivered projection compares against the
  // contact's state as this message leaves it.
  ApplyStateChanges(origin, changes);
  if (state_ && config_.state.suppress_unchanged) SuppressUnchanged(origin, processed.operations);
  tracker_.Add(tp, message.offset, processed.operations.size() + state_writes);
  if (dead_letters_ && !processed.operations.empty()) {
    retained_[tp][message.offset] = Retained{std::string(message.key), std::string(message.payload),
                                             processed.operations.size()};
    retained_bytes_ += message.key.size() + message.payload.size();
  }
  for (mapping::Operation& op : processed.operations) {
    // A provider whose circuit is open takes nothing more from this partition.
    if (auto paused = circuit_paused_.find(op.provider); paused != circuit_paused_.end()) {
      paused->second.insert(tp);
    }
    dispatcher_.Enqueue(std::move(op), origin, now);
  }
}

void Worker::Finish(const DeliveredBatch& delivered, Clock::time_point now) {
  const std::string& provider = delivered.provider;
  const mapping::Action action = delivered.action;
  uint64_t retried = 0;
  for (const auto& outcome : delivered.outcomes) {
    if (outcome.kind == providers::OutcomeKind::kRetry && !outcome.withdrawn) ++retried;
  }
  if (retried > 0) {
    stats_.retried += retried;
    metrics_.Operation(provider, mapping::ActionName(action), "retried", retried);
    metrics_.Retried(provider, retried);
    spdlog::debug("{}: {} item(s) will be retried", provider, retried);
  }
  auto keep_retrying = [this](const MessageRef& ref) { return IsCurrent(ref); };
  // One batch's deliveries share provider and action: counted once.
  uint64_t delivered_ops = 0;
  std::vector<double> latencies;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  for (const Finished& finished :
       dispatcher_.OnResult(delivered.id, delivered.outcomes, now, keep_retrying)) {
    if (state_ && IsCurrent(finished.origin)) RecordProjection(finished);
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
            {"crmsync.provider", std::string(finished.provider)},
            {"crmsync.target", std::string(finished.target)},
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
      ++delivered_ops;
      if (finished.origin.timestamp_ms >= 0) {
        latencies.push_back(static_cast<double>(now_ms - finished.origin.timestamp_ms) / 1000);
      }
    }
    // A result for an earlier assignment of the partition must not count
    // towards the current one's messages.
    if (!IsCurrent(finished.origin)) continue;
    Release(finished.origin);
    tracker_.Complete(finished.origin.tp, finished.origin.offset);
  }
  if (delivered_ops > 0) {
    metrics_.Operation(provider, mapping::ActionName(action), "delivered", delivered_ops);
  }
  metrics_.DeliveryLatency(provider, latencies);
}

void Worker::FlushTallies() {
  for (auto& [topic, n] : consumed_tally_) {
    if (n > 0) metrics_.EventConsumed(topic, n);
    n = 0;
  }
  for (size_t i = 0; i < decoded_tally_.size(); ++i) {
    if (decoded_tally_[i] == 0) continue;
    metrics_.EventDecoded(mapping::InputFormatName(static_cast<mapping::InputFormat>(i)),
                          decoded_tally_[i]);
    decoded_tally_[i] = 0;
  }
}

void Worker::Release(const MessageRef& origin) {
  auto partition = retained_.find(origin.tp);
  if (partition == retained_.end()) return;
  auto it = partition->second.find(origin.offset);
  if (it == partition->second.end()) return;
  if (--it->second.pending == 0) {
    retained_bytes_ -= std::min(retained_bytes_, it->second.key.size() + it->second.value.size());
    partition->second.erase(it);
  }
}

void Worker::DeadLetter(const MessageRef& origin, std::string_view key, std::string_view value,
                        std::vector<std::pair<std::string, std::string>> headers,
                        const char* kind) {
  const auto now = std::chrono::system_clock::now();
  headers.emplace_back("crmsync.source.topic", origin.tp.topic);
  headers.emplace_back("crmsync.source.partition", std::to_string(origin.tp.partition));
  headers.emplace_back("crmsync.source.offset", std::to_string(origin.offset));
  headers.emplace_back("crmsync.dead.lettered.at.ms", std::to_string(EpochMillis(now)));
  dead_letters_->Write(origin, key, value, std::move(headers), kind);
}

std::optional<Clock::time_point> Worker::NextDeadline() {
  const Clock::time_point now = Clock::now();
  std::optional<Clock::time_point> next = dispatcher_.NextDeadline(
      [this, now](const std::string& provider) { return delivery_.Blocked(provider, now); });
  auto consider = [&next](std::optional<Clock::time_point> at) {
    if (at && (!next || *at < *next)) next = at;
  };
  consider(delivery_.NextDeadline(now));
  if (dead_letters_) consider(dead_letters_->NextRetry());
  if (state_) consider(state_->NextRetry());
  for (const auto& [tp, fence] : fences_) consider(fence.until);
  return next;
}

void Worker::Pump(bool flush_all) {
  Clock::time_point now = Clock::now();
  if (dead_letters_) {
    for (const DeadLetterWriter::Written& written : dead_letters_->Poll(now)) {
      ++stats_.dead_lettered;
      metrics_.EventDeadLettered(written.kind);
      if (IsCurrent(written.origin)) tracker_.Complete(written.origin.tp, written.origin.offset);
    }
  }
  if (state_) {
    // Changelog acknowledgements: a message's state writes are done.
    for (const MessageRef& written : state_->Poll(now)) {
      if (IsCurrent(written)) tracker_.Complete(written.tp, written.offset);
    }
  }
  for (const DeliveredBatch& delivered : delivery_.Pump(now)) Finish(delivered, now);
  for (const std::string& provider : delivery_.TakeCircuitChanges()) {
    OnCircuitChange(provider, now);
  }
  auto may_send = [this, now](const std::string& provider) {
    const size_t allowed = delivery_.MaySend(provider, now);
    for (const std::string& changed : delivery_.TakeCircuitChanges()) {
      OnCircuitChange(changed, now);
    }
    return allowed;
  };
  for (const OutgoingBatch& out : dispatcher_.TakeReady(now, flush_all, may_send)) {
    metrics_.BatchSent(out.provider, out.batch->items.size());
    delivery_.Start(out, now);
  }
  // A batch may end without a request (refused locally): apply it now.
  for (const DeliveredBatch& delivered : delivery_.TakeFinished()) Finish(delivered, now);
  for (const std::string& provider : delivery_.TakeCircuitChanges()) {
    OnCircuitChange(provider, now);
  }
  stats_.pending = dispatcher_.Pending();
  metrics_.SetPending(dispatcher_.Pending());
}

void Worker::WaitForCompletions(Clock::time_point until) {
  if (auto next = NextDeadline(); next && *next < until) until = *next;
  // Dead-letter acknowledgements arrive through polling, not this queue.
  if ((dead_letters_ && dead_letters_->InFlight() > 0) || (state_ && state_->InFlight() > 0)) {
    until = std::min(until, Clock::now() + kBusyPoll);
  }
  delivery_.WaitForAnswers(until);
}

void Worker::Drain(const std::vector<kafka::TopicPartition>& partitions, Clock::time_point deadline,
                   bool serve_consumer) {
  auto outstanding = [&] {
    size_t total = 0;
    for (const auto& tp : partitions) total += tracker_.Outstanding(tp);
    return total;
  };
  for (const auto& tp : partitions) delivery_.Revoking(tp, deadline);
  Pump(/*flush_all=*/true);
  while (outstanding() > 0 && Clock::now() < deadline) {
    metrics_.Progress();
    if (serve_consumer) {
      // Keeps the member in the group (and serves a rebalance, which only
      // withdraws while stopping); HandleMessage ignores what it hands out.
      consumer_->Poll(
          std::chrono::milliseconds(0), kMaxMessagesPerPoll,
          [this](const kafka::Message& message) { HandleMessage(message, Clock::now()); });
      FlushTallies();
    }
    WaitForCompletions(std::min(deadline, Clock::now() + kIdlePoll));
    Pump(/*flush_all=*/true);
  }
  if (size_t left = outstanding(); left > 0) {
    spdlog::warn("drain deadline passed with {} message(s) unfinished; they will be replayed",
                 left);
  }
}

void Worker::StoreCommittable() {
  auto advanced = tracker_.TakeAllCommittable();
  if (advanced.empty()) return;
  consumer_->StoreOffsets(advanced);
  for (const auto& [tp, offset] : advanced) {
    stored_[tp] = offset;
    committed_[tp] = offset;
    metrics_.SetCommitted(tp.topic, tp.partition, offset);
  }
}

bool Worker::CommitNow(const std::set<kafka::TopicPartition>& handed_over) {
  StoreCommittable();
  // Every owned partition, not only those being revoked: the ones kept
  // would otherwise stay behind until the next timer commit.
  std::vector<kafka::CommittedOffset> offsets;
  for (const auto& [tp, offset] : stored_) {
    offsets.push_back({tp, offset, handed_over.contains(tp) ? std::string(kHandoverMark) : ""});
  }
  // A partition handed over without progress of its own keeps the group's
  // offset, now with the mark.
  for (const auto& tp : handed_over) {
    if (stored_.contains(tp)) continue;
    if (auto it = committed_.find(tp); it != committed_.end()) {
      offsets.push_back({tp, it->second, std::string(kHandoverMark)});
    }
  }
  return consumer_->CommitSync(offsets, kCommitDeadline);
}

std::set<kafka::TopicPartition> Worker::HandedOver(
    const std::vector<kafka::TopicPartition>& partitions) const {
  std::set<kafka::TopicPartition> out;
  for (const auto& tp : partitions) {
    if (!fences_.contains(tp) && tracker_.Outstanding(tp) == 0) out.insert(tp);
  }
  return out;
}

void Worker::TakeOver(const std::vector<kafka::TopicPartition>& partitions, Clock::time_point now) {
  if (takeover_fence_.count() == 0 || partitions.empty()) return;
  const auto committed = consumer_->Committed(partitions, kCommitDeadline);
  if (!committed) {
    spdlog::warn(
        "the group coordinator did not say what was committed for {} assigned partition(s); "
        "their work waits as after a crash",
        partitions.size());
  }
  // What this member commits now, before it can have a request in flight
  // for them: a crash from then on must not look like a handover, nor like
  // a partition no owner ever had.
  std::vector<kafka::CommittedOffset> claims;
  std::vector<kafka::TopicPartition> fenced;
  size_t drained = 0, uncommitted = 0;
  const auto starts_deadline = std::chrono::steady_clock::now() + kCommitDeadline;
  for (const auto& tp : partitions) {
    // Without an answer nothing is known of the previous owner.
    if (!committed) {
      fenced.push_back(tp);
      continue;
    }
    auto it = std::find_if(committed->begin(), committed->end(),
                           [&](const kafka::CommittedOffset& c) { return c.tp == tp; });
    if (it == committed->end()) {
      // No owner has finished a message of it yet. The claim is the offset
      // it starts from, the same as no commit at all.
      // One deadline for all of them: the rebalance callback waits for these.
      const auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     starts_deadline - std::chrono::steady_clock::now()),
                                 std::chrono::milliseconds(0));
      if (const std::optional<int64_t> start = consumer_->StartOffset(tp, left)) {
        claims.push_back({tp, *start, ""});
        ++uncommitted;
      } else {
        spdlog::warn(
            "{}: no owner has committed it, but its leader did not say where it starts; its work "
            "waits as after a crash",
            tp.ToString());
        fenced.push_back(tp);
      }
      continue;
    }
    committed_[tp] = it->offset;
    if (it->metadata == kHandoverMark) {
      claims.push_back({tp, it->offset, ""});  // clears the mark
      ++drained;
    } else {
      fenced.push_back(tp);
    }
  }
  if (!claims.empty() && !consumer_->CommitSync(claims, kCommitDeadline)) {
    // Their work waits as after a crash; the claim is tried again at its end.
    for (const auto& claim : claims) {
      fenced.push_back(claim.tp);
      fences_[claim.tp].claim = claim.offset;
    }
    drained = uncommitted = 0;
  }
  metrics_.PartitionTakenOver("drained", drained);
  metrics_.PartitionTakenOver("uncommitted", uncommitted);
  metrics_.PartitionTakenOver("fenced", fenced.size());
  if (fenced.empty()) return;
  for (const auto& tp : fenced) fences_[tp].until = now + takeover_fence_;
  std::vector<kafka::TopicPartition> refused = consumer_->Pause(fenced);
  for (const auto& tp : fenced) {
    if (std::find(refused.begin(), refused.end(), tp) == refused.end()) paused_set_.insert(tp);
  }
  spdlog::info(
      "{} partition(s) taken over without a handover from their previous owner ({}): their work "
      "waits {} ms, until requests that owner may still have in flight are answered or timed out",
      fenced.size(), Named(fenced), takeover_fence_.count());
}

void Worker::ReleaseFences(Clock::time_point now) {
  for (auto it = fences_.begin(); it != fences_.end();) {
    if (now < it->second.until) {
      ++it;
      continue;
    }
    const kafka::TopicPartition tp = it->first;
    Fence fence = std::move(it->second);
    it = fences_.erase(it);
    if (fence.claim &&
        !consumer_->CommitSync({kafka::CommittedOffset{tp, *fence.claim, ""}}, kCommitDeadline)) {
      spdlog::warn(
          "{}: could not commit this member's claim; a crash before its first commit would not "
          "make its next owner wait",
          tp.ToString());
    }
    spdlog::info("{}: takeover wait over, {} held message(s) go first", tp.ToString(),
                 fence.held.size());
    for (const HeldRecord& r : fence.held) {
      HandleMessage(kafka::Message{tp.topic, tp.partition, r.offset, r.key, r.payload,
                                   r.null_payload, r.timestamp_ms},
                    now);
    }
  }
}

void Worker::Disown(const std::vector<kafka::TopicPartition>& partitions) {
  delivery_.Withdraw(partitions);
  for (const auto& tp : partitions) {
    dispatcher_.DropPartition(tp);
    if (dead_letters_) dead_letters_->DropPartition(tp);
    // Contact state: the partition's states go with it; its next owner
    // restores them from the changelog.
    if (state_) state_->Drop(tp);
    projections_.erase(tp);
    unfinished_targets_.erase(tp);
    tracker_.Revoke(tp);
    if (auto it = retained_.find(tp); it != retained_.end()) {
      for (const auto& [offset, record] : it->second) {
        retained_bytes_ -= std::min(retained_bytes_, record.key.size() + record.value.size());
      }
      retained_.erase(it);
    }
    ++epochs_[tp];
    fences_.erase(tp);
    stored_.erase(tp);
    committed_.erase(tp);
    assigned_.erase(tp);
    paused_set_.erase(tp);
    for (auto& [provider, paused] : circuit_paused_) paused.erase(tp);
    metrics_.RemovePartition(tp.topic, tp.partition);
  }
  // Withdrawn exchanges hand their other partitions' items back now.
  Pump(/*flush_all=*/false);
  stats_.assigned_partitions -= std::min<uint64_t>(stats_.assigned_partitions, partitions.size());
  stats_.pending = dispatcher_.Pending();
}

void Worker::OnCircuitChange(const std::string& provider, Clock::time_point now) {
  const CircuitBreaker& breaker = delivery_.Breaker(provider);
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
  const size_t messages = tracker_.Outstanding();
  stats_.outstanding_messages = messages;
  if (messages > stats_.max_outstanding_messages) stats_.max_outstanding_messages = messages;
  const auto& limits = config_.worker;
  const bool over = pending >= limits.max_pending_operations ||
                    messages >= limits.max_pending_messages ||
                    retained_bytes_ >= limits.max_retained_bytes;
  const bool under = pending <= limits.max_pending_operations / 2 &&
                     messages <= limits.max_pending_messages / 2 &&
                     retained_bytes_ <= limits.max_retained_bytes / 2;
  if (!backpressure_ && over) {
    backpressure_ = true;
    spdlog::info(
        "backpressure: {} operation(s), {} message(s) and {} retained byte(s) pending, pausing "
        "consumption",
        pending, messages, retained_bytes_);
  } else if (backpressure_ && under) {
    backpressure_ = false;
    spdlog::info("backpressure released: {} operation(s), {} message(s) pending", pending,
                 messages);
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
    for (const auto& [tp, fence] : fences_) add(tp);
  }
  if (want == paused_set_) return;
  std::vector<kafka::TopicPartition> pause, resume;
  std::set_difference(want.begin(), want.end(), paused_set_.begin(), paused_set_.end(),
                      std::back_inserter(pause));
  std::set_difference(paused_set_.begin(), paused_set_.end(), want.begin(), want.end(),
                      std::back_inserter(resume));
  // A partition librdkafka refused to pause or resume keeps its previous
  // state here, so that the next update tries again.
  for (const auto& tp : consumer_->Pause(pause)) want.erase(tp);
  for (const auto& tp : consumer_->Resume(resume)) want.insert(tp);
  paused_set_ = std::move(want);
}

void Worker::UpdateLag() {
  // Until this member has committed a partition, the group's offset is the
  // one its previous owner committed: ask the coordinator once.
  std::vector<kafka::TopicPartition> unknown;
  for (const auto& tp : assigned_) {
    if (committed_.count(tp) == 0) unknown.push_back(tp);
  }
  if (!unknown.empty()) {
    if (auto committed = consumer_->Committed(unknown, std::chrono::milliseconds(500))) {
      for (const kafka::CommittedOffset& c : *committed) committed_[c.tp] = c.offset;
    }
  }
  for (const kafka::TopicPartition& tp : assigned_) {
    const std::optional<int64_t> high = consumer_->HighWatermark(tp);
    if (!high) continue;
    auto it = committed_.find(tp);
    // A group with no committed offset starts from the log start (earliest).
    const std::optional<int64_t> from =
        it != committed_.end() ? std::optional(it->second) : consumer_->LowWatermark(tp);
    if (!from) continue;
    metrics_.SetConsumerLag(tp.topic, tp.partition, std::max<int64_t>(0, *high - *from));
  }
}

void Worker::OnAssigned(const std::vector<kafka::TopicPartition>& partitions) {
  for (const auto& tp : partitions) {
    // Contact state is restored before the partition's first message is
    // handed out (messages arrive only after this callback returns). A
    // member that is stopping processes no message: an assignment that
    // finishes its first rebalance while it closes needs no state.
    if (state_ && !stopping_) RestoreState(tp);
    tracker_.Assign(tp);
    ++epochs_[tp];
  }
  assigned_.insert(partitions.begin(), partitions.end());
  stats_.assigned_partitions += partitions.size();
  metrics_.Rebalance("assigned");
  // Joined, even when the group gave this member no partition.
  if (!stopping_) metrics_.SetGroupJoined(true);
  spdlog::info("assigned {} partition(s): {}", partitions.size(), Named(partitions));
  if (!stopping_) TakeOver(partitions, Clock::now());
  if (observer_) {
    observer_(OwnershipChange{OwnershipChange::Kind::kAssigned, partitions, Clock::now()});
  }
}

void Worker::RestoreState(const kafka::TopicPartition& tp) {
  for (int attempt = 1;; ++attempt) {
    try {
      const PartitionRestore restored = state_->Restore(tp);
      stats_.restored_contacts += restored.contacts;
      metrics_.StateRestored(restored.stats.records, restored.stats.bytes,
                             static_cast<double>(restored.stats.took.count()) / 1000);
      spdlog::info("restored the state of {}: {} contact(s) from {} record(s) ({} bytes) in {} ms",
                   tp.ToString(), restored.contacts, restored.stats.records, restored.stats.bytes,
                   restored.stats.took.count());
      return;
    } catch (const std::exception& e) {
      // Without its state the partition cannot be processed correctly, and
      // messages are handed out only after this callback: keep trying.
      spdlog::error("restoring the state of {} failed (attempt {}): {}; retrying", tp.ToString(),
                    attempt, e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5000, 250 * attempt)));
    }
  }
}

void Worker::ApplyStateChanges(const MessageRef& origin,
                               std::vector<StateContext::Change>& changes) {
  for (StateContext::Change& change : changes) {
    state_->Apply(origin.tp, change.key, std::move(change.state), origin);
  }
}

namespace {

std::string TargetOf(const std::string& provider, const std::string& target) {
  return provider + "/" + target;
}

// The provider confirmed, at `target`, this message or a later one of the
// contact: a replay of it (after a crash, a lost partition or a drain that
// ran out of time) is already done there. The contact's replayed messages
// come in offset order, so those skipped are always a prefix of them and
// nothing older is sent after a newer one was skipped.
bool AlreadyDone(const mapping::ContactState& state, const std::string& target, int64_t offset) {
  auto at = state.delivered_at.find(target);
  return at != state.delivered_at.end() && offset <= at->second;
}

}  // namespace

void Worker::SuppressUnchanged(const MessageRef& origin,
                               std::vector<mapping::Operation>& operations) {
  auto& unfinished = unfinished_targets_[origin.tp];
  std::vector<Projection> projections;
  std::vector<mapping::Operation> kept;
  kept.reserve(operations.size());
  for (mapping::Operation& op : operations) {
    const std::string target = TargetOf(op.provider, op.target);
    const uint64_t hash = mapping::StableHash(mapping::OperationJson(op));
    const std::string line = op.contact_key + '\n' + target;
    // A whole-list overwrite depends on the batch it travels in, never on
    // one contact: it is always sent.
    if (op.action != mapping::Action::kOverwrite && unfinished[line] == 0) {
      if (auto state = state_->Get(origin.tp, op.contact_key)) {
        auto delivered = state->delivered.find(target);
        if (delivered != state->delivered.end() && delivered->second == hash) {
          ++stats_.suppressed;
          metrics_.OperationSuppressed(op.provider);
          spdlog::debug("{}@{}: {} already has this operation of the contact; not sent",
                        origin.tp.ToString(), origin.offset, target);
          continue;
        }
        if (AlreadyDone(*state, target, origin.offset)) {
          ++stats_.suppressed;
          ++stats_.replays_skipped;
          metrics_.OperationSuppressed(op.provider);
          spdlog::debug("{}@{}: replayed; {} confirmed this or a later message of the contact",
                        origin.tp.ToString(), origin.offset, target);
          continue;
        }
      }
    }
    ++unfinished[line];
    auto it = std::find_if(projections.begin(), projections.end(), [&](const Projection& p) {
      return p.provider == op.provider && p.target == op.target;
    });
    if (it == projections.end()) {
      projections.push_back(Projection{op.provider, op.target, {}, 0});
      it = std::prev(projections.end());
    }
    it->contacts.emplace_back(op.contact_key, hash);
    ++it->remaining;
    kept.push_back(std::move(op));
  }
  operations = std::move(kept);
  if (!projections.empty()) projections_[origin.tp][origin.offset] = std::move(projections);
}

void Worker::RecordProjection(const Finished& finished) {
  auto partition = projections_.find(finished.origin.tp);
  if (partition == projections_.end()) return;
  auto message = partition->second.find(finished.origin.offset);
  if (message == partition->second.end()) return;
  auto it = std::find_if(message->second.begin(), message->second.end(), [&](const Projection& p) {
    return p.provider == finished.provider && p.target == finished.target;
  });
  if (it == message->second.end() || it->remaining == 0) return;
  if (--it->remaining > 0) return;
  const std::string target = TargetOf(it->provider, it->target);
  auto& unfinished = unfinished_targets_[finished.origin.tp];
  for (const auto& [contact, hash] : it->contacts) {
    const std::string line = contact + '\n' + target;
    if (auto count = unfinished.find(line); count != unfinished.end() && --count->second == 0) {
      unfinished.erase(count);
    }
  }
  // One contact on this target: the outcome is that contact's. With several
  // (a batch message), which one an outcome belongs to is not known, so
  // none of them is recorded as delivered.
  if (it->contacts.size() == 1) {
    const auto& [contact, hash] = it->contacts.front();
    if (auto state = state_->Get(finished.origin.tp, contact)) {
      const bool delivered = finished.kind != providers::OutcomeKind::kReject;
      auto known = state->delivered.find(target);
      auto at = state->delivered_at.find(target);
      const bool unchanged =
          delivered ? known != state->delivered.end() && known->second == hash &&
                          at != state->delivered_at.end() && at->second >= finished.origin.offset
                    : known == state->delivered.end() && at == state->delivered_at.end();
      if (!unchanged) {
        if (delivered) {
          state->delivered[target] = hash;
          int64_t& done_at = state->delivered_at[target];
          done_at = std::max(done_at, finished.origin.offset);
        } else {
          state->delivered.erase(target);
          state->delivered_at.erase(target);
        }
        // Not tied to the message: a lost projection only costs a resend.
        state_->Apply(finished.origin.tp, contact, std::move(state), std::nullopt);
      }
    }
  }
  message->second.erase(it);
  if (message->second.empty()) partition->second.erase(message);
}

void Worker::OnRevoking(const std::vector<kafka::TopicPartition>& partitions, bool lost) {
  metrics_.Rebalance(lost ? "lost" : "revoked");
  ++(lost ? stats_.losses : stats_.revokes);
  if (lost) {
    spdlog::warn(
        "{} partition(s) lost ({}); their unfinished work is withdrawn and will be replayed "
        "by the new owner",
        partitions.size(), Named(partitions));
  } else if (stopping_) {
    // The shutdown drain has run (or is running): leaving withdraws.
    StoreCommittable();
  } else {
    Drain(partitions, Clock::now() + config_.worker.drain_timeout, /*serve_consumer=*/false);
    CommitNow(HandedOver(partitions));
  }
  Disown(partitions);
  spdlog::info("revoked {} partition(s): {}", partitions.size(), Named(partitions));
  if (observer_) {
    observer_(OwnershipChange{lost ? OwnershipChange::Kind::kLost : OwnershipChange::Kind::kRevoked,
                              partitions, Clock::now()});
  }
}

int Worker::Run(const std::atomic<bool>& stop) {
  kafka::ConsumerOptions options{config_.kafka.bootstrap_servers, config_.kafka.group_id,
                                 config_.kafka.topics, config_.kafka.properties,
                                 config_.worker.commit_interval};
  if (!config_.kafka.group_instance_id.empty()) {
    options.properties["group.instance.id"] = config_.kafka.group_instance_id;
  }
  options.on_offset_reset = [this](const kafka::TopicPartition& tp, const std::string&) {
    metrics_.OffsetReset(tp.topic);
  };
  consumer_ = std::make_unique<kafka::Consumer>(options, this);
  spdlog::info("consuming {} as group '{}'", fmt::join(config_.kafka.topics, ","),
               config_.kafka.group_id);

  Clock::time_point next_store = Clock::now() + kStoreInterval;
  Clock::time_point next_lag = Clock::now() + config_.worker.commit_interval;
  while (!stop.load()) {
    std::chrono::milliseconds timeout = kIdlePoll;
    if (dispatcher_.Pending() > 0 || (dead_letters_ && dead_letters_->InFlight() > 0) ||
        (state_ && state_->InFlight() > 0)) {
      timeout = kBusyPoll;
    }
    if (auto next = NextDeadline()) {
      auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now());
      timeout = std::clamp(until, std::chrono::milliseconds(0), timeout);
    }
    if (!fences_.empty()) ReleaseFences(Clock::now());
    consumer_->Poll(timeout, kMaxMessagesPerPoll, [this](const kafka::Message& message) {
      HandleMessage(message, Clock::now());
    });
    FlushTallies();
    Pump(/*flush_all=*/false);
    UpdatePauses(Clock::now());
    if (const auto now = Clock::now(); now >= next_store) {
      StoreCommittable();
      next_store = now + kStoreInterval;
    }
    if (const auto now = Clock::now(); now >= next_lag) {
      UpdateLag();
      next_lag = Clock::now() + config_.worker.commit_interval;
    }
    metrics_.Progress();
    metrics_.SetBrokerReachable(consumer_->BrokerReachable());
    if (const auto now = Clock::now(); now - gauges_refreshed_ >= kGaugeRefresh) {
      delivery_.RefreshGauges(now);
      gauges_refreshed_ = now;
    }
  }

  // One drain, bounded by worker.drainTimeoutMs; then commit, stop sending,
  // and leave the group (its revoke callback only withdraws).
  const auto started = Clock::now();
  stopping_ = true;
  metrics_.SetGroupJoined(false);
  spdlog::info("stopping: draining {} pending operation(s)", dispatcher_.Pending());
  const std::vector<kafka::TopicPartition> owned(assigned_.begin(), assigned_.end());
  // Stop fetching; a partition that cannot be paused (logged) is only read
  // until the drain ends.
  consumer_->Pause(owned);
  Drain(owned, started + config_.worker.drain_timeout, /*serve_consumer=*/true);
  CommitNow(HandedOver(owned));
  delivery_.Stop();
  consumer_->Close(kCloseDeadline);
  spdlog::info(
      "stopped in {} ms: consumed {}, delivered {}, rejected {}, malformed {}",
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count(),
      stats_.consumed.load(), stats_.delivered.load(), stats_.rejected.load(),
      stats_.malformed.load());
  return 0;
}

}  // namespace crmsync::worker
