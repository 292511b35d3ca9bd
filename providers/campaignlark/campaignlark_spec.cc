#include "providers/campaignlark/campaignlark_spec.h"

#include <algorithm>
#include <chrono>
#include <string_view>

#include "providers/campaignlark/campaignlark.h"
#include "providers/json.h"

namespace crmsync::providers::campaignlark {
namespace {

constexpr std::string_view kStatuses[] = {"SUBSCRIBED", "UNSUBSCRIBED", "UNCONFIRMED", "CLEANED",
                                          "COMPLAINED"};

// A merge-tag setting: absent keeps the default, "" disables it.
void ReadTagSetting(const rapidjson::Document& settings, const char* name, const std::string& path,
                    std::string& out, std::vector<std::string>& problems) {
  const auto it = settings.FindMember(name);
  if (it == settings.MemberEnd()) return;
  if (!it->value.IsString()) {
    problems.push_back(path + "/" + name + ": must be a string (a merge tag, or \"\" to disable)");
    return;
  }
  out.assign(it->value.GetString(), it->value.GetStringLength());
  if (out == kEmailMergeTag) {
    problems.push_back(path + "/" + name + ": email_address cannot be written through fields");
  }
}

class CampaignLarkSpec final : public ProviderSpec {
 public:
  const mapping::ProviderTraits& Traits() const override {
    static const mapping::ProviderTraits kTraits{
        .name = CampaignLarkProvider::kName,
        .default_base_url = "https://api.campaignlark.com/v1",
        .target_field = "",
        .target_kind = mapping::TargetKind::kFixed,
        .fixed_target = "contacts",
        .actions = {mapping::Action::kUpsert},
        .requires_contact = mapping::ContactRequirement::kEmail,
        // CampaignLark only accepts its five statuses, so it gets a status
        // only from a constant or a statusMap; and it rejects unknown merge
        // tags, so CRM properties are not copied by default.
        .pass_event_status = false,
        .metadata_from_properties = false,
        .request_routing = false,
        // A partial update, so that unsubscribing keeps the contact's data.
        .stop_outreach = {mapping::Action::kUpsert, "UNSUBSCRIBED", std::nullopt,
                          R"({"partialUpdate":true})"},
        .default_max_batch = 100,
    };
    return kTraits;
  }

  void CheckStatus(const std::string& path, const std::string& status,
                   mapping::ConfigProblems& problems) const override {
    if (std::find(std::begin(kStatuses), std::end(kStatuses), status) != std::end(kStatuses)) {
      return;
    }
    problems.Add(path, "'" + status +
                           "' is not a CampaignLark status (SUBSCRIBED, UNSUBSCRIBED, UNCONFIRMED, "
                           "CLEANED, COMPLAINED)");
  }

  std::shared_ptr<const mapping::ProviderOptions> ParseOptions(
      const std::string& path, const rapidjson::Value& options,
      mapping::ConfigProblems& problems) const override {
    auto parsed = std::make_shared<CampaignLarkOptions>();
    OptionsReader reader(path, options, CampaignLarkProvider::kName, {"partialUpdate", "tags"},
                         problems);
    parsed->partial_update = reader.Bool("partialUpdate").value_or(true);
    parsed->tags = reader.Integers("tags").value_or(std::vector<int64_t>{});
    return parsed;
  }

  // Per workspace.
  std::vector<mapping::RateLimit> DocumentedRateLimits() const override {
    return {{100, std::chrono::seconds(1)}};
  }

  std::unique_ptr<Provider> Create(const mapping::ProviderConfig& config) const override {
    return std::make_unique<CampaignLarkProvider>(config);
  }
};

}  // namespace

CampaignLarkSettings ParseSettings(const mapping::ProviderConfig& config) {
  CampaignLarkSettings out;
  if (config.settings_json.empty()) return out;

  const std::string path = "/providers/" + config.name;
  const rapidjson::Document settings = ParseJson(config.settings_json);
  if (settings.HasParseError() || !settings.IsObject()) {
    throw mapping::ConfigError({path + ": provider settings must be a JSON object"});
  }
  std::vector<std::string> problems;
  // The CRM's first and last name land in CampaignLark's conventional
  // first_name/last_name merge tags (the documentation's own sample uses them); a
  // workspace with other tags renames them, and "" leaves the names out, since
  // an unknown merge tag makes CampaignLark reject the whole contact.
  ReadTagSetting(settings, "firstNameTag", path, out.first_name_tag, problems);
  ReadTagSetting(settings, "lastNameTag", path, out.last_name_tag, problems);
  // Not every workspace has a phone field, so the phone is only sent when a
  // merge tag for it is configured.
  ReadTagSetting(settings, "phoneTag", path, out.phone_tag, problems);
  if (!problems.empty()) throw mapping::ConfigError(std::move(problems));
  return out;
}

const ProviderSpec& Spec() {
  static const CampaignLarkSpec kSpec;
  return kSpec;
}

}  // namespace crmsync::providers::campaignlark
