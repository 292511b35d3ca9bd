#include "providers/replify/replify.h"

#include <optional>
#include <unordered_map>
#include <utility>

#include "providers/http_outcome.h"
#include "providers/json.h"
#include "providers/replify/replify_spec.h"
#include "providers/text.h"

namespace crmsync::providers::replify {
namespace {

// Replify's own wire names. They happen to equal mapping::ActionName today,
// but they are this provider's contract (other providers name actions
// differently), so they are spelled out here.
std::string_view ActionWireName(mapping::Action action) {
  switch (action) {
    case mapping::Action::kUpsert:
      return "upsert";
    case mapping::Action::kUpdateOnly:
      return "updateOnly";
    case mapping::Action::kRemove:
      return "remove";
    case mapping::Action::kAdd:
    case mapping::Action::kOverwrite:
    case mapping::Action::kEnroll:
    case mapping::Action::kUnenroll:
      break;  // not Replify actions: Supports() keeps them away
  }
  return "upsert";
}

}  // namespace

bool ReplifyProvider::Supports(mapping::Action action) const { return Spec().Supports(action); }

namespace {

void WriteOptional(JsonWriter& writer, std::string_view key,
                   const std::optional<std::string>& value) {
  if (value) WriteString(writer, key, *value);
}

void WriteContact(JsonWriter& writer, const mapping::Contact& contact) {
  writer.StartObject();
  WriteOptional(writer, "firstName", contact.first_name);
  WriteOptional(writer, "lastName", contact.last_name);
  WriteOptional(writer, "email", contact.email);
  WriteOptional(writer, "phone", contact.phone);
  WriteOptional(writer, "status", contact.status);
  if (!contact.metadata.empty()) WriteStringMap(writer, "contactMetadata", contact.metadata);
  WriteOptional(writer, "externalIdKey", contact.external_id_key);
  WriteOptional(writer, "externalIdValue", contact.external_id_value);
  writer.EndObject();
}

// The human text of an error body or error entry. The shape is undocumented,
// so the usual spellings are all accepted: {"message"}, {"error": "..."},
// {"error": {"message"}}, {"reason"}.
std::optional<std::string_view> ErrorText(const rapidjson::Value& object) {
  if (!object.IsObject()) return std::nullopt;
  for (const char* name : {"error", "message", "reason"}) {
    if (auto text = StringMember(object, name)) return text;
  }
  const auto error = object.FindMember("error");
  if (error != object.MemberEnd() && error->value.IsObject()) {
    return StringMember(error->value, "message");
  }
  return std::nullopt;
}

// Matches per-item result entries back to batch items. Replify's results
// carry no item index, only the contact's email and phone, and may echo them
// normalised (lower-case email, E.164 phone), so identities compare as
// NormalizeEmail / PhoneDigits. Each entry takes the first item not yet
// taken with the same identity: the same email (preferring an equal phone
// too), or for an entry without email the same phone (preferring an item
// without email; also when the email names no item). Entries that name nobody
// match the first unmatched item without email or phone.
class ItemMatcher {
 public:
  explicit ItemMatcher(const Batch& batch) : taken_(batch.items.size(), false) {
    for (size_t i = 0; i < batch.items.size(); ++i) {
      const mapping::Contact& contact = batch.items[i]->contact;
      const auto email = NonEmpty(contact.email);
      const auto phone = NonEmpty(contact.phone);
      emails_.push_back(email ? NormalizeEmail(*email) : std::string());
      phones_.push_back(phone ? PhoneDigits(*phone) : std::string());
      if (!emails_.back().empty()) by_email_[emails_.back()].push_back(i);
      if (!phones_.back().empty()) by_phone_[phones_.back()].push_back(i);
      if (emails_.back().empty() && phones_.back().empty()) anonymous_.push_back(i);
    }
  }

