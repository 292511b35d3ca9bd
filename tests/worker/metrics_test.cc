#include "worker/metrics.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "worker/version.h"

namespace crmsync::worker {
namespace {

// Polls `condition` every 20 ms for up to 30 s.
bool WaitUntil(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

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
  metrics.Operation("replify", "upsert", "delivered", 40);
  metrics.Operation("replify", "upsert", "delivered", 2);
  metrics.Operation("replify", "remove", "rejected", 1);
  metrics.HttpRequest("replify", "200", 0.02);
  metrics.HttpRequest("replify", "timeout", 5.0);
  metrics.SetPending(17);
  metrics.SetCommitted("crm.contacts", 3, 1234);
  metrics.BatchSent("replify", 42);

  const std::string text = Scrape(metrics.Port());
  EXPECT_EQ(Sample(text, R"(crmsync_events_consumed_total{topic="crm.contacts"})"), "3");
  EXPECT_EQ(Sample(text, R"(crmsync_events_skipped_total{reason="malformed"})"), "1");
  EXPECT_EQ(
      Sample(text,
             R"(crmsync_operations_total{action="upsert",outcome="delivered",provider="replify"})"),
      "42");
  EXPECT_EQ(
      Sample(text,
             R"(crmsync_operations_total{action="remove",outcome="rejected",provider="replify"})"),
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

// Status code and body of GET `path`; status -1 when nothing answered.
std::pair<int, std::string> Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto result = client.Get(path.c_str());
  if (!result) return {-1, httplib::to_string(result.error())};
  return {result->status, result->body};
}

TEST(Metrics, EveryFamilyIsServedWithItsLabels) {
  Metrics metrics("127.0.0.1:0");
  metrics.EventDecoded("hubspot");
  metrics.EventDecoded("hubspot");
  metrics.EventSkipped("oversized");
  metrics.EventDeadLettered("exhausted");
  metrics.Rebalance("assigned");
  metrics.Rebalance("lost");
  metrics.SetConsumerLag("crm.contacts", 1, 77);
  metrics.Retried("whippy", 3);
  metrics.HttpRequest("whippy", "429", 0.01);
  metrics.HttpRequest("whippy", "200", 0.01);
  metrics.HttpInFlight("whippy", 1);
  metrics.HttpInFlight("whippy", 1);
  metrics.HttpInFlight("whippy", -1);
  metrics.DeliveryLatency("whippy", {0.3});
  metrics.SetCircuitState("whippy", 2);
  metrics.SetRateLimitTokens("whippy", 7);
  metrics.SetRateLimitTokens("replify", std::numeric_limits<double>::infinity());

  const std::string text = Scrape(metrics.Port());
  EXPECT_EQ(Sample(text, R"(crmsync_events_decoded_total{format="hubspot"})"), "2");
  EXPECT_EQ(Sample(text, R"(crmsync_events_skipped_total{reason="oversized"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_events_dead_lettered_total{reason="exhausted"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_rebalances_total{kind="assigned"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_rebalances_total{kind="lost"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_consumer_lag{partition="1",topic="crm.contacts"})"), "77");
  EXPECT_EQ(Sample(text, R"(crmsync_retries_total{provider="whippy"})"), "3");
  // A 429 is both a request with its code and a throttled answer.
  EXPECT_EQ(Sample(text, R"(crmsync_http_requests_total{code="429",provider="whippy"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_http_throttled_total{provider="whippy"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_http_requests_in_flight{provider="whippy"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_delivery_latency_seconds_count{provider="whippy"})"), "1");
  EXPECT_EQ(Sample(text, R"(crmsync_circuit_state{provider="whippy"})"), "2");
  EXPECT_EQ(Sample(text, R"(crmsync_rate_limit_tokens{provider="whippy"})"), "7");
  EXPECT_EQ(Sample(text, R"(crmsync_rate_limit_tokens{provider="replify"})"), "+Inf");
  EXPECT_NE(text.find("# TYPE crmsync_http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("# TYPE crmsync_http_requests_in_flight gauge"), std::string::npos);
  EXPECT_NE(text.find("# TYPE crmsync_rebalances_total counter"), std::string::npos);
  // What /metrics serves is Text().
  EXPECT_NE(metrics.Text().find(R"(crmsync_retries_total{provider="whippy"} 3)"),
            std::string::npos);
}

std::optional<std::string> DummyKey(std::string_view) { return std::string("dummy-key"); }

TEST(Metrics, FreshScrapeHasEveryConfiguredSeriesAtZero) {
  const mapping::Config config = mapping::LoadConfigFromFile(
      providers::Catalog(), std::string(CRMSYNC_SOURCE_DIR) + "/examples/crmsync.json", &DummyKey);
  Metrics metrics("127.0.0.1:0");
  metrics.Initialize(config);
  const std::string text = Scrape(metrics.Port());

  EXPECT_EQ(Sample(text, R"(crmsync_events_consumed_total{topic="crm.contacts"})"), "0");
  // The topic's format is detected per message: every format can show up.
  for (const char* format : {"canonical", "hubspot", "salesforce", "debezium"}) {
    EXPECT_EQ(
        Sample(text, std::string(R"(crmsync_events_decoded_total{format=")") + format + "\"}"), "0")
        << format;
  }
  for (const char* reason : {"malformed", "unmatched", "oversized"}) {
    EXPECT_EQ(
        Sample(text, std::string(R"(crmsync_events_skipped_total{reason=")") + reason + "\"}"), "0")
        << reason;
  }
  for (const char* reason : {"malformed", "rejected", "exhausted"}) {
    EXPECT_EQ(Sample(text, std::string(R"(crmsync_events_dead_lettered_total{reason=")") + reason +
                               "\"}"),
              "0")
        << reason;
  }
  for (const char* kind : {"assigned", "revoked", "lost"}) {
    EXPECT_EQ(Sample(text, std::string(R"(crmsync_rebalances_total{kind=")") + kind + "\"}"), "0")
        << kind;
  }
  // Per action the rules send to a provider, per outcome.
  const std::vector<std::pair<std::string, std::string>> actions = {
      {"replify", "upsert"}, {"replify", "updateOnly"}, {"replify", "remove"},
      {"whippy", "add"},     {"whippy", "remove"},      {"campaignlark", "upsert"},
      {"replyio", "enroll"}, {"replyio", "unenroll"}};
  for (const auto& [provider, action] : actions) {
    for (const char* outcome : {"delivered", "rejected", "exhausted", "retried"}) {
      EXPECT_EQ(Sample(text, R"(crmsync_operations_total{action=")" + action + R"(",outcome=")" +
                                 outcome + R"(",provider=")" + provider + "\"}"),
                "0")
          << provider << " " << action << " " << outcome;
    }
  }
  // No rule enrolls a Replify contact: no series for it.
  EXPECT_EQ(text.find(R"(action="enroll",outcome="delivered",provider="replify")"),
            std::string::npos);
  for (const char* provider : {"replify", "whippy", "campaignlark", "replyio"}) {
    const std::string labels = std::string(R"({provider=")") + provider + "\"}";
    EXPECT_EQ(Sample(text, "crmsync_retries_total" + labels), "0") << provider;
    EXPECT_EQ(Sample(text, "crmsync_http_throttled_total" + labels), "0") << provider;
    EXPECT_EQ(Sample(text, "crmsync_http_requests_in_flight" + labels), "0") << provider;
    EXPECT_EQ(Sample(text, "crmsync_circuit_state" + labels), "0") << provider;
    EXPECT_EQ(Sample(text, "crmsync_http_request_duration_seconds_count" + labels), "0")
        << provider;
    EXPECT_EQ(Sample(text, "crmsync_delivery_latency_seconds_count" + labels), "0") << provider;
    EXPECT_EQ(Sample(text, "crmsync_batch_size_count" + labels), "0") << provider;
  }

  // Initializing again keeps what was counted.
  metrics.Rebalance("assigned");
  metrics.Initialize(config);
  EXPECT_EQ(Sample(metrics.Text(), R"(crmsync_rebalances_total{kind="assigned"})"), "1");
}

TEST(Metrics, BuildInfoAndProcessMetricsAreServed) {
  Metrics metrics("127.0.0.1:0");
  const std::string text = Scrape(metrics.Port());
  EXPECT_EQ(Sample(text, std::string(R"(crmsync_build_info{librdkafka=")") + LibrdkafkaVersion() +
                             R"(",version=")" + CrmsyncVersion() + "\"}"),
            "1")
      << text;
  EXPECT_EQ(CrmsyncVersion(), CRMSYNC_VERSION);
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"}) {
    const std::string value = Sample(text, name);
    ASSERT_NE(value, "missing") << name;
    EXPECT_GE(std::stod(value), 0) << name;
  }
  EXPECT_GT(std::stod(Sample(text, "process_resident_memory_bytes")), 1 << 20);
  EXPECT_GT(std::stod(Sample(text, "process_open_fds")), 2);  // stdio and the listener
  // Started within the last hour, by the wall clock.
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double start = std::stod(Sample(text, "process_start_time_seconds"));
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600);
}

TEST(Metrics, RemovedPartitionLosesItsSeries) {
  Metrics metrics("127.0.0.1:0");
  metrics.SetCommitted("t", 0, 10);
  metrics.SetConsumerLag("t", 0, 5);
  metrics.SetCommitted("t", 1, 20);
  metrics.SetConsumerLag("t", 1, 0);
  metrics.RemovePartition("t", 0);
  metrics.RemovePartition("t", 9);  // never had a series: nothing happens

  const std::string text = Scrape(metrics.Port());
  EXPECT_EQ(Sample(text, R"(crmsync_committed_offset{partition="0",topic="t"})"), "missing");
  EXPECT_EQ(Sample(text, R"(crmsync_consumer_lag{partition="0",topic="t"})"), "missing");
  EXPECT_EQ(Sample(text, R"(crmsync_committed_offset{partition="1",topic="t"})"), "20");
  EXPECT_EQ(Sample(text, R"(crmsync_consumer_lag{partition="1",topic="t"})"), "0");
  // Owned again later: the series comes back.
  metrics.SetCommitted("t", 0, 11);
  EXPECT_EQ(Sample(Scrape(metrics.Port()), R"(crmsync_committed_offset{partition="0",topic="t"})"),
            "11");
}

TEST(Metrics, HealthzFollowsProgress) {
  Metrics metrics("127.0.0.1:0");
  // Counted from construction before the first Progress().
  EXPECT_EQ(Get(metrics.Port(), "/healthz").first, 200);
  metrics.SetLivenessTimeout(std::chrono::milliseconds(200));
  // No progress for longer than the timeout: not live.
  ASSERT_TRUE(WaitUntil([&] { return Get(metrics.Port(), "/healthz").first == 503; }));
  EXPECT_FALSE(metrics.Live());
  EXPECT_NE(Get(metrics.Port(), "/healthz").second.find(R"("live":false)"), std::string::npos);
  metrics.Progress();
  metrics.SetLivenessTimeout(std::chrono::seconds(30));
  const auto [status, body] = Get(metrics.Port(), "/healthz");
  EXPECT_EQ(status, 200) << body;
  EXPECT_NE(body.find(R"("live":true)"), std::string::npos) << body;
}

TEST(Metrics, ReadyzNeedsConfigGroupAndBroker) {
  Metrics metrics("127.0.0.1:0");
  const int port = metrics.Port();
  EXPECT_EQ(Get(port, "/readyz").first, 503);
  metrics.SetConfigLoaded(true);
  metrics.SetBrokerReachable(true);
  const auto [before_join, body] = Get(port, "/readyz");
  EXPECT_EQ(before_join, 503);
  EXPECT_NE(body.find(R"("groupJoined":false)"), std::string::npos) << body;
  metrics.SetGroupJoined(true);
  EXPECT_EQ(Get(port, "/readyz").first, 200);
  EXPECT_TRUE(metrics.Ready());
  // Every condition is needed.
  metrics.SetBrokerReachable(false);
  const auto [unreachable, why] = Get(port, "/readyz");
  EXPECT_EQ(unreachable, 503);
  EXPECT_NE(why.find(R"("brokerReachable":false)"), std::string::npos) << why;
  metrics.SetBrokerReachable(true);
  metrics.SetConfigLoaded(false);
  EXPECT_EQ(Get(port, "/readyz").first, 503);
  metrics.SetConfigLoaded(true);
  EXPECT_EQ(Get(port, "/readyz").first, 200);
  // Liveness is separate: a ready worker is live, and other paths are 404.
  EXPECT_EQ(Get(port, "/healthz").first, 200);
  EXPECT_EQ(Get(port, "/nothing-here").first, 404);
}

TEST(Metrics, MalformedListenAddressThrows) {
  EXPECT_THROW(Metrics("9464"), std::runtime_error);
  EXPECT_THROW(Metrics("127.0.0.1:http"), std::runtime_error);
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
        metrics.Operation("replify", "upsert", "delivered", 1);
        metrics.HttpRequest("p" + std::to_string(t), "200", 0.001);
      }
    });
  }
  for (auto& thread : threads) thread.join();

  const std::string text = Scrape(metrics.Port());
  EXPECT_EQ(
      Sample(text,
             R"(crmsync_operations_total{action="upsert",outcome="delivered",provider="replify"})"),
      std::to_string(kThreads * kPerThread));
  EXPECT_EQ(Sample(text, R"(crmsync_http_requests_total{code="200",provider="p2"})"),
            std::to_string(kPerThread));
}

}  // namespace
}  // namespace crmsync::worker
