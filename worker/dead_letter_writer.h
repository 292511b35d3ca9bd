// DeadLetterWriter: writes records to the dead-letter topic and says when the
// broker has them, so that their source offsets may be committed.
//
// Every record fits: one larger than the producer's message.max.bytes (or
// refused by the broker as too large) is written with its key, a prefix of
// its value, and headers giving the value's size and SHA-256
// (`crmsync.value.truncated`, `crmsync.value.bytes`, `crmsync.value.sha256`).
// A write that fails is retried with exponential backoff, however long the
// topic is unavailable; nothing on this path throws.
//
// The producer is idempotent and waits for all in-sync replicas (acks=all).
// Not thread-safe: the loop thread calls every method.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "worker/dispatcher.h"
#include "worker/kafka/producer.h"

namespace crmsync::worker {

class DeadLetterWriter {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // `properties`: the user's passthrough properties (security settings).
  DeadLetterWriter(std::string topic, const std::string& bootstrap_servers,
                   std::map<std::string, std::string> properties);
  ~DeadLetterWriter();
  DeadLetterWriter(const DeadLetterWriter&) = delete;
  DeadLetterWriter& operator=(const DeadLetterWriter&) = delete;

  // Queues one record for `origin`; `kind` is a string literal ("malformed",
  // "rejected", "exhausted") that comes back with the acknowledgement.
  void Write(const MessageRef& origin, std::string_view key, std::string_view value,
             Headers headers, const char* kind);

  struct Written {
    MessageRef origin;
    const char* kind = "";
  };
  // Serves delivery reports and sends retries that are due; returns the
  // records the broker acknowledged since the last call.
  std::vector<Written> Poll(Clock::time_point now);

  // Records written or waiting to be retried.
  size_t InFlight() const { return in_flight_ + retries_.size(); }
  std::optional<Clock::time_point> NextRetry() const;
  // Forgets the retries of a partition that is no longer ours (its next
  // owner dead-letters the message again).
  void DropPartition(const kafka::TopicPartition& tp);

  // The largest record (key + value + headers) written whole.
  size_t RecordLimit() const { return record_limit_; }

  // A record that fits the limit: `value` replaced by its prefix, with the
  // headers saying so, when key + value + headers would not fit.
  static void Fit(std::string& key, std::string& value, Headers& headers, size_t limit);

 private:
  struct Record {
    MessageRef origin;
    std::string key;
    std::string value;
    Headers headers;
    const char* kind = "";
    int attempts = 0;
  };
  void Send(std::shared_ptr<Record> record);

  std::string topic_;
  size_t record_limit_ = 0;
  std::unique_ptr<kafka::Producer> producer_;
  size_t in_flight_ = 0;
  std::vector<Written> written_;
  std::multimap<Clock::time_point, std::shared_ptr<Record>> retries_;
  std::vector<std::shared_ptr<Record>> failed_;  // filled by delivery reports
};

}  // namespace crmsync::worker
