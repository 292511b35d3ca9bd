// Whippy's spec: contact lists by listId, actions add (default), remove and
// overwrite, contacts need a phone, request options opt_in_to and
// opt_in_to_all_channels, stopOutreach = remove from the list. Whippy
// allows 10 list writes a minute, so batches default to 4000 contacts (one
// request's worth, WhippyProvider::kMaxContactsPerRequest).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "mapping/provider_options.h"
#include "providers/spec.h"

namespace crmsync::providers::whippy {

// One opt_in_to entry: {"id": channel id} or {"phone": channel phone}.
struct OptIn {
  std::string key;  // "id" or "phone"
  std::string value;
};

// A rule action's "options".
struct WhippyOptions final : mapping::ProviderOptions {
  std::vector<OptIn> opt_in_to;                // 1..1000 entries, or none
  std::optional<bool> opt_in_to_all_channels;  // absent: Whippy's default (true)
};

// The "listMethod" setting of a Whippy config entry, upper-cased: the HTTP
// method of the list endpoint, which Whippy's reference page does not show
// (inferred default "PUT"; "POST" or "PATCH" accepted, any case). Throws
// mapping::ConfigError naming /providers/<name>/listMethod otherwise.
std::string ListMethodSetting(const mapping::ProviderConfig& config);

const ProviderSpec& Spec();

}  // namespace crmsync::providers::whippy
