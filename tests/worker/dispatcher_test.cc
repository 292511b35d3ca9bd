#include "worker/dispatcher.h"

#include <gtest/gtest.h>

#include <set>

namespace crmsync::worker {
namespace {

using providers::Outcome;
using providers::OutcomeKind;
using std::chrono::milliseconds;

const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

mapping::Operation Op(const std::string& contact, mapping::Action action = mapping::Action::kUpsert,
                      const std::string& target = "campaign-a") {
  mapping::Operation op;
  op.provider = "replify";
  op.target = target;
  op.action = action;
  op.contact_key = contact;
  op.contact.email = contact + "@example.com";
  return op;
}

MessageRef Ref(int64_t offset) { return MessageRef{{"t", 0}, offset, 1}; }

std::vector<Outcome> All(OutcomeKind kind, size_t n) {
  return std::vector<Outcome>(n, Outcome{kind, kind == OutcomeKind::kDone ? "" : "x", 0, {}});
}

bool Always(const MessageRef&) { return true; }

std::vector<std::string> Contacts(const OutgoingBatch& out) {
  std::vector<std::string> contacts;
  for (const auto* op : out.batch->items) contacts.push_back(op->contact_key);
  return contacts;
}

Dispatcher Make(size_t max_batch = 3, int max_in_flight = 2,
                milliseconds linger = milliseconds(50)) {
  return Dispatcher({{"replify", ProviderLimits{max_batch, linger, max_in_flight}}},
                    RetryPolicy{milliseconds(100), milliseconds(1000), milliseconds(5000)});
}

TEST(DispatcherTest, WaitsForLingerUntilBatchIsFull) {
  Dispatcher d = Make();
  d.Enqueue(Op("a"), Ref(0), kT0);
  EXPECT_TRUE(d.TakeReady(kT0).empty());
  EXPECT_EQ(d.NextDeadline(), kT0 + milliseconds(50));
  auto ready = d.TakeReady(kT0 + milliseconds(50));
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(Contacts(ready[0]), std::vector<std::string>{"a"});
}

TEST(DispatcherTest, FullBatchGoesAtOnceAndSplitsAtMaxBatch) {
  Dispatcher d = Make(3, 4);
  for (int i = 0; i < 7; ++i) d.Enqueue(Op("c" + std::to_string(i)), Ref(i), kT0);
  auto ready = d.TakeReady(kT0);
  // Two full batches go at once; the remaining single operation lingers.
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(Contacts(ready[0]), (std::vector<std::string>{"c0", "c1", "c2"}));
  EXPECT_EQ(Contacts(ready[1]), (std::vector<std::string>{"c3", "c4", "c5"}));
  EXPECT_EQ(d.Queued(), 1u);
  EXPECT_EQ(d.InFlight(), 6u);
}

TEST(DispatcherTest, SameContactNeverInFlightTwice) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  d.Enqueue(Op("a", mapping::Action::kRemove), Ref(1), kT0);
  d.Enqueue(Op("b"), Ref(2), kT0);
  auto first = d.TakeReady(kT0, true);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(Contacts(first[0]), (std::vector<std::string>{"a", "b"}));
  // a's remove waits for a's upsert even though a batch slot is free.
  EXPECT_TRUE(d.TakeReady(kT0, true).empty());
  auto finished = d.OnResult(first[0].id, All(OutcomeKind::kDone, 2), kT0, Always);
  ASSERT_EQ(finished.size(), 2u);
  auto second = d.TakeReady(kT0, true);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].batch->action, mapping::Action::kRemove);
  EXPECT_EQ(Contacts(second[0]), std::vector<std::string>{"a"});
}

TEST(DispatcherTest, BatchCarriesOneActionAndOtherContactsAreNotBlocked) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  d.Enqueue(Op("b", mapping::Action::kRemove), Ref(1), kT0);
  d.Enqueue(Op("c"), Ref(2), kT0);
  auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0].batch->action, mapping::Action::kUpsert);
  EXPECT_EQ(Contacts(ready[0]), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(ready[1].batch->action, mapping::Action::kRemove);
  EXPECT_EQ(Contacts(ready[1]), std::vector<std::string>{"b"});
}

TEST(DispatcherTest, RetryKeepsItsPlaceBeforeLaterOperationsOfTheContact) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto first = d.TakeReady(kT0, true);
  ASSERT_EQ(first.size(), 1u);
  d.Enqueue(Op("a", mapping::Action::kRemove), Ref(1), kT0);
  auto finished = d.OnResult(first[0].id, All(OutcomeKind::kRetry, 1), kT0, Always);
  EXPECT_TRUE(finished.empty());
  EXPECT_EQ(d.Retries(), 1u);
  // During the backoff nothing of contact a may go.
  EXPECT_TRUE(d.TakeReady(kT0 + milliseconds(10), true).empty());
  auto retry = d.TakeReady(kT0 + milliseconds(200), true);
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(retry[0].batch->action, mapping::Action::kUpsert);
  d.OnResult(retry[0].id, All(OutcomeKind::kDone, 1), kT0 + milliseconds(200), Always);
  auto next = d.TakeReady(kT0 + milliseconds(200), true);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].batch->action, mapping::Action::kRemove);
}

