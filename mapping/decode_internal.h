// Internal to mapping/: helpers shared by the decoders of each input format
// (decode.cc: canonical and dispatch; decode_formats.cc: HubSpot, Salesforce,
// Debezium). Pure functions, thread-safe, never throw on content.
#pragma once

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

#include "mapping/decode.h"

namespace crmsync::mapping::internal {

// Echoed values are cut so that a giant field cannot flood a log line.
std::string Echo(std::string_view text);

// NUL bytes and nesting depth (see decode.cc), then a UTF-8 validating parse.
std::optional<DecodeError> ParsePayload(std::string_view payload, rapidjson::Document& doc,
                                        std::string_view format);

std::string_view StringOf(const rapidjson::Value& value);
const rapidjson::Value* Find(const rapidjson::Value& object, const char* name);
// A string, number or boolean as text; nullopt for null, objects and arrays.
std::optional<std::string> ScalarText(const rapidjson::Value& value);

// The canonical fast path (decode_canonical.cc): the event's fields read in
// one SAX pass into `event` (a default-constructed one), if the payload
// certainly satisfies event.schema.json; nullopt when it may not (the DOM
// path then decides, with its message, and `event` holds whatever was read
// before the fast path gave up). `event.kind` and the changed fields a
// producer left out are not set: see `kind` and `has_changed_fields`.
struct CanonicalRead {
  EventKind kind = EventKind::kUpdated;  // valid: the read gives up on another
  bool has_changed_fields = false;
};
std::optional<CanonicalRead> ReadCanonicalFast(std::string_view payload, CrmEvent& event);

// The canonical event of `payload` through the DOM and the JSON Schema only
// (what the fast path falls back to), for tests comparing the two paths.
DecodeResult DecodeCanonicalWithSchema(std::string_view payload, std::string_view key);

// Checks the Kafka key against an event's identity ("" key: not checked).
std::optional<DecodeError> CheckKey(std::string_view key, const CrmEvent& event,
                                    std::string_view format);

// Each decoder appends the document's events (or ignored records) to `out`.
std::optional<DecodeError> DecodeHubSpot(const rapidjson::Value& doc, const FormatOptions& options,
                                         DecodedMessage& out);
std::optional<DecodeError> DecodeSalesforce(const rapidjson::Value& doc,
                                            const FormatOptions& options, DecodedMessage& out);
// The contact key a Debezium tombstone's Kafka key names ({"id": 42}, the
// {schema, payload} form, or "<externalIdKey>:<id>"); nullopt when none.
std::optional<std::string> DebeziumTombstoneKey(std::string_view key, const FormatOptions& options);

// `key` matters here: Debezium's own Kafka key is a JSON document.
std::optional<DecodeError> DecodeDebezium(const rapidjson::Value& doc, std::string_view key,
                                          const FormatOptions& options, DecodedMessage& out);

}  // namespace crmsync::mapping::internal
