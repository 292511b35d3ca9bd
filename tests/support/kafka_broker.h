// KafkaBroker: a real single-node Apache Kafka (KRaft, combined broker and
// controller) on 127.0.0.1, run by scripts/kafka-broker.sh from the jars that
// tests/kafka/broker/pom.xml pins. The broker is a child process of the test
// (it dies with the test, PR_SET_PDEATHSIG) with a temporary state directory;
// it can be stopped, killed with SIGKILL and started again on the same ports
// and log dir, so topics and committed offsets survive a restart.
//
// KafkaBrokerTest: a GoogleTest fixture sharing one such broker among all the
// tests of a test binary, with fresh topics and groups per test.
//
// Not thread-safe: one test thread drives a KafkaBroker.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace crmsync::testing {

class KafkaBroker {
 public:
  // Prepares a fresh state directory (free ports, storage format) and starts
  // the broker; throws std::runtime_error if it does not start.
  KafkaBroker();
  // Kills the broker (SIGKILL) and removes its state directory.
  ~KafkaBroker();
  KafkaBroker(const KafkaBroker&) = delete;
  KafkaBroker& operator=(const KafkaBroker&) = delete;

  const std::string& Bootstrap() const { return bootstrap_; }
  const std::string& Dir() const { return dir_; }

  // Starts the broker (if it is not running) and waits until it serves.
  void Start();
  // SIGTERM (controlled shutdown), waits for the exit.
  void Stop();
  // SIGKILL, waits for the exit.
  void Kill();
  bool Running();
  // How long the last Start() took until the broker said it had started.
  std::chrono::milliseconds LastStartTime() const { return last_start_; }
  // The broker's log of all its runs.
  std::string Log() const;

  // Creates a topic with per-topic configs (e.g. {"retention.bytes", "..."})
  // and waits until every partition has a leader; throws on failure.
  void CreateTopic(const std::string& topic, int partitions,
                   const std::map<std::string, std::string>& configs = {});

 private:
  void Signal(int signal);

  std::string dir_;
  std::string bootstrap_;
  pid_t pid_ = -1;
  std::chrono::milliseconds last_start_{0};
};

class KafkaBrokerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static KafkaBroker& Broker();
  static const std::string& Bootstrap() { return Broker().Bootstrap(); }

  // A topic name unique to this test (created with `partitions`).
  std::string MakeTopic(int partitions, const std::map<std::string, std::string>& configs = {});
  // A consumer group id unique to this test.
  std::string MakeGroup();

 private:
  int counter_ = 0;
};

}  // namespace crmsync::testing
