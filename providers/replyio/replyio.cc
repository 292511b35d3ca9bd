#include "providers/replyio/replyio.h"

#include <charconv>
#include <map>
#include <vector>

#include "providers/http_outcome.h"
#include "providers/json.h"
#include "providers/replyio/replyio_spec.h"
#include "providers/text.h"

namespace crmsync::providers::replyio {
namespace {

constexpr std::string_view kPlanLimitReason =
    "Reply.io plan contact limit exceeded — raise the plan; items are not retried";

// A sequence id is a positive integer in decimal, nothing else: it becomes a
// URL path segment, so anything looser could add segments or a query.
std::optional<int64_t> ParsePositiveId(std::string_view text) {
  if (text.empty() || text.front() == '+' || text.front() == '-') return std::nullopt;
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

// A JSON integer that is a valid Reply id, also when an API writes ids as
// strings (dictionary keys always are).
std::optional<int64_t> IdValue(const rapidjson::Value& value) {
  if (value.IsInt64()) return value.GetInt64() > 0 ? std::optional(value.GetInt64()) : std::nullopt;
  if (value.IsString()) return ParsePositiveId({value.GetString(), value.GetStringLength()});
  return std::nullopt;
}

// What Reply.io's application/problem+json error says, as one line:
// "<code>: <detail or title>[ (<first field error>)]". Empty when the body is
// not a problem document (401 has none).
std::string ProblemText(const HttpResponse& response) {
  const rapidjson::Document doc = ParseJson(response.body);
  if (doc.HasParseError() || !doc.IsObject()) return "";
  std::string text;
  if (const auto code = StringMember(doc, "code")) text = std::string(*code);
  const auto detail = StringMember(doc, "detail");
  const auto title = StringMember(doc, "title");
  if (detail || title) {
    if (!text.empty()) text += ": ";
    text += std::string(detail ? *detail : *title);
  }
  const auto errors = doc.FindMember("errors");
  if (errors != doc.MemberEnd() && errors->value.IsArray() && !errors->value.Empty()) {
    const rapidjson::Value& first = errors->value[0];
    std::optional<std::string_view> message;
    if (first.IsString()) {
      message = std::string_view(first.GetString(), first.GetStringLength());
    } else {
      message = StringMember(first, "detail");
      if (!message) message = StringMember(first, "message");
    }
    if (message) {
      std::string field(*message);
      if (const auto pointer = StringMember(first, "pointer")) {
        field = std::string(*pointer) + ": " + field;
      }
      text += text.empty() ? field : " (" + field + ")";
    }
  }
  return text;
}

std::optional<std::string> ProblemCode(const HttpResponse& response) {
  const rapidjson::Document doc = ParseJson(response.body);
  if (doc.HasParseError()) return std::nullopt;
  const auto code = StringMember(doc, "code");
  return code ? std::optional<std::string>(*code) : std::nullopt;
}

Outcome Make(OutcomeKind kind, std::string reason, long status = 0) {
  return MakeOutcome(kind, std::move(reason), status);
}

}  // namespace

std::optional<int64_t> IdCache::Get(const std::string& key) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, it->second);
  return it->second->second;
}

void IdCache::Put(const std::string& key, int64_t id) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  if (const auto it = index_.find(key); it != index_.end()) {
    it->second->second = id;
    entries_.splice(entries_.begin(), entries_, it->second);
    return;
  }
  entries_.emplace_front(key, id);
  index_.emplace(key, entries_.begin());
  if (entries_.size() > capacity_) {
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
}

void IdCache::EraseIf(const std::string& key, int64_t id) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(key);
  if (it == index_.end() || it->second->second != id) return;
  entries_.erase(it->second);
  index_.erase(it);
}

size_t IdCache::Size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

// One batch's conversation; see the header for its rounds.
class ReplyIoExchange final : public Exchange {
 public:
  ReplyIoExchange(ReplyIoProvider& provider, const Batch& batch)
      : provider_(provider),
        batch_(batch),
        items_(batch.items.size()),
        options_(OptionsOf<ReplyIoOptions>(batch)) {}

  std::vector<HttpRequest> NextRound() override;
  void OnResponse(size_t index, const HttpResponse& response) override;
  std::vector<Outcome> Outcomes() override;

 private:
  // Where an item stands. Every response moves each of its items on, so the
  // exchange ends after a bounded number of rounds.
  enum class Step { kLookup, kImport, kWrite, kFinished };
  enum class RequestKind { kLookup, kImport, kWrite };

