#include "providers/replify/replify.h"

#include <rapidjson/reader.h>

#include <optional>
#include <string>
#include <string_view>
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

// The request body is written directly rather than through JsonWriter: its
// shape is fixed, and the Writer's per-value bookkeeping cost more than the
// bytes. AppendJsonString escapes exactly as the Writer does, so the bytes
// are the same.
void AppendField(std::string& out, std::string_view quoted_key, std::string_view value) {
  out += quoted_key;
  out += ':';
  AppendJsonString(out, value);
}

// `first` tells whether the object has no member yet.
void AppendOptional(std::string& out, bool& first, std::string_view quoted_key,
                    const std::optional<std::string>& value) {
  if (!value) return;
  if (!first) out += ',';
  first = false;
  AppendField(out, quoted_key, *value);
}

void AppendContact(std::string& out, const mapping::Contact& contact) {
  out += '{';
  bool first = true;
  AppendOptional(out, first, R"("firstName")", contact.first_name);
  AppendOptional(out, first, R"("lastName")", contact.last_name);
  AppendOptional(out, first, R"("email")", contact.email);
  AppendOptional(out, first, R"("phone")", contact.phone);
  AppendOptional(out, first, R"("status")", contact.status);
  if (!contact.metadata.empty()) {
    out += first ? R"("contactMetadata":{)" : R"(,"contactMetadata":{)";
    first = false;
    bool first_entry = true;
    for (const auto& [name, value] : contact.metadata) {
      if (!first_entry) out += ',';
      first_entry = false;
      AppendJsonString(out, name);
      out += ':';
      AppendJsonString(out, value);
    }
    out += '}';
  }
  AppendOptional(out, first, R"("externalIdKey")", contact.external_id_key);
  AppendOptional(out, first, R"("externalIdValue")", contact.external_id_value);
  out += '}';
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

// One entry of a 2xx answer's "success" or "errors" list, as far as matching
// and reasons need it. The views point into the parsed (in situ) body.
struct ResultEntry {
  bool object = false;  // an entry that is no object names no item
  // Non-empty string members, the first member of each name deciding (as
  // StringMember with FindMember would).
  std::optional<std::string_view> email, phone, error, message, reason;
  std::optional<std::string_view> error_message;  // {"error": {"message"}}

  // The human text of an error entry; as ErrorText for the usual spellings.
  std::optional<std::string_view> Text() const {
    if (error) return error;
    if (message) return message;
    if (reason) return reason;
    return error_message;
  }
};

// Reads a 2xx answer's "success" and "errors" lists by SAX, in situ: a DOM
// for an answer of a few hundred entries costs more than the whole request
// it answers. Only the first root member named "success" and the first named
// "errors" count, and only if they are arrays, as with FindMember. A root
// that is no object stops the parse, which the caller treats as unreadable.
class ResultReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ResultReader> {
 public:
  std::vector<ResultEntry> success, errors;

  bool Key(const char* text, rapidjson::SizeType length, bool) {
    key_ = std::string_view(text, length);
    return true;
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return Value(Kind::kString, std::string_view(text, length));
  }
  bool Default() { return Value(Kind::kScalar, {}); }
  bool StartObject() { return Open(Kind::kObject); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool StartArray() { return Open(Kind::kArray); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

 private:
  enum class Kind { kScalar, kString, kObject, kArray };
  // Bits of ResultEntry members already met.
  enum Seen : unsigned {
    kEmail = 1,
    kPhone = 2,
    kError = 4,
    kMessage = 8,
    kReason = 16,
    kErrorMessage = 32,
  };

  bool Open(Kind kind) {
    if (!Value(kind, {})) return false;
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    if (depth_ == 1) list_ = nullptr;
    if (depth_ == 3) in_error_object_ = false;
    return true;
  }

  // A member named `name` met for the first time (and marked met).
  bool First(unsigned bit) {
    if ((seen_ & bit) != 0) return false;
    seen_ |= bit;
    return true;
  }
  static void Take(std::optional<std::string_view>& slot, Kind kind, std::string_view text) {
    if (kind == Kind::kString && !text.empty()) slot = text;
  }

  // Every value (scalar or container) as it starts, at depth_ open containers.
  bool Value(Kind kind, std::string_view text) {
    switch (depth_) {
      case 0:  // the root
        return kind == Kind::kObject;
      case 1:  // a root member
        if (key_ == "success" && !seen_success_) {
          seen_success_ = true;
          if (kind == Kind::kArray) list_ = &success;
        } else if (key_ == "errors" && !seen_errors_) {
          seen_errors_ = true;
          if (kind == Kind::kArray) list_ = &errors;
        }
        return true;
      case 2:  // an entry of a list
        if (list_ != nullptr) {
          list_->emplace_back().object = kind == Kind::kObject;
          seen_ = 0;
        }
        return true;
      case 3:  // a member of an entry
        if (list_ != nullptr && list_->back().object) Member(list_->back(), kind, text);
        return true;
      case 4:  // a member of an entry's "error" object
        if (in_error_object_ && key_ == "message" && First(kErrorMessage)) {
          Take(list_->back().error_message, kind, text);
        }
        return true;
      default:
        return true;
    }
  }

  void Member(ResultEntry& entry, Kind kind, std::string_view text) {
    if (key_ == "email") {
      if (First(kEmail)) Take(entry.email, kind, text);
    } else if (key_ == "phone") {
      if (First(kPhone)) Take(entry.phone, kind, text);
    } else if (key_ == "error") {
      if (First(kError)) {
        Take(entry.error, kind, text);
        in_error_object_ = kind == Kind::kObject;
      }
    } else if (key_ == "message") {
      if (First(kMessage)) Take(entry.message, kind, text);
    } else if (key_ == "reason") {
      if (First(kReason)) Take(entry.reason, kind, text);
    }
  }

  int depth_ = 0;
  std::string_view key_;
  bool seen_success_ = false;
  bool seen_errors_ = false;
  std::vector<ResultEntry>* list_ = nullptr;  // the list being read, if any
  unsigned seen_ = 0;                         // Seen bits of the current entry
  bool in_error_object_ = false;
};

// The normalised identity of an item or an entry ("" when none).
void NormalizeEmailInto(std::string& out, std::optional<std::string_view> email) {
  NormalizeEmailTo(email.value_or(std::string_view()), out);
}
void PhoneDigitsInto(std::string& out, std::optional<std::string_view> phone) {
  PhoneDigitsTo(phone.value_or(std::string_view()), out);
}

// Matches per-item result entries back to batch items. Replify's results
// carry no item index, only the contact's email and phone, and may echo them
// normalised (lower-case email, E.164 phone), so identities compare as
// NormalizeEmail / PhoneDigits. Each entry takes the first item not yet
// taken with the same identity: the same email (preferring an equal phone
// too), or for an entry without email the same phone (preferring an item
// without email; also when the email names no item). Entries that name nobody
// match the first unmatched item without email or phone.
//
// Replify answers in request order, so an entry usually names the first item
// not yet taken; that item is checked first, and the identity indexes are
// only built for the first entry that names another.
class ItemMatcher {
 public:
  explicit ItemMatcher(const Batch& batch) : batch_(batch), taken_(batch.items.size(), false) {}

  std::optional<size_t> Take(const ResultEntry& entry) {
    if (!entry.object) return std::nullopt;
    if (!indexed_) {
      while (next_ < taken_.size() && taken_[next_]) ++next_;
      if (next_ < taken_.size() && EchoesItem(next_, entry)) {
        taken_[next_] = true;
        return next_;
      }
    }
    NormalizeEmailInto(email_, entry.email);
    PhoneDigitsInto(phone_, entry.phone);
    if (!indexed_) {
      if (next_ < taken_.size() && IsFirstChoice(next_)) {
        taken_[next_] = true;
        return next_;
      }
      BuildIndex();
    }
    const std::string& email = email_;
    const std::string& phone = phone_;
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

  // Whether the entry repeats item `i`'s email and phone byte for byte (a
  // missing value as an empty one): then their normalised forms are equal
  // too, and IsFirstChoice(i) holds without normalising either.
  bool EchoesItem(size_t i, const ResultEntry& entry) const {
    const mapping::Contact& contact = batch_.items[i]->contact;
    return entry.email.value_or(std::string_view()) == NonEmpty(contact.email).value_or("") &&
           entry.phone.value_or(std::string_view()) == NonEmpty(contact.phone).value_or("");
  }

  // Whether the index would give the current entry item `i`, the first item
  // not yet taken: `i` has the entry's identity and is the preferred kind of
  // candidate, so it is the first of the index's candidates.
  bool IsFirstChoice(size_t i) {
    const mapping::Contact& contact = batch_.items[i]->contact;
    const std::string_view item_email = contact.email ? std::string_view(*contact.email) : "";
    PhoneDigitsInto(item_phone_, NonEmpty(contact.phone));
    if (!email_.empty()) {
      return EqualsNormalizedEmail(item_email, email_) &&
             (phone_.empty() ? item_phone_.empty() : SamePhoneDigits(item_phone_, phone_));
    }
    const bool no_item_email = EqualsNormalizedEmail(item_email, "");
    if (!phone_.empty()) return no_item_email && item_phone_ == phone_;
    return no_item_email && item_phone_.empty();
  }

  void BuildIndex() {
    indexed_ = true;
    for (size_t i = 0; i < batch_.items.size(); ++i) {
      const mapping::Contact& contact = batch_.items[i]->contact;
      const auto email = NonEmpty(contact.email);
      const auto phone = NonEmpty(contact.phone);
      emails_.push_back(email ? NormalizeEmail(*email) : std::string());
      phones_.push_back(phone ? PhoneDigits(*phone) : std::string());
      if (!emails_.back().empty()) by_email_[emails_.back()].push_back(i);
      if (!phones_.back().empty()) by_phone_[phones_.back()].push_back(i);
      if (emails_.back().empty() && phones_.back().empty()) anonymous_.push_back(i);
    }
  }

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

  const Batch& batch_;
  std::vector<bool> taken_;
  size_t next_ = 0;  // no item before it is untaken
  // The current entry's identity, and an item's, normalised; reused.
  std::string email_, phone_, item_phone_;
  bool indexed_ = false;
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

  // Sized for a typical contact so that the body rarely grows.
  std::string& body = request.body;
  body.reserve(128 + 256 * batch.items.size());
  body += R"({"contacts":[)";
  for (size_t i = 0; i < batch.items.size(); ++i) {
    if (i > 0) body += ',';
    AppendContact(body, batch.items[i]->contact);
  }
  body += "],";
  // Sent even for upsert: relying on the documented default would silently
  // change meaning if Replify ever changed it.
  AppendField(body, R"("action")", ActionWireName(batch.action));
  if (batch.routing) {
    body += ',';
    AppendField(body, R"("externalIdKey")", batch.routing->external_id_key);
    body += ',';
    AppendField(body, R"("externalIdValue")", batch.routing->external_id_value);
  }
  body += '}';
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
  std::string text(response.body);  // parsed in situ; the entries point into it
  ResultReader results;
  rapidjson::Reader reader;
  rapidjson::InsituStringStream stream(text.data());
  if (reader.Parse<rapidjson::kParseInsituFlag>(stream, results).IsError()) return outcomes;

  ItemMatcher matcher(batch);
  std::vector<bool> accounted(batch.items.size(), false);
  // Successes are matched first so that, among items with the same identity,
  // the earlier ones take the successes, as Replify processes them in order.
  for (const ResultEntry& entry : results.success) {
    if (const auto index = matcher.Take(entry)) accounted[*index] = true;
  }
  std::optional<std::string> unplaced;  // an error entry that names no item
  for (const ResultEntry& entry : results.errors) {
    const auto entry_text = entry.Text();
    const std::string detail =
        TruncateReason(Scrub(std::string(entry_text.value_or("unspecified error"))));
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
