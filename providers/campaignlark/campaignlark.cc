#include "providers/campaignlark/campaignlark.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "providers/http_outcome.h"
#include "providers/json.h"
#include "providers/text.h"

namespace crmsync::providers::campaignlark {
namespace {

// The message of an error body. CampaignLark documents
// {"error": {"message": "..."}}; a proxy or gateway in front of it may answer
// {"message"} or {"error": "..."}, which are read too.
std::optional<std::string> ErrorText(const std::string& body) {
  const rapidjson::Document doc = ParseJson(body);
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  const auto error = doc.FindMember("error");
  if (error != doc.MemberEnd() && error->value.IsObject()) {
    if (auto text = StringMember(error->value, "message")) return std::string(*text);
  }
  for (const char* name : {"error", "message"}) {
    if (auto text = StringMember(doc, name)) return std::string(*text);
  }
  return std::nullopt;
}

Outcome Reject(std::string reason, int http_status = 0) {
  return MakeOutcome(OutcomeKind::kReject, std::move(reason), http_status);
}

Outcome Retry(std::string reason, int http_status) {
  return MakeOutcome(OutcomeKind::kRetry, std::move(reason), http_status);
}

// One contact per request, so the exchange is one round of independent
// requests; each response settles exactly its own item.
class UpsertExchange final : public Exchange {
 public:
  UpsertExchange(const CampaignLarkProvider& provider, const Batch& batch)
      : provider_(provider), batch_(batch), outcomes_(batch.items.size()) {}

  std::vector<HttpRequest> NextRound() override {
    if (started_) return {};
    started_ = true;
    if (!provider_.Supports(batch_.action)) {
      RejectAll("campaignlark does not support action '" +
                std::string(mapping::ActionName(batch_.action)) + "'");
      return {};
    }
    const CampaignLarkOptions& batch_options = OptionsOf<CampaignLarkOptions>(batch_);
    std::vector<HttpRequest> round;
    round.reserve(batch_.items.size());
    for (size_t i = 0; i < batch_.items.size(); ++i) {
      auto built = provider_.BuildRequest(batch_.items[i]->contact, batch_options);
      if (auto* request = std::get_if<HttpRequest>(&built)) {
        round.push_back(std::move(*request));
        item_of_request_.push_back(i);
      } else {
        outcomes_[i] = std::move(std::get<Outcome>(built));
      }
    }
    return round;
  }

  void OnResponse(size_t index, const HttpResponse& response) override {
    // The engine answers only requests it was given; an index beyond them
    // would be its bug, and ignoring it keeps every item's outcome its own.
    if (index >= item_of_request_.size()) return;
    outcomes_[item_of_request_[index]] = provider_.Classify(response);
  }

  std::vector<Outcome> Outcomes() override { return std::move(outcomes_); }

 private:
  void RejectAll(const std::string& reason) {
    for (Outcome& outcome : outcomes_) outcome = Reject(reason);
  }

