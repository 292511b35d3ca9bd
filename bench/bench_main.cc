// crmsync-bench: produces CRM events into the test broker, runs the real
// worker binary (build/crmsync) as a child process against the provider
// simulator until the group's lag is zero, and reports throughput, the
// worker's CPU per event and peak RSS (from wait4), produce-to-acknowledgement
// latency percentiles (from the worker's /metrics histogram), 429s seen, and
// a ceiling to compare with.
#include <httplib.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mapping/decode.h"
#include "sim/simulator.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/conf.h"
#include "worker/kafka/handles.h"
#include "worker/kafka/producer.h"
#include "worker/kafka/test_broker.h"
#include "worker/sample_events.h"

namespace crmsync::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kCampaign[] = "5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3";
constexpr char kKey[] = "bench-replify-key";

// Where the bench runs: librdkafka's mock cluster in this process (the
// default), or an external broker (--bootstrap; `make bench-kafka` starts a
// real Apache Kafka for it), on which the run's topics and groups carry a tag
// of their own so that what earlier runs left there does not matter. Set once
// by main() before the first scenario.
struct Target {
  std::string bootstrap;  // empty: the mock cluster
  int partitions = 32;
  std::string tag;  // prefix of topic and group names on an external broker
};
Target& BenchTarget() {
  static Target target;
  return target;
}

// "bench-<name>", behind the run's tag.
std::string Named(const std::string& name) { return BenchTarget().tag + "bench-" + name; }

// The broker of one scenario: a fresh mock cluster, or the external one.
class Broker {
 public:
  Broker() {
    if (BenchTarget().bootstrap.empty()) mock_.emplace();
  }
  const std::string& BootstrapServers() const {
    return mock_ ? mock_->BootstrapServers() : BenchTarget().bootstrap;
  }
  void CreateTopic(const std::string& topic) {
    if (mock_) {
      mock_->CreateTopic(topic, BenchTarget().partitions);
    } else {
      kafka::CreateTopic(BenchTarget().bootstrap, topic, BenchTarget().partitions);
    }
  }

 private:
  std::optional<kafka::TestBroker> mock_;
};

struct Scenario {
  std::string name;
  size_t events = 0;
  size_t contacts = 0;
  int latency_ms = 0;
  bool produce_first = true;  // backlog: everything is in the topic before the worker starts
  int max_batch = 500;
  int max_in_flight = 16;
  // rate-limited: Whippy and Reply.io at their documented limits, run this
  // many times faster by both the simulator and the worker's budgets.
  double rate_limit_time_scale = 0;
  // Events produced per second while the worker runs (0: as fast as
  // possible); a steady load below the ceiling measures latency, not backlog.
  double produce_rate = 0;
  // Also run bench/python_worker.py (the simple script a user would write)
  // on the same topic and simulator, as a fresh group.
  bool python_baseline = false;
  // A CRM stream as change streams are: most updates touch only fields no
  // provider receives (a last-modified date, an owner id); with contact
  // state on, the worker suppresses what the provider already has.
  bool crm_noise = false;
  bool contact_state = false;
  // crash: the worker is killed with SIGKILL this many times while it works
  // through a backlog, and restarted each time; the provider writes it
  // repeats are compared with a run that was never killed.
  int kills = 0;
};

constexpr char kList[] = "bench-list";
constexpr auto kWarmUp = std::chrono::seconds(2);
constexpr int64_t kSequence = 777;

struct Result {
  Scenario scenario;
  double seconds = 0;         // worker start to zero lag, group join included
  double active_seconds = 0;  // first consumed event to zero lag
  double worker_cpu_us_per_event = 0;
  double peak_rss_mb = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  // Steady loads: the same, without the first kWarmUp of consumption (the
  // fetchers' start and the first connections to the provider).
  std::optional<double> p50_after_warm_up_ms, p99_after_warm_up_ms;
  double http_429 = 0;
  double http_429_after_first_second = 0;
  double requests = 0;
  double operations = 0;
  double suppressed = 0;  // operations not sent: the provider already had them
  std::optional<double> ceiling;
  std::string ceiling_note;
  // The Python baseline on the same topic, when run.
  std::optional<double> python_active_seconds;
  std::optional<double> python_cpu_us_per_event;
  // crash: kills done, contacts the provider was sent (2xx requests) by the
  // killed runs together and by a clean run of the same stream, the
  // operations the worker held (queued or in flight) just before each kill,
  // and whether the provider ended in the clean run's state.
  int kills = 0;
  double contacts_sent_crash = 0;
  double contacts_sent_clean = 0;
  double pending_at_kill = 0;
  bool crash_state_matches = false;
  // The same for the Python baseline, when run.
  int python_kills = 0;
  double python_contacts_sent_crash = 0;
  double python_contacts_sent_clean = 0;
  bool python_crash_state_matches = false;
};

