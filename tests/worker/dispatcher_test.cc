#include "worker/dispatcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <set>

#include "tests/support/provider_fixture.h"

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

Dispatcher Make(size_t max_batch = 3, int max_in_flight = 2, milliseconds linger = milliseconds(50),
                milliseconds coalesce_window = {},
                std::optional<RetryPolicy> retry = std::nullopt) {
  return Dispatcher(
      {{"replify", ProviderLimits{max_batch, linger, max_in_flight, coalesce_window, retry}}},
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

// A contact whose operations cannot merge (statuses differ) keeps a long
// line that never empties while it is worked off: every operation goes once,
// in order, with retries back at the front.
TEST(DispatcherTest, LongLineOfOneContactGoesInOrder) {
  Dispatcher d = Make();
  constexpr int kOps = 60;
  for (int i = 0; i < kOps; ++i) {
    mapping::Operation op = Op("a");
    if (i % 2 == 1) op.contact.status = "completed";
    d.Enqueue(std::move(op), Ref(i), kT0);
  }
  std::vector<int64_t> finished;
  Clock::time_point now = kT0;
  for (int round = 0; round < 4 * kOps && d.Pending() > 0; ++round) {
    now += milliseconds(100);
    const auto ready = d.TakeReady(now, /*flush_all=*/true);
    if (ready.empty()) continue;
    ASSERT_EQ(ready.size(), 1u);
    ASSERT_EQ(ready[0].batch->items.size(), 1u);
    // Every seventh answer asks for a retry: the operation returns to the front.
    const bool retry = round % 7 == 3;
    for (const Finished& done : d.OnResult(
             ready[0].id, All(retry ? OutcomeKind::kRetry : OutcomeKind::kDone, 1), now, Always)) {
      finished.push_back(done.origin.offset);
    }
  }
  ASSERT_EQ(finished.size(), static_cast<size_t>(kOps));
  for (int i = 0; i < kOps; ++i) EXPECT_EQ(finished[i], i);
  EXPECT_EQ(d.Pending(), 0u);
}

TEST(DispatcherTest, IdleRequestSlotsTakePartialBatchesAtOnceWhenSendingWhenIdle) {
  ProviderLimits limits{3, milliseconds(50), 2, {}, std::nullopt};
  limits.send_when_idle = true;
  Dispatcher d({{"replify", limits}}, RetryPolicy{});
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto first = d.TakeReady(kT0);
  ASSERT_EQ(first.size(), 1u) << "a partial batch goes into an idle slot without lingering";
  EXPECT_EQ(Contacts(first[0]), std::vector<std::string>{"a"});
  d.Enqueue(Op("b"), Ref(1), kT0);
  auto second = d.TakeReady(kT0);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(Contacts(second[0]), std::vector<std::string>{"b"});
  // Both slots busy: what arrives now waits and fills up.
  for (int i = 0; i < 4; ++i) d.Enqueue(Op("c" + std::to_string(i)), Ref(2 + i), kT0);
  auto full = d.TakeReady(kT0);
  EXPECT_TRUE(full.empty());
  d.OnResult(first[0].id, All(OutcomeKind::kDone, 1), kT0 + milliseconds(5), Always);
  auto next = d.TakeReady(kT0 + milliseconds(5));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(Contacts(next[0]), (std::vector<std::string>{"c0", "c1", "c2"}));
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
  d.Enqueue(Op("a", mapping::Action::kRemove), Ref(0), kT0);
  d.Enqueue(Op("a"), Ref(1), kT0);  // a removal is never merged into
  d.Enqueue(Op("b", mapping::Action::kRemove), Ref(2), kT0);
  auto first = d.TakeReady(kT0, true);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(Contacts(first[0]), (std::vector<std::string>{"a", "b"}));
  // a's upsert waits for a's remove even though a batch slot is free.
  EXPECT_TRUE(d.TakeReady(kT0, true).empty());
  auto finished = d.OnResult(first[0].id, All(OutcomeKind::kDone, 2), kT0, Always);
  ASSERT_EQ(finished.size(), 2u);
  auto second = d.TakeReady(kT0, true);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].batch->action, mapping::Action::kUpsert);
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

// Each batch takes the action of the oldest ready operation and that
// action's contacts in arrival order; the other actions wait their turn.
TEST(DispatcherTest, EachBatchTakesTheOldestReadyActionInArrivalOrder) {
  Dispatcher d = Make(2, 8);
  using mapping::Action;
  d.Enqueue(Op("a"), Ref(0), kT0);
  d.Enqueue(Op("b", Action::kRemove), Ref(1), kT0);
  d.Enqueue(Op("c"), Ref(2), kT0);
  d.Enqueue(Op("d", Action::kUpdateOnly), Ref(3), kT0);
  d.Enqueue(Op("e", Action::kRemove), Ref(4), kT0);
  d.Enqueue(Op("f"), Ref(5), kT0);
  const auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 4u);
  EXPECT_EQ(ready[0].batch->action, Action::kUpsert);
  EXPECT_EQ(Contacts(ready[0]), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(ready[1].batch->action, Action::kRemove);
  EXPECT_EQ(Contacts(ready[1]), (std::vector<std::string>{"b", "e"}));
  EXPECT_EQ(ready[2].batch->action, Action::kUpdateOnly);
  EXPECT_EQ(Contacts(ready[2]), std::vector<std::string>{"d"});
  EXPECT_EQ(ready[3].batch->action, Action::kUpsert);
  EXPECT_EQ(Contacts(ready[3]), std::vector<std::string>{"f"});
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

TEST(DispatcherTest, WaitingOperationsOfAContactCoalesceAndFinishEveryMessage) {
  Dispatcher d = Make(10, 4);
  mapping::Operation first = Op("a");
  first.contact.first_name = "Ava";
  first.contact.metadata = {{"tier", "trial"}, {"stage", "lead"}};
  mapping::Operation second = Op("a");
  second.contact.last_name = "Lopez";
  second.contact.metadata = {{"tier", "pro"}};
  d.Enqueue(mapping::Operation(first), Ref(0), kT0);
  d.Enqueue(mapping::Operation(second), Ref(1), kT0);
  EXPECT_EQ(d.Coalesced(), 1u);
  EXPECT_EQ(d.Queued(), 1u);
  auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 1u);
  ASSERT_EQ(ready[0].batch->items.size(), 1u);
  const mapping::Contact& merged = ready[0].batch->items[0]->contact;
  EXPECT_EQ(merged.first_name, "Ava");
  EXPECT_EQ(merged.last_name, "Lopez");
  EXPECT_EQ(merged.metadata,
            (std::map<std::string, std::string>{{"tier", "pro"}, {"stage", "lead"}}));
  auto finished = d.OnResult(ready[0].id, All(OutcomeKind::kDone, 1), kT0, Always);
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0].origin.offset, 0);
  EXPECT_EQ(finished[1].origin.offset, 1);
}

