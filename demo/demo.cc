#include "demo/demo.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "crmsync_schemas.h"
#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/campaignlark_sim.h"
#include "sim/replyio_sim.h"
#include "sim/simulator.h"
#include "sim/whippy_sim.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/producer.h"
#include "worker/kafka/test_broker.h"
#include "worker/metrics.h"
#include "worker/sample_events.h"
#include "worker/worker.h"

namespace crmsync::demo {
namespace {

using worker::GenerateSampleEvents;
using worker::Metrics;
using worker::SampleEvent;
using worker::SampleOptions;
using worker::Worker;

constexpr char kTopic[] = "crm.contacts";
// Documented rate limits (Whippy: ten list writes a minute) run this many
// times faster in the demo, in the simulator and in the worker's budgets.
constexpr double kTimeScale = 60;
constexpr char kSimKey[] = "demo-replify-key";

// The demo's only secret is the simulator's key; nothing is read from the
// environment.
std::optional<std::string> DemoEnv(std::string_view name) {
  if (name == "REPLIFY_API_KEY" || name == "WHIPPY_API_KEY" || name == "CAMPAIGNLARK_API_KEY" ||
      name == "REPLYIO_API_KEY") {
    return std::string(kSimKey);
  }
  return std::nullopt;
}

// Campaign -> the names of the rules that write to it, as a readable label.
std::map<std::string, std::string> CampaignLabels(const mapping::Config& config) {
  std::map<std::string, std::set<std::string>> rules;
  for (const auto& rule : config.rules.rules) {
    for (const auto& action : rule.actions) {
      if (action.action == mapping::Action::kUpsert) rules[action.target].insert(rule.name);
    }
  }
  std::map<std::string, std::string> labels;
  for (const auto& [campaign, names] : rules) {
    std::string label;
    for (const auto& name : names) label += (label.empty() ? "" : ", ") + name;
    labels[campaign] = label;
  }
  return labels;
}

void PrintSummary(const sim::Simulator& simulator, const mapping::Config& config) {
  const auto labels = CampaignLabels(config);
  std::printf("\nWhat each Replify campaign now holds:\n");
  for (const auto& [campaign, contacts] : simulator.ReplifyCampaigns()) {
    std::map<std::string, size_t> by_status;
    std::map<std::string, size_t> by_tier;
    for (const auto& [id, contact] : contacts) {
      ++by_status[contact.status.empty() ? "active" : contact.status];
      auto tier = contact.metadata.find("tier");
      ++by_tier[tier == contact.metadata.end() ? "-" : tier->second];
    }
    auto label = labels.find(campaign);
    std::printf("\n  campaign %s%s%s%s\n", campaign.c_str(), label == labels.end() ? "" : " (",
                label == labels.end() ? "" : label->second.c_str(),
                label == labels.end() ? "" : ")");
    std::printf("    %zu contacts;", contacts.size());
    for (const auto& [status, n] : by_status) std::printf(" %s %zu", status.c_str(), n);
    std::printf("; tiers:");
    for (const auto& [tier, n] : by_tier) std::printf(" %s %zu", tier.c_str(), n);
    std::printf("\n    %-14s %-10s %-24s %-12s %-10s %s\n", "first name", "last name", "email",
                "phone", "tier", "status");
    size_t shown = 0;
    for (const auto& [id, contact] : contacts) {
      if (shown++ == 5) break;
      auto tier = contact.metadata.find("tier");
      std::printf("    %-14s %-10s %-24s %-12s %-10s %s\n", contact.first_name.c_str(),
                  contact.last_name.c_str(), contact.email.c_str(), contact.phone.c_str(),
                  tier == contact.metadata.end() ? "-" : tier->second.c_str(),
                  contact.status.empty() ? "active" : contact.status.c_str());
    }
    if (contacts.size() > shown) std::printf("    ... and %zu more\n", contacts.size() - shown);
  }
}

void PrintOtherProviders(const sim::Simulator& simulator) {
  if (auto* whippy = dynamic_cast<sim::WhippySim*>(simulator.Provider("whippy"))) {
    for (const auto& [list, members] : whippy->Lists()) {
      std::printf("\n  Whippy contact list %s: %zu contacts\n", list.c_str(), members.size());
      size_t shown = 0;
      for (const auto& [phone, contact] : members) {
        if (shown++ == 3) break;
        std::printf("    %-24s %-12s %s\n", contact.name.c_str(), phone.c_str(),
                    contact.email.c_str());
      }
    }
  }
  if (auto* lark = dynamic_cast<sim::CampaignLarkSim*>(simulator.Provider("campaignlark"))) {
    std::map<std::string, size_t> by_status;
    const auto contacts = lark->Contacts();
    for (const auto& [email, contact] : contacts) ++by_status[contact.status];
    std::printf("\n  CampaignLark contacts: %zu;", contacts.size());
    for (const auto& [status, n] : by_status) std::printf(" %s %zu", status.c_str(), n);
    std::printf("\n");
  }
  if (auto* reply = dynamic_cast<sim::ReplyIoSim*>(simulator.Provider("replyio"))) {
    for (const auto& [sequence, emails] : reply->Sequences()) {
      std::printf("\n  Reply.io sequence %lld: %zu contacts enrolled\n",
                  static_cast<long long>(sequence), emails.size());
    }
  }
}

}  // namespace

int RunDemo(const DemoOptions& options) {
  spdlog::set_level(options.verbose ? spdlog::level::info : spdlog::level::err);
  const bool tty = isatty(STDOUT_FILENO) != 0;
  const auto started = std::chrono::steady_clock::now();

  // The embedded mock cluster, or a real cluster given by --bootstrap (a
  // topic of its own per run, so that runs do not see each other's events).
  std::unique_ptr<kafka::TestBroker> embedded;
  std::string bootstrap = options.bootstrap;
  std::string topic = kTopic;
  if (bootstrap.empty()) {
    embedded = std::make_unique<kafka::TestBroker>();
    bootstrap = embedded->BootstrapServers();
    embedded->CreateTopic(topic, options.partitions);
  } else {
    topic += "." + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    kafka::CreateTopic(bootstrap, topic, options.partitions);
  }

  sim::Simulator::Options sim_options;
  sim_options.api_keys = {
      {"replify", kSimKey}, {"whippy", kSimKey}, {"campaignlark", kSimKey}, {"replyio", kSimKey}};
  sim_options.knobs.latency = std::chrono::milliseconds(options.latency_ms);
  sim_options.knobs.rate_limit_time_scale = kTimeScale;
  sim::Simulator simulator(sim_options);
  simulator.Start();

  mapping::Config config = mapping::LoadConfigFromString(
      providers::Catalog(), schemas::EmbeddedFile("examples/crmsync.json"), &DemoEnv);
  config.kafka.bootstrap_servers = bootstrap;
  config.kafka.topics = {topic};
  for (auto& [name, provider] : config.providers) {
    provider.base_url = simulator.BaseUrl(name);
    std::vector<mapping::RateLimit> limits =
        provider.rate_limits.value_or(providers::DocumentedRateLimits(name));
    for (auto& limit : limits) {
      limit.period =
          std::chrono::duration_cast<std::chrono::milliseconds>(limit.period / kTimeScale);
    }
    provider.rate_limits = limits;
  }
  config.worker.metrics_listen = "127.0.0.1:0";
  config.worker.commit_interval = std::chrono::milliseconds(200);

  std::printf("crmsync-demo\n");
  std::printf("  Kafka (%s): %s, topic %s with %d partitions\n",
              embedded ? "librdkafka mock cluster" : "external cluster", bootstrap.c_str(),
              topic.c_str(), options.partitions);
  std::printf(
      "  provider simulator: http://127.0.0.1:%d (latency %d ms; documented rate limits "
      "run %.0fx faster)\n",
      simulator.Port(), options.latency_ms, kTimeScale);

  SampleOptions sample;
  sample.events = options.events;
  sample.contacts = options.contacts;
  sample.malformed_every = 997;  // a few poison messages: skipped with a reason
  const auto events = GenerateSampleEvents(sample);
  {
    kafka::Producer producer(bootstrap);
    for (const auto& event : events) producer.Produce(topic, event.key, event.payload);
    producer.Flush();
  }
  const size_t malformed =
      std::count_if(events.begin(), events.end(), [](const SampleEvent& e) { return e.malformed; });
  std::printf("  produced %zu CRM events for %zu contacts (%zu of them malformed)\n\n",
              events.size(), options.contacts, malformed);

  Metrics metrics(config.worker.metrics_listen);
  Worker worker(config, metrics);
  std::atomic<bool> stop{false};
  std::thread runner([&] { worker.Run(stop); });

  const auto& stats = worker.Stats();
  int64_t lag = -1;
  auto last_lag_query = std::chrono::steady_clock::time_point{};
  bool done = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto now = std::chrono::steady_clock::now();
    if (now - last_lag_query >= std::chrono::milliseconds(500)) {
      last_lag_query = now;
      try {
        lag = kafka::TotalLag(kafka::QueryGroupLag(bootstrap, config.kafka.group_id, topic));
      } catch (const std::exception& e) {
        spdlog::debug("lag query: {}", e.what());
      }
    }
    std::printf(
        "%s  consumed %6llu/%zu   delivered %6llu   pending %5llu   retried %4llu   "
        "lag %6lld%s",
        tty ? "\r" : "", static_cast<unsigned long long>(stats.consumed.load()), events.size(),
        static_cast<unsigned long long>(stats.delivered.load()),
        static_cast<unsigned long long>(stats.pending.load()),
        static_cast<unsigned long long>(stats.retried.load()), static_cast<long long>(lag),
        tty ? "" : "\n");
    std::fflush(stdout);
    done = lag == 0 && stats.consumed.load() >= events.size() && stats.pending.load() == 0;
  }
  stop = true;
  runner.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const sim::Counters counters = simulator.GetCounters();
  std::printf(
      "\n\n%s after %.1f s: %llu events consumed, %llu operations delivered in %llu "
      "requests, %llu rejected, %llu malformed and %llu unmatched events skipped; "
      "committed lag %lld.\n",
      done ? "Done" : "Gave up", seconds, static_cast<unsigned long long>(stats.consumed.load()),
      static_cast<unsigned long long>(stats.delivered.load()),
      static_cast<unsigned long long>(counters.requests),
      static_cast<unsigned long long>(stats.rejected.load()),
      static_cast<unsigned long long>(stats.malformed.load()),
      static_cast<unsigned long long>(stats.unmatched.load()), static_cast<long long>(lag));
  PrintSummary(simulator, config);
  PrintOtherProviders(simulator);
  return done ? 0 : 1;
}

}  // namespace crmsync::demo
