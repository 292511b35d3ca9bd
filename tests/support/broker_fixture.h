// BrokerTest: a GoogleTest fixture with an in-process TestBroker (real Kafka
// protocol over loopback TCP) shared by the tests of one suite, and helpers to
// make a fresh topic and group per test.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "worker/kafka/test_broker.h"

namespace crmsync::testing {

class BrokerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  static kafka::TestBroker& Broker();
  static const std::string& Bootstrap() { return Broker().BootstrapServers(); }

  // A topic name unique to this test (created with `partitions`).
  std::string MakeTopic(int partitions);
  // A consumer group id unique to this test.
  std::string MakeGroup();

 private:
  static std::unique_ptr<kafka::TestBroker> broker_;
  int counter_ = 0;
};

// Polls `condition` every 20 ms until it holds or `timeout` passes; returns
// whether it held. Tests wait on conditions, never on sleeps.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace crmsync::testing
