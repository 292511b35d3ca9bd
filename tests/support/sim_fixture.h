// SimTest: a GoogleTest fixture with an in-process provider Simulator on
// loopback, reset before each test.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "sim/simulator.h"
#include "tests/support/broker_fixture.h"

namespace crmsync::testing {

class SimTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  sim::Simulator& Sim() { return *sim_; }

 private:
  std::unique_ptr<sim::Simulator> sim_;
};

// Simulator options taking `api_key` for every simulated provider.
sim::Simulator::Options AllProvidersOptions(const std::string& api_key);

// A BrokerTest with a simulator of every provider, and per test a fresh
// topic of 4 partitions, consumer group and dead-letter topic.
class SimBrokerTest : public BrokerTest {
 protected:
  // Starts the simulator with `options` and makes the topics and the group.
  void StartSimulatorAndTopics(const sim::Simulator::Options& options);

  std::unique_ptr<sim::Simulator> simulator_;
  std::string topic_;
  std::string group_;
  std::string dead_letter_topic_;
};

}  // namespace crmsync::testing