  struct Item {
    std::string email;  // as the event has it
    std::string key;    // lower-cased: Reply.io emails are case-insensitive
    std::optional<int64_t> id;
    Step step = Step::kLookup;
    bool relooked = false;  // a stale id was already looked up again once
    std::optional<Outcome> outcome;
  };

  // One request of the current round and the items it decides.
  struct Sent {
    RequestKind kind = RequestKind::kLookup;
    std::vector<std::vector<size_t>> groups;       // per email (lookup, import)
    std::map<int64_t, std::vector<size_t>> by_id;  // write
  };

  bool Begin();
  HttpRequest Post(std::string_view path, std::string body) const;
  std::vector<HttpRequest> LookupRound();
  std::vector<HttpRequest> ImportRound();
  std::vector<HttpRequest> WriteRound();

  void OnLookup(const Sent& sent, const HttpResponse& response);
  void OnImport(const Sent& sent, const HttpResponse& response);
  void OnWrite(const Sent& sent, const HttpResponse& response);
  void OnNotProcessed(int64_t id, std::string_view slug, const std::vector<size_t>& items,
                      long status);
  void Resolved(const std::vector<size_t>& items, int64_t id);
  void Unknown(const std::vector<size_t>& items, long status);

  // The outcome of a request that failed as a whole.
  Outcome Failure(RequestKind kind, const HttpResponse& response) const;
  Outcome HttpFailure(RequestKind kind, const HttpResponse& response) const;
  void Finish(size_t item, Outcome outcome);
  void FinishAll(const std::vector<size_t>& items, const Outcome& outcome);
  std::string SequenceText() const { return "sequence " + std::to_string(sequence_id_); }

  ReplyIoProvider& provider_;
  const Batch& batch_;
  std::vector<Item> items_;
  bool begun_ = false;
  int64_t sequence_id_ = 0;
  const ReplyIoOptions& options_;
  std::vector<Sent> round_;
};

bool ReplyIoExchange::Begin() {
  const auto reject_all = [&](const std::string& reason) {
    for (size_t i = 0; i < items_.size(); ++i) Finish(i, Make(OutcomeKind::kReject, reason));
    return false;
  };
  if (!Spec().Supports(batch_.action)) {
    return reject_all("replyio does not support action '" +
                      std::string(mapping::ActionName(batch_.action)) + "'");
  }
  const auto sequence = ParsePositiveId(batch_.target);
  if (!sequence) {
    return reject_all("reply.io: sequence id must be a positive integer, got '" +
                      TruncateReason(provider_.Scrub(batch_.target)) + "'");
  }
  sequence_id_ = *sequence;

  for (size_t i = 0; i < items_.size(); ++i) {
    Item& item = items_[i];
    const std::optional<std::string>& email = batch_.items[i]->contact.email;
    const std::string_view trimmed = email ? TrimBlanks(*email) : std::string_view();
    if (trimmed.empty()) {
      // Reply.io ids are resolved by email; nothing else identifies the contact.
      Finish(i, Make(OutcomeKind::kReject, "reply.io: contact has no email to look it up by"));
      continue;
    }
    item.email = std::string(trimmed);
    item.key = AsciiLower(trimmed);
    item.id = provider_.cache_.Get(item.key);
    item.step = item.id ? Step::kWrite : Step::kLookup;
  }
  return true;
}

std::vector<HttpRequest> ReplyIoExchange::NextRound() {
  round_.clear();
  if (!begun_) {
    begun_ = true;
    if (!Begin()) return {};
  }
  bool lookup = false, import = false, write = false;
  for (const Item& item : items_) {
    lookup = lookup || item.step == Step::kLookup;
    import = import || item.step == Step::kImport;
    write = write || item.step == Step::kWrite;
  }
  if (lookup) return LookupRound();
  if (import) return ImportRound();
  if (write) return WriteRound();
  return {};
}

HttpRequest ReplyIoExchange::Post(std::string_view path, std::string body) const {
  HttpRequest request;
  request.method = "POST";
  request.url = provider_.base_url_ + std::string(path);
  request.headers = {
      {"Content-Type", "application/json"},
      {"Accept", "application/json, application/problem+json"},
      {"Authorization", "Bearer " + provider_.api_key_->Get()},
  };
  request.body = std::move(body);
  return request;
}

