// Observability end to end: a Worker on the test broker and the simulator,
// with its listener on a free loopback port. /readyz fails until the group
// is joined and /metrics describes the stream it processed; the `crmsync run`
// binary logs only JSON lines, without API keys or unmasked email addresses.
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/simulator.h"
#include "sim/whippy_sim.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "tests/support/sim_fixture.h"
#include "tests/support/worker_process.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/test_broker.h"
#include "worker/metrics.h"
#include "worker/sample_events.h"
#include "worker/worker.h"

namespace crmsync::testing {
namespace {

using std::chrono::seconds;

constexpr char kKey[] = "obs+Secret/9Zq=T3-key";
constexpr int32_t kCoordinator = 1;        // the fixture's only broker
constexpr int16_t kJoinGroupRequest = 11;  // Kafka protocol API key

std::optional<std::string> TestEnv(std::string_view) { return std::string(kKey); }

// Status and body of GET `path` on the loopback port; -1 when nothing answers.
std::pair<int, std::string> Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto result = client.Get(path.c_str());
  if (!result) return {-1, httplib::to_string(result.error())};
  return {result->status, result->body};
}

// One sample of a Prometheus text page: the metric name, its labels as
// written ("a=\"1\",b=\"2\""), and the value.
struct Sample {
  std::string name;
  std::string labels;
  double value = 0;
};

std::vector<Sample> ParseSamples(const std::string& text) {
  std::vector<Sample> samples;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    const std::string series = line.substr(0, space);
    Sample sample;
    const size_t brace = series.find('{');
    sample.name = series.substr(0, brace);
    if (brace != std::string::npos) sample.labels = series.substr(brace + 1);
    const std::string value = line.substr(space + 1);
    sample.value = value == "+Inf" ? INFINITY : std::stod(value);
    samples.push_back(sample);
  }
  return samples;
}

class Page {
 public:
  explicit Page(const std::string& text) : samples_(ParseSamples(text)) {}

  // Samples of `name` whose labels include every `label="value"` given.
  std::vector<Sample> Find(const std::string& name,
                           const std::vector<std::string>& labels = {}) const {
    std::vector<Sample> out;
    for (const Sample& sample : samples_) {
      if (sample.name != name) continue;
      bool all = true;
      for (const std::string& label : labels) {
        all = all && sample.labels.find(label) != std::string::npos;
      }
      if (all) out.push_back(sample);
    }
    return out;
  }
  double Sum(const std::string& name, const std::vector<std::string>& labels = {}) const {
    double total = 0;
    for (const Sample& sample : Find(name, labels)) total += sample.value;
    return total;
  }

 private:
  std::vector<Sample> samples_;
};

std::string Label(const std::string& name, const std::string& value) {
  return name + "=\"" + value + "\"";
}

class ObservabilityTest : public SimBrokerTest {
 protected:
  void SetUp() override {
    sim::Simulator::Options options = AllProvidersOptions(kKey);
    options.knobs.rate_limit_time_scale = 60;
    options.threads = 32;
    StartSimulatorAndTopics(options);
    // The Whippy list refuses every write for good: rejected operations.
    auto* whippy = dynamic_cast<sim::WhippySim*>(simulator_->Provider("whippy"));
    ASSERT_NE(whippy, nullptr);
    whippy->SetListActive(kFanoutList, false);
  }

  std::vector<worker::SampleEvent> Produce(size_t events, size_t contacts, uint64_t seed) {
    worker::SampleOptions sample;
    sample.events = events;
    sample.contacts = contacts;
    sample.seed = seed;
    sample.malformed_every = 20;
    auto generated = worker::GenerateSampleEvents(sample);
    ProduceEvents(Bootstrap(), topic_, generated);
    return generated;
  }

  FanoutConfig Settings() {
    FanoutConfig settings =
        FanoutConfigFor(Bootstrap(), topic_, group_, *simulator_, dead_letter_topic_);
    settings.budget_time_scale = 60;
    return settings;
  }

