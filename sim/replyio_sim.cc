#include "sim/replyio_sim.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>
#include <variant>
#include <vector>

namespace crmsync::sim {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

constexpr char kProblemJson[] = "application/problem+json";
// Inferred: the documentation gives no maximum, Reply's other bulk endpoints take
// 1000 ids.
constexpr size_t kMaxBulkIds = 1000;
constexpr int64_t kDefaultTop = 25;
constexpr int64_t kMaxTop = 1000;

std::optional<int64_t> ParseId(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string Text(const rapidjson::Value& value) {
  return std::string(value.GetString(), value.GetStringLength());
}

// A field error of a 400: where (JSON Pointer) and what.
struct FieldError {
  std::string pointer;
  std::string detail;
};

// Reply.io's error document (RFC 7807 plus a stable code slug).
SimReply Problem(int status, std::string_view code, std::string_view title, std::string_view detail,
                 const std::vector<FieldError>& errors = {}) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  WriteString(writer, "type", "https://docs.reply.io/api-reference/errors#" + std::string(code));
  WriteString(writer, "title", title);
  WriteKey(writer, "status");
  writer.Int(status);
  WriteString(writer, "detail", detail);
  WriteString(writer, "code", code);
  if (!errors.empty()) {
    WriteKey(writer, "errors");
    writer.StartArray();
    for (const FieldError& error : errors) {
      writer.StartObject();
      WriteString(writer, "pointer", error.pointer);
      WriteString(writer, "detail", error.detail);
      writer.EndObject();
    }
    writer.EndArray();
  }
  writer.EndObject();
  SimReply reply{status, std::string(buffer.GetString(), buffer.GetSize())};
  reply.content_type = kProblemJson;
  return reply;
}

SimReply Invalid(std::string_view resource, std::vector<FieldError> errors) {
  return Problem(400, std::string(resource) + ".invalidInput", "Validation failed",
                 "One or more fields are invalid", errors);
}

// Minimal RFC 3339 check: "YYYY-MM-DDTHH:MM:SS" and then anything (fraction,
// offset), which is what a lenient .NET parser accepts.
bool LooksLikeDateTime(std::string_view text) {
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < kShape.size()) return false;
  for (size_t i = 0; i < kShape.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(text[i])) != 0;
    if (kShape[i] == 'd'
            ? !digit
            : (kShape[i] == 'T' ? (text[i] != 'T' && text[i] != 't') : text[i] != kShape[i])) {
      return false;
    }
  }
  return true;
}

void Send(httplib::Response& res, const SimReply& reply) {
  res.status = reply.status;
  if (reply.retry_after_seconds) {
    res.set_header("Retry-After", std::to_string(*reply.retry_after_seconds));
  }
  if (reply.status == 401) {
    // Reply.io answers a bad token with an empty body.
    res.set_header("WWW-Authenticate", "Bearer");
    return;
  }
  res.set_content(reply.body, reply.content_type.c_str());
}

}  // namespace

struct ReplyIoSim::State {
  struct Sequence {
    std::map<int64_t, ReplyIoEnrollment> enrolled;  // by contact id
  };
  struct Limiters {
    WindowLimiter minute;
    WindowLimiter hour;
  };

  std::map<int64_t, ReplyIoContact> contacts;
  std::map<std::string, int64_t> by_email;  // lower-cased
  int64_t next_id = 1;
  std::map<int64_t, Sequence> sequences;
  size_t enrollments = 0;  // across all sequences: what the plan limit counts
  std::set<int64_t> missing_sequences, forbidden_sequences, forbidden_contacts;
  std::optional<size_t> contact_limit;
  ReplyIoRateLimits rate_limits;
  std::map<std::string, Limiters> limiters;  // by API key

  int64_t Create(const std::string& email) {
    const std::string key = AsciiLower(email);
    if (const auto it = by_email.find(key); it != by_email.end()) return it->second;
    ReplyIoContact contact;
    contact.id = next_id++;
    contact.email = email;
    by_email.emplace(key, contact.id);
    contacts.emplace(contact.id, contact);
    return contact.id;
  }