  std::optional<size_t> Take(const rapidjson::Value& entry) {
    if (!entry.IsObject()) return std::nullopt;
    const auto email_member = StringMember(entry, "email");
    const auto phone_member = StringMember(entry, "phone");
    const std::string email = email_member ? NormalizeEmail(*email_member) : std::string();
    const std::string phone = phone_member ? PhoneDigits(*phone_member) : std::string();
    if (!email.empty()) {
      auto same_email = TakeFrom(Find(by_email_, email), [&](size_t i) {
        return phone.empty() ? phones_[i].empty() : SamePhoneDigits(phones_[i], phone);
      });
      // Replify matches a contact by phone when its email is new to it, and
      // may then answer with the stored email.
      if (same_email || phone.empty()) return same_email;
    }
    if (!phone.empty()) {
      const auto no_email = [this](size_t i) { return emails_[i].empty(); };
      if (auto exact = TakeFrom(Find(by_phone_, phone), no_email)) return exact;
      // The echo may add or drop a country code.
      std::vector<size_t> similar;
      for (size_t i = 0; i < phones_.size(); ++i) {
        if (!taken_[i] && SamePhoneDigits(phones_[i], phone)) similar.push_back(i);
      }
      return TakeFrom(&similar, no_email);
    }
    return TakeFrom(&anonymous_, [](size_t) { return true; });
  }

 private:
  using Index = std::unordered_map<std::string, std::vector<size_t>>;

  static const std::vector<size_t>* Find(const Index& index, const std::string& key) {
    const auto it = index.find(key);
    return it == index.end() ? nullptr : &it->second;
  }

  template <typename Preferred>
  std::optional<size_t> TakeFrom(const std::vector<size_t>* candidates, Preferred preferred) {
    if (candidates == nullptr) return std::nullopt;
    std::optional<size_t> fallback;
    for (const size_t i : *candidates) {
      if (taken_[i]) continue;
      if (preferred(i)) {
        taken_[i] = true;
        return i;
      }
      if (!fallback) fallback = i;
    }
    if (fallback) taken_[*fallback] = true;
    return fallback;
  }

