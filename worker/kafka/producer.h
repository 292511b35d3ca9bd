// Producer: a small synchronous-feeling wrapper over a librdkafka producer,
// used by the demo, tests and the benchmark (and later the dead-letter writer).
//
// Produce() is thread-safe and asynchronous; Flush() waits for delivery.
// Errors: the constructor throws std::runtime_error on bad configuration;
// Produce() throws std::runtime_error when librdkafka refuses the message
// (after retrying briefly on a full queue); delivery failures are counted and
// reported by Flush().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "worker/kafka/handle_fwd.h"

namespace crmsync::kafka {

class Producer {
 public:
  explicit Producer(const std::string& bootstrap_servers,
                    const std::map<std::string, std::string>& properties = {});
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // partition < 0: chosen by the default partitioner from the key.
  void Produce(const std::string& topic, std::string_view key, std::string_view value,
               int32_t partition = -1);

  // Called once per ProduceRecord() with whether the broker acknowledged the
  // record (after librdkafka's own retries), from Poll(), Produce() or Flush()
  // on the calling thread.
  using DeliveryCallback = std::function<void(bool delivered, const std::string& error)>;

  // Produces one record with headers (e.g. to a dead-letter topic). Throws
  // like Produce() when librdkafka refuses it outright; `on_delivery` is then
  // not called. A `value` whose data() is null is written as a null value (a
  // tombstone); `partition` < 0: chosen by the partitioner from the key.
  void ProduceRecord(const std::string& topic, std::string_view key, std::string_view value,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     DeliveryCallback on_delivery, int32_t partition = -1);

  // Serves delivery reports without waiting.
  void Poll();

  // Waits until everything produced so far is delivered. Throws
  // std::runtime_error on timeout or if any message failed delivery.
  void Flush(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  uint64_t Delivered() const { return delivered_.load(); }

 private:
  struct Callbacks;  // librdkafka's delivery report, in producer.cc

  KafkaPtr handle_;
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  std::mutex error_mu_;      // guards first_error_ (delivery reports run on polling threads)
  std::string first_error_;  // first delivery failure since the last Flush()
};

}  // namespace crmsync::kafka