  void Unenroll(Sequence& sequence, int64_t contact_id) {
    enrollments -= sequence.enrolled.erase(contact_id);
  }

  // A rate-limit 429, or nullopt when the request may go. Both windows
  // count every admitted request: one refused by the hourly limit still
  // counts in the minute window, as a request Reply.io received.
  std::optional<SimReply> Limit(const std::string& key, double scale) {
    auto it = limiters.find(key);
    if (it == limiters.end()) {
      it = limiters
               .emplace(key, Limiters{WindowLimiter(rate_limits.per_minute, minutes(1)),
                                      WindowLimiter(rate_limits.per_hour, hours(1))})
               .first;
    }
    const auto now = std::chrono::steady_clock::now();
    std::chrono::milliseconds wait{0};
    std::string detail;
    if (!it->second.minute.TryAcquire(now, scale, &wait)) {
      detail = std::to_string(rate_limits.per_minute) + " requests per minute exceeded";
    } else if (!it->second.hour.TryAcquire(now, scale, &wait)) {
      detail = std::to_string(rate_limits.per_hour) + " requests per hour exceeded";
    } else {
      return std::nullopt;
    }
    SimReply reply = Problem(429, "rateLimit.exceeded", "Too Many Requests", detail);
    // Whole seconds, rounded up and at least 1: waiting that long always
    // frees a slot.
    reply.retry_after_seconds = static_cast<int>(std::max<int64_t>(1, (wait.count() + 999) / 1000));
    return reply;
  }

  SimReply Filter(const rapidjson::Document& body, const httplib::Request& req);
  SimReply Import(const rapidjson::Document& body);
  SimReply BulkAdd(int64_t sequence_id, const rapidjson::Document& body);
  SimReply BulkDelete(int64_t sequence_id, const rapidjson::Document& body);
  std::optional<SimReply> SequenceProblem(int64_t sequence_id) const;
  // contactIds of a bulk body, or the 400.
  static std::variant<std::vector<int64_t>, SimReply> ContactIds(const rapidjson::Document& body);
  void WriteContact(JsonWriter& writer, const ReplyIoContact& contact) const;
};

void ReplyIoSim::State::WriteContact(JsonWriter& writer, const ReplyIoContact& contact) const {
  writer.StartObject();
  WriteKey(writer, "id");
  writer.Int64(contact.id);
  WriteString(writer, "email", contact.email);
  WriteString(writer, "firstName", contact.first_name);
  WriteString(writer, "lastName", contact.last_name);
  WriteString(writer, "phone", contact.phone);
  WriteKey(writer, "sequences");
  writer.StartArray();
  for (const auto& [id, sequence] : sequences) {
    if (sequence.enrolled.count(contact.id) == 0) continue;
    writer.StartObject();
    WriteKey(writer, "sequenceId");
    writer.Int64(id);
    WriteString(writer, "status", "active");
    writer.EndObject();
  }
  writer.EndArray();
  writer.EndObject();
}

