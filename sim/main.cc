// crmsync-sim: runs the provider simulator as a standalone program for the
// worker, benchmarks and manual poking. Prints its root URL (http://HOST:PORT)
// as the first line of stdout, then serves until SIGTERM or SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "sim/simulator.h"
#include "sim/whippy_sim.h"

namespace {

std::string DefaultReplifyKey() {
  const char* key = std::getenv("CRMSYNC_SIM_REPLIFY_KEY");
  return key != nullptr && *key != '\0' ? key : "sim-replify-key";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crmsync provider simulator: the documented provider APIs on loopback"};
  crmsync::sim::Simulator::Options options;
  std::string replify_key = DefaultReplifyKey();
  int latency_ms = 0;
  int latency_jitter_ms = 0;
  double failure_rate = 0.0;
  app.add_option("--host", options.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "Port to listen on; 0 picks a free one")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--replify-key", replify_key,
                 "API key Replify requests must carry in x-api-key (default: "
                 "$CRMSYNC_SIM_REPLIFY_KEY, else sim-replify-key)");
  std::string campaignlark_key = "sim-campaignlark-key";
  app.add_option("--campaignlark-key", campaignlark_key,
                 "API key CampaignLark requests must carry as Authorization: Bearer")
      ->capture_default_str();
  std::string replyio_key = "sim-replyio-key";
  app.add_option("--replyio-key", replyio_key,
                 "API key Reply.io requests must carry as Authorization: Bearer")
      ->capture_default_str();
  std::string whippy_key = "sim-whippy-key";
  std::string whippy_list_method = "PUT";
  app.add_option("--whippy-key", whippy_key, "API key Whippy requests must carry in X-WHIPPY-KEY")
      ->capture_default_str();
  app.add_option("--whippy-list-method", whippy_list_method,
                 "The one method Whippy's list endpoint answers (the real one is undocumented)")
      ->check(CLI::IsMember({"PUT", "POST", "PATCH"}, CLI::ignore_case))
      ->capture_default_str();
  app.add_option("--latency-ms", latency_ms, "Delay before every provider response")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--latency-jitter-ms", latency_jitter_ms,
                 "A further random delay of up to this many milliseconds per response")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--failure-rate", failure_rate,
                 "Fraction of provider requests answered 500/503 without effect")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Server threads (bounds concurrent requests)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", options.seed, "Seed of the failure injection")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  options.api_keys = {{"replify", replify_key}};
  options.api_keys["campaignlark"] = campaignlark_key;
  options.api_keys["whippy"] = whippy_key;
  options.api_keys["replyio"] = replyio_key;
  options.knobs.latency = std::chrono::milliseconds(latency_ms);
  options.knobs.latency_jitter = std::chrono::milliseconds(latency_jitter_ms);
  options.knobs.failure_rate = failure_rate;

  // Blocked before the server starts its threads, which inherit the mask, so
  // that the signals reach only sigwait() below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    std::fprintf(stderr, "crmsync-sim: cannot block signals\n");
    return 1;
  }

  try {
    crmsync::sim::Simulator simulator(options);
    if (auto* whippy = dynamic_cast<crmsync::sim::WhippySim*>(simulator.Provider("whippy"))) {
      whippy->SetListMethod(whippy_list_method);
    }
    simulator.Start();
    // Scripts read the first line to learn the port: flush it at once.
    std::printf("http://%s:%d\n", options.host.c_str(), simulator.Port());
    std::fflush(stdout);
    std::fprintf(stderr, "crmsync-sim: replify API at %s; state at /_sim/state\n",
                 simulator.BaseUrl("replify").c_str());

    int signal_number = 0;
    if (sigwait(&stop_signals, &signal_number) != 0) {
      std::fprintf(stderr, "crmsync-sim: sigwait failed\n");
      return 1;
    }
    simulator.Stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crmsync-sim: %s\n", e.what());
    return 1;
  }
  return 0;
}
