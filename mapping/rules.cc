#include "mapping/rules.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <type_traits>
#include <utility>

namespace crmsync::mapping {
namespace {

template <typename T, typename V>
bool Contains(const std::vector<T>& list, const V& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

bool Holds(const Condition& condition, const CrmEvent& event) {
  const std::optional<std::string> value = FieldValue(event, condition.field);
  const std::string& first = condition.values.empty() ? std::string() : condition.values[0];
  switch (condition.op) {
    case ConditionOp::kEquals:
      return value && *value == first;
    case ConditionOp::kNotEquals:
      return !value || *value != first;
    case ConditionOp::kIn:
      return value && Contains(condition.values, *value);
    case ConditionOp::kNotIn:
      return !value || !Contains(condition.values, *value);
    case ConditionOp::kExists:
      return value.has_value() == condition.flag;
    case ConditionOp::kChanged:
      return event.Changed(condition.field) == condition.flag;
    case ConditionOp::kBecomes: {
      if (!value || !Contains(condition.values, *value)) return false;
      if (!event.Changed(condition.field)) return false;
      auto before = event.previous.find(condition.field);
      if (before == event.previous.end()) {
        // The previous value is unknown: a "from" constraint cannot be shown
        // to hold, but a plain "becomes" trusts the change information.
        return condition.from.empty();
      }
      if (Contains(condition.values, before->second)) return false;  // it already was
      return condition.from.empty() || Contains(condition.from, before->second);
    }
    case ConditionOp::kContains:
      return value && value->find(first) != std::string::npos;
    case ConditionOp::kNotContains:
      return !value || value->find(first) == std::string::npos;
  }
  return false;
}

bool IsRemoval(Action action) {
  switch (action) {
    case Action::kRemove:
    case Action::kUnenroll:
      return true;
    case Action::kUpsert:
    case Action::kUpdateOnly:
    case Action::kAdd:
    case Action::kOverwrite:
    case Action::kEnroll:
      return false;
  }
  return false;
}

bool IsIdentityDestination(std::string_view destination) {
  return destination == "email" || destination == "phone" || destination == "externalIdKey" ||
         destination == "externalIdValue";
}

// "1, 2,3" -> {1, 2, 3}; nullopt when any item is not an integer.
std::optional<std::vector<int64_t>> ParseTags(std::string_view text) {
  std::vector<int64_t> tags;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = Trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    int64_t tag = 0;
    auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), tag);
    if (error != std::errc() || end != item.data() + item.size()) return std::nullopt;
    tags.push_back(tag);
  }
  return tags;
}

// Writes one rendered template value into the contact; false (with `why`)
// when the value cannot go there.
bool Apply(const std::string& destination, std::string value, Contact& contact, std::string& why) {
  if (destination == "firstName") {
    contact.first_name = std::move(value);
  } else if (destination == "lastName") {
    contact.last_name = std::move(value);
  } else if (destination == "email") {
    contact.email = std::move(value);
  } else if (destination == "phone") {
    contact.phone = std::move(value);
  } else if (destination == "status") {
    contact.status = std::move(value);
  } else if (destination == "externalIdKey") {
    contact.external_id_key = std::move(value);
  } else if (destination == "externalIdValue") {
    contact.external_id_value = std::move(value);
  } else if (destination == "tags") {
    std::optional<std::vector<int64_t>> tags = ParseTags(value);
    if (!tags) {
      why = "template for 'tags' rendered '" + value.substr(0, 64) +
            "', not comma-separated integers";
      return false;
    }
    contact.tags.insert(contact.tags.end(), tags->begin(), tags->end());
  } else if (destination.starts_with("metadata.")) {
    contact.metadata[destination.substr(9)] = std::move(value);
  } else if (destination.starts_with("fields.")) {
    contact.fields[destination.substr(7)] = std::move(value);
  }
  return true;
}