TEST(DispatcherTest, UpsertFollowedByRemoveBecomesTheRemove) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  d.Enqueue(Op("a", mapping::Action::kRemove), Ref(1), kT0);
  auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].batch->action, mapping::Action::kRemove);
  EXPECT_EQ(d.OnResult(ready[0].id, All(OutcomeKind::kDone, 1), kT0, Always).size(), 2u);
}

TEST(DispatcherTest, RemoveFollowedByUpsertIsNotMerged) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a", mapping::Action::kRemove), Ref(0), kT0);
  d.Enqueue(Op("a"), Ref(1), kT0);
  EXPECT_EQ(d.Coalesced(), 0u);
  auto first = d.TakeReady(kT0, true);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].batch->action, mapping::Action::kRemove);
}

TEST(DispatcherTest, OperationWithStatusIsNotMergedInto) {
  // Replify does not add a contact upserted with a stop status; merging a
  // later upsert into it would change what happens.
  Dispatcher d = Make(10, 4);
  mapping::Operation stop = Op("a");
  stop.contact.status = "completed";
  d.Enqueue(mapping::Operation(stop), Ref(0), kT0);
  d.Enqueue(Op("a"), Ref(1), kT0);
  EXPECT_EQ(d.Coalesced(), 0u);
  EXPECT_EQ(d.Queued(), 2u);
}

// Delivers everything queued and returns each batch's item statuses, in the
// order the batches were sent.
std::vector<std::vector<std::optional<std::string>>> DrainStatuses(Dispatcher& d) {
  std::vector<std::vector<std::optional<std::string>>> sent;
  for (int guard = 0; guard < 10 && d.Pending() > 0; ++guard) {
    for (const OutgoingBatch& out : d.TakeReady(kT0, true)) {
      std::vector<std::optional<std::string>> statuses;
      for (const auto* op : out.batch->items) statuses.push_back(op->contact.status);
      sent.push_back(statuses);
      d.OnResult(out.id, All(OutcomeKind::kDone, out.batch->items.size()), kT0, Always);
    }
  }
  return sent;
}

