// The canonical event's fast path (one SAX pass) against the DOM path with
// the JSON Schema: for every payload, the same event or the same error.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <variant>
#include <vector>

#include "mapping/decode.h"
#include "mapping/decode_internal.h"
#include "worker/sample_events.h"

namespace crmsync::mapping {
namespace {

std::string Describe(const DecodeResult& result) {
  if (const auto* error = std::get_if<DecodeError>(&result)) return "error: " + error->ToString();
  const CrmEvent& event = std::get<CrmEvent>(result);
  return "event " + event.event_id + " of " + event.ContactKey();
}

// Both paths agree on `payload`; returns whether the fast path decided.
bool ExpectSamePaths(const std::string& payload, const std::string& key = "") {
  const DecodeResult fast_first = DecodeCanonical(payload, key);
  const DecodeResult schema_only = internal::DecodeCanonicalWithSchema(payload, key);
  EXPECT_EQ(fast_first.index(), schema_only.index())
      << payload << "\n fast: " << Describe(fast_first) << "\n schema: " << Describe(schema_only);
  if (fast_first.index() == schema_only.index()) {
    if (const auto* event = std::get_if<CrmEvent>(&fast_first)) {
      EXPECT_TRUE(*event == std::get<CrmEvent>(schema_only)) << payload;
    } else {
      const auto& a = std::get<DecodeError>(fast_first);
      const auto& b = std::get<DecodeError>(schema_only);
      EXPECT_EQ(a.reason, b.reason) << payload;
      EXPECT_EQ(a.json_path, b.json_path) << payload;
    }
  }
  CrmEvent read;
  return internal::ReadCanonicalFast(payload, read).has_value();
}

constexpr const char* kBase =
    R"({"eventId":"e-1","occurredAt":"2026-11-23T12:00:00Z","externalIdKey":"hubspotId",)"
    R"("externalIdValue":"42","kind":"contact.updated")";

std::string Event(const std::string& more) { return std::string(kBase) + more + "}"; }

TEST(DecodeCanonicalFastTest, SampleEventsTakeTheFastPathAndMatchTheSchemaPath) {
  worker::SampleOptions options;
  options.events = 3000;
  options.contacts = 200;
  for (const auto& sample : worker::GenerateSampleEvents(options)) {
    EXPECT_TRUE(ExpectSamePaths(sample.payload, sample.key)) << sample.payload;
  }
}

TEST(DecodeCanonicalFastTest, ValidShapesTakeTheFastPath) {
  const std::vector<std::string> valid = {
      Event(""),
      Event(R"(,"status":"completed","origin":"crm")"),
      Event(R"(,"contact":{"email":"a@example.com","properties":{"i":-3,"b":true,)"
            R"("u":18446744073709551615,"m":-9223372036854775808,"z":null,"s":"x"}})"),
      Event(R"(,"contact":{"firstName":"J\u00e9r\u00f4me","lastName":"M\u00fcller"})"),
      Event(R"(,"contact":{"firstName":"Jérôme","lastName":"日本"})"),
      Event(R"(,"changedFields":["contact.email","status"])"),
      Event(R"(,"changedFields":[])"),
      Event(R"(,"previous":{"status":"active","properties.tier":3,"x":null})"),
      Event(R"(,"mergedIds":["1","2",""])"),
      Event(R"(,"unknown":"x","another":null,"third":true,"fourth":-1.5e3)"),
      Event(R"(,"contact":{"properties":{"dup":"first","dup":"second"}})"),
      Event(R"(,"previous":{"dup":"first","dup":"second"})"),
      "  \n" + Event(R"(,"contact":{"email":"a\"b\\c\/d\u0000e"})") + " \t\n",
  };
  for (const auto& payload : valid) {
    EXPECT_TRUE(ExpectSamePaths(payload)) << payload;
  }
}

// Valid, but rare enough that the fast path leaves them to the DOM: numbers
// that are not integers in properties and previous values (their text is
// RapidJSON's writer's), and unknown fields that are objects or arrays
// (whose nesting the DOM path bounds). They decode all the same.
TEST(DecodeCanonicalFastTest, RareValidShapesDecodeThroughTheSchemaPath) {
  const std::vector<std::string> rare = {
      Event(R"(,"contact":{"properties":{"n":1.5}})"),
      Event(R"(,"contact":{"properties":{"e":1e300}})"),
      Event(R"(,"contact":{"properties":{"big":18446744073709551616}})"),
      Event(R"(,"previous":{"score":0.25})"),
      Event(R"(,"unknown":{"deep":[1,[2,{"three":[null,true]}]]},"another":[],"third":"x")"),
  };
  for (const auto& payload : rare) {
    EXPECT_FALSE(ExpectSamePaths(payload)) << payload;
    EXPECT_TRUE(std::holds_alternative<CrmEvent>(DecodeCanonical(payload))) << payload;
  }
}

TEST(DecodeCanonicalFastTest, WhatTheSchemaRefusesIsLeftToTheSchemaPath) {
  const std::vector<std::string> refused = {
      R"({"eventId":"e-1"})",
      R"([])",
      R"("text")",
      Event(R"(,"status":5)"),
      Event(R"(,"status":null)"),
      Event(R"(,"origin":true)"),
      Event(R"(,"contact":{"email":7}})"),
      Event(R"(,"contact":{"nickname":"x"}})"),
      Event(R"(,"contact":"x")"),
      Event(R"(,"contact":{"properties":{"nested":{"a":1}}}})"),
      Event(R"(,"contact":{"properties":{"list":[1]}}})"),
      Event(R"(,"contact":{"properties":[]}})"),
      Event(R"(,"changedFields":[""])"),
      Event(R"(,"changedFields":[3])"),
      Event(R"(,"changedFields":"status")"),
      Event(R"(,"previous":{"a":{"b":1}})"),
      Event(R"(,"mergedIds":[1])"),
      Event(R"(,"kind":"contact.updated")"),  // a duplicate field
      R"({"eventId":"","occurredAt":"2026-11-23T12:00:00Z","externalIdKey":"k",)"
      R"("externalIdValue":"1","kind":"contact.created"})",
      R"({"eventId":"e","occurredAt":"2026-11-23T12:00:00Z","externalIdKey":"k",)"
      R"("externalIdValue":"1","kind":"contact.exploded"})",
      Event(R"(,"x":)"),
      Event("") + "garbage",
      std::string(kBase) + R"(,"contact":{"email":")" + "\xff\xfe" + R"("}})",
      std::string(kBase) + R"(,"contact":{"email":"a)" + std::string(1, '\0') + R"("}})",
      Event(R"(,"unknown":)" + std::string(100, '[') + std::string(100, ']')),
  };
  for (const auto& payload : refused) {
    EXPECT_FALSE(ExpectSamePaths(payload)) << payload;
  }
}

TEST(DecodeCanonicalFastTest, ChecksBeyondTheSchemaAreTheSameOnBothPaths) {
  // Schema-valid, refused after it: both paths give the same error.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"eventId":"e","occurredAt":"yesterday","externalIdKey":"k","externalIdValue":"1",)"
       R"("kind":"contact.created"})",
       ""},
      {R"({"eventId":"e","occurredAt":"2026-11-23T12:00:00Z","externalIdKey":"a:b",)"
       R"("externalIdValue":"1","kind":"contact.created"})",
       ""},
      {Event(R"(,"changedFields":["not a field"])"), ""},
      {Event(R"(,"contact":{"properties":{"":"x"}})"), ""},  // changes implied
      {Event(""), "hubspotId:43"},
      {Event(""), "hubspotId:42"},
  };
  for (const auto& [payload, key] : cases) {
    EXPECT_TRUE(ExpectSamePaths(payload, key)) << payload;
  }
}

