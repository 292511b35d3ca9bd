#include "sim/campaignlark_sim.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <set>
#include <utility>
#include <variant>

namespace crmsync::sim {
namespace {

// The documentation's exact messages.
constexpr char kEmailRequired[] = "Email address is required for upsert operation.";
constexpr char kStatusInvalid[] = "The status you provided is not valid.";
constexpr char kUnknownMergeTag[] = "We were unable to find a field with the merge_tag ";
constexpr std::string_view kSubscribed = "SUBSCRIBED";
constexpr std::string_view kStatuses[] = {"SUBSCRIBED", "UNSUBSCRIBED", "UNCONFIRMED", "CLEANED",
                                          "COMPLAINED"};
// "The upsert endpoint ignores fields.email_address" (seed).
constexpr std::string_view kEmailMergeTag = "email_address";

// CampaignLark's documented rate limit: per workspace, and the simulator has
// one workspace.
constexpr int kRequestsPerSecond = 100;

// {"error": {"message": message}}: CampaignLark's error body.
SimReply ErrorReply(int status, std::string_view message) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("error");
  writer.StartObject();
  WriteString(writer, "message", message);
  writer.EndObject();
  writer.EndObject();
  return SimReply{status, std::string(buffer.GetString(), buffer.GetSize())};
}

// The token of "Authorization: Bearer <token>" (the scheme is
// case-insensitive, RFC 7235); "" when there is none.
std::string Now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// Field values: the documentation shows strings; numbers and booleans are kept as their
// JSON text, as a lenient API would. nullopt clears the field.
bool ReadFieldValue(const rapidjson::Value& value, std::optional<std::string>& out) {
  if (value.IsNull()) {
    out.reset();
  } else if (value.IsString()) {
    out.emplace(value.GetString(), value.GetStringLength());
  } else if (value.IsBool()) {
    out = value.GetBool() ? "true" : "false";
  } else if (value.IsNumber()) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    value.Accept(writer);
    out.emplace(buffer.GetString(), buffer.GetSize());
  } else {
    return false;
  }
  if (out && out->empty()) out.reset();
  return true;
}

// {"tags": [positive int, ...]}, the body of the tags add/remove endpoints
// and the upsert's tags member.
bool ReadTagIds(const rapidjson::Value& value, std::vector<int64_t>& out) {
  if (!value.IsArray()) return false;
  for (const auto& id : value.GetArray()) {
    if (!id.IsInt64() || id.GetInt64() <= 0) return false;
    out.push_back(id.GetInt64());
  }
  return true;
}

std::variant<std::vector<int64_t>, SimReply> ParseTagChange(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  std::vector<int64_t> ids;
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("tags") ||
      !ReadTagIds(doc["tags"], ids)) {
    return ErrorReply(400, "tags must be an array of tag ids.");
  }
  return ids;
}

void SortUnique(std::vector<int64_t>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

}  // namespace

std::variant<CampaignLarkUpsert, SimReply> ParseCampaignLarkUpsert(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return ErrorReply(400, "The request body must be a JSON object.");
  }
  CampaignLarkUpsert input;
  const auto email = doc.FindMember("email_address");
  if (email == doc.MemberEnd() || !email->value.IsString() || email->value.GetStringLength() == 0) {
    return ErrorReply(400, kEmailRequired);
  }
  input.email.assign(email->value.GetString(), email->value.GetStringLength());

  const auto status = doc.FindMember("status");
  if (status != doc.MemberEnd() && !status->value.IsNull()) {
    const std::string_view text =
        status->value.IsString()
            ? std::string_view(status->value.GetString(), status->value.GetStringLength())
            : std::string_view();
    if (std::find(std::begin(kStatuses), std::end(kStatuses), text) == std::end(kStatuses)) {
      return ErrorReply(400, kStatusInvalid);
    }
    input.status = std::string(text);
  }

  const auto fields = doc.FindMember("fields");
  if (fields != doc.MemberEnd() && !fields->value.IsNull()) {
    if (!fields->value.IsObject()) return ErrorReply(400, "fields must be an object.");
    for (const auto& member : fields->value.GetObject()) {
      std::string tag(member.name.GetString(), member.name.GetStringLength());
      if (tag == kEmailMergeTag) continue;
      std::optional<std::string> value;
      if (!ReadFieldValue(member.value, value)) {
        return ErrorReply(400, "The value of field " + tag + " is not valid.");
      }
      input.fields.emplace_back(std::move(tag), std::move(value));
    }
  }

  const auto tags = doc.FindMember("tags");
  if (tags != doc.MemberEnd() && !tags->value.IsNull()) {
    input.tags.emplace();
    if (!ReadTagIds(tags->value, *input.tags)) {
      return ErrorReply(400, "tags must be an array of tag ids.");
    }
  }

  const auto partial = doc.FindMember("partial_update");
  if (partial != doc.MemberEnd() && !partial->value.IsNull()) {
    if (!partial->value.IsBool()) return ErrorReply(400, "partial_update must be a boolean.");
    input.partial_update = partial->value.GetBool();
  }
  return input;
}