TEST(DispatcherTest, PlainUpsertThenCompletedUpsertAreSentAsTheyCame) {
  // Merged, the upsert would carry "completed" and Replify would never add
  // the contact; sent in order, it is added and then stopped.
  Dispatcher d = Make(10, 4);
  mapping::Operation plain = Op("a");
  plain.contact.first_name = "Ava";
  mapping::Operation completed = Op("a");
  completed.contact.status = "completed";
  d.Enqueue(mapping::Operation(plain), Ref(0), kT0);
  d.Enqueue(mapping::Operation(completed), Ref(1), kT0);
  EXPECT_EQ(d.Coalesced(), 0u);
  EXPECT_EQ(d.Queued(), 2u);
  using Statuses = std::vector<std::optional<std::string>>;
  EXPECT_EQ(DrainStatuses(d),
            (std::vector<Statuses>{Statuses{std::nullopt}, Statuses{std::string("completed")}}));
}

TEST(DispatcherTest, CompletedUpsertThenPlainUpsertAreSentAsTheyCame) {
  Dispatcher d = Make(10, 4);
  mapping::Operation completed = Op("a");
  completed.contact.status = "completed";
  d.Enqueue(mapping::Operation(completed), Ref(0), kT0);
  d.Enqueue(Op("a"), Ref(1), kT0);
  EXPECT_EQ(d.Coalesced(), 0u);
  using Statuses = std::vector<std::optional<std::string>>;
  EXPECT_EQ(DrainStatuses(d),
            (std::vector<Statuses>{Statuses{std::string("completed")}, Statuses{std::nullopt}}));
}

TEST(DispatcherTest, UpsertsWithTheSameStatusMerge) {
  Dispatcher d = Make(10, 4);
  mapping::Operation first = Op("a");
  first.contact.status = "completed";
  first.contact.first_name = "Ava";
  mapping::Operation second = Op("a");
  second.contact.status = "completed";
  second.contact.last_name = "Lopez";
  d.Enqueue(mapping::Operation(first), Ref(0), kT0);
  d.Enqueue(mapping::Operation(second), Ref(1), kT0);
  d.Enqueue(Op("b"), Ref(2), kT0);
  d.Enqueue(Op("b"), Ref(3), kT0);
  EXPECT_EQ(d.Coalesced(), 2u);
  auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 1u);
  ASSERT_EQ(ready[0].batch->items.size(), 2u);
  const mapping::Contact& merged = ready[0].batch->items[0]->contact;
  EXPECT_EQ(merged.status, "completed");
  EXPECT_EQ(merged.first_name, "Ava");
  EXPECT_EQ(merged.last_name, "Lopez");
  EXPECT_EQ(d.OnResult(ready[0].id, All(OutcomeKind::kDone, 2), kT0, Always).size(), 4u);
}

TEST(DispatcherTest, FullReplaceUpsertIsSupersededNotMerged) {
  // CampaignLark with partialUpdate false replaces fields, tags and status:
  // after two upserts only the second's content is left, so merging the
  // first's fields in would keep what the second wipes.
  Dispatcher d = Make(10, 4);
  auto lark = [](const char* options) {
    mapping::Operation op = Op("a");
    op.provider = "campaignlark";
    op.target = "";
    op.options_json = options;
    op.options = testing::ParsedOptions("campaignlark", options);
    return op;
  };
  mapping::Operation first = lark(R"({"partialUpdate":false})");
  first.contact.first_name = "Ava";
  first.contact.fields = {{"city", "Lisbon"}};
  first.contact.status = "UNSUBSCRIBED";
  mapping::Operation second = lark(R"({"partialUpdate":false})");
  second.contact.last_name = "Lopez";
  d.Enqueue(mapping::Operation(first), Ref(0), kT0);
  d.Enqueue(mapping::Operation(second), Ref(1), kT0);
  // A partial update merges, as before.
  mapping::Operation patch = lark("");
  patch.contact_key = "b";
  patch.contact.first_name = "Bo";
  mapping::Operation later_patch = patch;
  later_patch.contact.first_name.reset();
  later_patch.contact.last_name = "Li";
  d.Enqueue(mapping::Operation(patch), Ref(2), kT0);
  d.Enqueue(mapping::Operation(later_patch), Ref(3), kT0);
  EXPECT_EQ(d.Coalesced(), 2u);
  auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 2u);
  const auto& replaced = (ready[0].batch->items[0]->contact_key == "a" ? ready[0] : ready[1]);
  const auto& patched = (ready[0].batch->items[0]->contact_key == "a" ? ready[1] : ready[0]);
  const mapping::Contact& a = replaced.batch->items[0]->contact;
  EXPECT_FALSE(a.first_name.has_value());
  EXPECT_TRUE(a.fields.empty());
  EXPECT_FALSE(a.status.has_value());
  EXPECT_EQ(a.last_name, "Lopez");
  const mapping::Contact& b = patched.batch->items[0]->contact;
  EXPECT_EQ(b.first_name, "Bo");
  EXPECT_EQ(b.last_name, "Li");
  EXPECT_EQ(d.OnResult(replaced.id, All(OutcomeKind::kDone, 1), kT0, Always).size(), 2u);
}

