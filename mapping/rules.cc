#include "mapping/rules.h"

#include <algorithm>

namespace crmsync::mapping {
namespace {

template <typename T>
bool Contains(const std::vector<T>& list, const T& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool Matches(const Rule& rule, const CrmEvent& event) {
  if (!rule.kinds.empty() && !Contains(rule.kinds, event.kind)) return false;
  if (!rule.statuses.empty() && (!event.status || !Contains(rule.statuses, *event.status))) {
    return false;
  }
  for (const auto& [name, accepted] : rule.properties) {
    auto it = event.contact.properties.find(name);
    if (it == event.contact.properties.end() || !Contains(accepted, it->second)) return false;
  }
  return true;
}

Contact ContactFor(const RuleAction& action, const CrmEvent& event) {
  Contact contact;
  // Replify removes by email/phone; the identity is all a removal may carry,
  // so a stale name or status can never ride along with it.
  contact.email = event.contact.email;
  contact.phone = event.contact.phone;
  if (action.send_external_id) {
    contact.external_id_key = event.external_id_key;
    contact.external_id_value = event.external_id_value;
  }
  if (action.action == Action::kRemove) return contact;

  contact.first_name = event.contact.first_name;
  contact.last_name = event.contact.last_name;
  contact.status = action.status ? action.status : event.status;
  if (action.metadata_from_properties) contact.metadata = event.contact.properties;
  return contact;
}

}  // namespace

MapResult Map(const CrmEvent& event, const Rules& rules) {
  MapResult result;
  for (const Rule& rule : rules.rules) {
    if (!Matches(rule, event)) continue;
    result.rule = rule.name;
    result.operations.reserve(rule.actions.size());
    for (const RuleAction& action : rule.actions) {
      result.operations.push_back(Operation{.provider = action.provider,
                                            .target = action.target,
                                            .action = action.action,
                                            .routing = action.routing,
                                            .options_json = {},
                                            .contact_key = event.ContactKey(),
                                            .contact = ContactFor(action, event)});
    }
    return result;
  }
  return result;
}

}  // namespace crmsync::mapping
