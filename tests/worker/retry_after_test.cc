#include <gtest/gtest.h>

#include <chrono>
#include <ctime>

#include "worker/http_engine.h"

namespace crmsync::worker {
namespace {

using std::chrono::seconds;

// Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date.
constexpr std::time_t kNow = 784111777;

TEST(ParseRetryAfterTest, DeltaSeconds) {
  EXPECT_EQ(ParseRetryAfter("120", kNow), seconds(120));
  EXPECT_EQ(ParseRetryAfter("  0 ", kNow), seconds(0));
}

TEST(ParseRetryAfterTest, HugeValuesSaturateAtTheParserBound) {
  EXPECT_EQ(ParseRetryAfter("99999999999", kNow), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("999999999999999999999999", kNow), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("86401", kNow), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("86400", kNow), seconds(86400));
}

TEST(ParseRetryAfterTest, NegativeValuesMeanNow) {
  EXPECT_EQ(ParseRetryAfter("-5", kNow), seconds(0));
  EXPECT_EQ(ParseRetryAfter("-999999999999999999999999", kNow), seconds(0));
}

TEST(ParseRetryAfterTest, GarbageIsIgnored) {
  EXPECT_EQ(ParseRetryAfter("", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("+3", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("5.5", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("12abc", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("1e9", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", kNow), std::nullopt);
}

TEST(ParseRetryAfterTest, HttpDatesAreRelativeToNowAndBounded) {
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:37 GMT", kNow), seconds(60));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", kNow), seconds(0));
  EXPECT_EQ(ParseRetryAfter("Fri, 01 Jan 2100 00:00:00 GMT", kNow), kMaxRetryAfter);
}

}  // namespace
}  // namespace crmsync::worker
