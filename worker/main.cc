// crmsync: composition only — parse the command line, load the config, wire
// the worker, handle signals.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "worker/dry_run.h"
#include "worker/logging.h"
#include "worker/metrics.h"
#include "worker/version.h"
#include "worker/worker.h"

#ifdef CRMSYNC_MIMALLOC
#include <mimalloc.h>
#endif

namespace {

// mimalloc returns a page's memory to the system 25 ms after the page falls
// empty. The worker frees and refills the same pages all the time (every
// event's strings and nodes), so at a few hundred thousand events per second
// it gave them back only to fault them in again: about 80,000 minor faults
// per million events. Keeping empty pages for 10 s takes that to about
// 47,000, with less system time and the same peak memory
// (docs/PERFORMANCE.md). MIMALLOC_DECOMMIT_DELAY, or its older name
// MIMALLOC_RESET_DELAY, still sets it.
void TuneAllocator() {
#ifdef CRMSYNC_MIMALLOC
  if (std::getenv("MIMALLOC_DECOMMIT_DELAY") == nullptr &&
      std::getenv("MIMALLOC_RESET_DELAY") == nullptr) {
    mi_option_set(mi_option_decommit_delay, 10000);
  }
#endif
}

std::atomic<bool> g_stop{false};

void OnSignal(int) {
  // The first signal asks for a graceful drain; a second one means "now".
  if (g_stop.exchange(true)) _exit(130);
}

void InstallSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int Run(const std::string& config_path) {
  crmsync::mapping::Config config =
      crmsync::mapping::LoadConfigFromFile(crmsync::providers::Catalog(), config_path);
  crmsync::worker::Metrics metrics(config.worker.metrics_listen);
  // Every known series at zero from the first scrape.
  metrics.Initialize(config);
  if (metrics.Port() > 0) {
    spdlog::info("serving /metrics, /healthz and /readyz on port {}", metrics.Port());
  }
  crmsync::worker::Worker worker(std::move(config), metrics);
  InstallSignalHandlers();
  return worker.Run(g_stop);
}

// Secrets are usually absent where configs are checked (CI, a laptop), so
// unset key variables are only resolved with --with-secrets.
int CheckConfig(const std::string& config_path, bool with_secrets) {
  crmsync::mapping::LoadConfigFromFile(
      crmsync::providers::Catalog(), config_path,
      with_secrets ? &crmsync::mapping::ProcessEnv : &crmsync::worker::EnvOrPlaceholder);
  std::printf("%s: ok\n", config_path.c_str());
  return 0;
}

// The levels --log-level accepts (the chart's logLevel enum and
// docs/OPERATIONS.md list the same).
const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error"};

constexpr char kRunFooter[] = R"(
Global options, before or after the subcommand:
  --log-level trace|debug|info|warn|error (default info)
  --log-format auto|json|text (default auto: json unless stderr is a terminal)

Environment:
  Every {"env": "NAME"} of the config (provider API keys, kafka.properties
  values) is read at start; a missing variable stops start-up naming it. The
  chart's defaults are REPLIFY_API_KEY, WHIPPY_API_KEY, CAMPAIGNLARK_API_KEY and
  REPLYIO_API_KEY.

Signals:
  SIGTERM, SIGINT  stop fetching, drain in-flight deliveries for up to
                   worker.drainTimeoutMs (10000 ms by default), commit, leave
                   the consumer group and exit; a second signal exits at once
                   (status 130).

Metrics:
  /metrics (Prometheus text format), /healthz and /readyz are served on
  worker.metrics.listen (default 0.0.0.0:9464).
)";

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  CLI::App app{"crmsync: keeps outreach providers in step with CRM change events on Kafka"};
  app.require_subcommand(1);
  // Global options may also follow the subcommand (`crmsync run --log-level
  // debug --config x`): subcommands created below inherit this.
  app.fallthrough();
  app.set_version_flag("--version", [] {
    std::string text = crmsync::worker::VersionText();
    if (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  });
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember(kLogLevels))
      ->capture_default_str();
  std::string log_format = "auto";
  app.add_option("--log-format", log_format,
                 "json (one object per line), text, or auto: json unless stderr is a terminal")
      ->check(CLI::IsMember({"auto", "json", "text"}))
      ->capture_default_str();

  std::string config_path;
  CLI::App* run = app.add_subcommand("run", "consume and deliver until SIGTERM");
  run->add_option("-c,--config", config_path, "config file (JSON)")->required();
  run->footer(kRunFooter);

  std::string check_path;
  CLI::App* check = app.add_subcommand("check-config", "validate a config file and exit");
  check->add_option("file", check_path, "config file (JSON)")->required();
  bool with_secrets = false;
  check->add_flag("--with-secrets", with_secrets,
                  "also require every API key variable to be set (as `run` does)");

  crmsync::worker::DryRunOptions dry_run_options;
  CLI::App* dry_run = app.add_subcommand(
      "dry-run", "print the operations and provider requests events would cause; sends nothing");
  dry_run->add_option("-c,--config", dry_run_options.config_path, "config file (JSON)")->required();
  dry_run->add_option("--format", dry_run_options.format,
                      "input format: auto, canonical, hubspot, salesforce, debezium "
                      "(default: the topic's)");
  dry_run->add_option("--topic", dry_run_options.topic,
                      "topic the messages come from (default: the first configured)");
  dry_run->add_flag("--whole", dry_run_options.whole_input, "the whole input is one message");
  dry_run
      ->add_option("file", dry_run_options.input,
                   "events: one message per line (key<TAB>value or value), or '-' for stdin")
      ->capture_default_str();

  // The demo is its own program, so that this one carries no simulator.
  CLI::App* demo =
      app.add_subcommand("demo", "the demo is the program crmsync-demo (same options)");
  // crmsync-demo's options, accepted so that the message below is what an old
  // command line gets.
  std::string ignored;
  for (const char* name : {"--events", "--contacts", "--latency-ms", "--bootstrap"}) {
    demo->add_option(name, ignored)->group("");
  }
  demo->add_flag("--verbose")->group("");

  CLI11_PARSE(app, argc, argv);
  crmsync::worker::SetupLogging(
      crmsync::worker::ParseLogFormat(log_format).value_or(crmsync::worker::LogFormat::kAuto),
      spdlog::level::from_str(log_level));

  try {
    if (*run) return Run(config_path);
    if (*check) return CheckConfig(check_path, with_secrets);
    if (*demo) {
      std::fprintf(stderr,
                   "crmsync: the demo is the program crmsync-demo (same options; `make "
                   "demo`)\n");
      return 2;
    }
    if (*dry_run) return crmsync::worker::RunDryRun(dry_run_options, std::cout, std::cerr);
  } catch (const crmsync::mapping::ConfigError& e) {
    // The worker's output is its log (JSON lines for collectors); the
    // command-line tools print for a person.
    if (*run) {
      spdlog::critical("invalid configuration:\n{}", e.what());
    } else {
      std::fprintf(stderr, "invalid configuration:\n%s\n", e.what());
    }
    return 2;
  } catch (const std::exception& e) {
    if (*run) {
      spdlog::critical("crmsync: {}", e.what());
    } else {
      std::fprintf(stderr, "crmsync: %s\n", e.what());
    }
    return 1;
  }
  return 0;
}
