// Decoders of the CRM formats crmsync accepts besides its canonical event.
// docs/MAPPING.md describes each format and how its identity becomes
// "<externalIdKey>:<externalIdValue>"; this file follows it.
#include <rapidjson/document.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "mapping/decode_internal.h"
#include "mapping/json_schema.h"

namespace crmsync::mapping::internal {
namespace {

DecodeError Error(std::string reason, std::string path) {
  return DecodeError{std::move(reason), std::move(path), ""};
}

// An id or epoch that formats send as a JSON number or as text.
std::optional<std::string> IdText(const rapidjson::Value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->IsString() && value->GetStringLength() > 0) return std::string(StringOf(*value));
  if (value->IsInt64()) return std::to_string(value->GetInt64());
  if (value->IsUint64()) return std::to_string(value->GetUint64());
  return std::nullopt;
}

std::optional<int64_t> Millis(const rapidjson::Value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->IsInt64()) return value->GetInt64();
  if (value->IsString()) {
    const std::string_view text = StringOf(*value);
    if (auto parsed = ParseRfc3339(text)) return parsed;
    int64_t ms = 0;
    if (text.empty() || text.size() > 18) return std::nullopt;
    for (char c : text) {
      if (c < '0' || c > '9') return std::nullopt;
      ms = ms * 10 + (c - '0');
    }
    return ms;
  }
  return std::nullopt;
}

void SetTime(CrmEvent& event, int64_t ms) {
  event.occurred_at_ms = ms;
  event.occurred_at = FormatRfc3339(ms);
}

// Puts one CRM field into the event: always under properties.<name>, and
// into the contact field or status it is configured for.
void SetField(CrmEvent& event, const FormatOptions& options, const std::string& name,
              std::optional<std::string> value, bool changed) {
  std::string ref = "properties." + name;
  if (changed) event.changed_fields.insert(ref);
  if (value) event.contact.properties[name] = *value;
  if (!options.status_field.empty() && name == options.status_field) {
    event.status = value;
    if (changed) event.changed_fields.insert("status");
  }
  auto mapped = options.contact_fields.find(name);
  if (mapped == options.contact_fields.end()) return;
  std::optional<std::string>* field = nullptr;
  if (mapped->second == "email") field = &event.contact.email;
  if (mapped->second == "firstName") field = &event.contact.first_name;
  if (mapped->second == "lastName") field = &event.contact.last_name;
  if (mapped->second == "phone") field = &event.contact.phone;
  if (field == nullptr) return;
  if (value) *field = std::move(value);
  if (changed) event.changed_fields.insert("contact." + mapped->second);
}

// ---- HubSpot ----------------------------------------------------------------

