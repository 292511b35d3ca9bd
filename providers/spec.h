// ProviderSpec: everything crmsync knows about one provider besides its HTTP
// contract, in one object per provider (providers/<name>/<name>_spec.cc):
// the config facts the loader applies (mapping::ProviderSpec), the typed
// request options parsed once at config load, the documented request
// limits, the request schema and the factory.
//
// Specs are immutable singletons, safe to use from any thread.
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/config.h"
#include "mapping/provider_spec.h"
#include "providers/provider.h"

namespace crmsync::providers {

class ProviderSpec : public mapping::ProviderSpec {
 public:
  // The request limits the provider documents publicly: the budget the
  // worker sends at unless the config sets rateLimits. Empty where none is
  // documented.
  virtual std::vector<mapping::RateLimit> DocumentedRateLimits() const = 0;

  // The provider for a loaded config entry. Throws mapping::ConfigError for
  // settings it cannot use.
  virtual std::unique_ptr<Provider> Create(const mapping::ProviderConfig& config) const = 0;

  // The embedded JSON schema its request bodies follow
  // ("providers/<name>.request.schema.json", see crmsync_schemas.h).
  std::string RequestSchema() const;
};

// The batch's options as the provider's own type; the provider's defaults
// when the batch carries none.
template <typename Options>
const Options& OptionsOf(const Batch& batch) {
  static const Options kDefaults;
  const auto* options = dynamic_cast<const Options*>(batch.options.get());
  return options != nullptr ? *options : kDefaults;
}

// Reads a request-options object for a spec's ParseOptions. The constructor
// reports every member not in `allowed`; the typed readers report a value of
// the wrong kind at the member's path and then return nullopt, as they do
// for an absent member.
class OptionsReader {
 public:
  OptionsReader(const std::string& path, const rapidjson::Value& options, std::string_view provider,
                std::initializer_list<std::string_view> allowed, mapping::ConfigProblems& problems);

  // The member's value, or nullptr when absent (or the options are no object).
  const rapidjson::Value* Find(const char* name) const;
  std::string PathOf(const char* name) const;
  void Problem(const std::string& path, const std::string& message) {
    problems_.Add(path, message);
  }

  std::optional<bool> Bool(const char* name);
  std::optional<int64_t> PositiveInteger(const char* name);
  std::optional<std::vector<int64_t>> Integers(const char* name);
  // An RFC 3339 date-time, as written.
  std::optional<std::string> DateTime(const char* name);

 private:
  const std::string path_;
  const rapidjson::Value& options_;
  mapping::ConfigProblems& problems_;
};

}  // namespace crmsync::providers