TEST(DispatcherTest, DifferentStatusesOfAnUpsertDoNotMerge) {
  Dispatcher d = Make(10, 4);
  mapping::Operation active = Op("a");
  active.contact.status = "active";
  mapping::Operation disqualified = Op("a");
  disqualified.contact.status = "disqualified";
  d.Enqueue(mapping::Operation(active), Ref(0), kT0);
  d.Enqueue(mapping::Operation(disqualified), Ref(1), kT0);
  EXPECT_EQ(d.Coalesced(), 0u);
  EXPECT_EQ(d.Queued(), 2u);
}

TEST(DispatcherTest, InFlightOperationIsNeverMergedInto) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto first = d.TakeReady(kT0, true);
  d.Enqueue(Op("a"), Ref(1), kT0);
  d.Enqueue(Op("a"), Ref(2), kT0);
  // The two waiting ones merge with each other, not with the one in flight.
  EXPECT_EQ(d.Coalesced(), 1u);
  EXPECT_TRUE(d.TakeReady(kT0, true).empty());
  EXPECT_EQ(d.OnResult(first[0].id, All(OutcomeKind::kDone, 1), kT0, Always).size(), 1u);
  auto second = d.TakeReady(kT0, true);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(d.OnResult(second[0].id, All(OutcomeKind::kDone, 1), kT0, Always).size(), 2u);
}

TEST(DispatcherTest, OrderHoldsAcrossRequestOptionsOfOneTarget) {
  // Different options travel in different requests, but they address the
  // same contact on the same target: the later one must wait.
  Dispatcher d = Make(10, 4);
  mapping::Operation first = Op("a");
  first.options_json = R"({"partialUpdate":true})";
  first.options = testing::ParsedOptions("campaignlark", first.options_json);
  d.Enqueue(mapping::Operation(first), Ref(0), kT0);
  d.Enqueue(Op("a"), Ref(1), kT0);
  d.Enqueue(Op("b"), Ref(2), kT0);
  auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 2u);
  std::vector<std::string> sent;
  for (const auto& out : ready) {
    for (const auto& contact : Contacts(out)) {
      sent.push_back(contact + (out.batch->options != nullptr ? "+options" : ""));
    }
  }
  std::sort(sent.begin(), sent.end());
  EXPECT_EQ(sent, (std::vector<std::string>{"a+options", "b"}));
}

TEST(DispatcherTest, HotContactsDoNotSlowBatchFormation) {
  // Many operations of a few busy contacts must not be rescanned per batch.
  Dispatcher d = Make(100, 1000);
  for (int c = 0; c < 10; ++c) d.Enqueue(Op("hot" + std::to_string(c)), Ref(c), kT0);
  auto busy = d.TakeReady(kT0, true);
  ASSERT_EQ(busy.size(), 1u);
  for (int i = 0; i < 100000; ++i) {
    mapping::Operation op = Op("hot" + std::to_string(i % 10));
    op.contact.first_name = std::to_string(i);
    d.Enqueue(mapping::Operation(op), Ref(10 + i), kT0);
  }
  EXPECT_EQ(d.Queued(), 10u);  // one coalesced operation per contact
  for (int i = 0; i < 1000; ++i) d.Enqueue(Op("cold" + std::to_string(i)), Ref(200000 + i), kT0);
  EXPECT_EQ(d.TakeReady(kT0, true).size(), 10u);
}

}  // namespace
TEST(DispatcherTest, RemovalAbsorbsEverythingWaitingBeforeIt) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto first = d.TakeReady(kT0, true);  // a is busy: the rest waits in its line
  mapping::Operation stop = Op("a", mapping::Action::kUpdateOnly);
  stop.contact.status = "completed";
  d.Enqueue(Op("a"), Ref(1), kT0);
  d.Enqueue(mapping::Operation(stop), Ref(2), kT0);
  d.Enqueue(Op("a"), Ref(3), kT0);
  EXPECT_EQ(d.Queued(), 3u);
  d.Enqueue(Op("a", mapping::Action::kRemove), Ref(4), kT0);
  EXPECT_EQ(d.Queued(), 1u);
  EXPECT_EQ(d.Coalesced(), 3u);
  d.OnResult(first[0].id, All(OutcomeKind::kDone, 1), kT0, Always);
  auto second = d.TakeReady(kT0, true);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].batch->action, mapping::Action::kRemove);
  auto finished = d.OnResult(second[0].id, All(OutcomeKind::kDone, 1), kT0, Always);
  std::set<int64_t> offsets;
  for (const auto& f : finished) offsets.insert(f.origin.offset);
  EXPECT_EQ(offsets, (std::set<int64_t>{1, 2, 3, 4}));
}

