#include "worker/kafka/consumer.h"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "worker/kafka/conf.h"
#include "worker/kafka/handles.h"

namespace crmsync::kafka {
namespace {

std::vector<TopicPartition> ToVector(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  out.reserve(list->cnt);
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

TopicPartitionListPtr MakePartitionList(const std::vector<TopicPartition>& partitions) {
  TopicPartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  return list;
}

TopicPartitionListPtr MakeOffsetList(
    const std::vector<std::pair<TopicPartition, int64_t>>& offsets) {
  TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
  }
  return list;
}

// The eager protocol's (un)assignment; a failure leaves the previous one.
void Assign(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* partitions) {
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, partitions)) {
    spdlog::error("kafka {}: {}", partitions != nullptr ? "assign" : "unassign",
                  rd_kafka_err2str(err));
  }
}

}  // namespace

// librdkafka's callbacks, with access to the consumer they serve (the opaque).
struct Consumer::Callbacks {
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void OnCommit(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* offsets, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static int OnStatistics(rd_kafka_t* rk, char* json, size_t json_len, void* opaque);
  static void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* message);
};

// librdkafka 2.0.2 resets a position it cannot fetch from (OFFSET_OUT_OF_RANGE
// after retention, a recreated topic) in rd_kafka_offset_reset(), which logs
// "<topic> [<partition>]: offset reset (at offset ...) to ...: <reason>" with
// facility OFFSET at LOG_WARNING; resets without an error (no committed
// offset yet) are only debug-logged. That warning is the only signal: no
// error event reaches the application unless auto.offset.reset=error.
void Consumer::Callbacks::OnLog(const rd_kafka_t* rk, int level, const char* facility,
                                const char* message) {
  if (level <= 4 && std::strcmp(facility, "OFFSET") == 0 &&
      std::strstr(message, "]: offset reset") != nullptr) {
    std::string_view text(message);
    // librdkafka prefixes the thread: "[thrd:main]: <topic> [<partition>]: ...".
    if (text.rfind("[thrd:", 0) == 0 && text.find("]: ") != std::string_view::npos) {
      text.remove_prefix(text.find("]: ") + 3);
    }
    const size_t open = text.find(" [");
    const size_t close = text.find("]:", open);
    TopicPartition tp;
    if (open != std::string_view::npos && close != std::string_view::npos) {
      tp.topic = std::string(text.substr(0, open));
      tp.partition = static_cast<int32_t>(
          std::strtol(std::string(text.substr(open + 2, close - open - 2)).c_str(), nullptr, 10));
    }
    spdlog::warn(
        "OFFSET RESET on {}: the position to fetch from is no longer on the broker (retention "
        "deleted it, or the topic was recreated); messages were skipped or will be replayed. "
        "librdkafka: {}",
        tp.ToString(), message);
    auto* self = static_cast<Consumer*>(rd_kafka_opaque(rk));
    if (self != nullptr && self->on_offset_reset_) self->on_offset_reset_(tp, message);
    return;
  }
  ForwardLog("kafka", level, facility, message);
}

// librdkafka 2.0.2 stops fetching a partition once the consumer's queue
// holds queued.min.messages messages or queued.max.messages.kbytes (each
// partition's queue forwards to the consumer's, and both checks follow the
// forward), and decides again only when the partition's broker thread wakes:
// for a request to send, an answer, or after up to a second
// (rd_kafka_max_block_ms). A worker that drains its prefetch sooner idles
// until then: a lagging 32-partition group on the mock cluster had its
// partitions stopped for 0.9 s at a time, the last part of it with an empty
// queue. (2.4.0's fetch.queue.backoff.ms makes that wait configurable.) Any
// request for a leader wakes its broker thread, so once the queue has
// drained below half the bound the waker asks the leaders of the assigned
// partitions for their end offsets, whose answer nobody needs; it does so
// from a thread of its own, so that the poll loop never waits for a broker.
class Consumer::FetchWaker {
 public:
  explicit FetchWaker(rd_kafka_t* rk) : rk_(rk), thread_([this] { Run(); }) {}
  FetchWaker(const FetchWaker&) = delete;
  FetchWaker& operator=(const FetchWaker&) = delete;
  ~FetchWaker() { Stop(); }

  void Wake() {
    {
      std::lock_guard lock(mutex_);
      wanted_ = true;
    }
    cv_.notify_one();
  }
  // Returns once no request of the waker is outstanding.
  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static constexpr int kTimeoutMs = 500;

