#include "providers/replyio/replyio_spec.h"

#include <chrono>

#include "providers/json.h"
#include "providers/replyio/replyio.h"
#include "providers/text.h"

namespace crmsync::providers::replyio {
namespace {

class ReplyIoSpec final : public ProviderSpec {
 public:
  const mapping::ProviderTraits& Traits() const override {
    static const mapping::ProviderTraits kTraits{
        .name = ReplyIoProvider::kName,
        .default_base_url = "https://api.reply.io",
        .target_field = "sequenceId",
        .target_kind = mapping::TargetKind::kInteger,
        .fixed_target = "",
        .actions = {mapping::Action::kEnroll, mapping::Action::kUnenroll},
        .requires_contact = mapping::ContactRequirement::kEmail,
        .pass_event_status = false,
        .metadata_from_properties = false,
        .request_routing = false,
        .stop_outreach = {mapping::Action::kUnenroll, std::nullopt, std::nullopt, ""},
        .default_max_batch = 100,
    };
    return kTraits;
  }

  std::shared_ptr<const mapping::ProviderOptions> ParseOptions(
      const std::string& path, const rapidjson::Value& options,
      mapping::ConfigProblems& problems) const override {
    auto parsed = std::make_shared<ReplyIoOptions>();
    OptionsReader reader(path, options, ReplyIoProvider::kName,
                         {"removeFromExisting", "startStepId", "ignoreStepDelay", "startFrom"},
                         problems);
    parsed->remove_from_existing = reader.Bool("removeFromExisting");
    parsed->start_step_id = reader.PositiveInteger("startStepId");
    parsed->ignore_step_delay = reader.Bool("ignoreStepDelay");
    parsed->start_from = reader.DateTime("startFrom");
    return parsed;
  }

  // Per user.
  std::vector<mapping::RateLimit> DocumentedRateLimits() const override {
    return {{100, std::chrono::minutes(1)}, {3000, std::chrono::hours(1)}};
  }

  std::unique_ptr<Provider> Create(const mapping::ProviderConfig& config) const override {
    return std::make_unique<ReplyIoProvider>(config);
  }
};

}  // namespace

ReplyIoSettings ParseSettings(std::string_view settings_json, std::string_view provider_name) {
  ReplyIoSettings settings;
  if (TrimBlanks(settings_json).empty()) return settings;
  const std::string path = "/providers/" + std::string(provider_name);
  const rapidjson::Document doc = ParseJson(settings_json);
  if (doc.HasParseError() || !doc.IsObject()) {
    throw mapping::ConfigError({path + ": must be a JSON object"});
  }
  std::vector<std::string> problems;
  if (const auto it = doc.FindMember("createMissingContacts"); it != doc.MemberEnd()) {
    if (it->value.IsBool()) {
      settings.create_missing_contacts = it->value.GetBool();
    } else {
      problems.push_back(path + "/createMissingContacts: must be a boolean");
    }
  }
  if (const auto it = doc.FindMember("idCacheSize"); it != doc.MemberEnd()) {
    if (it->value.IsUint64()) {
      settings.id_cache_size = static_cast<size_t>(it->value.GetUint64());
    } else {
      problems.push_back(path + "/idCacheSize: must be an integer >= 0");
    }
  }
  if (const auto it = doc.FindMember("lookupCondition"); it != doc.MemberEnd()) {
    if (it->value.IsString() && it->value.GetStringLength() > 0) {
      settings.lookup_condition.assign(it->value.GetString(), it->value.GetStringLength());
    } else {
      problems.push_back(path + "/lookupCondition: must be a non-empty string");
    }
  }
  if (!problems.empty()) throw mapping::ConfigError(std::move(problems));
  return settings;
}

const ProviderSpec& Spec() {
  static const ReplyIoSpec kSpec;
  return kSpec;
}

}  // namespace crmsync::providers::replyio
