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

#include <optional>
#include <string>
#include <vector>

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
};

ProcessedMessage ProcessMessage(const kafka::Message& message, const mapping::Rules& rules);

}  // namespace crmsync::worker
