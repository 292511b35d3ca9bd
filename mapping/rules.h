// Rules: the ordered mapping from CRM events to provider Operations.
//
// Immutable after construction; Map() is a pure function, safe to call from
// any thread. Returns values, never throws on event content.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mapping/event.h"
#include "mapping/operation.h"

namespace crmsync::mapping {

// One action of a rule: what to do on which provider target.
struct RuleAction {
  std::string provider;  // "replify"
  std::string target;    // Replify campaignId (UUID)
  Action action = Action::kUpsert;
  // Status to set on the contact: a constant, or (when absent) the event's
  // status if it has one.
  std::optional<std::string> status;
  // Optional request-root routing (Replify multi-assistant organisations).
  std::optional<Routing> routing;
  // Send the event identity as per-contact externalIdKey/externalIdValue.
  bool send_external_id = true;
  // Copy the event's contact properties into contactMetadata.
  bool metadata_from_properties = true;
};

struct Rule {
  std::string name;
  // Conditions, all of which must hold; an empty list matches anything.
  std::vector<EventKind> kinds;
  std::vector<std::string> statuses;  // event status must be one of these
  // Contact property -> accepted values; the property must equal one of them.
  std::map<std::string, std::vector<std::string>> properties;
  std::vector<RuleAction> actions;
};

struct Rules {
  std::vector<Rule> rules;  // evaluated in order; the first match applies
};

struct MapResult {
  std::vector<Operation> operations;
  // Name of the rule that matched; empty when no rule matched (the event is
  // skipped and counted, not an error).
  std::string rule;
};

MapResult Map(const CrmEvent& event, const Rules& rules);

}  // namespace crmsync::mapping
