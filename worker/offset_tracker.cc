#include "worker/offset_tracker.h"

#include <algorithm>
#include <cassert>

namespace crmsync::worker {

void OffsetTracker::Assign(const kafka::TopicPartition& tp) { partitions_.try_emplace(tp); }

OffsetTracker::PartitionState* OffsetTracker::Find(const kafka::TopicPartition& tp) const {
  // Finding changes nothing; the iterator is mutable for Add and Complete.
  auto& partitions = const_cast<Partitions&>(partitions_);
  if (last_found_ == partitions.end() || last_found_->first != tp) {
    auto it = partitions.find(tp);
    if (it == partitions.end()) return nullptr;
    last_found_ = it;
  }
  return &last_found_->second;
}

void OffsetTracker::Revoke(const kafka::TopicPartition& tp) {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return;
  total_outstanding_ -= it->second.outstanding;
  if (it == last_found_) last_found_ = partitions_.end();
  partitions_.erase(it);
}

bool OffsetTracker::IsAssigned(const kafka::TopicPartition& tp) const {
  return Find(tp) != nullptr;
}

bool OffsetTracker::AlreadyAdded(const kafka::TopicPartition& tp, int64_t offset) const {
  const PartitionState* state = Find(tp);
  return state != nullptr && offset <= state->last_added;
}

void OffsetTracker::Add(const kafka::TopicPartition& tp, int64_t offset, size_t pending) {
  PartitionState* partition = Find(tp);
  if (partition == nullptr) return;
  PartitionState& state = *partition;
  // A redelivered offset (the consumer rewound without a revoke) must not
  // move the watermark back: the earlier registration already covers it.
  if (offset <= state.last_added) return;
  state.last_added = offset;
  if (pending == 0 && state.entries.empty()) {
    // Nothing in flight before it, so it is the new end of the done prefix;
    // there is no need to keep an entry for it.
    state.committable = offset + 1;
    return;
  }
  state.entries.push_back({offset, pending});
  if (pending > 0) {
    ++state.outstanding;
    ++total_outstanding_;
  }
}

void OffsetTracker::Complete(const kafka::TopicPartition& tp, int64_t offset) {
  PartitionState* partition = Find(tp);
  if (partition == nullptr) return;
  PartitionState& state = *partition;
  auto& entries = state.entries;
  if (entries.empty() || offset < entries.front().offset || offset > entries.back().offset) {
    // Below the head it was released already, above the tail it was never
    // added: a completion that outlived a revoke and re-assign lands here.
    return;
  }
  // Offsets are usually dense, so the entry is normally at its distance from
  // the head; gaps fall back to a binary search over the sorted deque.
  size_t index = static_cast<size_t>(offset - entries.front().offset);
  if (index >= entries.size() || entries[index].offset != offset) {
    auto found = std::lower_bound(entries.begin(), entries.end(), offset,
                                  [](const Entry& e, int64_t o) { return e.offset < o; });
    index = static_cast<size_t>(found - entries.begin());
  }
  Entry& entry = entries[index];
  if (entry.offset != offset || entry.remaining == 0) {
    assert(false && "OffsetTracker::Complete on an unknown or already done offset");
    return;
  }
  if (--entry.remaining > 0) return;
  --state.outstanding;
  --total_outstanding_;
  if (index != 0) return;
  // The head finished: release it and every done entry behind it.
  while (!entries.empty() && entries.front().remaining == 0) {
    state.committable = entries.front().offset + 1;
    entries.pop_front();
  }
}

std::optional<int64_t> OffsetTracker::TakeCommittable(const kafka::TopicPartition& tp) {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return std::nullopt;
  PartitionState& state = it->second;
  if (state.committable <= state.reported) return std::nullopt;
  state.reported = state.committable;
  return state.committable;
}

std::vector<std::pair<kafka::TopicPartition, int64_t>> OffsetTracker::TakeAllCommittable() {
  std::vector<std::pair<kafka::TopicPartition, int64_t>> out;
  for (auto& [tp, state] : partitions_) {
    if (state.committable <= state.reported) continue;
    state.reported = state.committable;
    out.emplace_back(tp, state.committable);
  }
  return out;
}

size_t OffsetTracker::Outstanding() const { return total_outstanding_; }

size_t OffsetTracker::Outstanding(const kafka::TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  return it == partitions_.end() ? 0 : it->second.outstanding;
}

}  // namespace crmsync::worker
