// The explicit list of every provider crmsync knows (no static
// self-registration: static libraries would silently drop it).
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "mapping/config.h"
#include "providers/provider.h"

namespace crmsync::providers {

// Names accepted in the config's "providers" object.
const std::vector<std::string_view>& KnownProviders();

// The request limits a provider documents publicly, the default budget
// the worker sends at; empty where none is documented.
std::vector<mapping::RateLimit> DocumentedRateLimits(std::string_view provider);

// Builds the provider named config.name; throws mapping::ConfigError for an
// unknown name.
std::unique_ptr<Provider> CreateProvider(const mapping::ProviderConfig& config);

}  // namespace crmsync::providers