TEST(DispatcherTest, UpdateOnlyStatusesMergeLastWins) {
  Dispatcher d = Make(10, 4);
  mapping::Operation completed = Op("a", mapping::Action::kUpdateOnly);
  completed.contact.status = "completed";
  mapping::Operation disqualified = Op("a", mapping::Action::kUpdateOnly);
  disqualified.contact.status = "disqualified";
  d.Enqueue(mapping::Operation(completed), Ref(0), kT0);
  d.Enqueue(mapping::Operation(disqualified), Ref(1), kT0);
  EXPECT_EQ(d.Coalesced(), 1u);
  auto ready = d.TakeReady(kT0, true);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].batch->items[0]->contact.status, "disqualified");
}

TEST(DispatcherTest, AttemptedOperationIsNotMergedInto) {
  Dispatcher d = Make(10, 4);
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto first = d.TakeReady(kT0, true);
  d.OnResult(first[0].id, All(OutcomeKind::kRetry, 1), kT0, Always);
  auto retry = d.TakeReady(kT0 + milliseconds(1000));  // back at the front of a's line
  ASSERT_TRUE(retry.empty() || retry[0].batch->items.size() == 1u);
  d.Enqueue(Op("a"), Ref(1), kT0 + milliseconds(1000));
  EXPECT_EQ(d.Coalesced(), 0u);
}

TEST(DispatcherTest, HotContactIsHeldForItsCoalescingWindow) {
  const milliseconds window(500);
  Dispatcher d = Make(10, 4, milliseconds(0), window);
  Clock::time_point now = kT0;
  int64_t offset = 0;
  int sends = 0;
  // Every send is followed by more operations for the same contact.
  std::vector<Clock::time_point> sent_at;
  d.Enqueue(Op("hot"), Ref(offset++), now);
  while (now < kT0 + std::chrono::seconds(3)) {
    for (const auto& out : d.TakeReady(now)) {
      ++sends;
      sent_at.push_back(now);
      d.Enqueue(Op("hot"), Ref(offset++), now);
      d.OnResult(out.id, All(OutcomeKind::kDone, 1), now + milliseconds(1), Always);
    }
    d.Enqueue(Op("hot"), Ref(offset++), now);
    now += milliseconds(10);
  }
  // Without the window a send every 10 ms (about 300); with it one per window
  // once the contact is known to be hot.
  EXPECT_LE(sends, 3 + 3000 / 500);
  for (size_t i = 3; i < sent_at.size(); ++i) {
    EXPECT_GE(sent_at[i] - sent_at[i - 1], window) << "send " << i;
  }
  // Nothing is lost: the held operation goes when flushing.
  auto flushed = d.TakeReady(now, true);
  ASSERT_EQ(flushed.size(), 1u);
  auto finished = d.OnResult(flushed[0].id, All(OutcomeKind::kDone, 1), now, Always);
  EXPECT_EQ(d.Pending(), 0u);
}