// Rules are conjunctive. Supported: property "email", "firstName",
// "lastName", "phone"; condition "equals" (also "eq", "is") or "contains",
// case-insensitive. Reply.io's docs do not name the conditions:
// these are inferred.
SimReply ReplyIoSim::State::Filter(const rapidjson::Document& body, const httplib::Request& req) {
  struct Rule {
    std::string property, value;
    bool contains = false;
  };
  std::vector<Rule> rules;
  std::vector<FieldError> errors;
  const auto found = body.FindMember("rules");
  if (found != body.MemberEnd() && !found->value.IsNull()) {
    if (!found->value.IsArray()) {
      return Invalid("contact", {{"/rules", "must be an array"}});
    }
    for (rapidjson::SizeType i = 0; i < found->value.Size(); ++i) {
      const rapidjson::Value& rule = found->value[i];
      const std::string at = "/rules/" + std::to_string(i);
      if (!rule.IsObject()) {
        errors.push_back({at, "must be an object"});
        continue;
      }
      Rule parsed;
      for (const char* name : {"property", "condition", "value"}) {
        const auto it = rule.FindMember(name);
        if (it == rule.MemberEnd() || !it->value.IsString()) {
          errors.push_back({at + "/" + name, "must be a string"});
        }
      }
      if (!errors.empty()) continue;
      parsed.property = Text(rule["property"]);
      const std::string condition = AsciiLower(Text(rule["condition"]));
      parsed.value = AsciiLower(Text(rule["value"]));
      if (parsed.property != "email" && parsed.property != "firstName" &&
          parsed.property != "lastName" && parsed.property != "phone") {
        errors.push_back({at + "/property", "unknown property '" + parsed.property + "'"});
      }
      if (condition == "contains") {
        parsed.contains = true;
      } else if (condition != "equals" && condition != "eq" && condition != "is") {
        errors.push_back({at + "/condition", "unknown condition '" + condition + "'"});
      }
      rules.push_back(std::move(parsed));
    }
  }
  int64_t top = kDefaultTop, skip = 0;
  if (req.has_param("top")) {
    const auto value = ParseId(req.get_param_value("top"));
    if (!value || *value < 1 || *value > kMaxTop) errors.push_back({"/top", "must be 1..1000"});
    top = value.value_or(kDefaultTop);
  }
  if (req.has_param("skip")) {
    const auto value = ParseId(req.get_param_value("skip"));
    if (!value || *value < 0) errors.push_back({"/skip", "must be >= 0"});
    skip = value.value_or(0);
  }
  if (!errors.empty()) return Invalid("contact", std::move(errors));

  std::vector<const ReplyIoContact*> matches;
  for (const auto& [id, contact] : contacts) {
    const bool match = std::all_of(rules.begin(), rules.end(), [&](const Rule& rule) {
      const std::string field = AsciiLower(rule.property == "email"       ? contact.email
                                           : rule.property == "firstName" ? contact.first_name
                                           : rule.property == "lastName"  ? contact.last_name
                                                                          : contact.phone);
      return rule.contains ? field.find(rule.value) != std::string::npos : field == rule.value;
    });
    if (match) matches.push_back(&contact);
  }
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  WriteKey(writer, "items");
  writer.StartArray();
  const size_t begin = std::min(matches.size(), static_cast<size_t>(skip));
  const size_t end = std::min(matches.size(), begin + static_cast<size_t>(top));
  for (size_t i = begin; i < end; ++i) WriteContact(writer, *matches[i]);
  writer.EndArray();
  WriteKey(writer, "hasMore");
  writer.Bool(end < matches.size());
  WriteKey(writer, "totalCount");
  writer.Uint64(matches.size());
  writer.EndObject();
  return SimReply{200, std::string(buffer.GetString(), buffer.GetSize())};
}