CampaignLarkWorkspace CampaignLarkWorkspace::Default() {
  CampaignLarkWorkspace workspace;
  workspace.fields = {
      {"first_name", "First Name", false},
      {"last_name", "Last Name", false},
      {"company", "Company", false},
      {"phone", "Phone", false},
      {"tier", "Tier", false},
      {"lifecycle_stage", "Lifecycle Stage", false},
      {"job_title", "Job Title", false},
      {"city", "City", false},
      {"country", "Country", false},
      {"source", "Source", false},
  };
  const char* const names[] = {"newsletter", "vip",     "customer", "trial",       "lead",
                               "partner",    "webinar", "event",    "churned",     "beta",
                               "enterprise", "smb",     "europe",   "americas",    "apac",
                               "onboarding", "nurture", "reengage", "do-not-call", "crm-sync"};
  int64_t id = 1;
  for (const char* name : names) workspace.tags.emplace(id++, name);
  return workspace;
}

CampaignLarkSim::CampaignLarkSim()
    : workspace_(CampaignLarkWorkspace::Default()),
      limiter_(kRequestsPerSecond, std::chrono::seconds(1)) {}

template <typename Handle>
SimReply CampaignLarkSim::Serve(const httplib::Request& req, Handle handle) {
  host_->SleepLatency();
  std::lock_guard lock(host_->Mutex());
  if (auto refused = RefuseLocked(req)) return std::move(*refused);
  return handle();
}

void CampaignLarkSim::Register(httplib::Server& server, SimHost& host) {
  host_ = &host;
  const std::string prefix(kCampaignLarkPathPrefix);
  const auto send = [](httplib::Response& res, const SimReply& reply) {
    res.status = reply.status;
    if (reply.retry_after_seconds) {
      res.set_header("Retry-After", std::to_string(*reply.retry_after_seconds));
    }
    res.set_content(reply.body, reply.content_type.c_str());
  };

  server.Post(prefix + "/contacts/upsert",
              [this, send](const httplib::Request& req, httplib::Response& res) {
                // Parsing needs no state, so it runs outside the lock; its
                // verdict only counts once the request is admitted.
                auto parsed = ParseCampaignLarkUpsert(req.body);
                send(res, Serve(req, [&] {
                       if (auto* invalid = std::get_if<SimReply>(&parsed)) return *invalid;
                       return UpsertLocked(std::get<CampaignLarkUpsert>(parsed));
                     }));
              });
  server.Get(prefix + "/contacts/by-email",
             [this, send](const httplib::Request& req, httplib::Response& res) {
               const std::string email = req.get_param_value("email");
               send(res, Serve(req, [&] { return ByEmailLocked(email); }));
             });
  server.Post(prefix + R"(/contacts/([^/]+)/tags/(add|remove))",
              [this, send](const httplib::Request& req, httplib::Response& res) {
                const std::string id = req.matches[1].str();
                const bool add = req.matches[2].str() == "add";
                auto parsed = ParseTagChange(req.body);
                send(res, Serve(req, [&] {
                       if (auto* invalid = std::get_if<SimReply>(&parsed)) return *invalid;
                       return ChangeTagsLocked(id, std::get<std::vector<int64_t>>(parsed), add);
                     }));
              });
}