// One request per email: the filter's rules are conjunctive, so one request
// cannot ask for several emails. Body (condition name inferred, see
// ReplyIoSettings::lookup_condition):
//   {"rules": [{"property": "email", "condition": "equals", "value": "<email>"}]}
std::vector<HttpRequest> ReplyIoExchange::LookupRound() {
  std::map<std::string, std::vector<size_t>> by_key;  // items sharing an email share a lookup
  for (size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].step == Step::kLookup) by_key[items_[i].key].push_back(i);
  }
  std::vector<HttpRequest> requests;
  for (auto& [key, group] : by_key) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    writer.StartObject();
    WriteKey(writer, "rules");
    writer.StartArray();
    writer.StartObject();
    WriteString(writer, "property", "email");
    WriteString(writer, "condition", provider_.settings_.lookup_condition);
    WriteString(writer, "value", items_[group.front()].email);
    writer.EndObject();
    writer.EndArray();
    writer.EndObject();
    requests.push_back(Post("/v3/contacts/filter", {buffer.GetString(), buffer.GetSize()}));
    Sent& sent = round_.emplace_back();
    sent.kind = RequestKind::kLookup;
    sent.groups.push_back(std::move(group));
  }
  return requests;
}

// Creates the emails Reply.io does not know, in one request; the answer's
// items are in request order. overwriteExisting is false: should a contact
// have appeared since the lookup, its data in Reply.io is left alone and only
// its id is used.
std::vector<HttpRequest> ReplyIoExchange::ImportRound() {
  std::map<std::string, std::vector<size_t>> by_key;
  std::vector<std::string> order;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].step != Step::kImport) continue;
    auto [it, inserted] = by_key.try_emplace(items_[i].key);
    if (inserted) order.push_back(items_[i].key);
    it->second.push_back(i);
  }
  Sent& sent = round_.emplace_back();
  sent.kind = RequestKind::kImport;

  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  WriteKey(writer, "items");
  writer.StartArray();
  for (const std::string& key : order) {
    std::vector<size_t>& group = by_key[key];
    const size_t first = group.front();
    const mapping::Contact& contact = batch_.items[first]->contact;
    writer.StartObject();
    WriteString(writer, "email", items_[first].email);
    if (contact.first_name) WriteString(writer, "firstName", *contact.first_name);
    if (contact.last_name) WriteString(writer, "lastName", *contact.last_name);
    if (contact.phone) WriteString(writer, "phone", *contact.phone);
    writer.EndObject();
    sent.groups.push_back(std::move(group));
  }
  writer.EndArray();
  WriteKey(writer, "options");
  writer.StartObject();
  WriteKey(writer, "overwriteExisting");
  writer.Bool(false);
  writer.EndObject();
  writer.EndObject();
  std::vector<HttpRequest> requests;
  requests.push_back(Post("/v3/contacts/import", {buffer.GetString(), buffer.GetSize()}));
  return requests;
}

// One bulk request with each resolved id once; the enroll options go with an
// enroll only.
std::vector<HttpRequest> ReplyIoExchange::WriteRound() {
  Sent& sent = round_.emplace_back();
  sent.kind = RequestKind::kWrite;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].step == Step::kWrite) sent.by_id[*items_[i].id].push_back(i);
  }
  const bool enroll = batch_.action == mapping::Action::kEnroll;

  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  WriteKey(writer, "contactIds");
  writer.StartArray();
  for (const auto& [id, group] : sent.by_id) writer.Int64(id);
  writer.EndArray();
  if (enroll) {
    if (options_.remove_from_existing) {
      WriteKey(writer, "removeFromExisting");
      writer.Bool(*options_.remove_from_existing);
    }
    if (options_.start_step_id) {
      WriteKey(writer, "startStepId");
      writer.Int64(*options_.start_step_id);
    }
    if (options_.ignore_step_delay) {
      WriteKey(writer, "ignoreStepDelay");
      writer.Bool(*options_.ignore_step_delay);
    }
    if (options_.start_from) WriteString(writer, "startFrom", *options_.start_from);
  }
  writer.EndObject();
  const std::string path = "/v3/sequences/" + std::to_string(sequence_id_) + "/contact-links/" +
                           (enroll ? "bulk" : "bulk-delete");
  std::vector<HttpRequest> requests;
  requests.push_back(Post(path, {buffer.GetString(), buffer.GetSize()}));
  return requests;
}

void ReplyIoExchange::OnResponse(size_t index, const HttpResponse& response) {
  if (index >= round_.size()) return;
  const Sent& sent = round_[index];
  switch (sent.kind) {
    case RequestKind::kLookup:
      OnLookup(sent, response);
      return;
    case RequestKind::kImport:
      OnImport(sent, response);
      return;
    case RequestKind::kWrite:
      OnWrite(sent, response);
      return;
  }
}