// Runs the Python baseline worker to the end of the topic; its active
// seconds (first message to done) and CPU per event.
std::optional<std::pair<double, double>> RunPythonBaseline(const std::string& bootstrap,
                                                           const std::string& topic,
                                                           const std::string& url, size_t events) {
  const std::string script = std::string(CRMSYNC_SOURCE_DIR) + "/bench/python_worker.py";
  const std::string report =
      (std::filesystem::temp_directory_path() / ("crmsync-bench-python-" + topic)).string();
  const std::string group = "bench-python-" + topic;
  const std::string count = std::to_string(events);
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("REPLIFY_API_KEY", kKey, 1);
    // Debian's interpreter, which has python3-confluent-kafka and python3-requests.
    execl("/usr/bin/python3", "python3", script.c_str(), "--bootstrap", bootstrap.c_str(),
          "--topic", topic.c_str(), "--group", group.c_str(), "--url", url.c_str(), "--events",
          count.c_str(), "--report", report.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  double active = 0;
  std::ifstream(report) >> active;
  std::filesystem::remove(report);
  const double cpu_us = usage.ru_utime.tv_sec * 1e6 + usage.ru_utime.tv_usec +
                        usage.ru_stime.tv_sec * 1e6 + usage.ru_stime.tv_usec;
  return std::pair(active, cpu_us / static_cast<double>(events));
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Whippy list writes and Reply.io enrollments at the documented limits
// (10 list writes a minute; 100 requests a minute and 3000 an hour), in
// scaled time.
std::string RateLimitedConfigJson(const Scenario& s, const std::string& bootstrap,
                                  const std::string& topic, const sim::Simulator& sim,
                                  int metrics_port) {
  const double k = s.rate_limit_time_scale;
  auto period = [k](double ms) { return std::to_string(static_cast<int64_t>(ms / k)); };
  std::ostringstream out;
  out << R"({"kafka": {"bootstrapServers": ")" << bootstrap << R"(", "topics": [")" << topic
      << R"("], "groupId": ")" << Named(s.name) << R"("},
 "providers": {
  "whippy": {"baseUrl": ")"
      << sim.BaseUrl("whippy") << R"(", "apiKey": {"env": "WHIPPY_API_KEY"}, "maxBatch": )"
      << s.max_batch << R"(, "lingerMs": 50,
             "rateLimits": [{"requests": 10, "periodMs": )"
      << period(60000) << R"(}]},
  "replyio": {"baseUrl": ")"
      << sim.BaseUrl("replyio") << R"(", "apiKey": {"env": "REPLYIO_API_KEY"}, "maxBatch": )"
      << s.max_batch << R"(, "lingerMs": 50, "maxInFlight": 16,
              "rateLimits": [{"requests": 100, "periodMs": )"
      << period(60000) << R"(}, {"requests": 3000, "periodMs": )" << period(3600000) << R"(}]}},
 "rules": [
  {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
   "actions": [{"provider": "whippy", "listId": ")"
      << kList << R"(", "action": "add"},
               {"provider": "replyio", "sequenceId": )"
      << kSequence << R"(, "action": "enroll"}]},
  {"name": "stop", "when": {"kinds": ["contact.status_changed", "contact.deleted"]},
   "actions": [{"provider": "whippy", "listId": ")"
      << kList << R"(", "action": "remove"},
               {"provider": "replyio", "sequenceId": )"
      << kSequence << R"(, "action": "unenroll"}]}],
 "worker": {"commitIntervalMs": 200, "metrics": {"listen": "127.0.0.1:)"
      << metrics_port << R"("}}})";
  return out.str();
}

// Per contact: a creation, then updates of which about 85 % change only
// `lastModifiedDate` or `ownerId` (properties no action copies) and 15 %
// change the contact's tier, which Replify receives as metadata.
std::vector<worker::SampleEvent> CrmNoiseEvents(size_t events, size_t contacts) {
  std::vector<worker::SampleEvent> out;
  out.reserve(events);
  std::vector<int> tier(contacts, 0);
  std::vector<bool> created(contacts, false);
  const char* const kTiers[] = {"trial", "starter", "pro", "enterprise"};
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  const int64_t start_ms = 1795435200000;  // 2026-11-23T12:00:00Z
  for (size_t i = 0; i < events; ++i) {
    const size_t c = next() % contacts;
    mapping::CrmEvent event;
    event.event_id = "noise-" + std::to_string(i);
    event.occurred_at = mapping::FormatRfc3339(start_ms + static_cast<int64_t>(i));
    event.external_id_key = "hubspotId";
    event.external_id_value = std::to_string(200000 + c);
    event.kind = created[c] ? mapping::EventKind::kUpdated : mapping::EventKind::kCreated;
    if (created[c] && next() % 100 < 15) tier[c] = (tier[c] + 1) % 4;
    created[c] = true;
    event.contact.first_name = "First" + std::to_string(c);
    event.contact.last_name = "Last" + std::to_string(c);
    event.contact.email = "noise" + std::to_string(c) + "@example.com";
    event.contact.phone = "1555" + std::to_string(1000000 + c);
    event.contact.properties["tier"] = kTiers[tier[c]];
    event.contact.properties["lastModifiedDate"] = event.occurred_at;
    event.contact.properties["ownerId"] = std::to_string(next() % 50);
    out.push_back({event.external_id_key + ":" + event.external_id_value,
                   worker::ToCanonicalJson(event), false, event});
  }
  return out;
}

// The state changelog of `group` (each group its own, as two deployments
// of the worker would have; "" is the scenario's group).
std::string ChangelogTopic(const std::string& topic, const std::string& group) {
  return topic + (group.empty() ? "" : "." + group) + ".crmsync-state";
}

std::string ConfigJson(const Scenario& s, const std::string& bootstrap, const std::string& topic,
                       const std::string& base_url, int metrics_port,
                       const std::string& group = "") {
  std::ostringstream out;
  // librdkafka's mock broker answers a fetch that found no data only after
  // fetch.wait.max.ms (500 ms by default), where a real broker answers as
  // soon as data arrives; under a steady load that wait would be measured as
  // delivery latency.
  std::string properties;
  if (s.produce_rate > 0) properties = R"("fetch.wait.max.ms": "10")";
  // crash: the mock cluster's first join of a group waits 3 s and its
  // session check runs every second; a killed member's partitions move once
  // its session (4 s here, 45 s by default) has expired.
  if (s.kills > 0) properties = R"("session.timeout.ms": "4000", "heartbeat.interval.ms": "300")";
  if (!properties.empty()) properties = R"(, "properties": {)" + properties + "}";
  out << R"({"kafka": {"bootstrapServers": ")" << bootstrap << R"(", "topics": [")" << topic
      << R"("], "groupId": ")" << (group.empty() ? Named(s.name) : group) << R"(")" << properties
      << R"(},
 "providers": {"replify": {"baseUrl": ")"
      << base_url << R"(", "apiKey": {"env": "REPLIFY_API_KEY"}, "maxBatch": )" << s.max_batch
      << R"(, "lingerMs": 20, "maxInFlight": )" << s.max_in_flight
      << R"(, "requestTimeoutMs": 30000}},
 "rules": [
  {"name": "stop", "when": {"kinds": ["contact.status_changed"]},
   "actions": [{"provider": "replify", "campaignId": ")"
      << kCampaign << R"(", "action": "updateOnly"}]},
  {"name": "deleted", "when": {"kinds": ["contact.deleted"]},
   "actions": [{"provider": "replify", "campaignId": ")"
      << kCampaign << R"(", "action": "remove"}]},
  {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
   "actions": [{"provider": "replify", "campaignId": ")"
      << kCampaign << R"(", "action": "upsert")"
      << (s.crm_noise ? R"(, "metadataProperties": ["tier"])" : "") << R"(}]}],)"
      << (s.contact_state ? R"(
 "state": {"enabled": true, "createTopics": false, "changelogTopic": ")" +
                                ChangelogTopic("{topic}", group) + R"("},)"
                          : "")
      << R"(
 "worker": {"commitIntervalMs": 200, "maxPendingOperations": 100000,)"
      // A restart after a kill waits this long before sending (the killed
      // run's requests take 50 ms here; the default is requestTimeoutMs).
      << (s.kills > 0 ? R"( "takeoverFenceMs": 500,)" : "") << R"(
            "metrics": {"listen": "127.0.0.1:)"
      << metrics_port << R"("}}})";
  return out.str();
}

// Sums a metric's samples whose line contains every `needle`.
double MetricSum(const std::string& text, const std::string& name,
                 const std::vector<std::string>& needles = {}) {
  double sum = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name, 0) != 0 || line[name.size()] == '_') continue;
    bool all = true;
    for (const auto& needle : needles) all = all && line.find(needle) != std::string::npos;
    if (!all) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// A percentile from a Prometheus histogram, interpolated within its bucket.
// A histogram's buckets: (upper bound, cumulative count), in order.
using Buckets = std::vector<std::pair<double, double>>;

Buckets HistogramBuckets(const std::string& text, const std::string& name) {
  Buckets buckets;
  std::istringstream lines(text);
  std::string line;
  const std::string prefix = name + "_bucket{";
  while (std::getline(lines, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    const auto le_at = line.find("le=\"");
    if (le_at == std::string::npos) continue;
    const std::string le = line.substr(le_at + 4, line.find('"', le_at + 4) - le_at - 4);
    const double bound = le == "+Inf" ? INFINITY : std::stod(le);
    buckets.emplace_back(bound, std::stod(line.substr(line.rfind(' ') + 1)));
  }
  return buckets;
}

// What was observed after `before` (same histogram, same buckets).
Buckets Since(Buckets after, const Buckets& before) {
  if (before.size() != after.size()) return after;
  for (size_t i = 0; i < after.size(); ++i) after[i].second -= before[i].second;
  return after;
}

double Percentile(const Buckets& buckets, double q) {
  if (buckets.empty() || buckets.back().second == 0) return 0;
  const double target = q * buckets.back().second;
  double lower = 0, below = 0;
  for (const auto& [bound, count] : buckets) {
    if (count >= target) {
      if (std::isinf(bound)) return lower;
      const double within = count - below;
      return within <= 0 ? bound : lower + (bound - lower) * (target - below) / within;
    }
    lower = bound;
    below = count;
  }
  return lower;
}

// VmHWM of a running process, in MiB.
double PeakRssMb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  return 0;
}

// A do-nothing librdkafka consumer reading the whole topic: the ceiling of
// what any consumer can do on this machine and broker.
double CeilingConsumer(const std::string& bootstrap, const std::string& topic, size_t events) {
  kafka::ConfPtr conf(rd_kafka_conf_new());
  kafka::SetProperty(conf.get(), "bootstrap.servers", bootstrap);
  kafka::SetProperty(conf.get(), "group.id", "bench-ceiling-" + topic);
  kafka::SetProperty(conf.get(), "auto.offset.reset", "earliest");
  kafka::SetProperty(conf.get(), "enable.auto.commit", "false");
  kafka::KafkaPtr rk = kafka::NewClient(RD_KAFKA_CONSUMER, std::move(conf), "ceiling consumer: ");
  rd_kafka_poll_set_consumer(rk.get());
  const int partitions = BenchTarget().partitions;
  kafka::TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk.get(), list.get())) {
    throw std::runtime_error(std::string("ceiling consumer: assign: ") + rd_kafka_err2str(err));
  }
  size_t seen = 0;
  Clock::time_point first{};
  const auto deadline = Clock::now() + std::chrono::minutes(5);
  while (seen < events && Clock::now() < deadline) {
    kafka::MessagePtr msg(rd_kafka_consumer_poll(rk.get(), 100));
    if (!msg || msg->err) continue;
    if (seen++ == 0) first = Clock::now();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - first).count();
  rd_kafka_consumer_close(rk.get());
  return seen / std::max(seconds, 1e-9);
}

