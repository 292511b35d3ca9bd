// crmsync-state-bench: how long restoring a partition's contact state takes
// and what it costs, on the in-process test broker (librdkafka's mock
// cluster over loopback). Writes N contact states to a changelog partition
// as the worker writes them, then restores them the way a new owner does,
// once per backend (--backend memory,rocksdb), each in a process of its own
// so that its resident and peak memory are its own, and prints restore
// time, resident memory per contact, peak resident memory and, for rocksdb,
// the database's bytes per contact on disk. docs/STATE.md has the figures.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "mapping/contact_state.h"
#include "worker/kafka/producer.h"
#include "worker/kafka/test_broker.h"
#include "worker/state/rocksdb_backend.h"
#include "worker/state/state_store.h"

namespace {

size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

size_t PeakResidentBytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // kB
  }
  return 0;
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  return bytes;
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

const std::string kTopic = "bench-input";

crmsync::mapping::Config BenchConfig(const std::string& bootstrap) {
  crmsync::mapping::Config config;
  config.kafka.bootstrap_servers = bootstrap;
  config.kafka.topics = {kTopic};
  config.state.enabled = true;
  config.state.restore_timeout = std::chrono::minutes(30);
  return config;
}

// The restoring side, in its own process: one line of key=value results.
int Restore(const std::string& bootstrap, const std::string& backend_name, const std::string& dir,
            int partitions) {
  crmsync::mapping::Config config = BenchConfig(bootstrap);
  std::unique_ptr<crmsync::worker::StateBackend> backend;
  crmsync::worker::RocksDbStateBackend* rocks = nullptr;
  if (backend_name == "rocksdb") {
    auto owned =
        std::make_unique<crmsync::worker::RocksDbStateBackend>(crmsync::worker::RocksDbOptions{
            dir, config.state.rocksdb_block_cache_mb, config.state.rocksdb_write_buffer_mb});
    rocks = owned.get();
    backend = std::move(owned);
  } else {
    backend = std::make_unique<crmsync::worker::MemoryStateBackend>();
  }
  crmsync::worker::ContactStateStore store(config, std::move(backend));
  const size_t before = ResidentBytes();
  size_t contacts = 0;
  uint64_t records = 0;
  std::chrono::milliseconds took{0};
  for (int p = 0; p < partitions; ++p) {
    const auto restored = store.Restore({kTopic, p});
    contacts += restored.contacts;
    records += restored.stats.records;
    took += restored.stats.took;
  }
  const size_t after = ResidentBytes();
  uint64_t disk = 0;
  if (rocks != nullptr) {
    rocks->Flush();
    disk = DirectoryBytes(rocks->Path());
  }
  std::printf("contacts=%zu records=%llu ms=%lld resident=%zu peak=%zu disk=%llu\n", contacts,
              static_cast<unsigned long long>(records), static_cast<long long>(took.count()),
              after - before, PeakResidentBytes(), static_cast<unsigned long long>(disk));
  return 0;
}

struct Result {
  size_t contacts = 0;
  unsigned long long records = 0, disk = 0;
  long long ms = 0;
  size_t resident = 0, peak = 0;
};