void ReplyIoExchange::OnLookup(const Sent& sent, const HttpResponse& response) {
  const std::vector<size_t>& group = sent.groups.front();
  if (!IsSuccess(response)) {
    FinishAll(group, Failure(RequestKind::kLookup, response));
    return;
  }
  const rapidjson::Document doc = ParseJson(response.body);
  const auto items =
      doc.HasParseError() || !doc.IsObject() ? doc.MemberEnd() : doc.FindMember("items");
  if (doc.HasParseError() || !doc.IsObject() || items == doc.MemberEnd() ||
      !items->value.IsArray()) {
    FinishAll(group, Make(OutcomeKind::kRetry, "reply.io: unreadable contact lookup response",
                          response.status));
    return;
  }
  // Only an exact (case-insensitive) email match counts, whatever the filter
  // condition turns out to match.
  const std::string& key = items_[group.front()].key;
  for (const auto& entry : items->value.GetArray()) {
    const auto email = StringMember(entry, "email");
    const auto id = entry.IsObject() && entry.HasMember("id") ? IdValue(entry["id"]) : std::nullopt;
    if (email && id && AsciiLower(TrimBlanks(*email)) == key) {
      provider_.cache_.Put(key, *id);
      Resolved(group, *id);
      return;
    }
  }
  Unknown(group, response.status);
}

void ReplyIoExchange::Resolved(const std::vector<size_t>& items, int64_t id) {
  for (const size_t i : items) {
    items_[i].id = id;
    items_[i].step = Step::kWrite;
  }
}

// Reply.io has no contact with the items' email.
void ReplyIoExchange::Unknown(const std::vector<size_t>& items, long status) {
  for (const size_t i : items) {
    Item& item = items_[i];
    if (batch_.action == mapping::Action::kUnenroll) {
      // No contact is in no sequence: the desired state holds.
      Finish(i, Make(OutcomeKind::kDone, "", status));
    } else if (item.relooked) {
      // The contact vanished between our cached id and now (deleted, merged).
      // Someone may be recreating it; a later attempt starts afresh and
      // creates it if configured to, so this is not a permanent failure.
      Finish(i, Make(OutcomeKind::kRetry,
                     "reply.io: contact no longer exists in Reply.io (stale cached id); "
                     "it will be looked up again",
                     status));
    } else if (provider_.settings_.create_missing_contacts) {
      item.step = Step::kImport;
    } else {
      Finish(i, Make(OutcomeKind::kReject,
                     "reply.io: contact not found in Reply.io (createMissingContacts is off)",
                     status));
    }
  }
}

void ReplyIoExchange::OnImport(const Sent& sent, const HttpResponse& response) {
  if (!IsSuccess(response)) {
    for (const auto& group : sent.groups) FinishAll(group, Failure(RequestKind::kImport, response));
    return;
  }
  const rapidjson::Document doc = ParseJson(response.body);
  const rapidjson::Value* results = nullptr;
  if (!doc.HasParseError() && doc.IsObject()) {
    const auto it = doc.FindMember("items");
    if (it != doc.MemberEnd() && it->value.IsArray()) results = &it->value;
  }
  for (size_t g = 0; g < sent.groups.size(); ++g) {
    const std::vector<size_t>& group = sent.groups[g];
    // Without a readable result the contact may or may not exist now; a
    // retry looks it up first, so it is never created twice.
    if (results == nullptr || g >= results->Size() || !(*results)[g].IsObject()) {
      FinishAll(group, Make(OutcomeKind::kRetry,
                            "reply.io: contact import answered without a result for the contact",
                            response.status));
      continue;
    }
    const rapidjson::Value& entry = (*results)[g];
    const auto id = entry.HasMember("id") ? IdValue(entry["id"]) : std::nullopt;
    if (id) {
      provider_.cache_.Put(items_[group.front()].key, *id);
      Resolved(group, *id);
      continue;
    }
    const auto status = StringMember(entry, "status");
    const auto error = StringMember(entry, "error");
    if ((status && AsciiLower(*status) == "failed") || error) {
      // Reply.io refused the contact's data (e.g. an invalid email): sending
      // it again would be refused again.
      FinishAll(
          group,
          Make(OutcomeKind::kReject,
               "reply.io could not create the contact: " +
                   TruncateReason(provider_.Scrub(std::string(error.value_or("import failed")))),
               response.status));
    } else {
      FinishAll(group, Make(OutcomeKind::kRetry,
                            "reply.io: contact import returned no id (status " +
                                TruncateReason(std::string(status.value_or("none"))) + ")",
                            response.status));
    }
  }
}

