#include "sim/provider_sim.h"

#include <algorithm>
#include <cctype>

namespace crmsync::sim {

SimReply MessageReply(int status, std::string_view message) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("message");
  writer.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  writer.EndObject();
  return SimReply{status, std::string(buffer.GetString(), buffer.GetSize())};
}

void SendReply(httplib::Response& res, const SimReply& reply) {
  res.status = reply.status;
  if (reply.retry_after_seconds) {
    res.set_header("Retry-After", std::to_string(*reply.retry_after_seconds));
  }
  res.set_content(reply.body,
                  reply.content_type.empty() ? "application/json" : reply.content_type.c_str());
}

void WriteKey(JsonWriter& writer, std::string_view key) {
  writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void WriteString(JsonWriter& writer, std::string_view key, std::string_view value) {
  WriteKey(writer, key);
  writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsUuid(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? id[i] != '-' : std::isxdigit(static_cast<unsigned char>(id[i])) == 0) return false;
  }
  return true;
}

std::string BearerToken(const httplib::Request& req) {
  const std::string header = req.get_header_value("Authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() || AsciiLower(header.substr(0, kScheme.size())) != kScheme) {
    return "";
  }
  size_t start = kScheme.size();
  while (start < header.size() && header[start] == ' ') ++start;
  return header.substr(start);
}

SimReply RefusalReply(Refusal refusal, const Knobs& knobs,
                      SimReply (*error_reply)(int status, std::string_view text),
                      const RefusalTexts& texts) {
  switch (refusal) {
    case Refusal::kUnauthorized:
      return error_reply(401, texts.unauthorized);
    case Refusal::kInjected500:
      return error_reply(500, texts.internal_error);
    case Refusal::kInjected503:
      return error_reply(503, texts.unavailable);
    case Refusal::kThrottled: {
      SimReply reply = error_reply(429, texts.throttled);
      reply.retry_after_seconds = knobs.throttle_retry_after_seconds;
      return reply;
    }
    case Refusal::kTimedOut:
      return error_reply(504, texts.timed_out);
  }
  return error_reply(500, texts.internal_error);
}

bool WindowLimiter::TryAcquire(std::chrono::steady_clock::time_point now, double time_scale,
                               std::chrono::milliseconds* retry_after) {
  const auto window = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      window_ / std::max(time_scale, 1e-6));
  while (!sent_.empty() && sent_.front() + window <= now) sent_.pop_front();
  if (static_cast<int>(sent_.size()) < limit_) {
    sent_.push_back(now);
    return true;
  }
  if (retry_after != nullptr) {
    *retry_after = std::chrono::ceil<std::chrono::milliseconds>(sent_.front() + window - now);
  }
  return false;
}

}  // namespace crmsync::sim