TEST(DispatcherTest, AfterAHoldEverythingThatWaitedGoesBackToBack) {
  const milliseconds window(500);
  Dispatcher d = Make(10, 4, milliseconds(0), window);
  mapping::Operation stop = Op("hot", mapping::Action::kUpdateOnly);
  stop.contact.status = "completed";
  Clock::time_point now = kT0;
  int64_t offset = 0;
  // Make the contact hot: operations wait after two sends in a row.
  for (int i = 0; i < 2; ++i) {
    d.Enqueue(Op("hot"), Ref(offset++), now);
    auto ready = d.TakeReady(now);
    ASSERT_EQ(ready.size(), 1u);
    d.Enqueue(Op("hot"), Ref(offset++), now);
    d.OnResult(ready[0].id, All(OutcomeKind::kDone, 1), now, Always);
  }
  EXPECT_TRUE(d.TakeReady(now).empty());  // held
  // Alternating actions do not merge: three operations wait.
  d.Enqueue(mapping::Operation(stop), Ref(offset++), now);
  d.Enqueue(Op("hot"), Ref(offset++), now);
  EXPECT_EQ(d.Queued(), 3u);
  now += window;
  for (int i = 0; i < 3; ++i) {
    auto ready = d.TakeReady(now);
    ASSERT_EQ(ready.size(), 1u) << "operation " << i << " waited for another window";
    d.OnResult(ready[0].id, All(OutcomeKind::kDone, 1), now, Always);
  }
  EXPECT_EQ(d.Pending(), 0u);
}

TEST(DispatcherTest, ColdContactIsNeverHeld) {
  Dispatcher d = Make(10, 4, milliseconds(0), milliseconds(1000));
  for (int i = 0; i < 5; ++i) {
    const Clock::time_point now = kT0 + milliseconds(10 * i);
    d.Enqueue(Op("cold"), Ref(i), now);
    auto ready = d.TakeReady(now);
    ASSERT_EQ(ready.size(), 1u) << i;  // its line was empty after each send
    d.OnResult(ready[0].id, All(OutcomeKind::kDone, 1), now, Always);
  }
}

TEST(DispatcherTest, RetriesStopAtMaxAttemptsAndFinishAsExhausted) {
  RetryPolicy policy{milliseconds(10), milliseconds(10), milliseconds(10), 3};
  Dispatcher d = Make(10, 4, milliseconds(0), {}, policy);
  d.Enqueue(Op("a"), Ref(0), kT0);
  Clock::time_point now = kT0;
  std::vector<Finished> finished;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto ready = d.TakeReady(now);
    ASSERT_EQ(ready.size(), 1u) << attempt;
    finished = d.OnResult(ready[0].id, {Outcome{OutcomeKind::kRetry, "HTTP 503", 503, {}}},
                          now + milliseconds(1), Always);
    now += milliseconds(20);
  }
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].kind, OutcomeKind::kReject);
  EXPECT_TRUE(finished[0].exhausted);
  EXPECT_EQ(finished[0].attempts, 3);
  EXPECT_EQ(finished[0].http_status, 503);
  EXPECT_EQ(finished[0].reason, "gave up after 3 attempt(s): HTTP 503");
  EXPECT_EQ(finished[0].first_failure, kT0 + milliseconds(1));
  EXPECT_EQ(finished[0].last_failure, kT0 + milliseconds(41));
  EXPECT_EQ(d.Pending(), 0u);
}

TEST(DispatcherTest, RetriesStopAfterMaxElapsedSinceTheFirstFailure) {
  RetryPolicy policy{milliseconds(10), milliseconds(10), milliseconds(10), 0, milliseconds(100)};
  Dispatcher d = Make(10, 4, milliseconds(0), {}, policy);
  d.Enqueue(Op("a"), Ref(0), kT0);
  Clock::time_point now = kT0;
  int attempts = 0;
  for (; attempts < 100; ++attempts) {
    auto ready = d.TakeReady(now);
    ASSERT_EQ(ready.size(), 1u);
    auto finished =
        d.OnResult(ready[0].id, {Outcome{OutcomeKind::kRetry, "timeout", 0, {}}}, now, Always);
    now += milliseconds(20);
    if (!finished.empty()) {
      EXPECT_TRUE(finished[0].exhausted);
      break;
    }
  }
  EXPECT_EQ(attempts, 5);  // failures at 0, 20, ..., 100 ms
}