void ReplyIoExchange::OnWrite(const Sent& sent, const HttpResponse& response) {
  std::vector<size_t> all;
  for (const auto& [id, group] : sent.by_id) all.insert(all.end(), group.begin(), group.end());
  if (!IsSuccess(response)) {
    FinishAll(all, Failure(RequestKind::kWrite, response));
    return;
  }
  // A 2xx means Reply.io processed the request. Unenroll: removed,
  // notInSequence and notFound all mean the contact is not in the sequence,
  // the desired state. Enroll: items that no notProcessed entry names (listed
  // in "added", or in neither) are done; retrying an applied add would only
  // be answered contactAlreadyInSequence. An unreadable body counts the same.
  FinishAll(all, Make(OutcomeKind::kDone, "", response.status));
  if (batch_.action != mapping::Action::kEnroll) return;

  const rapidjson::Document doc = ParseJson(response.body);
  if (doc.HasParseError() || !doc.IsObject()) return;
  const auto not_processed = doc.FindMember("notProcessed");
  if (not_processed == doc.MemberEnd() || !not_processed->value.IsObject()) return;
  for (const auto& member : not_processed->value.GetObject()) {
    const auto id = ParsePositiveId({member.name.GetString(), member.name.GetStringLength()});
    if (!id) continue;
    const auto group = sent.by_id.find(*id);
    if (group == sent.by_id.end()) continue;
    // The documented value is the slug; an object {"code"|"error": slug} is
    // accepted too, as Reply's other bulk endpoints answer that way.
    std::string slug;
    if (member.value.IsString()) {
      slug.assign(member.value.GetString(), member.value.GetStringLength());
    } else if (const auto code = StringMember(member.value, "code")) {
      slug = std::string(*code);
    } else if (const auto error = StringMember(member.value, "error")) {
      slug = std::string(*error);
    }
    OnNotProcessed(*id, slug, group->second, response.status);
  }
}

void ReplyIoExchange::OnNotProcessed(int64_t id, std::string_view slug,
                                     const std::vector<size_t>& items, long status) {
  const std::string contact = "contact " + std::to_string(id);
  for (const size_t i : items) {
    Item& item = items_[i];
    if (slug == "contactAlreadyInSequence") {
      Finish(i, Make(OutcomeKind::kDone, "", status));
    } else if (slug == "contactNotFound") {
      // The cached id is stale (the contact was deleted or merged in
      // Reply.io). Forget it and resolve the email once more.
      provider_.cache_.EraseIf(item.key, id);
      if (item.relooked) {
        Finish(i, Make(OutcomeKind::kRetry,
                       "reply.io: " + contact + " not found even after a fresh look-up", status));
      } else {
        item.relooked = true;
        item.id.reset();
        item.outcome.reset();
        item.step = Step::kLookup;
      }
    } else if (slug == "forbidden") {
      Finish(i, Make(OutcomeKind::kReject,
                     "reply.io: not permitted to enroll " + contact + " in " + SequenceText() +
                         " (forbidden)",
                     status));
    } else if (slug == "invalidInput") {
      Finish(i, Make(OutcomeKind::kReject,
                     "reply.io: " + contact + " rejected by " + SequenceText() + " (invalidInput)",
                     status));
    } else if (slug == "contactLimitExceeded") {
      Finish(i, Make(OutcomeKind::kReject, std::string(kPlanLimitReason), status));
    } else {
      // A slug newer than this code: Reply.io named this contact as not
      // processed, which the known slugs show to be a property of the contact
      // or the plan, not a passing state. Retrying would hammer the API with
      // the same answer; the reason carries the slug for whoever reads the
      // dead letter.
      Finish(i, Make(OutcomeKind::kReject,
                     "reply.io: " + contact + " not processed: " +
                         TruncateReason(
                             provider_.Scrub(std::string(slug.empty() ? "unspecified" : slug))),
                     status));
    }
  }
}

Outcome ReplyIoExchange::Failure(RequestKind kind, const HttpResponse& response) const {
  if (response.transport != Transport::kOk) {
    return TransportFailure("reply.io", response, provider_.api_key_->Get());
  }
  return HttpFailure(kind, response);
}