  bool FullyCommitted() { return testing::FullyCommitted(Bootstrap(), group_, topic_); }
};

TEST_F(ObservabilityTest, ReadyAfterTheGroupJoinAndMetricsDescribeTheStream) {
  const auto events = Produce(400, 40, 5);
  size_t malformed = 0;
  for (const auto& e : events) malformed += e.malformed ? 1 : 0;
  ASSERT_GT(malformed, 0u);
  // The first provider requests are answered 429: throttled, then retried.
  sim::Knobs knobs = simulator_->GetKnobs();
  knobs.throttle_burst = 4;
  simulator_->SetKnobs(knobs);

  mapping::Config config =
      mapping::LoadConfigFromString(providers::Catalog(), FanoutConfigJson(Settings()), &TestEnv);
  worker::Metrics metrics(config.worker.metrics_listen);
  const int port = metrics.Port();
  ASSERT_GT(port, 0);
  worker::Worker worker(std::move(config), metrics);

  // Configured, not yet a member of the group.
  {
    const auto [status, body] = Get(port, "/readyz");
    EXPECT_EQ(status, 503) << body;
    EXPECT_NE(body.find(R"("configLoaded":true)"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("groupJoined":false)"), std::string::npos) << body;
  }
  // The coordinator holds the answer to the worker's first JoinGroup.
  Broker().PushBrokerRequestErrors(kCoordinator, kJoinGroupRequest,
                                   {{RD_KAFKA_RESP_ERR_NO_ERROR, 8000}});
  std::atomic<bool> stop{false};
  std::thread runner([&] { worker.Run(stop); });
  struct Stopper {
    std::atomic<bool>& stop;
    std::thread& runner;
    ~Stopper() {
      stop = true;
      if (runner.joinable()) runner.join();
    }
  } stopper{stop, runner};

  ASSERT_TRUE(
      WaitFor([&] { return Broker().BrokerErrorsLeft(kCoordinator, kJoinGroupRequest) == 0; },
              seconds(60)));
  // The join is pending: the loop runs (live) but the worker is not ready.
  {
    const auto [status, body] = Get(port, "/readyz");
    EXPECT_EQ(status, 503) << body;
    EXPECT_NE(body.find(R"("groupJoined":false)"), std::string::npos) << body;
    EXPECT_EQ(Get(port, "/healthz").first, 200);
  }
  ASSERT_TRUE(WaitFor([&] { return Get(port, "/readyz").first == 200; }, seconds(60)))
      << Get(port, "/readyz").second;
  EXPECT_EQ(Get(port, "/healthz").first, 200);

  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(); }, seconds(180)))
      << "consumed " << worker.Stats().consumed << ", pending " << worker.Stats().pending;
  const auto log_end = kafka::QueryGroupLag(Bootstrap(), group_, topic_);
  ASSERT_EQ(log_end.size(), 4u);
  // Lag is measured every commit interval: wait for the measurement after
  // the last commit.
  ASSERT_TRUE(WaitFor(
      [&] {
        const Page page(Get(port, "/metrics").second);
        const auto lags = page.Find("crmsync_consumer_lag", {Label("topic", topic_)});
        if (lags.size() != log_end.size()) return false;
        for (const auto& lag : lags) {
          if (lag.value != 0) return false;
        }
        return page.Sum("crmsync_operations_pending") == 0;
      },
      seconds(60)))
      << Get(port, "/metrics").second;

  const auto [status, text] = Get(port, "/metrics");
  ASSERT_EQ(status, 200);
  const Page page(text);
  const worker::WorkerStats& stats = worker.Stats();

  // Kafka side.
  EXPECT_EQ(page.Sum("crmsync_events_consumed_total", {Label("topic", topic_)}), events.size());
  EXPECT_EQ(page.Sum("crmsync_events_decoded_total", {Label("format", "canonical")}),
            events.size() - malformed);
  EXPECT_EQ(page.Sum("crmsync_events_decoded_total"), events.size() - malformed);
  EXPECT_EQ(page.Sum("crmsync_events_skipped_total", {Label("reason", "malformed")}), malformed);
  EXPECT_EQ(page.Sum("crmsync_events_skipped_total", {Label("reason", "unmatched")}),
            stats.unmatched.load());
  EXPECT_EQ(page.Sum("crmsync_events_dead_lettered_total", {Label("reason", "malformed")}),
            malformed);
  EXPECT_GT(stats.rejected.load(), 0u);
  EXPECT_EQ(page.Sum("crmsync_events_dead_lettered_total", {Label("reason", "rejected")}),
            stats.rejected.load());
  EXPECT_GE(page.Sum("crmsync_rebalances_total", {Label("kind", "assigned")}), 1);
  for (const kafka::PartitionLag& partition : log_end) {
    const std::vector<std::string> labels = {
        Label("topic", topic_), Label("partition", std::to_string(partition.partition))};
    EXPECT_EQ(page.Sum("crmsync_committed_offset", labels), partition.log_end)
        << "partition " << partition.partition;
    EXPECT_EQ(page.Find("crmsync_consumer_lag", labels).size(), 1u);
    EXPECT_EQ(page.Sum("crmsync_consumer_lag", labels), 0);
  }

  // Provider side.
  EXPECT_EQ(page.Sum("crmsync_operations_total", {Label("outcome", "delivered")}),
            stats.delivered.load());
  for (const char* provider : {"replify", "campaignlark", "replyio"}) {
    EXPECT_GT(page.Sum("crmsync_operations_total",
                       {Label("provider", provider), Label("outcome", "delivered")}),
              0)
        << provider;
    EXPECT_GT(page.Sum("crmsync_http_requests_total", {Label("provider", provider)}), 0)
        << provider;
  }
  EXPECT_EQ(page.Sum("crmsync_operations_total",
                     {Label("provider", "whippy"), Label("outcome", "rejected")}),
            stats.rejected.load());
  // Every operation series names its rule action.
  const std::set<std::string> actions = {"upsert",    "updateOnly", "remove",  "add",
                                         "overwrite", "enroll",     "unenroll"};
  const std::regex action_label(R"(action="([^"]*)\")");
  for (const Sample& sample : page.Find("crmsync_operations_total")) {
    std::smatch match;
    ASSERT_TRUE(std::regex_search(sample.labels, match, action_label)) << sample.labels;
    EXPECT_TRUE(actions.contains(match[1].str())) << sample.labels;
  }
  EXPECT_EQ(page.Sum("crmsync_operations_total", {Label("outcome", "retried")}),
            stats.retried.load());
  EXPECT_EQ(page.Sum("crmsync_retries_total"), stats.retried.load());
  EXPECT_GT(page.Sum("crmsync_http_requests_total", {Label("code", "429")}), 0);
  EXPECT_EQ(page.Sum("crmsync_http_throttled_total"),
            page.Sum("crmsync_http_requests_total", {Label("code", "429")}));
  EXPECT_GT(page.Sum("crmsync_retries_total"), 0);
  EXPECT_EQ(page.Sum("crmsync_http_request_duration_seconds_count"),
            page.Sum("crmsync_http_requests_total"));
  EXPECT_FALSE(page.Find("crmsync_http_requests_in_flight").empty());
  EXPECT_EQ(page.Sum("crmsync_http_requests_in_flight"), 0);
  EXPECT_GT(page.Sum("crmsync_batch_size_count"), 0);
  EXPECT_EQ(page.Sum("crmsync_delivery_latency_seconds_count"), stats.delivered.load());
  EXPECT_EQ(page.Find("crmsync_operations_pending").size(), 1u);
  for (const char* provider : kFanoutProviders) {
    const std::vector<std::string> labels = {Label("provider", provider)};
    EXPECT_EQ(page.Find("crmsync_circuit_state", labels).size(), 1u) << provider;
    EXPECT_EQ(page.Sum("crmsync_circuit_state", labels), 0) << provider;
    const auto tokens = page.Find("crmsync_rate_limit_tokens", labels);
    ASSERT_EQ(tokens.size(), 1u) << provider;
    EXPECT_GE(tokens[0].value, 0) << provider;
    // +Inf exactly for a provider without rate limits (Replify documents none).
    EXPECT_EQ(std::isfinite(tokens[0].value), !providers::DocumentedRateLimits(provider).empty())
        << provider << ": " << tokens[0].value;
  }
  // No label value carries contact data.
  EXPECT_EQ(text.find("@example.com"), std::string::npos);
  EXPECT_EQ(text.find(kKey), std::string::npos);

  // Stopping leaves the group: not ready any more.
  stop = true;
  runner.join();
  EXPECT_EQ(Get(port, "/readyz").first, 503);
  EXPECT_GE(page.Sum("crmsync_rebalances_total"), 1);
}

// A worker on `bootstrap` running until destroyed, with its listener.
// A worker that has not consumed anything yet: every series a dashboard
// variable or panel needs exists (at zero), so that label_values() lists the
// worker and rate() has a starting point. Only the series of things that
// exist later are absent: per owned partition (lag, committed offset) and per
// HTTP status code.
TEST_F(ObservabilityTest, FreshWorkerScrapeHasTheDashboardSeriesAtZero) {
  mapping::Config config =
      mapping::LoadConfigFromString(providers::Catalog(), FanoutConfigJson(Settings()), &TestEnv);
  worker::Metrics metrics(config.worker.metrics_listen);
  ASSERT_GT(metrics.Port(), 0);
  // What the Worker constructor does too.
  metrics.Initialize(config);
  std::vector<std::string> providers;
  for (const auto& [name, provider] : config.providers) providers.push_back(name);
  worker::Worker worker(std::move(config), metrics);

  const auto [status, text] = Get(metrics.Port(), "/metrics");
  ASSERT_EQ(status, 200) << text;
  const Page page(text);
  EXPECT_EQ(page.Find("crmsync_events_consumed_total", {Label("topic", topic_)}).size(), 1u);
  EXPECT_EQ(page.Sum("crmsync_events_consumed_total"), 0);
  for (const char* kind : {"assigned", "revoked", "lost"}) {
    EXPECT_EQ(page.Find("crmsync_rebalances_total", {Label("kind", kind)}).size(), 1u) << kind;
  }
  for (const char* reason : {"malformed", "rejected", "exhausted"}) {
    EXPECT_EQ(page.Find("crmsync_events_dead_lettered_total", {Label("reason", reason)}).size(), 1u)
        << reason;
  }
  for (const char* reason : {"malformed", "unmatched", "oversized"}) {
    EXPECT_EQ(page.Find("crmsync_events_skipped_total", {Label("reason", reason)}).size(), 1u)
        << reason;
  }
  ASSERT_FALSE(providers.empty());
  for (const std::string& provider : providers) {
    for (const char* outcome : {"delivered", "rejected", "exhausted", "retried"}) {
      EXPECT_FALSE(page.Find("crmsync_operations_total",
                             {Label("provider", provider), Label("outcome", outcome)})
                       .empty())
          << provider << " " << outcome;
    }
    EXPECT_EQ(page.Find("crmsync_retries_total", {Label("provider", provider)}).size(), 1u);
    EXPECT_EQ(page.Find("crmsync_http_throttled_total", {Label("provider", provider)}).size(), 1u);
  }
  EXPECT_EQ(page.Sum("crmsync_operations_total"), 0);
  EXPECT_EQ(page.Sum("crmsync_rebalances_total"), 0);
  EXPECT_EQ(page.Find("crmsync_build_info").size(), 1u);
  EXPECT_EQ(page.Sum("crmsync_build_info"), 1);
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_open_fds", "process_start_time_seconds"}) {
    EXPECT_EQ(page.Find(name).size(), 1u) << name;
  }

  // Every metric the dashboard queries, its variables' included.
  std::ifstream file(std::string(CRMSYNC_SOURCE_DIR) + "/helm/crmsync/dashboards/crmsync.json");
  std::stringstream dashboard;
  dashboard << file.rdbuf();
  const std::string json = dashboard.str();
  ASSERT_FALSE(json.empty());
  const std::set<std::string> later = {"crmsync_consumer_lag", "crmsync_committed_offset",
                                       "crmsync_http_requests_total"};
  const std::regex metric("crmsync_[a-z_]+");
  std::set<std::string> queried;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), metric);
       it != std::sregex_iterator(); ++it) {
    queried.insert(it->str());
  }
  ASSERT_TRUE(queried.count("crmsync_build_info"));  // the variables' metric
  for (const std::string& name : queried) {
    if (later.count(name) || name == "crmsync_json") continue;
    EXPECT_FALSE(page.Find(name).empty()) << name << " is queried by the dashboard";
  }
}