std::optional<DecodeError> DecodeHubSpotEvent(const rapidjson::Value& item, const std::string& path,
                                              const FormatOptions& options, DecodedMessage& out) {
  if (!item.IsObject()) return Error("a HubSpot event must be an object", path);
  const rapidjson::Value* type = Find(item, "subscriptionType");
  if (type == nullptr || !type->IsString()) {
    return Error("subscriptionType is missing or not a string", path + "/subscriptionType");
  }
  std::string subscription(StringOf(*type));
  // Generic webhooks ("object.creation", "object.propertyChange", ...) name
  // the object type in objectTypeId; contacts are "0-1".
  if (subscription.starts_with("object.")) {
    const std::optional<std::string> object_type = IdText(Find(item, "objectTypeId"));
    if (!object_type || *object_type != "0-1") {
      out.ignored.push_back("hubspot event at " + (path.empty() ? "/" : path) +
                            ": subscriptionType '" + Echo(subscription) + "' for objectTypeId '" +
                            Echo(object_type.value_or("")) + "' is not a contact change");
      return std::nullopt;
    }
    subscription = "contact." + subscription.substr(7);
  }
  CrmEvent event;
  event.source_format = InputFormat::kHubSpot;
  event.external_id_key = options.external_id_key;
  std::optional<std::string> object_id = IdText(Find(item, "objectId"));
  if (!object_id) return Error("objectId is missing or not an id", path + "/objectId");
  const std::optional<int64_t> occurred = Millis(Find(item, "occurredAt"));
  if (!occurred) {
    return Error("occurredAt is missing or not epoch milliseconds", path + "/occurredAt");
  }
  SetTime(event, *occurred);
  event.event_id = IdText(Find(item, "eventId")).value_or("");
  if (const rapidjson::Value* source = Find(item, "changeSource");
      source != nullptr && source->IsString()) {
    event.origin = std::string(StringOf(*source));
  }
  if (subscription == "contact.creation") {
    event.kind = EventKind::kCreated;
  } else if (subscription == "contact.propertyChange") {
    event.kind = EventKind::kUpdated;
    const rapidjson::Value* name = Find(item, "propertyName");
    if (name == nullptr || !name->IsString() || name->GetStringLength() == 0) {
      return Error("propertyName is missing for " + std::string(StringOf(*type)),
                   path + "/propertyName");
    }
    const rapidjson::Value* value = Find(item, "propertyValue");
    // HubSpot sends "" when a property is cleared.
    std::optional<std::string> text = value == nullptr ? std::nullopt : ScalarText(*value);
    if (text && text->empty()) text.reset();
    SetField(event, options, std::string(StringOf(*name)), std::move(text), true);
  } else if (subscription == "contact.deletion" || subscription == "contact.privacyDeletion") {
    event.kind = EventKind::kDeleted;
    event.forget = subscription == "contact.privacyDeletion";
  } else if (subscription == "contact.restore") {
    event.kind = EventKind::kRestored;
  } else if (subscription == "contact.merge") {
    // The merged record lives on under primaryObjectId; the others are gone
    // from HubSpot and are listed in merged_ids.
    event.kind = EventKind::kMerged;
    if (auto primary = IdText(Find(item, "primaryObjectId"))) object_id = primary;
    if (const rapidjson::Value* merged = Find(item, "mergedObjectIds");
        merged != nullptr && merged->IsArray()) {
      for (const rapidjson::Value& id : merged->GetArray()) {
        if (auto text = IdText(&id); text && *text != *object_id) {
          event.merged_ids.push_back(*text);
        }
      }
    }
  } else {
    out.ignored.push_back("hubspot event at " + (path.empty() ? "/" : path) +
                          ": subscriptionType '" + Echo(subscription) +
                          "' is not a contact change");
    return std::nullopt;
  }
  event.external_id_value = std::move(*object_id);
  out.events.push_back(std::move(event));
  return std::nullopt;
}

// ---- Salesforce ---------------------------------------------------------------

// The Salesforce change event body: the document itself (Pub/Sub API), or
// under "payload" (CometD "data.payload" included).
const rapidjson::Value* SalesforceBody(const rapidjson::Value& doc, std::string& path) {
  if (Find(doc, "ChangeEventHeader") != nullptr) return &doc;
  if (const rapidjson::Value* payload = Find(doc, "payload");
      payload != nullptr && Find(*payload, "ChangeEventHeader") != nullptr) {
    path = "/payload";
    return payload;
  }
  if (const rapidjson::Value* data = Find(doc, "data")) {
    if (const rapidjson::Value* payload = Find(*data, "payload");
        payload != nullptr && Find(*payload, "ChangeEventHeader") != nullptr) {
      path = "/data/payload";
      return payload;
    }
  }
  return nullptr;
}