Outcome ReplyIoExchange::HttpFailure(RequestKind kind, const HttpResponse& response) const {
  const long code = response.status;
  const std::string status = std::to_string(code);
  const std::string problem = TruncateReason(provider_.Scrub(ProblemText(response)));
  const std::string detail = problem.empty() ? "" : ": " + problem;
  const char* what = kind == RequestKind::kLookup   ? "contact lookup"
                     : kind == RequestKind::kImport ? "contact import"
                                                    : "sequence update";
  Outcome outcome = Make(OutcomeKind::kRetry, "", code);
  if (code == 401) {
    // A rotated key file is looked at again before the next request.
    provider_.api_key_->Invalidate();
    // Reply.io's 401 has no body. The key is wrong or revoked: an operator
    // must act, and the items are fine, so they wait.
    outcome.reason = "reply.io: authentication failed (HTTP 401) — check the API key";
  } else if (code == 429) {
    outcome.reason = "reply.io: rate limited (HTTP 429)" + detail;
    outcome.retry_after = RetryAfter(response);
  } else if (IsTransientStatus(code)) {
    outcome.reason = "reply.io: " + std::string(what) + " failed with HTTP " + status + detail;
    outcome.retry_after = RetryAfter(response);
  } else if (code == 404 && kind == RequestKind::kWrite) {
    outcome.kind = OutcomeKind::kReject;
    outcome.reason = "reply.io: " + SequenceText() + " not found (HTTP 404" +
                     (problem.empty() ? "" : " " + problem) + ")";
  } else if (code == 404 || code == 405) {
    // The contacts endpoints always exist: a 404 there is a wrong baseUrl or
    // an API change, which an operator fixes; the items are fine.
    outcome.reason = "reply.io: " + std::string(what) + " endpoint answered HTTP " + status +
                     " — check baseUrl" + detail;
  } else if (code == 403) {
    // Denied access to this sequence is permanent for these items; denied
    // access to contacts means the key lacks a permission an operator grants.
    const auto problem_code = ProblemCode(response);
    const bool sequence =
        kind == RequestKind::kWrite && (!problem_code || problem_code->rfind("sequence.", 0) == 0);
    outcome.kind = sequence ? OutcomeKind::kReject : OutcomeKind::kRetry;
    outcome.reason = sequence
                         ? "reply.io: access to " + SequenceText() + " denied (HTTP 403)" + detail
                         : "reply.io: " + std::string(what) +
                               " not permitted (HTTP 403) — check the API key's "
                               "permissions" +
                               detail;
  } else if (code >= 400 && code < 500) {
    outcome.kind = OutcomeKind::kReject;
    outcome.reason = "reply.io: " + std::string(what) + " rejected (HTTP " + status + ")" + detail;
  } else {
    // 1xx/3xx or nonsense: most likely a proxy or a wrong baseUrl. Nothing
    // says the items are bad, so keep them.
    outcome.reason = "reply.io: unexpected HTTP " + status + detail;
    outcome.retry_after = RetryAfter(response);
  }
  return outcome;
}

void ReplyIoExchange::Finish(size_t item, Outcome outcome) {
  items_[item].outcome = std::move(outcome);
  items_[item].step = Step::kFinished;
}

void ReplyIoExchange::FinishAll(const std::vector<size_t>& items, const Outcome& outcome) {
  for (const size_t i : items) Finish(i, outcome);
}

std::vector<Outcome> ReplyIoExchange::Outcomes() {
  std::vector<Outcome> outcomes;
  outcomes.reserve(items_.size());
  for (Item& item : items_) {
    // An item still open means the driver stopped early; it must be sent again.
    outcomes.push_back(item.outcome ? std::move(*item.outcome)
                                    : Make(OutcomeKind::kRetry, "reply.io: exchange unfinished"));
  }
  return outcomes;
}

ReplyIoProvider::ReplyIoProvider(const mapping::ProviderConfig& config)
    : base_url_(config.base_url),
      api_key_(mapping::ApiKeySource(config)),
      max_batch_(config.max_batch),
      settings_(ParseSettings(config.settings_json,
                              config.name.empty() ? kName : std::string_view(config.name))),
      cache_(settings_.id_cache_size) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

std::unique_ptr<Exchange> ReplyIoProvider::Start(const Batch& batch) {
  return std::make_unique<ReplyIoExchange>(*this, batch);
}

std::optional<int64_t> ReplyIoProvider::CachedId(std::string_view email) {
  return cache_.Get(AsciiLower(TrimBlanks(email)));
}

std::string ReplyIoProvider::Scrub(std::string text) const {
  return MaskSecret(std::move(text), api_key_->Get());
}

}  // namespace crmsync::providers::replyio
