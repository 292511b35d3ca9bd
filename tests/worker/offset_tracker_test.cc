#include "worker/offset_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

namespace crmsync::worker {
namespace {

using kafka::TopicPartition;

const TopicPartition kTp{"events", 0};

TEST(OffsetTracker, OutOfOrderCompletionsCommitOnlyTheContiguousPrefix) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  for (int64_t offset = 10; offset < 15; ++offset) tracker.Add(kTp, offset, 1);

  tracker.Complete(kTp, 12);
  tracker.Complete(kTp, 11);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);

  tracker.Complete(kTp, 10);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 13);

  tracker.Complete(kTp, 14);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
  tracker.Complete(kTp, 13);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 15);
  EXPECT_EQ(tracker.Outstanding(kTp), 0u);
}

TEST(OffsetTracker, MessageWithSeveralOperationsIsDoneAfterTheLastOne) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  tracker.Add(kTp, 0, 3);
  tracker.Add(kTp, 1, 1);

  tracker.Complete(kTp, 0);
  tracker.Complete(kTp, 1);
  tracker.Complete(kTp, 0);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
  EXPECT_EQ(tracker.Outstanding(kTp), 1u);

  tracker.Complete(kTp, 0);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 2);
  EXPECT_EQ(tracker.Outstanding(kTp), 0u);
}

TEST(OffsetTracker, MessageWithoutOperationsIsDoneAtOnce) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  tracker.Add(kTp, 0, 0);
  EXPECT_EQ(tracker.Outstanding(kTp), 0u);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 1);

  // Behind a pending message it waits for that one.
  tracker.Add(kTp, 1, 1);
  tracker.Add(kTp, 2, 0);
  EXPECT_EQ(tracker.Outstanding(kTp), 1u);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
  tracker.Complete(kTp, 1);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 3);
}

TEST(OffsetTracker, GapsBetweenOffsetsDoNotBlockTheWatermark) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  // 6 is never consumed (compacted away or a transaction marker).
  tracker.Add(kTp, 5, 1);
  tracker.Add(kTp, 7, 1);
  tracker.Add(kTp, 100, 1);

  tracker.Complete(kTp, 7);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
  tracker.Complete(kTp, 5);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 8);
  tracker.Complete(kTp, 100);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 101);
}

TEST(OffsetTracker, RevokeDropsStateAndIgnoresLateCompletions) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  tracker.Add(kTp, 0, 1);
  tracker.Add(kTp, 1, 1);
  ASSERT_EQ(tracker.Outstanding(), 2u);

  tracker.Revoke(kTp);
  EXPECT_FALSE(tracker.IsAssigned(kTp));
  EXPECT_EQ(tracker.Outstanding(), 0u);
  tracker.Complete(kTp, 0);
  tracker.Complete(kTp, 1);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
  EXPECT_TRUE(tracker.TakeAllCommittable().empty());

  // Re-assigned, it starts afresh: the completions of the old assignment
  // counted for nothing.
  tracker.Assign(kTp);
  tracker.Add(kTp, 0, 1);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
  tracker.Complete(kTp, 0);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 1);
}

// Messages of several partitions interleave; revoking the partition just
// used, and its neighbour, leaves the others' state intact.
TEST(OffsetTracker, InterleavedPartitionsKeepTheirOwnStateAcrossRevokes) {
  OffsetTracker tracker;
  const TopicPartition a{"events", 0}, b{"events", 1}, c{"other", 0};
  for (const auto& tp : {a, b, c}) tracker.Assign(tp);
  for (int64_t offset = 0; offset < 4; ++offset) {
    for (const auto& tp : {a, b, c}) tracker.Add(tp, offset, 1);
  }
  tracker.Complete(b, 0);
  tracker.Revoke(b);  // the partition looked up last
  EXPECT_FALSE(tracker.IsAssigned(b));
  EXPECT_FALSE(tracker.AlreadyAdded(b, 0));
  tracker.Add(b, 4, 1);
  tracker.Complete(b, 1);
  EXPECT_EQ(tracker.TakeCommittable(b), std::nullopt);
  EXPECT_TRUE(tracker.AlreadyAdded(a, 3));
  EXPECT_FALSE(tracker.AlreadyAdded(a, 4));
  tracker.Complete(a, 0);
  tracker.Complete(c, 0);
  tracker.Complete(c, 1);
  tracker.Revoke(a);
  EXPECT_EQ(tracker.TakeCommittable(c), 2);
  EXPECT_EQ(tracker.Outstanding(), 2u);
  tracker.Assign(b);
  EXPECT_FALSE(tracker.AlreadyAdded(b, 0));
  tracker.Add(b, 7, 0);
  EXPECT_EQ(tracker.TakeCommittable(b), 8);
}

