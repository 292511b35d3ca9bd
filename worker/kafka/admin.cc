#include "worker/kafka/admin.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <utility>

#include "worker/kafka/conf.h"
#include "worker/kafka/handles.h"

namespace crmsync::kafka {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Fail(const std::string& what, rd_kafka_resp_err_t err) {
  throw std::runtime_error("group lag: " + what + ": " + rd_kafka_err2name(err));
}

// Failures surface as exceptions naming the librdkafka error, so the
// short-lived handle's own chatter stays at debug.
void LogQuietly(const rd_kafka_t*, int, const char* facility, const char* message) {
  spdlog::debug("kafka lag query {}: {}", facility, message);
}

// Partition count of `topic`. A topic that was created a moment ago may still
// report a transient error, so topic-level errors are retried until the deadline.
int PartitionCount(rd_kafka_t* rk, const std::string& topic, Clock::time_point deadline) {
  for (;;) {
    const rd_kafka_metadata_t* raw = nullptr;
    const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &raw, RemainingMs(deadline));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) Fail("metadata for '" + topic + "'", err);
    MetadataPtr metadata(raw);
    rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = metadata->topics[i];
      if (topic != t.topic) continue;
      if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partition_cnt > 0) return t.partition_cnt;
      topic_err = t.err;
    }
    if (Clock::now() >= deadline) Fail("topic '" + topic + "'", topic_err);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

std::vector<PartitionLag> QueryGroupLag(const std::string& bootstrap_servers,
                                        const std::string& group_id, const std::string& topic,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  ConfPtr conf(rd_kafka_conf_new());
  SetProperty(conf.get(), "bootstrap.servers", bootstrap_servers, "group lag: ");
  // The handle only reads the group's committed offsets: it never subscribes,
  // so it never joins the group or disturbs its members.
  SetProperty(conf.get(), "group.id", group_id, "group lag: ");
  SetProperty(conf.get(), "enable.auto.commit", "false", "group lag: ");
  SetProperty(conf.get(), "client.id", "crmsync-lag", "group lag: ");
  rd_kafka_conf_set_log_cb(conf.get(), &LogQuietly);
  KafkaPtr handle = NewClient(RD_KAFKA_CONSUMER, std::move(conf), "group lag: ");
  rd_kafka_t* rk = handle.get();

  const int partition_count = PartitionCount(rk, topic, deadline);
  TopicPartitionListPtr committed(rd_kafka_topic_partition_list_new(partition_count));
  for (int p = 0; p < partition_count; ++p) {
    rd_kafka_topic_partition_list_add(committed.get(), topic.c_str(), p);
  }
  rd_kafka_resp_err_t err = rd_kafka_committed(rk, committed.get(), RemainingMs(deadline));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) Fail("committed offsets of group '" + group_id + "'", err);

  std::vector<PartitionLag> lags;
  lags.reserve(partition_count);
  for (int i = 0; i < committed->cnt; ++i) {
    const rd_kafka_topic_partition_t& elem = committed->elems[i];
    if (elem.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Fail("committed offset of " + topic + "/" + std::to_string(elem.partition), elem.err);
    }
    PartitionLag lag;
    lag.partition = elem.partition;
    // Logical offsets (RD_KAFKA_OFFSET_INVALID: the group never committed
    // here) are all negative.
    lag.committed = elem.offset < 0 ? -1 : elem.offset;
    err = QueryWatermarks(rk, topic.c_str(), elem.partition, &lag.log_start, &lag.log_end,
                          RemainingMs(deadline));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Fail("watermarks of " + topic + "/" + std::to_string(elem.partition), err);
    }
    lags.push_back(lag);
  }
  return lags;
}

int64_t TotalLag(const std::vector<PartitionLag>& lags) {
  int64_t total = 0;
  for (const auto& lag : lags) total += lag.Lag();
  return total;
}

void CreateTopic(const std::string& bootstrap_servers, const std::string& topic, int partitions,
                 const std::map<std::string, std::string>& configs, int replication_factor,
                 std::chrono::milliseconds timeout) {
  ConfPtr conf(rd_kafka_conf_new());
  SetProperty(conf.get(), "bootstrap.servers", bootstrap_servers, "create topic: ");
  KafkaPtr rk = NewClient(RD_KAFKA_PRODUCER, std::move(conf), "create topic: ");
  char errstr[512];
  NewTopicPtr new_topic(
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replication_factor, errstr, sizeof(errstr)));
  if (!new_topic) throw std::runtime_error(std::string("create topic: ") + errstr);
  for (const auto& [name, value] : configs) {
    if (rd_kafka_resp_err_t err =
            rd_kafka_NewTopic_set_config(new_topic.get(), name.c_str(), value.c_str())) {
      throw std::runtime_error("create topic " + topic + ": config '" + name +
                               "': " + rd_kafka_err2str(err));
    }
  }
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_NewTopic_t* new_topics[] = {new_topic.get()};
  rd_kafka_CreateTopics(rk.get(), new_topics, 1, nullptr, queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count())));
  std::string error;
  if (!event) {
    error = "no answer in time";
  } else if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    error = rd_kafka_event_error_string(event.get());
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(event.get()), &count);
    if (count != 1) {
      error = "no result";
    } else if (rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      error = rd_kafka_topic_result_error_string(results[0]);
    }
  }
  if (!error.empty()) throw std::runtime_error("create topic " + topic + ": " + error);

  // Every partition has a leader before the test produces or consumes.
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    TopicPtr handle(rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr));
    const rd_kafka_metadata_t* raw = nullptr;
    bool ready = false;
    if (rd_kafka_metadata(rk.get(), 0, handle.get(), &raw, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      MetadataPtr metadata(raw);
      ready = metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              metadata->topics[0].partition_cnt == partitions;
      for (int i = 0; ready && i < metadata->topics[0].partition_cnt; ++i) {
        ready = metadata->topics[0].partitions[i].leader >= 0;
      }
    }
    if (ready) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("create topic " + topic + ": partitions without a leader in time");
}

}  // namespace crmsync::kafka
