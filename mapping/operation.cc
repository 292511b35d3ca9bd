#include "mapping/operation.h"

#include <array>

namespace crmsync::mapping {
namespace {

constexpr std::array<Action, 3> kAllActions = {Action::kUpsert, Action::kUpdateOnly,
                                               Action::kRemove};
// ASCII unit separator: cannot occur in a provider name, a campaign UUID or a
// sane routing key, so the joined fields cannot collide.
constexpr char kSeparator = '\x1f';

}  // namespace

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kUpsert:
      return "upsert";
    case Action::kUpdateOnly:
      return "updateOnly";
    case Action::kRemove:
      return "remove";
  }
  return "unknown";
}

std::optional<Action> ParseAction(std::string_view name) {
  for (Action action : kAllActions) {
    if (ActionName(action) == name) return action;
  }
  return std::nullopt;
}

std::string Operation::BatchKey() const {
  std::string key;
  const size_t routing_size =
      routing ? routing->external_id_key.size() + routing->external_id_value.size() : 0;
  key.reserve(provider.size() + target.size() + routing_size + 3);
  key += provider;
  key += kSeparator;
  key += target;
  key += kSeparator;
  if (routing) key += routing->external_id_key;
  key += kSeparator;
  if (routing) key += routing->external_id_value;
  return key;
}

}  // namespace crmsync::mapping