  void Run() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [this] { return wanted_ || stopping_; });
      if (stopping_) return;
      wanted_ = false;
      lock.unlock();
      AskEndOffsets();
      lock.lock();
    }
  }
  void AskEndOffsets() {
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(rk_, &raw) != RD_KAFKA_RESP_ERR_NO_ERROR || raw == nullptr) return;
    TopicPartitionListPtr list(raw);
    if (list->cnt == 0) return;
    for (int i = 0; i < list->cnt; ++i) list->elems[i].offset = RD_KAFKA_OFFSET_END;
    // The answer does not matter: a leader that did not answer was woken
    // all the same, or is unreachable and has nothing to fetch.
    static_cast<void>(rd_kafka_offsets_for_times(rk_, list.get(), kTimeoutMs));
  }

  rd_kafka_t* rk_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};

namespace {

int64_t IntProperty(const rd_kafka_conf_t* conf, const char* name, int64_t fallback) {
  char value[64];
  size_t size = sizeof(value);
  if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK) return fallback;
  char* end = nullptr;
  const long long parsed = std::strtoll(value, &end, 10);
  return end != value ? parsed : fallback;
}

}  // namespace

Consumer::Consumer(const ConsumerOptions& options, RebalanceListener* listener)
    : listener_(listener), on_offset_reset_(options.on_offset_reset) {
  ConfPtr conf(rd_kafka_conf_new());
  // Defaults a user may override.
  SetProperty(conf.get(), "auto.offset.reset", "earliest");
  SetProperty(conf.get(), "enable.partition.eof", "false");
  SetProperty(conf.get(), "client.id", "crmsync");
  // The prefetch, bounded by bytes. librdkafka stops fetching at
  // queued.min.messages (100,000) or at queued.max.messages.kbytes and,
  // left alone, starts again up to a second later (FetchWaker above). librdkafka
  // checks queued.max.messages.kbytes against the consumer's queue (the
  // partitions' queues forward to it) before it asks for more, 64 MiB by
  // default; what one fetch answer brings is on top of that: up to
  // fetch.max.bytes (50 MB by default) compressed, several times that once
  // decompressed, and up to max.partition.fetch.bytes (1 MB) compressed
  // from each partition. On a real broker a lagging 16-partition group held
  // over 300 MB that way (docs/PERFORMANCE.md, "Against a real broker"). An
  // answer of at most 8 MB, 512 KiB per partition, keeps the fetcher ahead of
  // the worker at a bounded cost whatever the partition count.
  SetProperty(conf.get(), "queued.max.messages.kbytes", "32768");
  SetProperty(conf.get(), "fetch.max.bytes", "8388608");
  SetProperty(conf.get(), "max.partition.fetch.bytes", "524288");
  // Statistics tell BrokerReachable() when a broker is back after an outage
  // that no message or rebalance would reveal (an idle group).
  SetProperty(conf.get(), "statistics.interval.ms", "5000");
  for (const auto& [name, value] : options.properties) {
    SetProperty(conf.get(), name, value);
    if (name == "auto.offset.reset") offset_reset_ = value;
  }
  // Forced after the passthrough properties so that they cannot be overridden:
  // offsets are stored only once every operation of a message (and of all
  // earlier messages) is done, and committed by the worker itself.
  SetProperty(conf.get(), "bootstrap.servers", options.bootstrap_servers);
  SetProperty(conf.get(), "group.id", options.group_id);
  SetProperty(conf.get(), "enable.auto.offset.store", "false");
  SetProperty(conf.get(), "enable.auto.commit", "true");
  SetProperty(conf.get(), "auto.commit.interval.ms",
              std::to_string(std::max<int64_t>(options.commit_interval.count(), 1)));
  SetProperty(conf.get(), "partition.assignment.strategy", "cooperative-sticky");
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &Callbacks::OnRebalance);
  rd_kafka_conf_set_offset_commit_cb(conf.get(), &Callbacks::OnCommit);
  rd_kafka_conf_set_error_cb(conf.get(), &Callbacks::OnError);
  rd_kafka_conf_set_stats_cb(conf.get(), &Callbacks::OnStatistics);
  rd_kafka_conf_set_log_cb(conf.get(), &Callbacks::OnLog);

  queued_min_messages_ = IntProperty(conf.get(), "queued.min.messages", queued_min_messages_);
  queued_max_bytes_ = IntProperty(conf.get(), "queued.max.messages.kbytes", 65536) * 1024;

  handle_ = NewClient(RD_KAFKA_CONSUMER, std::move(conf), "kafka consumer: ");
  rd_kafka_t* rk = handle_.get();
  // Serve the main queue (errors, logs, commit results) from consumer_poll too.
  rd_kafka_poll_set_consumer(rk);
  queue_ = rd_kafka_queue_get_consumer(rk);
  waker_ = std::make_unique<FetchWaker>(rk);

  TopicPartitionListPtr topics(
      rd_kafka_topic_partition_list_new(static_cast<int>(options.topics.size())));
  for (const auto& topic : options.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics.get())) {
    throw std::runtime_error(std::string("kafka subscribe: ") + rd_kafka_err2str(err));
  }
}

