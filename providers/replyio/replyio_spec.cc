#include "providers/replyio/replyio_spec.h"

#include <chrono>

#include "providers/replyio/replyio.h"

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

const ProviderSpec& Spec() {
  static const ReplyIoSpec kSpec;
  return kSpec;
}

}  // namespace crmsync::providers::replyio
