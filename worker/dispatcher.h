// Dispatcher: turns a stream of Operations into provider batches, and the
// provider's per-item outcomes back into finished messages.
//
// One line per (provider, target, contact) holds that contact's operations in
// order; one queue per (provider, target, routing, options) — what may share
// a request — holds the contacts whose next operation is ready for it. A
// batch carries one action and at most one operation per contact, up to the
// provider's batch size; it is formed when the queue holds a full batch, its
// oldest ready operation has waited `linger`, or (send_when_idle) a request
// slot of the provider is idle.
//
// Per-contact order: a contact's operations on a target leave its line one at
// a time, whatever request options they carry; while one is in flight or
// waiting to be retried, the rest wait. Other contacts are not held up, and
// finding the next batch costs O(batch), never a scan of everything queued.
//
// Coalescing: an operation that arrives while its contact's last queued
// operation is still waiting merges into it (later fields win, maps merge),
// and a removal absorbs everything that waits before it. Operations of one
// action merge only if they set the same status (or none): a status decides
// what an upsert does (Replify does not add a contact upserted as completed,
// so "plain, then completed" merged would never add it, and "completed, then
// plain" merged would keep it out), and CampaignLark's full replace resets an
// omitted status; update-only operations always merge (patches). An upsert
// that replaces the whole record (CampaignLark without partial update) is
// superseded by a later one instead of merged with it. The
// merged operation carries every absorbed message, and its result finishes
// all of them. A hot contact — one that kept receiving operations while its
// previous ones were being sent — is held for the provider's coalescing
// window after each send, so that a burst for one contact becomes a few
// requests instead of hundreds.
//
// Retries: exponential backoff with jitter, Retry-After honoured (capped),
// bounded by attempts and by time since the first failure; an exhausted
// operation is finished as rejected (to be dead-lettered), or, by policy,
// kept retrying while StuckPartitions() names its partition for pausing.
// Refused credentials (a retry outcome with HTTP 401/403: a bad, revoked or
// rotated key) are the provider's condition, not the operation's: they use up
// no attempt, their time is not counted in max_elapsed, and they never exhaust
// an operation; it backs off and retries while the circuit breaker (which
// counts 401/403 as failures) holds the provider. The first refusal and the
// first answer after it are logged once each.
//
// Pure logic with an injected clock (`now` arguments); not thread-safe: owned
// by the worker's loop thread. Never throws on content.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mapping/operation.h"
#include "providers/provider.h"
#include "worker/kafka/topic_partition.h"

namespace crmsync::worker {

using Clock = std::chrono::steady_clock;

// Where an operation came from; its completion completes that message.
struct MessageRef {
  kafka::TopicPartition tp;
  int64_t offset = 0;
  uint64_t epoch = 0;         // assignment epoch of the partition when consumed
  int64_t timestamp_ms = -1;  // the record's Kafka timestamp, -1 if none
};

struct RetryPolicy {
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30000};
  // Upper bound for a provider's Retry-After.
  std::chrono::milliseconds max_retry_after{std::chrono::minutes(5)};
  int max_attempts = 0;                      // 0: unbounded
  std::chrono::milliseconds max_elapsed{0};  // since the first failure; 0: unbounded
  bool pause_when_exhausted = false;         // else exhausted operations are rejected
};

struct ProviderLimits {
  size_t max_batch = 100;
  std::chrono::milliseconds linger{50};
  int max_in_flight = 4;
  std::chrono::milliseconds coalesce_window{0};  // hot contacts; 0 disables
  std::optional<RetryPolicy> retry;              // overrides the dispatcher's
  // A request slot left idle takes what is ready at once, whatever `linger`
  // says: a partial batch now rather than a fuller one later. For providers
  // without a request budget, where a small batch costs no rate limit.
  bool send_when_idle = false;
};