  const CampaignLarkProvider& provider_;
  const Batch& batch_;
  bool started_ = false;
  std::vector<Outcome> outcomes_;
  std::vector<size_t> item_of_request_;  // request index -> batch item index
};

}  // namespace

CampaignLarkProvider::CampaignLarkProvider(const mapping::ProviderConfig& config)
    : base_url_(config.base_url),
      api_key_(mapping::ApiKeySource(config)),
      max_batch_(config.max_batch),
      settings_(ParseSettings(config)) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

std::unique_ptr<Exchange> CampaignLarkProvider::Start(const Batch& batch) {
  return std::make_unique<UpsertExchange>(*this, batch);
}

bool CampaignLarkProvider::Supports(mapping::Action action) const {
  return Spec().Supports(action);
}

std::variant<HttpRequest, Outcome> CampaignLarkProvider::BuildRequest(
    const mapping::Contact& contact, const CampaignLarkOptions& options) const {
  // CampaignLark answers 400 for it anyway; rejecting here saves a request
  // from the 100 per second budget.
  if (!contact.email || contact.email->empty()) {
    return Reject("campaignlark rejected contact: email_address is required");
  }

  // Explicit merge tags from the rules win over the generic name and phone:
  // a rule that names a merge tag meant it. A JSON object cannot carry a key
  // twice, hence the map.
  std::map<std::string_view, std::string_view> fields;
  for (const auto& [tag, value] : contact.metadata) {
    if (tag != kEmailMergeTag) fields.emplace(tag, value);
  }
  const std::pair<const std::string*, const std::optional<std::string>*> named[] = {
      {&settings_.first_name_tag, &contact.first_name},
      {&settings_.last_name_tag, &contact.last_name},
      {&settings_.phone_tag, &contact.phone},
  };
  for (const auto& [tag, value] : named) {
    if (!tag->empty() && value->has_value()) fields.emplace(*tag, **value);
  }

  // The contact's own tags, then the batch's, each id once.
  std::vector<int64_t> tags = contact.tags;
  tags.insert(tags.end(), options.tags.begin(), options.tags.end());
  std::vector<int64_t> unique_tags;
  unique_tags.reserve(tags.size());
  for (const int64_t tag : tags) {
    if (std::find(unique_tags.begin(), unique_tags.end(), tag) == unique_tags.end()) {
      unique_tags.push_back(tag);
    }
  }

  HttpRequest request;
  request.method = "POST";
  request.url = base_url_ + "/contacts/upsert";
  request.headers = {
      {"Content-Type", "application/json"},
      {"Accept", "application/json"},
      {"Authorization", "Bearer " + api_key_->Get()},
  };

  rapidjson::StringBuffer buffer(nullptr, 256);
  JsonWriter writer(buffer);
  writer.StartObject();
  WriteString(writer, "email_address", *contact.email);
  // On a merge, an omitted member is preserved; on a full replace, the request
  // is the whole contact, so fields and tags are always sent and an empty one
  // says "none" rather than leaving it to an undocumented default.
  if (!fields.empty() || !options.partial_update) {
    writer.Key("fields");
    writer.StartObject();
    for (const auto& [tag, value] : fields) WriteString(writer, tag, value);
    writer.EndObject();
  }
  if (!unique_tags.empty() || !options.partial_update) {
    writer.Key("tags");
    writer.StartArray();
    for (const int64_t tag : unique_tags) writer.Int64(tag);
    writer.EndArray();
  }
  // Sent as given: CampaignLark validates it, and its 400 names the problem.
  if (contact.status) WriteString(writer, "status", *contact.status);
  // Always explicit: CampaignLark's default (false) is not ours.
  writer.Key("partial_update");
  writer.Bool(options.partial_update);
  writer.EndObject();
  request.body.assign(buffer.GetString(), buffer.GetSize());
  return request;
}

Outcome CampaignLarkProvider::Classify(const HttpResponse& response) const {
  if (response.transport != Transport::kOk) {
    return TransportFailure(kName, response, api_key_->Get());
  }
  // 200 is documented; any 2xx means the contact was written.
  if (IsSuccess(response)) return MakeOutcome(OutcomeKind::kDone, "", response.status);
  return ClassifyHttpError(response);
}

Outcome CampaignLarkProvider::ClassifyHttpError(const HttpResponse& response) const {
  const int status = static_cast<int>(response.status);
  const std::string code = std::to_string(response.status);
  const std::optional<std::string> text = ErrorText(response.body);
  const std::string detail = text ? ": " + TruncateReason(Scrub(*text)) : "";

  // CampaignLark's documented 400s (missing email, unknown merge tag, invalid
  // status, a required field missing) all say the contact as sent can never
  // be written: permanent.
  if (status == 400) {
    return Reject("campaignlark rejected contact: " +
                      (text ? TruncateReason(Scrub(*text)) : std::string("HTTP 400")),
                  status);
  }
  // 401 (bad key), 403 (this IP is not on the workspace's allow-list) and
  // 404/405 (no such endpoint: a wrong baseUrl) are the operator's to fix,
  // never the contact's fault: retrying keeps the data until they do.
  if (status == 401) {
    // A rotated key file is looked at again before the next request.
    api_key_->Invalidate();
    return Retry(
        "campaignlark: configuration error: authentication failed (HTTP 401) — "
        "check the API key",
        status);
  }
  if (status == 403) {
    return Retry("campaignlark: configuration error: forbidden (HTTP 403" + detail +
                     ") — check the workspace's IP allow-list",
                 status);
  }
  if (status == 404 || status == 405) {
    return Retry(
        "campaignlark: configuration error: no upsert endpoint (HTTP " + code + ") — check baseUrl",
        status);
  }
  if (IsTransientStatus(status)) {
    return RetryLater("campaignlark: HTTP " + code + detail, response);
  }
  if (status >= 400 && status < 500) return Reject("campaignlark: HTTP " + code + detail, status);
  // 1xx/3xx or nonsense: most likely a proxy or a wrong baseUrl. Nothing says
  // the contact is bad, so keep it.
  return RetryLater("campaignlark: unexpected HTTP " + code + detail, response);
}

std::string CampaignLarkProvider::Scrub(std::string text) const {
  return MaskSecret(std::move(text), api_key_->Get());
}

}  // namespace crmsync::providers::campaignlark
