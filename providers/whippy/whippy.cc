#include "providers/whippy/whippy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "providers/http_outcome.h"
#include "providers/json.h"
#include "providers/text.h"
#include "providers/whippy/whippy_spec.h"

namespace crmsync::providers::whippy {
namespace {

constexpr std::string_view kAddressPrefix = "address.";
constexpr std::string_view kBirthDatePrefix = "birth_date.";

// Whippy counts characters, not bytes: UTF-8 continuation bytes are skipped.
size_t Utf8Length(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::optional<std::string_view> Field(const mapping::Contact& contact, const std::string& name) {
  const auto it = contact.fields.find(name);
  if (it == contact.fields.end() || it->second.empty()) return std::nullopt;
  return std::string_view(it->second);
}

// A birth_date part as the integer Whippy expects, within its calendar range.
std::optional<int> BirthDatePart(std::string_view text, int min, int max) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < min || value > max) return std::nullopt;
  return value;
}

struct BirthDateRange {
  std::string_view part;
  int min;
  int max;
};
constexpr BirthDateRange kBirthDateParts[] = {{"day", 1, 31}, {"month", 1, 12}, {"year", 1, 9999}};

// Why Whippy would certainly refuse this contact (and with it the whole
// request), or nullopt. Checked before sending so that one bad contact is
// rejected alone.
std::optional<std::string> LocalProblem(const mapping::Contact& contact) {
  if (!NonEmpty(contact.phone)) return "phone is required";
  if (const auto email = NonEmpty(contact.email);
      email && Utf8Length(*email) > WhippyProvider::kMaxTextLength) {
    return "email is longer than 255 characters";
  }
  if (const auto name = Field(contact, "name");
      name && Utf8Length(*name) > WhippyProvider::kMaxTextLength) {
    return "name is longer than 255 characters";
  }
  for (const auto& [part, min, max] : kBirthDateParts) {
    const auto text = Field(contact, std::string(kBirthDatePrefix) + std::string(part));
    if (text && !BirthDatePart(*text, min, max)) {
      return "birth_date." + std::string(part) + " must be an integer from " + std::to_string(min) +
             " to " + std::to_string(max);
    }
  }
  return std::nullopt;
}

// "name", else the first and last name joined by a space.
std::optional<std::string> Name(const mapping::Contact& contact) {
  if (const auto name = Field(contact, "name")) return std::string(*name);
  const auto first = NonEmpty(contact.first_name);
  const auto last = NonEmpty(contact.last_name);
  if (first && last) return std::string(*first) + " " + std::string(*last);
  if (first) return std::string(*first);
  if (last) return std::string(*last);
  return std::nullopt;
}

// "external_id", else the CRM identity "key:value" that also keys the
// contact's events, so that Whippy contacts can be traced back to the CRM.
std::optional<std::string> ExternalId(const mapping::Contact& contact) {
  if (const auto id = Field(contact, "external_id")) return std::string(*id);
  const auto key = NonEmpty(contact.external_id_key);
  const auto value = NonEmpty(contact.external_id_value);
  if (key && value) return std::string(*key) + ":" + std::string(*value);
  return std::nullopt;
}

// Writes a contact that passed LocalProblem(). Absent and empty values are
// left out: Whippy would store an empty string over a known value.
void WriteContact(JsonWriter& writer, const mapping::Contact& contact) {
  writer.StartObject();
  WriteString(writer, "phone", *contact.phone);
  if (const auto email = NonEmpty(contact.email)) WriteString(writer, "email", *email);
  if (const auto name = Name(contact)) WriteString(writer, "name", *name);
  if (const auto id = ExternalId(contact)) WriteString(writer, "external_id", *id);
  for (const char* key : {"language", "default_channel_id"}) {
    if (const auto value = Field(contact, key)) WriteString(writer, key, *value);
  }

  // Contact::fields is sorted, so each dotted group is one contiguous run.
  // Address parts keep the names the mapping gives them (Whippy's reference
  // page does not list them; address_line_one, address_line_two, city, state,
  // country and post_code are the usual ones), so a rename needs no release.
  bool address_open = false;
  for (auto it = contact.fields.lower_bound(std::string(kAddressPrefix));
       it != contact.fields.end() && it->first.starts_with(kAddressPrefix); ++it) {
    const std::string_view part = std::string_view(it->first).substr(kAddressPrefix.size());
    if (part.empty() || it->second.empty()) continue;
    if (!address_open) {
      writer.Key("address");
      writer.StartObject();
      address_open = true;
    }
    WriteString(writer, part, it->second);
  }
  if (address_open) writer.EndObject();

  bool birth_date_open = false;
  for (const auto& [part, min, max] : kBirthDateParts) {
    const auto text = Field(contact, std::string(kBirthDatePrefix) + std::string(part));
    if (!text) continue;
    if (!birth_date_open) {
      writer.Key("birth_date");
      writer.StartObject();
      birth_date_open = true;
    }
    writer.Key(part.data(), static_cast<rapidjson::SizeType>(part.size()));
    writer.Int(*BirthDatePart(*text, min, max));
  }
  if (birth_date_open) writer.EndObject();

  if (!contact.metadata.empty()) WriteStringMap(writer, "properties", contact.metadata);
  writer.EndObject();
}

// Whippy's wire names; only the actions Supports() admits reach here.
std::string_view WireAction(mapping::Action action) {
  switch (action) {
    case mapping::Action::kAdd:
      return "add";
    case mapping::Action::kRemove:
      return "remove";
    case mapping::Action::kOverwrite:
      return "overwrite";
    case mapping::Action::kUpsert:
    case mapping::Action::kUpdateOnly:
    case mapping::Action::kEnroll:
    case mapping::Action::kUnenroll:
      break;
  }
  return "add";
}

// The text of one error entry: Whippy's {"description"}, or the usual other
// spellings should an entry or a proxy use them.
std::optional<std::string_view> EntryText(const rapidjson::Value& entry) {
  if (entry.IsString() && entry.GetStringLength() > 0) {
    return std::string_view(entry.GetString(), entry.GetStringLength());
  }
  for (const char* name : {"description", "message", "error", "reason"}) {
    if (auto text = StringMember(entry, name)) return text;
  }
  return std::nullopt;
}

const rapidjson::Value* ArrayMember(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  const auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsArray() ? &it->value : nullptr;
}

// Whippy's error body {"errors": [{"description": ...}], "status": N}: every
// description joined; failing that {"message"} / {"error"}.
std::optional<std::string> ErrorText(const rapidjson::Document& body) {
  if (body.HasParseError() || !body.IsObject()) return std::nullopt;
  std::string joined;
  if (const rapidjson::Value* errors = ArrayMember(body, "errors")) {
    for (const auto& entry : errors->GetArray()) {
      const auto text = EntryText(entry);
      if (!text) continue;
      if (!joined.empty()) joined += "; ";
      joined += *text;
    }
  }
  if (!joined.empty()) return joined;
  if (const auto text = EntryText(body)) return std::string(*text);
  return std::nullopt;
}

// The result of one request: either it failed as a whole (`failure` set) or
// each of its contacts has an outcome.
struct RequestResult {
  std::optional<Outcome> failure;
  std::vector<Outcome> outcomes;  // per chunk item when !failure
};

class WhippyExchange final : public Exchange {
 public:
  WhippyExchange(const WhippyProvider& provider, const Batch& batch)
      : provider_(provider),
        batch_(batch),
        options_(OptionsOf<WhippyOptions>(batch)),
        outcomes_(batch.items.size()) {}

