#include "worker/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <set>
#include <utility>

#include "providers/registry.h"

namespace crmsync::worker {
namespace {

bool IsRemoval(mapping::Action action) {
  switch (action) {
    case mapping::Action::kRemove:
    case mapping::Action::kUnenroll:
      return true;
    case mapping::Action::kUpsert:
    case mapping::Action::kUpdateOnly:
    case mapping::Action::kAdd:
    case mapping::Action::kOverwrite:
    case mapping::Action::kEnroll:
      return false;
  }
  return false;
}

// The provider refused the credentials (HTTP 401/403 answered as "retry"):
// true of the whole provider until an operator fixes the key, never of the
// item. Permanent 403s (Reply.io's denied sequence) are rejections instead.
bool IsAuthFailure(const providers::Outcome& outcome) {
  return outcome.kind == providers::OutcomeKind::kRetry &&
         (outcome.http_status == 401 || outcome.http_status == 403);
}

// The provider answered something other than a refusal of the credentials:
// the key works.
bool AcceptsCredentials(const providers::Outcome& outcome) {
  if (IsAuthFailure(outcome)) return false;
  return outcome.kind == providers::OutcomeKind::kDone || outcome.http_status != 0;
}

const providers::Outcome& MissingOutcome() {
  static const providers::Outcome kMissing{
      providers::OutcomeKind::kRetry, "no outcome for item", 0, {}};
  return kMissing;
}

template <typename T>
void Override(std::optional<T>& into, std::optional<T>& next) {
  if (next) into = std::move(next);
}

}  // namespace

Dispatcher::Dispatcher(std::map<std::string, ProviderLimits> limits, RetryPolicy retry,
                       uint64_t seed)
    : limits_(std::move(limits)), retry_(retry), rng_(seed) {}

bool Dispatcher::Merge(Item& into, Item& next) {
  mapping::Operation& a = into.op;
  mapping::Operation& b = next.op;
  // Different request options or routing travel in different requests; an
  // operation that has been attempted keeps its own retry accounting.
  if (into.queue != next.queue || into.attempts > 0) return false;
  if (IsRemoval(b.action) && !IsRemoval(a.action)) {
    // Whatever waited is undone by the removal; an overwrite also drops the
    // list's other members, which a single removal would not, so it stays.
    if (a.action == mapping::Action::kOverwrite) return false;
    a = std::move(b);
  } else if (a.action == mapping::Action::kUpsert && b.action == mapping::Action::kUpsert &&
             a.options != nullptr && a.options->UpsertReplacesRecord()) {
    // A full replace (CampaignLark without partial update) leaves exactly
    // what the later upsert says, whatever came before: merging fields
    // would keep ones it wipes.
    a = std::move(b);
  } else {
    if (a.action != b.action) return false;
    // Outside update-only (plain patches of contacts that exist, in every
    // provider), a status is part of what the operation does, not a field:
    // Replify does not add a contact upserted as completed or disqualified,
    // and CampaignLark's full replace resets an omitted status to SUBSCRIBED.
    // Merging "plain, then completed" would never add the contact, and
    // "completed, then plain" would keep it from being added; both must go
    // as sent. Operations with the same status (or none) merge.
    if (a.action != mapping::Action::kUpdateOnly && a.contact.status != b.contact.status) {
      return false;
    }
    mapping::Contact& x = a.contact;
    mapping::Contact& y = b.contact;
    Override(x.first_name, y.first_name);
    Override(x.last_name, y.last_name);
    Override(x.email, y.email);
    Override(x.phone, y.phone);
    Override(x.status, y.status);
    Override(x.external_id_key, y.external_id_key);
    Override(x.external_id_value, y.external_id_value);
    for (auto& [key, value] : y.metadata) x.metadata.insert_or_assign(key, std::move(value));
    for (auto& [key, value] : y.fields) x.fields.insert_or_assign(key, std::move(value));
    if (!y.tags.empty()) x.tags = std::move(y.tags);
  }
  into.origins.insert(into.origins.end(), std::make_move_iterator(next.origins.begin()),
                      std::make_move_iterator(next.origins.end()));
  return true;
}

bool Dispatcher::MergeAll(ItemLine& waiting, Item& next) {
  if (waiting.empty() || !Merge(*waiting.back(), next)) return false;
  // A removal goes on absorbing what waited before it.
  while (waiting.size() >= 2 && IsRemoval(waiting.back()->op.action)) {
    Item& before = *waiting[waiting.size() - 2];
    if (!Merge(before, *waiting.back())) break;
    waiting.pop_back();
  }
  return true;
}

void Dispatcher::MarkReady(Lane& lane, Lines::iterator it) {
  ContactLine& line = it->second;
  if (line.busy) return;
  if (line.waiting.empty()) {
    lane.lines.erase(it);
    return;
  }
  const Item& front = *line.waiting.front();
  front.queue->ready.Add(front.op.action, front.seq, &*it);
}

void Dispatcher::Release(Lane& lane, const std::string& contact, const ProviderLimits& limits,
                         Clock::time_point now, uint64_t released_seq) {
  const auto it = lane.lines.try_emplace(contact).first;
  ContactLine& line = it->second;
  line.busy = false;
  if (limits.coalesce_window.count() > 0) {
    if (line.waiting.empty()) {
      line.hot_streak = 0;
      line.draining_to.reset();
    } else if (line.draining_to && released_seq < *line.draining_to) {
      // Still sending what waited during the hold.
    } else {
      line.draining_to.reset();
      // Operations waiting after two sends in a row: the contact is hot.
      ++line.hot_streak;
      const Clock::time_point until = line.last_sent + limits.coalesce_window;
      if (line.hot_streak >= 2 && until > now) {
        line.busy = true;
        lane.held.emplace(until, contact);
        return;
      }
    }
  }
  MarkReady(lane, it);
}

void Dispatcher::Enqueue(mapping::Operation&& op, MessageRef origin, Clock::time_point now) {
  if (last_queue_ == nullptr || last_queue_->provider != op.provider ||
      last_queue_->target != op.target || last_queue_->routing != op.routing ||
      last_queue_->options_json != op.options_json) {
    auto [it, inserted] = queues_.try_emplace(op.BatchKey());
    Queue& queue = it->second;
    if (inserted) {
      queue.provider = op.provider;
      queue.target = op.target;
      queue.routing = op.routing;
      queue.options_json = op.options_json;
      queue.options = op.options;
      queue.lane_key = op.provider + '\x1f' + op.target;
      queue.lane = &lanes_[queue.lane_key];
      queue.limits = &limits_[queue.provider];
    }
    last_queue_ = &queue;
  }
  Queue& queue = *last_queue_;
  Lane& lane = *queue.lane;
  const ProviderLimits& limits = *queue.limits;
  auto item = std::make_unique<Item>(std::move(op), &queue);
  // Read before merging, which may move the operation out of `item`.
  const std::string& contact = item->op.contact_key;
  const auto line_it = lane.lines.try_emplace(contact).first;
  ContactLine& line = line_it->second;
  item->origins.push_back(std::move(origin));
  item->ready_at = now + limits.linger;
  item->seq = next_seq_++;
  const size_t before = line.waiting.size();
  // A merge into the front of a ready line may change its action (a removal
  // replaces what waited): its ready entry follows.
  const mapping::Action front_action =
      line.waiting.empty() ? item->op.action : line.waiting.front()->op.action;
  if (MergeAll(line.waiting, *item)) {
    if (!line.busy) {
      const Item& front = *line.waiting.front();
      queue.ready.Move(front.seq, front_action, front.op.action);
    }
    ++coalesced_;
    const size_t absorbed = before - line.waiting.size();
    coalesced_ += absorbed;
    queued_ -= absorbed;
    return;
  }
  line.waiting.push_back(std::move(item));
  ++queued_;
  if (line.waiting.size() == 1) MarkReady(lane, line_it);
}

void Dispatcher::Wake(Lane& lane, Clock::time_point now, bool flush_all) {
  // Due retries go back to the front of their contact's line: every later
  // operation of the contact is still behind them, so order holds.
  while (!lane.backing_off.empty() && lane.backing_off.begin()->first <= now) {
    auto node = lane.backing_off.extract(lane.backing_off.begin());
    auto& [contact, item] = node.mapped();
    const auto it = lane.lines.try_emplace(contact).first;
    ContactLine& line = it->second;
    line.busy = false;
    line.waiting.push_front(std::move(item));
    MarkReady(lane, it);
  }
  while (!lane.held.empty() && (flush_all || lane.held.begin()->first <= now)) {
    auto node = lane.held.extract(lane.held.begin());
    const auto it = lane.lines.try_emplace(node.mapped()).first;
    ContactLine& line = it->second;
    line.busy = false;
    if (!line.waiting.empty()) line.draining_to = line.waiting.back()->seq;
    MarkReady(lane, it);
  }
}

std::optional<Dispatcher::InFlightBatch> Dispatcher::FormBatch(Queue& queue, size_t max_batch,
                                                               Clock::time_point now) {
  // A batch carries one action, the oldest ready operation's; contacts whose
  // next operation is another action stay ready for the next batch.
  auto [entries, action] = queue.ready.Oldest();
  InFlightBatch batch;
  for (auto it = entries->begin(); it != entries->end() && batch.items.size() < max_batch;) {
    ContactLine& line = it->second->second;
    batch.items.push_back(std::move(line.waiting.front()));
    line.waiting.pop_front();
    line.busy = true;
    line.last_sent = now;
    it = queue.ready.Erase(*entries, it);
  }
  if (batch.items.empty()) return std::nullopt;
  batch.queue = &queue;
  batch.batch.target = queue.target;
  batch.batch.action = action;
  batch.batch.routing = queue.routing;
  batch.batch.options = queue.options;
  return batch;
}

std::vector<OutgoingBatch> Dispatcher::TakeReady(Clock::time_point now, bool flush_all,
                                                 const SendGate& may_send) {
  std::vector<OutgoingBatch> out;
  for (auto& [key, lane] : lanes_) Wake(lane, now, flush_all);
  for (auto& [key, queue] : queues_) {
    const ProviderLimits& limits = *queue.limits;
    int& provider_in_flight = in_flight_per_provider_[queue.provider];
    while (!queue.ready.empty() && provider_in_flight < limits.max_in_flight) {
      const Item& oldest = *queue.ready.OldestLine().second.waiting.front();
      const bool due = flush_all || limits.send_when_idle ||
                       queue.ready.size() >= limits.max_batch || oldest.ready_at <= now;
      if (!due) break;
      const size_t allowed = may_send ? may_send(queue.provider) : limits.max_batch;
      if (allowed == 0) break;
      std::optional<InFlightBatch> formed =
          FormBatch(queue, std::min(allowed, limits.max_batch), now);
      if (!formed) break;
      formed->probe = may_send && allowed == 1;
      const uint64_t id = next_id_++;
      InFlightBatch& stored = in_flight_.emplace(id, std::move(*formed)).first->second;
      stored.batch.items.reserve(stored.items.size());
      for (const ItemPtr& item : stored.items) stored.batch.items.push_back(&item->op);
      queued_ -= stored.items.size();
      in_flight_ops_ += stored.items.size();
      ++provider_in_flight;
      OutgoingBatch& sent =
          out.emplace_back(OutgoingBatch{id, queue.provider, &stored.batch, {}, stored.probe});
      // A batch's items come from a few partitions: a linear look-up beats
      // copying every origin's partition and sorting the copies.
      for (const ItemPtr& item : stored.items) {
        for (const MessageRef& origin : item->origins) {
          if (std::find(sent.partitions.begin(), sent.partitions.end(), origin.tp) ==
              sent.partitions.end()) {
            sent.partitions.push_back(origin.tp);
          }
        }
      }
      std::sort(sent.partitions.begin(), sent.partitions.end());
    }
  }
  return out;
}

const RetryPolicy& Dispatcher::RetryFor(const std::string& provider) const {
  auto it = limits_.find(provider);
  return it != limits_.end() && it->second.retry ? *it->second.retry : retry_;
}

std::chrono::milliseconds Dispatcher::Backoff(const RetryPolicy& policy, int attempts,
                                              const providers::Outcome& outcome) {
  attempts = std::max(attempts, 1);
  if (outcome.retry_after) {
    return std::min(*outcome.retry_after, policy.max_retry_after);
  }
  // Exponential backoff with "equal jitter": half fixed, half random, so that
  // retries of many items spread out instead of arriving together.
  const int exponent = std::min(attempts - 1, 20);
  const auto base = std::min<std::chrono::milliseconds::rep>(
      policy.initial_backoff.count() << exponent, policy.max_backoff.count());
  std::uniform_int_distribution<std::chrono::milliseconds::rep> jitter(0, base / 2);
  return std::chrono::milliseconds(base - base / 2 + jitter(rng_));
}

void Dispatcher::Unstick(const Item& item) {
  if (item.stuck) --stuck_items_;
}

std::vector<Finished> Dispatcher::OnResult(
    uint64_t id, const std::vector<providers::Outcome>& outcomes, Clock::time_point now,
    const std::function<bool(const MessageRef&)>& keep_retrying) {
  std::vector<Finished> finished;
  auto node = in_flight_.extract(id);
  if (node.empty()) return finished;
  InFlightBatch& batch = node.mapped();
  Queue& queue = *batch.queue;
  Lane& lane = *queue.lane;
  const ProviderLimits& limits = *queue.limits;
  const RetryPolicy& policy = RetryFor(queue.provider);
  --in_flight_per_provider_[queue.provider];
  in_flight_ops_ -= batch.items.size();
  assert(outcomes.size() == batch.items.size());

  auto finish = [&](Item& item, providers::OutcomeKind kind, std::string reason, int status,
                    bool exhausted) {
    Unstick(item);
    for (MessageRef& origin : item.origins) {
      finished.push_back(Finished{std::move(origin), queue.provider, queue.target, kind, reason,
                                  status, item.attempts, exhausted, item.first_failure,
                                  item.last_failure, item.op.action});
    }
  };
  NoteCredentials(queue.provider, outcomes);
  // Drops the origins whose partitions no longer retry; an item left with
  // none is finished with its line released (true).
  auto drop_unretried = [&](Item& item, const std::string& contact) {
    std::erase_if(item.origins, [&](const MessageRef& ref) { return !keep_retrying(ref); });
    if (!item.origins.empty()) return false;
    Unstick(item);
    Release(lane, contact, limits, now, item.seq);
    return true;
  };
  for (size_t i = 0; i < batch.items.size(); ++i) {
    Item& item = *batch.items[i];
    // Lives while the batch does (backing off moves the pointer, not the item).
    const std::string& contact = item.op.contact_key;
    if (i < outcomes.size() && outcomes[i].kind == providers::OutcomeKind::kRetry &&
        outcomes[i].withdrawn) {
      // Withdrawn by the worker, not answered by the provider: back to the
      // front of its contact's line, ready at once, nothing counted.
      if (drop_unretried(item, contact)) continue;
      ++queued_;
      item.ready_at = now;
      lane.backing_off.emplace(now, std::pair(contact, std::move(batch.items[i])));
      continue;
    }
    // A provider that answered fewer outcomes than items broke its contract;
    // retrying the rest is the safe reading.
    const providers::Outcome& outcome = i < outcomes.size() ? outcomes[i] : MissingOutcome();
    // Neither a failed probe (the circuit's test of the provider) nor refused
    // credentials (the provider's condition, which the circuit handles) is an
    // attempt of the operation.
    const bool auth_failure = IsAuthFailure(outcome);
    if (!auth_failure && !(batch.probe && outcome.kind == providers::OutcomeKind::kRetry)) {
      ++item.attempts;
    }
    if (auth_failure) {
      if (!item.auth_since) item.auth_since = now;
      if (drop_unretried(item, contact)) continue;
      // Never exhausted, never dead-lettered: it waits, with a backoff of its
      // own, while the circuit keeps the provider from being hammered.
      ++item.auth_failures;
      ++retries_;
      ++queued_;
      item.ready_at = now + Backoff(policy, item.auth_failures, outcome);
      lane.backing_off.emplace(item.ready_at, std::pair(contact, std::move(batch.items[i])));
      continue;
    }
    if (item.auth_since) {
      item.auth_paused += now - *item.auth_since;
      item.auth_since.reset();
    }
    switch (outcome.kind) {
      case providers::OutcomeKind::kDone:
        finish(item, outcome.kind, outcome.reason, outcome.http_status, false);
        Release(lane, contact, limits, now, item.seq);
        break;
      case providers::OutcomeKind::kReject:
        if (!item.first_failure) item.first_failure = now;
        item.last_failure = now;
        finish(item, outcome.kind, outcome.reason, outcome.http_status, false);
        Release(lane, contact, limits, now, item.seq);
        break;
      case providers::OutcomeKind::kRetry: {
        if (drop_unretried(item, contact)) break;
        if (!item.first_failure) item.first_failure = now;
        item.last_failure = now;
        const bool exhausted = (policy.max_attempts > 0 && item.attempts >= policy.max_attempts) ||
                               (policy.max_elapsed.count() > 0 &&
                                now - *item.first_failure - item.auth_paused >= policy.max_elapsed);
        if (exhausted && !policy.pause_when_exhausted) {
          finish(
              item, providers::OutcomeKind::kReject,
              "gave up after " + std::to_string(item.attempts) + " attempt(s): " + outcome.reason,
              outcome.http_status, true);
          Release(lane, contact, limits, now, item.seq);
          break;
        }
        if (exhausted && !item.stuck) {
          item.stuck = true;
          ++stuck_items_;
        }
        ++retries_;
        ++queued_;
        std::chrono::milliseconds wait = Backoff(policy, item.attempts, outcome);
        if (item.stuck) wait = std::max(wait, policy.max_backoff);
        item.ready_at = now + wait;
        lane.backing_off.emplace(item.ready_at, std::pair(contact, std::move(batch.items[i])));
        break;
      }
    }
  }
  return finished;
}

void Dispatcher::NoteCredentials(const std::string& provider,
                                 const std::vector<providers::Outcome>& outcomes) {
  const auto refused = std::find_if(outcomes.begin(), outcomes.end(), IsAuthFailure);
  if (refused != outcomes.end()) {
    ++auth_failures_;
    if (auth_refused_.insert(provider).second) {
      spdlog::error(
          "{} refuses the API key (HTTP {}): {}; its operations wait and are retried without "
          "using up attempts (nothing is dead-lettered) until the key works again",
          provider, refused->http_status, refused->reason);
    }
    return;
  }
  if (auth_refused_.contains(provider) &&
      std::any_of(outcomes.begin(), outcomes.end(), AcceptsCredentials)) {
    auth_refused_.erase(provider);
    spdlog::info("{} accepts the API key again", provider);
  }
}

void Dispatcher::DropPartition(const kafka::TopicPartition& tp) {
  // True when the item has nothing left to finish.
  auto strip = [this, &tp](Item& item) {
    std::erase_if(item.origins, [&tp](const MessageRef& ref) { return ref.tp == tp; });
    if (!item.origins.empty()) return false;
    Unstick(item);
    return true;
  };
  for (auto& [key, lane] : lanes_) {
    for (auto& [contact, line] : lane.lines) {
      const size_t before = line.waiting.size();
      line.waiting.EraseIf([&strip](ItemPtr& item) { return strip(*item); });
      queued_ -= before - line.waiting.size();
    }
    for (auto it = lane.backing_off.begin(); it != lane.backing_off.end();) {
      if (strip(*it->second.second)) {
        lane.lines[it->second.first].busy = false;
        --queued_;
        it = lane.backing_off.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Fronts may have changed: rebuild every ready set.
  for (auto& [key, queue] : queues_) queue.ready.clear();
  for (auto& [key, lane] : lanes_) {
    for (auto it = lane.lines.begin(); it != lane.lines.end();) {
      ContactLine& line = it->second;
      if (!line.busy && line.waiting.empty()) {
        it = lane.lines.erase(it);
        continue;
      }
      if (!line.busy) {
        const Item& front = *line.waiting.front();
        front.queue->ready.Add(front.op.action, front.seq, &*it);
      }
      ++it;
    }
  }
}

std::optional<Clock::time_point> Dispatcher::NextDeadline(
    const std::function<bool(const std::string&)>& blocked) const {
  std::optional<Clock::time_point> next;
  auto consider = [&next](Clock::time_point t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [key, lane] : lanes_) {
    if (!lane.backing_off.empty()) consider(lane.backing_off.begin()->first);
    if (!lane.held.empty()) consider(lane.held.begin()->first);
  }
  for (const auto& [key, queue] : queues_) {
    if (queue.ready.empty()) continue;
    if (blocked && blocked(queue.provider)) continue;
    auto limits = limits_.find(queue.provider);
    auto in_flight = in_flight_per_provider_.find(queue.provider);
    const int max_in_flight = limits == limits_.end() ? 1 : limits->second.max_in_flight;
    if (in_flight != in_flight_per_provider_.end() && in_flight->second >= max_in_flight) continue;
    if (limits != limits_.end() && queue.ready.size() >= limits->second.max_batch) {
      consider(Clock::time_point::min());
    } else {
      consider(queue.ready.OldestLine().second.waiting.front()->ready_at);
    }
  }
  return next;
}

std::vector<kafka::TopicPartition> Dispatcher::StuckPartitions() const {
  std::set<kafka::TopicPartition> stuck;
  if (stuck_items_ == 0) return {};
  auto add = [&stuck](const Item& item) {
    if (!item.stuck) return;
    for (const MessageRef& ref : item.origins) stuck.insert(ref.tp);
  };
  for (const auto& [key, lane] : lanes_) {
    for (const auto& [due, entry] : lane.backing_off) add(*entry.second);
    for (const auto& [contact, line] : lane.lines) {
      if (!line.waiting.empty()) add(*line.waiting.front());
    }
  }
  for (const auto& [id, batch] : in_flight_) {
    for (const ItemPtr& item : batch.items) add(*item);
  }
  return {stuck.begin(), stuck.end()};
}

std::vector<kafka::TopicPartition> Dispatcher::PartitionsWaitingFor(
    const std::string& provider) const {
  std::set<kafka::TopicPartition> partitions;
  auto add = [&partitions](const Item& item) {
    for (const MessageRef& ref : item.origins) partitions.insert(ref.tp);
  };
  const std::string prefix = provider + '\x1f';
  for (const auto& [key, lane] : lanes_) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    for (const auto& [due, entry] : lane.backing_off) add(*entry.second);
    for (const auto& [contact, line] : lane.lines) {
      for (const ItemPtr& item : line.waiting) add(*item);
    }
  }
  for (const auto& [id, batch] : in_flight_) {
    if (batch.queue->provider != provider) continue;
    for (const ItemPtr& item : batch.items) add(*item);
  }
  return {partitions.begin(), partitions.end()};
}

}  // namespace crmsync::worker
