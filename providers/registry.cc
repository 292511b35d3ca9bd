#include "providers/registry.h"

#include <string>

#include "providers/campaignlark/campaignlark_spec.h"
#include "providers/replify/replify_spec.h"
#include "providers/replyio/replyio_spec.h"
#include "providers/whippy/whippy_spec.h"

namespace crmsync::providers {

const std::vector<const ProviderSpec*>& Specs() {
  static const std::vector<const ProviderSpec*> kSpecs = {&replify::Spec(), &whippy::Spec(),
                                                          &campaignlark::Spec(), &replyio::Spec()};
  return kSpecs;
}

const mapping::ProviderCatalog& Catalog() {
  static const mapping::ProviderCatalog kCatalog(
      std::vector<const mapping::ProviderSpec*>(Specs().begin(), Specs().end()));
  return kCatalog;
}

const ProviderSpec* FindSpec(std::string_view name) {
  for (const ProviderSpec* spec : Specs()) {
    if (spec->Traits().name == name) return spec;
  }
  return nullptr;
}

const std::vector<std::string_view>& KnownProviders() {
  static const std::vector<std::string_view> kNames = [] {
    std::vector<std::string_view> names;
    for (const ProviderSpec* spec : Specs()) names.push_back(spec->Traits().name);
    return names;
  }();
  return kNames;
}

std::vector<mapping::RateLimit> DocumentedRateLimits(std::string_view provider) {
  const ProviderSpec* spec = FindSpec(provider);
  return spec == nullptr ? std::vector<mapping::RateLimit>{} : spec->DocumentedRateLimits();
}

std::unique_ptr<Provider> CreateProvider(const mapping::ProviderConfig& config) {
  if (const ProviderSpec* spec = FindSpec(config.name)) return spec->Create(config);
  throw mapping::ConfigError(
      {"/providers/" + config.name + ": unknown provider (known: " + Catalog().Names() + ")"});
}

}  // namespace crmsync::providers