// Random edits of real-shaped events (bytes replaced, inserted, removed;
// fields' quotes and braces hit often): never a disagreement.
TEST(DecodeCanonicalFastTest, MutatedEventsDecodeTheSameOnBothPaths) {
  worker::SampleOptions options;
  options.events = 300;
  options.contacts = 50;
  const auto samples = worker::GenerateSampleEvents(options);
  std::mt19937_64 random(20261202);
  const std::string alphabet =
      "{}[]\":,0123456789.-+eEtrufalsn \\u00e9"
      "\x80\xc3\xa9"
      "abcxyz";
  size_t fast = 0, total = 0;
  for (int round = 0; round < 20; ++round) {
    for (const auto& sample : samples) {
      std::string payload = sample.payload;
      const int edits = 1 + static_cast<int>(random() % 3);
      for (int e = 0; e < edits && !payload.empty(); ++e) {
        const size_t at = random() % payload.size();
        const char c = alphabet[random() % alphabet.size()];
        switch (random() % 3) {
          case 0:
            payload[at] = c;
            break;
          case 1:
            payload.insert(payload.begin() + static_cast<ptrdiff_t>(at), c);
            break;
          default:
            payload.erase(at, 1);
            break;
        }
      }
      fast += ExpectSamePaths(payload, random() % 2 ? sample.key : "") ? 1 : 0;
      ++total;
      if (::testing::Test::HasFailure()) return;
    }
  }
  // Both kinds of outcome were exercised.
  EXPECT_GT(fast, total / 20);
  EXPECT_LT(fast, total);
}

}  // namespace
}  // namespace crmsync::mapping
