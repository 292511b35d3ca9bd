// Delivery: everything between a formed batch and its per-item outcomes —
// the providers' exchanges, their request budgets and circuit breakers, and
// the HTTP engine.
//
// The loop hands it batches (Start), and takes back finished ones (Pump).
// Every exchange knows the partitions its items come from, so that the
// partition lifecycle reaches into delivery:
//   - Revoking(tp, deadline): requests carrying tp's work may still start,
//     but only with a timeout that ends by the deadline; one that cannot
//     start in time withdraws its exchange instead.
//   - Withdraw(tps): every exchange touching them sends nothing more: budget
//     waits and later rounds are dropped, requests in flight are aborted.
//     Its items come back as withdrawn retries (no attempt counted), so the
//     items of other partitions are sent again in a new batch without them.
// No request carrying a partition's work starts after Withdraw() for it.
//
// Not thread-safe: the loop thread calls every method. The engine's I/O
// thread only appends to the completion queue. Never throws on content.
#pragma once

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
#include "worker/kafka/topic_partition.h"
#include "worker/metrics.h"
#include "worker/request_budget.h"

namespace crmsync::worker {

// A batch whose exchange is over: one Outcome per item.
struct DeliveredBatch {
  uint64_t id = 0;
  std::string provider;
  mapping::Action action = mapping::Action::kUpsert;
  std::vector<providers::Outcome> outcomes;
};

class Delivery {
 public:
  // `providers` by name; `engine` may be null only in tests that never send.
  Delivery(const mapping::Config& config, Metrics& metrics,
           std::map<std::string, std::unique_ptr<providers::Provider>> providers,
           std::unique_ptr<HttpEngine> engine);
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // The dispatcher's gate: how many operations the next batch for `provider`
  // may carry (0 while its circuit is open, 1 for a half-open probe).
  size_t MaySend(const std::string& provider, Clock::time_point now);
  // Whether the provider's circuit refuses every batch now.
  bool Blocked(const std::string& provider, Clock::time_point now) const;

  void Start(const OutgoingBatch& batch, Clock::time_point now);

  // Applies the answers that arrived and sends what the budgets allow.
  // Returns the batches that finished since the last call.
  std::vector<DeliveredBatch> Pump(Clock::time_point now);
  // Only the batches that finished without waiting for an answer (refused
  // locally by the provider module, or withdrawn) since the last call.
  std::vector<DeliveredBatch> TakeFinished();
  // Providers whose circuit changed state since the last call.
  std::vector<std::string> TakeCircuitChanges();

  // The earliest moment a budget slot or a probe is due.
  std::optional<Clock::time_point> NextDeadline(Clock::time_point now);
  // Waits until an answer arrives or `until` passes.
  void WaitForAnswers(Clock::time_point until);

  // Partition lifecycle (see the header comment).
  void Revoking(const kafka::TopicPartition& tp, Clock::time_point deadline);
  void Withdraw(const std::vector<kafka::TopicPartition>& partitions);
  // Exchanges that touch `tp` (started and not yet handed back by Pump).
  size_t ExchangesTouching(const kafka::TopicPartition& tp) const;
  size_t ActiveExchanges() const { return exchanges_.size(); }

  // Withdraws everything and stops the HTTP engine: nothing is sent after.
  void Stop();

  const CircuitBreaker& Breaker(const std::string& provider) const {
    return breakers_.at(provider);
  }
  // Sets the circuit-state and rate-limit-token gauges of every provider.
  void RefreshGauges(Clock::time_point now);

 private:
  struct Completion {
    uint64_t batch_id = 0;
    size_t index = 0;  // request index within the exchange's current round
    providers::HttpResponse response;
    double seconds = 0;
  };
  struct ActiveExchange {
    std::string provider;
    mapping::Action action = mapping::Action::kUpsert;
    size_t items = 0;
    bool probe = false;
    std::vector<kafka::TopicPartition> partitions;  // sorted
    std::unique_ptr<providers::Exchange> exchange;
    size_t awaiting = 0;  // responses of the current round still to come
    // Requests of the current round waiting for the provider's budget, with
    // their index in the round.
    std::vector<std::pair<size_t, providers::HttpRequest>> unsent;
    // Requests of the current round sent and unanswered: index in the round
    // -> engine id (rounds never overlap, so the index is unique).
    std::map<size_t, uint64_t> in_flight;
    bool answered = false;  // some request of this exchange was answered
    bool withdrawn = false;
  };

  void Advance(uint64_t batch_id, ActiveExchange& active, Clock::time_point now);
  void SendWithinBudget(uint64_t batch_id, ActiveExchange& active, Clock::time_point now);
  void Finish(uint64_t batch_id, ActiveExchange& active, std::vector<providers::Outcome> outcomes);
  void WithdrawExchange(uint64_t batch_id, ActiveExchange& active);
  // The earliest revoke deadline among the exchange's partitions, if any.
  std::optional<Clock::time_point> DeadlineOf(const ActiveExchange& active) const;
  void NoteCircuit(const std::string& provider, CircuitBreaker::State before);

  const mapping::Config& config_;
  Metrics& metrics_;
  std::map<std::string, std::unique_ptr<providers::Provider>> providers_;
  std::map<std::string, RequestBudget> budgets_;
  std::map<std::string, CircuitBreaker> breakers_;
  std::map<uint64_t, ActiveExchange> exchanges_;  // by dispatcher batch id
  std::set<uint64_t> waiting_for_budget_;         // exchanges with unsent requests
  std::map<kafka::TopicPartition, Clock::time_point> revoking_;
  std::vector<DeliveredBatch> finished_;
  std::vector<std::string> circuit_changes_;
  std::unique_ptr<HttpEngine> engine_;

  std::mutex completions_mutex_;
  std::condition_variable completions_cv_;
  std::vector<Completion> completions_;
};

}  // namespace crmsync::worker
