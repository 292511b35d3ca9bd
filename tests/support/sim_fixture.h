// SimTest: a GoogleTest fixture with an in-process provider Simulator on
// loopback, reset before each test.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "sim/simulator.h"

namespace crmsync::testing {

class SimTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  sim::Simulator& Sim() { return *sim_; }

 private:
  std::unique_ptr<sim::Simulator> sim_;
};

}  // namespace crmsync::testing