std::optional<std::string> StatusFor(const RuleAction& action, const CrmEvent& event) {
  if (action.status) return action.status;
  if (event.status) {
    auto mapped = action.status_map.find(*event.status);
    if (mapped != action.status_map.end()) return mapped->second;
    if (action.pass_event_status &&
        (action.accepted_statuses.empty() || Contains(action.accepted_statuses, *event.status))) {
      return event.status;
    }
  }
  return action.default_status;
}

// A value of the event for an operation: a copy, or the value itself when
// the operation is the last to need it (`take`).
template <typename T>
std::remove_const_t<T> From(T& value, bool take) {
  if constexpr (!std::is_const_v<T>) {
    if (take) return std::move(value);
  }
  return value;
}

// Fills the contact for one action into `contact` (a default-constructed
// one, inside the operation it goes out with); false with `why` when there
// is none. With `take` the contact's values are moved out of `event`, which
// is then not read again (the action renders no template from it); a
// const `event` is always copied from.
template <typename Event>
bool FillContact(const RuleAction& action, Event& event, Contact& contact, std::string& why,
                 bool take) {
  // A removal identifies the contact and nothing else, so a stale name or
  // status can never ride along with it.
  contact.email = From(event.contact.email, take);
  contact.phone = From(event.contact.phone, take);
  if (action.send_external_id) {
    contact.external_id_key = event.external_id_key;
    contact.external_id_value = event.external_id_value;
  }
  const bool removal = IsRemoval(action.action);
  if (!removal) {
    contact.first_name = From(event.contact.first_name, take);
    contact.last_name = From(event.contact.last_name, take);
    contact.status = StatusFor(action, event);
    if (action.metadata_from_properties) {
      auto& properties = event.contact.properties;
      if (!action.metadata_properties) {
        contact.metadata = From(event.contact.properties, take);
      } else {
        for (const std::string& name : *action.metadata_properties) {
          auto it = properties.find(name);
          if (it == properties.end()) continue;
          if constexpr (!std::is_const_v<Event>) {
            if (take) {
              contact.metadata.insert(properties.extract(it));  // the node, not a copy
              continue;
            }
          }
          contact.metadata.insert(*it);
        }
      }
    }
    contact.tags = action.tags;
  }
  for (const auto& [destination, value_template] : action.fields) {
    if (removal && !IsIdentityDestination(destination)) continue;
    std::optional<std::string> value = value_template.Render(event);
    if (!value) continue;
    if (!Apply(destination, std::move(*value), contact, why)) return false;
  }
  switch (action.requires_contact) {
    case ContactRequirement::kNone:
      break;
    case ContactRequirement::kEmail:
      if (!contact.email || contact.email->empty()) {
        why = "the contact has no email (" + action.provider + " identifies contacts by email)";
        return false;
      }
      break;
    case ContactRequirement::kPhone:
      if (!contact.phone || contact.phone->empty()) {
        why = "the contact has no phone (" + action.provider + " requires one)";
        return false;
      }
      break;
    case ContactRequirement::kEmailOrPhone:
      if ((!contact.email || contact.email->empty()) &&
          (!contact.phone || contact.phone->empty())) {
        why = "the contact has neither email nor phone (" + action.provider +
              " identifies contacts by them)";
        return false;
      }
      break;
  }
  return true;
}

}  // namespace

std::optional<Template> Template::Parse(std::string_view text, std::string& error) {
  Template parsed;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      parsed.parts_.push_back(Part{std::string(text.substr(pos)), "", std::nullopt});
      break;
    }
    if (open > pos)
      parsed.parts_.push_back(Part{std::string(text.substr(pos, open - pos)), "", {}});
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      error = "'{{' at offset " + std::to_string(open) + " is not closed by '}}'";
      return std::nullopt;
    }
    std::string_view inner = text.substr(open + 2, close - open - 2);
    std::optional<std::string> fallback;
    if (const size_t bar = inner.find('|'); bar != std::string_view::npos) {
      fallback = std::string(Trim(inner.substr(bar + 1)));
      inner = inner.substr(0, bar);
    }
    const std::string_view ref = Trim(inner);
    if (!IsFieldReference(ref)) {
      error = "'" + std::string(ref) +
              "' is not a field reference (kind, status, origin, format, eventId, occurredAt, "
              "externalIdKey, externalIdValue, contact.firstName, contact.lastName, "
              "contact.email, contact.phone, properties.<name>)";
      return std::nullopt;
    }
    parsed.parts_.push_back(Part{"", std::string(ref), std::move(fallback)});
    pos = close + 2;
  }
  return parsed;
}