SimReply ReplyIoSim::State::Import(const rapidjson::Document& body) {
  const auto items = body.FindMember("items");
  if (items == body.MemberEnd() || !items->value.IsArray() || items->value.Empty()) {
    return Invalid("contact", {{"/items", "must be a non-empty array"}});
  }
  bool overwrite = false;
  if (const auto options = body.FindMember("options"); options != body.MemberEnd()) {
    if (!options->value.IsObject()) return Invalid("contact", {{"/options", "must be an object"}});
    const auto it = options->value.FindMember("overwriteExisting");
    if (it != options->value.MemberEnd()) {
      if (!it->value.IsBool()) {
        return Invalid("contact", {{"/options/overwriteExisting", "must be a boolean"}});
      }
      overwrite = it->value.GetBool();
    }
  }
  size_t added = 0, updated = 0, skipped = 0, failed = 0;
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  WriteKey(writer, "items");
  writer.StartArray();
  for (const auto& item : items->value.GetArray()) {
    const auto result = [&](std::optional<int64_t> id, std::string_view status,
                            std::optional<std::string_view> error) {
      writer.StartObject();
      WriteKey(writer, "id");
      id ? writer.Int64(*id) : writer.Null();
      WriteString(writer, "status", status);
      WriteKey(writer, "error");
      error ? writer.String(error->data(), static_cast<rapidjson::SizeType>(error->size()))
            : writer.Null();
      writer.EndObject();
    };
    const auto email =
        item.IsObject() ? item.FindMember("email") : rapidjson::Value::ConstMemberIterator();
    if (!item.IsObject() || email == item.MemberEnd() || !email->value.IsString() ||
        email->value.GetStringLength() == 0) {
      result(std::nullopt, "failed", "Email is required");
      ++failed;
      continue;
    }
    const std::string address = Text(email->value);
    if (address.find('@') == std::string::npos) {
      result(std::nullopt, "failed", "Email is invalid");
      ++failed;
      continue;
    }
    const auto existing = by_email.find(AsciiLower(address));
    if (existing != by_email.end() && !overwrite) {
      result(existing->second, "skipped", std::nullopt);
      ++skipped;
      continue;
    }
    const bool create = existing == by_email.end();
    const int64_t id = create ? Create(address) : existing->second;
    ReplyIoContact& contact = contacts.at(id);
    const std::pair<const char*, std::string*> fields[] = {
        {"firstName", &contact.first_name},
        {"lastName", &contact.last_name},
        {"phone", &contact.phone},
    };
    for (const auto& [name, field] : fields) {
      const auto it = item.FindMember(name);
      if (it != item.MemberEnd() && it->value.IsString()) *field = Text(it->value);
    }
    result(id, create ? "created" : "updated", std::nullopt);
    ++(create ? added : updated);
  }
  writer.EndArray();
  for (const auto& [name, count] : {std::pair<const char*, size_t>{"added", added},
                                    {"updated", updated},
                                    {"skipped", skipped},
                                    {"failed", failed}}) {
    WriteKey(writer, name);
    writer.Uint64(count);
  }
  writer.EndObject();
  return SimReply{200, std::string(buffer.GetString(), buffer.GetSize())};
}

std::optional<SimReply> ReplyIoSim::State::SequenceProblem(int64_t sequence_id) const {
  if (sequence_id <= 0 || missing_sequences.count(sequence_id) != 0) {
    return Problem(404, "sequence.notFound", "Not Found",
                   "Sequence " + std::to_string(sequence_id) + " was not found");
  }
  return std::nullopt;
}

std::variant<std::vector<int64_t>, SimReply> ReplyIoSim::State::ContactIds(
    const rapidjson::Document& body) {
  const auto ids = body.FindMember("contactIds");
  if (ids == body.MemberEnd() || !ids->value.IsArray() || ids->value.Empty()) {
    return Invalid("sequence", {{"/contactIds", "must be a non-empty array of integers"}});
  }
  if (ids->value.Size() > kMaxBulkIds) {
    return Invalid("sequence", {{"/contactIds", "at most 1000 ids per request"}});
  }
  std::vector<int64_t> out;
  std::vector<FieldError> errors;
  for (rapidjson::SizeType i = 0; i < ids->value.Size(); ++i) {
    if (!ids->value[i].IsInt64()) {
      errors.push_back({"/contactIds/" + std::to_string(i), "must be an integer"});
    } else {
      out.push_back(ids->value[i].GetInt64());
    }
  }
  if (!errors.empty()) return Invalid("sequence", std::move(errors));
  return out;
}

