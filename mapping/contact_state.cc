#include "mapping/contact_state.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace crmsync::mapping {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Trimmed too: picklist values sometimes carry stray blanks.
  const auto first = out.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = out.find_last_not_of(" \t");
  return out.substr(first, last - first + 1);
}

struct NamedField {
  const char* ref;
  std::optional<std::string> ContactFields::*member;
};
constexpr NamedField kContactFields[] = {{"contact.firstName", &ContactFields::first_name},
                                         {"contact.lastName", &ContactFields::last_name},
                                         {"contact.email", &ContactFields::email},
                                         {"contact.phone", &ContactFields::phone}};
constexpr const char* kJsonNames[] = {"firstName", "lastName", "email", "phone"};

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(Writer& writer, std::string_view text) {
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void WriteSnapshot(Writer& writer, const ContactSnapshot& snapshot) {
  writer.StartObject();
  for (size_t i = 0; i < std::size(kContactFields); ++i) {
    const auto& value = snapshot.contact.*kContactFields[i].member;
    if (!value) continue;
    writer.Key(kJsonNames[i]);
    WriteString(writer, *value);
  }
  if (!snapshot.contact.properties.empty()) {
    writer.Key("properties");
    writer.StartObject();
    for (const auto& [name, value] : snapshot.contact.properties) {
      WriteString(writer, name);
      WriteString(writer, value);
    }
    writer.EndObject();
  }
  if (snapshot.status) {
    writer.Key("status");
    WriteString(writer, *snapshot.status);
  }
  if (snapshot.deleted) {
    writer.Key("deleted");
    writer.Bool(true);
  }
  writer.EndObject();
}

std::string_view StringOf(const rapidjson::Value& value) {
  return {value.GetString(), value.GetStringLength()};
}

bool ReadSnapshot(const rapidjson::Value& object, ContactSnapshot& out, std::string& error) {
  if (!object.IsObject()) {
    error = "a snapshot must be an object";
    return false;
  }
  for (size_t i = 0; i < std::size(kContactFields); ++i) {
    auto it = object.FindMember(kJsonNames[i]);
    if (it == object.MemberEnd()) continue;
    if (!it->value.IsString()) {
      error = std::string(kJsonNames[i]) + " must be a string";
      return false;
    }
    out.contact.*kContactFields[i].member = std::string(StringOf(it->value));
  }
  if (auto it = object.FindMember("properties"); it != object.MemberEnd()) {
    if (!it->value.IsObject()) {
      error = "properties must be an object";
      return false;
    }
    for (const auto& property : it->value.GetObject()) {
      if (!property.value.IsString()) {
        error = "property values must be strings";
        return false;
      }
      out.contact.properties.emplace(StringOf(property.name), StringOf(property.value));
    }
  }
  if (auto it = object.FindMember("status"); it != object.MemberEnd()) {
    if (!it->value.IsString()) {
      error = "status must be a string";
      return false;
    }
    out.status = std::string(StringOf(it->value));
  }
  if (auto it = object.FindMember("deleted"); it != object.MemberEnd()) {
    out.deleted = it->value.IsBool() && it->value.GetBool();
  }
  return true;
}

}  // namespace

StatusTable StatusTable::Defaults() {
  StatusTable table;
  // Canonical values pass through whatever their case.
  for (const char* value : {"completed", "disqualified", "active"}) table.Set(value, value);
  // Salesforce Lead Status picklist (standard values) and common custom ones.
  table.Set("Closed - Converted", "completed");
  table.Set("Converted", "completed");
  table.Set("Closed - Not Converted", "disqualified");
  table.Set("Unqualified", "disqualified");
  table.Set("Closed Won", "completed");
  table.Set("Closed Lost", "disqualified");
  // HubSpot lifecycle stages and lead statuses.
  table.Set("customer", "completed");
  table.Set("evangelist", "completed");
  table.Set("UNQUALIFIED", "disqualified");
  table.Set("BAD_TIMING", "disqualified");
  return table;
}

void StatusTable::Set(std::string_view from, std::string to) {
  entries_[Lower(from)] = std::move(to);
}

std::string StatusTable::Canonical(std::string_view status) const {
  auto it = entries_.find(Lower(status));
  return it == entries_.end() ? std::string(status) : it->second;
}

ContactSnapshot MergeEvent(const std::optional<ContactSnapshot>& before, const CrmEvent& event) {
  ContactSnapshot after = before.value_or(ContactSnapshot{});
  for (const NamedField& field : kContactFields) {
    const auto& value = event.contact.*field.member;
    if (value) {
      after.contact.*field.member = value;
    } else if (event.Changed(field.ref)) {
      (after.contact.*field.member).reset();
    }
  }
  for (const auto& [name, value] : event.contact.properties) after.contact.properties[name] = value;
  // Properties the event names as changed but does not carry were removed
  // (implied changes are what the event carries: none of those).
  for (const std::string& ref : event.changed_fields) {
    if (ref.starts_with("properties.")) {
      const std::string name = ref.substr(11);
      if (!event.contact.properties.contains(name)) after.contact.properties.erase(name);
    }
  }
  if (event.status) {
    after.status = event.status;
  } else if (event.Changed("status")) {
    after.status.reset();
  }
  after.deleted = event.kind == EventKind::kDeleted;
  return after;
}