Consumer::~Consumer() {
  if (!closed_) Close();
  if (unsafe_to_destroy_) {
    // Destroying it would abort the process (see Close()); the process is
    // shutting down, so the handle and its threads are left to its exit.
    static_cast<void>(handle_.release());
    return;
  }
  if (abandoned_) {
    // Closing did not finish in time: destroying would wait for it again.
    DestroyWithoutClose(std::move(handle_));
  }
}

size_t Consumer::Poll(std::chrono::milliseconds timeout, size_t max_messages,
                      const std::function<void(const Message&)>& handler) {
  size_t handled = 0;
  int wait_ms = static_cast<int>(timeout.count());
  // The queue only grows between polls: its length now is its peak since
  // the last one.
  if (queue_ != nullptr) queued_peak_ = std::max(queued_peak_, rd_kafka_queue_length(queue_));
  while (handled < max_messages) {
    MessagePtr msg(rd_kafka_consumer_poll(handle_.get(), wait_ms));
    wait_ms = 0;  // only the first poll may wait
    if (!msg) break;
    if (msg->err) {
      if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      spdlog::warn("kafka consumer: {} ({})", rd_kafka_message_errstr(msg.get()),
                   rd_kafka_err2name(msg->err));
      continue;
    }
    broker_reachable_ = true;
    Message view;
    view.topic = rd_kafka_topic_name(msg->rkt);
    view.partition = msg->partition;
    view.offset = msg->offset;
    view.key = std::string_view(static_cast<const char*>(msg->key), msg->key_len);
    view.null_payload = msg->payload == nullptr;
    view.payload = std::string_view(static_cast<const char*>(msg->payload), msg->len);
    view.timestamp_ms = rd_kafka_message_timestamp(msg.get(), nullptr);
    bytes_handed_out_ += msg->len + msg->key_len;
    ++messages_handed_out_;
    handler(view);
    ++handled;
  }
  WakeFetcherIfDrained();
  return handled;
}

void Consumer::WakeFetcherIfDrained() {
  if (queue_ == nullptr || !waker_) return;
  const size_t queued = rd_kafka_queue_length(queue_);
  // The bound the fetcher stops at, in messages: queued.min.messages, or
  // queued.max.messages.kbytes in messages of the average size handed out
  // (librdkafka counts a message's key and payload).
  int64_t bound = queued_min_messages_;
  if (messages_handed_out_ > 0 && bytes_handed_out_ >= messages_handed_out_) {
    const auto average = static_cast<int64_t>(bytes_handed_out_ / messages_handed_out_);
    bound = std::min(bound, queued_max_bytes_ / average);
  }
  const auto low = static_cast<size_t>(std::max<int64_t>(bound / 2, 1));
  if (queued_peak_ >= low && queued < low) waker_->Wake();
  queued_peak_ = queued;
}

void Consumer::StoreOffsets(const std::vector<std::pair<TopicPartition, int64_t>>& offsets) {
  if (offsets.empty()) return;
  TopicPartitionListPtr list = MakeOffsetList(offsets);
  if (rd_kafka_resp_err_t err = rd_kafka_offsets_store(handle_.get(), list.get())) {
    // _STATE: the partition was revoked meanwhile; its offsets belong to the
    // next owner now.
    spdlog::debug("kafka offsets_store: {}", rd_kafka_err2str(err));
  }
}

