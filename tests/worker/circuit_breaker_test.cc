#include "worker/circuit_breaker.h"

#include <gtest/gtest.h>

namespace crmsync::worker {
namespace {

using State = CircuitBreaker::State;
using std::chrono::milliseconds;

const CircuitBreaker::Clock::time_point kT0 =
    CircuitBreaker::Clock::time_point() + std::chrono::hours(1);

mapping::CircuitBreakerConfig Config() {
  return mapping::CircuitBreakerConfig{3, milliseconds(1000), milliseconds(3000)};
}

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailuresOnly) {
  CircuitBreaker breaker(Config());
  EXPECT_FALSE(breaker.OnRequest(true, kT0));
  EXPECT_FALSE(breaker.OnRequest(true, kT0));
  EXPECT_FALSE(breaker.OnRequest(false, kT0));  // a success resets the count
  EXPECT_FALSE(breaker.OnRequest(true, kT0));
  EXPECT_FALSE(breaker.OnRequest(true, kT0));
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_TRUE(breaker.AllowBatch(kT0));
  EXPECT_TRUE(breaker.OnRequest(true, kT0));
  EXPECT_EQ(breaker.state(), State::kOpen);
  EXPECT_EQ(breaker.ProbeAt(), kT0 + milliseconds(1000));
}

TEST(CircuitBreakerTest, OpenAdmitsOneProbeAfterItsPeriod) {
  CircuitBreaker breaker(Config());
  for (int i = 0; i < 3; ++i) breaker.OnRequest(true, kT0);
  EXPECT_TRUE(breaker.Blocked(kT0 + milliseconds(999)));
  EXPECT_FALSE(breaker.AllowBatch(kT0 + milliseconds(999)));
  EXPECT_FALSE(breaker.Blocked(kT0 + milliseconds(1000)));
  EXPECT_TRUE(breaker.AllowBatch(kT0 + milliseconds(1000)));
  EXPECT_EQ(breaker.state(), State::kHalfOpen);
  EXPECT_FALSE(breaker.AllowBatch(kT0 + milliseconds(1001)));  // one probe at a time
  EXPECT_TRUE(breaker.Blocked(kT0 + milliseconds(1001)));
}

TEST(CircuitBreakerTest, SuccessfulProbeCloses) {
  CircuitBreaker breaker(Config());
  for (int i = 0; i < 3; ++i) breaker.OnRequest(true, kT0);
  ASSERT_TRUE(breaker.AllowBatch(kT0 + milliseconds(1000)));
  EXPECT_TRUE(breaker.OnRequest(false, kT0 + milliseconds(1100)));
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_TRUE(breaker.AllowBatch(kT0 + milliseconds(1100)));
  EXPECT_FALSE(breaker.ProbeAt().has_value());
}

TEST(CircuitBreakerTest, FailedProbeReopensForTwiceAsLongUpToTheCap) {
  CircuitBreaker breaker(Config());
  for (int i = 0; i < 3; ++i) breaker.OnRequest(true, kT0);
  auto now = kT0 + milliseconds(1000);
  ASSERT_TRUE(breaker.AllowBatch(now));
  EXPECT_TRUE(breaker.OnRequest(true, now));
  EXPECT_EQ(breaker.state(), State::kOpen);
  EXPECT_EQ(breaker.ProbeAt(), now + milliseconds(2000));
  now += milliseconds(2000);
  ASSERT_TRUE(breaker.AllowBatch(now));
  breaker.OnRequest(true, now);
  EXPECT_EQ(breaker.ProbeAt(), now + milliseconds(3000));  // capped at maxOpenMs
}

TEST(CircuitBreakerTest, LateAnswersWhileOpenChangeNothing) {
  CircuitBreaker breaker(Config());
  for (int i = 0; i < 3; ++i) breaker.OnRequest(true, kT0);
  EXPECT_FALSE(breaker.OnRequest(false, kT0 + milliseconds(10)));
  EXPECT_EQ(breaker.state(), State::kOpen);
}

TEST(CircuitBreakerTest, FailuresAreTransportErrorsAnd5xxNot429) {
  providers::HttpResponse response;
  response.transport = providers::Transport::kTimeout;
  EXPECT_TRUE(CircuitBreaker::IsFailure(response));
  response.transport = providers::Transport::kOk;
  response.status = 503;
  EXPECT_TRUE(CircuitBreaker::IsFailure(response));
  response.status = 429;
  EXPECT_FALSE(CircuitBreaker::IsFailure(response));
  response.status = 422;
  EXPECT_FALSE(CircuitBreaker::IsFailure(response));
  response.status = 200;
  EXPECT_FALSE(CircuitBreaker::IsFailure(response));
}

TEST(CircuitBreakerTest, RefusedCredentialsAreProviderFailures) {
  providers::HttpResponse response;
  response.transport = providers::Transport::kOk;
  for (const long status : {401L, 403L}) {
    response.status = status;
    EXPECT_TRUE(CircuitBreaker::IsFailure(response)) << status;
    EXPECT_TRUE(CircuitBreaker::IsAuthFailure(response)) << status;
  }
  response.status = 404;
  EXPECT_FALSE(CircuitBreaker::IsAuthFailure(response));
  response.transport = providers::Transport::kTimeout;
  response.status = 0;
  EXPECT_FALSE(CircuitBreaker::IsAuthFailure(response));
}

TEST(CircuitBreakerTest, RotatedKeyOpensTheCircuit) {
  CircuitBreaker breaker(Config());
  providers::HttpResponse unauthorized;
  unauthorized.status = 401;
  EXPECT_FALSE(breaker.OnRequest(CircuitBreaker::IsFailure(unauthorized), kT0));
  EXPECT_FALSE(breaker.OnRequest(CircuitBreaker::IsFailure(unauthorized), kT0));
  EXPECT_TRUE(breaker.OnRequest(CircuitBreaker::IsFailure(unauthorized), kT0));
  EXPECT_EQ(breaker.state(), State::kOpen);
  EXPECT_FALSE(breaker.AllowBatch(kT0 + milliseconds(10)));
}

}  // namespace
}  // namespace crmsync::worker