bool RunChild(const std::string& self, const std::string& bootstrap, const std::string& backend,
              const std::string& dir, int partitions, Result& out) {
  const std::string command = "'" + self + "' --restore-from " + bootstrap + " --backend " +
                              backend + " --dir '" + dir + "' --partitions " +
                              std::to_string(partitions);
  FILE* child = popen(command.c_str(), "r");
  if (child == nullptr) return false;
  // The result is the child's last line; log lines may come before it.
  char line[1024] = {};
  int parsed = 0;
  while (std::fgets(line, sizeof line, child) != nullptr) {
    parsed = std::sscanf(line, "contacts=%zu records=%llu ms=%lld resident=%zu peak=%zu disk=%llu",
                         &out.contacts, &out.records, &out.ms, &out.resident, &out.peak, &out.disk);
  }
  return pclose(child) == 0 && parsed == 6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crmsync-state-bench: restore time and size of contact state"};
  int64_t contacts = 100000;
  int partitions = 1;
  std::vector<std::string> backends = {"memory"};
  std::string dir;
  std::string restore_from;
  app.add_option("--contacts", contacts, "contact states, spread over the partitions")
      ->check(CLI::PositiveNumber);
  // The mock cluster keeps a bounded log per partition (older records are
  // dropped beyond it): large counts need several partitions.
  app.add_option("--partitions", partitions, "changelog partitions")->check(CLI::PositiveNumber);
  app.add_option("--backend", backends, "state backends to restore into, one after the other")
      ->delimiter(',')
      ->check(CLI::IsMember({"memory", "rocksdb"}));
  app.add_option("--dir", dir, "state.dir of the rocksdb backend (wiped)");
  app.add_option("--restore-from", restore_from)->group("");  // the child's side
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  for (const auto& backend : backends) {
    if (backend == "rocksdb" && dir.empty()) {
      std::fprintf(stderr, "--backend rocksdb needs --dir\n");
      return 2;
    }
  }
  if (!restore_from.empty()) return Restore(restore_from, backends.at(0), dir, partitions);

  crmsync::kafka::TestBroker broker;
  const crmsync::mapping::Config config = BenchConfig(broker.BootstrapServers());
  broker.CreateTopic(kTopic, partitions);
  broker.CreateTopic(config.state.ChangelogTopic(kTopic), partitions);

  uint64_t value_bytes = 0, key_bytes = 0;
  {
    crmsync::kafka::Producer producer(broker.BootstrapServers(),
                                      {{"linger.ms", "20"}, {"batch.num.messages", "10000"}});
    for (int64_t i = 0; i < contacts; ++i) {
      const std::string key = "hubspotId:" + std::to_string(1000000 + i);
      const std::string value = crmsync::mapping::StateToJson(Sample(i));
      key_bytes += key.size();
      value_bytes += value.size();
      producer.Produce(config.state.ChangelogTopic(kTopic), key, value,
                       static_cast<int32_t>(i % partitions));
    }
    producer.Flush(std::chrono::minutes(10));
  }
  const double n = static_cast<double>(contacts);
  std::printf(
      "contacts %lld over %d partition(s); changelog %.1f bytes/contact (key %.1f + value %.1f)\n",
      static_cast<long long>(contacts), partitions,
      static_cast<double>(key_bytes + value_bytes) / n, static_cast<double>(key_bytes) / n,
      static_cast<double>(value_bytes) / n);
  std::printf("%-8s %10s %12s %11s %15s %14s %14s\n", "backend", "contacts", "restore s",
              "records/s", "resident B/c", "peak RSS MiB", "disk B/c");
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  int status = 0;
  for (const auto& backend : backends) {
    Result result;
    if (!RunChild(self, broker.BootstrapServers(), backend, dir, partitions, result)) {
      std::fprintf(stderr, "the %s restore failed\n", backend.c_str());
      return 1;
    }
    const double seconds = static_cast<double>(result.ms) / 1000;
    const double restored = static_cast<double>(result.contacts);
    std::printf(
        "%-8s %10zu %12.2f %11.0f %15.0f %14.0f %14s\n", backend.c_str(), result.contacts, seconds,
        seconds > 0 ? static_cast<double>(result.records) / seconds : 0.0,
        static_cast<double>(result.resident) / restored,
        static_cast<double>(result.peak) / (1 << 20),
        backend == "rocksdb"
            ? std::to_string(static_cast<long long>(static_cast<double>(result.disk) / restored))
                  .c_str()
            : "-");
    if (result.contacts != static_cast<size_t>(contacts)) {
      std::fprintf(stderr,
                   "the mock cluster dropped %lld record(s) of its bounded partition logs: use "
                   "more --partitions\n",
                   static_cast<long long>(contacts) - static_cast<long long>(result.contacts));
      status = 1;
    }
  }
  if (!dir.empty()) std::filesystem::remove_all(std::filesystem::path(dir) / "rocksdb");
  return status;
}
