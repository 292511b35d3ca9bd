// OffsetTracker: per partition, which consumed messages are fully done, and the
// offset that may be committed (the end of the contiguous run of done
// messages, i.e. the next offset to consume).
//
// Not thread-safe: owned by the worker's loop thread. Never throws; misuse
// (completing an unknown offset) is an assert in debug builds and ignored
// otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "worker/kafka/topic_partition.h"

namespace crmsync::worker {

class OffsetTracker {
 public:
  OffsetTracker() = default;
  // Not copied or moved: the lookup cache points into the map.
  OffsetTracker(const OffsetTracker&) = delete;
  OffsetTracker& operator=(const OffsetTracker&) = delete;

  // Starts tracking a partition (on assignment). Idempotent.
  void Assign(const kafka::TopicPartition& tp);
  // Stops tracking (on revoke); later calls for it are ignored.
  void Revoke(const kafka::TopicPartition& tp);
  bool IsAssigned(const kafka::TopicPartition& tp) const;

  // Registers a consumed message that needs `pending` completions before it is
  // done (0: done at once). Offsets of one partition arrive in increasing order;
  // gaps (compacted or transactional offsets) are allowed.
  void Add(const kafka::TopicPartition& tp, int64_t offset, size_t pending);
  // Whether `offset` is at or below the last one added for the partition in
  // this assignment: the consumer delivered it again (it rewound without a
  // revoke). Such a message must not be processed twice — its operations
  // would be applied again after newer ones of the same contact.
  bool AlreadyAdded(const kafka::TopicPartition& tp, int64_t offset) const;

  // One of the message's operations finished (delivered or deliberately
  // rejected). Ignored for partitions that are not assigned.
  void Complete(const kafka::TopicPartition& tp, int64_t offset);

  // The offset to commit (last contiguous done offset + 1) if it advanced
  // since the last call for this partition.
  std::optional<int64_t> TakeCommittable(const kafka::TopicPartition& tp);

  // Committable offset (last contiguous done + 1) for every assigned
  // partition that advanced since the last call.
  std::vector<std::pair<kafka::TopicPartition, int64_t>> TakeAllCommittable();

  // Messages registered but not yet done, over all partitions / for one.
  size_t Outstanding() const;
  size_t Outstanding(const kafka::TopicPartition& tp) const;

 private:
  // One registered message not yet released from the head of its partition.
  struct Entry {
    int64_t offset;
    size_t remaining;  // completions still expected; 0: done
  };
  struct PartitionState {
    std::deque<Entry> entries;  // increasing offsets; the head is never done
    int64_t last_added = -1;    // highest offset registered
    int64_t committable = -1;   // last contiguous done offset + 1; -1: none yet
    int64_t reported = -1;      // last value returned by Take*
    size_t outstanding = 0;     // entries with remaining > 0
  };
  using Partitions = std::map<kafka::TopicPartition, PartitionState>;

  // The partition's state, or nullptr. Every message asks three or four
  // times for its own partition, and consecutive messages mostly share one:
  // the last one found is compared first (a map node stays put until it is
  // erased, and Revoke forgets it).
  PartitionState* Find(const kafka::TopicPartition& tp) const;

  Partitions partitions_;
  mutable Partitions::iterator last_found_ = partitions_.end();
  size_t total_outstanding_ = 0;
};

}  // namespace crmsync::worker