std::optional<SimReply> CampaignLarkSim::RefuseLocked(const httplib::Request& req) {
  if (auto refused = host_->AdmitLocked(kName, BearerToken(req))) {
    // Unlike its documented rate limit, an injected burst (a gateway in
    // front of the API) sends a Retry-After.
    return RefusalReply(*refused, host_->KnobsLocked(), &ErrorReply, RefusalTexts{});
  }
  // The key names the workspace whose allow-list applies, so the key is
  // checked first.
  if (!workspace_.ip_allowed) return ErrorReply(403, "IP address not allowed");
  const Knobs& knobs = host_->KnobsLocked();
  if (knobs.enforce_rate_limits && !limiter_.TryAcquire(std::chrono::steady_clock::now(),
                                                        knobs.rate_limit_time_scale, nullptr)) {
    host_->CountRateLimitedLocked();
    // CampaignLark documents no Retry-After, so none is sent.
    return ErrorReply(429, "Too many requests");
  }
  return std::nullopt;
}

SimReply CampaignLarkSim::UpsertLocked(const CampaignLarkUpsert& input) {
  for (const auto& [tag, value] : input.fields) {
    if (FindField(tag) == nullptr) return ErrorReply(400, kUnknownMergeTag + tag);
  }

  const std::string key = AsciiLower(input.email);
  const auto existing = contacts_.find(key);
  const bool merge = existing != contacts_.end() && input.partial_update;

  CampaignLarkContact next;
  if (merge) {
    next = existing->second.contact;
    for (const auto& [tag, value] : input.fields) {
      if (value) {
        next.fields[tag] = *value;
      } else {
        next.fields.erase(tag);
      }
    }
    if (input.status) next.status = *input.status;
    if (input.tags) {
      std::vector<int64_t> tags = ResolveTagsLocked(*input.tags);
      if (workspace_.partial_update_merges_tags) {
        tags.insert(tags.end(), next.tags.begin(), next.tags.end());
        SortUnique(tags);
      }
      next.tags = std::move(tags);
    }
  } else {
    // Create, or full replace: the request is the whole contact.
    for (const auto& [tag, value] : input.fields) {
      if (value) next.fields[tag] = *value;
    }
    for (const CampaignLarkField& field : workspace_.fields) {
      if (field.required && next.fields.count(field.merge_tag) == 0) {
        return ErrorReply(400, "Field '" + field.label + "' is required.");
      }
    }
    next.status = input.status.value_or(std::string(kSubscribed));
    if (input.tags) next.tags = ResolveTagsLocked(*input.tags);
  }
  // Always written, so a change of case in the address sticks.
  next.email_address = input.email;

  const std::string now = Now();
  if (existing == contacts_.end()) {
    next.id = NewIdLocked();
    by_id_[next.id] = key;
    Stored& stored = contacts_[key];
    stored.contact = std::move(next);
    stored.created_at = now;
    stored.updated_at = now;
    return ContactReply(stored);
  }
  next.id = existing->second.contact.id;
  existing->second.contact = std::move(next);
  existing->second.updated_at = now;
  return ContactReply(existing->second);
}

SimReply CampaignLarkSim::ByEmailLocked(std::string_view email) const {
  if (email.empty()) return ErrorReply(400, "The email query parameter is required.");
  const auto it = contacts_.find(AsciiLower(email));
  if (it == contacts_.end()) return ErrorReply(404, "Contact not found");
  return ContactReply(it->second);
}

SimReply CampaignLarkSim::ChangeTagsLocked(std::string_view id, const std::vector<int64_t>& ids,
                                           bool add) {
  const auto email = by_id_.find(std::string(id));
  if (email == by_id_.end()) return ErrorReply(404, "Contact not found");
  Stored& stored = contacts_.at(email->second);
  std::vector<int64_t>& tags = stored.contact.tags;
  if (add) {
    const std::vector<int64_t> resolved = ResolveTagsLocked(ids);
    tags.insert(tags.end(), resolved.begin(), resolved.end());
    SortUnique(tags);
  } else {
    const std::set<int64_t> removed(ids.begin(), ids.end());
    std::erase_if(tags, [&](int64_t tag) { return removed.count(tag) != 0; });
  }
  stored.updated_at = Now();
  return ContactReply(stored);
}

