// ProviderSpec and ProviderCatalog: what the config loader asks about each
// provider (its actions, target, request options, statuses, defaults).
//
// mapping names no provider: providers/<name>/ implements each spec and
// providers/registry lists them in the catalog that composition passes to
// LoadConfigFromString / LoadConfigFromFile.
//
// Specs are immutable singletons, safe to use from any thread.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/operation.h"
#include "mapping/provider_options.h"
#include "mapping/rules.h"

namespace crmsync::mapping {

// Collects config problems, each "<json path>: <what is wrong>".
class ConfigProblems {
 public:
  explicit ConfigProblems(std::vector<std::string>& out) : out_(out) {}
  void Add(const std::string& path, const std::string& message) {
    out_.push_back((path.empty() ? "/" : path) + ": " + message);
  }

 private:
  std::vector<std::string>& out_;
};

// How a rule action names the provider resource it targets.
enum class TargetKind {
  kString,   // a non-empty id (Replify campaignId, Whippy listId); see CheckTarget
  kInteger,  // a positive integer, kept as decimal text (Reply.io sequenceId)
  kFixed,    // no id: the account's contacts (CampaignLark)
};

// What a rule action's "stopOutreach" means unless the provider's config
// overrides it: the documented way the provider stops outreach.
struct StopOutreachDefault {
  Action action = Action::kUpsert;
  std::optional<std::string> status;
  std::optional<std::string> default_status;
  std::string options_json;  // "" for none
  // The statuses the provider documents for stopping outreach: an event
  // status outside them is replaced by default_status.
  std::vector<std::string> statuses = {};
};

// The facts about a provider that the config loader applies generically.
struct ProviderTraits {
  std::string_view name;  // the key under "providers", e.g. "whippy"
  std::string_view default_base_url;
  // The rule-action member naming the target ("campaignId"); "" for kFixed.
  std::string_view target_field;
  TargetKind target_kind = TargetKind::kFixed;
  std::string_view fixed_target;  // the target of a kFixed provider
  std::vector<Action> actions;    // supported; the first is the default
  ContactRequirement requires_contact = ContactRequirement::kNone;
  // Whether the event's own status ("completed", ...) means something to the
  // provider, or it only takes a constant or a statusMap.
  bool pass_event_status = true;
  // Whether the event's properties become Contact::metadata by default.
  bool metadata_from_properties = true;
  // Whether a rule action may set request-root routing (externalIdKey and
  // externalIdValue on the action).
  bool request_routing = false;
  StopOutreachDefault stop_outreach;
  size_t default_max_batch = 100;
};

class ProviderSpec {
 public:
  virtual ~ProviderSpec() = default;

  virtual const ProviderTraits& Traits() const = 0;

  // Checks a kString target id beyond being non-empty (Replify: a UUID),
  // reporting a problem at `path`. Accepts any by default.
  virtual void CheckTarget(const std::string& path, const std::string& target,
                           ConfigProblems& problems) const;

  // Checks a status a rule action or stopOutreach sets, reporting a problem
  // at `path` when the provider cannot take it. Accepts any by default.
  virtual void CheckStatus(const std::string& path, const std::string& status,
                           ConfigProblems& problems) const;

  // Checks a request-options object (at `path`) and returns it parsed; each
  // problem is reported at its own path. A value the schema already rejects
  // for its type may be reported again here. Never returns null: an empty
  // object gives the provider's defaults.
  virtual std::shared_ptr<const ProviderOptions> ParseOptions(const std::string& path,
                                                              const rapidjson::Value& options,
                                                              ConfigProblems& problems) const = 0;

  bool Supports(Action action) const;
  // "upsert, updateOnly, remove" (and ", stopOutreach" when `with_stop`).
  std::string ActionNames(bool with_stop) const;
};

// The specs of every provider the config may name.
class ProviderCatalog {
 public:
  explicit ProviderCatalog(std::vector<const ProviderSpec*> specs) : specs_(std::move(specs)) {}

  const std::vector<const ProviderSpec*>& Specs() const { return specs_; }
  // nullptr for a name no spec has.
  const ProviderSpec* Find(std::string_view name) const;
  // "replify, whippy, ..." in catalog order.
  std::string Names() const;

 private:
  std::vector<const ProviderSpec*> specs_;
};

}  // namespace crmsync::mapping