  std::vector<HttpRequest> NextRound() override {
    if (!prepared_) Prepare();
    if (next_ >= chunks_.size()) return {};
    // Only the first request of an overwrite replaces the list; the rest add
    // to what it left.
    std::string_view action = WireAction(batch_.action);
    if (batch_.action == mapping::Action::kOverwrite && next_ > 0) action = "add";
    std::vector<HttpRequest> round;
    round.push_back(Build(chunks_[next_], action));
    return round;
  }

  void OnResponse(size_t, const HttpResponse& response) override {
    if (next_ >= chunks_.size()) return;
    const size_t current = next_++;
    const std::vector<size_t>& chunk = chunks_[current];
    RequestResult result = Classify(chunk, response);
    if (!result.failure) {
      for (size_t i = 0; i < chunk.size(); ++i) outcomes_[chunk[i]] = std::move(result.outcomes[i]);
      return;
    }
    const Outcome& failure = *result.failure;
    for (const size_t item : chunk) outcomes_[item] = failure;
    if (batch_.action != mapping::Action::kOverwrite) return;  // chunks are independent

    if (current == 0) {
      // Adding the rest to a list that was not replaced would leave it with
      // members it must not have: the rest waits for (or shares the fate of)
      // the overwrite.
      Outcome rest = failure;
      rest.reason =
          failure.kind == OutcomeKind::kReject
              ? "whippy: not sent, the list overwrite was rejected: " + failure.reason
              : "whippy: not sent, the list overwrite must succeed first: " + failure.reason;
      for (size_t c = 1; c < chunks_.size(); ++c) {
        for (const size_t item : chunks_[c]) outcomes_[item] = rest;
      }
      next_ = chunks_.size();
    } else if (failure.kind == OutcomeKind::kRetry) {
      // Retrying only this chunk later as an "overwrite" would drop the
      // contacts already added, so the whole overwrite is retried.
      Outcome again = failure;
      again.reason =
          "whippy: overwrite incomplete, the whole overwrite is retried: " + failure.reason;
      for (Outcome& outcome : outcomes_) {
        if (outcome.kind != OutcomeKind::kReject) outcome = again;
      }
      next_ = chunks_.size();
    }
  }

