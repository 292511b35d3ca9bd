#include "sim/provider_sim.h"

#include <algorithm>

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
