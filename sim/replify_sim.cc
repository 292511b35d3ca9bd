#include "sim/replify_sim.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

namespace crmsync::sim {
namespace {

void WriteOptional(JsonWriter& writer, std::string_view key,
                   const std::optional<std::string>& value) {
  writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  if (value) {
    writer.String(value->data(), static_cast<rapidjson::SizeType>(value->size()));
  } else {
    writer.Null();
  }
}

// Reads an optional string field; null counts as absent. False when the field
// has another type.
bool ReadString(const rapidjson::Value& object, const char* name, std::optional<std::string>& out) {
  const auto it = object.FindMember(name);
  if (it == object.MemberEnd() || it->value.IsNull()) return true;
  if (!it->value.IsString()) return false;
  out.emplace(it->value.GetString(), it->value.GetStringLength());
  return true;
}

// contactMetadata values: the docs show strings; numbers and booleans are
// kept as their JSON text, as a lenient API would.
bool ReadMetadata(const rapidjson::Value& value, std::map<std::string, std::string>& out) {
  if (value.IsNull()) return true;
  if (!value.IsObject()) return false;
  for (const auto& member : value.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& v = member.value;
    if (v.IsString()) {
      out[key].assign(v.GetString(), v.GetStringLength());
    } else if (v.IsBool()) {
      out[key] = v.GetBool() ? "true" : "false";
    } else if (v.IsNumber()) {
      rapidjson::StringBuffer buffer;
      JsonWriter writer(buffer);
      v.Accept(writer);
      out[key].assign(buffer.GetString(), buffer.GetSize());
    } else if (!v.IsNull()) {
      return false;
    }
  }
  return true;
}

std::optional<ReplifyAction> ParseAction(std::string_view name) {
  if (name == "upsert") return ReplifyAction::kUpsert;
  if (name == "updateOnly") return ReplifyAction::kUpdateOnly;
  if (name == "remove") return ReplifyAction::kRemove;
  return std::nullopt;
}

std::optional<std::string> ParseContact(const rapidjson::Value& value, ReplifyContactInput& out) {
  if (!value.IsObject()) return "must be an object";
  const std::pair<const char*, std::optional<std::string>*> fields[] = {
      {"firstName", &out.first_name},
      {"lastName", &out.last_name},
      {"email", &out.email},
      {"phone", &out.phone},
      {"status", &out.status},
      {"externalIdKey", &out.external_id_key},
      {"externalIdValue", &out.external_id_value},
  };
  for (const auto& [name, field] : fields) {
    if (!ReadString(value, name, *field)) return std::string(name) + " must be a string";
  }
  const auto metadata = value.FindMember("contactMetadata");
  if (metadata != value.MemberEnd() && !ReadMetadata(metadata->value, out.metadata)) {
    return "contactMetadata must be an object of string values";
  }
  if (out.email && out.email->empty()) out.email.reset();
  if (out.phone && out.phone->empty()) out.phone.reset();
  return std::nullopt;
}

void Update(ReplifyContact& contact, const ReplifyContactInput& input) {
  if (input.first_name) contact.first_name = *input.first_name;
  if (input.last_name) contact.last_name = *input.last_name;
  if (input.email) contact.email = *input.email;
  if (input.phone) contact.phone = *input.phone;
  if (input.status) contact.status = *input.status;
  for (const auto& [key, value] : input.metadata) contact.metadata[key] = value;
  if (input.external_id_key) contact.external_id_key = *input.external_id_key;
  if (input.external_id_value) contact.external_id_value = *input.external_id_value;
}

std::string Identity(const ReplifyContact& contact) {
  return contact.email.empty() ? contact.phone : contact.email;
}

// Replify's documented rule: these statuses stop outreach, and a contact sent
// with one is not added to a campaign it is not in.
bool StopsOutreach(const std::optional<std::string>& status) {
  if (!status) return false;
  const std::string lower = AsciiLower(*status);
  return lower == "completed" || lower == "disqualified";
}

// The identity a normalising API keeps: a lower-case email, an E.164 phone.
// Returns the problem if the identity cannot be normalised.
std::optional<std::string> Normalize(ReplifyContactInput& input) {
  std::optional<std::string> problem;
  if (input.email) {
    input.email = AsciiLower(*input.email);
    if (input.email->find('@') == std::string::npos) problem = "invalid email";
  }
  if (input.phone) {
    std::string digits;
    for (const char c : *input.phone) {
      if (std::isdigit(static_cast<unsigned char>(c))) digits += c;
    }
    if (digits.empty()) {
      if (!problem) problem = "invalid phone";
    } else {
      if (digits.size() == 10) digits.insert(0, "1");
      input.phone = "+" + digits;
    }
  }
  return problem;
}

void WriteContact(JsonWriter& writer, const ReplifyContact& contact) {
  writer.StartObject();
  const std::pair<std::string_view, const std::string*> fields[] = {
      {"firstName", &contact.first_name}, {"lastName", &contact.last_name},
      {"email", &contact.email},          {"phone", &contact.phone},
      {"status", &contact.status},
  };
  for (const auto& [name, value] : fields) {
    if (!value->empty()) WriteString(writer, name, *value);
  }
  if (!contact.metadata.empty()) {
    writer.Key("contactMetadata");
    writer.StartObject();
    for (const auto& [key, value] : contact.metadata) WriteString(writer, key, value);
    writer.EndObject();
  }
  if (!contact.external_id_key.empty()) {
    WriteString(writer, "externalIdKey", contact.external_id_key);
    WriteString(writer, "externalIdValue", contact.external_id_value);
  }
  writer.EndObject();
}

}  // namespace

std::variant<ReplifyRequest, SimReply> ParseReplifyRequest(std::string_view campaign_id,
                                                           std::string_view body) {
  if (!IsUuid(campaign_id)) return MessageReply(400, "Invalid campaignId");
  rapidjson::Document document;
  document.Parse(body.data(), body.size());
  if (document.HasParseError() || !document.IsObject()) {
    return MessageReply(400, "Request body must be a JSON object");
  }

  ReplifyRequest request;
  request.campaign_id = std::string(campaign_id);
  const auto action = document.FindMember("action");
  if (action != document.MemberEnd()) {
    const auto parsed =
        action->value.IsString()
            ? ParseAction({action->value.GetString(), action->value.GetStringLength()})
            : std::nullopt;
    if (!parsed) return MessageReply(400, "action must be one of upsert, updateOnly, remove");
    request.action = *parsed;
  }

  std::optional<std::string> root_key, root_value;
  if (!ReadString(document, "externalIdKey", root_key) ||
      !ReadString(document, "externalIdValue", root_value)) {
    return MessageReply(400, "externalIdKey and externalIdValue must be strings");
  }
  if (root_key.has_value() != root_value.has_value()) {
    return MessageReply(400, "externalIdKey and externalIdValue must be sent together");
  }

  const auto contacts = document.FindMember("contacts");
  if (contacts == document.MemberEnd() || !contacts->value.IsArray() || contacts->value.Empty()) {
    return MessageReply(400, "contacts must be a non-empty array");
  }
  request.contacts.reserve(contacts->value.Size());
  for (rapidjson::SizeType i = 0; i < contacts->value.Size(); ++i) {
    ReplifyContactInput& input = request.contacts.emplace_back();
    if (auto problem = ParseContact(contacts->value[i], input)) {
      return MessageReply(400, "contacts[" + std::to_string(i) + "]: " + *problem);
    }
  }
  return request;
}

SimReply ReplifyState::Apply(const ReplifyRequest& request, bool normalize_identities) {
  Campaign& campaign = campaigns_[request.campaign_id];

  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  // Results are written as they happen; the summary message needs the counts,
  // so the two arrays are assembled separately and joined at the end.
  rapidjson::StringBuffer success_buffer, errors_buffer;
  JsonWriter success(success_buffer), errors(errors_buffer);
  success.StartArray();
  errors.StartArray();
  size_t succeeded = 0, failed = 0;

  const auto ok = [&](const ReplifyContactInput& input, std::string_view result) {
    success.StartObject();
    WriteOptional(success, "phone", input.phone);
    WriteOptional(success, "email", input.email);
    WriteString(success, "action", result);
    success.EndObject();
    ++succeeded;
  };
  const auto fail = [&](const ReplifyContactInput& input, std::string_view error) {
    errors.StartObject();
    WriteOptional(errors, "email", input.email);
    WriteOptional(errors, "phone", input.phone);
    WriteString(errors, "error", error);
    errors.EndObject();
    ++failed;
  };

  for (const ReplifyContactInput& sent : request.contacts) {
    ReplifyContactInput normalized;
    if (normalize_identities) {
      normalized = sent;
      if (auto problem = Normalize(normalized)) {
        fail(normalized, *problem);
        continue;
      }
    }
    const ReplifyContactInput& input = normalize_identities ? normalized : sent;
    const bool identified = input.email || input.phone;
    const std::optional<std::string> existing = identified ? Find(campaign, input) : std::nullopt;
    switch (request.action) {
      case ReplifyAction::kUpsert:
      case ReplifyAction::kUpdateOnly:
        if (!identified) {
          fail(input, "contact requires email or phone");
        } else if (existing) {
          // Extract and re-insert: an update may change the identity (a
          // phone-only contact gaining an email) or the phone index.
          ReplifyContact contact = Extract(campaign, *existing);
          Update(contact, input);
          Insert(campaign, std::move(contact));
          ok(input, "updated");
        } else if (request.action == ReplifyAction::kUpdateOnly) {
          ok(input, "ignored");
        } else if (StopsOutreach(input.status)) {
          ok(input, "skipped");
        } else {
          ReplifyContact contact;
          Update(contact, input);
          Insert(campaign, std::move(contact));
          ok(input, "created");
        }
        break;
      case ReplifyAction::kRemove:
        if (!identified) {
          fail(input, "email or phone is required to remove a contact");
        } else if (existing) {
          Extract(campaign, *existing);
          ok(input, "removed");
        } else {
          ok(input, "not_found");
        }
        break;
    }
  }
  success.EndArray();
  errors.EndArray();

  writer.StartObject();
  WriteString(writer, "message",
              "Processed " + std::to_string(succeeded) + " contacts successfully, " +
                  std::to_string(failed) + " failed");
  writer.Key("success");
  writer.RawValue(success_buffer.GetString(), success_buffer.GetSize(), rapidjson::kArrayType);
  writer.Key("errors");
  writer.RawValue(errors_buffer.GetString(), errors_buffer.GetSize(), rapidjson::kArrayType);
  writer.EndObject();
  return SimReply{200, std::string(buffer.GetString(), buffer.GetSize())};
}

std::optional<std::string> ReplifyState::Find(const Campaign& campaign,
                                              const ReplifyContactInput& input) {
  if (input.email && campaign.contacts.count(*input.email) != 0) return *input.email;
  if (!input.phone) return std::nullopt;
  const auto it = campaign.by_phone.find(*input.phone);
  if (it == campaign.by_phone.end()) return std::nullopt;
  for (const std::string& identity : it->second) {
    const ReplifyContact& candidate = campaign.contacts.at(identity);
    if (!input.email || candidate.email.empty()) return identity;
  }
  return std::nullopt;
}

void ReplifyState::Insert(Campaign& campaign, ReplifyContact contact) {
  std::string identity = Identity(contact);
  if (!contact.phone.empty()) campaign.by_phone[contact.phone].insert(identity);
  campaign.contacts.insert_or_assign(std::move(identity), std::move(contact));
}

ReplifyContact ReplifyState::Extract(Campaign& campaign, const std::string& identity) {
  auto node = campaign.contacts.extract(identity);
  ReplifyContact contact = std::move(node.mapped());
  if (!contact.phone.empty()) {
    const auto it = campaign.by_phone.find(contact.phone);
    if (it != campaign.by_phone.end()) {
      it->second.erase(identity);
      if (it->second.empty()) campaign.by_phone.erase(it);
    }
  }
  return contact;
}

ReplifyState::Campaigns ReplifyState::Snapshot() const {
  Campaigns out;
  for (const auto& [id, campaign] : campaigns_) {
    out.emplace(id, std::map(campaign.contacts.begin(), campaign.contacts.end()));
  }
  return out;
}

void ReplifyState::WriteJson(JsonWriter& writer) const {
  writer.StartObject();
  writer.Key("campaigns");
  writer.StartObject();
  for (const auto& [id, campaign] : campaigns_) {
    writer.Key(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    writer.StartArray();
    std::vector<const Campaign::Contacts::value_type*> sorted;
    sorted.reserve(campaign.contacts.size());
    for (const auto& entry : campaign.contacts) sorted.push_back(&entry);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    for (const auto* entry : sorted) WriteContact(writer, entry->second);
    writer.EndArray();
  }
  writer.EndObject();
  writer.EndObject();
}

}  // namespace crmsync::sim