  std::vector<bool> taken_;
  std::vector<std::string> emails_;  // normalised, "" if none
  std::vector<std::string> phones_;  // digits, "" if none
  Index by_email_;
  Index by_phone_;
  std::vector<size_t> anonymous_;
};

}  // namespace

ReplifyProvider::ReplifyProvider(const mapping::ProviderConfig& config)
    : base_url_(config.base_url),
      api_key_(mapping::ApiKeySource(config)),
      max_batch_(config.max_batch) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

HttpRequest ReplifyProvider::BuildRequest(const Batch& batch) const {
  HttpRequest request;
  request.method = "POST";
  request.url = base_url_ + "/campaigns/" + PercentEncodePathSegment(batch.target) + "/contacts";
  request.headers = {
      {"Content-Type", "application/json"},
      {"Accept", "application/json"},
      {"x-api-key", api_key_->Get()},
  };

  // Sized for a typical contact so that the buffer rarely grows.
  rapidjson::StringBuffer buffer(nullptr, 128 + 192 * batch.items.size());
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("contacts");
  writer.StartArray();
  for (const mapping::Operation* item : batch.items) WriteContact(writer, item->contact);
  writer.EndArray();
  // Sent even for upsert: relying on the documented default would silently
  // change meaning if Replify ever changed it.
  WriteString(writer, "action", ActionWireName(batch.action));
  if (batch.routing) {
    WriteString(writer, "externalIdKey", batch.routing->external_id_key);
    WriteString(writer, "externalIdValue", batch.routing->external_id_value);
  }
  writer.EndObject();
  request.body.assign(buffer.GetString(), buffer.GetSize());
  return request;
}

std::vector<Outcome> ReplifyProvider::Classify(const Batch& batch,
                                               const HttpResponse& response) const {
  if (response.transport != Transport::kOk) {
    return AllItems(batch, TransportFailure(kName, response, api_key_->Get()));
  }
  if (IsSuccess(response)) return ClassifyAccepted(batch, response);
  return AllItems(batch, ClassifyHttpError(response));
}

std::vector<Outcome> ReplifyProvider::AllItems(const Batch& batch, Outcome outcome) const {
  return std::vector<Outcome>(batch.items.size(), outcome);
}

std::vector<Outcome> ReplifyProvider::ClassifyAccepted(const Batch& batch,
                                                       const HttpResponse& response) const {
  Outcome done;
  done.kind = OutcomeKind::kDone;
  done.http_status = static_cast<int>(response.status);
  std::vector<Outcome> outcomes(batch.items.size(), done);

  // A 2xx means Replify accepted and processed the request; the per-item
  // detail is advisory. If it cannot be read, every item counts as done:
  // retrying would only re-apply a request that was already applied.
  const rapidjson::Document body = ParseJson(response.body);
  if (body.HasParseError() || !body.IsObject()) return outcomes;

  ItemMatcher matcher(batch);
  std::vector<bool> accounted(batch.items.size(), false);
  // Successes are matched first so that, among items with the same identity,
  // the earlier ones take the successes, as Replify processes them in order.
  const auto success = body.FindMember("success");
  if (success != body.MemberEnd() && success->value.IsArray()) {
    for (const auto& entry : success->value.GetArray()) {
      if (const auto index = matcher.Take(entry)) accounted[*index] = true;
    }
  }
  std::optional<std::string> unplaced;  // an error entry that names no item
  const auto errors = body.FindMember("errors");
  if (errors != body.MemberEnd() && errors->value.IsArray()) {
    for (const auto& entry : errors->value.GetArray()) {
      const auto text = ErrorText(entry);
      const std::string detail =
          TruncateReason(Scrub(std::string(text.value_or("unspecified error"))));
      const auto index = matcher.Take(entry);
      if (!index) {
        if (!unplaced) unplaced = detail;
        continue;
      }
      accounted[*index] = true;
      Outcome& outcome = outcomes[*index];
      outcome.kind = OutcomeKind::kReject;
      outcome.reason = "replify rejected contact: " + detail;
    }
  }
  // Items that no entry names are done: Replify's success list need not name
  // every processed contact (its own example: "Processed 3 contacts
  // successfully" listing two), and a completed contact that an upsert does
  // not add is documented behaviour, not a failure. But an error that names
  // no item of the batch belongs to one of those unnamed items, and which one
  // cannot be told: they are all retried (re-sending an applied state is
  // harmless; counting a failed one as delivered is not).
  if (unplaced) {
    for (size_t i = 0; i < outcomes.size(); ++i) {
      if (accounted[i]) continue;
      outcomes[i].kind = OutcomeKind::kRetry;
      outcomes[i].reason = "replify reported an error for a contact it did not identify (" +
                           *unplaced + "); every contact it did not answer for is retried";
    }
  }
  return outcomes;
}

Outcome ReplifyProvider::ClassifyHttpError(const HttpResponse& response) const {
  const long code = response.status;
  const std::string status = std::to_string(code);
  const rapidjson::Document body = ParseJson(response.body);
  const std::optional<std::string_view> text =
      body.HasParseError() ? std::nullopt : ErrorText(body);
  const std::string detail = text ? ": " + TruncateReason(Scrub(std::string(*text))) : "";

  if (code == 401 || code == 403) {
    // A rotated key file is looked at again before the next request.
    api_key_->Invalidate();
    // A configuration problem, not a property of the items: retrying never
    // loses data, and the circuit breaker stops the hammering.
    return MakeOutcome(OutcomeKind::kRetry,
                       "replify: authentication failed (HTTP " + status + ") — check the API key",
                       code);
  }
  if (IsTransientStatus(code)) return RetryLater("replify: HTTP " + status + detail, response);
  if (code == 404) {
    return MakeOutcome(OutcomeKind::kReject, "replify: campaign not found (HTTP 404)", code);
  }
  if (code >= 400 && code < 500) {
    return MakeOutcome(OutcomeKind::kReject, "replify: HTTP " + status + detail, code);
  }
  // 1xx/3xx or nonsense: most likely a proxy or a wrong baseUrl. Nothing says
  // the items are bad, so keep them.
  return RetryLater("replify: unexpected HTTP " + status + detail, response);
}

std::string ReplifyProvider::Scrub(std::string text) const {
  return MaskSecret(std::move(text), api_key_->Get());
}

}  // namespace crmsync::providers::replify
