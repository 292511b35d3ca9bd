#include "worker/kafka/producer.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "worker/kafka/conf.h"
#include "worker/kafka/handles.h"

namespace crmsync::kafka {
namespace {

void LogFromKafka(const rd_kafka_t*, int level, const char* facility, const char* message) {
  // The producers (dead letters, contact state) share kafka.properties with
  // the consumer, for the connection and security settings; librdkafka
  // ignores the consumer's own ones there, which is what is meant.
  if (std::strstr(message, "is a consumer property and will be ignored by this producer") !=
      nullptr) {
    level = 7;
  }
  ForwardLog("kafka producer", level, facility, message);
}

// How long Produce() keeps retrying a full local queue before giving up.
constexpr auto kQueueFullPatience = std::chrono::seconds(30);
// How long the destructor waits for outstanding messages.
constexpr int kCloseFlushMs = 5000;

}  // namespace

// librdkafka's delivery report, with access to the producer (the opaque).
struct Producer::Callbacks {
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque);
};

Producer::Producer(const std::string& bootstrap_servers,
                   const std::map<std::string, std::string>& properties) {
  ConfPtr conf(rd_kafka_conf_new());
  // Defaults a caller may override: a short linger batches bursts, and lz4
  // keeps bulk test data under the mock broker's per-partition size cap.
  SetProperty(conf.get(), "linger.ms", "5");
  SetProperty(conf.get(), "compression.type", "lz4");
  // Durable writes (the dead-letter topic is the only copy of what it holds):
  // every in-sync replica has a record before it counts as delivered, and
  // retries neither duplicate nor reorder records.
  SetProperty(conf.get(), "acks", "all");
  SetProperty(conf.get(), "enable.idempotence", "true");
  for (const auto& [name, value] : properties) {
    SetProperty(conf.get(), name, value, "producer: ");
  }
  SetProperty(conf.get(), "bootstrap.servers", bootstrap_servers, "producer: ");
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Callbacks::OnDelivery);
  rd_kafka_conf_set_log_cb(conf.get(), &LogFromKafka);

  handle_ = NewClient(RD_KAFKA_PRODUCER, std::move(conf), "producer: ");
}

Producer::~Producer() {
  rd_kafka_t* rk = handle_.get();
  if (rd_kafka_flush(rk, kCloseFlushMs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("producer closing with {} undelivered message(s)", rd_kafka_outq_len(rk));
    // Without a purge rd_kafka_destroy() would keep retrying them until
    // message.timeout.ms.
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk, 0);
  }
}

void Producer::Produce(const std::string& topic, std::string_view key, std::string_view value,
                       int32_t partition) {
  rd_kafka_t* rk = handle_.get();
  const auto give_up = std::chrono::steady_clock::now() + kQueueFullPatience;
  for (;;) {
    // RD_KAFKA_MSG_F_COPY: the caller's buffers need not outlive this call.
    // An empty key is sent as no key, so the partitioner spreads such messages.
    const rd_kafka_resp_err_t err =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                          RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || std::chrono::steady_clock::now() >= give_up) {
      throw std::runtime_error("producer: cannot produce to '" + topic +
                               "': " + rd_kafka_err2name(err));
    }
    // Serving delivery reports is what frees room in the queue.
    rd_kafka_poll(rk, 100);
  }
  // Delivery reports run only from rd_kafka_poll(); without this they would
  // pile up until Flush().
  rd_kafka_poll(rk, 0);
}

void Producer::ProduceRecord(const std::string& topic, std::string_view key, std::string_view value,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             DeliveryCallback on_delivery, int32_t partition) {
  rd_kafka_t* rk = handle_.get();
  auto callback = std::make_unique<DeliveryCallback>(std::move(on_delivery));
  const auto give_up = std::chrono::steady_clock::now() + kQueueFullPatience;
  for (;;) {
    HeadersPtr list(rd_kafka_headers_new(headers.size()));
    for (const auto& [name, text] : headers) {
      rd_kafka_header_add(list.get(), name.data(), static_cast<ssize_t>(name.size()), text.data(),
                          static_cast<ssize_t>(text.size()));
    }
    // On success the message owns the headers; the callback travels as the
    // message's opaque and is freed by OnDelivery.
    const rd_kafka_resp_err_t err =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                          RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_HEADERS(list.get()), RD_KAFKA_V_OPAQUE(callback.get()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      list.release();
      callback.release();
      break;
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || std::chrono::steady_clock::now() >= give_up) {
      throw std::runtime_error("producer: cannot produce to '" + topic +
                               "': " + rd_kafka_err2name(err));
    }
    rd_kafka_poll(rk, 100);
  }
  rd_kafka_poll(rk, 0);
}

void Producer::Poll() { rd_kafka_poll(handle_.get(), 0); }

void Producer::Flush(std::chrono::milliseconds timeout) {
  rd_kafka_t* rk = handle_.get();
  const rd_kafka_resp_err_t err = rd_kafka_flush(rk, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("producer: " + std::to_string(rd_kafka_outq_len(rk)) +
                             " message(s) still undelivered after " +
                             std::to_string(timeout.count()) + " ms (" + rd_kafka_err2name(err) +
                             ")");
  }
  // Failures are reported once, by the Flush() that follows them, so that a
  // caller may go on producing after handling them.
  const uint64_t failed = failed_.exchange(0);
  if (failed == 0) return;
  std::string first_error;
  {
    std::lock_guard lock(error_mu_);
    first_error.swap(first_error_);
  }
  throw std::runtime_error("producer: " + std::to_string(failed) +
                           " message(s) failed delivery; first error: " + first_error);
}

void Producer::Callbacks::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  if (msg->_private != nullptr) {
    std::unique_ptr<DeliveryCallback> callback(static_cast<DeliveryCallback*>(msg->_private));
    // The callback reports this record's fate; Flush() does not throw for it.
    const bool delivered = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (delivered) self->delivered_.fetch_add(1);
    (*callback)(delivered, delivered ? std::string()
                                     : std::string(rd_kafka_err2name(msg->err)) + ": " +
                                           rd_kafka_message_errstr(msg));
    return;
  }
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->delivered_.fetch_add(1);
    return;
  }
  {
    std::lock_guard lock(self->error_mu_);
    if (self->first_error_.empty()) {
      self->first_error_ =
          std::string(rd_kafka_err2name(msg->err)) + ": " + rd_kafka_message_errstr(msg);
    }
  }
  self->failed_.fetch_add(1);
}

}  // namespace crmsync::kafka
