#include "providers/registry.h"

#include <string>

#include "providers/replify/replify.h"

namespace crmsync::providers {

const std::vector<std::string_view>& KnownProviders() {
  static const std::vector<std::string_view> kNames = {replify::ReplifyProvider::kName};
  return kNames;
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