SimReply ReplyIoSim::State::BulkAdd(int64_t sequence_id, const rapidjson::Document& body) {
  auto parsed = ContactIds(body);
  if (auto* invalid = std::get_if<SimReply>(&parsed)) return std::move(*invalid);
  const std::vector<int64_t>& ids = std::get<std::vector<int64_t>>(parsed);

  bool remove_from_existing = false;
  ReplyIoEnrollment enrollment;
  std::vector<FieldError> errors;
  for (const char* name : {"removeFromExisting", "ignoreStepDelay"}) {
    const auto it = body.FindMember(name);
    if (it == body.MemberEnd() || it->value.IsNull()) continue;
    if (!it->value.IsBool()) {
      errors.push_back({std::string("/") + name, "must be a boolean"});
      continue;
    }
    (std::string_view(name) == "removeFromExisting" ? remove_from_existing
                                                    : enrollment.ignore_step_delay) =
        it->value.GetBool();
  }
  if (const auto it = body.FindMember("startStepId");
      it != body.MemberEnd() && !it->value.IsNull()) {
    if (it->value.IsInt64()) {
      enrollment.start_step_id = it->value.GetInt64();
    } else {
      errors.push_back({"/startStepId", "must be an integer or null"});
    }
  }
  if (const auto it = body.FindMember("startFrom"); it != body.MemberEnd() && !it->value.IsNull()) {
    if (it->value.IsString() && LooksLikeDateTime(Text(it->value))) {
      enrollment.start_from = Text(it->value);
    } else {
      errors.push_back({"/startFrom", "must be a date-time or null"});
    }
  }
  if (!errors.empty()) return Invalid("sequence", std::move(errors));
  if (auto problem = SequenceProblem(sequence_id)) return std::move(*problem);

  Sequence& sequence = sequences[sequence_id];
  const bool sequence_forbidden = forbidden_sequences.count(sequence_id) != 0;
  std::vector<int64_t> added;
  std::map<int64_t, std::string_view> not_processed;
  std::set<int64_t> seen;
  for (const int64_t id : ids) {
    if (!seen.insert(id).second) continue;
    if (id <= 0) {
      not_processed[id] = "invalidInput";
    } else if (contacts.count(id) == 0) {
      not_processed[id] = "contactNotFound";
    } else if (sequence_forbidden || forbidden_contacts.count(id) != 0) {
      not_processed[id] = "forbidden";
    } else if (sequence.enrolled.count(id) != 0) {
      not_processed[id] = "contactAlreadyInSequence";
    } else {
      size_t elsewhere = 0;
      if (remove_from_existing) {
        for (const auto& [other_id, other] : sequences) elsewhere += other.enrolled.count(id);
      }
      if (contact_limit && enrollments - elsewhere >= *contact_limit) {
        not_processed[id] = "contactLimitExceeded";
        continue;
      }
      if (remove_from_existing) {
        for (auto& [other_id, other] : sequences) Unenroll(other, id);
      }
      sequence.enrolled.emplace(id, enrollment);
      ++enrollments;
      added.push_back(id);
    }
  }
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  WriteKey(writer, "added");
  writer.StartArray();
  for (const int64_t id : added) writer.Int64(id);
  writer.EndArray();
  WriteKey(writer, "notProcessed");
  writer.StartObject();
  for (const auto& [id, slug] : not_processed) WriteString(writer, std::to_string(id), slug);
  writer.EndObject();
  writer.EndObject();
  return SimReply{200, std::string(buffer.GetString(), buffer.GetSize())};
}

SimReply ReplyIoSim::State::BulkDelete(int64_t sequence_id, const rapidjson::Document& body) {
  auto parsed = ContactIds(body);
  if (auto* invalid = std::get_if<SimReply>(&parsed)) return std::move(*invalid);
  if (auto problem = SequenceProblem(sequence_id)) return std::move(*problem);
  if (forbidden_sequences.count(sequence_id) != 0) {
    return Problem(403, "sequence.forbidden", "Forbidden",
                   "Access to sequence " + std::to_string(sequence_id) + " is denied");
  }
  Sequence& sequence = sequences[sequence_id];
  std::set<int64_t> ids(std::get<std::vector<int64_t>>(parsed).begin(),
                        std::get<std::vector<int64_t>>(parsed).end());
  size_t not_found = 0, not_in_sequence = 0;
  std::vector<int64_t> removed;
  for (const int64_t id : ids) {
    if (contacts.count(id) == 0) {
      ++not_found;
    } else if (sequence.enrolled.count(id) == 0) {
      ++not_in_sequence;
    } else {
      Unenroll(sequence, id);
      removed.push_back(id);
    }
  }
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  for (const auto& [name, count] : {std::pair<const char*, size_t>{"requested", ids.size()},
                                    {"removed", removed.size()},
                                    {"notFound", not_found},
                                    {"notInSequence", not_in_sequence}}) {
    WriteKey(writer, name);
    writer.Uint64(count);
  }
  WriteKey(writer, "removedIds");
  writer.StartArray();
  for (const int64_t id : removed) writer.Int64(id);
  writer.EndArray();
  writer.EndObject();
  return SimReply{200, std::string(buffer.GetString(), buffer.GetSize())};
}

