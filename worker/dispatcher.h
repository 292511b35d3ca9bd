// Dispatcher: turns a stream of Operations into provider batches, and the
// provider's per-item outcomes back into finished messages.
//
// One queue per (provider, target, routing). A batch carries one action and
// at most one operation per contact, up to the provider's batch size; it is
// formed when the queue holds a full batch or its oldest operation has waited
// `linger`. Per-contact order: while an operation of a contact is in flight
// or waiting to be retried, later operations of that contact on the same
// queue wait behind it; other contacts are not held up.
//
// Pure logic with an injected clock (`now` arguments); not thread-safe: owned
// by the worker's loop thread. Never throws on content.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
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

struct ProviderLimits {
  size_t max_batch = 100;
  std::chrono::milliseconds linger{50};
  int max_in_flight = 4;
};

struct RetryPolicy {
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30000};
  // Upper bound for a provider's Retry-After.
  std::chrono::milliseconds max_retry_after{std::chrono::minutes(5)};
};

// One operation's final result (delivered or deliberately rejected).
struct Finished {
  MessageRef origin;
  std::string provider;
  providers::OutcomeKind kind = providers::OutcomeKind::kDone;  // kDone or kReject
  std::string reason;
  int http_status = 0;
  int attempts = 0;
};

// A batch ready to be sent; the Batch's item pointers stay valid until
// OnResult() for this id.
struct OutgoingBatch {
  uint64_t id = 0;
  std::string provider;
  const providers::Batch* batch = nullptr;
};

class Dispatcher {
 public:
  Dispatcher(std::map<std::string, ProviderLimits> limits, RetryPolicy retry, uint64_t seed = 1);

  void Enqueue(mapping::Operation op, MessageRef origin, Clock::time_point now);

  // Forms every batch that is due and fits in its provider's in-flight limit.
  // With `flush_all`, linger is ignored (draining).
  std::vector<OutgoingBatch> TakeReady(Clock::time_point now, bool flush_all = false);

  // Applies one Outcome per item of batch `id`. Retried items wait for their
  // backoff and keep their place in front of their contact's later operations
  // (unless `keep_retrying(origin)` says their partition is gone: then they are
  // dropped). Returns the operations that are finished.
  std::vector<Finished> OnResult(uint64_t id, const std::vector<providers::Outcome>& outcomes,
                                 Clock::time_point now,
                                 const std::function<bool(const MessageRef&)>& keep_retrying);

  // Drops queued and retry-waiting operations of a revoked partition.
  // In-flight ones finish normally; the caller ignores their results.
  void DropPartition(const kafka::TopicPartition& tp);

  // The earliest moment a queue becomes due or a retry wakes, if any.
  std::optional<Clock::time_point> NextDeadline() const;

  size_t Queued() const { return queued_; }           // waiting or backing off
  size_t InFlight() const { return in_flight_ops_; }  // items in sent batches
  size_t Pending() const { return queued_ + in_flight_ops_; }
  // Retries scheduled so far (a provider answered "try again").
  uint64_t Retries() const { return retries_; }

 private:
  struct Item {
    mapping::Operation op;
    MessageRef origin;
    int attempts = 0;
    Clock::time_point ready_at;  // enqueue time, or when a retry may go
  };
  struct Queue {
    std::string provider;
    std::string target;
    std::optional<mapping::Routing> routing;
    std::deque<Item> waiting;       // arrival order; retries re-enter at the front
    std::vector<Item> backing_off;  // retries not yet due
    // Contacts with an operation in flight or backing off.
    std::unordered_set<std::string> busy;
    // Nothing in `waiting` can go until a result or a retry wakes something.
    bool stalled = false;
  };
  struct InFlightBatch {
    std::string queue_key;
    std::vector<Item> items;
    providers::Batch batch;
  };

  std::optional<InFlightBatch> FormBatch(Queue& queue, size_t max_batch);
  void WakeRetries(Queue& queue, Clock::time_point now);
  std::chrono::milliseconds Backoff(int attempts, const providers::Outcome& outcome);

  std::map<std::string, ProviderLimits> limits_;
  RetryPolicy retry_;
  std::mt19937_64 rng_;
  std::map<std::string, Queue> queues_;  // by Operation::BatchKey()
  std::map<uint64_t, InFlightBatch> in_flight_;
  std::map<std::string, int> in_flight_per_provider_;
  uint64_t next_id_ = 1;
  size_t queued_ = 0;
  size_t in_flight_ops_ = 0;
  uint64_t retries_ = 0;
};

}  // namespace crmsync::worker
