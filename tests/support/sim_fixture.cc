#include "tests/support/sim_fixture.h"

namespace crmsync::testing {

void SimTest::SetUp() {
  // A fresh simulator per test on a free loopback port: no state, counters or
  // knobs leak between tests, and tests can run in parallel.
  sim::Simulator::Options options;
  options.port = 0;
  sim_ = std::make_unique<sim::Simulator>(options);
  sim_->Start();
}

void SimTest::TearDown() {
  if (sim_) sim_->Stop();
  sim_.reset();
}

sim::Simulator::Options AllProvidersOptions(const std::string& api_key) {
  sim::Simulator::Options options;
  options.api_keys = {
      {"replify", api_key}, {"whippy", api_key}, {"campaignlark", api_key}, {"replyio", api_key}};
  return options;
}

void SimBrokerTest::StartSimulatorAndTopics(const sim::Simulator::Options& options) {
  simulator_ = std::make_unique<sim::Simulator>(options);
  simulator_->Start();
  topic_ = MakeTopic(4);
  group_ = MakeGroup();
  dead_letter_topic_ = MakeTopic(1);
}

}  // namespace crmsync::testing
