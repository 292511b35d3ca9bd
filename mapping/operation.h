// Operation: one provider-neutral instruction produced by the mapping rules,
// e.g. "upsert this contact into Replify campaign X".
//
// Plain value type, not synchronised. The dispatcher (worker/) groups
// Operations by BatchKey() and hands batches to a providers::Provider.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/provider_options.h"

namespace crmsync::mapping {

// Which actions a provider accepts is the provider's (and the config
// schema's) business: Replify upsert/updateOnly/remove, Whippy lists
// add/remove/overwrite, CampaignLark upsert, Reply.io enroll/unenroll.
enum class Action {
  kUpsert,      // add or update
  kUpdateOnly,  // update only if already present
  kRemove,      // remove from the target
  kAdd,         // add to a list
  kOverwrite,   // replace a list's members with the batch's contacts
  kEnroll,      // add to a sequence
  kUnenroll,    // remove from a sequence
};
// Actions there are (kUnenroll is the last), for tables indexed by action.
inline constexpr size_t kActionCount = static_cast<size_t>(Action::kUnenroll) + 1;

// Wire name ("upsert", "updateOnly", "remove", "add", "overwrite", "enroll",
// "unenroll"), and the reverse.
std::string_view ActionName(Action action);
std::optional<Action> ParseAction(std::string_view name);

// The contact as the provider should see it. Absent optionals are not sent.
struct Contact {
  std::optional<std::string> first_name;
  std::optional<std::string> last_name;
  std::optional<std::string> email;
  std::optional<std::string> phone;
  // Outreach status to set, e.g. "completed" / "disqualified" stop outreach.
  std::optional<std::string> status;
  // The provider's free-form key/value bag: Replify contactMetadata, Whippy
  // properties, CampaignLark fields by merge tag.
  std::map<std::string, std::string> metadata;
  // Further named provider fields, dotted for nesting (Whippy "name",
  // "language", "default_channel_id", "address.city", "birth_date.day", ...).
  std::map<std::string, std::string> fields;
  // CampaignLark tag ids.
  std::vector<int64_t> tags;
  // Per-contact CRM identity sent to the provider (Replify externalIdKey/Value).
  std::optional<std::string> external_id_key;
  std::optional<std::string> external_id_value;

  bool operator==(const Contact&) const = default;
};

// Request-root routing (Replify root externalIdKey/externalIdValue). Operations
// with different routing never share a request.
struct Routing {
  std::string external_id_key;
  std::string external_id_value;

  bool operator==(const Routing&) const = default;
};

struct Operation {
  std::string provider;  // registry name, e.g. "replify"
  std::string target;    // provider resource, e.g. a Replify campaignId
  Action action = Action::kUpsert;
  std::optional<Routing> routing;
  // Request-level provider options as a JSON object text (e.g. Whippy
  // opt_in_to, Reply.io startStepId), equal for every operation of a rule
  // action; "" when none.
  std::string options_json;
  // options_json as the provider's spec parsed it at config load, shared by
  // every operation of the rule action; null when built without a spec
  // (the provider's defaults apply).
  std::shared_ptr<const ProviderOptions> options;
  // Per-contact ordering identity: "<externalIdKey>:<externalIdValue>".
  std::string contact_key;
  Contact contact;

  // Operations with equal BatchKey() may travel in one provider request
  // (same provider, target, routing and options; the action is batched
  // separately).
  std::string BatchKey() const;

  // `options` is not compared: it is options_json parsed.
  bool operator==(const Operation& other) const;
};

// The operation as one JSON object (for dry-run output, logs without PII
// concerns aside, and golden tests): {"provider", "target", "action",
// "contactKey", "routing"?, "options"?, "contact": {...present fields}}.
std::string OperationJson(const Operation& op);

}  // namespace crmsync::mapping