// One operation's final result (delivered or deliberately rejected).
struct Finished {
  MessageRef origin;
  // The dispatcher's own copies (its queues live as long as it does): a
  // batch finishes hundreds of messages, and copying these into each cost
  // more than the rest of the record.
  std::string_view provider;
  std::string_view target;
  providers::OutcomeKind kind = providers::OutcomeKind::kDone;  // kDone or kReject
  std::string reason;
  int http_status = 0;
  int attempts = 0;
  bool exhausted = false;  // rejected because its retries ran out
  // When its first and last failed attempts were answered, if any failed.
  std::optional<Clock::time_point> first_failure;
  std::optional<Clock::time_point> last_failure;
  mapping::Action action = mapping::Action::kUpsert;  // the operation's action
};

// How many operations the next batch of a provider may carry now (its
// circuit breaker): 0 for none, 1 for a probe, SIZE_MAX for a full batch. A
// failed probe is not counted as an attempt of its operation: it is the
// circuit's test of the provider.
using SendGate = std::function<size_t(const std::string& provider)>;

// A batch ready to be sent; the Batch's item pointers stay valid until
// OnResult() for this id.
struct OutgoingBatch {
  uint64_t id = 0;
  std::string provider;
  const providers::Batch* batch = nullptr;
  // The partitions whose messages the batch's items finish, sorted.
  std::vector<kafka::TopicPartition> partitions;
  bool probe = false;  // the one-operation probe of a half-open circuit
};

class Dispatcher {
 public:
  Dispatcher(std::map<std::string, ProviderLimits> limits, RetryPolicy retry, uint64_t seed = 1);

  void Enqueue(mapping::Operation&& op, MessageRef origin, Clock::time_point now);

  // Forms every batch that is due and fits in its provider's in-flight limit.
  // With `flush_all`, linger and the coalescing window are ignored
  // (draining). `may_send`, if given, is asked before each batch is formed.
  std::vector<OutgoingBatch> TakeReady(Clock::time_point now, bool flush_all = false,
                                       const SendGate& may_send = {});

  // Applies one Outcome per item of batch `id`. Retried items wait for their
  // backoff and keep their place in front of their contact's later operations
  // (unless `keep_retrying(origin)` says their partition is gone: then they are
  // dropped). Returns one Finished per message an item carried.
  std::vector<Finished> OnResult(uint64_t id, const std::vector<providers::Outcome>& outcomes,
                                 Clock::time_point now,
                                 const std::function<bool(const MessageRef&)>& keep_retrying);

  // Drops queued and retry-waiting operations of a revoked partition.
  // In-flight ones finish normally; the caller ignores their results.
  void DropPartition(const kafka::TopicPartition& tp);

  // The earliest moment a queue becomes due or a retry or held contact
  // wakes, if any; providers for which `blocked` is true are left out.
  std::optional<Clock::time_point> NextDeadline(
      const std::function<bool(const std::string&)>& blocked = {}) const;

  // Partitions with an operation whose retries are exhausted but which is
  // kept retrying (RetryPolicy::pause_when_exhausted): consuming more of them
  // would only pile up work that cannot be committed.
  std::vector<kafka::TopicPartition> StuckPartitions() const;
  // Partitions with operations for `provider` waiting or in flight.
  std::vector<kafka::TopicPartition> PartitionsWaitingFor(const std::string& provider) const;

  size_t Queued() const { return queued_; }           // waiting or backing off
  size_t InFlight() const { return in_flight_ops_; }  // items in sent batches
  size_t Pending() const { return queued_ + in_flight_ops_; }
  // Retries scheduled so far (a provider answered "try again").
  uint64_t Retries() const { return retries_; }
  // Operations absorbed into an earlier waiting one of the same contact.
  uint64_t Coalesced() const { return coalesced_; }
  // Batches answered with refused credentials (HTTP 401/403), and whether
  // `provider`'s last answer refused them.
  uint64_t AuthFailures() const { return auth_failures_; }
  bool AuthRefused(const std::string& provider) const { return auth_refused_.contains(provider); }

 private:
  struct Queue;
  struct Item {
    Item(mapping::Operation&& operation, Queue* batch_queue)
        : op(std::move(operation)), queue(batch_queue) {}

