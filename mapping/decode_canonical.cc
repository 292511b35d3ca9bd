// The canonical event's fast path: one SAX pass (RapidJSON's Reader) that
// checks the event's structure and fills a CrmEvent as it reads, without a
// DOM and without walking the generic JSON Schema.
//
// It accepts only what event.schema.json accepts, and fills exactly what the
// DOM path (decode.cc: schema validation, then Fill) fills; anything else —
// a type the schema refuses, a duplicate field, an unknown contact field,
// invalid JSON — makes it give up, and the DOM path decides, with its precise
// error message. tests/mapping/decode_canonical_test.cc checks both paths
// against each other.
#include <rapidjson/reader.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "mapping/decode_internal.h"
#include "mapping/json_schema.h"

namespace crmsync::mapping::internal {
namespace {

// RapidJSON's iterative parser does not recurse; the handler still bounds the
// nesting of unknown fields as the DOM path does.
constexpr int kMaxNesting = 64;

bool IsAscii(std::string_view text) {
  const char* p = text.data();
  size_t n = text.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    if (word & 0x8080808080808080ull) return false;
  }
  for (; n > 0; ++p, --n) {
    if (static_cast<unsigned char>(*p) & 0x80) return false;
  }
  return true;
}

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

class CanonicalHandler {
 public:
  explicit CanonicalHandler(CrmEvent& event) : event_(event) {}

  // Every required field was seen (the schema's "required").
  bool Complete() const { return where_ == Where::kDone && (seen_ & kRequired) == kRequired; }
  const std::string& Kind() const { return kind_; }
  bool HasChangedFields() const { return (seen_ & Bit(Field::kChangedFields)) != 0; }

  bool Null() { return Scalar(std::nullopt); }
  bool Bool(bool b) { return Scalar(std::string(b ? "true" : "false")); }
  bool Int(int i) { return Number(rapidjson::Value(i)); }
  bool Uint(unsigned u) { return Number(rapidjson::Value(u)); }
  bool Int64(int64_t i) { return Number(rapidjson::Value(i)); }
  bool Uint64(uint64_t u) { return Number(rapidjson::Value(u)); }
  bool Double(double d) { return Number(rapidjson::Value(d)); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return false; }

  bool String(const char* text, rapidjson::SizeType length, bool) {
    const std::string_view value(text, length);
    switch (where_) {
      case Where::kRoot:
        return RootString(value);
      case Where::kContact:
        return ContactString(value);
      case Where::kProperties:
      case Where::kPrevious:
        return Scalar(std::string(value));
      case Where::kChangedFields:
        if (value.empty()) return false;  // "minLength": 1
        event_.changed_fields.emplace(value);
        return true;
      case Where::kMergedIds:
        event_.merged_ids.emplace_back(value);
        return true;
      case Where::kSkip:
        return SkippedScalar();
      default:
        return false;
    }
  }

  bool Key(const char* text, rapidjson::SizeType length, bool) {
    const std::string_view key(text, length);
    switch (where_) {
      case Where::kRoot: {
        field_ = RootField(key);
        if (field_ == Field::kUnknown) {
          where_ = Where::kSkip;  // additionalProperties: true
          skip_depth_ = 0;
          return true;
        }
        return Claim(seen_, field_);
      }
      case Where::kContact:
        field_ = ContactField(key);
        if (field_ == Field::kUnknown) return false;  // additionalProperties: false
        return Claim(contact_seen_, field_);
      case Where::kProperties:
      case Where::kPrevious:
        map_key_.assign(key);
        return true;
      case Where::kSkip:
        return true;
      default:
        return false;
    }
  }

  bool StartObject() {
    switch (where_) {
      case Where::kStart:
        where_ = Where::kRoot;
        return true;
      case Where::kRoot:
        if (field_ == Field::kContact) {
          where_ = Where::kContact;
          return true;
        }
        if (field_ == Field::kPrevious) {
          where_ = Where::kPrevious;
          return true;
        }
        return false;
      case Where::kContact:
        if (field_ != Field::kProperties) return false;
        where_ = Where::kProperties;
        return true;
      case Where::kSkip:
        return ++skip_depth_ < kMaxNesting;
      default:
        return false;
    }
  }

  bool EndObject(rapidjson::SizeType) {
    switch (where_) {
      case Where::kRoot:
        where_ = Where::kDone;
        return true;
      case Where::kContact:
      case Where::kPrevious:
        where_ = Where::kRoot;
        return true;
      case Where::kProperties:
        where_ = Where::kContact;
        return true;
      case Where::kSkip:
        return SkippedEnd();
      default:
        return false;
    }
  }

  bool StartArray() {
    switch (where_) {
      case Where::kRoot:
        if (field_ == Field::kChangedFields) {
          where_ = Where::kChangedFields;
          return true;
        }
        if (field_ == Field::kMergedIds) {
          where_ = Where::kMergedIds;
          return true;
        }
        return false;
      case Where::kSkip:
        return ++skip_depth_ < kMaxNesting;
      default:
        return false;
    }
  }

