#include "worker/kafka/changelog.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include "worker/kafka/admin.h"
#include "worker/kafka/conf.h"
#include "worker/kafka/consumer.h"

namespace crmsync::kafka {
namespace {

using Clock = std::chrono::steady_clock;

// Properties of the worker's own group membership, which the changelog's
// short-lived and assign-mode handles must not take over.
const std::set<std::string>& GroupProperties() {
  static const std::set<std::string> kNames = {"group.id",
                                               "group.instance.id",
                                               "enable.auto.commit",
                                               "auto.commit.interval.ms",
                                               "enable.auto.offset.store",
                                               "partition.assignment.strategy",
                                               "enable.partition.eof",
                                               "auto.offset.reset"};
  return kNames;
}

void Set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  SetProperty(conf, name, value, "state changelog: ");
}

void LogQuietly(const rd_kafka_t*, int level, const char* facility, const char* message) {
  ForwardLog("kafka state changelog", level, facility, message);
}

KafkaPtr NewConsumer(const std::string& bootstrap_servers,
                     const std::map<std::string, std::string>& properties) {
  ConfPtr conf(rd_kafka_conf_new());
  for (const auto& [name, value] : properties) {
    if (GroupProperties().count(name) == 0) Set(conf.get(), name, value);
  }
  Set(conf.get(), "bootstrap.servers", bootstrap_servers);
  // A group id is what librdkafka's consumer API needs; the handle only
  // assigns partitions, so it never joins the group or commits.
  Set(conf.get(), "group.id", "crmsync-state-restore");
  Set(conf.get(), "enable.auto.commit", "false");
  Set(conf.get(), "enable.auto.offset.store", "false");
  Set(conf.get(), "enable.partition.eof", "true");
  Set(conf.get(), "auto.offset.reset", "earliest");
  Set(conf.get(), "client.id", "crmsync-state");
  // A restore reads a log to its end as fast as it can: a fetch that finds
  // too little waits 10 ms, not the default 500 (the assignment callback
  // waits for the restore).
  Set(conf.get(), "fetch.wait.max.ms", "10");
  rd_kafka_conf_set_log_cb(conf.get(), &LogQuietly);
  KafkaPtr handle = NewClient(RD_KAFKA_CONSUMER, std::move(conf), "state changelog: ");
  rd_kafka_poll_set_consumer(handle.get());
  return handle;
}

}  // namespace

int TopicPartitions(const std::string& bootstrap_servers,
                    const std::map<std::string, std::string>& properties, const std::string& topic,
                    std::chrono::milliseconds timeout) {
  KafkaPtr handle = NewConsumer(bootstrap_servers, properties);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const rd_kafka_metadata_t* raw = nullptr;
    // All topics: asking for one by name could auto-create it.
    const rd_kafka_resp_err_t err =
        rd_kafka_metadata(handle.get(), 1, nullptr, &raw, RemainingMs(deadline));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (Clock::now() >= deadline) {
        throw std::runtime_error("state changelog: metadata for '" + topic +
                                 "': " + rd_kafka_err2name(err));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    MetadataPtr metadata(raw);
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = metadata->topics[i];
      if (topic == t.topic && t.err == RD_KAFKA_RESP_ERR_NO_ERROR) return t.partition_cnt;
    }
    return 0;
  }
}

void EnsureChangelogTopic(const std::string& bootstrap_servers,
                          const std::map<std::string, std::string>& properties,
                          const std::string& input_topic, const std::string& changelog, bool create,
                          int replication_factor, std::chrono::milliseconds timeout) {
  const int inputs = TopicPartitions(bootstrap_servers, properties, input_topic, timeout);
  if (inputs == 0) {
    throw std::runtime_error("state changelog: input topic '" + input_topic +
                             "' does not exist, so its changelog '" + changelog +
                             "' cannot be sized");
  }
  const int have = TopicPartitions(bootstrap_servers, properties, changelog, timeout);
  if (have >= inputs) return;
  if (have > 0) {
    throw std::runtime_error("state changelog '" + changelog + "' has " + std::to_string(have) +
                             " partition(s) but its input topic '" + input_topic + "' has " +
                             std::to_string(inputs) +
                             ": add partitions to the changelog (partition N holds the state of "
                             "input partition N)");
  }
  if (!create) {
    throw std::runtime_error("state changelog '" + changelog + "' does not exist (create it with " +
                             std::to_string(inputs) +
                             " partitions and cleanup.policy=compact, or set "
                             "state.createTopics)");
  }
  try {
    CreateTopic(bootstrap_servers, changelog, inputs, {{"cleanup.policy", "compact"}},
                replication_factor, timeout);
    spdlog::info("created state changelog '{}' with {} partition(s)", changelog, inputs);
  } catch (const std::exception& e) {
    // Another replica may have created it meanwhile.
    if (TopicPartitions(bootstrap_servers, properties, changelog, timeout) >= inputs) return;
    throw;
  }
}

ChangelogReader::ChangelogReader(const std::string& bootstrap_servers,
                                 const std::map<std::string, std::string>& properties)
    : handle_(NewConsumer(bootstrap_servers, properties)) {}

ChangelogReader::~ChangelogReader() {
  if (handle_) rd_kafka_consumer_close(handle_.get());
}

RestoreStats ChangelogReader::Read(const std::string& topic, int32_t partition,
                                   const Handler& handler, std::chrono::milliseconds timeout) {
  const auto started = Clock::now();
  const auto deadline = started + timeout;
  const std::string name = topic + "/" + std::to_string(partition);
  RestoreStats stats;
  int64_t low = 0, high = 0;
  for (;;) {
    const rd_kafka_resp_err_t err = QueryWatermarks(handle_.get(), topic.c_str(), partition, &low,
                                                    &high, RemainingMs(deadline));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    if (Clock::now() >= deadline) {
      throw std::runtime_error("state changelog " + name +
                               ": watermarks: " + rd_kafka_err2name(err));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stats.end_offset = high;
  if (high > low) {
    TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_resp_err_t err = rd_kafka_assign(handle_.get(), list.get())) {
      throw std::runtime_error("state changelog " + name + ": assign: " + rd_kafka_err2name(err));
    }
    bool done = false;
    while (!done) {
      if (Clock::now() >= deadline) {
        rd_kafka_assign(handle_.get(), nullptr);
        throw std::runtime_error("state changelog " + name + ": end offset " +
                                 std::to_string(high) + " not reached within " +
                                 std::to_string(timeout.count()) + " ms (" +
                                 std::to_string(stats.records) + " record(s) read)");
      }
      MessagePtr message(rd_kafka_consumer_poll(handle_.get(), 100));
      if (!message) continue;
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        done = message->offset >= high;
        continue;
      }
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (message->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
            message->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
          rd_kafka_assign(handle_.get(), nullptr);
          throw std::runtime_error("state changelog " + name + ": " +
                                   rd_kafka_err2name(message->err));
        }
        spdlog::debug("state changelog {}: {}", name, rd_kafka_message_errstr(message.get()));
        continue;
      }
      const std::string_view key(static_cast<const char*>(message->key), message->key_len);
      const bool null_value = message->payload == nullptr;
      const std::string_view value(null_value ? "" : static_cast<const char*>(message->payload),
                                   message->len);
      ++stats.records;
      stats.bytes += key.size() + value.size();
      handler(key, value, null_value);
      done = message->offset + 1 >= high;
    }
    rd_kafka_assign(handle_.get(), nullptr);
  }
  stats.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  return stats;
}

}  // namespace crmsync::kafka
