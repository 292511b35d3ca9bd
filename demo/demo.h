// crmsync-demo: an embedded test broker and provider simulator on
// loopback, a sample stream of CRM events, the real worker run until the
// group's lag is zero, live progress and a summary of every campaign.
//
// Needs no network and no configuration. Returns the process exit code.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace crmsync::demo {

struct DemoOptions {
  size_t events = 5000;
  size_t contacts = 600;
  int partitions = 8;
  int latency_ms = 20;  // simulated provider latency
  bool verbose = false;
  // A real Kafka cluster to run against instead of the embedded mock
  // (`make demo-kafka` starts one); the demo creates a fresh topic there.
  std::string bootstrap;
};

int RunDemo(const DemoOptions& options);

}  // namespace crmsync::demo