  bool EndArray(rapidjson::SizeType) {
    switch (where_) {
      case Where::kChangedFields:
      case Where::kMergedIds:
        where_ = Where::kRoot;
        return true;
      case Where::kSkip:
        return SkippedEnd();
      default:
        return false;
    }
  }

 private:
  enum class Where {
    kStart,
    kRoot,
    kContact,
    kProperties,
    kPrevious,
    kChangedFields,
    kMergedIds,
    kSkip,
    kDone
  };
  static Field RootField(std::string_view key) {
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

  static Field ContactField(std::string_view key) {
    if (key == "firstName") return Field::kFirstName;
    if (key == "lastName") return Field::kLastName;
    if (key == "email") return Field::kEmail;
    if (key == "phone") return Field::kPhone;
    if (key == "properties") return Field::kProperties;
    return Field::kUnknown;
  }

  // A field seen twice: the DOM path reads the first, the schema checks
  // both; not worth mirroring here.
  static bool Claim(uint32_t& seen, Field field) {
    if (seen & Bit(field)) return false;
    seen |= Bit(field);
    return true;
  }

  bool RootString(std::string_view value) {
    switch (field_) {
      case Field::kEventId:
        if (value.empty()) return false;
        event_.event_id.assign(value);
        return true;
      case Field::kOccurredAt:
        if (value.empty()) return false;
        event_.occurred_at.assign(value);
        return true;
      case Field::kExternalIdKey:
        if (value.empty()) return false;
        event_.external_id_key.assign(value);
        return true;
      case Field::kExternalIdValue:
        if (value.empty()) return false;
        event_.external_id_value.assign(value);
        return true;
      case Field::kKind:
        kind_.assign(value);
        return ParseEventKind(kind_).has_value();  // "enum"
      case Field::kStatus:
        event_.status.emplace(value);
        return true;
      case Field::kOrigin:
        event_.origin.emplace(value);
        return true;
      default:
        return false;  // contact, previous, changedFields, mergedIds: not strings
    }
  }

  bool ContactString(std::string_view value) {
    switch (field_) {
      case Field::kFirstName:
        event_.contact.first_name.emplace(value);
        return true;
      case Field::kLastName:
        event_.contact.last_name.emplace(value);
        return true;
      case Field::kEmail:
        event_.contact.email.emplace(value);
        return true;
      case Field::kPhone:
        event_.contact.phone.emplace(value);
        return true;
      default:
        return false;  // properties: an object
    }
  }

  // A scalar value: of a properties/previous entry (string, number,
  // boolean or null; a null entry is left out, as ScalarText does), or of a
  // skipped unknown field.
  bool Scalar(std::optional<std::string> text) {
    if (where_ == Where::kSkip) return SkippedScalar();
    if (where_ != Where::kProperties && where_ != Where::kPrevious) return false;
    auto& map = where_ == Where::kProperties ? event_.contact.properties : event_.previous;
    if (text) map.emplace(map_key_, std::move(*text));
    return true;
  }

  bool Number(const rapidjson::Value& number) {
    if (where_ == Where::kSkip) return SkippedScalar();
    return Scalar(NumberText(number));
  }

  bool SkippedScalar() {
    if (skip_depth_ == 0) where_ = Where::kRoot;
    return true;
  }

  bool SkippedEnd() {
    if (--skip_depth_ == 0) where_ = Where::kRoot;
    return true;
  }

  CrmEvent& event_;
  Where where_ = Where::kStart;
  Field field_ = Field::kUnknown;
  uint32_t seen_ = 0;
  uint32_t contact_seen_ = 0;
  int skip_depth_ = 0;
  std::string map_key_;
  std::string kind_;
};

}  // namespace

std::optional<CanonicalRead> ReadCanonicalFast(std::string_view payload, CrmEvent& event) {
  if (std::memchr(payload.data(), '\0', payload.size()) != nullptr) return std::nullopt;
  // Parsed in place in a copy that ends in a NUL (the in-situ stream's end),
  // padded so that RapidJSON's 16-byte SIMD scans stay inside the buffer.
  thread_local std::string buffer;
  buffer.assign(payload);
  buffer.append(16, '\0');
  rapidjson::InsituStringStream stream(buffer.data());
  CanonicalHandler handler(event);
  rapidjson::Reader reader;
  // Strings must be valid UTF-8 (see ParsePayload); an ASCII payload is.
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag;
  const bool parsed =
      IsAscii(payload)
          ? !reader.Parse<kFlags>(stream, handler).IsError()
          : !reader.Parse<kFlags | rapidjson::kParseValidateEncodingFlag>(stream, handler)
                 .IsError();
  if (!parsed || !handler.Complete()) return std::nullopt;
  return CanonicalRead{handler.Kind(), handler.HasChangedFields()};
}

}  // namespace crmsync::mapping::internal
