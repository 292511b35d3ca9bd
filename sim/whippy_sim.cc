#include "sim/whippy_sim.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>
#include <utility>
#include <variant>
#include <vector>

namespace crmsync::sim {

// One request as sent. `present` names the contact fields a contact carried,
// so that an update leaves the others as they are.
struct WhippySim::Request {
  enum class Action { kAdd, kRemove, kOverwrite };
  struct Contact {
    WhippyContact fields;
    std::set<std::string> present;
  };

  std::string list_id;
  Action action = Action::kAdd;
  std::string action_name;
  std::vector<Contact> contacts;
  std::vector<std::string> opt_in_to;  // "id:<id>" / "phone:<phone>"
  bool opt_in_to_all_channels = true;  // the documented default
};

namespace {

using Request = WhippySim::Request;

constexpr size_t kMaxContacts = 4000;
constexpr size_t kMaxOptInTo = 1000;
constexpr size_t kMaxTextLength = 255;
constexpr RefusalTexts kRefusalTexts{.internal_error = "Internal server error",
                                     .unavailable = "Service unavailable",
                                     .timed_out = "Gateway timeout"};

// Whippy's error body: {"errors": [{"description": ...}], "status": N}.
SimReply ErrorReply(int status, std::string_view description) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("errors");
  writer.StartArray();
  writer.StartObject();
  WriteString(writer, "description", description);
  writer.EndObject();
  writer.EndArray();
  writer.Key("status");
  writer.Int(status);
  writer.EndObject();
  return SimReply{status, std::string(buffer.GetString(), buffer.GetSize())};
}

// Whippy's limits count characters, not bytes.
size_t Utf8Length(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string JsonText(const rapidjson::Value& value) {
  if (value.IsString()) return std::string(value.GetString(), value.GetStringLength());
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Reads an optional string member (null is absent) into `out` and notes it in
// `present`; the problem when it has another type.
std::optional<std::string> ReadString(const rapidjson::Value& object, const char* name,
                                      std::string& out, std::set<std::string>& present) {
  const auto it = object.FindMember(name);
  if (it == object.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsString()) return std::string(name) + " must be a string";
  out.assign(it->value.GetString(), it->value.GetStringLength());
  present.insert(name);
  return std::nullopt;
}

std::optional<std::string> ParseContact(const rapidjson::Value& value, Request::Contact& out) {
  if (!value.IsObject()) return "must be an object";
  WhippyContact& contact = out.fields;
  const std::pair<const char*, std::string*> strings[] = {
      {"phone", &contact.phone},       {"email", &contact.email},
      {"name", &contact.name},         {"external_id", &contact.external_id},
      {"language", &contact.language}, {"default_channel_id", &contact.default_channel_id},
  };
  for (const auto& [name, field] : strings) {
    if (auto problem = ReadString(value, name, *field, out.present)) return problem;
  }
  if (contact.phone.empty()) return "phone is required";
  if (Utf8Length(contact.email) > kMaxTextLength) return "email should be at most 255 character(s)";
  if (Utf8Length(contact.name) > kMaxTextLength) return "name should be at most 255 character(s)";

  const auto address = value.FindMember("address");
  if (address != value.MemberEnd() && !address->value.IsNull()) {
    if (!address->value.IsObject()) return "address must be an object";
    for (const auto& part : address->value.GetObject()) {
      if (part.value.IsNull()) continue;
      if (!part.value.IsString()) return "address values must be strings";
      contact.address[std::string(part.name.GetString(), part.name.GetStringLength())] =
          JsonText(part.value);
    }
    out.present.insert("address");
  }

  const auto birth_date = value.FindMember("birth_date");
  if (birth_date != value.MemberEnd() && !birth_date->value.IsNull()) {
    if (!birth_date->value.IsObject()) return "birth_date must be an object";
    WhippyBirthDate date;
    const std::pair<const char*, std::optional<int>*> parts[] = {
        {"day", &date.day}, {"month", &date.month}, {"year", &date.year}};
    for (const auto& [name, part] : parts) {
      const auto it = birth_date->value.FindMember(name);
      if (it == birth_date->value.MemberEnd() || it->value.IsNull()) continue;
      if (!it->value.IsInt()) return "birth_date." + std::string(name) + " must be an integer";
      *part = it->value.GetInt();
    }
    contact.birth_date = date;
    out.present.insert("birth_date");
  }

  const auto properties = value.FindMember("properties");
  if (properties != value.MemberEnd() && !properties->value.IsNull()) {
    if (!properties->value.IsObject()) return "properties must be an object";
    for (const auto& property : properties->value.GetObject()) {
      contact.properties[std::string(property.name.GetString(), property.name.GetStringLength())] =
          JsonText(property.value);
    }
  }
  return std::nullopt;
}

std::variant<Request, SimReply> Parse(std::string list_id, std::string_view body) {
  rapidjson::Document document;
  document.Parse(body.data(), body.size());
  if (document.HasParseError() || !document.IsObject()) {
    return ErrorReply(400, "request body must be a JSON object");
  }
  Request request;
  request.list_id = std::move(list_id);

  const auto action = document.FindMember("action");
  if (action == document.MemberEnd() || action->value.IsNull()) {
    return ErrorReply(400, "action is required");
  }
  const std::string_view name =
      action->value.IsString()
          ? std::string_view(action->value.GetString(), action->value.GetStringLength())
          : std::string_view();
  if (name == "add") {
    request.action = Request::Action::kAdd;
  } else if (name == "remove") {
    request.action = Request::Action::kRemove;
  } else if (name == "overwrite") {
    request.action = Request::Action::kOverwrite;
  } else {
    return ErrorReply(400, "action must be one of add, remove, overwrite");
  }
  request.action_name = std::string(name);

  const auto contacts = document.FindMember("contacts");
  if (contacts == document.MemberEnd() || !contacts->value.IsArray()) {
    return ErrorReply(400, "contacts is required and must be an array");
  }
  if (contacts->value.Empty() || contacts->value.Size() > kMaxContacts) {
    return ErrorReply(400, "contacts should have between 1 and 4000 item(s)");
  }
  request.contacts.resize(contacts->value.Size());
  for (rapidjson::SizeType i = 0; i < contacts->value.Size(); ++i) {
    if (auto problem = ParseContact(contacts->value[i], request.contacts[i])) {
      return ErrorReply(400, "contacts[" + std::to_string(i) + "]." + *problem);
    }
  }

  const auto opt_in_to = document.FindMember("opt_in_to");
  if (opt_in_to != document.MemberEnd() && !opt_in_to->value.IsNull()) {
    if (!opt_in_to->value.IsArray() || opt_in_to->value.Empty() ||
        opt_in_to->value.Size() > kMaxOptInTo) {
      return ErrorReply(400, "opt_in_to should have between 1 and 1000 item(s)");
    }
    for (rapidjson::SizeType i = 0; i < opt_in_to->value.Size(); ++i) {
      const rapidjson::Value& entry = opt_in_to->value[i];
      std::optional<std::string> channel;
      for (const char* key : {"id", "phone"}) {
        const auto it = entry.IsObject() ? entry.FindMember(key) : entry.MemberEnd();
        if (entry.IsObject() && it != entry.MemberEnd() && it->value.IsString() &&
            it->value.GetStringLength() > 0) {
          channel = std::string(key) + ":" + JsonText(it->value);
          break;
        }
      }
      if (!channel) {
        return ErrorReply(400, "opt_in_to[" + std::to_string(i) + "] must have an id or a phone");
      }
      request.opt_in_to.push_back(std::move(*channel));
    }
  }

  const auto all_channels = document.FindMember("opt_in_to_all_channels");
  if (all_channels != document.MemberEnd() && !all_channels->value.IsNull()) {
    if (!all_channels->value.IsBool()) {
      return ErrorReply(400, "opt_in_to_all_channels must be a boolean");
    }
    request.opt_in_to_all_channels = all_channels->value.GetBool();
  }
  return request;
}

void WriteContact(JsonWriter& writer, const WhippyContact& contact) {
  writer.StartObject();
  const std::pair<std::string_view, const std::string*> strings[] = {
      {"phone", &contact.phone},       {"email", &contact.email},
      {"name", &contact.name},         {"external_id", &contact.external_id},
      {"language", &contact.language}, {"default_channel_id", &contact.default_channel_id},
  };
  for (const auto& [name, value] : strings) {
    if (!value->empty()) WriteString(writer, name, *value);
  }
  if (!contact.address.empty()) {
    writer.Key("address");
    writer.StartObject();
    for (const auto& [part, value] : contact.address) WriteString(writer, part, value);
    writer.EndObject();
  }
  if (contact.birth_date) {
    writer.Key("birth_date");
    writer.StartObject();
    const std::pair<const char*, const std::optional<int>*> parts[] = {
        {"day", &contact.birth_date->day},
        {"month", &contact.birth_date->month},
        {"year", &contact.birth_date->year}};
    for (const auto& [name, part] : parts) {
      if (!*part) continue;
      writer.Key(name);
      writer.Int(**part);
    }
    writer.EndObject();
  }
  if (!contact.properties.empty()) {
    writer.Key("properties");
    writer.StartObject();
    for (const auto& [key, value] : contact.properties) WriteString(writer, key, value);
    writer.EndObject();
  }
  writer.Key("opted_in_all_channels");
  writer.Bool(contact.opted_in_all_channels);
  writer.Key("opted_in_channels");
  writer.StartArray();
  for (const std::string& channel : contact.opted_in_channels) {
    writer.String(channel.data(), static_cast<rapidjson::SizeType>(channel.size()));
  }
  writer.EndArray();
  writer.EndObject();
}

}  // namespace

void WhippySim::Register(httplib::Server& server, SimHost& host) {
  host_ = &host;
  const std::string list_contacts =
      std::string(kWhippyPathPrefix) + R"(/contacts/lists/([^/]+)/contacts)";
  const auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    SendReply(res, Handle(req.method, req.matches[1].str(), req.get_header_value("X-WHIPPY-KEY"),
                          req.body));
  };
  // All three are routed so that a method other than the configured one gets
  // Whippy's 405 instead of the simulator's generic 404.
  server.Put(list_contacts, handler);
  server.Post(list_contacts, handler);
  server.Patch(list_contacts, handler);

  server.Post("/_sim/whippy/settings", [this](const httplib::Request& req, httplib::Response& res) {
    rapidjson::Document document;
    document.Parse(req.body.data(), req.body.size());
    const bool valid = !document.HasParseError() && document.IsObject() &&
                       document.HasMember("listMethod") && document["listMethod"].IsString() &&
                       SetListMethod(document["listMethod"].GetString());
    SendReply(res, valid ? MessageReply(200, "listMethod is " + ListMethod())
                         : MessageReply(400, "expected {\"listMethod\": \"PUT|POST|PATCH\"}"));
  });
  server.Post(R"(/_sim/whippy/lists/([^/]+))",
              [this](const httplib::Request& req, httplib::Response& res) {
                rapidjson::Document document;
                document.Parse(req.body.data(), req.body.size());
                if (document.HasParseError() || !document.IsObject() ||
                    !document.HasMember("active") || !document["active"].IsBool()) {
                  SendReply(res, MessageReply(400, "expected {\"active\": true|false}"));
                  return;
                }
                SetListActive(req.matches[1].str(), document["active"].GetBool());
                SendReply(res, MessageReply(200, "ok"));
              });
}

SimReply WhippySim::Handle(const std::string& method, const std::string& list_id,
                           const std::string& api_key, const std::string& body) {
  host_->SleepLatency();
  // Parsing needs no state, so it runs outside the lock.
  auto parsed = Parse(list_id, body);
  std::lock_guard lock(host_->Mutex());
  // Routing comes before authentication, as in a web framework's router.
  if (method != list_method_) {
    return ErrorReply(405, "method " + method + " is not allowed on this route");
  }
  if (auto refused = host_->AdmitLocked("whippy", api_key)) {
    return RefusalReply(*refused, host_->KnobsLocked(), &ErrorReply, kRefusalTexts);
  }
  const Knobs& knobs = host_->KnobsLocked();
  if (knobs.enforce_rate_limits) {
    // Counted before validation: the limit is on requests to the endpoint.
    WindowLimiter& limiter =
        limiters_.try_emplace(api_key, kListWritesPerMinute, std::chrono::minutes(1)).first->second;
    if (!limiter.TryAcquire(std::chrono::steady_clock::now(), knobs.rate_limit_time_scale,
                            nullptr)) {
      host_->CountRateLimitedLocked();
      return ErrorReply(429, "Too many requests");
    }
  }
  if (auto* invalid = std::get_if<SimReply>(&parsed)) return std::move(*invalid);
  return ApplyLocked(std::get<Request>(parsed));
}

SimReply WhippySim::ApplyLocked(const Request& request) {
  List& list = lists_[request.list_id];
  if (!list.active) return ErrorReply(422, "contact list is not active");

  // Contacts are upserted into a copy so that a conflict leaves the store as
  // it was: the request fails as a whole.
  Store next = store_;
  for (const Request::Contact& contact : request.contacts) {
    if (auto conflict = Upsert(next, contact.fields, contact.present)) {
      return ErrorReply(422, *conflict);
    }
    if (request.action == Request::Action::kRemove) continue;
    WhippyContact& stored = next.contacts.at(contact.fields.phone);
    // opt_in_to narrows the opt-in to those channels; without it the
    // documented default opts in to all of them.
    if (!request.opt_in_to.empty()) {
      stored.opted_in_channels.insert(request.opt_in_to.begin(), request.opt_in_to.end());
    } else if (request.opt_in_to_all_channels) {
      stored.opted_in_all_channels = true;
    }
  }
  store_ = std::move(next);

  if (request.action == Request::Action::kOverwrite) list.members.clear();
  for (const Request::Contact& contact : request.contacts) {
    if (request.action == Request::Action::kRemove) {
      list.members.erase(contact.fields.phone);
    } else {
      list.members.insert(contact.fields.phone);
    }
  }

  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("data");
  writer.StartObject();
  WriteString(writer, "id", request.list_id);
  WriteString(writer, "action", request.action_name);
  writer.Key("contacts_count");
  writer.Uint64(request.contacts.size());
  writer.Key("members_count");
  writer.Uint64(list.members.size());
  writer.EndObject();
  writer.EndObject();
  return SimReply{200, std::string(buffer.GetString(), buffer.GetSize())};
}

std::optional<std::string> WhippySim::Upsert(Store& store, const WhippyContact& input,
                                             const std::set<std::string>& present) {
  const std::string& phone = input.phone;
  const auto taken = [&](const std::map<std::string, std::string>& index,
                         const std::string& value) {
    const auto it = index.find(value);
    return it != index.end() && it->second != phone;
  };
  if (present.count("email") != 0 && !input.email.empty() && taken(store.by_email, input.email)) {
    return "email " + input.email + " has already been taken by another contact";
  }
  if (present.count("external_id") != 0 && !input.external_id.empty() &&
      taken(store.by_external_id, input.external_id)) {
    return "external_id " + input.external_id + " has already been taken by another contact";
  }

  WhippyContact& contact = store.contacts[phone];
  contact.phone = phone;
  const auto reindex = [&](std::map<std::string, std::string>& index, std::string& field,
                           const std::string& value) {
    if (!field.empty()) index.erase(field);
    field = value;
    if (!field.empty()) index[field] = phone;
  };
  if (present.count("email") != 0) reindex(store.by_email, contact.email, input.email);
  if (present.count("external_id") != 0) {
    reindex(store.by_external_id, contact.external_id, input.external_id);
  }
  if (present.count("name") != 0) contact.name = input.name;
  if (present.count("language") != 0) contact.language = input.language;
  if (present.count("default_channel_id") != 0) {
    contact.default_channel_id = input.default_channel_id;
  }
  if (present.count("address") != 0) contact.address = input.address;
  if (present.count("birth_date") != 0) contact.birth_date = input.birth_date;
  for (const auto& [key, value] : input.properties) contact.properties[key] = value;
  return std::nullopt;
}

void WhippySim::WriteStateLocked(JsonWriter& writer) const {
  WriteString(writer, "listMethod", list_method_);
  writer.Key("lists");
  writer.StartObject();
  for (const auto& [id, list] : lists_) {
    writer.Key(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    writer.StartObject();
    writer.Key("active");
    writer.Bool(list.active);
    writer.Key("members");
    writer.StartArray();
    for (const std::string& phone : list.members) {
      writer.String(phone.data(), static_cast<rapidjson::SizeType>(phone.size()));
    }
    writer.EndArray();
    writer.EndObject();
  }
  writer.EndObject();
  writer.Key("contacts");
  writer.StartArray();
  for (const auto& [phone, contact] : store_.contacts) WriteContact(writer, contact);
  writer.EndArray();
}

void WhippySim::ResetLocked() {
  lists_.clear();
  store_ = Store{};
  limiters_.clear();
}

std::map<std::string, std::map<std::string, WhippyContact>> WhippySim::Lists() const {
  std::map<std::string, std::map<std::string, WhippyContact>> out;
  if (host_ == nullptr) return out;
  std::lock_guard lock(host_->Mutex());
  for (const auto& [id, list] : lists_) {
    auto& members = out[id];
    for (const std::string& phone : list.members) members.emplace(phone, store_.contacts.at(phone));
  }
  return out;
}

std::map<std::string, WhippyContact> WhippySim::Contacts() const {
  if (host_ == nullptr) return {};
  std::lock_guard lock(host_->Mutex());
  return store_.contacts;
}

void WhippySim::SetListActive(const std::string& list_id, bool active) {
  if (host_ == nullptr) return;
  std::lock_guard lock(host_->Mutex());
  lists_[list_id].active = active;
}

bool WhippySim::SetListMethod(std::string_view method) {
  const std::string upper = Upper(method);
  if (upper != "PUT" && upper != "POST" && upper != "PATCH") return false;
  if (host_ == nullptr) {
    list_method_ = upper;
    return true;
  }
  std::lock_guard lock(host_->Mutex());
  list_method_ = upper;
  return true;
}

std::string WhippySim::ListMethod() const {
  if (host_ == nullptr) return list_method_;
  std::lock_guard lock(host_->Mutex());
  return list_method_;
}

}  // namespace crmsync::sim