bool Consumer::CommitSync(const std::vector<CommittedOffset>& offsets,
                          std::chrono::milliseconds deadline) {
  if (offsets.empty()) return true;
  TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const CommittedOffset& c : offsets) {
    rd_kafka_topic_partition_t* elem =
        rd_kafka_topic_partition_list_add(list.get(), c.tp.topic.c_str(), c.tp.partition);
    elem->offset = c.offset;
    if (!c.metadata.empty()) {
      // The list frees it (with free()) when it is destroyed.
      elem->metadata = std::malloc(c.metadata.size());
      if (elem->metadata == nullptr) throw std::bad_alloc();
      std::memcpy(elem->metadata, c.metadata.data(), c.metadata.size());
      elem->metadata_size = c.metadata.size();
    }
  }
  // A private queue lets us wait for this commit's result with a deadline
  // instead of rd_kafka_commit(sync), which can block for a socket timeout.
  QueuePtr queue(rd_kafka_queue_new(handle_.get()));
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(handle_.get(), list.get(), queue.get(), nullptr, nullptr);
  if (err) {
    spdlog::warn("kafka commit: {}", rd_kafka_err2str(err));
    return false;
  }
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      spdlog::warn("kafka commit: no answer within {} ms", deadline.count());
      return false;
    }
    EventPtr event(rd_kafka_queue_poll(queue.get(), static_cast<int>(left.count())));
    if (!event || rd_kafka_event_type(event.get()) != RD_KAFKA_EVENT_OFFSET_COMMIT) continue;
    const rd_kafka_resp_err_t result = rd_kafka_event_error(event.get());
    if (result) {
      spdlog::warn("kafka commit: {}", rd_kafka_event_error_string(event.get()));
      return false;
    }
    for (const CommittedOffset& c : offsets) durable_[c.tp] = c.offset;
    KeepMetadata(offsets);
    return true;
  }
}

void Consumer::KeepMetadata(const std::vector<CommittedOffset>& offsets) {
  // librdkafka commits a partition's stored offset again, without metadata,
  // on its timer and when the partition is unassigned (2.0.2 commits the
  // stored offsets of removed partitions whether or not they changed).
  // Forgetting the stored offset keeps the metadata just committed.
  TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const CommittedOffset& c : offsets) {
    if (c.metadata.empty()) continue;
    rd_kafka_topic_partition_list_add(list.get(), c.tp.topic.c_str(), c.tp.partition)->offset =
        RD_KAFKA_OFFSET_INVALID;
  }
  if (list->cnt == 0) return;
  if (rd_kafka_resp_err_t err = rd_kafka_offsets_store(handle_.get(), list.get())) {
    spdlog::debug("kafka offsets_store (forget): {}", rd_kafka_err2str(err));
  }
}

std::vector<TopicPartition> Consumer::Pause(const std::vector<TopicPartition>& partitions) {
  return PauseOrResume(partitions, /*pause=*/true);
}

std::vector<TopicPartition> Consumer::Resume(const std::vector<TopicPartition>& partitions) {
  return PauseOrResume(partitions, /*pause=*/false);
}

std::vector<TopicPartition> Consumer::PauseOrResume(const std::vector<TopicPartition>& partitions,
                                                    bool pause) {
  if (partitions.empty()) return {};
  const char* what = pause ? "pause" : "resume";
  TopicPartitionListPtr list = MakePartitionList(partitions);
  const rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(handle_.get(), list.get())
                                        : rd_kafka_resume_partitions(handle_.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka {} of {} partition(s): {}", what, partitions.size(), rd_kafka_err2str(err));
    return partitions;
  }
  std::vector<TopicPartition> failed;
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& elem = list->elems[i];
    if (elem.err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    failed.push_back({elem.topic, elem.partition});
    spdlog::warn("kafka {} of {}: {}", what, failed.back().ToString(), rd_kafka_err2str(elem.err));
  }
  return failed;
}

