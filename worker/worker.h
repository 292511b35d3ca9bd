// Worker: the consume → map → dispatch → deliver → commit loop.
//
// The loop and partition ownership live here; the parts it drives have their
// own homes: Dispatcher (per-contact lines, batches, retries), Delivery
// (exchanges, budgets, circuit breakers, the HTTP engine), DeadLetterWriter
// and OffsetTracker. Run() executes the loop on the calling thread; the HTTP
// engine has its own I/O thread whose answers are handed back through a
// queue, so all pipeline state is touched by the loop thread only. Stats()
// may be read from any thread.
//
// A partition's ownership — assigned, revoking, gone — owns all its work.
// Revoke: stop taking its messages, drain its work within
// worker.drainTimeoutMs (requests start only if they can end by the
// deadline), commit what is done, withdraw the rest. Loss: withdraw at once.
// Either way no request carrying its work starts afterwards.
//
// Guarantee: a partition's offset is committed only up to the first message
// that is not yet done (every operation delivered or deliberately rejected).
// The constructor throws on bad configuration (std::runtime_error or
// mapping::ConfigError); Run() does not throw for per-message problems.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mapping/config.h"
#include "providers/provider.h"
#include "worker/dead_letter_writer.h"
#include "worker/delivery.h"
#include "worker/dispatcher.h"
#include "worker/kafka/consumer.h"
#include "worker/metrics.h"
#include "worker/offset_tracker.h"
#include "worker/process_message.h"
#include "worker/state/state_store.h"

namespace crmsync::worker {

// Counters for progress displays and tests (Prometheus has the same and more).
struct WorkerStats {
  std::atomic<uint64_t> consumed{0};
  std::atomic<uint64_t> malformed{0};
  std::atomic<uint64_t> unmatched{0};
  std::atomic<uint64_t> delivered{0};       // operations the provider confirmed
  std::atomic<uint64_t> rejected{0};        // operations the provider refused for good
  std::atomic<uint64_t> dead_lettered{0};   // records written to the dead-letter topic
  std::atomic<uint64_t> retried{0};         // operation attempts that will be retried
  std::atomic<uint64_t> exhausted{0};       // operations given up after their retry bounds
  std::atomic<uint64_t> oversized{0};       // messages above worker.maxMessageBytes
  std::atomic<uint64_t> circuit_opened{0};  // times a provider's circuit opened
  std::atomic<uint64_t> pending{0};         // operations queued or in flight
  std::atomic<uint64_t> assigned_partitions{0};
  std::atomic<uint64_t> outstanding_messages{0};      // consumed, not yet done
  std::atomic<uint64_t> max_outstanding_messages{0};  // the most at once so far
  std::atomic<uint64_t> revokes{0};                   // rebalances that revoked partitions
  std::atomic<uint64_t> losses{0};                    // rebalances that found partitions lost
  // Contact state (state.enabled).
  std::atomic<uint64_t> skipped{0};     // messages skipped: contact unknown or incomplete
  std::atomic<uint64_t> suppressed{0};  // operations the provider already had
  // Of those, operations of replayed messages the provider had confirmed
  // before the crash or rebalance (contact state's delivered_at).
  std::atomic<uint64_t> replays_skipped{0};
  std::atomic<uint64_t> restored_contacts{0};  // contact states restored on assignment
};

// A change of this member's partition ownership, for an OwnershipObserver.
struct OwnershipChange {
  enum class Kind { kAssigned, kRevoked, kLost };
  Kind kind = Kind::kAssigned;
  std::vector<kafka::TopicPartition> partitions;
  // Assigned: before any message of the partitions is taken. Revoked or
  // lost: once their work is drained (revoke only), committed and withdrawn;
  // no request carrying their work starts after this moment.
  Clock::time_point at;
};
using OwnershipObserver = std::function<void(const OwnershipChange&)>;

class Worker : public kafka::RebalanceListener {
 public:
  Worker(mapping::Config config, Metrics& metrics);
  ~Worker() override;

