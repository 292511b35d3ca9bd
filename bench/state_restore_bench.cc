// crmsync-state-bench: how long restoring a partition's contact state takes
// and what it costs, on the in-process test broker (librdkafka's mock
// cluster over loopback). Writes N contact states to a changelog partition
// as the worker writes them, then restores them the way a new owner does,
// and prints records, bytes per contact, restore time and resident memory
// per contact. docs/STATE.md has the figures.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "mapping/config.h"
#include "mapping/contact_state.h"
#include "worker/kafka/producer.h"
#include "worker/kafka/test_broker.h"
#include "worker/state/state_store.h"

namespace {

size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

// A contact as a CRM change stream leaves it: identity, names, a handful of
// properties, a status, one provider confirmation and one history entry.
crmsync::mapping::ContactState Sample(int64_t i) {
  crmsync::mapping::ContactState state;
  auto& c = state.current.contact;
  c.first_name = "First" + std::to_string(i % 997);
  c.last_name = "Last" + std::to_string(i % 1009);
  c.email = "contact" + std::to_string(i) + "@example.com";
  c.phone = "+1555" + std::to_string(1000000 + i % 9000000);
  c.properties = {{"lifecyclestage", "lead"},
                  {"company", "Company " + std::to_string(i % 5000)},
                  {"hs_lead_status", "OPEN"},
                  {"city", "Springfield"}};
  state.current.status = "active";
  state.offset = i;
  state.history.push_back({i, state.current});
  state.delivered["replify/5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3"] = 0x1234567890abcdefull + i;
  return state;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crmsync-state-bench: restore time and size of contact state"};
  int64_t contacts = 100000;
  int partitions = 1;
  app.add_option("--contacts", contacts, "contact states, spread over the partitions")
      ->check(CLI::PositiveNumber);
  // The mock cluster keeps a bounded log per partition (older records are
  // dropped beyond it): large counts need several partitions.
  app.add_option("--partitions", partitions, "changelog partitions")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  crmsync::kafka::TestBroker broker;
  const std::string topic = "bench-input";
  crmsync::mapping::Config config;
  config.kafka.bootstrap_servers = broker.BootstrapServers();
  config.kafka.topics = {topic};
  config.state.enabled = true;
  config.state.restore_timeout = std::chrono::minutes(30);
  broker.CreateTopic(topic, partitions);
  broker.CreateTopic(config.state.ChangelogTopic(topic), partitions);

  uint64_t value_bytes = 0, key_bytes = 0;
  {
    crmsync::kafka::Producer producer(broker.BootstrapServers(),
                                      {{"linger.ms", "20"}, {"batch.num.messages", "10000"}});
    for (int64_t i = 0; i < contacts; ++i) {
      const std::string key = "hubspotId:" + std::to_string(1000000 + i);
      const std::string value = crmsync::mapping::StateToJson(Sample(i));
      key_bytes += key.size();
      value_bytes += value.size();
      producer.Produce(config.state.ChangelogTopic(topic), key, value,
                       static_cast<int32_t>(i % partitions));
    }
    producer.Flush(std::chrono::minutes(10));
  }

  crmsync::worker::ContactStateStore store(config,
                                           std::make_unique<crmsync::worker::MemoryStateBackend>());
  const size_t before = ResidentBytes();
  size_t restored_contacts = 0;
  uint64_t records = 0;
  std::chrono::milliseconds took{0};
  for (int p = 0; p < partitions; ++p) {
    const auto restored = store.Restore({topic, p});
    restored_contacts += restored.contacts;
    records += restored.stats.records;
    took += restored.stats.took;
  }
  const size_t after = ResidentBytes();
  const double seconds = static_cast<double>(took.count()) / 1000;
  std::printf(
      "contacts %lld over %d partition(s): restored %zu contact(s) from %llu record(s) in %.2f s "
      "(%.0f records/s); changelog %.1f bytes/contact (key %.1f + value %.1f); resident +%.0f "
      "bytes/contact\n",
      static_cast<long long>(contacts), partitions, restored_contacts,
      static_cast<unsigned long long>(records), seconds,
      seconds > 0 ? static_cast<double>(records) / seconds : 0.0,
      static_cast<double>(key_bytes + value_bytes) / static_cast<double>(contacts),
      static_cast<double>(key_bytes) / static_cast<double>(contacts),
      static_cast<double>(value_bytes) / static_cast<double>(contacts),
      static_cast<double>(after - before) / static_cast<double>(restored_contacts));
  if (restored_contacts != static_cast<size_t>(contacts)) {
    std::fprintf(stderr,
                 "the mock cluster dropped %lld record(s) of its bounded partition logs: use more "
                 "--partitions\n",
                 static_cast<long long>(contacts) - static_cast<long long>(restored_contacts));
    return 1;
  }
  return 0;
}
