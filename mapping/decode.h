// Decoding of Kafka message payloads into CrmEvents.
//
// Pure functions; thread-safe (the compiled schema is immutable and shared).
// Never throw on payload content: a bad payload yields a DecodeError naming
// what is wrong and where.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "mapping/event.h"

namespace crmsync::mapping {

struct DecodeError {
  std::string reason;     // e.g. "schema violation: required property 'kind' missing"
  std::string json_path;  // JSON pointer of the offending value, "" for the document

  std::string ToString() const;  // "<reason> at <json_path>"
};

// Either the event or why it could not be decoded.
using DecodeResult = std::variant<CrmEvent, DecodeError>;

// Decodes a canonical crmsync event (schemas/event.schema.json). When `key` is
// non-empty it must equal the event's "<externalIdKey>:<externalIdValue>".
DecodeResult DecodeCanonical(std::string_view payload, std::string_view key = {});

}  // namespace crmsync::mapping
