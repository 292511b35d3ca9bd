// CrmEvent: one decoded CRM change event, independent of its wire format.
//
// Plain value type; no ownership subtleties, not synchronised. Decoders in
// mapping/decode.h produce it; mapping/rules.h turns it into Operations.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace crmsync::mapping {

enum class EventKind {
  kCreated,        // "contact.created"
  kUpdated,        // "contact.updated"
  kDeleted,        // "contact.deleted"
  kStatusChanged,  // "contact.status_changed"
};

// Wire name ("contact.created", ...) of a kind, and the reverse.
std::string_view EventKindName(EventKind kind);
std::optional<EventKind> ParseEventKind(std::string_view name);

// Contact fields carried by an event. Absent optionals mean "not in the event"
// (an update may carry only what changed).
struct ContactFields {
  std::optional<std::string> first_name;
  std::optional<std::string> last_name;
  std::optional<std::string> email;
  std::optional<std::string> phone;
  // Free-form CRM properties (tier, lifecycle stage, ...), values as strings.
  std::map<std::string, std::string> properties;

  bool operator==(const ContactFields&) const = default;
};

struct CrmEvent {
  std::string event_id;
  // RFC 3339 timestamp as sent, and the same instant in ms since the epoch.
  std::string occurred_at;
  int64_t occurred_at_ms = 0;
  // Contact identity; the Kafka key is "<external_id_key>:<external_id_value>".
  std::string external_id_key;
  std::string external_id_value;
  EventKind kind = EventKind::kUpdated;
  // CRM outreach status, e.g. "active", "completed", "disqualified".
  std::optional<std::string> status;
  ContactFields contact;

  // "<external_id_key>:<external_id_value>": the per-contact ordering identity.
  std::string ContactKey() const { return external_id_key + ":" + external_id_value; }

  bool operator==(const CrmEvent&) const = default;
};

}  // namespace crmsync::mapping