  // Consumes until `stop` is set, then stops fetching, drains in-flight work
  // within worker.drainTimeoutMs, commits what is done and leaves the group.
  // Returns 0 after a clean shutdown.
  int Run(const std::atomic<bool>& stop);

  const WorkerStats& Stats() const { return stats_; }
  // Called on the loop thread at the end of every rebalance callback (the
  // revoke of a shutdown included), e.g. to keep a history of ownership for
  // diagnostics or tests. Set it before Run().
  void SetOwnershipObserver(OwnershipObserver observer) { observer_ = std::move(observer); }

  // kafka::RebalanceListener (called from inside Run's polling).
  void OnAssigned(const std::vector<kafka::TopicPartition>& partitions) override;
  void OnRevoking(const std::vector<kafka::TopicPartition>& partitions, bool lost) override;

 private:
  void HandleMessage(const kafka::Message& message, Clock::time_point now);
  // The earliest moment something is due: a batch, a retry, a budget slot,
  // a probe or a dead-letter retry.
  std::optional<Clock::time_point> NextDeadline();
  void Finish(const DeliveredBatch& delivered, Clock::time_point now);
  // Applies finished exchanges and dead-letter acknowledgements, and sends
  // every batch that is due.
  void Pump(bool flush_all);
  // Waits until an answer arrives or `until` passes.
  void WaitForCompletions(Clock::time_point until);
  // Drains until none of `partitions` has unfinished messages or the
  // deadline passes: their requests start only if they can end by then.
  // The caller withdraws what is left. With `serve_consumer` the consumer
  // is polled meanwhile (its messages ignored) so that the group keeps the
  // member; never inside a rebalance callback.
  void Drain(const std::vector<kafka::TopicPartition>& partitions, Clock::time_point deadline,
             bool serve_consumer);
  // Stores every partition's committable offset (librdkafka commits stored
  // offsets on its own timer, only while the group is stable).
  void StoreCommittable();
  // Stores, then commits the stored offsets of every owned partition and
  // waits for the answer (revoke and shutdown). The commits of `handed_over`
  // partitions carry the handover mark.
  bool CommitNow(const std::set<kafka::TopicPartition>& handed_over = {});
  // Of these partitions, those whose work is all done and that hold none of
  // a previous owner's: their next owner need not wait.
  std::set<kafka::TopicPartition> HandedOver(
      const std::vector<kafka::TopicPartition>& partitions) const;
  // Newly assigned partitions whose committed offset carries no handover
  // mark are fenced: paused, their messages held, until takeover_fence_ has
  // passed. The others are claimed: a mark found is cleared, a partition
  // without a committed offset gets the one it starts from.
  void TakeOver(const std::vector<kafka::TopicPartition>& partitions, Clock::time_point now);
  // Ends the fences that are over and processes what they held.
  void ReleaseFences(Clock::time_point now);
  // Gives up partitions: nothing of theirs is sent from now on.
  void Disown(const std::vector<kafka::TopicPartition>& partitions);
  // Pauses and resumes partitions: all of them under backpressure
  // (operations, messages or retained bytes over their limits), else those
  // waiting for a provider whose circuit is open and those with an exhausted
  // operation kept retrying.
  void UpdatePauses(Clock::time_point now);
  void OnCircuitChange(const std::string& provider, Clock::time_point now);
  // Sets the consumer-lag gauge of every owned partition whose high
  // watermark is known: high watermark minus the group's committed offset.
  void UpdateLag();
  bool IsCurrent(const MessageRef& ref) const;

  // Contact state: stores the message's state changes and writes them to
  // the changelog; the message is done only once the broker has them (the
  // caller counted one completion per change).
  void ApplyStateChanges(const MessageRef& origin, std::vector<StateContext::Change>& changes);
  // Contact state: drops the operations the provider last confirmed
  // unchanged, and remembers what the others send.
  void SuppressUnchanged(const MessageRef& origin, std::vector<mapping::Operation>& operations);
  // Contact state: a finished operation updates the contact's delivered
  // projection (confirmed: its hash; rejected: unknown).
  void RecordProjection(const Finished& finished);
  void RestoreState(const kafka::TopicPartition& tp);

