// ReplyIoSim: the simulator's model of Reply.io's V3 API as crmsync uses it
// (as documented), served under /replyio so that
// BaseUrl("replyio") + "/v3/..." works:
//   POST /v3/contacts/filter        {"rules":[{"property":"email","condition":
//                                   "equals"|"eq"|"contains","value":...}]}
//                                   -> {items:[{id,email,...}], hasMore, totalCount}
//   POST /v3/contacts/import        {"items":[{email,firstName,lastName,phone}],
//                                   "options":{"overwriteExisting"}} -> per-item
//                                   {id, status, error} and counts
//   POST /v3/sequences/{id}/contact-links/bulk         -> {added, notProcessed}
//   POST /v3/sequences/{id}/contact-links/bulk-delete  -> {requested, removed,
//                                   notFound, notInSequence, removedIds}
// Auth is "Authorization: Bearer <key>"; a refused key gets 401 with an empty
// body. Every other error is application/problem+json {type,title,status,
// detail,code}, 400s with errors[] of {pointer, detail}. Rate limits per key:
// 100 requests/minute and 3,000/hour (scaled by the knobs), 429 with
// Retry-After in seconds.
//
// Contacts have auto-increment ids and unique (case-insensitive) emails. Any
// positive sequence id exists, unless a test marks it missing or forbidden.
//
// Thread-safety: all state lives under the host's mutex; the typed methods
// below take it themselves, so tests may call them while requests run.
// Nothing throws for bad input; a bad request becomes an error reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "sim/provider_sim.h"

namespace crmsync::sim {

struct ReplyIoContact {
  int64_t id = 0;
  std::string email, first_name, last_name, phone;
  bool operator==(const ReplyIoContact&) const = default;
};

// How one contact was enrolled: the bulk add's options as sent.
struct ReplyIoEnrollment {
  std::optional<int64_t> start_step_id;
  bool ignore_step_delay = false;
  std::optional<std::string> start_from;
  bool operator==(const ReplyIoEnrollment&) const = default;
};

// Reply.io's documented per-user limits; SetRateLimits exists for tests of
// one limit in isolation and for benchmarks.
struct ReplyIoRateLimits {
  int per_minute = 100;
  int per_hour = 3000;
};

class ReplyIoSim final : public ProviderSim {
 public:
  static constexpr std::string_view kName = "replyio";

  ReplyIoSim();
  ~ReplyIoSim() override;

  std::string_view Name() const override { return kName; }
  std::string_view PathPrefix() const override { return "/replyio"; }
  void Register(httplib::Server& server, SimHost& host) override;
  // {"contacts": [...], "sequences": {"<id>": [emails]}, "missingSequences",
  // "forbiddenSequences", "forbiddenContacts", "contactLimit"}
  void WriteStateLocked(rapidjson::Writer<rapidjson::StringBuffer>& writer) const override;
  void ResetLocked() override;

  // Typed access for tests; each takes the host mutex. Calling them before
  // the Simulator registered the sim is a programming error.
  // Sequence id -> emails of its enrolled contacts.
  std::map<int64_t, std::set<std::string>> Sequences() const;
  std::map<int64_t, ReplyIoContact> Contacts() const;
  std::optional<ReplyIoEnrollment> Enrollment(int64_t sequence_id, int64_t contact_id) const;
  // Creates a contact as the Reply.io UI would; its id, or the existing one.
  int64_t CreateContact(const std::string& email);
  // Deletes a contact and its enrollments (a cached id turns stale).
  void DeleteContact(int64_t contact_id);
  // The sequence answers 404 sequence.notFound.
  void MarkSequenceMissing(int64_t sequence_id);
  // Every contact is "forbidden" in the bulk add; bulk-delete answers 403
  // sequence.forbidden.
  void MarkSequenceForbidden(int64_t sequence_id);
  // This contact is "forbidden" in every bulk add.
  void MarkContactForbidden(int64_t contact_id);
  // The plan's limit of contacts in sequences (enrollments across all
  // sequences); beyond it a bulk add answers contactLimitExceeded. nullopt:
  // unlimited (the default).
  void SetContactLimit(std::optional<size_t> limit);
  void SetRateLimits(const ReplyIoRateLimits& limits);

 private:
  struct State;
  enum class Route { kFilter, kImport, kBulkAdd, kBulkDelete };

  void Handle(const httplib::Request& req, httplib::Response& res, Route route);

  SimHost* host_ = nullptr;
  std::unique_ptr<State> state_;  // guarded by host_->Mutex()
};

}  // namespace crmsync::sim
