// ContactState: what the worker knows about one contact — its identity,
// fields, properties and status as the events so far have left them — and
// how a (partial) event is merged onto it.
//
// Real CRM change streams carry only what changed plus a record id (a
// HubSpot propertyChange, a Salesforce CDC UPDATE's changedFields, a
// Debezium delete whose `before` holds only the key). MergeEvent() lays
// such an event over the contact's previous state, so that the rules see
// the whole contact and the previous values (transitions, "email changed").
//
// The state also records, per provider target, a hash of the last operation
// the provider confirmed (no-op suppression), and the state before each
// input message that may still be replayed (so that a replay after a crash
// evaluates transitions against what preceded that message, not against its
// own result).
//
// Plain values and pure functions; thread-safe. StateToJson/StateFromJson
// are the changelog record format (docs/STATE.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/event.h"

namespace crmsync::mapping {

// The contact as of some moment.
struct ContactSnapshot {
  ContactFields contact;
  std::optional<std::string> status;  // canonical (see StatusTable)
  bool deleted = false;               // the CRM deleted the record (it may come back)

  bool operator==(const ContactSnapshot&) const = default;
};

struct ContactState {
  ContactSnapshot current;
  // Input offset of the last message merged (-1: none).
  int64_t offset = -1;
  // The snapshot before each input message not yet durably committed (by
  // offset, ascending), at most kMaxHistory: a message delivered again after
  // a crash or a rebalance finds the state that preceded it here.
  struct Before {
    int64_t offset = 0;
    std::optional<ContactSnapshot> snapshot;  // nullopt: the contact was not known yet
    bool operator==(const Before&) const = default;
  };
  std::vector<Before> history;
  // "<provider>/<target>" -> hash of the last operation the provider
  // confirmed for this contact (OperationHash).
  std::map<std::string, uint64_t> delivered;
  // "<provider>/<target>" -> input offset of the latest message whose
  // operation there the provider confirmed: a replay of that message, or of
  // an earlier one of the contact, is already done there.
  std::map<std::string, int64_t> delivered_at;

  static constexpr size_t kMaxHistory = 32;

  bool operator==(const ContactState&) const = default;
};

// Source status values -> canonical ones, compared case-insensitively
// ("Disqualified", "Closed - Converted" -> "disqualified", "completed").
// A value not in the table is kept as it is.
class StatusTable {
 public:
  // The default table (docs/MAPPING.md lists it).
  static StatusTable Defaults();
  // Adds or replaces one entry.
  void Set(std::string_view from, std::string to);
  std::string Canonical(std::string_view status) const;
  const std::map<std::string, std::string>& Entries() const { return entries_; }

  bool operator==(const StatusTable&) const = default;

 private:
  std::map<std::string, std::string> entries_;  // lower-cased source -> canonical
};

// The snapshot after `event` on top of `before` (nullopt: first sight).
// Fields the event carries win; fields it lists as changed but does not
// carry are cleared; everything else is kept from `before`.
ContactSnapshot MergeEvent(const std::optional<ContactSnapshot>& before, const CrmEvent& event);

// Rewrites `event` to carry the whole contact `after`, and, when `before` is
// known, the previous values of every field (where the decoder did not say)
// and exactly the fields that differ between the two as changed_fields.
void ApplySnapshot(const std::optional<ContactSnapshot>& before, const ContactSnapshot& after,
                   CrmEvent& event);

// Changelog record value (compact JSON) and back; nullopt (with `error`)
// when the text is not a state record.
std::string StateToJson(const ContactState& state);
std::optional<ContactState> StateFromJson(std::string_view text, std::string& error);

// A stable 64-bit hash (FNV-1a) of text, e.g. of OperationJson().
uint64_t StableHash(std::string_view text);

}  // namespace crmsync::mapping
