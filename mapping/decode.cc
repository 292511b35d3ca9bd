#include "mapping/decode.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cctype>
#include <cstdio>
#include <cstring>

#include "crmsync_schemas.h"
#include "mapping/decode_internal.h"
#include "mapping/json_schema.h"

namespace crmsync::mapping {
namespace {

// RapidJSON's parser and validator recurse once per nesting level, so a
// hostile payload of a million '[' would overflow the stack. A canonical event
// is three levels deep; unknown root fields get generous room beyond that.
constexpr int kMaxNesting = 64;
constexpr size_t kMaxEcho = 128;
// Most events fit in this much DOM memory, so parsing them does not touch the
// heap for the document itself.
constexpr size_t kInlineDomBytes = 8192;

const JsonSchema& EventSchema() {
  static const JsonSchema schema(schemas::EmbeddedFile("event.schema.json"));
  return schema;
}

// The checks RapidJSON cannot make safely: no NUL byte (its length-bounded
// parse treats one as the end of input and would accept trailing garbage) and
// bounded nesting (see kMaxNesting).
std::optional<DecodeError> CheckBytes(std::string_view payload) {
  if (const void* nul = std::memchr(payload.data(), '\0', payload.size())) {
    const size_t offset = static_cast<const char*>(nul) - payload.data();
    return DecodeError{"invalid JSON: NUL byte at offset " + std::to_string(offset), "", ""};
  }
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < payload.size(); ++i) {
    const char c = payload[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        if (++depth > kMaxNesting) {
          return DecodeError{"payload nests deeper than " + std::to_string(kMaxNesting) +
                                 " levels at offset " + std::to_string(i),
                             "", ""};
        }
        break;
      case '}':
      case ']':
        --depth;
        break;
      default:
        break;
    }
  }
  return std::nullopt;
}

std::string WithoutFinalPeriod(std::string text) {
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

// Inlined: ParseRfc3339 reads every event's timestamp through them.
[[gnu::always_inline]] inline bool ReadDigits(std::string_view text, size_t& pos, size_t count,
                                              int& out) {
  if (pos + count > text.size()) return false;
  out = 0;
  for (size_t i = 0; i < count; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += count;
  return true;
}

[[gnu::always_inline]] inline bool Expect(std::string_view text, size_t& pos, char a,
                                          char b = '\0') {
  if (pos >= text.size() || (text[pos] != a && (b == '\0' || text[pos] != b))) return false;
  ++pos;
  return true;
}

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil), exact for every year RFC 3339 can spell.
int64_t DaysFromCivil(int year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

}  // namespace

// RFC 3339 section 5.6 date-time -> milliseconds since the epoch. Fractions
// beyond milliseconds are truncated; a leap second (:60) counts as the first
// second of the next minute.
std::optional<int64_t> ParseRfc3339(std::string_view text) {
  size_t pos = 0;
  int year, month, day, hour, minute, second;
  if (!ReadDigits(text, pos, 4, year) || !Expect(text, pos, '-') ||
      !ReadDigits(text, pos, 2, month) || !Expect(text, pos, '-') ||
      !ReadDigits(text, pos, 2, day) || !Expect(text, pos, 'T', 't') ||
      !ReadDigits(text, pos, 2, hour) || !Expect(text, pos, ':') ||
      !ReadDigits(text, pos, 2, minute) || !Expect(text, pos, ':') ||
      !ReadDigits(text, pos, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  int64_t millis = 0;
  if (Expect(text, pos, '.')) {
    const size_t start = pos;
    int scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset_seconds = 0;
  if (!Expect(text, pos, 'Z', 'z')) {
    if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) return std::nullopt;
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int offset_hour, offset_minute;
    if (!ReadDigits(text, pos, 2, offset_hour) || !Expect(text, pos, ':') ||
        !ReadDigits(text, pos, 2, offset_minute) || offset_hour > 23 || offset_minute > 59) {
      return std::nullopt;
    }
    offset_seconds = sign * (offset_hour * 3600 + offset_minute * 60);
  }
  if (pos != text.size()) return std::nullopt;
  const int64_t seconds =
      DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  return seconds * 1000 + millis;
}

namespace {

using internal::Echo;
using internal::Find;
using internal::ScalarText;
using internal::StringOf;

std::optional<std::string> OptionalString(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = Find(object, name);
  if (value == nullptr || !value->IsString()) return std::nullopt;
  return std::string(StringOf(*value));
}

// Fills `event` from a schema-valid document: the schema has already checked
// every type this relies on, the IsX() tests only keep a schema edit from
// turning into undefined behaviour.
void Fill(const rapidjson::Value& doc, CrmEvent& event) {
  event.event_id = OptionalString(doc, "eventId").value_or("");
  event.occurred_at = OptionalString(doc, "occurredAt").value_or("");
  event.external_id_key = OptionalString(doc, "externalIdKey").value_or("");
  event.external_id_value = OptionalString(doc, "externalIdValue").value_or("");
  event.status = OptionalString(doc, "status");
  event.origin = OptionalString(doc, "origin");
  if (const rapidjson::Value* contact = Find(doc, "contact"); contact != nullptr) {
    event.contact.first_name = OptionalString(*contact, "firstName");
    event.contact.last_name = OptionalString(*contact, "lastName");
    event.contact.email = OptionalString(*contact, "email");
    event.contact.phone = OptionalString(*contact, "phone");
    if (const rapidjson::Value* properties = Find(*contact, "properties");
        properties != nullptr && properties->IsObject()) {
      for (const auto& property : properties->GetObject()) {
        if (std::optional<std::string> text = ScalarText(property.value)) {
          event.contact.properties.emplace(StringOf(property.name), std::move(*text));
        }
      }
    }
  }
  if (const rapidjson::Value* previous = Find(doc, "previous");
      previous != nullptr && previous->IsObject()) {
    for (const auto& field : previous->GetObject()) {
      if (std::optional<std::string> text = ScalarText(field.value)) {
        event.previous.emplace(StringOf(field.name), std::move(*text));
      }
    }
  }
  const rapidjson::Value* changed = Find(doc, "changedFields");
  if (changed != nullptr && changed->IsArray()) {
    for (const rapidjson::Value& field : changed->GetArray()) {
      if (field.IsString()) event.changed_fields.emplace(StringOf(field));
    }
  }
  if (const rapidjson::Value* merged = Find(doc, "mergedIds");
      merged != nullptr && merged->IsArray()) {
    for (const rapidjson::Value& id : merged->GetArray()) {
      if (id.IsString()) event.merged_ids.emplace_back(StringOf(id));
    }
  }
}

// What the schema cannot say, on a schema-valid event (either path).
// Completes and checks an event both canonical paths filled; the error, if any.
std::optional<DecodeError> CheckCanonical(CrmEvent& event, std::optional<EventKind> kind,
                                          bool has_changed_fields, std::string_view key) {
  event.source_format = InputFormat::kCanonical;
  if (!kind) return DecodeError{"schema violation: unknown kind (enum)", "/kind", ""};
  event.kind = *kind;
  event.changes_implied = !has_changed_fields;

  const std::optional<int64_t> occurred_at_ms = ParseRfc3339(event.occurred_at);
  if (!occurred_at_ms) {
    return DecodeError{"occurredAt '" + Echo(event.occurred_at) +
                           "' is not an RFC 3339 date-time (e.g. 2026-11-23T12:00:00Z)",
                       "/occurredAt", ""};
  }
  event.occurred_at_ms = *occurred_at_ms;

  if (event.external_id_key.find(':') != std::string::npos) {
    return DecodeError{"externalIdKey '" + Echo(event.external_id_key) +
                           "' must not contain ':' (it separates key and value in the Kafka key)",
                       "/externalIdKey", ""};
  }
  // Fields the event carries are references by construction, but for a
  // property without a name.
  auto not_a_reference = [](const std::string& field) {
    return DecodeError{"changedFields item '" + Echo(field) +
                           "' is not a field reference (e.g. properties.tier, contact.email)",
                       "/changedFields", ""};
  };
  if (event.changes_implied && event.contact.properties.contains("")) {
    return not_a_reference("properties.");
  }
  for (const std::string& field : event.changed_fields) {
    if (!IsFieldReference(field)) return not_a_reference(field);
  }
  return internal::CheckKey(key, event, "");
}

// The DOM and schema path into a default-constructed `event`.
std::optional<DecodeError> DecodeCanonicalDocument(const rapidjson::Value& doc,
                                                   std::string_view key, CrmEvent& event) {
  if (auto violation = EventSchema().FirstViolation(doc)) {
    return DecodeError{"schema violation: " + violation->message, violation->path, ""};
  }
  Fill(doc, event);
  const rapidjson::Value* changed = Find(doc, "changedFields");
  return CheckCanonical(event, ParseEventKind(OptionalString(doc, "kind").value_or("")),
                        changed != nullptr && changed->IsArray(), key);
}

std::optional<DecodeError> DecodeCanonicalDom(std::string_view payload, std::string_view key,
                                              CrmEvent& event) {
  char inline_dom[kInlineDomBytes];
  rapidjson::MemoryPoolAllocator<> allocator(inline_dom, sizeof(inline_dom));
  rapidjson::Document doc(&allocator);
  if (auto error = internal::ParsePayload(payload, doc, "")) return error;
  return DecodeCanonicalDocument(doc, key, event);
}

// The fast path when it can decide, else the DOM and the schema; fills
// `event` in place (the event is not moved from one step to the next).
std::optional<DecodeError> DecodeCanonicalPayload(std::string_view payload, std::string_view key,
                                                  CrmEvent& event) {
  if (std::optional<internal::CanonicalRead> fast = internal::ReadCanonicalFast(payload, event)) {
    return CheckCanonical(event, fast->kind, fast->has_changed_fields, key);
  }
  event = CrmEvent{};
  return DecodeCanonicalDom(payload, key, event);
}

}  // namespace

std::string FormatRfc3339(int64_t epoch_ms) {
  // H. Hinnant's civil_from_days, the inverse of DaysFromCivil.
  int64_t days = epoch_ms / 86400000;
  int64_t ms_of_day = epoch_ms % 86400000;
  if (ms_of_day < 0) {
    ms_of_day += 86400000;
    --days;
  }
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t mp = (5 * day_of_year + 2) / 153;
  const int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  char text[96];
  std::snprintf(
      text, sizeof(text), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ",
      static_cast<long long>(year), static_cast<long long>(month), static_cast<long long>(day),
      static_cast<long long>(ms_of_day / 3600000), static_cast<long long>(ms_of_day / 60000 % 60),
      static_cast<long long>(ms_of_day / 1000 % 60), static_cast<long long>(ms_of_day % 1000));
  return text;
}

namespace internal {

std::string Echo(std::string_view text) {
  if (text.size() <= kMaxEcho) return std::string(text);
  return std::string(text.substr(0, kMaxEcho)) + "...";
}

std::string_view StringOf(const rapidjson::Value& value) {
  return {value.GetString(), value.GetStringLength()};
}

const rapidjson::Value* Find(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string> ScalarText(const rapidjson::Value& value) {
  if (value.IsString()) return std::string(StringOf(value));
  if (value.IsBool()) return value.GetBool() ? "true" : "false";
  if (value.IsNumber()) return NumberText(value);
  return std::nullopt;
}

std::optional<DecodeError> ParsePayload(std::string_view payload, rapidjson::Document& doc,
                                        std::string_view format) {
  if (auto error = CheckBytes(payload)) {
    error->format = std::string(format);
    return error;
  }
  // Strings must be valid UTF-8: they are copied into provider requests, and
  // one bad byte would make a provider reject a whole batch of contacts.
  doc.Parse<rapidjson::kParseDefaultFlags | rapidjson::kParseValidateEncodingFlag>(payload.data(),
                                                                                   payload.size());
  if (doc.HasParseError()) {
    return DecodeError{
        "invalid JSON: " + WithoutFinalPeriod(rapidjson::GetParseError_En(doc.GetParseError())) +
            " at offset " + std::to_string(doc.GetErrorOffset()),
        "", std::string(format)};
  }
  return std::nullopt;
}

std::optional<DecodeError> CheckKey(std::string_view key, const CrmEvent& event,
                                    std::string_view format) {
  // key == event.ContactKey(), without building the contact key.
  const std::string_view id_key = event.external_id_key, id_value = event.external_id_value;
  if (key.empty() ||
      (key.size() == id_key.size() + 1 + id_value.size() && key.starts_with(id_key) &&
       key[id_key.size()] == ':' && key.ends_with(id_value))) {
    return std::nullopt;
  }
  return DecodeError{"Kafka key '" + Echo(key) + "' does not match event identity '" +
                         Echo(event.ContactKey()) + "'",
                     "", std::string(format)};
}

}  // namespace internal

std::string DecodeError::ToString() const {
  std::string text = format.empty() ? reason : format + ": " + reason;
  // A document-level problem already says where it is ("at offset N").
  if (!json_path.empty()) text += " at " + json_path;
  return text;
}

DecodeResult DecodeCanonical(std::string_view payload, std::string_view key) {
  CrmEvent event;
  if (auto error = DecodeCanonicalPayload(payload, key, event)) return *std::move(error);
  return event;
}

namespace internal {

DecodeResult DecodeCanonicalWithSchema(std::string_view payload, std::string_view key) {
  CrmEvent event;
  if (auto error = DecodeCanonicalDom(payload, key, event)) return *std::move(error);
  return event;
}

}  // namespace internal

std::optional<std::string> DebeziumTombstoneContactKey(std::string_view key,
                                                       const DecodeOptions& options) {
  return internal::DebeziumTombstoneKey(key, options.debezium);
}

namespace {

// Whether `text` holds `needle`, a quoted JSON name: found by what follows
// its opening quote (std::string_view::find, which jumps with memchr to each
// occurrence of the needle's first letter, rare in JSON text where the quote
// is the commonest character), then the quote is checked.
bool Contains(std::string_view text, std::string_view needle) {
  const std::string_view tail = needle.substr(1);
  for (size_t at = text.find(tail, 1); at != std::string_view::npos; at = text.find(tail, at + 1)) {
    if (text[at - 1] == needle[0]) return true;
  }
  return false;
}

}  // namespace

InputFormat DetectFormat(std::string_view payload) {
  size_t i = 0;
  while (i < payload.size() && std::isspace(static_cast<unsigned char>(payload[i]))) ++i;
  if (i < payload.size() && payload[i] == '[') return InputFormat::kHubSpot;
  // Cheap textual probes; the decoders check the structure
  // properly. A canonical event names externalIdKey near its start, which
  // rules out the other probes at once (and the scan of the whole payload
  // they need). No Salesforce field has that name: custom fields end in
  // "__c".
  if (Contains(payload, "\"externalIdKey\"")) return InputFormat::kCanonical;
  if (Contains(payload, "\"ChangeEventHeader\"")) return InputFormat::kSalesforce;
  if (Contains(payload, "\"subscriptionType\"")) return InputFormat::kHubSpot;
  if (Contains(payload, "\"op\"") &&
      (Contains(payload, "\"after\"") || Contains(payload, "\"before\""))) {
    return InputFormat::kDebezium;
  }
  return InputFormat::kCanonical;
}

DecodeMessageResult DecodeMessage(std::string_view payload, bool null_value, std::string_view key,
                                  InputFormat format, const DecodeOptions& options) {
  DecodedMessage out;
  if (null_value) {
    // Debezium writes a tombstone after each delete so that log compaction
    // can drop the key; the delete event before it did the work.
    if (format == InputFormat::kAuto || format == InputFormat::kDebezium) {
      out.format = InputFormat::kDebezium;
      out.ignored.push_back("tombstone (null value) carries no data");
      return out;
    }
    return DecodeError{"message has no value (tombstone)", "",
                       std::string(InputFormatName(format))};
  }
  out.format = format == InputFormat::kAuto ? DetectFormat(payload) : format;
  const std::string name(InputFormatName(out.format));
  if (out.format == InputFormat::kCanonical) {
    if (auto bad = DecodeCanonicalPayload(payload, key, out.events.emplace_back())) {
      bad->format = name;
      return *std::move(bad);
    }
    return out;
  }

  char inline_dom[kInlineDomBytes];
  rapidjson::MemoryPoolAllocator<> allocator(inline_dom, sizeof(inline_dom));
  rapidjson::Document doc(&allocator);
  if (auto error = internal::ParsePayload(payload, doc, name)) return *std::move(error);

  std::optional<DecodeError> error;
  switch (out.format) {
    case InputFormat::kAuto:
    case InputFormat::kCanonical:
      break;  // decoded above, without a DOM
    case InputFormat::kHubSpot:
      error = internal::DecodeHubSpot(doc, options.hubspot, out);
      break;
    case InputFormat::kSalesforce:
      error = internal::DecodeSalesforce(doc, options.salesforce, out);
      break;
    case InputFormat::kDebezium:
      error = internal::DecodeDebezium(doc, key, options.debezium, out);
      // Debezium's own key form was checked by the decoder.
      if (!error) return out;
      break;
  }
  if (error) {
    error->format = name;
    return *std::move(error);
  }
  for (const CrmEvent& event : out.events) {
    if (auto mismatch = internal::CheckKey(key, event, name)) return *std::move(mismatch);
  }
  return out;
}

}  // namespace crmsync::mapping
