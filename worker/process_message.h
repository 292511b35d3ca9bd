// ProcessMessage: the per-message pipeline (decode, validate, map) as a plain
// function of one Kafka record, so that it is tested without a broker.
//
// Pure and thread-safe; never throws on content.
#pragma once

#include <string>
#include <vector>

#include "mapping/operation.h"
#include "mapping/rules.h"
#include "worker/kafka/message.h"

namespace crmsync::worker {

enum class MessageFate {
  kOperations,  // mapped to one or more operations
  kUnmatched,   // valid, but no rule applies: skipped and counted
  kMalformed,   // cannot be decoded or validated: skipped with a reason
};

struct ProcessedMessage {
  MessageFate fate = MessageFate::kOperations;
  std::vector<mapping::Operation> operations;
  std::string rule;    // the rule that matched
  std::string reason;  // why the message is malformed (format, JSON path)
};

ProcessedMessage ProcessMessage(const kafka::Message& message, const mapping::Rules& rules);

}  // namespace crmsync::worker