// Record fields, flattening compound fields one level ("Name.FirstName").
void SalesforceFields(const rapidjson::Value& body, const FormatOptions& options,
                      const std::set<std::string>& changed, CrmEvent& event) {
  for (const auto& member : body.GetObject()) {
    const std::string name(StringOf(member.name));
    if (name == "ChangeEventHeader") continue;
    if (member.value.IsObject()) {
      for (const auto& inner : member.value.GetObject()) {
        const std::string inner_name = name + "." + std::string(StringOf(inner.name));
        if (auto text = ScalarText(inner.value)) {
          SetField(event, options, inner_name, std::move(text), changed.contains(inner_name));
        }
      }
      continue;
    }
    if (auto text = ScalarText(member.value)) {
      SetField(event, options, name, std::move(text), changed.contains(name));
    }
  }
  for (const std::string& name : changed) {
    if (!event.changed_fields.contains("properties." + name)) {
      SetField(event, options, name, std::nullopt, true);
    }
  }
}

// ---- Debezium ------------------------------------------------------------------

// Debezium's own Kafka key: {"id": 42} or {"schema": ..., "payload": {"id": 42}}.
std::optional<std::string> DebeziumKeyId(std::string_view key, const std::string& id_field) {
  if (key.empty() || key.front() != '{') return std::nullopt;
  rapidjson::Document doc;
  if (ParsePayload(key, doc, "debezium")) return std::nullopt;
  const rapidjson::Value* root = &doc;
  if (const rapidjson::Value* payload = Find(doc, "payload");
      payload != nullptr && payload->IsObject() && Find(doc, "schema") != nullptr) {
    root = payload;
  }
  return IdText(Find(*root, id_field.c_str()));
}

}  // namespace

std::optional<std::string> DebeziumTombstoneKey(std::string_view key,
                                                const FormatOptions& options) {
  if (key.empty()) return std::nullopt;
  if (auto id = DebeziumKeyId(key, options.id_field)) return options.external_id_key + ":" + *id;
  // A key already in "<externalIdKey>:<id>" form.
  const std::string prefix = options.external_id_key + ":";
  if (key.size() > prefix.size() && key.starts_with(prefix)) return std::string(key);
  return std::nullopt;
}

std::optional<DecodeError> DecodeHubSpot(const rapidjson::Value& doc, const FormatOptions& options,
                                         DecodedMessage& out) {
  if (doc.IsObject()) return DecodeHubSpotEvent(doc, "", options, out);
  if (!doc.IsArray()) return Error("a HubSpot webhook body is a JSON array of events", "");
  if (doc.Empty()) out.ignored.push_back("hubspot: the webhook batch is empty");
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    if (auto error = DecodeHubSpotEvent(doc[i], "/" + std::to_string(i), options, out)) {
      return error;
    }
  }
  return std::nullopt;
}

