#include "worker/metrics.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <prometheus/registry.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace crmsync::worker {
namespace {

std::string Scrape(int port, const std::string& path = "/metrics") {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto result = client.Get(path.c_str());
  if (!result) return "no response: " + httplib::to_string(result.error());
  if (result->status != 200) return "status " + std::to_string(result->status);
  return result->body;
}

// The sample line for `series` (name plus labels as Prometheus prints them).
std::string Sample(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  size_t at = text.find("\n" + prefix);
  if (at == std::string::npos) return "missing";
  at += 1 + prefix.size();
  return text.substr(at, text.find('\n', at) - at);
}

TEST(Metrics, ScrapeShowsCountersOverLoopbackHttp) {
  Metrics metrics("127.0.0.1:0");
  ASSERT_GT(metrics.Port(), 0);

  metrics.EventConsumed("crm.contacts");
  metrics.EventConsumed("crm.contacts");
  metrics.EventConsumed("crm.contacts");
  metrics.EventSkipped("malformed");
  metrics.Operation("replify", "delivered", 40);
  metrics.Operation("replify", "delivered", 2);
  metrics.Operation("replify", "rejected", 1);
  metrics.HttpRequest("replify", "200", 0.02);
  metrics.HttpRequest("replify", "timeout", 5.0);
  metrics.SetPending(17);
  metrics.SetCommitted("crm.contacts", 3, 1234);
  metrics.BatchSent("replify", 42);

  const std::string text = Scrape(metrics.Port());
  EXPECT_EQ(Sample(text, R"(crmsync_events_consumed_total{topic="crm.contacts"})"), "3");
  EXPECT_EQ(Sample(text, R"(crmsync_events_skipped_total{reason="malformed"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_operations_total{outcome="delivered",provider="replify"})"),
            "42");
  EXPECT_EQ(Sample(text, R"(crmsync_operations_total{outcome="rejected",provider="replify"})"),
            "1");
  EXPECT_EQ(Sample(text, R"(crmsync_http_requests_total{code="200",provider="replify"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_http_requests_total{code="timeout",provider="replify"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_http_request_duration_seconds_count{provider="replify"})"),
            "2");
  EXPECT_EQ(
      Sample(text,
             R"(crmsync_http_request_duration_seconds_bucket{provider="replify",le="0.025"})"),
      "1");
  EXPECT_EQ(Sample(text, "crmsync_operations_pending"), "17");
  EXPECT_EQ(Sample(text, R"(crmsync_committed_offset{partition="3",topic="crm.contacts"})"),
            "1234");
  EXPECT_EQ(Sample(text, R"(crmsync_batch_size_sum{provider="replify"})"), "42");
}

TEST(Metrics, HealthzAnswersOk) {
  Metrics metrics("127.0.0.1:0");
  httplib::Client client("127.0.0.1", metrics.Port());
  auto result = client.Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

TEST(Metrics, EmptyListenServesNothing) {
  Metrics metrics("");
  EXPECT_EQ(metrics.Port(), 0);
  metrics.EventConsumed("t");
  EXPECT_NE(metrics.Registry(), nullptr);
  EXPECT_FALSE(metrics.Registry()->Collect().empty());
}

TEST(Metrics, BusyPortThrowsNamingTheAddress) {
  Metrics first("127.0.0.1:0");
  const std::string taken = "127.0.0.1:" + std::to_string(first.Port());
  try {
    Metrics second(taken);
    FAIL() << "second listener on " << taken << " did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
  }
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  Metrics metrics("127.0.0.1:0");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.EventConsumed("topic-" + std::to_string(i % 3));
        metrics.Operation("replify", "delivered", 1);
        metrics.HttpRequest("p" + std::to_string(t), "200", 0.001);
      }
    });
  }
  for (auto& thread : threads) thread.join();

  const std::string text = Scrape(metrics.Port());
  EXPECT_EQ(Sample(text, R"(crmsync_operations_total{outcome="delivered",provider="replify"})"),
            std::to_string(kThreads * kPerThread));
  EXPECT_EQ(Sample(text, R"(crmsync_http_requests_total{code="200",provider="p2"})"),
            std::to_string(kPerThread));
}

}  // namespace
}  // namespace crmsync::worker