class RunningWorker {
 public:
  explicit RunningWorker(const std::string& config_json)
      : config_(mapping::LoadConfigFromString(providers::Catalog(), config_json, &TestEnv)),
        metrics_(config_.worker.metrics_listen),
        worker_(config_, metrics_),
        runner_([this] { worker_.Run(stop_); }) {}
  ~RunningWorker() {
    stop_ = true;
    runner_.join();
  }
  int Port() const { return metrics_.Port(); }
  const worker::WorkerStats& Stats() const { return worker_.Stats(); }

 private:
  mapping::Config config_;
  worker::Metrics metrics_;
  worker::Worker worker_;
  std::atomic<bool> stop_{false};
  std::thread runner_;
};

TEST_F(ObservabilityTest, MemberWithoutPartitionsIsReadyToo) {
  // One partition, two members: one of them gets nothing, and is a member
  // of the group all the same.
  FanoutConfig settings = Settings();
  settings.topic = MakeTopic(1);
  const std::string config = FanoutConfigJson(settings);
  RunningWorker first(config);
  RunningWorker second(config);
  // Either of them may get it.
  ASSERT_TRUE(WaitFor(
      [&] { return first.Stats().assigned_partitions + second.Stats().assigned_partitions > 0; },
      seconds(60)));
  EXPECT_TRUE(WaitFor(
      [&] {
        return Get(first.Port(), "/readyz").first == 200 &&
               Get(second.Port(), "/readyz").first == 200;
      },
      seconds(60)))
      << Get(first.Port(), "/readyz").second << Get(second.Port(), "/readyz").second;
  EXPECT_EQ(first.Stats().assigned_partitions + second.Stats().assigned_partitions, 1u);
}