std::optional<DecodeError> DecodeSalesforce(const rapidjson::Value& doc,
                                            const FormatOptions& options, DecodedMessage& out) {
  std::string path;
  const rapidjson::Value* body = SalesforceBody(doc, path);
  if (body == nullptr || !body->IsObject()) {
    return Error("no ChangeEventHeader (not a Salesforce change event)", "");
  }
  const rapidjson::Value& header = (*body)["ChangeEventHeader"];
  const std::string header_path = path + "/ChangeEventHeader";
  if (!header.IsObject()) return Error("ChangeEventHeader must be an object", header_path);
  const rapidjson::Value* type = Find(header, "changeType");
  if (type == nullptr || !type->IsString()) {
    return Error("changeType is missing or not a string", header_path + "/changeType");
  }
  const std::string change_type(StringOf(*type));
  if (change_type == "GAP_OVERFLOW") {
    // An overflow event: a transaction changed more records than change
    // events are generated for. It names the entity, not the records.
    const rapidjson::Value* entity = Find(header, "entityName");
    out.ignored.push_back(
        "salesforce GAP_OVERFLOW for " +
        (entity != nullptr && entity->IsString() ? Echo(StringOf(*entity)) : std::string("?")) +
        ": overflow event names no record");
    return std::nullopt;
  }
  const rapidjson::Value* ids = Find(header, "recordIds");
  if (ids == nullptr || !ids->IsArray() || ids->Empty()) {
    return Error("recordIds must be a non-empty array", header_path + "/recordIds");
  }
  for (rapidjson::SizeType i = 0; i < ids->Size(); ++i) {
    if (!IdText(&(*ids)[i])) {
      return Error("record id is not a string", header_path + "/recordIds/" + std::to_string(i));
    }
  }
  if (change_type.starts_with("GAP_")) {
    // A gap event says that changes happened which Salesforce could not
    // capture; it names the records but carries no field values, so there is
    // nothing to map. The records resync on their next change.
    for (const rapidjson::Value& id : ids->GetArray()) {
      out.ignored.push_back("salesforce " + change_type + " for record " + *IdText(&id) +
                            ": gap event carries no data");
    }
    return std::nullopt;
  }
  EventKind kind;
  if (change_type == "CREATE") {
    kind = EventKind::kCreated;
  } else if (change_type == "UPDATE") {
    kind = EventKind::kUpdated;
  } else if (change_type == "DELETE") {
    kind = EventKind::kDeleted;
  } else if (change_type == "UNDELETE") {
    kind = EventKind::kRestored;
  } else {
    return Error(
        "changeType '" + Echo(change_type) + "' is not CREATE, UPDATE, DELETE, UNDELETE or GAP_*",
        header_path + "/changeType");
  }
  const std::optional<int64_t> committed = Millis(Find(header, "commitTimestamp"));
  if (!committed) {
    return Error("commitTimestamp is missing or not epoch milliseconds",
                 header_path + "/commitTimestamp");
  }
  std::set<std::string> changed;
  for (const char* list : {"changedFields", "nulledFields"}) {
    if (const rapidjson::Value* names = Find(header, list); names != nullptr && names->IsArray()) {
      for (const rapidjson::Value& name : names->GetArray()) {
        if (name.IsString()) changed.emplace(StringOf(name));
      }
    }
  }
  const bool created = kind == EventKind::kCreated;
  std::string base_id;
  if (auto key = IdText(Find(header, "transactionKey"))) base_id = *key;
  if (auto sequence = IdText(Find(header, "sequenceNumber"))) base_id += ":" + *sequence;
  for (const rapidjson::Value& id : ids->GetArray()) {
    CrmEvent event;
    event.source_format = InputFormat::kSalesforce;
    event.kind = kind;
    event.external_id_key = options.external_id_key;
    event.external_id_value = *IdText(&id);
    event.event_id =
        base_id.empty() ? event.external_id_value : base_id + ":" + event.external_id_value;
    SetTime(event, *committed);
    if (const rapidjson::Value* origin = Find(header, "changeOrigin");
        origin != nullptr && origin->IsString()) {
      event.origin = std::string(StringOf(*origin));
    }
    std::set<std::string> changed_here = changed;
    if (created) {
      // A create's fields are all new.
      for (const auto& member : body->GetObject()) {
        const std::string name(StringOf(member.name));
        if (name == "ChangeEventHeader") continue;
        if (member.value.IsObject()) {
          for (const auto& inner : member.value.GetObject()) {
            changed_here.insert(name + "." + std::string(StringOf(inner.name)));
          }
        } else if (!member.value.IsNull()) {
          changed_here.insert(name);
        }
      }
    }
    SalesforceFields(*body, options, changed_here, event);
    out.events.push_back(std::move(event));
  }
  return std::nullopt;
}

