#include "providers/registry.h"

#include <string>

#include "providers/replify/replify.h"

namespace crmsync::providers {

const std::vector<std::string_view>& KnownProviders() {
  static const std::vector<std::string_view> kNames = {replify::ReplifyProvider::kName};
  return kNames;
}

std::vector<mapping::RateLimit> DocumentedRateLimits(std::string_view provider) {
  using std::chrono::hours;
  using std::chrono::minutes;
  using std::chrono::seconds;
  // Replify documents no limit.
  if (provider == "whippy") return {{10, minutes(1)}};         // list writes are "time consuming"
  if (provider == "campaignlark") return {{100, seconds(1)}};  // per workspace
  if (provider == "replyio") return {{100, minutes(1)}, {3000, hours(1)}};  // per user
  return {};
}

std::unique_ptr<Provider> CreateProvider(const mapping::ProviderConfig& config) {
  if (config.name == replify::ReplifyProvider::kName) {
    return std::make_unique<replify::ReplifyProvider>(config);
  }
  std::string known;
  for (const std::string_view name : KnownProviders()) {
    if (!known.empty()) known += ", ";
    known += name;
  }
  throw mapping::ConfigError(
      {"/providers/" + config.name + ": unknown provider (known: " + known + ")"});
}

}  // namespace crmsync::providers