TEST(DispatcherTest, RetryAfterIsHonoured) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto first = d.TakeReady(kT0, true);
  Outcome retry{OutcomeKind::kRetry, "429", 429, milliseconds(2000)};
  d.OnResult(first[0].id, {retry}, kT0, Always);
  EXPECT_EQ(d.NextDeadline(), kT0 + milliseconds(2000));
  EXPECT_TRUE(d.TakeReady(kT0 + milliseconds(1999), true).empty());
  EXPECT_EQ(d.TakeReady(kT0 + milliseconds(2000), true).size(), 1u);
}

TEST(DispatcherTest, RejectAndDoneBothFinishWithAttempts) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  d.Enqueue(Op("b"), Ref(1), kT0);
  auto first = d.TakeReady(kT0, true);
  auto finished = d.OnResult(
      first[0].id,
      {Outcome{OutcomeKind::kDone, "", 200, {}}, Outcome{OutcomeKind::kReject, "bad", 200, {}}},
      kT0, Always);
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0].origin.offset, 0);
  EXPECT_EQ(finished[0].kind, OutcomeKind::kDone);
  EXPECT_EQ(finished[1].kind, OutcomeKind::kReject);
  EXPECT_EQ(finished[1].reason, "bad");
  EXPECT_EQ(finished[1].attempts, 1);
  EXPECT_EQ(d.Pending(), 0u);
}

TEST(DispatcherTest, InFlightLimitPerProvider) {
  Dispatcher d = Make(1, 2);
  for (int i = 0; i < 5; ++i) d.Enqueue(Op("c" + std::to_string(i)), Ref(i), kT0);
  auto ready = d.TakeReady(kT0, true);
  EXPECT_EQ(ready.size(), 2u);
  EXPECT_TRUE(d.TakeReady(kT0, true).empty());
  d.OnResult(ready[0].id, All(OutcomeKind::kDone, 1), kT0, Always);
  EXPECT_EQ(d.TakeReady(kT0, true).size(), 1u);
}

TEST(DispatcherTest, DifferentTargetsAreSeparateBatches) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a", mapping::Action::kUpsert, "x"), Ref(0), kT0);
  d.Enqueue(Op("a", mapping::Action::kUpsert, "y"), Ref(0), kT0);
  auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 2u);
  std::set<std::string> targets{ready[0].batch->target, ready[1].batch->target};
  EXPECT_EQ(targets, (std::set<std::string>{"x", "y"}));
}

TEST(DispatcherTest, DropPartitionForgetsQueuedAndBackingOffWork) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), MessageRef{{"t", 0}, 0, 1}, kT0);
  d.Enqueue(Op("b"), MessageRef{{"t", 1}, 0, 1}, kT0);
  auto first = d.TakeReady(kT0, true);
  d.OnResult(first[0].id, All(OutcomeKind::kRetry, 2), kT0, Always);
  d.Enqueue(Op("a", mapping::Action::kRemove), MessageRef{{"t", 0}, 1, 1}, kT0);
  EXPECT_EQ(d.Queued(), 3u);
  d.DropPartition({"t", 0});
  EXPECT_EQ(d.Queued(), 1u);
  auto retry = d.TakeReady(kT0 + milliseconds(5000), true);
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(Contacts(retry[0]), std::vector<std::string>{"b"});
}

TEST(DispatcherTest, RetriesOfRevokedPartitionsAreDropped) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto first = d.TakeReady(kT0, true);
  auto finished = d.OnResult(first[0].id, All(OutcomeKind::kRetry, 1), kT0,
                             [](const MessageRef&) { return false; });
  EXPECT_TRUE(finished.empty());
  EXPECT_EQ(d.Pending(), 0u);
  // The contact is free again for the partition's next owner.
  d.Enqueue(Op("a"), Ref(5), kT0);
  EXPECT_EQ(d.TakeReady(kT0, true).size(), 1u);
}

TEST(DispatcherTest, BlockedQueueDoesNotSpin) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto first = d.TakeReady(kT0, true);
  d.Enqueue(Op("a"), Ref(1), kT0);
  EXPECT_TRUE(d.TakeReady(kT0 + milliseconds(100)).empty());
  // Only a result can unblock contact a: no deadline to wake up for.
  EXPECT_FALSE(d.NextDeadline().has_value());
}

}  // namespace
}  // namespace crmsync::worker
