// crmsync-demo: the whole pipeline on loopback — test broker (or a real
// cluster with --bootstrap), provider simulator, sample events and the real
// worker — until the group's lag is zero.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "demo/demo.h"
#include "worker/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"crmsync-demo: embedded broker, simulator and sample events; no setup needed"};
  crmsync::demo::DemoOptions options;
  app.add_option("--events", options.events, "events to produce")->capture_default_str();
  app.add_option("--contacts", options.contacts, "distinct contacts")->capture_default_str();
  app.add_option("--latency-ms", options.latency_ms, "simulated provider latency")
      ->capture_default_str();
  app.add_flag("--verbose", options.verbose, "show the worker's log");
  app.add_option("--bootstrap", options.bootstrap,
                 "a real Kafka cluster (host:port,...) instead of the embedded mock");
  std::string log_format = "auto";
  app.add_option("--log-format", log_format,
                 "the worker's log with --verbose: json, text, or auto (json unless stderr is a "
                 "terminal)")
      ->check(CLI::IsMember({"auto", "json", "text"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  crmsync::worker::SetupLogging(
      crmsync::worker::ParseLogFormat(log_format).value_or(crmsync::worker::LogFormat::kAuto),
      spdlog::level::info);
  try {
    return crmsync::demo::RunDemo(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crmsync-demo: %s\n", e.what());
    return 1;
  }
}