// Runs the worker binary on `config_path`, with the bench's API keys.
pid_t StartWorker(const std::string& worker_binary, const std::string& config_path) {
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("REPLIFY_API_KEY", kKey, 1);
    setenv("WHIPPY_API_KEY", kKey, 1);
    setenv("REPLYIO_API_KEY", kKey, 1);
    execl(worker_binary.c_str(), worker_binary.c_str(), "--log-level", "warn", "run", "--config",
          config_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Whether `group` has committed all of `topic`'s `events` messages.
bool ZeroLag(const std::string& bootstrap, const std::string& group, const std::string& topic,
             size_t events) {
  try {
    auto lags = kafka::QueryGroupLag(bootstrap, group, topic);
    int64_t end = 0;
    for (const auto& lag : lags) end += lag.log_end;
    return static_cast<size_t>(end) >= events && kafka::TotalLag(lags) == 0;
  } catch (const std::exception&) {
    return false;
  }
}

// Contacts carried by the provider requests the simulator answered 2xx.
double ContactsSent(const sim::Simulator& sim) {
  double total = 0;
  for (const sim::RequestRecord& record : sim.RequestLog()) {
    if (record.status < 200 || record.status >= 300) continue;
    rapidjson::Document doc;
    doc.Parse(record.body.data(), record.body.size());
    if (doc.HasParseError() || !doc.IsObject()) continue;
    auto contacts = doc.FindMember("contacts");
    if (contacts != doc.MemberEnd() && contacts->value.IsArray()) total += contacts->value.Size();
  }
  return total;
}

using Campaigns = std::map<std::string, std::map<std::string, sim::ReplifyContact>>;

// A few of the contacts whose Replify state differs, for whoever investigates.
void PrintDifferences(const Campaigns& clean, const Campaigns& now) {
  static const std::map<std::string, sim::ReplifyContact> kNone;
  auto campaign = [](const Campaigns& all) -> const std::map<std::string, sim::ReplifyContact>& {
    auto it = all.find(kCampaign);
    return it == all.end() ? kNone : it->second;
  };
  const auto& a = campaign(clean);
  const auto& b = campaign(now);
  auto describe = [](const std::map<std::string, sim::ReplifyContact>& in,
                     const std::string& email) {
    auto it = in.find(email);
    return it == in.end() ? std::string("absent") : "status '" + it->second.status + "'";
  };
  std::set<std::string> emails;
  for (const auto& [email, contact] : a) emails.insert(email);
  for (const auto& [email, contact] : b) emails.insert(email);
  int shown = 0;
  for (const std::string& email : emails) {
    auto x = a.find(email), y = b.find(email);
    if (x != a.end() && y != b.end() && x->second == y->second) continue;
    if (++shown > 10) break;
    std::printf("\n  %s: clean run %s, with kills %s", email.c_str(), describe(a, email).c_str(),
                describe(b, email).c_str());
  }
}

// crash: one clean run of a backlog, then the same backlog for another group
// with `kills` SIGKILLs at random moments of its work, each followed by a
// restart, and a last run to zero lag. Offsets are committed only after the
// provider confirmed, so a kill loses nothing; what the next owner repeats is
// the work after the committed offsets.
Result RunCrash(const Scenario& s, const std::string& worker_binary) {
  Result result;
  result.scenario = s;
  std::printf("%-16s %9zu events over %zu contacts, %d kills ...", s.name.c_str(), s.events,
              s.contacts, s.kills);
  std::fflush(stdout);
  Broker broker;
  const std::string topic = Named(s.name);
  broker.CreateTopic(topic);
  sim::Simulator::Options sim_options;
  sim_options.api_keys = {{"replify", kKey}};
  sim_options.threads = 64;
  sim_options.request_log_limit = 1'000'000;
  sim_options.request_log_max_bytes = size_t{1} << 30;
  sim_options.knobs.latency = std::chrono::milliseconds(s.latency_ms);
  sim::Simulator simulator(sim_options);
  simulator.Start();
  const std::string clean_group = Named(s.name + "-clean");
  const std::string crash_group = Named(s.name);
  if (s.contact_state) {
    broker.CreateTopic(ChangelogTopic(topic, clean_group));
    broker.CreateTopic(ChangelogTopic(topic, crash_group));
  }
  worker::SampleOptions sample;
  sample.events = s.events;
  sample.contacts = s.contacts;
  sample.seed = 7;
  const auto events = worker::GenerateSampleEvents(sample);
  {
    kafka::Producer producer(broker.BootstrapServers(), {{"linger.ms", "20"}});
    for (const auto& event : events) producer.Produce(topic, event.key, event.payload);
    producer.Flush(std::chrono::minutes(5));
  }
  const std::string config_path =
      (std::filesystem::temp_directory_path() / ("crmsync-bench-" + s.name + ".json")).string();
  // One run of `group` until zero lag (or `kill_after`, then SIGKILL); the
  // operations it held just before a kill.
  auto run = [&](const std::string& group, std::optional<std::chrono::milliseconds> kill_after) {
    const int metrics_port = FreePort();
    std::ofstream(config_path) << ConfigJson(s, broker.BootstrapServers(), topic,
                                             simulator.BaseUrl("replify"), metrics_port, group);
    const pid_t pid = StartWorker(worker_binary, config_path);
    httplib::Client client("127.0.0.1", metrics_port);
    double pending = 0;
    std::optional<Clock::time_point> working;  // first event past the takeover wait
    const auto deadline = Clock::now() + std::chrono::minutes(5);
    while (Clock::now() < deadline &&
           !ZeroLag(broker.BootstrapServers(), group, topic, events.size())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (waitpid(pid, nullptr, WNOHANG) == pid) {
        throw std::runtime_error("the worker exited early (" + s.name + ", group " + group + ")");
      }
      if (!kill_after) continue;
      auto res = client.Get("/metrics");
      if (!res) continue;
      if (!working && MetricSum(res->body, "crmsync_events_consumed_total") > 0) {
        working = Clock::now();
      }
      pending = MetricSum(res->body, "crmsync_operations_pending");
      if (working && Clock::now() - *working >= *kill_after) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        return std::optional<double>(pending);
      }
    }
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    return std::optional<double>();
  };

  run(clean_group, std::nullopt);
  result.contacts_sent_clean = ContactsSent(simulator);
  const auto clean_state = simulator.ReplifyCampaigns();
  simulator.Reset();

  std::mt19937 random(20261203);
  std::uniform_int_distribution<int> work_ms(300, 1500);
  const auto started = Clock::now();
  for (int k = 0; k < s.kills; ++k) {
    const auto pending = run(crash_group, std::chrono::milliseconds(work_ms(random)));
    if (!pending) break;  // the backlog was done before this kill
    ++result.kills;
    result.pending_at_kill += *pending;
  }
  if (result.kills > 0) result.pending_at_kill /= result.kills;
  run(crash_group, std::nullopt);
  result.seconds = result.active_seconds =
      std::chrono::duration<double>(Clock::now() - started).count();
  result.contacts_sent_crash = ContactsSent(simulator);
  result.crash_state_matches = simulator.ReplifyCampaigns() == clean_state;
  if (!result.crash_state_matches) PrintDifferences(clean_state, simulator.ReplifyCampaigns());
  std::filesystem::remove(config_path);

  if (s.python_baseline) {
    // The script killed the same way: a clean run, then ten kills at random
    // moments after its first request, and a last run to zero lag.
    const std::string script = std::string(CRMSYNC_SOURCE_DIR) + "/bench/python_worker.py";
    const std::string url = simulator.BaseUrl("replify") + "/campaigns/" + kCampaign + "/contacts";
    auto python = [&](const std::string& group,
                      std::optional<std::chrono::milliseconds> kill_after) {
      const uint64_t requests_before = simulator.GetCounters().requests;
      const pid_t pid = fork();
      if (pid == 0) {
        setenv("REPLIFY_API_KEY", kKey, 1);
        execl("/usr/bin/python3", "python3", script.c_str(), "--bootstrap",
              broker.BootstrapServers().c_str(), "--topic", topic.c_str(), "--group", group.c_str(),
              "--url", url.c_str(), "--events", "1000000000000", "--session-timeout-ms", "4000",
              static_cast<char*>(nullptr));
        _exit(127);
      }
      std::optional<Clock::time_point> working;
      bool killed = false;
      const auto deadline = Clock::now() + std::chrono::minutes(10);
      while (Clock::now() < deadline &&
             !ZeroLag(broker.BootstrapServers(), group, topic, events.size())) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (!kill_after) continue;
        if (!working && simulator.GetCounters().requests > requests_before) working = Clock::now();
        if (working && Clock::now() - *working >= *kill_after) {
          killed = true;
          break;
        }
      }
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return killed;
    };
    simulator.Reset();
    python(clean_group + "-python", std::nullopt);
    result.python_contacts_sent_clean = ContactsSent(simulator);
    const auto python_clean_state = simulator.ReplifyCampaigns();
    simulator.Reset();
    std::mt19937 python_random(20261203);
    for (int k = 0; k < s.kills; ++k) {
      if (!python(crash_group + "-python", std::chrono::milliseconds(work_ms(python_random)))) {
        break;
      }
      ++result.python_kills;
    }
    python(crash_group + "-python", std::nullopt);
    result.python_contacts_sent_crash = ContactsSent(simulator);
    result.python_crash_state_matches = simulator.ReplifyCampaigns() == python_clean_state;
  }
  std::printf(" %.1f s\n", result.seconds);
  return result;
}

