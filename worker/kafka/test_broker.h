// TestBroker: a real Kafka-protocol broker on loopback, from librdkafka's mock
// cluster (rdkafka_mock.h). Consumer groups, produce, fetch and offset commits
// go over TCP, so other processes can use it through BootstrapServers().
//
// Owns the cluster; destroying it stops the brokers. Methods are thread-safe
// (librdkafka serialises mock-cluster operations internally).
// Throws std::runtime_error when the cluster cannot be created.
#pragma once

#include <string>

#include "worker/kafka/handles.h"

typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace crmsync::kafka {

class TestBroker {
 public:
  explicit TestBroker(int broker_count = 1);
  ~TestBroker();
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  // Comma-separated "127.0.0.1:port" list.
  const std::string& BootstrapServers() const { return bootstrap_servers_; }

  // Creates a topic; throws std::runtime_error on failure.
  void CreateTopic(const std::string& topic, int partitions, int replication_factor = 1);

  // The underlying mock cluster, for fault injection in tests.
  rd_kafka_mock_cluster_t* MockCluster() const { return cluster_; }

 private:
  KafkaPtr handle_;  // the producer handle that hosts the mock cluster
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_servers_;
};

}  // namespace crmsync::kafka