std::optional<std::string> Template::Render(const CrmEvent& event) const {
  std::string out;
  for (const Part& part : parts_) {
    if (part.ref.empty()) {
      out += part.literal;
      continue;
    }
    std::optional<std::string> value = FieldValue(event, part.ref);
    if (!value || value->empty()) value = part.fallback;
    if (!value) return std::nullopt;
    out += *value;
  }
  return out;
}

bool IsTemplateDestination(std::string_view destination) {
  static constexpr std::string_view kNames[] = {"firstName",       "lastName", "email",
                                                "phone",           "status",   "externalIdKey",
                                                "externalIdValue", "tags"};
  for (std::string_view name : kNames) {
    if (destination == name) return true;
  }
  return (destination.starts_with("metadata.") && destination.size() > 9) ||
         (destination.starts_with("fields.") && destination.size() > 7);
}

InputFormat InputConfig::FormatOf(std::string_view topic) const {
  auto it = topic_formats.find(topic);
  return it == topic_formats.end() ? InputFormat::kAuto : it->second;
}

bool Matches(const Rule& rule, const CrmEvent& event) {
  if (!rule.kinds.empty() && !Contains(rule.kinds, event.kind)) return false;
  if (!rule.formats.empty() && !Contains(rule.formats, event.source_format)) return false;
  if (!rule.topics.empty() && !Contains(rule.topics, event.source_topic)) return false;
  if (!rule.statuses.empty() && (!event.status || !Contains(rule.statuses, *event.status))) {
    return false;
  }
  for (const auto& [name, accepted] : rule.properties) {
    auto it = event.contact.properties.find(name);
    if (it == event.contact.properties.end() || !Contains(accepted, it->second)) return false;
  }
  for (const Condition& condition : rule.conditions) {
    if (!Holds(condition, event)) return false;
  }
  return true;
}

namespace {

// Map(), moving the event's values into the last operation built from it
// when `event` is not const. An action's operation is the last when its
// rule stops the matching (or is the last rule) and it is the rule's last
// action; one that renders templates reads the event to the end, and copies.
template <typename Event>
MapResult MapEvent(Event& event, const Rules& rules) {
  MapResult result;
  for (const Rule& rule : rules.rules) {
    if (!Matches(rule, event)) continue;
    if (!result.rule.empty()) result.rule += ',';
    result.rule += rule.name;
    const bool last_rule = !rule.continue_matching || &rule == &rules.rules.back();
    for (size_t i = 0; i < rule.actions.size(); ++i) {
      const RuleAction& action = rule.actions[i];
      const bool take = last_rule && i + 1 == rule.actions.size() && action.fields.empty();
      // Built where it stays: the operation is not moved out of a temporary.
      Operation& op = result.operations.emplace_back();
      std::string why;
      if (!FillContact(action, event, op.contact, why, take)) {
        result.operations.pop_back();
        result.skipped.push_back("rule '" + rule.name + "' action " + std::to_string(i) + " (" +
                                 action.provider + "): " + why);
        continue;
      }
      op.provider = action.provider;
      op.target = action.target;
      op.action = action.action;
      op.routing = action.routing;
      op.options_json = action.options_json;
      op.options = action.options;
      op.contact_key = event.ContactKey();
    }
    if (!rule.continue_matching) break;
  }
  return result;
}

}  // namespace

MapResult Map(const CrmEvent& event, const Rules& rules) { return MapEvent(event, rules); }

MapResult Map(CrmEvent&& event, const Rules& rules) { return MapEvent(event, rules); }

}  // namespace crmsync::mapping