TEST(ObservabilityBrokerTest, NotReadyWhileNoBrokerIsReachable) {
  // A broker of its own: this test takes it down.
  kafka::TestBroker broker;
  broker.CreateTopic("crm.outage", 2);
  sim::Simulator simulator(AllProvidersOptions(kKey));
  simulator.Start();
  FanoutConfig settings =
      FanoutConfigFor(broker.BootstrapServers(), "crm.outage", "observability-outage", simulator);
  // Statistics every half second: the worker notices a broker back soon
  // even when no message arrives.
  settings.kafka_properties = R"({"statistics.interval.ms": "500"})";
  RunningWorker worker(FanoutConfigJson(settings));
  ASSERT_TRUE(WaitFor([&] { return Get(worker.Port(), "/readyz").first == 200; }, seconds(60)))
      << Get(worker.Port(), "/readyz").second;

  broker.SetBrokerDown(1);
  ASSERT_TRUE(WaitFor([&] { return Get(worker.Port(), "/readyz").first == 503; }, seconds(60)))
      << Get(worker.Port(), "/readyz").second;
  const auto [status, body] = Get(worker.Port(), "/readyz");
  EXPECT_NE(body.find(R"("brokerReachable":false)"), std::string::npos) << status << body;
  // The loop itself goes on: live, only not ready.
  EXPECT_EQ(Get(worker.Port(), "/healthz").first, 200);

  broker.SetBrokerUp(1);
  EXPECT_TRUE(WaitFor([&] { return Get(worker.Port(), "/readyz").first == 200; }, seconds(60)))
      << Get(worker.Port(), "/readyz").second;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST_F(ObservabilityTest, WorkerBinaryLogsJsonLinesWithoutKeysOrEmails) {
  const auto events = Produce(300, 30, 9);
  FanoutConfig settings = Settings();
  for (auto& [provider, config] : settings.providers) config.api_key_env = "CRMSYNC_OBS_KEY";
  settings.worker = R"({"commitIntervalMs": 100,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 500},
    "metrics": {"listen": "127.0.0.1:0"}})";
  const std::string config_path = ::testing::TempDir() + "/" + group_ + ".json";
  std::ofstream(config_path) << FanoutConfigJson(settings);

  WorkerProcessOptions options;
  options.config_path = config_path;
  options.env = {{"CRMSYNC_OBS_KEY", kKey}};
  options.log_level = "debug";  // the most the worker ever says
  WorkerProcess child(options);

  // The worker names its listener's port in its log.
  int port = 0;
  const std::regex serving(R"(serving /metrics, /healthz and /readyz on port ([0-9]+))");
  ASSERT_TRUE(WaitFor(
      [&] {
        std::smatch match;
        const std::string log = child.Log();
        if (!std::regex_search(log, match, serving)) return !child.Running();
        port = std::stoi(match[1].str());
        return true;
      },
      seconds(60)));
  ASSERT_GT(port, 0) << child.Log();
  ASSERT_TRUE(
      WaitFor([&] { return Get(port, "/readyz").first == 200 || !child.Running(); }, seconds(60)));
  ASSERT_TRUE(child.Running()) << child.Log();
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted() || !child.Running(); }, seconds(180)));
  ASSERT_TRUE(child.Running()) << child.Log();
  EXPECT_EQ(Get(port, "/healthz").first, 200);
  EXPECT_EQ(child.Terminate(), 0);

  const std::string log = ReadFile(child.LogPath());
  std::istringstream in(log);
  const std::regex rfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  const std::set<std::string> levels = {"trace", "debug", "info", "warning", "error", "critical"};
  size_t lines = 0, malformed_lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
    ASSERT_FALSE(doc.HasParseError()) << "line " << lines << " is not JSON: " << line;
    ASSERT_TRUE(doc.IsObject()) << line;
    ASSERT_TRUE(doc.HasMember("ts") && doc["ts"].IsString()) << line;
    ASSERT_TRUE(doc.HasMember("level") && doc["level"].IsString()) << line;
    ASSERT_TRUE(doc.HasMember("msg") && doc["msg"].IsString()) << line;
    EXPECT_TRUE(std::regex_match(std::string(doc["ts"].GetString()), rfc3339)) << line;
    EXPECT_TRUE(levels.contains(doc["level"].GetString())) << line;
    if (std::string(doc["msg"].GetString()).find("malformed message") != std::string::npos) {
      ++malformed_lines;
    }
  }
  // The log is about the stream: start-up, assignment, malformed messages,
  // rejections, shutdown.
  EXPECT_GT(lines, 20u) << log;
  EXPECT_EQ(malformed_lines, events.size() / 20) << log;

  EXPECT_EQ(log.find(kKey), std::string::npos) << "the log shows the API key";
  EXPECT_EQ(log.find("obs%2BSecret"), std::string::npos) << "the log shows the API key";
  std::set<std::string> emails;
  for (const auto& e : events) {
    if (!e.malformed && e.event.contact.email) emails.insert(*e.event.contact.email);
  }
  ASSERT_FALSE(emails.empty());
  for (const std::string& email : emails) {
    EXPECT_EQ(log.find(email), std::string::npos) << "the log shows " << email;
  }
}

}  // namespace
}  // namespace crmsync::testing