SimReply CampaignLarkSim::ContactReply(const Stored& stored) const {
  const CampaignLarkContact& contact = stored.contact;
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("data");
  writer.StartObject();
  WriteString(writer, "id", contact.id);
  WriteString(writer, "status", contact.status);
  writer.Key("tags");
  writer.StartArray();
  for (const int64_t id : contact.tags) {
    writer.StartObject();
    writer.Key("id");
    writer.Int64(id);
    const auto name = workspace_.tags.find(id);
    WriteString(writer, "name", name == workspace_.tags.end() ? "" : name->second);
    writer.EndObject();
  }
  writer.EndArray();
  writer.Key("data");
  writer.StartObject();
  WriteString(writer, "email_address", contact.email_address);
  for (const auto& [tag, value] : contact.fields) WriteString(writer, tag, value);
  writer.EndObject();
  writer.Key("statistics");
  writer.StartObject();
  for (const char* counter : {"total_opens", "total_clicks", "total_bounces", "total_delivered"}) {
    writer.Key(counter);
    writer.Uint(0);
  }
  writer.EndObject();
  WriteString(writer, "created_at", stored.created_at);
  WriteString(writer, "updated_at", stored.updated_at);
  writer.EndObject();
  writer.EndObject();
  return SimReply{200, std::string(buffer.GetString(), buffer.GetSize())};
}

const CampaignLarkField* CampaignLarkSim::FindField(std::string_view merge_tag) const {
  for (const CampaignLarkField& field : workspace_.fields) {
    if (field.merge_tag == merge_tag) return &field;
  }
  return nullptr;
}

std::vector<int64_t> CampaignLarkSim::ResolveTagsLocked(const std::vector<int64_t>& ids) {
  // Any positive id exists, as any Replify campaign does: tests need not set
  // up tags before using them.
  for (const int64_t id : ids) workspace_.tags.try_emplace(id, "tag-" + std::to_string(id));
  std::vector<int64_t> out = ids;
  SortUnique(out);
  return out;
}

std::string CampaignLarkSim::NewIdLocked() {
  // 24 hex digits, the shape of the documentation's ids.
  char id[25];
  std::snprintf(id, sizeof(id), "64f1a2b3%016llx", static_cast<unsigned long long>(next_id_++));
  return id;
}

void CampaignLarkSim::WriteStateLocked(JsonWriter& writer) const {
  writer.Key("contacts");
  writer.StartArray();
  for (const auto& [key, stored] : contacts_) {
    const CampaignLarkContact& contact = stored.contact;
    writer.StartObject();
    WriteString(writer, "id", contact.id);
    WriteString(writer, "email_address", contact.email_address);
    WriteString(writer, "status", contact.status);
    writer.Key("tags");
    writer.StartArray();
    for (const int64_t id : contact.tags) writer.Int64(id);
    writer.EndArray();
    writer.Key("fields");
    writer.StartObject();
    for (const auto& [tag, value] : contact.fields) WriteString(writer, tag, value);
    writer.EndObject();
    writer.EndObject();
  }
  writer.EndArray();
  writer.Key("ipAllowed");
  writer.Bool(workspace_.ip_allowed);
}

void CampaignLarkSim::ResetLocked() {
  contacts_.clear();
  by_id_.clear();
  next_id_ = 1;
  limiter_.Reset();
}

void CampaignLarkSim::SetWorkspace(CampaignLarkWorkspace workspace) {
  std::lock_guard lock(host_->Mutex());
  workspace_ = std::move(workspace);
}

CampaignLarkWorkspace CampaignLarkSim::Workspace() const {
  std::lock_guard lock(host_->Mutex());
  return workspace_;
}

void CampaignLarkSim::SetIpAllowed(bool allowed) {
  std::lock_guard lock(host_->Mutex());
  workspace_.ip_allowed = allowed;
}

std::optional<CampaignLarkContact> CampaignLarkSim::Contact(std::string_view email) const {
  std::lock_guard lock(host_->Mutex());
  const auto it = contacts_.find(AsciiLower(email));
  if (it == contacts_.end()) return std::nullopt;
  return it->second.contact;
}

std::map<std::string, CampaignLarkContact> CampaignLarkSim::Contacts() const {
  std::lock_guard lock(host_->Mutex());
  std::map<std::string, CampaignLarkContact> out;
  for (const auto& [key, stored] : contacts_) out.emplace(key, stored.contact);
  return out;
}

}  // namespace crmsync::sim