  void DeadLetter(const MessageRef& origin, std::string_view key, std::string_view value,
                  std::vector<std::pair<std::string, std::string>> headers, const char* kind);
  void Release(const MessageRef& origin);
  // Adds the per-message counts gathered since the last call to the metrics
  // (after each poll: one label look-up per poll, not per message).
  void FlushTallies();

  mapping::Config config_;
  Metrics& metrics_;
  WorkerStats stats_;
  // Messages consumed per topic and decoded per input format since the last
  // FlushTallies().
  std::vector<std::pair<std::string, uint64_t>> consumed_tally_;
  std::array<uint64_t, 8> decoded_tally_{};
  Dispatcher dispatcher_;
  Delivery delivery_;
  std::unique_ptr<DeadLetterWriter> dead_letters_;  // when kafka.deadLetterTopic is set

  // Ownership: what this member owns and how far each partition is done.
  OffsetTracker tracker_;
  std::set<kafka::TopicPartition> assigned_;
  std::map<kafka::TopicPartition, uint64_t> epochs_;
  std::map<kafka::TopicPartition, int64_t> stored_;     // last stored offset
  std::map<kafka::TopicPartition, int64_t> committed_;  // the group's, for lag
  // Takeover fences (docs/ARCHITECTURE.md, "Handover").
  std::chrono::milliseconds takeover_fence_{0};
  struct HeldRecord {
    int64_t offset = 0;
    std::string key;
    std::string payload;
    bool null_payload = false;
    int64_t timestamp_ms = -1;
  };
  struct Fence {
    Clock::time_point until;
    // The offset this member could not commit yet to claim the partition
    // (clearing a handover mark, or first of all owners).
    std::optional<int64_t> claim;
    std::vector<HeldRecord> held;  // messages that arrived before the pause
  };
  std::map<kafka::TopicPartition, Fence> fences_;
  // The original record of every message with operations still pending
  // (only with a dead-letter topic), so that a rejected operation can be
  // written with its message's key and value.
  struct Retained {
    std::string key;
    std::string value;
    size_t pending = 0;  // operations of the message not yet finished
  };
  std::map<kafka::TopicPartition, std::map<int64_t, Retained>> retained_;
  size_t retained_bytes_ = 0;

  // Pause policy.
  std::map<std::string, std::set<kafka::TopicPartition>> circuit_paused_;
  std::vector<kafka::TopicPartition> stuck_;  // refreshed every kStuckRefresh
  Clock::time_point stuck_refreshed_{};
  Clock::time_point gauges_refreshed_{};
  std::set<kafka::TopicPartition> paused_set_;  // what the consumer has paused
  bool backpressure_ = false;
  bool stopping_ = false;  // the shutdown drain has begun
  OwnershipObserver observer_;

  // Contact state (docs/STATE.md), when state.enabled.
  std::unique_ptr<ContactStateStore> state_;
  // What each unfinished message sends per provider target, for the
  // delivered projection: the contacts and their operation hashes, and how
  // many of the message's operations on that target are unfinished.
  struct Projection {
    std::string provider;
    std::string target;
    std::vector<std::pair<std::string, uint64_t>> contacts;
    size_t remaining = 0;
  };
  std::map<kafka::TopicPartition, std::map<int64_t, std::vector<Projection>>> projections_;
  // Unfinished operations per (partition, contact, "<provider>/<target>"):
  // while any is, nothing of that contact there is suppressed.
  std::map<kafka::TopicPartition, std::map<std::string, size_t>> unfinished_targets_;

  std::unique_ptr<kafka::Consumer> consumer_;
};

}  // namespace crmsync::worker