TEST(DispatcherTest, ExhaustedOperationKeptRetryingNamesItsPartitionAsStuck) {
  RetryPolicy policy{milliseconds(10), milliseconds(50), milliseconds(10), 2};
  policy.pause_when_exhausted = true;
  Dispatcher d = Make(10, 4, milliseconds(0), {}, policy);
  d.Enqueue(Op("a"), MessageRef{{"t", 3}, 7, 1}, kT0);
  d.Enqueue(Op("b"), MessageRef{{"t", 4}, 9, 1}, kT0);
  Clock::time_point now = kT0;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    for (const auto& out : d.TakeReady(now)) {
      std::vector<Outcome> outcomes;
      for (const auto* op : out.batch->items) {
        outcomes.push_back(op->contact_key == "a" ? Outcome{OutcomeKind::kRetry, "503", 503, {}}
                                                  : Outcome{OutcomeKind::kDone, "", 200, {}});
      }
      EXPECT_TRUE(d.OnResult(out.id, outcomes, now, Always).size() <= 1u);
    }
    now += milliseconds(60);
  }
  EXPECT_EQ(d.StuckPartitions(), (std::vector<kafka::TopicPartition>{{"t", 3}}));
  EXPECT_EQ(d.Pending(), 1u);  // still there, never given up
  auto ready = d.TakeReady(now);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(d.OnResult(ready[0].id, All(OutcomeKind::kDone, 1), now, Always).size(), 1u);
  EXPECT_TRUE(d.StuckPartitions().empty());
}

TEST(DispatcherTest, ClosedGateHoldsBatchesAndTheirDeadline) {
  Dispatcher d = Make(10, 4, milliseconds(0));
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto closed = [](const std::string&) -> size_t { return 0; };
  EXPECT_TRUE(d.TakeReady(kT0, false, closed).empty());
  EXPECT_FALSE(d.NextDeadline([](const std::string&) { return true; }).has_value());
  EXPECT_EQ(d.NextDeadline(), kT0);
  EXPECT_EQ(d.Queued(), 1u);
  int asked = 0;
  auto once = [&asked](const std::string& provider) -> size_t {
    EXPECT_EQ(provider, "replify");
    return ++asked == 1 ? std::numeric_limits<size_t>::max() : 0;
  };
  EXPECT_EQ(d.TakeReady(kT0, false, once).size(), 1u);
}

TEST(DispatcherTest, ProbeCarriesOneOperationAndItsFailureIsNotAnAttempt) {
  for (size_t max_batch : {size_t{10}, size_t{1}}) {
    SCOPED_TRACE("maxBatch " + std::to_string(max_batch));
    RetryPolicy policy{milliseconds(10), milliseconds(10), milliseconds(10), 2};
    Dispatcher d = Make(max_batch, 4, milliseconds(0), {}, policy);
    for (int i = 0; i < 5; ++i) d.Enqueue(Op("c" + std::to_string(i)), Ref(i), kT0);
    Clock::time_point now = kT0;
    for (int round = 0; round < 5; ++round) {
      bool probed = false;  // a half-open circuit admits one probe at a time
      auto probe = [&probed](const std::string&) -> size_t { return probed ? 0 : (probed = true); };
      auto ready = d.TakeReady(now, false, probe);
      ASSERT_EQ(ready.size(), 1u);
      ASSERT_EQ(ready[0].batch->items.size(), 1u);
      EXPECT_TRUE(d.OnResult(ready[0].id, All(OutcomeKind::kRetry, 1), now, Always).empty())
          << "a failed probe exhausted its operation";
      now += milliseconds(20);
    }
    EXPECT_EQ(d.Pending(), 5u);
  }
}

TEST(DispatcherTest, RefusedCredentialsNeverExhaustAnOperation) {
  // A rotated key answers 401 (or 403) to everything: far more answers than
  // max_attempts and longer than max_elapsed, and still nothing is given up.
  for (const int status : {401, 403}) {
    SCOPED_TRACE("HTTP " + std::to_string(status));
    RetryPolicy policy{milliseconds(10), milliseconds(10), milliseconds(10), 3, milliseconds(100)};
    Dispatcher d = Make(10, 4, milliseconds(0), {}, policy);
    d.Enqueue(Op("a"), Ref(0), kT0);
    d.Enqueue(Op("b"), Ref(1), kT0);
    Clock::time_point now = kT0;
    for (int round = 0; round < 20; ++round) {
      auto ready = d.TakeReady(now);
      ASSERT_EQ(ready.size(), 1u) << round;
      const Outcome refused{OutcomeKind::kRetry, "authentication failed", status, {}};
      EXPECT_TRUE(d.OnResult(ready[0].id, {refused, refused}, now, Always).empty())
          << "refused credentials exhausted an operation in round " << round;
      EXPECT_TRUE(d.AuthRefused("replify"));
      now += milliseconds(20);
    }
    EXPECT_EQ(d.Pending(), 2u);
    EXPECT_EQ(d.AuthFailures(), 20u);
    // The key works again: the operations are delivered, and none of those
    // answers counted as an attempt.
    auto ready = d.TakeReady(now);
    ASSERT_EQ(ready.size(), 1u);
    auto finished = d.OnResult(ready[0].id, All(OutcomeKind::kDone, 2), now, Always);
    ASSERT_EQ(finished.size(), 2u);
    for (const Finished& f : finished) {
      EXPECT_EQ(f.kind, OutcomeKind::kDone);
      EXPECT_EQ(f.attempts, 1);
      EXPECT_FALSE(f.exhausted);
    }
    EXPECT_FALSE(d.AuthRefused("replify"));
  }
}

