// The canonical event's fast path: one pass of simdjson's On-Demand parser
// that checks the event's structure and fills a CrmEvent as it reads,
// without a DOM and without walking the generic JSON Schema.
//
// simdjson finds the document's structure and validates its UTF-8 with SIMD
// instructions over the whole payload, then reads each value where it is;
// RapidJSON's reader, which this path used before, scans short strings byte
// by byte and took about three quarters of the decode (docs/PERFORMANCE.md).
//
// It accepts only what event.schema.json accepts, and fills exactly what the
// DOM path (decode.cc: RapidJSON's DOM, schema validation, then Fill) fills;
// anything else — a type the schema refuses, a duplicate field, an unknown
// contact field, invalid JSON, and what is rare enough not to mirror here (a
// number that is not an integer, an unknown field that is an object or an
// array) — makes it give up, and the DOM path decides, with its precise
// error message. tests/mapping/decode_canonical_test.cc and the fuzzer check
// both paths against each other.
#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "mapping/decode_internal.h"

namespace crmsync::mapping::internal {
namespace {

namespace od = simdjson::ondemand;

enum class Field {
  kUnknown,
  kEventId,
  kOccurredAt,
  kExternalIdKey,
  kExternalIdValue,
  kKind,
  kStatus,
  kOrigin,
  kContact,
  kChangedFields,
  kPrevious,
  kMergedIds,
  kFirstName,
  kLastName,
  kEmail,
  kPhone,
  kProperties,
};
constexpr uint32_t Bit(Field field) { return 1u << static_cast<int>(field); }
constexpr uint32_t kRequired = Bit(Field::kEventId) | Bit(Field::kOccurredAt) |
                               Bit(Field::kExternalIdKey) | Bit(Field::kExternalIdValue) |
                               Bit(Field::kKind);

Field RootField(std::string_view key) {
  if (key == "eventId") return Field::kEventId;
  if (key == "occurredAt") return Field::kOccurredAt;
  if (key == "externalIdKey") return Field::kExternalIdKey;
  if (key == "externalIdValue") return Field::kExternalIdValue;
  if (key == "kind") return Field::kKind;
  if (key == "status") return Field::kStatus;
  if (key == "origin") return Field::kOrigin;
  if (key == "contact") return Field::kContact;
  if (key == "changedFields") return Field::kChangedFields;
  if (key == "previous") return Field::kPrevious;
  if (key == "mergedIds") return Field::kMergedIds;
  return Field::kUnknown;
}

Field ContactField(std::string_view key) {
  if (key == "firstName") return Field::kFirstName;
  if (key == "lastName") return Field::kLastName;
  if (key == "email") return Field::kEmail;
  if (key == "phone") return Field::kPhone;
  if (key == "properties") return Field::kProperties;
  return Field::kUnknown;
}

// A field seen twice: the DOM path reads the first, the schema checks both;
// not worth mirroring here.
bool Claim(uint32_t& seen, Field field) {
  if (seen & Bit(field)) return false;
  seen |= Bit(field);
  return true;
}

bool TypeOf(od::value& value, od::json_type& type) { return !value.type().get(type); }

// A string value; false when it is not one (or not valid).
bool ReadString(od::value& value, std::string_view& text) { return !value.get_string().get(text); }

bool NonEmptyString(od::value& value, std::string& out) {
  std::string_view text;
  if (!ReadString(value, text) || text.empty()) return false;  // "minLength": 1
  out.assign(text);
  return true;
}

bool OptionalString(od::value& value, std::optional<std::string>& out) {
  std::string_view text;
  if (!ReadString(value, text)) return false;
  out.emplace(text);
  return true;
}

// The value of a properties/previous entry as text (string, integer or
// boolean; nullopt for null, which ScalarText leaves out too); false to give
// up (objects and arrays the schema refuses, and numbers that are not
// integers, whose text the DOM path's writer decides).
bool ScalarEntry(od::value& value, std::optional<std::string>& text) {
  od::json_type type;
  if (!TypeOf(value, type)) return false;
  switch (type) {
    case od::json_type::string:
      return OptionalString(value, text);
    case od::json_type::boolean: {
      bool flag = false;
      if (value.get_bool().get(flag)) return false;
      text.emplace(flag ? "true" : "false");
      return true;
    }
    case od::json_type::null: {
      bool null = false;
      return !value.is_null().get(null) && null;
    }
    case od::json_type::number: {
      od::number_type kind;
      if (value.get_number_type().get(kind)) return false;
      if (kind == od::number_type::signed_integer) {
        int64_t number = 0;
        if (value.get_int64().get(number)) return false;
        text.emplace(std::to_string(number));
        return true;
      }
      if (kind == od::number_type::unsigned_integer) {
        uint64_t number = 0;
        if (value.get_uint64().get(number)) return false;
        text.emplace(std::to_string(number));
        return true;
      }
      return false;
    }
    case od::json_type::object:
    case od::json_type::array:
      return false;
  }
  return false;
}

// Calls visit(name, value) for each member of `object`, in order; false
// when the object is not valid or `visit` gives up. The unescaped name stays
// in the parser's buffer until the next document.
template <typename Visit>
bool ForEachMember(od::object& object, Visit visit) {
  for (auto member : object) {
    od::field field;
    if (std::move(member).get(field)) return false;
    std::string_view name;
    if (field.unescaped_key().get(name)) return false;
    if (!visit(name, field.value())) return false;
  }
  return true;
}

// "properties" and "previous": objects of scalars, the first of a name kept.
bool ReadScalars(od::value& value, std::map<std::string, std::string>& map) {
  od::object object;
  if (value.get_object().get(object)) return false;
  return ForEachMember(object, [&](std::string_view name, od::value& entry) {
    std::optional<std::string> text;
    if (!ScalarEntry(entry, text)) return false;
    if (text) map.emplace(std::string(name), std::move(*text));
    return true;
  });
}

// An unknown root field (additionalProperties: true): a scalar, validated
// by reading it; objects and arrays are left to the DOM path, which bounds
// their nesting.
bool SkipUnknown(od::value& value) {
  std::optional<std::string> ignored;
  od::json_type type;
  if (!TypeOf(value, type)) return false;
  if (type == od::json_type::number) {
    double number = 0;
    return !value.get_double().get(number);
  }
  return ScalarEntry(value, ignored);
}

template <typename Add>
bool ReadStrings(od::value& value, Add add) {
  od::array array;
  if (value.get_array().get(array)) return false;
  for (auto item : array) {
    od::value element;
    if (std::move(item).get(element)) return false;
    std::string_view text;
    if (!ReadString(element, text) || !add(text)) return false;
  }
  return true;
}

bool ReadContact(od::value& value, CrmEvent& event) {
  od::object object;
  if (value.get_object().get(object)) return false;
  uint32_t seen = 0;
  return ForEachMember(object, [&](std::string_view name, od::value& entry) {
    const Field which = ContactField(name);
    if (which == Field::kUnknown) return false;  // additionalProperties: false
    if (!Claim(seen, which)) return false;
    switch (which) {
      case Field::kFirstName:
        return OptionalString(entry, event.contact.first_name);
      case Field::kLastName:
        return OptionalString(entry, event.contact.last_name);
      case Field::kEmail:
        return OptionalString(entry, event.contact.email);
      case Field::kPhone:
        return OptionalString(entry, event.contact.phone);
      case Field::kProperties:
        return ReadScalars(entry, event.contact.properties);
      default:
        return false;
    }
  });
}

// One root field into the event; false to give up.
bool ReadRootField(Field which, od::value& value, CrmEvent& event, CanonicalRead& read) {
  switch (which) {
    case Field::kEventId:
      return NonEmptyString(value, event.event_id);
    case Field::kOccurredAt:
      return NonEmptyString(value, event.occurred_at);
    case Field::kExternalIdKey:
      return NonEmptyString(value, event.external_id_key);
    case Field::kExternalIdValue:
      return NonEmptyString(value, event.external_id_value);
    case Field::kKind: {
      std::string_view text;
      if (!ReadString(value, text)) return false;
      const std::optional<EventKind> kind = ParseEventKind(text);  // "enum"
      if (kind) read.kind = *kind;
      return kind.has_value();
    }
    case Field::kStatus:
      return OptionalString(value, event.status);
    case Field::kOrigin:
      return OptionalString(value, event.origin);
    case Field::kContact:
      return ReadContact(value, event);
    case Field::kChangedFields:
      read.has_changed_fields = true;
      return ReadStrings(value, [&](std::string_view text) {
        if (text.empty()) return false;  // "minLength": 1
        event.changed_fields.emplace(text);
        return true;
      });
    case Field::kPrevious:
      return ReadScalars(value, event.previous);
    case Field::kMergedIds:
      return ReadStrings(value, [&](std::string_view text) {
        event.merged_ids.emplace_back(text);
        return true;
      });
    default:
      return SkipUnknown(value);
  }
}

}  // namespace

std::optional<CanonicalRead> ReadCanonicalFast(std::string_view payload, CrmEvent& event) {
  if (std::memchr(payload.data(), '\0', payload.size()) != nullptr) return std::nullopt;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: a copy with
  // that much room, reused by the thread (as is the parser's own memory).
  thread_local std::string buffer;
  thread_local od::parser parser;
  buffer.assign(payload);
  buffer.append(simdjson::SIMDJSON_PADDING, '\0');
  od::document doc;
  if (parser.iterate(buffer.data(), payload.size(), buffer.size()).get(doc)) return std::nullopt;
  od::object root;
  if (doc.get_object().get(root)) return std::nullopt;
  CanonicalRead read;
  uint32_t seen = 0;
  const bool read_all = ForEachMember(root, [&](std::string_view name, od::value& value) {
    const Field which = RootField(name);
    if (which != Field::kUnknown && !Claim(seen, which)) return false;
    return ReadRootField(which, value, event, read);
  });
  if (!read_all) return std::nullopt;
  // Nothing may follow the event: past its end there is no location.
  const char* rest = nullptr;
  if (doc.current_location().get(rest) != simdjson::OUT_OF_BOUNDS) return std::nullopt;
  if ((seen & kRequired) != kRequired) return std::nullopt;
  return read;
}

}  // namespace crmsync::mapping::internal
