#include "mapping/event.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <utility>

namespace crmsync::mapping {

FieldSet::FieldSet(std::initializer_list<std::string> fields) {
  fields_.reserve(fields.size());
  for (const std::string& field : fields) insert(field);
}

bool FieldSet::contains(std::string_view field) const {
  const auto it = std::lower_bound(fields_.begin(), fields_.end(), field);
  return it != fields_.end() && *it == field;
}

void FieldSet::push_back(std::string field) {
  assert(fields_.empty() || fields_.back() < field);
  fields_.push_back(std::move(field));
}

bool FieldSet::insert(std::string field) {
  const auto it = std::lower_bound(fields_.begin(), fields_.end(), field);
  if (it != fields_.end() && *it == field) return false;
  fields_.insert(it, std::move(field));
  return true;
}

namespace {

constexpr std::array<EventKind, 6> kAllKinds = {EventKind::kCreated, EventKind::kUpdated,
                                                EventKind::kDeleted, EventKind::kStatusChanged,
                                                EventKind::kMerged,  EventKind::kRestored};

constexpr std::array<InputFormat, 5> kAllFormats = {InputFormat::kAuto, InputFormat::kCanonical,
                                                    InputFormat::kHubSpot, InputFormat::kSalesforce,
                                                    InputFormat::kDebezium};

constexpr std::string_view kPropertiesPrefix = "properties.";

}  // namespace

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kCreated:
      return "contact.created";
    case EventKind::kUpdated:
      return "contact.updated";
    case EventKind::kDeleted:
      return "contact.deleted";
    case EventKind::kStatusChanged:
      return "contact.status_changed";
    case EventKind::kMerged:
      return "contact.merged";
    case EventKind::kRestored:
      return "contact.restored";
  }
  return "unknown";
}

std::optional<EventKind> ParseEventKind(std::string_view name) {
  // Derived from EventKindName so that the two directions cannot disagree.
  for (EventKind kind : kAllKinds) {
    if (EventKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string_view InputFormatName(InputFormat format) {
  switch (format) {
    case InputFormat::kAuto:
      return "auto";
    case InputFormat::kCanonical:
      return "canonical";
    case InputFormat::kHubSpot:
      return "hubspot";
    case InputFormat::kSalesforce:
      return "salesforce";
    case InputFormat::kDebezium:
      return "debezium";
  }
  return "unknown";
}

std::optional<InputFormat> ParseInputFormat(std::string_view name) {
  for (InputFormat format : kAllFormats) {
    if (InputFormatName(format) == name) return format;
  }
  return std::nullopt;
}

bool IsFieldReference(std::string_view ref) {
  static constexpr std::string_view kNames[] = {"kind",
                                                "status",
                                                "origin",
                                                "format",
                                                "eventId",
                                                "occurredAt",
                                                "externalIdKey",
                                                "externalIdValue",
                                                "contact.email",
                                                "contact.phone",
                                                "contact.firstName",
                                                "contact.lastName"};
  for (std::string_view name : kNames) {
    if (ref == name) return true;
  }
  return ref.starts_with(kPropertiesPrefix) && ref.size() > kPropertiesPrefix.size();
}

std::optional<std::string> FieldValue(const CrmEvent& event, std::string_view ref) {
  if (ref.starts_with(kPropertiesPrefix)) {
    auto it = event.contact.properties.find(std::string(ref.substr(kPropertiesPrefix.size())));
    if (it == event.contact.properties.end()) return std::nullopt;
    return it->second;
  }
  if (ref == "contact.email") return event.contact.email;
  if (ref == "contact.phone") return event.contact.phone;
  if (ref == "contact.firstName") return event.contact.first_name;
  if (ref == "contact.lastName") return event.contact.last_name;
  if (ref == "status") return event.status;
  if (ref == "origin") return event.origin;
  if (ref == "kind") return std::string(EventKindName(event.kind));
  if (ref == "format") return std::string(InputFormatName(event.source_format));
  if (ref == "eventId") return event.event_id;
  if (ref == "occurredAt") return event.occurred_at;
  if (ref == "externalIdKey") return event.external_id_key;
  if (ref == "externalIdValue") return event.external_id_value;
  return std::nullopt;
}

bool CrmEvent::Changed(std::string_view ref) const {
  if (!changes_implied) return changed_fields.contains(ref);
  if (ref.starts_with(kPropertiesPrefix)) {
    return contact.properties.contains(std::string(ref.substr(kPropertiesPrefix.size())));
  }
  if (ref == "contact.email") return contact.email.has_value();
  if (ref == "contact.phone") return contact.phone.has_value();
  if (ref == "contact.firstName") return contact.first_name.has_value();
  if (ref == "contact.lastName") return contact.last_name.has_value();
  if (ref == "status") return status.has_value();
  return false;
}

FieldSet CrmEvent::ChangedFields() const {
  if (!changes_implied) return changed_fields;
  FieldSet fields;
  fields.reserve(5 + contact.properties.size());
  // In sorted order: "contact.*" < "properties.*" (the map is sorted) < "status".
  if (contact.email) fields.push_back("contact.email");
  if (contact.first_name) fields.push_back("contact.firstName");
  if (contact.last_name) fields.push_back("contact.lastName");
  if (contact.phone) fields.push_back("contact.phone");
  for (const auto& [name, value] : contact.properties) {
    fields.push_back(std::string(kPropertiesPrefix) + name);
  }
  if (status) fields.push_back("status");
  return fields;
}

}  // namespace crmsync::mapping