  std::vector<Outcome> Outcomes() override { return std::move(outcomes_); }

 private:
  // Decides which items are sent and in which chunks; rejects the rest.
  void Prepare() {
    prepared_ = true;
    if (!provider_.Supports(batch_.action)) {
      RejectAll("whippy does not support action '" +
                std::string(mapping::ActionName(batch_.action)) +
                "' (supported: add, remove, overwrite)");
      return;
    }
    std::vector<size_t> chunk;
    for (size_t i = 0; i < batch_.items.size(); ++i) {
      if (auto problem = LocalProblem(batch_.items[i]->contact)) {
        outcomes_[i] = Outcome{
            OutcomeKind::kReject, "whippy: contact not sent: " + provider_.Scrub(*problem), 0, {}};
        continue;
      }
      chunk.push_back(i);
      if (chunk.size() == WhippyProvider::kMaxContactsPerRequest) {
        chunks_.push_back(std::move(chunk));
        chunk.clear();
      }
    }
    if (!chunk.empty()) chunks_.push_back(std::move(chunk));
  }

  void RejectAll(const std::string& reason) {
    outcomes_.assign(batch_.items.size(), Outcome{OutcomeKind::kReject, reason, 0, {}});
  }

  HttpRequest Build(const std::vector<size_t>& chunk, std::string_view action) const {
    HttpRequest request;
    request.method = provider_.ListMethod();
    request.url = provider_.BaseUrl() + "/contacts/lists/" +
                  PercentEncodePathSegment(batch_.target) + "/contacts";
    request.headers = {
        {"Content-Type", "application/json"},
        {"Accept", "application/json"},
        {"X-WHIPPY-KEY", provider_.ApiKey()},
    };

    // Sized for a typical contact so that the buffer rarely grows.
    rapidjson::StringBuffer buffer(nullptr, 256 + 192 * chunk.size());
    JsonWriter writer(buffer);
    writer.StartObject();
    WriteString(writer, "action", action);
    writer.Key("contacts");
    writer.StartArray();
    for (const size_t item : chunk) WriteContact(writer, batch_.items[item]->contact);
    writer.EndArray();
    if (!options_.opt_in_to.empty()) {
      writer.Key("opt_in_to");
      writer.StartArray();
      for (const OptIn& entry : options_.opt_in_to) {
        writer.StartObject();
        WriteString(writer, entry.key, entry.value);
        writer.EndObject();
      }
      writer.EndArray();
    }
    if (options_.opt_in_to_all_channels) {
      writer.Key("opt_in_to_all_channels");
      writer.Bool(*options_.opt_in_to_all_channels);
    }
    writer.EndObject();
    request.body.assign(buffer.GetString(), buffer.GetSize());
    return request;
  }