void ApplySnapshot(const std::optional<ContactSnapshot>& before, const ContactSnapshot& after,
                   CrmEvent& event) {
  event.contact = after.contact;
  event.status = after.status;
  if (!before) return;
  FieldSet changed;
  auto note = [&](const std::string& ref, const std::optional<std::string>& old_value,
                  const std::optional<std::string>& new_value) {
    if (old_value != new_value) changed.insert(ref);
    if (old_value) event.previous.try_emplace(ref, *old_value);
  };
  for (const NamedField& field : kContactFields) {
    note(field.ref, before->contact.*field.member, after.contact.*field.member);
  }
  note("status", before->status, after.status);
  for (const auto& [name, value] : before->contact.properties) {
    auto now = after.contact.properties.find(name);
    note("properties." + name, value,
         now == after.contact.properties.end() ? std::nullopt : std::optional(now->second));
  }
  for (const auto& [name, value] : after.contact.properties) {
    if (!before->contact.properties.contains(name)) changed.insert("properties." + name);
  }
  event.changed_fields = std::move(changed);
  event.changes_implied = false;
}

std::string StateToJson(const ContactState& state) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  writer.Key("v");
  writer.Int(1);
  writer.Key("c");
  WriteSnapshot(writer, state.current);
  writer.Key("o");
  writer.Int64(state.offset);
  if (!state.history.empty()) {
    writer.Key("h");
    writer.StartArray();
    for (const ContactState::Before& before : state.history) {
      writer.StartObject();
      writer.Key("o");
      writer.Int64(before.offset);
      if (before.snapshot) {
        writer.Key("c");
        WriteSnapshot(writer, *before.snapshot);
      }
      writer.EndObject();
    }
    writer.EndArray();
  }
  if (!state.delivered.empty()) {
    writer.Key("d");
    writer.StartObject();
    for (const auto& [target, hash] : state.delivered) {
      WriteString(writer, target);
      char hex[17];
      std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(hash));
      writer.String(hex, 16);
    }
    writer.EndObject();
  }
  if (!state.delivered_at.empty()) {
    writer.Key("a");
    writer.StartObject();
    for (const auto& [target, offset] : state.delivered_at) {
      WriteString(writer, target);
      writer.Int64(offset);
    }
    writer.EndObject();
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::optional<ContactState> StateFromJson(std::string_view text, std::string& error) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  auto version = doc.FindMember("v");
  if (version == doc.MemberEnd() || !version->value.IsInt() || version->value.GetInt() != 1) {
    error = "unknown state record version (expected \"v\": 1)";
    return std::nullopt;
  }
  ContactState state;
  auto current = doc.FindMember("c");
  if (current == doc.MemberEnd() || !ReadSnapshot(current->value, state.current, error)) {
    if (error.empty()) error = "no current snapshot (\"c\")";
    return std::nullopt;
  }
  if (auto offset = doc.FindMember("o"); offset != doc.MemberEnd() && offset->value.IsInt64()) {
    state.offset = offset->value.GetInt64();
  }
  if (auto history = doc.FindMember("h"); history != doc.MemberEnd() && history->value.IsArray()) {
    for (const auto& item : history->value.GetArray()) {
      ContactState::Before before;
      auto offset = item.IsObject() ? item.FindMember("o") : item.MemberEnd();
      if (!item.IsObject() || offset == item.MemberEnd() || !offset->value.IsInt64()) {
        error = "history entries need an offset";
        return std::nullopt;
      }
      before.offset = offset->value.GetInt64();
      if (auto snapshot = item.FindMember("c"); snapshot != item.MemberEnd()) {
        before.snapshot.emplace();
        if (!ReadSnapshot(snapshot->value, *before.snapshot, error)) return std::nullopt;
      }
      state.history.push_back(std::move(before));
    }
  }
  if (auto delivered = doc.FindMember("d");
      delivered != doc.MemberEnd() && delivered->value.IsObject()) {
    for (const auto& entry : delivered->value.GetObject()) {
      if (!entry.value.IsString()) continue;
      state.delivered[std::string(StringOf(entry.name))] =
          std::strtoull(entry.value.GetString(), nullptr, 16);
    }
  }
  if (auto at = doc.FindMember("a"); at != doc.MemberEnd() && at->value.IsObject()) {
    for (const auto& entry : at->value.GetObject()) {
      if (entry.value.IsInt64()) {
        state.delivered_at[std::string(StringOf(entry.name))] = entry.value.GetInt64();
      }
    }
  }
  return state;
}

uint64_t StableHash(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace crmsync::mapping
