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

}  // namespace crmsync::testing
