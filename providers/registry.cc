#include "providers/registry.h"

#include <string>
#include <variant>

#include "providers/campaignlark/campaignlark.h"
#include "providers/replify/replify.h"
#include "providers/replyio/replyio.h"
#include "providers/whippy/whippy.h"

namespace crmsync::providers {

const std::vector<std::string_view>& KnownProviders() {
  static const std::vector<std::string_view> kNames = {
      replify::ReplifyProvider::kName, campaignlark::CampaignLarkProvider::kName,
      replyio::ReplyIoProvider::kName, whippy::WhippyProvider::kName};
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

bool UpsertReplacesRecord(std::string_view provider, std::string_view options_json) {
  if (provider != campaignlark::CampaignLarkProvider::kName) return false;
  const auto parsed = campaignlark::CampaignLarkProvider::ParseOptions(options_json);
  const auto* options = std::get_if<campaignlark::BatchOptions>(&parsed);
  return options != nullptr && !options->partial_update;
}

std::unique_ptr<Provider> CreateProvider(const mapping::ProviderConfig& config) {
  if (config.name == replify::ReplifyProvider::kName) {
    return std::make_unique<replify::ReplifyProvider>(config);
  }
  if (config.name == campaignlark::CampaignLarkProvider::kName) {
    return std::make_unique<campaignlark::CampaignLarkProvider>(config);
  }
  if (config.name == replyio::ReplyIoProvider::kName) {
    return std::make_unique<replyio::ReplyIoProvider>(config);
  }
  if (config.name == whippy::WhippyProvider::kName) {
    return std::make_unique<whippy::WhippyProvider>(config);
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
