#include "worker/request_budget.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace crmsync::worker {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = RequestBudget::Clock;

const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

TEST(RequestBudgetTest, NoLimitsMeansUnlimited) {
  RequestBudget budget({});
  EXPECT_TRUE(budget.Unlimited());
  EXPECT_EQ(budget.Available(kT0), std::numeric_limits<size_t>::max());
  EXPECT_FALSE(budget.NextFree(kT0).has_value());
}

void Send(RequestBudget& budget, size_t n, Clock::time_point at) {
  budget.Take(n);
  for (size_t i = 0; i < n; ++i) budget.Complete(at);
}

TEST(RequestBudgetTest, NeverMoreThanTheLimitInAnyWindow) {
  RequestBudget budget({{10, seconds(60)}});
  EXPECT_EQ(budget.Available(kT0), 10u);
  Send(budget, 4, kT0);
  Send(budget, 6, kT0 + seconds(30));
  EXPECT_EQ(budget.Available(kT0 + seconds(31)), 0u);
  // The first four leave the window (plus its safety margin) after a minute;
  // the other six still count.
  const auto free = budget.NextFree(kT0 + seconds(31));
  ASSERT_TRUE(free.has_value());
  EXPECT_GE(*free, kT0 + seconds(60));
  EXPECT_LE(*free, kT0 + seconds(62));
  EXPECT_EQ(budget.Available(kT0 + seconds(62)), 4u);
  EXPECT_EQ(budget.Available(kT0 + seconds(92)), 10u);
}

TEST(RequestBudgetTest, EveryLimitMustAllow) {
  RequestBudget budget({{100, seconds(60)}, {150, seconds(3600)}});
  Send(budget, 100, kT0);
  EXPECT_EQ(budget.Available(kT0 + seconds(62)), 50u);
  Send(budget, 50, kT0 + seconds(62));
  EXPECT_EQ(budget.Available(kT0 + seconds(200)), 0u);
}

TEST(RequestBudgetTest, InFlightRequestsHoldTheirSlotUntilAnswered) {
  RequestBudget budget({{10, seconds(1)}});
  budget.Take(10);
  // Sent long ago but unanswered: the provider may count them any moment.
  EXPECT_EQ(budget.Available(kT0 + seconds(30)), 0u);
  EXPECT_FALSE(budget.NextFree(kT0 + seconds(30)).has_value());
  for (int i = 0; i < 10; ++i) budget.Complete(kT0 + seconds(30));
  EXPECT_EQ(budget.Available(kT0 + seconds(30)), 0u);
  EXPECT_EQ(budget.Available(kT0 + seconds(32)), 10u);
}

TEST(RequestBudgetTest, ThrottleHalvesHoldsForRetryAfterAndRecovers) {
  RequestBudget budget({{10, seconds(1)}});
  budget.OnThrottled(kT0, milliseconds(500));
  EXPECT_DOUBLE_EQ(budget.Factor(), 0.5);
  EXPECT_EQ(budget.Available(kT0 + milliseconds(499)), 0u);
  EXPECT_EQ(budget.NextFree(kT0 + milliseconds(100)), kT0 + milliseconds(500));
  EXPECT_EQ(budget.Available(kT0 + milliseconds(500)), 5u);
  // Quiet windows bring the budget back to the full limit.
  EXPECT_EQ(budget.Available(kT0 + seconds(10)), 10u);
  EXPECT_DOUBLE_EQ(budget.Factor(), 1.0);
}

TEST(RequestBudgetTest, ThrottlesOfOneBurstCountOnce) {
  RequestBudget budget({{10, seconds(1)}});
  for (int i = 0; i < 5; ++i) budget.OnThrottled(kT0 + milliseconds(i), std::nullopt);
  EXPECT_DOUBLE_EQ(budget.Factor(), 0.5);
}

TEST(RequestBudgetTest, RepeatedThrottlesBottomOutAboveZero) {
  RequestBudget budget({{10, seconds(1)}});
  for (int i = 0; i < 10; ++i) budget.OnThrottled(kT0 + seconds(2 * i), std::nullopt);
  EXPECT_GE(budget.Factor(), 0.1);
  EXPECT_EQ(budget.Available(kT0), 1u);
}

TEST(RequestBudgetTest, RetryAfterIsCappedByMaxRetryAfter) {
  RequestBudget budget({{10, seconds(1)}}, seconds(30));
  // "Retry-After: 3600" must not stop the provider for an hour.
  budget.OnThrottled(kT0, seconds(3600));
  EXPECT_EQ(budget.Available(kT0 + seconds(29)), 0u);
  EXPECT_EQ(budget.NextFree(kT0 + seconds(1)), kT0 + seconds(30));
  EXPECT_GT(budget.Available(kT0 + seconds(30)), 0u);
}

TEST(RequestBudgetTest, RetryAfterIsCappedByDefault) {
  // Without an explicit cap the retry configuration's default (5 minutes)
  // applies; an out-of-range header once became INT32_MAX seconds.
  RequestBudget budget({{10, seconds(1)}});
  budget.OnThrottled(kT0, seconds(std::numeric_limits<int32_t>::max()));
  EXPECT_EQ(budget.Available(kT0 + std::chrono::minutes(5) - milliseconds(1)), 0u);
  EXPECT_GT(budget.Available(kT0 + std::chrono::minutes(5)), 0u);
}

TEST(RequestBudgetTest, UnlimitedBudgetHoldIsCappedToo) {
  RequestBudget budget({}, seconds(2));
  budget.OnThrottled(kT0, std::chrono::hours(1));
  EXPECT_EQ(budget.Available(kT0 + seconds(1)), 0u);
  EXPECT_EQ(budget.Available(kT0 + seconds(2)), std::numeric_limits<size_t>::max());
}

TEST(RequestBudgetTest, NegativeRetryAfterHoldsNothing) {
  RequestBudget budget({{10, seconds(1)}}, seconds(30));
  budget.OnThrottled(kT0, milliseconds(-5000));
  EXPECT_EQ(budget.Available(kT0), 5u);
}

}  // namespace
}  // namespace crmsync::worker
