#include "worker/process_message.h"

#include <variant>

#include "mapping/decode.h"

namespace crmsync::worker {

ProcessedMessage ProcessMessage(const kafka::Message& message, const mapping::Rules& rules) {
  ProcessedMessage out;
  mapping::DecodeMessageResult decoded =
      mapping::DecodeMessage(message.payload, message.null_payload, message.key,
                             rules.input.FormatOf(message.topic), rules.input.decode);
  if (const auto* error = std::get_if<mapping::DecodeError>(&decoded)) {
    out.fate = MessageFate::kMalformed;
    out.reason = error->ToString();
    return out;
  }
  auto& events = std::get<mapping::DecodedMessage>(decoded);
  out.format = events.format;
  out.notes = std::move(events.ignored);
  bool unmappable = false;
  for (mapping::CrmEvent& event : events.events) {
    event.source_topic = std::string(message.topic);
    mapping::MapResult mapped = mapping::Map(event, rules);
    if (!mapped.rule.empty()) {
      if (!out.rule.empty()) out.rule += ',';
      out.rule += mapped.rule;
    }
    for (mapping::Operation& op : mapped.operations) out.operations.push_back(std::move(op));
    unmappable = unmappable || !mapped.skipped.empty();
    for (std::string& note : mapped.skipped) out.notes.push_back(std::move(note));
  }
  if (!out.operations.empty()) return out;
  // A rule applied but none of its actions could be built (e.g. no email
  // for Reply.io): the event is unmappable, which deserves a dead letter.
  out.fate = unmappable ? MessageFate::kMalformed : MessageFate::kUnmatched;
  if (!out.notes.empty()) {
    for (const std::string& note : out.notes) {
      if (!out.reason.empty()) out.reason += "; ";
      out.reason += note;
    }
  } else if (out.rule.empty()) {
    out.reason = "no rule matched";
  } else {
    out.reason = "rule '" + out.rule + "' has no actions: the event is dropped on purpose";
  }
  return out;
}

}  // namespace crmsync::worker