Result Run(const Scenario& s, const std::string& worker_binary) {
  if (s.kills > 0) return RunCrash(s, worker_binary);
  Result result;
  result.scenario = s;
  std::printf("%-16s %9zu events over %zu contacts ...", s.name.c_str(), s.events, s.contacts);
  std::fflush(stdout);

  Broker broker;
  const std::string topic = Named(s.name);
  broker.CreateTopic(topic);
  // The mock cluster does not answer CreateTopics: the state changelog is
  // made here, co-partitioned with the input.
  if (s.contact_state) broker.CreateTopic(ChangelogTopic(topic, ""));
  sim::Simulator::Options sim_options;
  sim_options.api_keys = {{"replify", kKey}, {"whippy", kKey}, {"replyio", kKey}};
  sim_options.threads = 64;
  sim_options.knobs.latency = std::chrono::milliseconds(s.latency_ms);
  if (s.rate_limit_time_scale > 0) {
    sim_options.knobs.rate_limit_time_scale = s.rate_limit_time_scale;
  }
  sim::Simulator simulator(sim_options);
  simulator.Start();

  worker::SampleOptions sample;
  sample.events = s.events;
  sample.contacts = s.contacts;
  sample.seed = 99;
  const auto events =
      s.crm_noise ? CrmNoiseEvents(s.events, s.contacts) : worker::GenerateSampleEvents(sample);
  auto produce = [&] {
    kafka::Producer producer(broker.BootstrapServers(),
                             {{"linger.ms", s.produce_rate > 0 ? "1" : "20"}});
    const auto start = Clock::now();
    for (size_t i = 0; i < events.size(); ++i) {
      if (s.produce_rate > 0 && i % 100 == 0) {
        std::this_thread::sleep_until(
            start + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(i) / s.produce_rate)));
      }
      producer.Produce(topic, events[i].key, events[i].payload);
    }
    producer.Flush(std::chrono::minutes(5));
  };
  if (s.produce_first) produce();

  const int metrics_port = FreePort();
  const std::string config_path =
      (std::filesystem::temp_directory_path() / ("crmsync-bench-" + s.name + ".json")).string();
  std::ofstream(config_path) << (s.rate_limit_time_scale > 0
                                     ? RateLimitedConfigJson(s, broker.BootstrapServers(), topic,
                                                             simulator, metrics_port)
                                     : ConfigJson(s, broker.BootstrapServers(), topic,
                                                  simulator.BaseUrl("replify"), metrics_port));

  const auto started = Clock::now();
  const pid_t pid = StartWorker(worker_binary, config_path);
  httplib::Client client("127.0.0.1", metrics_port);
  std::thread producer;
  if (s.produce_rate > 0) {
    // A steady load starts once the worker has joined its group, so that the
    // join (seconds on the mock cluster) does not turn into a backlog.
    const auto ready_deadline = Clock::now() + std::chrono::minutes(1);
    while (Clock::now() < ready_deadline) {
      auto res = client.Get("/readyz");
      if (res && res->status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (!s.produce_first) producer = std::thread(produce);

  std::optional<Clock::time_point> first_consumed;
  std::optional<double> http_429_first_second;
  std::optional<Buckets> latency_at_warm_up;
  const std::string latency = "crmsync_delivery_latency_seconds";
  const auto deadline = Clock::now() + std::chrono::minutes(20);
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!first_consumed) {
      // The group join takes seconds on the mock cluster; throughput is
      // measured from the first consumed event.
      auto res = client.Get("/metrics");
      if (res && MetricSum(res->body, "crmsync_events_consumed_total") > 0) {
        first_consumed = Clock::now();
      }
      continue;
    }
    if (s.produce_rate > 0 && !latency_at_warm_up && Clock::now() - *first_consumed >= kWarmUp) {
      if (auto res = client.Get("/metrics")) {
        latency_at_warm_up = HistogramBuckets(res->body, latency);
      }
    }
    if (!http_429_first_second && Clock::now() - *first_consumed >= std::chrono::seconds(1)) {
      auto res = client.Get("/metrics");
      if (res) {
        http_429_first_second =
            MetricSum(res->body, "crmsync_http_requests_total", {"code=\"429\""});
      }
    }
    if (ZeroLag(broker.BootstrapServers(), Named(s.name), topic, events.size())) break;
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  result.active_seconds =
      std::chrono::duration<double>(Clock::now() - first_consumed.value_or(started)).count();
  if (producer.joinable()) producer.join();

  std::string metrics;
  if (auto res = client.Get("/metrics")) metrics = res->body;
  const Buckets latency_buckets = HistogramBuckets(metrics, latency);
  result.p50_ms = Percentile(latency_buckets, 0.50) * 1000;
  result.p99_ms = Percentile(latency_buckets, 0.99) * 1000;
  if (latency_at_warm_up) {
    const Buckets steady = Since(latency_buckets, *latency_at_warm_up);
    result.p50_after_warm_up_ms = Percentile(steady, 0.50) * 1000;
    result.p99_after_warm_up_ms = Percentile(steady, 0.99) * 1000;
  }
  result.http_429 = MetricSum(metrics, "crmsync_http_requests_total", {"code=\"429\""});
  result.http_429_after_first_second = result.http_429 - http_429_first_second.value_or(0);
  result.requests = MetricSum(metrics, "crmsync_http_requests_total");
  // Operations sent to providers (after coalescing), not messages finished.
  result.operations = MetricSum(metrics, "crmsync_batch_size_sum");
  result.suppressed = MetricSum(metrics, "crmsync_operations_suppressed_total");

  // The worker's own peak: ru_maxrss of a forked child also counts the
  // parent's pages it shared before exec (here, a million generated events).
  result.peak_rss_mb = PeakRssMb(pid);
  kill(pid, SIGTERM);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  const double cpu_us = usage.ru_utime.tv_sec * 1e6 + usage.ru_utime.tv_usec +
                        usage.ru_stime.tv_sec * 1e6 + usage.ru_stime.tv_usec;
  result.worker_cpu_us_per_event = cpu_us / static_cast<double>(s.events);

  if (s.rate_limit_time_scale > 0) {
    // The shortest time the documented budgets allow for the requests each
    // provider needed (full batches where the provider takes batches: Whippy
    // up to maxBatch contacts per list write; Reply.io one lookup per new
    // email, then bulk enrollments). The ceiling is the event rate of a run
    // that took exactly that long.
    const double k = s.rate_limit_time_scale;
    auto needed = [&](const std::string& provider) {
      const std::string label = "provider=\"" + provider + "\"";
      return MetricSum(metrics, "crmsync_http_requests_total", {label}) -
             MetricSum(metrics, "crmsync_http_requests_total", {label, "code=\"429\""});
    };
    const double whippy_s = needed("whippy") / (10.0 / 60 * k);
    const double replyio_requests = needed("replyio");
    double replyio_s = replyio_requests / (100.0 / 60 * k);
    if (replyio_requests > 3000) {
      replyio_s = std::max(replyio_s, 3600 / k * (replyio_requests / 3000 - 1));
    }
    result.ceiling = s.events / std::max({whippy_s, replyio_s, 1e-9});
    result.ceiling_note = "events / (fewest seconds the budgets allow for the requests sent)";
  } else if (s.latency_ms > 0) {
    result.ceiling = s.max_in_flight * s.max_batch / (s.latency_ms / 1000.0);
    result.ceiling_note = "maxInFlight x maxBatch / latency";
  } else {
    result.ceiling = CeilingConsumer(broker.BootstrapServers(), topic, events.size());
    result.ceiling_note = "do-nothing librdkafka consumer";
  }
  if (s.python_baseline) {
    simulator.Reset();
    if (auto python = RunPythonBaseline(
            broker.BootstrapServers(), topic,
            simulator.BaseUrl("replify") + "/campaigns/" + kCampaign + "/contacts",
            events.size())) {
      result.python_active_seconds = python->first;
      result.python_cpu_us_per_event = python->second;
    } else {
      std::printf(" (python baseline failed)");
    }
  }
  std::printf(" %.1f s\n", result.seconds);
  std::filesystem::remove(config_path);
  return result;
}

void Report(const std::vector<Result>& results, const std::string& out_path) {
  std::printf("\n%-16s %9s %8s %8s %10s %10s %8s %8s %8s %6s %8s %12s %7s\n", "scenario", "events",
              "seconds", "active s", "events/s", "cpu us/ev", "rss MB", "p50 ms", "p99 ms", "429s",
              "ops/ev", "ceiling/s", "ratio");
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.StartArray();
  for (const Result& r : results) {
    const double eps = r.scenario.events / r.active_seconds;
    const double ops_per_event = r.operations / static_cast<double>(r.scenario.events);
    // A crash scenario's figures are its own (printed below); its time is
    // mostly sessions expiring after kills.
    if (r.scenario.kills == 0) {
      std::printf(
          "%-16s %9zu %8.1f %8.1f %10.0f %10.1f %8.1f %8.1f %8.1f %6.0f %8.3f %12.0f %7.2f\n",
          r.scenario.name.c_str(), r.scenario.events, r.seconds, r.active_seconds, eps,
          r.worker_cpu_us_per_event, r.peak_rss_mb, r.p50_ms, r.p99_ms, r.http_429, ops_per_event,
          r.ceiling.value_or(0), r.ceiling ? eps / *r.ceiling : 0);
    }
    w.StartObject();
    w.Key("scenario");
    w.String(r.scenario.name);
    w.Key("events");
    w.Uint64(r.scenario.events);
    w.Key("contacts");
    w.Uint64(r.scenario.contacts);
    w.Key("broker");  // "mock" (librdkafka's mock cluster) or "external" (--bootstrap)
    w.String(BenchTarget().bootstrap.empty() ? "mock" : "external");
    w.Key("partitions");
    w.Int(BenchTarget().partitions);
    w.Key("seconds");
    w.Double(r.active_seconds);
    w.Key("seconds_including_group_join");
    w.Double(r.seconds);
    w.Key("events_per_s");
    w.Double(eps);
    w.Key("worker_cpu_us_per_event");
    w.Double(r.worker_cpu_us_per_event);
    w.Key("peak_rss_mb");
    w.Double(r.peak_rss_mb);
    w.Key("p50_ms");
    w.Double(r.p50_ms);
    w.Key("p99_ms");
    w.Double(r.p99_ms);
    if (r.p99_after_warm_up_ms) {
      w.Key("p50_after_warm_up_ms");
      w.Double(*r.p50_after_warm_up_ms);
      w.Key("p99_after_warm_up_ms");
      w.Double(*r.p99_after_warm_up_ms);
    }
    w.Key("http_429");
    w.Double(r.http_429);
    w.Key("http_429_after_first_second");
    w.Double(r.http_429_after_first_second);
    w.Key("http_requests");
    w.Double(r.requests);
    w.Key("provider_operations_per_event");
    w.Double(ops_per_event);
    if (r.scenario.crm_noise) {
      w.Key("operations_suppressed");
      w.Double(r.suppressed);
      w.Key("contact_state");
      w.Bool(r.scenario.contact_state);
    }
    if (r.scenario.kills > 0) {
      w.Key("kills");
      w.Int(r.kills);
      w.Key("contacts_sent_clean_run");
      w.Double(r.contacts_sent_clean);
      w.Key("contacts_sent_with_kills");
      w.Double(r.contacts_sent_crash);
      w.Key("replayed_per_kill");
      w.Double(r.kills > 0 ? (r.contacts_sent_crash - r.contacts_sent_clean) / r.kills : 0);
      w.Key("pending_at_kill");
      w.Double(r.pending_at_kill);
      w.Key("final_state_matches_clean_run");
      w.Bool(r.crash_state_matches);
      if (r.scenario.python_baseline) {
        const double python_replayed =
            r.python_kills > 0
                ? (r.python_contacts_sent_crash - r.python_contacts_sent_clean) / r.python_kills
                : 0;
        w.Key("baseline_replayed_per_kill");
        w.Double(python_replayed);
        w.Key("python_baseline");
        w.StartObject();
        w.Key("kills");
        w.Int(r.python_kills);
        w.Key("contacts_sent_clean_run");
        w.Double(r.python_contacts_sent_clean);
        w.Key("contacts_sent_with_kills");
        w.Double(r.python_contacts_sent_crash);
        w.Key("replayed_per_kill");
        w.Double(python_replayed);
        w.Key("final_state_matches_clean_run");
        w.Bool(r.python_crash_state_matches);
        w.EndObject();
      }
    }
    if (r.ceiling) {
      w.Key("ceiling_events_per_s");
      w.Double(*r.ceiling);
      w.Key("ceiling_ratio");
      w.Double(eps / *r.ceiling);
      w.Key("ceiling");
      w.String(r.ceiling_note);
    }
    if (r.python_active_seconds) {
      const double python_eps = r.scenario.events / *r.python_active_seconds;
      // The script's figures beside crmsync's, flat for a reader of the
      // table, and again with the ratios in their own object.
      w.Key("baseline_events_per_s");
      w.Double(python_eps);
      w.Key("baseline_cpu_us_per_event");
      w.Double(*r.python_cpu_us_per_event);
      w.Key("python_baseline");
      w.StartObject();
      w.Key("events_per_s");
      w.Double(python_eps);
      w.Key("cpu_us_per_event");
      w.Double(*r.python_cpu_us_per_event);
      w.Key("throughput_ratio");  // crmsync / python
      w.Double(eps / python_eps);
      w.Key("cpu_ratio");  // crmsync / python
      w.Double(r.worker_cpu_us_per_event / *r.python_cpu_us_per_event);
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
  for (const Result& r : results) {
    if (!r.python_active_seconds) continue;
    const double eps = r.scenario.events / r.active_seconds;
    const double python_eps = r.scenario.events / *r.python_active_seconds;
    std::printf(
        "%-16s python baseline: %.0f events/s, %.1f cpu us/ev; crmsync %.2fx its throughput at "
        "%.2fx its cpu per event\n",
        r.scenario.name.c_str(), python_eps, *r.python_cpu_us_per_event, eps / python_eps,
        r.worker_cpu_us_per_event / *r.python_cpu_us_per_event);
  }
  for (const Result& r : results) {
    if (r.scenario.kills == 0) continue;
    std::printf(
        "%-16s %d kills: %.0f contacts sent against %.0f without kills, %.0f replayed per kill "
        "(%.0f operations held at a kill); final state %s the clean run's\n",
        r.scenario.name.c_str(), r.kills, r.contacts_sent_crash, r.contacts_sent_clean,
        r.kills > 0 ? (r.contacts_sent_crash - r.contacts_sent_clean) / r.kills : 0,
        r.pending_at_kill, r.crash_state_matches ? "equals" : "DIFFERS FROM");
    if (r.scenario.python_baseline) {
      std::printf(
          "%-16s python baseline, %d kills: %.0f contacts sent against %.0f without kills, %.0f "
          "replayed per kill; final state %s its clean run's\n",
          r.scenario.name.c_str(), r.python_kills, r.python_contacts_sent_crash,
          r.python_contacts_sent_clean,
          r.python_kills > 0
              ? (r.python_contacts_sent_crash - r.python_contacts_sent_clean) / r.python_kills
              : 0,
          r.python_crash_state_matches ? "equals" : "differs from");
    }
  }
  for (const Result& r : results) {
    if (!r.p99_after_warm_up_ms) continue;
    std::printf("%-16s after the first %lld s: p50 %.1f ms, p99 %.1f ms\n", r.scenario.name.c_str(),
                static_cast<long long>(kWarmUp.count()), *r.p50_after_warm_up_ms,
                *r.p99_after_warm_up_ms);
  }
  for (const Result& r : results) {
    if (!r.scenario.crm_noise) continue;
    std::printf("%-16s contact state %s: %.3f provider operations per event, %.0f suppressed\n",
                r.scenario.name.c_str(), r.scenario.contact_state ? "on" : "off",
                r.operations / static_cast<double>(r.scenario.events), r.suppressed);
  }
  std::filesystem::create_directories(std::filesystem::path(out_path).parent_path());
  std::ofstream(out_path) << buffer.GetString() << "\n";
  std::printf("\nwrote %s\n", out_path.c_str());
}

}  // namespace
}  // namespace crmsync::bench

int main(int argc, char** argv) {
  using crmsync::bench::Scenario;
  CLI::App app{"crmsync benchmark: test broker + simulator + the worker binary, to zero lag"};
  std::string out = "build/bench/results.json";
  bool quick = false;
  std::vector<std::string> only;
  app.add_option("--out", out, "results file")->capture_default_str();
  app.add_flag("--quick", quick, "a tenth of the events");
  app.add_option("--scenario", only, "run only these scenarios");
  auto& target = crmsync::bench::BenchTarget();
  app.add_option("--bootstrap", target.bootstrap,
                 "an external broker (host:port) instead of librdkafka's mock cluster; "
                 "topics and groups are named for this run");
  app.add_option("--partitions", target.partitions, "partitions of each input topic")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::err);
  if (!target.bootstrap.empty()) {
    target.tag = "run" + std::to_string(std::time(nullptr)) + "-";
  }

  const size_t scale = quick ? 10 : 1;
  std::vector<Scenario> scenarios = {
      {"zero-latency", 1'000'000 / scale, 100'000 / scale, 0, false, 500, 16, 0, 0, true},
      // Four requests of 500 in flight: a ceiling of 20,000 events/s that
      // the latency, not this machine's two cores, sets.
      {"latency-100ms", 200'000 / scale, 50'000 / scale, 100, true, 500, 4, 0, 0, true},
      {"hot-keys", 100'000 / scale, 100, 0, true},
      {"backlog", 1'000'000 / scale, 100'000 / scale, 0, true},
      // Documented limits sixty times faster: Whippy 10 list writes and
      // Reply.io 100 requests a second.
      {"rate-limited", 6'000 / scale, 1'500 / scale, 0, true, 10, 16, 60},
      // Half the latency-100ms ceiling, produced steadily while the worker
      // keeps up: p50/p99 are the latency of a worker that is not behind.
      {"steady-100ms", 100'000 / scale, 50'000 / scale, 100, false, 500, 4, 0, 10'000},
      // What steady-100ms's latency is made of: the same load without
      // provider latency (Kafka and the worker), and twice the slots at
      // twice the load (the three actions of the stream, each in requests
      // of its own, leave four slots no room).
      {"steady-0ms", 100'000 / scale, 50'000 / scale, 0, false, 500, 4, 0, 10'000},
      {"steady-100ms-8", 200'000 / scale, 50'000 / scale, 100, false, 500, 8, 0, 20'000},
      // The same CRM stream twice: without contact state every update is
      // sent; with it, updates the provider would not see are suppressed.
      {"crm-noise", 100'000 / scale, 20'000 / scale, 10, false, 500, 16, 0, 5'000, false, true},
      {"crm-noise-state", 100'000 / scale, 20'000 / scale, 10, false, 500, 16, 0, 5'000, false,
       true, true},
      // Ten SIGKILLs while a backlog is worked off at 50 ms a request.
      {"crash", 50'000 / scale, 5'000 / scale, 50, true, 20, 4, 0, 0, true, false, false, 10},
      // The same with contact state: replayed messages the provider had
      // confirmed before the kill are skipped (docs/STATE.md).
      {"crash-state", 50'000 / scale, 5'000 / scale, 50, true, 20, 4, 0, 0, false, false, true, 10},
  };
  const std::string worker = (std::filesystem::path(argv[0]).parent_path() / "crmsync").string();
  std::vector<crmsync::bench::Result> results;
  for (const Scenario& s : scenarios) {
    if (!only.empty() && std::find(only.begin(), only.end(), s.name) == only.end()) continue;
    results.push_back(crmsync::bench::Run(s, worker));
  }
  crmsync::bench::Report(results, out);
  return 0;
}
