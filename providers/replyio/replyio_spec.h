// Reply.io's spec: sequences by integer sequenceId, actions enroll (default)
// and unenroll, contacts need an email, enroll options removeFromExisting,
// startStepId, ignoreStepDelay and startFrom, stopOutreach = unenroll, and
// the documented limits of 100 requests a minute and 3000 an hour per user.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

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

const ProviderSpec& Spec();

}  // namespace crmsync::providers::replyio
