#include "tests/fault/replify_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "providers/registry.h"
#include "worker/kafka/admin.h"

namespace crmsync::testing {
namespace {

std::string Describe(const sim::ReplifyContact& c) {
  std::string out = c.first_name + " " + c.last_name + " " + c.phone + " status '" + c.status +
                    "' " + c.external_id_key + ":" + c.external_id_value + " {";
  for (const auto& [key, value] : c.metadata) out += key + "=" + value + ";";
  return out + "}";
}

}  // namespace

std::string StreamConfigJson(const StreamConfig& config) {
  std::string properties;
  for (const auto& [name, value] : config.kafka_properties) {
    if (!properties.empty()) properties += ", ";
    properties += "\"" + name + "\": \"" + value + "\"";
  }
  const std::string campaign = kStreamCampaign;
  return R"({
  "kafka": {"bootstrapServers": ")" +
         config.bootstrap + R"(", "topics": [")" + config.topic + R"("], "groupId": ")" +
         config.group + R"(", "properties": {)" + properties + R"(}},
  "providers": {"replify": {"baseUrl": ")" +
         config.base_url + R"(", "apiKey": {"env": ")" + kStreamApiKeyEnv + R"("}, )" +
         config.replify_settings + R"(}},
  "rules": [
    {"name": "stop-outreach", "when": {"kinds": ["contact.status_changed"], "statuses": ["completed", "disqualified"]},
     "actions": [{"provider": "replify", "campaignId": ")" +
         campaign + R"(", "action": "updateOnly"}]},
    {"name": "deleted", "when": {"kinds": ["contact.deleted"]},
     "actions": [{"provider": "replify", "campaignId": ")" +
         campaign + R"(", "action": "remove"}]},
    {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
     "actions": [{"provider": "replify", "campaignId": ")" +
         campaign + R"(", "action": "upsert"}]}
  ],
  "worker": )" +
         config.worker +
         R"(
})";
}

mapping::Config LoadStreamConfig(const StreamConfig& config) {
  return mapping::LoadConfigFromString(providers::Catalog(), StreamConfigJson(config),
                                       [](std::string_view name) -> std::optional<std::string> {
                                         if (name == kStreamApiKeyEnv)
                                           return std::string(kStreamApiKey);
                                         return std::nullopt;
                                       });
}

std::string WriteStreamConfig(const StreamConfig& config, const std::string& name) {
  const std::string path =
      ::testing::TempDir() + "/" + std::to_string(getpid()) + "-" + name + ".json";
  std::ofstream(path) << StreamConfigJson(config);
  return path;
}

std::unique_ptr<sim::Simulator> StartStreamSimulator(int threads) {
  sim::Simulator::Options options;
  options.api_keys = {{"replify", kStreamApiKey}};
  options.threads = threads;
  auto simulator = std::make_unique<sim::Simulator>(options);
  simulator->Start();
  return simulator;
}

std::vector<worker::SampleEvent> MakeEvents(size_t events, size_t contacts, uint64_t seed) {
  worker::SampleOptions options;
  options.events = events;
  options.contacts = contacts;
  options.seed = seed;
  return worker::GenerateSampleEvents(options);
}

std::map<std::string, sim::ReplifyContact> HeldCampaign(const sim::Simulator& sim) {
  std::map<std::string, sim::ReplifyContact> held;
  const auto campaigns = sim.ReplifyCampaigns();
  if (auto it = campaigns.find(kStreamCampaign); it != campaigns.end()) {
    for (const auto& [id, contact] : it->second) held[contact.email] = contact;
  }
  return held;
}

void ExpectCampaign(const sim::Simulator& sim, const std::vector<worker::SampleEvent>& events) {
  const auto expected = ExpectedCampaign(events);
  const auto held = HeldCampaign(sim);
  size_t missing = 0, unexpected = 0, differing = 0;
  std::ostringstream examples;
  int shown = 0;
  auto show = [&](const std::string& what, const std::string& email) {
    if (shown++ < 5) examples << " " << what << ":" << email;
  };
  for (const auto& [email, contact] : expected) {
    auto it = held.find(email);
    if (it == held.end()) {
      ++missing;
      show("missing", email);
    } else if (!(it->second == contact)) {
      ++differing;
      show("stale", email + " (" + Describe(it->second) + ", expected " + Describe(contact) + ")");
    }
  }
  for (const auto& [email, contact] : held) {
    if (!expected.contains(email)) {
      ++unexpected;
      show("unexpected", email);
    }
  }
  EXPECT_GT(expected.size(), 0u);
  EXPECT_TRUE(missing == 0 && unexpected == 0 && differing == 0)
      << "campaign: " << expected.size() << " expected, " << held.size() << " held; " << missing
      << " missing, " << unexpected << " unexpected, " << differing << " not in their last state;"
      << examples.str();
}

int64_t CommittedTotal(const std::string& bootstrap, const std::string& group,
                       const std::string& topic) {
  try {
    int64_t total = 0;
    for (const auto& lag : kafka::QueryGroupLag(bootstrap, group, topic)) {
      if (lag.committed > 0) total += lag.committed;
    }
    return total;
  } catch (const std::exception&) {
    return -1;
  }
}

RunningWorker::RunningWorker(mapping::Config config)
    : metrics_(config.worker.metrics_listen), worker_(std::move(config), metrics_) {
  thread_ = std::thread([this] { exit_code_ = worker_.Run(stop_); });
}

RunningWorker::~RunningWorker() { Stop(); }

int RunningWorker::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  return exit_code_;
}

}  // namespace crmsync::testing
