#include "worker/dead_letter_writer.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <utility>

namespace crmsync::worker {
namespace {

// librdkafka's default message.max.bytes; the broker's default
// max.message.bytes (1048588) is above it.
constexpr size_t kDefaultMessageMaxBytes = 1000000;
// Room for the record's framing and the headers Fit() adds.
constexpr size_t kRecordOverhead = 1024;
// How much of an oversized value the record keeps.
constexpr size_t kValuePrefix = 1024;
constexpr std::chrono::milliseconds kFirstBackoff{200};
constexpr std::chrono::milliseconds kMaxBackoff{30000};

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) return "";
  std::string hex;
  hex.reserve(size * 2);
  char byte[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(byte, sizeof(byte), "%02x", digest[i]);
    hex.append(byte, 2);
  }
  return hex;
}

size_t RecordSize(const std::string& key, const std::string& value,
                  const DeadLetterWriter::Headers& headers) {
  size_t size = key.size() + value.size();
  for (const auto& [name, text] : headers) size += name.size() + text.size() + 8;
  return size;
}

std::map<std::string, std::string> DeadLetterProperties(std::map<std::string, std::string> user) {
  // A dead letter stands in for a message whose offset is committed after
  // it: it must survive a broker failure and must not be written twice.
  user["acks"] = "all";
  user["enable.idempotence"] = "true";
  return user;
}

}  // namespace

DeadLetterWriter::DeadLetterWriter(std::string topic, const std::string& bootstrap_servers,
                                   std::map<std::string, std::string> properties)
    : topic_(std::move(topic)) {
  size_t max_bytes = kDefaultMessageMaxBytes;
  if (auto it = properties.find("message.max.bytes"); it != properties.end()) {
    try {
      max_bytes = static_cast<size_t>(std::stoull(it->second));
    } catch (const std::exception&) {
      // librdkafka rejects the value itself, below.
    }
  }
  record_limit_ = max_bytes > 2 * kRecordOverhead ? max_bytes - kRecordOverhead : max_bytes / 2;
  producer_ = std::make_unique<kafka::Producer>(bootstrap_servers,
                                                DeadLetterProperties(std::move(properties)));
}

DeadLetterWriter::~DeadLetterWriter() = default;

void DeadLetterWriter::Fit(std::string& key, std::string& value, Headers& headers, size_t limit) {
  if (RecordSize(key, value, headers) <= limit) return;
  headers.emplace_back("crmsync.value.truncated", "true");
  headers.emplace_back("crmsync.value.bytes", std::to_string(value.size()));
  headers.emplace_back("crmsync.value.sha256", Sha256Hex(value));
  value.resize(std::min(value.size(), kValuePrefix));
  if (RecordSize(key, value, headers) > limit) {
    // Only a key near the limit itself gets here; keep what fits of it.
    headers.emplace_back("crmsync.key.bytes", std::to_string(key.size()));
    key.resize(std::min(key.size(), kValuePrefix));
  }
}

void DeadLetterWriter::Write(const MessageRef& origin, std::string_view key, std::string_view value,
                             Headers headers, const char* kind) {
  auto record = std::make_shared<Record>();
  record->origin = origin;
  record->key = std::string(key);
  record->value = std::string(value);
  record->headers = std::move(headers);
  record->kind = kind;
  Fit(record->key, record->value, record->headers, record_limit_);
  Send(std::move(record));
}

void DeadLetterWriter::Send(std::shared_ptr<Record> record) {
  ++record->attempts;
  ++in_flight_;
  try {
    producer_->ProduceRecord(topic_, record->key, record->value, record->headers,
                             [this, record](bool delivered, const std::string& error) {
                               --in_flight_;
                               if (delivered) {
                                 written_.push_back(Written{record->origin, record->kind});
                                 return;
                               }
                               spdlog::error("dead-letter write for {}@{} failed ({}); retrying",
                                             record->origin.tp.ToString(), record->origin.offset,
                                             error);
                               if (error.find("MSG_SIZE_TOO_LARGE") != std::string::npos) {
                                 // The topic's limit is below the producer's.
                                 Fit(record->key, record->value, record->headers, kValuePrefix * 4);
                               }
                               failed_.push_back(record);
                             });
  } catch (const std::exception& e) {
    // Refused outright (a full local queue for 30 s, or a size limit).
    --in_flight_;
    spdlog::error("dead-letter write for {}@{} refused ({}); retrying",
                  record->origin.tp.ToString(), record->origin.offset, e.what());
    if (std::string_view(e.what()).find("MSG_SIZE_TOO_LARGE") != std::string_view::npos) {
      Fit(record->key, record->value, record->headers, kValuePrefix * 4);
    }
    failed_.push_back(std::move(record));
  }
}

std::vector<DeadLetterWriter::Written> DeadLetterWriter::Poll(Clock::time_point now) {
  producer_->Poll();
  for (auto& record : failed_) {
    const int exponent = std::min(record->attempts - 1, 10);
    const auto backoff =
        std::min<std::chrono::milliseconds>(kFirstBackoff * (1 << exponent), kMaxBackoff);
    retries_.emplace(now + backoff, std::move(record));
  }
  failed_.clear();
  while (!retries_.empty() && retries_.begin()->first <= now) {
    std::shared_ptr<Record> record = std::move(retries_.begin()->second);
    retries_.erase(retries_.begin());
    Send(std::move(record));
  }
  std::vector<Written> written;
  written.swap(written_);
  return written;
}

std::optional<Clock::time_point> DeadLetterWriter::NextRetry() const {
  if (!failed_.empty()) return Clock::now();
  if (retries_.empty()) return std::nullopt;
  return retries_.begin()->first;
}

void DeadLetterWriter::DropPartition(const kafka::TopicPartition& tp) {
  std::erase_if(retries_, [&tp](const auto& entry) { return entry.second->origin.tp == tp; });
  std::erase_if(failed_, [&tp](const auto& record) { return record->origin.tp == tp; });
}

}  // namespace crmsync::worker