TEST(OffsetTracker, AddOnUnassignedPartitionIsIgnored) {
  OffsetTracker tracker;
  tracker.Add(kTp, 0, 1);
  tracker.Add(kTp, 1, 0);
  EXPECT_FALSE(tracker.IsAssigned(kTp));
  EXPECT_EQ(tracker.Outstanding(), 0u);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
}

TEST(OffsetTracker, AssignIsIdempotent) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  tracker.Add(kTp, 0, 1);
  tracker.Assign(kTp);
  EXPECT_EQ(tracker.Outstanding(kTp), 1u);
  tracker.Complete(kTp, 0);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 1);
}

TEST(OffsetTracker, TakeReturnsOnlyWhenTheWatermarkAdvanced) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
  tracker.Add(kTp, 0, 1);
  tracker.Complete(kTp, 0);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 1);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
  EXPECT_TRUE(tracker.TakeAllCommittable().empty());

  tracker.Add(kTp, 1, 0);
  auto all = tracker.TakeAllCommittable();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].first, kTp);
  EXPECT_EQ(all[0].second, 2);
  EXPECT_EQ(tracker.TakeCommittable(kTp), std::nullopt);
}

TEST(OffsetTracker, RedeliveredOffsetNeverMovesTheWatermarkBack) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  for (int64_t offset = 0; offset < 5; ++offset) tracker.Add(kTp, offset, 0);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 5);

  EXPECT_TRUE(tracker.AlreadyAdded(kTp, 2));
  EXPECT_TRUE(tracker.AlreadyAdded(kTp, 4));
  EXPECT_FALSE(tracker.AlreadyAdded(kTp, 5));
  tracker.Add(kTp, 2, 1);
  EXPECT_EQ(tracker.Outstanding(kTp), 0u);
  tracker.Add(kTp, 5, 0);
  EXPECT_EQ(tracker.TakeCommittable(kTp), 6);
}

TEST(OffsetTracker, AReassignedPartitionStartsAfresh) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  tracker.Add(kTp, 7, 1);
  tracker.Revoke(kTp);
  EXPECT_FALSE(tracker.AlreadyAdded(kTp, 7));
  tracker.Assign(kTp);
  EXPECT_FALSE(tracker.AlreadyAdded(kTp, 7));  // replayed by the new assignment
}

TEST(OffsetTracker, TracksManyPartitionsIndependently) {
  OffsetTracker tracker;
  constexpr int kPartitions = 64;
  for (int p = 0; p < kPartitions; ++p) {
    const TopicPartition tp{"events", p};
    tracker.Assign(tp);
    for (int64_t offset = 0; offset < 10; ++offset) tracker.Add(tp, offset, 1);
  }
  EXPECT_EQ(tracker.Outstanding(), static_cast<size_t>(kPartitions * 10));

  // Partition p completes its first p % 11 messages.
  for (int p = 0; p < kPartitions; ++p) {
    for (int64_t offset = 0; offset < p % 11; ++offset) tracker.Complete({"events", p}, offset);
  }
  std::map<TopicPartition, int64_t> committed;
  for (const auto& [tp, offset] : tracker.TakeAllCommittable()) committed[tp] = offset;
  for (int p = 0; p < kPartitions; ++p) {
    const TopicPartition tp{"events", p};
    const int done = p % 11;
    if (done == 0) {
      EXPECT_FALSE(committed.contains(tp)) << tp.ToString();
    } else {
      EXPECT_EQ(committed[tp], done) << tp.ToString();
    }
    EXPECT_EQ(tracker.Outstanding(tp), static_cast<size_t>(10 - done)) << tp.ToString();
  }
  // A second topic with the same partition numbers is a different partition.
  EXPECT_FALSE(tracker.IsAssigned({"other", 0}));
}

TEST(OffsetTracker, ShuffledCompletionsOfManyOutstandingMessagesCommitEverything) {
  OffsetTracker tracker;
  tracker.Assign(kTp);
  constexpr int64_t kMessages = 200'000;
  std::vector<int64_t> offsets;
  offsets.reserve(kMessages);
  // Every tenth offset is missing, as after compaction.
  for (int64_t i = 0; i < kMessages; ++i) {
    const int64_t offset = i + i / 9;
    tracker.Add(kTp, offset, 1);
    offsets.push_back(offset);
  }
  ASSERT_EQ(tracker.Outstanding(kTp), static_cast<size_t>(kMessages));
  std::mt19937 rng(42);
  std::shuffle(offsets.begin(), offsets.end(), rng);

  const int64_t last = offsets.empty() ? 0 : *std::max_element(offsets.begin(), offsets.end());
  int64_t watermark = -1;
  for (const int64_t offset : offsets) {
    tracker.Complete(kTp, offset);
    if (auto taken = tracker.TakeCommittable(kTp)) {
      EXPECT_GT(*taken, watermark);
      watermark = *taken;
    }
  }
  EXPECT_EQ(watermark, last + 1);
  EXPECT_EQ(tracker.Outstanding(), 0u);
}

}  // namespace
}  // namespace crmsync::worker
