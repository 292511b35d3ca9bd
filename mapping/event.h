// CrmEvent: one decoded CRM change event, independent of its wire format
// (canonical crmsync event, HubSpot webhook, Salesforce CDC, Debezium).
//
// Plain value type; no ownership subtleties, not synchronised. Decoders in
// mapping/decode.h produce it; mapping/rules.h turns it into Operations.
// Field references ("contact.email", "properties.tier", "origin", ...) name
// its values in rule conditions and templates; see FieldValue().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace crmsync::mapping {

enum class EventKind {
  kCreated,        // "contact.created"
  kUpdated,        // "contact.updated"
  kDeleted,        // "contact.deleted"
  kStatusChanged,  // "contact.status_changed"
  kMerged,         // "contact.merged": other records were merged into this one
  kRestored,       // "contact.restored": a deleted record came back
};

// Wire name ("contact.created", ...) of a kind, and the reverse.
std::string_view EventKindName(EventKind kind);
std::optional<EventKind> ParseEventKind(std::string_view name);

// The wire formats a Kafka message may carry. kAuto (topics without a fixed
// format) detects the format per message.
enum class InputFormat {
  kAuto,
  kCanonical,   // schemas/event.schema.json
  kHubSpot,     // HubSpot contact webhooks: a JSON array of events
  kSalesforce,  // Salesforce Change Data Capture (ChangeEventHeader)
  kDebezium,    // Debezium change events, with or without the {schema, payload} envelope
};

// "auto", "canonical", "hubspot", "salesforce", "debezium", and the reverse.
std::string_view InputFormatName(InputFormat format);
std::optional<InputFormat> ParseInputFormat(std::string_view name);

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

// A sorted set of field references, as std::set<std::string> but in one
// vector: an event names a handful of changed fields, and a tree node per
// field cost more than deciding and using them.
class FieldSet {
 public:
  using const_iterator = std::vector<std::string>::const_iterator;
  using value_type = std::string;

  FieldSet() = default;
  FieldSet(std::initializer_list<std::string> fields);

  bool contains(std::string_view field) const;
  // Adds `field` unless present; whether it was added.
  bool insert(std::string field);
  bool emplace(std::string_view field) { return insert(std::string(field)); }
  // Adds `field`, which sorts after every field present (not checked in
  // release builds): building a set in order without a search per field.
  void push_back(std::string field);

  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  void reserve(size_t n) { fields_.reserve(n); }

  bool operator==(const FieldSet&) const = default;

 private:
  std::vector<std::string> fields_;  // sorted, unique
};

struct CrmEvent {
  std::string event_id;
  // RFC 3339 timestamp (as sent, or rendered from a format's epoch ms), and
  // the same instant in ms since the epoch.
  std::string occurred_at;
  int64_t occurred_at_ms = 0;
  // Contact identity; the Kafka key is "<external_id_key>:<external_id_value>".
  std::string external_id_key;
  std::string external_id_value;
  EventKind kind = EventKind::kUpdated;
  // CRM outreach status, e.g. "active", "completed", "disqualified".
  std::optional<std::string> status;
  ContactFields contact;
  // Field references known to have changed ("properties.lifecyclestage",
  // "contact.email", "status"). Read them with Changed() or ChangedFields(),
  // which also answer for events whose changes are implied.
  FieldSet changed_fields;
  // The event does not say what changed (a canonical event without
  // changedFields): every contact field, property and status it carries
  // counts as changed (an update carries what changed), and changed_fields
  // is empty. Decoders set it instead of listing the carried fields, which
  // would cost each such event a handful of strings nothing else reads.
  bool changes_implied = false;
  // Values before the change, by field reference, where the format says
  // (Debezium "before", canonical "previous"); a field absent here is unknown
  // or was null.
  std::map<std::string, std::string> previous;
  // Who made the change, as the CRM reports it (HubSpot changeSource,
  // Salesforce changeOrigin); used by rules to ignore the worker's own writes.
  std::optional<std::string> origin;
  InputFormat source_format = InputFormat::kCanonical;
  // The Kafka topic the event was read from ("" outside the worker): a view
  // of the message's topic name, valid while the message is (the worker
  // maps an event while it handles its message and keeps no event after).
  std::string_view source_topic;
  // HubSpot merges: the record ids merged into this contact.
  std::vector<std::string> merged_ids;
  // A privacy deletion (HubSpot contact.privacyDeletion): besides removing
  // the contact, every copy the worker keeps (its state) is erased.
  bool forget = false;

  // "<external_id_key>:<external_id_value>": the per-contact ordering identity.
  std::string ContactKey() const { return external_id_key + ":" + external_id_value; }

  // Whether the field reference `ref` changed: listed in changed_fields, or
  // carried by an event whose changes are implied.
  bool Changed(std::string_view ref) const;
  // The changed field references: changed_fields, or every field carried
  // when the changes are implied.
  FieldSet ChangedFields() const;

  bool operator==(const CrmEvent&) const = default;
};

// Whether `ref` is a field reference FieldValue() understands: "kind",
// "status", "origin", "format", "eventId", "occurredAt", "externalIdKey",
// "externalIdValue", "contact.firstName|lastName|email|phone",
// "properties.<name>" (any name, may contain dots).
bool IsFieldReference(std::string_view ref);

// The value of a field reference in an event; nullopt when the event does not
// carry it.
std::optional<std::string> FieldValue(const CrmEvent& event, std::string_view ref);

}  // namespace crmsync::mapping