    mapping::Operation op;
    Queue* queue;                     // the queue of op.BatchKey(); queues are never erased
    std::vector<MessageRef> origins;  // every message this operation finishes
    int attempts = 0;
    Clock::time_point ready_at;  // enqueue time + linger, or when a retry may go
    uint64_t seq = 0;            // arrival order within the dispatcher
    std::optional<Clock::time_point> first_failure, last_failure;
    bool stuck = false;     // exhausted, kept retrying; counted in stuck_
    int auth_failures = 0;  // answers refusing the credentials (not attempts)
    // Since when the provider has refused the credentials for it, and how
    // long earlier refusals lasted: that time is not counted in max_elapsed.
    std::optional<Clock::time_point> auth_since;
    Clock::duration auth_paused{0};
  };
  // Items move between a contact's line, a batch and the backoff schedule
  // several times each: as pointers, not as an operation's dozen strings.
  using ItemPtr = std::unique_ptr<Item>;
  // A contact's waiting operations, in order. Usually one or two: a vector
  // with a moving front, which allocates nothing while empty, where a deque
  // allocates two blocks for every line that is created.
  class ItemLine {
   public:
    bool empty() const { return head_ == items_.size(); }
    size_t size() const { return items_.size() - head_; }
    ItemPtr& front() { return items_[head_]; }
    const ItemPtr& front() const { return items_[head_]; }
    ItemPtr& back() { return items_.back(); }
    const ItemPtr& back() const { return items_.back(); }
    ItemPtr& operator[](size_t i) { return items_[head_ + i]; }
    auto begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    auto end() const { return items_.end(); }

    void push_back(ItemPtr item) { items_.push_back(std::move(item)); }
    void push_front(ItemPtr item) {
      if (head_ > 0) {
        items_[--head_] = std::move(item);
      } else {
        items_.insert(items_.begin(), std::move(item));
      }
    }
    void pop_front() {
      items_[head_++].reset();
      // The slots before the front are dropped once they are the majority,
      // so that a line that never empties does not grow.
      if (empty()) {
        items_.clear();
        head_ = 0;
      } else if (head_ >= 16 && 2 * head_ >= items_.size()) {
        items_.erase(items_.begin(), begin());
        head_ = 0;
      }
    }
    void pop_back() {
      items_.pop_back();
      if (empty()) {
        items_.clear();
        head_ = 0;
      }
    }
    // Erases the items `remove` is true of.
    template <typename Predicate>
    void EraseIf(Predicate remove) {
      items_.erase(items_.begin(), begin());
      head_ = 0;
      std::erase_if(items_, remove);
    }

   private:
    std::vector<ItemPtr> items_;
    size_t head_ = 0;  // the front; the slots before it are empty
  };
  struct ContactLine {
    ItemLine waiting;  // the front is the next to go
    // An operation is in flight, backing off, or the contact is held for its
    // coalescing window.
    bool busy = false;
    Clock::time_point last_sent;
    int hot_streak = 0;  // consecutive sends after which operations were waiting
    // After a hold, what waited is sent back to back up to this seq; later
    // arrivals wait for the next window.
    std::optional<uint64_t> draining_to;
  };
  // By contact key. Elements stay put when the map grows, so a ready set
  // can point at one; a line is erased only when it is in no ready set.
  using Lines = std::unordered_map<std::string, ContactLine>;
  using LineEntry = Lines::value_type;
  // Contacts whose front operation may go in one queue, by that operation's
  // seq, kept apart by action: a request carries one action, so a batch of
  // the less common actions is taken from its own set instead of being
  // picked out of every ready contact.
  class ReadySet {
   public:
    using Entries = std::map<uint64_t, LineEntry*>;
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    // Arrivals carry the newest seq: the hint makes their insert constant time.
    void Add(mapping::Action action, uint64_t seq, LineEntry* line) {
      Entries& entries = by_action_[Index(action)];
      const size_t before = entries.size();
      entries.emplace_hint(entries.end(), seq, line);
      size_ += entries.size() - before;
    }
    void Move(uint64_t seq, mapping::Action from, mapping::Action to) {
      if (from == to) return;
      auto node = by_action_[Index(from)].extract(seq);
      if (!node.empty()) by_action_[Index(to)].insert(std::move(node));
    }
    // The set holding the oldest entry, and its action; the set is empty
    // only when all are.
    std::pair<Entries*, mapping::Action> Oldest() {
      const size_t i = OldestIndex();
      return {&by_action_[i], static_cast<mapping::Action>(i)};
    }
    // Only while not empty.
    const LineEntry& OldestLine() const { return *by_action_[OldestIndex()].begin()->second; }
    Entries::iterator Erase(Entries& entries, Entries::iterator it) {
      --size_;
      return entries.erase(it);
    }
    void clear() {
      for (Entries& entries : by_action_) entries.clear();
      size_ = 0;
    }