std::optional<int64_t> Consumer::HighWatermark(const TopicPartition& tp) const {
  int64_t low = RD_KAFKA_OFFSET_INVALID, high = RD_KAFKA_OFFSET_INVALID;
  if (rd_kafka_get_watermark_offsets(handle_.get(), tp.topic.c_str(), tp.partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      high < 0) {
    return std::nullopt;
  }
  return high;
}

std::optional<int64_t> Consumer::LowWatermark(const TopicPartition& tp) const {
  int64_t low = RD_KAFKA_OFFSET_INVALID, high = RD_KAFKA_OFFSET_INVALID;
  if (rd_kafka_get_watermark_offsets(handle_.get(), tp.topic.c_str(), tp.partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      low < 0) {
    return std::nullopt;
  }
  return low;
}

std::optional<int64_t> Consumer::StartOffset(const TopicPartition& tp,
                                             std::chrono::milliseconds timeout) const {
  const bool earliest =
      offset_reset_ == "earliest" || offset_reset_ == "smallest" || offset_reset_ == "beginning";
  const bool latest =
      offset_reset_ == "latest" || offset_reset_ == "largest" || offset_reset_ == "end";
  if (!earliest && !latest) return std::nullopt;
  int64_t low = RD_KAFKA_OFFSET_INVALID, high = RD_KAFKA_OFFSET_INVALID;
  if (QueryWatermarks(handle_.get(), tp.topic.c_str(), tp.partition, &low, &high,
                      static_cast<int>(timeout.count())) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  const int64_t start = earliest ? low : high;
  if (start < 0) return std::nullopt;
  return start;
}

std::optional<int64_t> Consumer::Position(const TopicPartition& tp) const {
  TopicPartitionListPtr list = MakePartitionList({tp});
  if (rd_kafka_position(handle_.get(), list.get()) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR || list->elems[0].offset < 0) {
    return std::nullopt;
  }
  return list->elems[0].offset;
}

std::vector<TopicPartition> Consumer::Assignment() const {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(handle_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  TopicPartitionListPtr list(raw);
  return ToVector(list.get());
}

std::optional<int64_t> Consumer::DurableCommit(const TopicPartition& tp) const {
  auto it = durable_.find(tp);
  return it == durable_.end() ? std::nullopt : std::optional(it->second);
}

std::optional<std::vector<CommittedOffset>> Consumer::Committed(
    const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) const {
  std::vector<CommittedOffset> out;
  if (partitions.empty()) return out;
  TopicPartitionListPtr list = MakePartitionList(partitions);
  if (rd_kafka_committed(handle_.get(), list.get(), static_cast<int>(timeout.count())) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  for (int i = 0; i < list->cnt; ++i) {
    const auto& elem = list->elems[i];
    if (elem.err == RD_KAFKA_RESP_ERR_NO_ERROR && elem.offset >= 0) {
      CommittedOffset& c = out.emplace_back();
      c.tp = TopicPartition{elem.topic, elem.partition};
      c.offset = elem.offset;
      durable_[c.tp] = c.offset;
      if (elem.metadata != nullptr) {
        c.metadata.assign(static_cast<const char*>(elem.metadata), elem.metadata_size);
      }
    }
  }
  return out;
}

bool Consumer::Close(std::chrono::milliseconds timeout) {
  if (closed_) return true;
  closed_ = true;
  if (waker_) waker_->Stop();
  if (queue_ != nullptr) {
    rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
  }
  rd_kafka_t* rk = handle_.get();
  const auto end = std::chrono::steady_clock::now() + timeout;
  // librdkafka 2.0.2 aborts destroying a cooperative-sticky member whose
  // assignor was chosen (its JoinGroup was answered) but has not run yet
  // (its SyncGroup was not): its issue 4312, fixed in 2.3.0. Such a member
  // is in the middle of its first rebalance, which it is let finish (the
  // assignment may be empty) before it leaves. What the consumer hands out
  // meanwhile is dropped: not processed, its offset never stored.
  if (!assigned_once_ && std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0) {
    spdlog::info("kafka consumer close: waiting for the first rebalance to finish");
    while (!assigned_once_ && std::chrono::steady_clock::now() < end) {
      MessagePtr dropped(rd_kafka_consumer_poll(rk, 100));
    }
    if (!assigned_once_) {
      spdlog::warn(
          "kafka consumer close: the first rebalance did not finish within {} ms; leaving the "
          "group to expire this member",
          timeout.count());
      unsafe_to_destroy_ = true;
      return false;
    }
  }
  // Unsubscribing first revokes the assignment through the rebalance
  // callback before the group sub-system is torn down; closing a member that
  // never had an assignment straight away can trip librdkafka 2.0.2's
  // sticky-assignor state assertion.
  if (rd_kafka_resp_err_t err = rd_kafka_unsubscribe(rk)) {
    spdlog::warn("kafka unsubscribe: {}", rd_kafka_err2str(err));
  }
  // The asynchronous close lets us bound the wait: rebalance callbacks and
  // the final commit are served from our queue until the group is left.
  // The consumer's queue is forwarded to it, so messages fetched but not yet
  // handed out arrive there too. rd_kafka_consume_queue() returns them (and
  // serves the callbacks); they are dropped, their offsets never stored.
  // rd_kafka_queue_poll_callback() cannot serve that queue: librdkafka
  // 2.0.2 asserts on a message there ("res != RD_KAFKA_OP_RES_PASS").
  QueuePtr queue(rd_kafka_queue_new(rk));
  if (ErrorPtr error{rd_kafka_consumer_close_queue(rk, queue.get())}) {
    spdlog::warn("kafka consumer close: {}", rd_kafka_error_string(error.get()));
    return false;
  }
  while (!rd_kafka_consumer_closed(rk)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      spdlog::warn("kafka consumer close: not finished within {} ms; leaving without it",
                   timeout.count());
      abandoned_ = true;
      return false;
    }
    MessagePtr dropped(rd_kafka_consume_queue(
        queue.get(), static_cast<int>(std::min<int64_t>(left.count(), 100))));
  }
  return true;
}

void Consumer::Callbacks::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                      rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS: {
      self->broker_reachable_ = true;  // the group coordinator answered
      self->assigned_once_ = true;
      if (cooperative) {
        if (ErrorPtr error{rd_kafka_incremental_assign(rk, partitions)}) {
          spdlog::error("kafka assign: {}", rd_kafka_error_string(error.get()));
        }
      } else {
        Assign(rk, partitions);
      }
      // After the assignment, so that the listener may pause partitions;
      // no message of theirs is handed out before this callback returns.
      self->listener_->OnAssigned(ToVector(partitions));
      break;
    }
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: {
      self->listener_->OnRevoking(ToVector(partitions), rd_kafka_assignment_lost(rk) != 0);
      if (cooperative) {
        if (ErrorPtr error{rd_kafka_incremental_unassign(rk, partitions)}) {
          spdlog::error("kafka unassign: {}", rd_kafka_error_string(error.get()));
        }
      } else {
        Assign(rk, nullptr);
      }
      break;
    }
    default:
      spdlog::error("kafka rebalance error: {}", rd_kafka_err2str(err));
      Assign(rk, nullptr);
      break;
  }
}

void Consumer::Callbacks::OnCommit(rd_kafka_t*, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  auto* consumer = static_cast<Consumer*>(opaque);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) consumer->broker_reachable_ = true;
  for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
    const rd_kafka_topic_partition_t& elem = offsets->elems[i];
    if (elem.err == RD_KAFKA_RESP_ERR_NO_ERROR && elem.offset >= 0) {
      consumer->durable_[TopicPartition{elem.topic, elem.partition}] = elem.offset;
    }
  }
  // _NO_OFFSET: nothing new to commit. Other failures (e.g. REBALANCE_IN_PROGRESS)
  // are retried by the next periodic commit; they never lose data.
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    spdlog::warn("kafka commit failed: {}", rd_kafka_err2str(err));
  }
}

void Consumer::Callbacks::OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    static_cast<Consumer*>(opaque)->broker_reachable_ = false;
  }
  // Most errors are transient and retried by librdkafka itself.
  spdlog::warn("kafka consumer: {} ({})", reason, rd_kafka_err2name(code));
}

int Consumer::Callbacks::OnStatistics(rd_kafka_t*, char* json, size_t json_len, void* opaque) {
  rapidjson::Document stats;
  stats.Parse(json, json_len);
  if (stats.HasParseError() || !stats.IsObject()) return 0;
  auto brokers = stats.FindMember("brokers");
  if (brokers == stats.MemberEnd() || !brokers->value.IsObject()) return 0;
  bool up = false;
  for (const auto& broker : brokers->value.GetObject()) {
    if (!broker.value.IsObject()) continue;
    auto state = broker.value.FindMember("state");
    if (state != broker.value.MemberEnd() && state->value.IsString() &&
        std::strcmp(state->value.GetString(), "UP") == 0) {
      up = true;
      break;
    }
  }
  static_cast<Consumer*>(opaque)->broker_reachable_ = up;
  return 0;  // librdkafka frees the JSON
}

}  // namespace crmsync::kafka
