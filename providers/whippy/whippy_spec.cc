#include "providers/whippy/whippy_spec.h"

#include <cctype>
#include <chrono>

#include "providers/json.h"
#include "providers/whippy/whippy.h"

namespace crmsync::providers::whippy {
namespace {

// {"id": "<non-empty>"} or {"phone": "<non-empty>"}, else nullopt.
std::optional<OptIn> ReadOptIn(const rapidjson::Value& channel) {
  if (!channel.IsObject() || channel.MemberCount() != 1) return std::nullopt;
  const auto only = channel.MemberBegin();
  const std::string key(only->name.GetString(), only->name.GetStringLength());
  if ((key != "id" && key != "phone") || !only->value.IsString() ||
      only->value.GetStringLength() == 0) {
    return std::nullopt;
  }
  return OptIn{key, std::string(only->value.GetString(), only->value.GetStringLength())};
}

class WhippySpec final : public ProviderSpec {
 public:
  const mapping::ProviderTraits& Traits() const override {
    static const mapping::ProviderTraits kTraits{
        .name = WhippyProvider::kName,
        .default_base_url = "https://api.whippy.co/v1",
        .target_field = "listId",
        .target_kind = mapping::TargetKind::kString,
        .fixed_target = "",
        .actions = {mapping::Action::kAdd, mapping::Action::kRemove, mapping::Action::kOverwrite},
        .requires_contact = mapping::ContactRequirement::kPhone,
        // Whippy maps properties onto its custom object: copying every CRM
        // property there would fail.
        .pass_event_status = false,
        .metadata_from_properties = false,
        .request_routing = false,
        .stop_outreach = {mapping::Action::kRemove, std::nullopt, std::nullopt, ""},
        // Whippy allows 10 list writes a minute: only big batches keep up.
        .default_max_batch = WhippyProvider::kMaxContactsPerRequest,
    };
    return kTraits;
  }

  std::shared_ptr<const mapping::ProviderOptions> ParseOptions(
      const std::string& path, const rapidjson::Value& options,
      mapping::ConfigProblems& problems) const override {
    auto parsed = std::make_shared<WhippyOptions>();
    OptionsReader reader(path, options, WhippyProvider::kName,
                         {"opt_in_to", "opt_in_to_all_channels"}, problems);
    if (const rapidjson::Value* channels = reader.Find("opt_in_to")) {
      const std::string channels_path = reader.PathOf("opt_in_to");
      if (!channels->IsArray() || channels->Empty() ||
          channels->Size() > WhippyProvider::kMaxOptInTo) {
        reader.Problem(channels_path, "must be an array of 1..1000 channels");
      } else {
        for (rapidjson::SizeType i = 0; i < channels->Size(); ++i) {
          if (std::optional<OptIn> entry = ReadOptIn((*channels)[i])) {
            parsed->opt_in_to.push_back(std::move(*entry));
          } else {
            reader.Problem(
                channels_path + "/" + std::to_string(i),
                "must be {\"id\": \"<channel id>\"} or {\"phone\": \"<channel phone>\"}");
          }
        }
      }
    }
    parsed->opt_in_to_all_channels = reader.Bool("opt_in_to_all_channels");
    return parsed;
  }

  // List writes are "time consuming": 10 a minute.
  std::vector<mapping::RateLimit> DocumentedRateLimits() const override {
    return {{10, std::chrono::minutes(1)}};
  }

  std::unique_ptr<Provider> Create(const mapping::ProviderConfig& config) const override {
    return std::make_unique<WhippyProvider>(config);
  }
};

}  // namespace

std::string ListMethodSetting(const mapping::ProviderConfig& config) {
  const std::string path = "/providers/" + config.name + "/listMethod";
  if (config.settings_json.empty()) return "PUT";
  const rapidjson::Document settings = ParseJson(config.settings_json);
  if (settings.HasParseError() || !settings.IsObject()) {
    throw mapping::ConfigError({"/providers/" + config.name + ": settings must be a JSON object"});
  }
  const auto it = settings.FindMember("listMethod");
  if (it == settings.MemberEnd()) return "PUT";
  std::string method = it->value.IsString() ? it->value.GetString() : "";
  for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (method != "PUT" && method != "POST" && method != "PATCH") {
    throw mapping::ConfigError({path + ": must be one of PUT, POST, PATCH"});
  }
  return method;
}

const ProviderSpec& Spec() {
  static const WhippySpec kSpec;
  return kSpec;
}

}  // namespace crmsync::providers::whippy
