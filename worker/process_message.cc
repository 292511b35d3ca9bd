#include "worker/process_message.h"

#include <variant>

#include "mapping/decode.h"

namespace crmsync::worker {

ProcessedMessage ProcessMessage(const kafka::Message& message, const mapping::Rules& rules) {
  ProcessedMessage out;
  if (message.null_payload) {
    out.fate = MessageFate::kMalformed;
    out.reason = "message has no value (tombstone)";
    return out;
  }
  mapping::DecodeResult decoded = mapping::DecodeCanonical(message.payload, message.key);
  if (const auto* error = std::get_if<mapping::DecodeError>(&decoded)) {
    out.fate = MessageFate::kMalformed;
    out.reason = error->ToString();
    return out;
  }
  mapping::MapResult mapped = mapping::Map(std::get<mapping::CrmEvent>(decoded), rules);
  out.rule = std::move(mapped.rule);
  out.operations = std::move(mapped.operations);
  out.fate = out.operations.empty() ? MessageFate::kUnmatched : MessageFate::kOperations;
  return out;
}

}  // namespace crmsync::worker