  RequestResult Classify(const std::vector<size_t>& chunk, const HttpResponse& response) const {
    if (response.transport != Transport::kOk) {
      return RequestResult{TransportFailure(WhippyProvider::kName, response, provider_.ApiKey()),
                           {}};
    }
    if (IsSuccess(response)) return Accepted(chunk, response);
    return RequestResult{HttpError(response), {}};
  }

  // A 2xx means Whippy applied the request. Its response shape is not
  // documented: per-contact errors are used when they name a phone (or email)
  // of this request, compared normalised; an error naming a contact that is
  // not found makes the rest retried; anything else (or nothing) means every
  // contact is done, since retrying would only re-apply what was applied.
  RequestResult Accepted(const std::vector<size_t>& chunk, const HttpResponse& response) const {
    Outcome done;
    done.kind = OutcomeKind::kDone;
    done.http_status = static_cast<int>(response.status);
    RequestResult result{std::nullopt, std::vector<Outcome>(chunk.size(), done)};

    const rapidjson::Document body = ParseJson(response.body);
    if (body.HasParseError() || !body.IsObject()) return result;
    const rapidjson::Value* errors = ArrayMember(body, "errors");
    if (errors == nullptr) {
      const auto data = body.FindMember("data");
      if (data != body.MemberEnd()) errors = ArrayMember(data->value, "errors");
    }
    if (errors == nullptr) return result;

    // Whippy may echo identities normalised (E.164 phone, lower-case email):
    // they compare by digits and case-folded.
    std::vector<std::string> phones, emails;                        // per chunk position
    std::unordered_map<std::string, std::vector<size_t>> by_phone;  // digits -> chunk positions
    for (size_t i = 0; i < chunk.size(); ++i) {
      const mapping::Contact& contact = batch_.items[chunk[i]]->contact;
      phones.push_back(PhoneDigits(*contact.phone));
      emails.push_back(contact.email ? NormalizeEmail(*contact.email) : std::string());
      by_phone[phones.back()].push_back(i);
    }
    std::vector<bool> taken(chunk.size(), false);
    // Contacts with one phone are one Whippy contact: an entry takes the
    // first of them not yet taken.
    auto take = [&](const rapidjson::Value& entry) -> std::optional<size_t> {
      const auto phone_member = StringMember(entry, "phone");
      const std::string phone = phone_member ? PhoneDigits(*phone_member) : std::string();
      if (!phone.empty()) {
        if (const auto it = by_phone.find(phone); it != by_phone.end()) {
          for (const size_t i : it->second) {
            if (!taken[i]) return i;
          }
        }
        for (size_t i = 0; i < chunk.size(); ++i) {  // a country code added or dropped
          if (!taken[i] && SamePhoneDigits(phones[i], phone)) return i;
        }
      }
      const auto email_member = StringMember(entry, "email");
      const std::string email = email_member ? NormalizeEmail(*email_member) : std::string();
      if (!email.empty()) {
        for (size_t i = 0; i < chunk.size(); ++i) {
          if (!taken[i] && emails[i] == email) return i;
        }
      }
      return std::nullopt;
    };
    std::optional<std::string> unplaced;  // an error naming a contact not in this request
    for (const auto& entry : errors->GetArray()) {
      const auto text = EntryText(entry);
      const std::string detail =
          TruncateReason(provider_.Scrub(std::string(text.value_or("unspecified error"))));
      const auto index = take(entry);
      if (!index) {
        // An entry naming no contact at all is a notice about the request;
        // one naming a contact that cannot be found is about one of ours.
        if (!unplaced && (StringMember(entry, "phone") || StringMember(entry, "email"))) {
          unplaced = detail;
        }
        continue;
      }
      taken[*index] = true;
      Outcome& outcome = result.outcomes[*index];
      outcome.kind = OutcomeKind::kReject;
      outcome.reason = "whippy rejected contact: " + detail;
    }
    // Which contact an unplaced error is about cannot be told, so none of the
    // others counts as done: they are sent again (add and remove converge).
    if (unplaced) {
      for (size_t i = 0; i < chunk.size(); ++i) {
        if (taken[i]) continue;
        result.outcomes[i].kind = OutcomeKind::kRetry;
        result.outcomes[i].reason = "whippy reported an error for a contact it did not identify (" +
                                    *unplaced + "); the request's other contacts are retried";
      }
    }
    return result;
  }

