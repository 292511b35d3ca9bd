#include "worker/kafka/test_broker.h"

#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

#include <stdexcept>
#include <utility>

#include "worker/kafka/conf.h"

namespace crmsync::kafka {
namespace {

// The hosting handle has no bootstrap servers of its own and complains about
// it; nothing it says matters to a test, so all of it goes to debug.
void LogQuietly(const rd_kafka_t*, int, const char* facility, const char* message) {
  spdlog::debug("kafka mock {}: {}", facility, message);
}

void Check(rd_kafka_resp_err_t err, const std::string& what) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("test broker: " + what + ": " + rd_kafka_err2name(err));
  }
}

}  // namespace

TestBroker::TestBroker(int broker_count) {
  ConfPtr conf(rd_kafka_conf_new());
  SetProperty(conf.get(), "client.id", "crmsync-testbroker", "test broker: ");
  rd_kafka_conf_set_log_cb(conf.get(), &LogQuietly);
  handle_ = NewClient(RD_KAFKA_PRODUCER, std::move(conf), "test broker: ");

  cluster_ = rd_kafka_mock_cluster_new(handle_.get(), broker_count);
  if (cluster_ == nullptr) {
    throw std::runtime_error("test broker: cannot create a mock cluster of " +
                             std::to_string(broker_count) + " broker(s)");
  }
  bootstrap_servers_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  spdlog::debug("test broker listening on {}", bootstrap_servers_);
}

TestBroker::~TestBroker() {
  // The cluster runs on the handle's threads, so it goes first.
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
}

void TestBroker::CreateTopic(const std::string& topic, int partitions, int replication_factor) {
  // The mock accepts nonsense counts and makes a topic of its default size.
  if (partitions < 1 || replication_factor < 1) {
    throw std::runtime_error("test broker: cannot create topic '" + topic + "' with " +
                             std::to_string(partitions) + " partition(s) and replication factor " +
                             std::to_string(replication_factor));
  }
  const rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, replication_factor);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("test broker: cannot create topic '" + topic + "' with " +
                             std::to_string(partitions) +
                             " partition(s): " + rd_kafka_err2name(err));
  }
}

void TestBroker::PushRequestErrors(int16_t api_key,
                                   const std::vector<rd_kafka_resp_err_t>& errors) {
  rd_kafka_mock_push_request_errors_array(cluster_, api_key, errors.size(), errors.data());
}

void TestBroker::PushBrokerRequestErrors(
    int32_t broker_id, int16_t api_key,
    const std::vector<std::pair<rd_kafka_resp_err_t, int>>& errors) {
  // One call per entry: each appends to the end of the broker's error stack,
  // so the errors are returned in the order given.
  for (const auto& [err, rtt_ms] : errors) {
    Check(
        rd_kafka_mock_broker_push_request_error_rtts(cluster_, broker_id, api_key, 1, err, rtt_ms),
        "push request error to broker " + std::to_string(broker_id));
  }
}

size_t TestBroker::BrokerErrorsLeft(int32_t broker_id, int16_t api_key) {
  size_t count = 0;
  Check(rd_kafka_mock_broker_error_stack_cnt(cluster_, broker_id, api_key, &count),
        "error stack of broker " + std::to_string(broker_id));
  return count;
}

void TestBroker::ClearRequestErrors(int16_t api_key) {
  rd_kafka_mock_clear_request_errors(cluster_, api_key);
}

void TestBroker::SetPartitionLeader(const std::string& topic, int32_t partition,
                                    int32_t broker_id) {
  Check(rd_kafka_mock_partition_set_leader(cluster_, topic.c_str(), partition, broker_id),
        "leader of " + topic + "[" + std::to_string(partition) + "]");
}

void TestBroker::SetBrokerDown(int32_t broker_id) {
  Check(rd_kafka_mock_broker_set_down(cluster_, broker_id),
        "take broker " + std::to_string(broker_id) + " down");
}

void TestBroker::SetBrokerUp(int32_t broker_id) {
  Check(rd_kafka_mock_broker_set_up(cluster_, broker_id),
        "bring broker " + std::to_string(broker_id) + " up");
}

void TestBroker::SetGroupCoordinator(const std::string& group_id, int32_t broker_id) {
  Check(rd_kafka_mock_coordinator_set(cluster_, "group", group_id.c_str(), broker_id),
        "coordinator of group " + group_id);
}

}  // namespace crmsync::kafka