ReplyIoSim::ReplyIoSim() : state_(std::make_unique<State>()) {}
ReplyIoSim::~ReplyIoSim() = default;

void ReplyIoSim::Register(httplib::Server& server, SimHost& host) {
  host_ = &host;
  const std::string prefix(PathPrefix());
  const std::pair<std::string, Route> routes[] = {
      {prefix + "/v3/contacts/filter", Route::kFilter},
      {prefix + "/v3/contacts/import", Route::kImport},
      {prefix + R"(/v3/sequences/([^/]+)/contact-links/bulk)", Route::kBulkAdd},
      {prefix + R"(/v3/sequences/([^/]+)/contact-links/bulk-delete)", Route::kBulkDelete},
  };
  for (const auto& [pattern, route] : routes) {
    server.Post(pattern, [this, kind = route](const httplib::Request& req, httplib::Response& res) {
      Handle(req, res, kind);
    });
  }
}

void ReplyIoSim::Handle(const httplib::Request& req, httplib::Response& res, Route route) {
  host_->SleepLatency();
  // Parsing needs no state, so it runs outside the lock.
  rapidjson::Document body;
  body.Parse(req.body.data(), req.body.size());
  const bool body_ok = !body.HasParseError() && body.IsObject();
  const bool sequence_route = route == Route::kBulkAdd || route == Route::kBulkDelete;
  const std::optional<int64_t> parsed_id =
      sequence_route ? ParseId(req.matches[1].str()) : std::nullopt;
  const int64_t sequence_id = parsed_id.value_or(0);
  const std::string token = BearerToken(req);

  SimReply reply;
  {
    std::lock_guard lock(host_->Mutex());
    if (const auto refused = host_->AdmitLocked(kName, token)) {
      switch (*refused) {
        case Refusal::kUnauthorized:
          reply = SimReply{401, ""};
          break;
        case Refusal::kInjected500:
          reply = Problem(500, "server.error", "Internal Server Error", "Unexpected error");
          break;
        case Refusal::kInjected503:
          reply = Problem(503, "server.unavailable", "Service Unavailable", "Try again later");
          break;
        case Refusal::kThrottled:
          reply = Problem(429, "rateLimit.exceeded", "Too Many Requests", "Too many requests");
          reply.retry_after_seconds = host_->KnobsLocked().throttle_retry_after_seconds;
          break;
        case Refusal::kTimedOut:
          reply = Problem(504, "server.timeout", "Gateway Timeout", "The request timed out");
          break;
      }
    } else if (auto limited = host_->KnobsLocked().enforce_rate_limits
                                  ? state_->Limit(token, host_->KnobsLocked().rate_limit_time_scale)
                                  : std::nullopt) {
      host_->CountRateLimitedLocked();
      reply = std::move(*limited);
    } else if (!body_ok) {
      reply = Invalid(sequence_route ? "sequence" : "contact",
                      {{"", "request body must be a JSON object"}});
    } else if (sequence_route && !parsed_id) {
      reply = Invalid("sequence", {{"/id", "sequence id must be an integer"}});
    } else {
      switch (route) {
        case Route::kFilter:
          reply = state_->Filter(body, req);
          break;
        case Route::kImport:
          reply = state_->Import(body);
          break;
        case Route::kBulkAdd:
          reply = state_->BulkAdd(sequence_id, body);
          break;
        case Route::kBulkDelete:
          reply = state_->BulkDelete(sequence_id, body);
          break;
      }
    }
  }
  Send(res, reply);
}

