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

// Whether an upsert of `provider` with request options `options_json`
// replaces the provider's whole record instead of patching it, so that a
// later such upsert supersedes an earlier one rather than merging into it:
// CampaignLark with "partialUpdate": false (fields, tags and status are all
// replaced, an omitted status becomes SUBSCRIBED).
bool UpsertReplacesRecord(std::string_view provider, std::string_view options_json);

// Builds the provider named config.name; throws mapping::ConfigError for an
// unknown name.
std::unique_ptr<Provider> CreateProvider(const mapping::ProviderConfig& config);

}  // namespace crmsync::providers
