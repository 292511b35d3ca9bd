#include "mapping/operation.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

bool Operation::operator==(const Operation& other) const {
  return provider == other.provider && target == other.target && action == other.action &&
         routing == other.routing && options_json == other.options_json &&
         contact_key == other.contact_key && contact == other.contact;
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

std::string OperationJson(const Operation& op) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto optional = [&w](const char* name, const std::optional<std::string>& value) {
    if (!value) return;
    w.Key(name);
    w.String(*value);
  };
  auto object = [&w](const char* name, const std::map<std::string, std::string>& values) {
    if (values.empty()) return;
    w.Key(name);
    w.StartObject();
    for (const auto& [key, value] : values) {
      w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      w.String(value);
    }
    w.EndObject();
  };
  w.StartObject();
  w.Key("provider");
  w.String(op.provider);
  w.Key("target");
  w.String(op.target);
  w.Key("action");
  w.String(std::string(ActionName(op.action)));
  w.Key("contactKey");
  w.String(op.contact_key);
  if (op.routing) {
    w.Key("routing");
    w.StartObject();
    w.Key("externalIdKey");
    w.String(op.routing->external_id_key);
    w.Key("externalIdValue");
    w.String(op.routing->external_id_value);
    w.EndObject();
  }
  if (!op.options_json.empty()) {
    w.Key("options");
    // options_json is the config's own serialisation, hence valid JSON.
    w.RawValue(op.options_json.data(), op.options_json.size(), rapidjson::kObjectType);
  }
  const Contact& c = op.contact;
  w.Key("contact");
  w.StartObject();
  optional("firstName", c.first_name);
  optional("lastName", c.last_name);
  optional("email", c.email);
  optional("phone", c.phone);
  optional("status", c.status);
  optional("externalIdKey", c.external_id_key);
  optional("externalIdValue", c.external_id_value);
  object("metadata", c.metadata);
  object("fields", c.fields);
  if (!c.tags.empty()) {
    w.Key("tags");
    w.StartArray();
    for (int64_t tag : c.tags) w.Int64(tag);
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace crmsync::mapping
