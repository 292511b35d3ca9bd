// ProcessMessage: the per-message pipeline (decode, validate, map) as a plain
// function of one Kafka record, so that it is tested without a broker.
//
// The topic's format comes from rules.input (detected per message when the
// topic has none); one message may carry several events (a HubSpot batch, a
// Salesforce change of several records), whose operations are concatenated
// in event order.
//
// Pure and thread-safe; never throws on content.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mapping/contact_state.h"
#include "mapping/event.h"
#include "mapping/operation.h"
#include "mapping/rules.h"
#include "worker/kafka/message.h"

namespace crmsync::worker {

enum class MessageFate {
  kOperations,  // mapped to one or more operations
  kUnmatched,   // valid, but nothing to do (no rule applies, or a record
                // without data such as a tombstone or a GAP_* event):
                // skipped and counted; `reason` says why
  kMalformed,   // cannot be decoded or validated, or a rule applied but none of
                // its actions could be built: skipped with a reason
  kSkipped,     // with contact state: valid, but the contact is not known well
                // enough to act on (a deletion or status change of a contact
                // never seen, a contact without its identity yet);
                // `skip_label` says which ("unknown_contact", "incomplete")
};

struct ProcessedMessage {
  MessageFate fate = MessageFate::kOperations;
  std::vector<mapping::Operation> operations;
  std::string rule;  // the rule(s) that matched, joined with ','
  // The input format the message was decoded as; unset when it could not be
  // decoded (or was not tried).
  std::optional<mapping::InputFormat> format;
  std::string reason;  // why the message is malformed or unmatched (format, JSON path, rule)
  // Actions that matched but produced no operation, and records without
  // data, each with why (worth a log line even when other operations exist).
  std::vector<std::string> notes;
  // kSkipped: the metric label.
  std::string skip_label;
};

ProcessedMessage ProcessMessage(const kafka::Message& message, const mapping::Rules& rules);

// Contact state (docs/STATE.md) for one message: how to read a contact's
// state in the message's partition, and the changes the message makes.
struct StateContext {
  std::function<std::optional<mapping::ContactState>(const std::string& key)> lookup;
  struct Change {
    std::string key;
    std::optional<mapping::ContactState> state;  // nullopt: erased (tombstone)
  };
  // Filled by ProcessMessage, in order; one per contact the message touched.
  std::vector<Change> changes;
  // The partition's durably committed offset (-1: unknown): no message below
  // it can be delivered again, so history entries below it are dropped.
  int64_t replay_floor = -1;
};

// As above, with each event merged onto its contact's state first: the
// rules see the whole contact, the previous values and the fields that
// really changed. A message delivered again (its offset is in the state's
// history) is evaluated against the state that preceded it. A Debezium
// tombstone erases the contact's state; a privacy deletion maps, then
// erases it. Events of contacts that are unknown or lack their identity
// make the message kSkipped rather than kMalformed.
ProcessedMessage ProcessMessage(const kafka::Message& message, const mapping::Rules& rules,
                                StateContext& state);

}  // namespace crmsync::worker