void ReplyIoSim::WriteStateLocked(JsonWriter& writer) const {
  const State& state = *state_;
  WriteKey(writer, "contacts");
  writer.StartArray();
  for (const auto& [id, contact] : state.contacts) state.WriteContact(writer, contact);
  writer.EndArray();
  WriteKey(writer, "sequences");
  writer.StartObject();
  for (const auto& [id, sequence] : state.sequences) {
    WriteKey(writer, std::to_string(id));
    writer.StartArray();
    for (const auto& [contact_id, enrollment] : sequence.enrolled) {
      const auto contact = state.contacts.find(contact_id);
      if (contact == state.contacts.end()) continue;
      writer.String(contact->second.email.data(),
                    static_cast<rapidjson::SizeType>(contact->second.email.size()));
    }
    writer.EndArray();
  }
  writer.EndObject();
  for (const auto& [name, ids] : {std::pair<const char*, const std::set<int64_t>*>{
                                      "missingSequences", &state.missing_sequences},
                                  {"forbiddenSequences", &state.forbidden_sequences},
                                  {"forbiddenContacts", &state.forbidden_contacts}}) {
    WriteKey(writer, name);
    writer.StartArray();
    for (const int64_t id : *ids) writer.Int64(id);
    writer.EndArray();
  }
  WriteKey(writer, "contactLimit");
  state.contact_limit ? writer.Uint64(*state.contact_limit) : writer.Null();
}

void ReplyIoSim::ResetLocked() {
  // The rate limits are configuration, not state: a reset keeps them.
  const ReplyIoRateLimits limits = state_->rate_limits;
  *state_ = State{};
  state_->rate_limits = limits;
}

std::map<int64_t, std::set<std::string>> ReplyIoSim::Sequences() const {
  std::lock_guard lock(host_->Mutex());
  std::map<int64_t, std::set<std::string>> out;
  for (const auto& [id, sequence] : state_->sequences) {
    std::set<std::string>& emails = out[id];
    for (const auto& [contact_id, enrollment] : sequence.enrolled) {
      emails.insert(state_->contacts.at(contact_id).email);
    }
  }
  return out;
}

std::map<int64_t, ReplyIoContact> ReplyIoSim::Contacts() const {
  std::lock_guard lock(host_->Mutex());
  return state_->contacts;
}

std::optional<ReplyIoEnrollment> ReplyIoSim::Enrollment(int64_t sequence_id,
                                                        int64_t contact_id) const {
  std::lock_guard lock(host_->Mutex());
  const auto sequence = state_->sequences.find(sequence_id);
  if (sequence == state_->sequences.end()) return std::nullopt;
  const auto it = sequence->second.enrolled.find(contact_id);
  if (it == sequence->second.enrolled.end()) return std::nullopt;
  return it->second;
}

int64_t ReplyIoSim::CreateContact(const std::string& email) {
  std::lock_guard lock(host_->Mutex());
  return state_->Create(email);
}

void ReplyIoSim::DeleteContact(int64_t contact_id) {
  std::lock_guard lock(host_->Mutex());
  const auto it = state_->contacts.find(contact_id);
  if (it == state_->contacts.end()) return;
  state_->by_email.erase(AsciiLower(it->second.email));
  state_->contacts.erase(it);
  for (auto& [id, sequence] : state_->sequences) state_->Unenroll(sequence, contact_id);
}

void ReplyIoSim::MarkSequenceMissing(int64_t sequence_id) {
  std::lock_guard lock(host_->Mutex());
  state_->missing_sequences.insert(sequence_id);
}

void ReplyIoSim::MarkSequenceForbidden(int64_t sequence_id) {
  std::lock_guard lock(host_->Mutex());
  state_->forbidden_sequences.insert(sequence_id);
}

void ReplyIoSim::MarkContactForbidden(int64_t contact_id) {
  std::lock_guard lock(host_->Mutex());
  state_->forbidden_contacts.insert(contact_id);
}

void ReplyIoSim::SetContactLimit(std::optional<size_t> limit) {
  std::lock_guard lock(host_->Mutex());
  state_->contact_limit = limit;
}

void ReplyIoSim::SetRateLimits(const ReplyIoRateLimits& limits) {
  std::lock_guard lock(host_->Mutex());
  state_->rate_limits = limits;
  state_->limiters.clear();
}

}  // namespace crmsync::sim
