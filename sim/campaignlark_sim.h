// CampaignLarkSim: the simulator's model of CampaignLark's contacts API (as
// documented), served under /campaignlark/v1:
//   POST /contacts/upsert            create or update by email_address, full
//                                    replace or merge (partial_update)
//   GET  /contacts/by-email?email=   the contact, or 404
//   POST /contacts/{id}/tags/add     {"tags": [id]}: adds tags
//   POST /contacts/{id}/tags/remove  {"tags": [id]}: removes tags
// with Authorization: Bearer <key> (401 {"error":{"message":"Unauthorized"}}),
// an IP allow-list switch (403 "IP address not allowed"), the documented
// 100 requests/second per workspace (429 "Too many requests", no
// Retry-After), and the documentation's four 400 messages. Every error body is
// {"error": {"message": "..."}}.
//
// The workspace (merge tags, required fields, tag names, allow-list) is test
// configuration: set it with SetWorkspace(); a reset keeps it, as it keeps the
// knobs. Inferred where the documentation is silent: emails match case-insensitively;
// any positive tag id exists (unknown ones are created as "tag-<id>"); tags
// sent on a partial update replace the contact's tags (the "tags to assign"),
// unless the workspace says partial_update_merges_tags; a field value of null
// or "" clears the field and counts as omitted for required fields.
//
// Thread-safe: all state is behind the host's mutex; the typed accessors lock
// it themselves. Nothing throws for bad input: it becomes an error reply.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sim/provider_sim.h"

namespace crmsync::sim {

inline constexpr std::string_view kCampaignLarkPathPrefix = "/campaignlark/v1";

// One field of the workspace: its merge tag, the label its errors name, and
// whether a create or full replace must provide it.
struct CampaignLarkField {
  std::string merge_tag;
  std::string label;
  bool required = false;
  bool operator==(const CampaignLarkField&) const = default;
};

struct CampaignLarkWorkspace {
  std::vector<CampaignLarkField> fields;
  std::map<int64_t, std::string> tags;  // tag id -> name
  bool ip_allowed = true;               // false: every request is 403
  // Tags sent on a partial update are added to the contact's instead of
  // replacing them.
  bool partial_update_merges_tags = false;

  // first_name, last_name, company, phone, tier, lifecycle_stage, job_title,
  // city, country, source (none required); tags 1..20 ("newsletter", "vip",
  // ...); IP allowed; partial tags replace.
  static CampaignLarkWorkspace Default();
};

// One contact as CampaignLark holds it.
struct CampaignLarkContact {
  std::string id;
  std::string email_address;
  std::string status;
  std::vector<int64_t> tags;                  // ascending
  std::map<std::string, std::string> fields;  // by merge tag; never email_address
  bool operator==(const CampaignLarkContact&) const = default;
};

// One upsert request as sent.
struct CampaignLarkUpsert {
  std::string email;
  // In request order, without email_address (ignored); nullopt (null or "")
  // clears the field.
  std::vector<std::pair<std::string, std::optional<std::string>>> fields;
  std::optional<std::vector<int64_t>> tags;
  std::optional<std::string> status;
  bool partial_update = false;  // the documented default
};

// Everything about an upsert body that needs no workspace (JSON shape,
// missing email, invalid status): the request, or CampaignLark's 400. Pure.
std::variant<CampaignLarkUpsert, SimReply> ParseCampaignLarkUpsert(std::string_view body);

class CampaignLarkSim final : public ProviderSim {
 public:
  static constexpr std::string_view kName = "campaignlark";

  CampaignLarkSim();

  std::string_view Name() const override { return kName; }
  std::string_view PathPrefix() const override { return kCampaignLarkPathPrefix; }
  void Register(httplib::Server& server, SimHost& host) override;
  // {"contacts": [{id, email_address, status, tags, fields}], "workspace": {...}}
  void WriteStateLocked(rapidjson::Writer<rapidjson::StringBuffer>& writer) const override;
  void ResetLocked() override;

  // Typed access for tests; each locks the host mutex.
  void SetWorkspace(CampaignLarkWorkspace workspace);
  CampaignLarkWorkspace Workspace() const;
  void SetIpAllowed(bool allowed);
  // The contact with this email (case-insensitive), if any.
  std::optional<CampaignLarkContact> Contact(std::string_view email) const;
  // Every contact, by lower-cased email.
  std::map<std::string, CampaignLarkContact> Contacts() const;

 private:
  struct Stored {
    CampaignLarkContact contact;
    std::string created_at, updated_at;
  };

  // Runs one request: latency, auth, allow-list and rate limit, then
  // `handle` under the lock.
  template <typename Handle>
  SimReply Serve(const httplib::Request& req, Handle handle);
  // Why the workspace refuses a request, or nullopt. Caller holds the mutex.
  std::optional<SimReply> RefuseLocked(const httplib::Request& req);

  SimReply UpsertLocked(const CampaignLarkUpsert& input);
  SimReply ByEmailLocked(std::string_view email) const;
  SimReply ChangeTagsLocked(std::string_view id, const std::vector<int64_t>& ids, bool add);

  // 200 {"data": contact} as the documentation's response shows it.
  SimReply ContactReply(const Stored& stored) const;
  const CampaignLarkField* FindField(std::string_view merge_tag) const;
  // Tag ids as sent: known ones kept, unknown ones created.
  std::vector<int64_t> ResolveTagsLocked(const std::vector<int64_t>& ids);
  std::string NewIdLocked();

  SimHost* host_ = nullptr;  // set by Register(); outlives this
  CampaignLarkWorkspace workspace_;
  std::map<std::string, Stored> contacts_;    // by lower-cased email
  std::map<std::string, std::string> by_id_;  // id -> lower-cased email
  uint64_t next_id_ = 1;
  WindowLimiter limiter_;
};

}  // namespace crmsync::sim
