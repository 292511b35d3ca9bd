// StateStore: the worker's per-contact state (mapping::ContactState), kept
// per input partition and keyed like the input ("<externalIdKey>:<value>").
//
// StateBackend is where the states live: MemoryStateBackend keeps them in
// hash maps, RocksDbStateBackend (rocksdb_backend.h) in an embedded RocksDB.
//
// ContactStateStore adds the source of truth: every change is written to a
// compacted changelog topic, partition N of the changelog holding the state
// of input partition N, and a partition's state is restored from it when the
// partition is assigned. A write tied to an input message (`origin`) comes
// back from Poll() once the broker acknowledged it, so the worker can hold
// that message's offset until then. A failed write is retried with the
// contact's current state (a later write never gets overtaken by an older
// one). Not thread-safe: the loop thread calls every method.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "mapping/config.h"
#include "mapping/contact_state.h"
#include "worker/dispatcher.h"
#include "worker/kafka/changelog.h"
#include "worker/kafka/producer.h"

namespace crmsync::worker {

class StateBackend {
 public:
  virtual ~StateBackend() = default;
  virtual std::optional<mapping::ContactState> Get(const kafka::TopicPartition& tp,
                                                   const std::string& key) const = 0;
  virtual void Put(const kafka::TopicPartition& tp, const std::string& key,
                   mapping::ContactState state) = 0;
  virtual void Erase(const kafka::TopicPartition& tp, const std::string& key) = 0;
  // Forgets a partition's states (revoked or lost).
  virtual void Drop(const kafka::TopicPartition& tp) = 0;
  virtual size_t Contacts(const kafka::TopicPartition& tp) const = 0;
};

class MemoryStateBackend final : public StateBackend {
 public:
  std::optional<mapping::ContactState> Get(const kafka::TopicPartition& tp,
                                           const std::string& key) const override;
  void Put(const kafka::TopicPartition& tp, const std::string& key,
           mapping::ContactState state) override;
  void Erase(const kafka::TopicPartition& tp, const std::string& key) override;
  void Drop(const kafka::TopicPartition& tp) override;
  size_t Contacts(const kafka::TopicPartition& tp) const override;

 private:
  std::map<kafka::TopicPartition, std::unordered_map<std::string, mapping::ContactState>>
      partitions_;
};

struct PartitionRestore {
  kafka::RestoreStats stats;
  size_t contacts = 0;    // states held after the restore
  size_t unreadable = 0;  // records that were not state records (skipped)
};

class ContactStateStore {
 public:
  // Creates the changelog producer and reader; EnsureTopics() checks the
  // changelog topics.
  ContactStateStore(const mapping::Config& config, std::unique_ptr<StateBackend> backend);
  ~ContactStateStore();
  ContactStateStore(const ContactStateStore&) = delete;
  ContactStateStore& operator=(const ContactStateStore&) = delete;

  // Start-up: every input topic's changelog exists with enough partitions
  // (created when state.createTopics). Throws std::runtime_error otherwise.
  void EnsureTopics();

  // Reads the partition's changelog into the backend (after dropping what
  // it held). Throws std::runtime_error when the changelog cannot be read.
  PartitionRestore Restore(const kafka::TopicPartition& tp);
  void Drop(const kafka::TopicPartition& tp);

  std::optional<mapping::ContactState> Get(const kafka::TopicPartition& tp,
                                           const std::string& key) const {
    return backend_->Get(tp, key);
  }
  // Stores the contact's new state (nullopt: erased, written as a
  // tombstone) and writes it to the changelog.
  void Apply(const kafka::TopicPartition& tp, const std::string& key,
             std::optional<mapping::ContactState> state, std::optional<MessageRef> origin);

  // Serves delivery reports and due retries; returns the origins whose
  // writes the broker acknowledged since the last call.
  std::vector<MessageRef> Poll(Clock::time_point now);
  size_t InFlight() const { return in_flight_ + retries_.size(); }
  std::optional<Clock::time_point> NextRetry() const;
  size_t Contacts(const kafka::TopicPartition& tp) const { return backend_->Contacts(tp); }

 private:
  struct Write {
    kafka::TopicPartition tp;
    std::string key;
    std::optional<MessageRef> origin;
    int attempts = 0;
  };
  void Send(std::shared_ptr<Write> write);

  const mapping::Config& config_;
  std::unique_ptr<StateBackend> backend_;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<kafka::ChangelogReader> reader_;
  size_t in_flight_ = 0;
  std::vector<MessageRef> acked_;
  std::vector<std::shared_ptr<Write>> failed_;  // filled by delivery reports
  std::multimap<Clock::time_point, std::shared_ptr<Write>> retries_;
  std::set<kafka::TopicPartition> owned_;  // restored and not dropped since
};

}  // namespace crmsync::worker