   private:
    static size_t Index(mapping::Action action) { return static_cast<size_t>(action); }
    size_t OldestIndex() const {
      size_t best = 0;
      for (size_t i = 1; i < by_action_.size(); ++i) {
        if (by_action_[i].empty()) continue;
        if (by_action_[best].empty() ||
            by_action_[i].begin()->first < by_action_[best].begin()->first) {
          best = i;
        }
      }
      return best;
    }
    std::array<Entries, mapping::kActionCount> by_action_;
    size_t size_ = 0;
  };
  // Everything of one (provider, target).
  struct Lane {
    Lines lines;
    // Retries not yet due, by due time (insertion order among equals).
    std::multimap<Clock::time_point, std::pair<std::string, ItemPtr>> backing_off;
    // Hot contacts held for their coalescing window, by release time.
    std::multimap<Clock::time_point, std::string> held;
  };
  struct Queue {
    std::string provider;
    std::string target;
    std::optional<mapping::Routing> routing;
    std::string options_json;
    std::shared_ptr<const mapping::ProviderOptions> options;
    std::string lane_key;
    // lanes_[lane_key] and limits_[provider], looked up once (std::map
    // elements stay put and are never erased).
    Lane* lane = nullptr;
    const ProviderLimits* limits = nullptr;
    ReadySet ready;
  };
  struct InFlightBatch {
    bool probe = false;  // sent by a half-open circuit
    Queue* queue = nullptr;
    std::vector<ItemPtr> items;
    providers::Batch batch;
  };

  static bool Merge(Item& into, Item& next);
  static bool MergeAll(ItemLine& waiting, Item& next);
  std::optional<InFlightBatch> FormBatch(Queue& queue, size_t max_batch, Clock::time_point now);
  void MarkReady(Lane& lane, Lines::iterator line);
  // The contact's operation finished: its next one may go, unless the
  // contact is hot and is held for its coalescing window.
  void Release(Lane& lane, const std::string& contact, const ProviderLimits& limits,
               Clock::time_point now, uint64_t released_seq);
  void Wake(Lane& lane, Clock::time_point now, bool flush_all);
  const RetryPolicy& RetryFor(const std::string& provider) const;
  std::chrono::milliseconds Backoff(const RetryPolicy& policy, int attempts,
                                    const providers::Outcome& outcome);
  void Unstick(const Item& item);
  // Tracks whether `provider` refuses its credentials; logs each change.
  void NoteCredentials(const std::string& provider,
                       const std::vector<providers::Outcome>& outcomes);

  std::map<std::string, ProviderLimits> limits_;
  RetryPolicy retry_;
  size_t stuck_items_ = 0;  // exhausted operations kept retrying
  std::mt19937_64 rng_;
  std::map<std::string, Queue> queues_;  // by Operation::BatchKey()
  // The queue the last operation went to: consecutive operations mostly
  // share it, and comparing its fields spares building the key.
  Queue* last_queue_ = nullptr;
  std::map<std::string, Lane> lanes_;  // by provider + target
  std::map<uint64_t, InFlightBatch> in_flight_;
  std::map<std::string, int> in_flight_per_provider_;
  uint64_t next_id_ = 1;
  uint64_t next_seq_ = 1;
  size_t queued_ = 0;
  size_t in_flight_ops_ = 0;
  uint64_t retries_ = 0;
  uint64_t coalesced_ = 0;
  uint64_t auth_failures_ = 0;
  std::set<std::string> auth_refused_;  // providers whose last answer refused the key
};

}  // namespace crmsync::worker
