// Consumer: the worker's librdkafka KafkaConsumer — cooperative-sticky group
// membership, manual offset storage, pause/resume, and commits that never
// block without a deadline.
//
// Not thread-safe: every method is called from the worker's loop thread. The
// RebalanceListener is invoked from inside Poll() on that same thread. (A
// thread of the consumer's own restarts the fetcher when the prefetch has
// drained: see FetchWaker in consumer.cc.)
// The constructor throws std::runtime_error naming the librdkafka property
// that was rejected; per-message and commit errors are returned or logged,
// never thrown.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "worker/kafka/handle_fwd.h"
#include "worker/kafka/message.h"
#include "worker/kafka/topic_partition.h"

namespace crmsync::kafka {

class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void OnAssigned(const std::vector<TopicPartition>& partitions) = 0;
  // Called before the partitions are given up. `lost` is true when the group
  // already considers them gone (session timeout): committing is pointless.
  virtual void OnRevoking(const std::vector<TopicPartition>& partitions, bool lost) = 0;
};

// An offset of the group (next to consume) with the metadata string
// committed alongside it ("" for none).
struct CommittedOffset {
  TopicPartition tp;
  int64_t offset = 0;
  std::string metadata;
};

struct ConsumerOptions {
  std::string bootstrap_servers;
  std::string group_id;
  std::vector<std::string> topics;
  // User passthrough properties, applied first; forced settings override them.
  std::map<std::string, std::string> properties;
  // How often librdkafka commits the offsets stored with StoreOffsets().
  std::chrono::milliseconds commit_interval{1000};
  // Called when librdkafka resets a partition's position because the offset
  // it was to fetch from is gone (retention deleted it, the topic was
  // recreated): messages were skipped or will be replayed. Runs on a
  // librdkafka thread; the consumer has already logged a warning.
  std::function<void(const TopicPartition& tp, const std::string& detail)> on_offset_reset =
      nullptr;
};

class Consumer {
 public:
  Consumer(const ConsumerOptions& options, RebalanceListener* listener);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Waits up to `timeout` for the first message, then takes whatever else is
  // already buffered, up to `max_messages`; `handler` runs for each message.
  // Returns how many messages were handled.
  size_t Poll(std::chrono::milliseconds timeout, size_t max_messages,
              const std::function<void(const Message&)>& handler);

  // Records the next offsets to commit (last done + 1) for these partitions.
  // librdkafka commits stored offsets every commit_interval, and only while
  // the group is stable: a commit that raced a rebalance's JoinGroup would be
  // answered ILLEGAL_GENERATION and librdkafka 2.0.2 would then treat the
  // whole assignment as lost.
  void StoreOffsets(const std::vector<std::pair<TopicPartition, int64_t>>& offsets);
  // Commits these offsets, each with its metadata, and waits for the
  // broker's answer at most until `deadline`. Returns true if the commit was
  // acknowledged. (Offsets stored with StoreOffsets() are committed without
  // metadata: librdkafka 2.0.2 does not keep what offsets_store is given.
  // A partition committed with metadata forgets its stored offset, so that
  // librdkafka's own commits do not replace the metadata.)
  bool CommitSync(const std::vector<CommittedOffset>& offsets, std::chrono::milliseconds deadline);

  // Stop and restart fetching these partitions. Return the ones librdkafka
  // refused (already logged), e.g. no longer assigned; empty on success.
  std::vector<TopicPartition> Pause(const std::vector<TopicPartition>& partitions);
  std::vector<TopicPartition> Resume(const std::vector<TopicPartition>& partitions);
  std::vector<TopicPartition> Assignment() const;

  // Whether a broker is reachable, as far as this client knows: set by any
  // sign of one (an assignment, a fetched message, an acknowledged commit, a
  // statistics report with a broker up), cleared by an all-brokers-down
  // error or a statistics report with none up. False until the first sign.
  // Statistics come every statistics.interval.ms (5000 unless the
  // passthrough properties say otherwise; 0 disables them).
  bool BrokerReachable() const { return broker_reachable_; }
  // The partition's high watermark as of the last fetch response, without
  // asking the broker; nullopt while unknown.
  std::optional<int64_t> HighWatermark(const TopicPartition& tp) const;
  // The partition's low watermark (log start) as of the last fetch response.
  std::optional<int64_t> LowWatermark(const TopicPartition& tp) const;
  // The offset the consumer will hand out next for the partition (last
  // consumed + 1); nullopt while unknown.
  std::optional<int64_t> Position(const TopicPartition& tp) const;

  // Where a partition without a committed offset starts, as auto.offset.reset
  // says (earliest: the log start, latest: the log end), asking the broker
  // and waiting at most `timeout`; nullopt when it cannot be told (no answer,
  // or auto.offset.reset=error).
  std::optional<int64_t> StartOffset(const TopicPartition& tp,
                                     std::chrono::milliseconds timeout) const;
  // The group's committed offsets of these partitions with their metadata,
  // asking the coordinator and waiting at most `timeout`; partitions without
  // one are left out. nullopt when the coordinator did not answer.
  std::optional<std::vector<CommittedOffset>> Committed(
      const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) const;
  // The group's commit of the partition the broker is known to hold: the
  // last Committed() answer, acknowledged CommitSync() or periodic commit
  // for it. No restart or rebalance consumes the partition from below it
  // again (short of an offset reset). nullopt while unknown. Callbacks run
  // in the polling thread, which is the only one to ask.
  std::optional<int64_t> DurableCommit(const TopicPartition& tp) const;

  // Leaves the group (revoking through the listener) and closes the handle,
  // waiting at most `timeout`; past it the handle is abandoned without the
  // group protocol's goodbye (the group then times the member out).
  // Returns true if the consumer closed within the timeout.
  bool Close(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  void KeepMetadata(const std::vector<CommittedOffset>& offsets);
  struct Callbacks;  // librdkafka's callbacks, in consumer.cc
  std::vector<TopicPartition> PauseOrResume(const std::vector<TopicPartition>& partitions,
                                            bool pause);

  // Restarts a fetcher that stopped at the prefetch bound (see consumer.cc).
  class FetchWaker;
  void WakeFetcherIfDrained();

  KafkaPtr handle_;
  std::unique_ptr<FetchWaker> waker_;
  rd_kafka_queue_s* queue_ = nullptr;  // the consumer's queue (a reference; released in Close())
  int64_t queued_min_messages_ = 100000;
  int64_t queued_max_bytes_ = 0;
  size_t queued_peak_ = 0;         // the queue's longest since the previous Poll() ended
  uint64_t bytes_handed_out_ = 0;  // key and payload bytes of the messages handed out
  uint64_t messages_handed_out_ = 0;
  RebalanceListener* listener_;
  std::string offset_reset_ = "earliest";  // auto.offset.reset in effect
  std::function<void(const TopicPartition&, const std::string&)> on_offset_reset_;
  bool closed_ = false;
  bool abandoned_ = false;          // Close() gave up waiting
  bool assigned_once_ = false;      // an assignment callback has run (see Close())
  bool unsafe_to_destroy_ = false;  // the first rebalance never finished (see Close())
  bool broker_reachable_ = false;
  mutable std::map<TopicPartition, int64_t> durable_;  // see DurableCommit()
};

}  // namespace crmsync::kafka
