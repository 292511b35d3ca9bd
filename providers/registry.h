// The explicit list of every provider crmsync knows, as their specs (no
// static self-registration: static libraries would silently drop it). A
// provider's facts live in providers/<name>/; this list only names them.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "mapping/config.h"
#include "mapping/provider_spec.h"
#include "providers/provider.h"
#include "providers/spec.h"

namespace crmsync::providers {

// Every provider's spec, in the order error messages list them.
const std::vector<const ProviderSpec*>& Specs();

// The same specs as the config loader takes them:
// mapping::LoadConfigFromFile(providers::Catalog(), path).
const mapping::ProviderCatalog& Catalog();

// nullptr for a name no provider has.
const ProviderSpec* FindSpec(std::string_view name);

// Names accepted in the config's "providers" object.
const std::vector<std::string_view>& KnownProviders();

// The provider's documented request limits (ProviderSpec::DocumentedRateLimits);
// empty for an unknown name.
std::vector<mapping::RateLimit> DocumentedRateLimits(std::string_view provider);

// Builds the provider named config.name; throws mapping::ConfigError for an
// unknown name.
std::unique_ptr<Provider> CreateProvider(const mapping::ProviderConfig& config);

}  // namespace crmsync::providers
