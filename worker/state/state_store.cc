#include "worker/state/state_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace crmsync::worker {
namespace {

constexpr std::chrono::milliseconds kRetryBackoff{200};
constexpr std::chrono::milliseconds kMaxRetryBackoff{5000};

}  // namespace

std::optional<mapping::ContactState> MemoryStateBackend::Get(const kafka::TopicPartition& tp,
                                                             const std::string& key) const {
  auto partition = partitions_.find(tp);
  if (partition == partitions_.end()) return std::nullopt;
  auto it = partition->second.find(key);
  if (it == partition->second.end()) return std::nullopt;
  return it->second;
}

void MemoryStateBackend::Put(const kafka::TopicPartition& tp, const std::string& key,
                             mapping::ContactState state) {
  partitions_[tp].insert_or_assign(key, std::move(state));
}

void MemoryStateBackend::Erase(const kafka::TopicPartition& tp, const std::string& key) {
  auto partition = partitions_.find(tp);
  if (partition != partitions_.end()) partition->second.erase(key);
}

void MemoryStateBackend::Drop(const kafka::TopicPartition& tp) { partitions_.erase(tp); }

size_t MemoryStateBackend::Contacts(const kafka::TopicPartition& tp) const {
  auto partition = partitions_.find(tp);
  return partition == partitions_.end() ? 0 : partition->second.size();
}

ContactStateStore::ContactStateStore(const mapping::Config& config,
                                     std::unique_ptr<StateBackend> backend)
    : config_(config),
      backend_(std::move(backend)),
      producer_(std::make_unique<kafka::Producer>(config.kafka.bootstrap_servers,
                                                  config.kafka.properties)),
      reader_(std::make_unique<kafka::ChangelogReader>(config.kafka.bootstrap_servers,
                                                       config.kafka.properties)) {}

ContactStateStore::~ContactStateStore() = default;

void ContactStateStore::EnsureTopics() {
  for (const std::string& topic : config_.kafka.topics) {
    kafka::EnsureChangelogTopic(config_.kafka.bootstrap_servers, config_.kafka.properties, topic,
                                config_.state.ChangelogTopic(topic), config_.state.create_topics,
                                config_.state.replication_factor);
  }
}

PartitionRestore ContactStateStore::Restore(const kafka::TopicPartition& tp) {
  backend_->Drop(tp);
  PartitionRestore out;
  out.stats = reader_->Read(
      config_.state.ChangelogTopic(tp.topic), tp.partition,
      [&](std::string_view key, std::string_view value, bool null_value) {
        const std::string contact(key);
        if (null_value) {
          backend_->Erase(tp, contact);
          return;
        }
        std::string error;
        std::optional<mapping::ContactState> state = mapping::StateFromJson(value, error);
        if (!state) {
          ++out.unreadable;
          return;
        }
        backend_->Put(tp, contact, std::move(*state));
      },
      config_.state.restore_timeout);
  out.contacts = backend_->Contacts(tp);
  owned_.insert(tp);
  if (out.unreadable > 0) {
    spdlog::warn("state changelog of {}: {} record(s) are not state records and were skipped",
                 tp.ToString(), out.unreadable);
  }
  return out;
}

void ContactStateStore::Drop(const kafka::TopicPartition& tp) {
  backend_->Drop(tp);
  owned_.erase(tp);
  for (auto it = retries_.begin(); it != retries_.end();) {
    it = it->second->tp == tp ? retries_.erase(it) : std::next(it);
  }
}

void ContactStateStore::Apply(const kafka::TopicPartition& tp, const std::string& key,
                              std::optional<mapping::ContactState> state,
                              std::optional<MessageRef> origin) {
  if (state) {
    backend_->Put(tp, key, std::move(*state));
  } else {
    backend_->Erase(tp, key);
  }
  Send(std::make_shared<Write>(Write{tp, key, std::move(origin), 0}));
}

void ContactStateStore::Send(std::shared_ptr<Write> write) {
  ++write->attempts;
  // Always the contact's current state: a retried write carries whatever
  // later writes stored too, so the changelog's last record per key is the
  // current state.
  const std::optional<mapping::ContactState> current = backend_->Get(write->tp, write->key);
  const std::string value = current ? mapping::StateToJson(*current) : std::string();
  const std::string_view view = current ? std::string_view(value) : std::string_view();
  ++in_flight_;
  try {
    producer_->ProduceRecord(
        config_.state.ChangelogTopic(write->tp.topic), write->key, view, {},
        [this, write](bool delivered, const std::string& error) {
          --in_flight_;
          if (delivered) {
            if (write->origin) acked_.push_back(*write->origin);
            return;
          }
          spdlog::warn("state changelog write for {} failed (attempt {}): {}", write->tp.ToString(),
                       write->attempts, error);
          failed_.push_back(write);
        },
        write->tp.partition);
  } catch (const std::exception& e) {
    --in_flight_;
    spdlog::warn("state changelog write for {} refused (attempt {}): {}", write->tp.ToString(),
                 write->attempts, e.what());
    failed_.push_back(write);
  }
}

std::vector<MessageRef> ContactStateStore::Poll(Clock::time_point now) {
  producer_->Poll();
  for (auto& write : failed_) {
    // The partition's next owner restores whatever the changelog has.
    if (owned_.count(write->tp) == 0) continue;
    const auto backoff =
        std::min(kMaxRetryBackoff, kRetryBackoff * (1 << std::min(write->attempts, 5)));
    retries_.emplace(now + backoff, std::move(write));
  }
  failed_.clear();
  while (!retries_.empty() && retries_.begin()->first <= now) {
    std::shared_ptr<Write> write = std::move(retries_.begin()->second);
    retries_.erase(retries_.begin());
    Send(std::move(write));
  }
  std::vector<MessageRef> out;
  out.swap(acked_);
  return out;
}

std::optional<Clock::time_point> ContactStateStore::NextRetry() const {
  if (retries_.empty()) return std::nullopt;
  return retries_.begin()->first;
}

}  // namespace crmsync::worker
