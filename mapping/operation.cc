#include "mapping/operation.h"

#include <array>

namespace crmsync::mapping {
namespace {

constexpr std::array<Action, 7> kAllActions = {
    Action::kUpsert,    Action::kUpdateOnly, Action::kRemove,  Action::kAdd,
    Action::kOverwrite, Action::kEnroll,     Action::kUnenroll};
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
    case Action::kAdd:
      return "add";
    case Action::kOverwrite:
      return "overwrite";
    case Action::kEnroll:
      return "enroll";
    case Action::kUnenroll:
      return "unenroll";
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
  key.reserve(provider.size() + target.size() + routing_size + options_json.size() + 4);
  key += provider;
  key += kSeparator;
  key += target;
  key += kSeparator;
  if (routing) key += routing->external_id_key;
  key += kSeparator;
  if (routing) key += routing->external_id_value;
  key += kSeparator;
  key += options_json;
  return key;
}

}  // namespace crmsync::mapping
