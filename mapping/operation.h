// Operation: one provider-neutral instruction produced by the mapping rules,
// e.g. "upsert this contact into Replify campaign X".
//
// Plain value type, not synchronised. The dispatcher (worker/) groups
// Operations by BatchKey() and hands batches to a providers::Provider.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace crmsync::mapping {

enum class Action {
  kUpsert,      // add or update
  kUpdateOnly,  // update only if already present
  kRemove,      // remove from the target
};

// Wire name ("upsert", "updateOnly", "remove"), and the reverse.
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
  // Replify contactMetadata (key:value pairs informing the assistant).
  std::map<std::string, std::string> metadata;
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
  // Per-contact ordering identity: "<externalIdKey>:<externalIdValue>".
  std::string contact_key;
  Contact contact;

  // Operations with equal BatchKey() may travel in one provider request
  // (same provider, target and routing; the action is batched separately).
  std::string BatchKey() const;

  bool operator==(const Operation&) const = default;
};

}  // namespace crmsync::mapping
