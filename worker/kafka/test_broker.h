// TestBroker: a real Kafka-protocol broker on loopback, from librdkafka's mock
// cluster (rdkafka_mock.h). Consumer groups, produce, fetch and offset commits
// go over TCP, so other processes can use it through BootstrapServers().
//
// Owns the cluster; destroying it stops the brokers. Methods are thread-safe
// (librdkafka serialises mock-cluster operations internally).
// Throws std::runtime_error when the cluster cannot be created.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

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

  // Fault injection. Broker ids run from 1 to the broker count; `api_key` is
  // the Kafka protocol request type (1 for Fetch, 8 for OffsetCommit, ...).
  // Each method throws std::runtime_error when the mock refuses it.

  // The next requests of `api_key` to any broker fail with `errors`, in order
  // (RD_KAFKA_RESP_ERR__TRANSPORT disconnects the client instead).
  void PushRequestErrors(int16_t api_key, const std::vector<rd_kafka_resp_err_t>& errors);
  // The next requests of `api_key` to `broker_id` fail with each error after
  // its delay in milliseconds (error 0 with a delay only slows the request).
  // These take precedence over the cluster-wide errors.
  void PushBrokerRequestErrors(int32_t broker_id, int16_t api_key,
                               const std::vector<std::pair<rd_kafka_resp_err_t, int>>& errors);
  // How many of the errors pushed for `broker_id` and `api_key` are still to
  // be returned: 0 once requests have consumed all of them.
  size_t BrokerErrorsLeft(int32_t broker_id, int16_t api_key);
  void ClearRequestErrors(int16_t api_key);
  // Moves the leadership of a partition (the log stays: the mock keeps one
  // log per partition whatever its leader).
  void SetPartitionLeader(const std::string& topic, int32_t partition, int32_t broker_id);
  // Disconnects a broker's clients and refuses new connections (no leader
  // change), and accepts them again.
  void SetBrokerDown(int32_t broker_id);
  void SetBrokerUp(int32_t broker_id);
  // Makes `broker_id` the coordinator of consumer group `group_id`.
  void SetGroupCoordinator(const std::string& group_id, int32_t broker_id);

 private:
  KafkaPtr handle_;  // the producer handle that hosts the mock cluster
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_servers_;
};

}  // namespace crmsync::kafka
