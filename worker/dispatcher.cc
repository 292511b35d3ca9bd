#include "worker/dispatcher.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace crmsync::worker {

Dispatcher::Dispatcher(std::map<std::string, ProviderLimits> limits, RetryPolicy retry,
                       uint64_t seed)
    : limits_(std::move(limits)), retry_(retry), rng_(seed) {}

void Dispatcher::Enqueue(mapping::Operation op, MessageRef origin, Clock::time_point now) {
  std::string key = op.BatchKey();
  auto [it, inserted] = queues_.try_emplace(std::move(key));
  Queue& queue = it->second;
  if (inserted) {
    queue.provider = op.provider;
    queue.target = op.target;
    queue.routing = op.routing;
  }
  const ProviderLimits& limits = limits_[queue.provider];
  queue.waiting.push_back(Item{std::move(op), std::move(origin), 0, now + limits.linger});
  queue.stalled = false;
  ++queued_;
}

void Dispatcher::WakeRetries(Queue& queue, Clock::time_point now) {
  if (queue.backing_off.empty()) return;
  // Due retries go back to the front of the queue: every later operation of
  // their contact is still behind them, so order holds.
  auto due = std::stable_partition(queue.backing_off.begin(), queue.backing_off.end(),
                                   [now](const Item& item) { return item.ready_at > now; });
  if (due == queue.backing_off.end()) return;
  for (auto it = std::make_reverse_iterator(queue.backing_off.end());
       it != std::make_reverse_iterator(due); ++it) {
    queue.busy.erase(it->op.contact_key);
    queue.waiting.push_front(std::move(*it));
  }
  queue.backing_off.erase(due, queue.backing_off.end());
  queue.stalled = false;
}

std::optional<Dispatcher::InFlightBatch> Dispatcher::FormBatch(Queue& queue, size_t max_batch) {
  std::unordered_set<std::string_view> blocked;
  std::unordered_set<std::string_view> in_batch;
  std::optional<mapping::Action> action;
  std::vector<size_t> taken;
  size_t scanned = 0;
  for (; scanned < queue.waiting.size() && taken.size() < max_batch; ++scanned) {
    const Item& item = queue.waiting[scanned];
    std::string_view contact = item.op.contact_key;
    // An operation may go only if no earlier operation of its contact is still
    // ahead of it: in flight, backing off, skipped in this scan, or already in
    // this batch (a batch carries one operation per contact).
    if (queue.busy.contains(item.op.contact_key) || blocked.contains(contact) ||
        in_batch.contains(contact) || (action && item.op.action != *action)) {
      blocked.insert(contact);
      continue;
    }
    action = item.op.action;
    in_batch.insert(contact);
    taken.push_back(scanned);
  }
  if (taken.empty()) return std::nullopt;

  InFlightBatch batch;
  batch.items.reserve(taken.size());
  std::vector<Item> kept;
  kept.reserve(scanned - taken.size());
  size_t next_taken = 0;
  for (size_t i = 0; i < scanned; ++i) {
    if (next_taken < taken.size() && taken[next_taken] == i) {
      batch.items.push_back(std::move(queue.waiting[i]));
      ++next_taken;
    } else {
      kept.push_back(std::move(queue.waiting[i]));
    }
  }
  queue.waiting.erase(queue.waiting.begin(), queue.waiting.begin() + scanned);
  queue.waiting.insert(queue.waiting.begin(), std::make_move_iterator(kept.begin()),
                       std::make_move_iterator(kept.end()));
  for (const Item& item : batch.items) queue.busy.insert(item.op.contact_key);
  batch.batch.target = queue.target;
  batch.batch.action = *action;
  batch.batch.routing = queue.routing;
  return batch;
}

std::vector<OutgoingBatch> Dispatcher::TakeReady(Clock::time_point now, bool flush_all) {
  std::vector<OutgoingBatch> out;
  for (auto& [key, queue] : queues_) {
    WakeRetries(queue, now);
    if (queue.stalled) continue;
    const ProviderLimits& limits = limits_[queue.provider];
    int& provider_in_flight = in_flight_per_provider_[queue.provider];
    while (!queue.waiting.empty() && provider_in_flight < limits.max_in_flight) {
      const bool due = flush_all || queue.waiting.size() >= limits.max_batch ||
                       queue.waiting.front().ready_at <= now;
      if (!due) break;
      std::optional<InFlightBatch> formed = FormBatch(queue, limits.max_batch);
      if (!formed) {
        queue.stalled = true;
        break;
      }
      const uint64_t id = next_id_++;
      formed->queue_key = key;
      InFlightBatch& stored = in_flight_.emplace(id, std::move(*formed)).first->second;
      // Item addresses are final only once the batch sits in the map.
      stored.batch.items.reserve(stored.items.size());
      for (const Item& item : stored.items) stored.batch.items.push_back(&item.op);
      queued_ -= stored.items.size();
      in_flight_ops_ += stored.items.size();
      ++provider_in_flight;
      out.push_back(OutgoingBatch{id, queue.provider, &stored.batch});
    }
  }
  return out;
}