  Outcome HttpError(const HttpResponse& response) const {
    const long code = response.status;
    const std::string status = std::to_string(code);
    const std::optional<std::string> text = ErrorText(ParseJson(response.body));
    const std::string detail = text ? TruncateReason(provider_.Scrub(*text)) : "";
    const std::string with_detail = detail.empty() ? "" : ": " + detail;

    if (code == 401 || code == 403) {
      provider_.InvalidateApiKey();
      // A configuration problem, not a property of the contacts: retrying
      // never loses data, and the circuit breaker stops the hammering.
      return MakeOutcome(OutcomeKind::kRetry,
                         "whippy: authentication failed (HTTP " + status + ") — check the API key",
                         code);
    }
    if (code == 404 || code == 405) {
      // The method is inferred, so a wrong one is the likeliest cause; a
      // missing list is the other. Neither heals by retrying.
      return MakeOutcome(OutcomeKind::kReject,
                         "whippy: list endpoint not found with method " + provider_.ListMethod() +
                             " (HTTP " + status + with_detail +
                             ") — check providers.whippy.listMethod and the list id",
                         code);
    }
    if (IsTransientStatus(code))
      return RetryLater("whippy: HTTP " + status + with_detail, response);
    if (code >= 400 && code < 500) {
      return MakeOutcome(
          OutcomeKind::kReject,
          "whippy: HTTP " + status + ": " + (detail.empty() ? "no error description" : detail),
          code);
    }
    // 1xx/3xx or nonsense: most likely a proxy or a wrong baseUrl. Nothing
    // says the contacts are bad, so keep them.
    return RetryLater("whippy: unexpected HTTP " + status + with_detail, response);
  }

  const WhippyProvider& provider_;
  const Batch& batch_;
  const WhippyOptions& options_;
  std::vector<std::vector<size_t>> chunks_;  // batch item indices, <= 4000 each
  size_t next_ = 0;                          // next chunk to send
  bool prepared_ = false;
  std::vector<Outcome> outcomes_;
};

}  // namespace

WhippyProvider::WhippyProvider(const mapping::ProviderConfig& config)
    : base_url_(config.base_url),
      api_key_(mapping::ApiKeySource(config)),
      list_method_(ListMethodSetting(config)),
      max_batch_(std::min(config.max_batch, kMaxContactsPerRequest)),
      max_overwrite_batch_(config.max_batch) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

bool WhippyProvider::Supports(mapping::Action action) const { return Spec().Supports(action); }

std::unique_ptr<Exchange> WhippyProvider::Start(const Batch& batch) {
  return std::make_unique<WhippyExchange>(*this, batch);
}

std::string WhippyProvider::Scrub(std::string text) const {
  return MaskSecret(std::move(text), api_key_->Get());
}

}  // namespace crmsync::providers::whippy
