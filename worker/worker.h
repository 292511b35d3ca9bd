// Worker: the consume → map → dispatch → deliver → commit loop.
//
// Owns the Kafka consumer, the HTTP engine, the providers, the dispatcher and
// the offset tracker. Run() executes the loop on the calling thread; the HTTP
// engine has its own I/O thread whose completions are handed back through a
// queue, so all pipeline state is touched by the loop thread only. Stats()
// may be read from any thread.
//
// Guarantee: a partition's offset is committed only up to the first message
// that is not yet done (every operation delivered or deliberately rejected).
// The constructor throws on bad configuration (std::runtime_error or
// mapping::ConfigError); Run() does not throw for per-message problems.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mapping/config.h"
#include "providers/provider.h"
#include "worker/circuit_breaker.h"
#include "worker/dispatcher.h"
#include "worker/http_engine.h"
#include "worker/kafka/consumer.h"
#include "worker/kafka/producer.h"
#include "worker/metrics.h"
#include "worker/offset_tracker.h"
#include "worker/request_budget.h"

namespace crmsync::worker {

// Counters for progress displays and tests (Prometheus has the same and more).
struct WorkerStats {
  std::atomic<uint64_t> consumed{0};
  std::atomic<uint64_t> malformed{0};
  std::atomic<uint64_t> unmatched{0};
  std::atomic<uint64_t> delivered{0};       // operations the provider confirmed
  std::atomic<uint64_t> rejected{0};        // operations the provider refused for good
  std::atomic<uint64_t> dead_lettered{0};   // records written to the dead-letter topic
  std::atomic<uint64_t> retried{0};         // operation attempts that will be retried
  std::atomic<uint64_t> exhausted{0};       // operations given up after their retry bounds
  std::atomic<uint64_t> oversized{0};       // messages above worker.maxMessageBytes
  std::atomic<uint64_t> circuit_opened{0};  // times a provider's circuit opened
  std::atomic<uint64_t> pending{0};         // operations queued or in flight
  std::atomic<uint64_t> assigned_partitions{0};
};

class Worker : public kafka::RebalanceListener {
 public:
  Worker(mapping::Config config, Metrics& metrics);
  ~Worker() override;

  // Consumes until `stop` is set, then stops fetching, drains in-flight work
  // within worker.drainTimeoutMs, commits what is done and leaves the group.
  // Returns 0 after a clean shutdown.
  int Run(const std::atomic<bool>& stop);

  const WorkerStats& Stats() const { return stats_; }

  // kafka::RebalanceListener (called from inside Run's polling).
  void OnAssigned(const std::vector<kafka::TopicPartition>& partitions) override;
  void OnRevoking(const std::vector<kafka::TopicPartition>& partitions, bool lost) override;

 private:
  struct Completion {
    uint64_t batch_id = 0;
    size_t index = 0;  // request index within the exchange's current round
    providers::HttpResponse response;
    double seconds = 0;
  };
  // A batch's exchange with its provider, while requests are in flight.
  struct ActiveExchange {
    std::string provider;
    mapping::Action action = mapping::Action::kUpsert;  // of the batch (for metrics)
    std::unique_ptr<providers::Exchange> exchange;
    size_t awaiting = 0;  // responses of the current round still to come
    // Requests of the current round waiting for the provider's budget, with
    // their index in the round.
    std::vector<std::pair<size_t, providers::HttpRequest>> unsent;
  };

  void HandleMessage(const kafka::Message& message, Clock::time_point now);
  // Sends the exchange's next round, or finishes the batch when it has none.
  void Advance(uint64_t batch_id, ActiveExchange& active, Clock::time_point now);
  // Sends as many unsent requests as the provider's budget allows.
  void SendWithinBudget(uint64_t batch_id, ActiveExchange& active, Clock::time_point now);
  // The earliest moment something is due: a batch, a retry or a budget slot.
  std::optional<Clock::time_point> NextDeadline();
  void Finish(uint64_t batch_id, const std::string& provider, mapping::Action action,
              const std::vector<providers::Outcome>& outcomes, Clock::time_point now);
  // Applies finished HTTP exchanges and sends every batch that is due.
  void Pump(bool flush_all);
  // Waits until a completion arrives or `until` passes.
  void WaitForCompletions(Clock::time_point until);
  // Drains until none of `partitions` (all, if empty) has unfinished messages.
  void Drain(const std::vector<kafka::TopicPartition>& partitions, Clock::time_point deadline);
  void StoreAndCommit();
  bool CommitNow(const std::vector<kafka::TopicPartition>& partitions);
  // Pauses and resumes partitions: all of them under backpressure, else
  // those waiting for a provider whose circuit is open and those with an
  // exhausted operation kept retrying.
  void UpdatePauses(Clock::time_point now);
  void OnCircuitChange(const std::string& provider, Clock::time_point now);
  // Sets the circuit-state and rate-limit-token gauges of every provider.
  void RefreshGauges(Clock::time_point now);
  // Sets the consumer-lag gauge of every owned partition whose high
  // watermark is known (high watermark minus the stored offset).
  void UpdateLag();
  bool IsCurrent(const MessageRef& ref) const;

  mapping::Config config_;
  Metrics& metrics_;
  WorkerStats stats_;
  std::map<std::string, std::unique_ptr<providers::Provider>> providers_;
  Dispatcher dispatcher_;
  OffsetTracker tracker_;
  std::map<uint64_t, ActiveExchange> exchanges_;    // by dispatcher batch id
  std::set<uint64_t> waiting_for_budget_;           // exchanges with unsent requests
  std::map<std::string, RequestBudget> budgets_;    // by provider
  std::map<std::string, CircuitBreaker> breakers_;  // by provider
  // Partitions paused for each provider whose circuit is open.
  std::map<std::string, std::set<kafka::TopicPartition>> circuit_paused_;
  std::vector<kafka::TopicPartition> stuck_;  // refreshed every kStuckRefresh
  Clock::time_point stuck_refreshed_{};
  Clock::time_point gauges_refreshed_{};
  std::set<kafka::TopicPartition> assigned_;
  std::set<kafka::TopicPartition> paused_set_;  // what the consumer has paused
  std::map<kafka::TopicPartition, uint64_t> epochs_;
  std::map<kafka::TopicPartition, int64_t> stored_;  // last stored offset per partition
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<HttpEngine> engine_;

  std::mutex completions_mutex_;
  std::condition_variable completions_cv_;
  std::vector<Completion> completions_;

  // Dead letters (only when kafka.deadLetterTopic is set): the original
  // record of every message with operations still pending, so that a
  // rejected operation can be written with its message's key and value.
  struct Retained {
    std::string key;
    std::string value;
    size_t pending = 0;  // operations of the message not yet finished
  };
  // `kind` is the dead-letter metric's reason: "malformed", "rejected" or
  // "exhausted" (a string literal).
  void DeadLetter(const MessageRef& origin, const std::string& key, const std::string& value,
                  std::vector<std::pair<std::string, std::string>> headers, const char* kind);
  void SendDeadLetter(const MessageRef& origin, const std::string& key, const std::string& value,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      const char* kind);
  void Release(const MessageRef& origin);
  std::unique_ptr<kafka::Producer> dead_letters_;
  std::map<kafka::TopicPartition, std::map<int64_t, Retained>> retained_;
  size_t dead_letters_in_flight_ = 0;
  bool destroying_ = false;

  bool backpressure_ = false;
};

}  // namespace crmsync::worker