std::optional<DecodeError> DecodeDebezium(const rapidjson::Value& doc, std::string_view key,
                                          const FormatOptions& options, DecodedMessage& out) {
  const rapidjson::Value* payload = &doc;
  std::string path;
  // The {schema, payload} envelope of the JSON converter, or a bare
  // {"payload": ...} (schemas.enable=false with an envelope-keeping SMT).
  if (const rapidjson::Value* wrapped = Find(doc, "payload");
      wrapped != nullptr && (Find(doc, "schema") != nullptr || Find(doc, "op") == nullptr)) {
    payload = wrapped;
    path = "/payload";
  }
  if (payload->IsNull()) {
    out.ignored.push_back("debezium: null payload (tombstone) carries no data");
    return std::nullopt;
  }
  if (!payload->IsObject()) return Error("the change event must be an object", path);
  const rapidjson::Value* op = Find(*payload, "op");
  if (op == nullptr || !op->IsString()) return Error("op is missing or not a string", path + "/op");
  const std::string operation(StringOf(*op));
  EventKind kind;
  if (operation == "c" || operation == "r") {
    // "r" is a snapshot read: the row exists, as after a create.
    kind = EventKind::kCreated;
  } else if (operation == "u") {
    kind = EventKind::kUpdated;
  } else if (operation == "d") {
    kind = EventKind::kDeleted;
  } else if (operation == "t" || operation == "m") {
    out.ignored.push_back("debezium op '" + operation + "' (truncate/message) names no row");
    return std::nullopt;
  } else {
    return Error("op '" + Echo(operation) + "' is not c, u, d, r, t or m", path + "/op");
  }
  const rapidjson::Value* before = Find(*payload, "before");
  const rapidjson::Value* after = Find(*payload, "after");
  const bool deleted = kind == EventKind::kDeleted;
  const rapidjson::Value* row = deleted ? before : after;
  const std::string row_path = path + (deleted ? "/before" : "/after");
  if (row == nullptr || !row->IsObject()) {
    return Error(
        std::string(deleted ? "before" : "after") + " must be an object for op '" + operation + "'",
        row_path);
  }
  CrmEvent event;
  event.source_format = InputFormat::kDebezium;
  event.kind = kind;
  event.external_id_key = options.external_id_key;
  std::optional<std::string> id = IdText(Find(*row, options.id_field.c_str()));
  if (!id) {
    return Error("id field '" + Echo(options.id_field) + "' is missing or not an id",
                 row_path + "/" + EscapePointerToken(options.id_field));
  }
  event.external_id_value = *id;
  std::optional<int64_t> ms = Millis(Find(*payload, "ts_ms"));
  if (!ms) {
    if (const rapidjson::Value* source = Find(*payload, "source"))
      ms = Millis(Find(*source, "ts_ms"));
  }
  if (!ms) return Error("ts_ms is missing or not epoch milliseconds", path + "/ts_ms");
  SetTime(event, *ms);
  event.event_id = "debezium:" + std::to_string(*ms) + ":" + *id;
  const bool has_before = before != nullptr && before->IsObject();
  for (const auto& member : row->GetObject()) {
    const std::string name(StringOf(member.name));
    std::optional<std::string> value = ScalarText(member.value);
    bool changed = !deleted;
    if (has_before && !deleted) {
      const rapidjson::Value* old = Find(*before, name.c_str());
      std::optional<std::string> old_value = old == nullptr ? std::nullopt : ScalarText(*old);
      if (old_value) event.previous["properties." + name] = *old_value;
      changed = old_value != value;
    }
    if (!value && !changed) continue;
    SetField(event, options, name, std::move(value), changed && (value || has_before));
  }
  // Previous values of mapped contact fields, under their contact names too.
  for (const auto& [name, field] : options.contact_fields) {
    auto old = event.previous.find("properties." + name);
    if (old != event.previous.end()) event.previous["contact." + field] = old->second;
  }
  if (!options.status_field.empty()) {
    auto old = event.previous.find("properties." + options.status_field);
    if (old != event.previous.end()) event.previous["status"] = old->second;
  }
  if (!key.empty() && key != event.ContactKey()) {
    const std::optional<std::string> key_id = DebeziumKeyId(key, options.id_field);
    if (!key_id || *key_id != *id) {
      return Error("Kafka key '" + Echo(key) + "' matches neither '" + event.ContactKey() +
                       "' nor a Debezium key with " + options.id_field + " " + *id,
                   "");
    }
  }
  out.events.push_back(std::move(event));
  return std::nullopt;
}

}  // namespace crmsync::mapping::internal
