// crmsync-testbroker: runs the in-process Kafka-protocol test broker as a
// standalone program for other processes (the worker, kcat, benchmarks).
// Prints the bootstrap address as the first line of stdout, then serves until
// SIGTERM or SIGINT.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "worker/kafka/test_broker.h"

namespace {

struct TopicSpec {
  std::string name;
  int partitions = 0;
};

// "NAME:PARTITIONS"; the last colon separates, so a name is taken as given.
std::pair<TopicSpec, std::string> ParseTopic(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return {{}, "expected NAME:PARTITIONS, got '" + text + "'"};
  }
  TopicSpec spec;
  spec.name = text.substr(0, colon);
  try {
    size_t used = 0;
    spec.partitions = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || spec.partitions <= 0) throw std::invalid_argument("");
  } catch (const std::exception&) {
    return {{}, "partition count must be a positive integer in '" + text + "'"};
  }
  return {spec, ""};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Kafka-protocol test broker (librdkafka mock cluster) on loopback"};
  int brokers = 1;
  std::vector<std::string> topic_args;
  bool verbose = false;
  app.add_option("--brokers", brokers, "Number of brokers in the cluster")
      ->check(CLI::PositiveNumber);
  app.add_option("--topic", topic_args, "Topic to create, as NAME:PARTITIONS (repeatable)")
      ->check([](const std::string& text) { return ParseTopic(text).second; });
  app.add_flag("-v,--verbose", verbose, "Log the broker's activity to stderr");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::warn);

  // Blocked before the broker starts its threads, which inherit the mask: the
  // signals then reach only sigwait() below instead of killing the process
  // from whichever thread the kernel picks.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    std::fprintf(stderr, "crmsync-testbroker: cannot block signals\n");
    return 1;
  }

  try {
    crmsync::kafka::TestBroker broker(brokers);
    for (const auto& text : topic_args) {
      const TopicSpec spec = ParseTopic(text).first;
      broker.CreateTopic(spec.name, spec.partitions);
    }
    std::printf("%s\n", broker.BootstrapServers().c_str());
    std::fflush(stdout);

    int signal_number = 0;
    if (sigwait(&stop_signals, &signal_number) != 0) {
      std::fprintf(stderr, "crmsync-testbroker: sigwait failed\n");
      return 1;
    }
    spdlog::debug("signal {} received, stopping", signal_number);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crmsync-testbroker: %s\n", e.what());
    return 1;
  }
  return 0;
}
