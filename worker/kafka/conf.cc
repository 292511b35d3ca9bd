#include "worker/kafka/conf.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace crmsync::kafka {

void SetProperty(rd_kafka_conf_t* conf, const std::string& name, const std::string& value,
                 const std::string& context) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof(errstr)) ==
      RD_KAFKA_CONF_OK) {
    return;
  }
  // librdkafka quotes the value, which may be a secret (sasl.password).
  std::string error = errstr;
  for (size_t at = value.empty() ? std::string::npos : error.find(value); at != std::string::npos;
       at = error.find(value, at + 5)) {
    error.replace(at, value.size(), "*****");
  }
  throw std::runtime_error(context + "kafka property '" + name + "': " + error);
}

KafkaPtr NewClient(rd_kafka_type_t type, ConfPtr conf, const std::string& context) {
  char errstr[512];
  // rd_kafka_new takes ownership of the configuration only on success.
  KafkaPtr handle(rd_kafka_new(type, conf.get(), errstr, sizeof(errstr)));
  if (!handle) throw std::runtime_error(context + errstr);
  conf.release();
  return handle;
}

void ForwardLog(const char* client, int level, const char* facility, const char* message) {
  if (level <= 3) {
    spdlog::error("{} {}: {}", client, facility, message);
  } else if (level == 4) {
    spdlog::warn("{} {}: {}", client, facility, message);
  } else {
    spdlog::debug("{} {}: {}", client, facility, message);
  }
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

namespace {

// Errors of a ListOffsets answer that the next answer may not have: the
// partition's leader is not known yet (a topic just created, an election) or
// moved, or the connection to it dropped. librdkafka refreshes its metadata
// on the leader errors; it does not ask again itself.
bool Transient(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
      return true;
    default:
      return false;
  }
}

// The offset ListOffsets answers for `timestamp` (RD_KAFKA_OFFSET_BEGINNING:
// the earliest, RD_KAFKA_OFFSET_END: the latest), asked once.
rd_kafka_resp_err_t ListOffsetOnce(rd_kafka_t* rk, const char* topic, int32_t partition,
                                   int64_t timestamp, int64_t* offset,
                                   std::chrono::steady_clock::time_point deadline) {
  TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic, partition)->offset = timestamp;
  if (rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list.get(), RemainingMs(deadline))) {
    return err;
  }
  const rd_kafka_topic_partition_t& elem = list->elems[0];
  if (elem.err != RD_KAFKA_RESP_ERR_NO_ERROR) return elem.err;
  // The partition was missing from the answer: the list still holds the
  // logical offset asked for.
  if (elem.offset < 0) return RD_KAFKA_RESP_ERR__BAD_MSG;
  *offset = elem.offset;
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

// The same, asked again after a transient error until `deadline`.
rd_kafka_resp_err_t ListOffset(rd_kafka_t* rk, const char* topic, int32_t partition,
                               int64_t timestamp, int64_t* offset,
                               std::chrono::steady_clock::time_point deadline) {
  std::chrono::milliseconds pause(20);
  for (;;) {
    const rd_kafka_resp_err_t err =
        ListOffsetOnce(rk, topic, partition, timestamp, offset, deadline);
    if (!Transient(err) || std::chrono::steady_clock::now() + pause >= deadline) return err;
    spdlog::debug("kafka: ListOffsets for {} [{}]: {}; asking again in {} ms", topic, partition,
                  rd_kafka_err2str(err), pause.count());
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

}  // namespace

rd_kafka_resp_err_t QueryWatermarks(rd_kafka_t* rk, const char* topic, int32_t partition,
                                    int64_t* low, int64_t* high, int timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  // Two requests: a ListOffsets request may name a partition only once.
  if (rd_kafka_resp_err_t err =
          ListOffset(rk, topic, partition, RD_KAFKA_OFFSET_BEGINNING, low, deadline)) {
    return err;
  }
  return ListOffset(rk, topic, partition, RD_KAFKA_OFFSET_END, high, deadline);
}

}  // namespace crmsync::kafka
