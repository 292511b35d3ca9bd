// The simulator's model of Replify's campaign-contacts API (as documented):
// request validation, per-contact semantics of upsert / updateOnly / remove,
// and the campaigns it holds. The HTTP plumbing (routes, auth, latency,
// injected failures, counters) is the Simulator's; this file is only Replify.
//
// ParseReplifyRequest is pure and thread-safe. ReplifyState is a plain value,
// not synchronised: the Simulator calls it under its one mutex. Nothing here
// throws for bad input; a bad request becomes a 400 SimReply.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "sim/provider_sim.h"
#include "sim/simulator.h"

namespace crmsync::sim {

// Path prefix of the simulated Replify API (its "/api/v1" base).
inline constexpr std::string_view kReplifyPathPrefix = "/replify/api/v1";

// One contact of a request as sent: absent fields stay absent so that an
// update leaves them unchanged. An empty email or phone counts as absent.
struct ReplifyContactInput {
  std::optional<std::string> first_name, last_name, email, phone, status;
  std::map<std::string, std::string> metadata;  // contactMetadata; scalars as text
  std::optional<std::string> external_id_key, external_id_value;
};

enum class ReplifyAction { kUpsert, kUpdateOnly, kRemove };

struct ReplifyRequest {
  std::string campaign_id;
  ReplifyAction action = ReplifyAction::kUpsert;  // the documented default
  std::vector<ReplifyContactInput> contacts;
};

// Validates the path's campaign id (a UUID) and the body; the request, or the
// 400 reply Replify would give.
std::variant<ReplifyRequest, SimReply> ParseReplifyRequest(std::string_view campaign_id,
                                                           std::string_view body);

// Every campaign's contacts. Any campaign id exists; it is created empty on
// first use. A contact's identity is its email, or its phone when it has no
// email. An incoming contact matches an existing one by email; failing that,
// by phone, provided the two do not carry different emails (two emails are two
// people).
class ReplifyState {
 public:
  using Campaigns = std::map<std::string, std::map<std::string, ReplifyContact>>;

  // Applies a valid request and answers 200 {message, success[], errors[]}.
  // With `normalize_identities`, identities are normalised first (see
  // Knobs::normalize_identities).
  SimReply Apply(const ReplifyRequest& request, bool normalize_identities = false);

  Campaigns Snapshot() const;
  // {"campaigns": {"<id>": [contact, ...]}} with Replify's field names.
  void WriteJson(rapidjson::Writer<rapidjson::StringBuffer>& writer) const;
  void Clear() { campaigns_.clear(); }

 private:
  // Hashed: a benchmark's campaign holds 100,000 contacts, and every
  // contact of a request is looked up several times under the simulator's
  // one lock. Snapshot() and WriteJson() order them by identity.
  struct Campaign {
    using Contacts = std::unordered_map<std::string, ReplifyContact>;
    Contacts contacts;                                                // by identity
    std::unordered_map<std::string, std::set<std::string>> by_phone;  // phone -> identities
  };

  static std::optional<std::string> Find(const Campaign& campaign,
                                         const ReplifyContactInput& input);
  static void Insert(Campaign& campaign, ReplifyContact contact);
  static ReplifyContact Extract(Campaign& campaign, const std::string& identity);

  std::map<std::string, Campaign> campaigns_;
};

}  // namespace crmsync::sim