TEST(DispatcherTest, RefusedCredentialsDoNotStartTheElapsedBudget) {
  // An hour of 401s followed by one ordinary failure is one failed attempt,
  // not an operation that has been failing for an hour.
  RetryPolicy policy{milliseconds(10), milliseconds(10), milliseconds(10), 2, milliseconds(100)};
  Dispatcher d = Make(10, 4, milliseconds(0), {}, policy);
  d.Enqueue(Op("a"), Ref(0), kT0);
  Clock::time_point now = kT0;
  for (int round = 0; round < 10; ++round) {
    auto ready = d.TakeReady(now);
    ASSERT_EQ(ready.size(), 1u);
    d.OnResult(ready[0].id, {Outcome{OutcomeKind::kRetry, "auth", 401, {}}}, now, Always);
    now += milliseconds(50);
  }
  auto ready = d.TakeReady(now);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_TRUE(
      d.OnResult(ready[0].id, {Outcome{OutcomeKind::kRetry, "HTTP 503", 503, {}}}, now, Always)
          .empty());
  EXPECT_EQ(d.Pending(), 1u);
}

TEST(DispatcherTest, TimeSpentRefusedIsNotCountedInMaxElapsed) {
  // A 503, then half a second of 401s, then another 503: the operation has
  // been failing for two answers, not for longer than max_elapsed.
  RetryPolicy policy{milliseconds(10), milliseconds(10), milliseconds(10), 5, milliseconds(100)};
  Dispatcher d = Make(10, 4, milliseconds(0), {}, policy);
  d.Enqueue(Op("a"), Ref(0), kT0);
  Clock::time_point now = kT0;
  auto answer = [&](int status) {
    auto ready = d.TakeReady(now);
    EXPECT_EQ(ready.size(), 1u);
    if (ready.empty()) return std::vector<Finished>{};
    return d.OnResult(ready[0].id, {Outcome{OutcomeKind::kRetry, "x", status, {}}}, now, Always);
  };
  EXPECT_TRUE(answer(503).empty());
  for (int round = 0; round < 10; ++round) {
    now += milliseconds(50);
    EXPECT_TRUE(answer(401).empty());
  }
  now += milliseconds(50);
  EXPECT_TRUE(answer(503).empty()) << "exhausted by time spent with a refused key";
  EXPECT_EQ(d.Pending(), 1u);
  // Without refusals in between, max_elapsed still ends it.
  now += milliseconds(150);
  const auto finished = answer(503);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_TRUE(finished[0].exhausted);
  EXPECT_EQ(finished[0].attempts, 3);
}

TEST(DispatcherTest, PermanentForbiddenIsStillARejection) {
  // A 403 the provider module classified as permanent (Reply.io: access to
  // this sequence denied) is the item's answer, not a refused key.
  Dispatcher d = Make(10, 4, milliseconds(0));
  d.Enqueue(Op("a"), Ref(0), kT0);
  auto ready = d.TakeReady(kT0);
  ASSERT_EQ(ready.size(), 1u);
  auto finished =
      d.OnResult(ready[0].id, {Outcome{OutcomeKind::kReject, "denied", 403, {}}}, kT0, Always);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].kind, OutcomeKind::kReject);
  EXPECT_FALSE(d.AuthRefused("replify"));
}

TEST(DispatcherTest, PartitionsWaitingForAProvider) {
  Dispatcher d = Make(1, 1, milliseconds(0));
  d.Enqueue(Op("a"), MessageRef{{"t", 1}, 0, 1}, kT0);
  d.Enqueue(Op("b"), MessageRef{{"t", 2}, 0, 1}, kT0);
  auto ready = d.TakeReady(kT0);  // a in flight, b queued
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(d.PartitionsWaitingFor("replify"),
            (std::vector<kafka::TopicPartition>{{"t", 1}, {"t", 2}}));
  EXPECT_TRUE(d.PartitionsWaitingFor("whippy").empty());
}

}  // namespace crmsync::worker
