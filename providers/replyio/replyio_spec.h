// Reply.io's spec: sequences by integer sequenceId, actions enroll (default)
// and unenroll, contacts need an email, enroll options removeFromExisting,
// startStepId, ignoreStepDelay and startFrom, stopOutreach = unenroll, and
// the documented limits of 100 requests a minute and 3000 an hour per user.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mapping/provider_options.h"
#include "providers/spec.h"

namespace crmsync::providers::replyio {

// A rule action's "options", sent with an enroll only, each field only when
// given.
struct ReplyIoOptions final : mapping::ProviderOptions {
  std::optional<bool> remove_from_existing;
  std::optional<int64_t> start_step_id;
  std::optional<bool> ignore_step_delay;
  std::optional<std::string> start_from;  // RFC 3339, as written
};

// Provider-specific settings, read from the provider's config object
// (ProviderConfig::settings_json). All optional.
struct ReplyIoSettings {
  // "createMissingContacts": an enrolled email Reply.io does not know is
  // created through /v3/contacts/import (true) or rejected with "contact not
  // found in Reply.io" (false).
  bool create_missing_contacts = true;
  // "idCacheSize": how many email -> id resolutions to remember (LRU); 0
  // turns the cache off. Inferred default.
  size_t id_cache_size = 10000;
  // "lookupCondition": the /v3/contacts/filter rule condition meaning "equals"
  // (the condition names are not documented: inferred).
  std::string lookup_condition = "equals";
};

// Parses the settings of `provider_name` from its config object text ("" or
// "{}" give the defaults). Throws mapping::ConfigError naming
// /providers/<name>/<field> for a field of the wrong type or range.
ReplyIoSettings ParseSettings(std::string_view settings_json, std::string_view provider_name);

const ProviderSpec& Spec();

}  // namespace crmsync::providers::replyio
