#include "providers/replify/replify_spec.h"

#include "providers/replify/replify.h"
#include "providers/text.h"

namespace crmsync::providers::replify {
namespace {

class ReplifySpec final : public ProviderSpec {
 public:
  const mapping::ProviderTraits& Traits() const override {
    static const mapping::ProviderTraits kTraits{
        .name = ReplifyProvider::kName,
        .default_base_url = "https://api.heylibby.com/api/v1",
        .target_field = "campaignId",
        .target_kind = mapping::TargetKind::kString,
        .fixed_target = "",
        .actions = {mapping::Action::kUpsert, mapping::Action::kUpdateOnly,
                    mapping::Action::kRemove},
        .requires_contact = mapping::ContactRequirement::kEmailOrPhone,
        .pass_event_status = true,
        .metadata_from_properties = true,
        .request_routing = true,
        // updateOnly so that stopping outreach never adds the contact; the
        // event's completed/disqualified status is sent.
        .stop_outreach = {mapping::Action::kUpdateOnly,
                          std::nullopt,
                          "completed",
                          "",
                          {"completed", "disqualified"}},
        .default_max_batch = 100,
    };
    return kTraits;
  }

  void CheckTarget(const std::string& path, const std::string& target,
                   mapping::ConfigProblems& problems) const override {
    if (!IsUuid(target))
      problems.Add(path, "'" + target + "' is not a UUID (8-4-4-4-12 hex digits)");
  }

  std::shared_ptr<const mapping::ProviderOptions> ParseOptions(
      const std::string& path, const rapidjson::Value& options,
      mapping::ConfigProblems& problems) const override {
    OptionsReader reader(path, options, ReplifyProvider::kName, {}, problems);
    return std::make_shared<const mapping::ProviderOptions>();
  }

  // Replify documents no limit.
  std::vector<mapping::RateLimit> DocumentedRateLimits() const override { return {}; }

  std::unique_ptr<Provider> Create(const mapping::ProviderConfig& config) const override {
    return std::make_unique<ReplifyProvider>(config);
  }
};

}  // namespace

const ProviderSpec& Spec() {
  static const ReplifySpec kSpec;
  return kSpec;
}

}  // namespace crmsync::providers::replify