std::chrono::milliseconds Dispatcher::Backoff(int attempts, const providers::Outcome& outcome) {
  if (outcome.retry_after) {
    return std::min(*outcome.retry_after, retry_.max_retry_after);
  }
  // Exponential backoff with "equal jitter": half fixed, half random, so that
  // retries of many items spread out instead of arriving together.
  const int exponent = std::min(attempts - 1, 20);
  const auto base = std::min<std::chrono::milliseconds::rep>(
      retry_.initial_backoff.count() << exponent, retry_.max_backoff.count());
  std::uniform_int_distribution<std::chrono::milliseconds::rep> jitter(0, base / 2);
  return std::chrono::milliseconds(base - base / 2 + jitter(rng_));
}

std::vector<Finished> Dispatcher::OnResult(
    uint64_t id, const std::vector<providers::Outcome>& outcomes, Clock::time_point now,
    const std::function<bool(const MessageRef&)>& keep_retrying) {
  std::vector<Finished> finished;
  auto node = in_flight_.extract(id);
  if (node.empty()) return finished;
  InFlightBatch& batch = node.mapped();
  Queue& queue = queues_[batch.queue_key];
  --in_flight_per_provider_[queue.provider];
  in_flight_ops_ -= batch.items.size();
  queue.stalled = false;
  assert(outcomes.size() == batch.items.size());

  for (size_t i = 0; i < batch.items.size(); ++i) {
    Item& item = batch.items[i];
    ++item.attempts;
    // A provider that answered fewer outcomes than items broke its contract;
    // retrying the rest is the safe reading.
    const providers::Outcome outcome =
        i < outcomes.size()
            ? outcomes[i]
            : providers::Outcome{providers::OutcomeKind::kRetry, "no outcome for item", 0, {}};
    switch (outcome.kind) {
      case providers::OutcomeKind::kDone:
      case providers::OutcomeKind::kReject:
        queue.busy.erase(item.op.contact_key);
        finished.push_back(Finished{std::move(item.origin), queue.provider, outcome.kind,
                                    outcome.reason, outcome.http_status, item.attempts});
        break;
      case providers::OutcomeKind::kRetry:
        if (!keep_retrying(item.origin)) {
          queue.busy.erase(item.op.contact_key);
          break;
        }
        ++retries_;
        ++queued_;
        item.ready_at = now + Backoff(item.attempts, outcome);
        queue.backing_off.push_back(std::move(item));
        break;
    }
  }
  return finished;
}

void Dispatcher::DropPartition(const kafka::TopicPartition& tp) {
  for (auto& [key, queue] : queues_) {
    auto from_tp = [&tp](const Item& item) { return item.origin.tp == tp; };
    const size_t before = queue.waiting.size() + queue.backing_off.size();
    for (const Item& item : queue.backing_off) {
      if (from_tp(item)) queue.busy.erase(item.op.contact_key);
    }
    std::erase_if(queue.waiting, from_tp);
    std::erase_if(queue.backing_off, from_tp);
    queued_ -= before - queue.waiting.size() - queue.backing_off.size();
    queue.stalled = false;
  }
}

std::optional<Clock::time_point> Dispatcher::NextDeadline() const {
  std::optional<Clock::time_point> next;
  auto consider = [&next](Clock::time_point t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [key, queue] : queues_) {
    for (const Item& item : queue.backing_off) consider(item.ready_at);
    if (queue.stalled || queue.waiting.empty()) continue;
    auto limits = limits_.find(queue.provider);
    auto in_flight = in_flight_per_provider_.find(queue.provider);
    const int max_in_flight = limits == limits_.end() ? 1 : limits->second.max_in_flight;
    if (in_flight != in_flight_per_provider_.end() && in_flight->second >= max_in_flight) continue;
    if (limits != limits_.end() && queue.waiting.size() >= limits->second.max_batch) {
      consider(Clock::time_point::min());
    } else {
      consider(queue.waiting.front().ready_at);
    }
  }
  return next;
}

}  // namespace crmsync::worker
