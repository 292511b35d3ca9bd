#include "mapping/decode.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace crmsync::mapping {
namespace {

namespace fs = std::filesystem;

const fs::path kGoldenDir = fs::path(CRMSYNC_SOURCE_DIR) / "tests/mapping/testdata/decode";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Pretty(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return buffer.GetString();
}

// The decoded event in the golden files' shape.
rapidjson::Document EventJson(const CrmEvent& event) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("eventId", rapidjson::Value(event.event_id, a), a);
  doc.AddMember("occurredAt", rapidjson::Value(event.occurred_at, a), a);
  doc.AddMember("occurredAtMs", rapidjson::Value(event.occurred_at_ms), a);
  doc.AddMember("externalIdKey", rapidjson::Value(event.external_id_key, a), a);
  doc.AddMember("externalIdValue", rapidjson::Value(event.external_id_value, a), a);
  doc.AddMember("kind", rapidjson::Value(std::string(EventKindName(event.kind)), a), a);
  if (event.status) doc.AddMember("status", rapidjson::Value(*event.status, a), a);
  rapidjson::Value contact(rapidjson::kObjectType);
  auto field = [&](const char* name, const std::optional<std::string>& value) {
    if (value) contact.AddMember(rapidjson::StringRef(name), rapidjson::Value(*value, a), a);
  };
  field("firstName", event.contact.first_name);
  field("lastName", event.contact.last_name);
  field("email", event.contact.email);
  field("phone", event.contact.phone);
  if (!event.contact.properties.empty()) {
    rapidjson::Value properties(rapidjson::kObjectType);
    for (const auto& [name, value] : event.contact.properties) {
      properties.AddMember(rapidjson::Value(name, a), rapidjson::Value(value, a), a);
    }
    contact.AddMember("properties", properties, a);
  }
  doc.AddMember("contact", contact, a);
  return doc;
}

// "key-mismatch" -> "KeyMismatch": gtest parameter names allow no '-'.
std::string CaseName(const std::string& stem) {
  std::string name;
  bool upper = true;
  for (char c : stem) {
    if (c == '-') {
      upper = true;
      continue;
    }
    name += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return name;
}

std::vector<std::string> GoldenCases() {
  std::vector<std::string> stems;
  for (const auto& entry : fs::directory_iterator(kGoldenDir)) {
    const std::string file = entry.path().filename().string();
    const std::string suffix = ".in.json";
    if (file.size() > suffix.size() && file.ends_with(suffix)) {
      stems.push_back(file.substr(0, file.size() - suffix.size()));
    }
  }
  std::sort(stems.begin(), stems.end());
  return stems;
}

class DecodeGoldenTest : public testing::TestWithParam<std::string> {};

// Each testdata/decode/<case>.in.json is a raw Kafka payload; <case>.out.json
// holds the Kafka key to decode it with (optional) and either the expected
// event or the expected error (reason substrings and JSON path).
TEST_P(DecodeGoldenTest, MatchesGoldenOutput) {
  const std::string payload = ReadFile(kGoldenDir / (GetParam() + ".in.json"));
  rapidjson::Document expected;
  expected.Parse(ReadFile(kGoldenDir / (GetParam() + ".out.json")));
  ASSERT_FALSE(expected.HasParseError()) << GetParam() << ".out.json is not JSON";
  const std::string key = expected.HasMember("key") ? expected["key"].GetString() : "";

  const DecodeResult result = DecodeCanonical(payload, key);

  if (expected.HasMember("event")) {
    const auto* error = std::get_if<DecodeError>(&result);
    ASSERT_EQ(error, nullptr) << error->ToString();
    const rapidjson::Document actual = EventJson(std::get<CrmEvent>(result));
    EXPECT_TRUE(actual == expected["event"]) << "decoded:\n"
                                             << Pretty(actual) << "\nexpected:\n"
                                             << Pretty(expected["event"]);
  } else {
    ASSERT_TRUE(expected.HasMember("error")) << GetParam() << ".out.json has no event or error";
    const auto* error = std::get_if<DecodeError>(&result);
    ASSERT_NE(error, nullptr) << "decoded an event where an error was expected";
    for (const auto& part : expected["error"]["reasonContains"].GetArray()) {
      EXPECT_NE(error->reason.find(part.GetString()), std::string::npos)
          << "reason: " << error->reason << "\nlacks: " << part.GetString();
    }
    EXPECT_EQ(error->json_path, expected["error"]["jsonPath"].GetString())
        << "reason: " << error->reason;
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, DecodeGoldenTest, testing::ValuesIn(GoldenCases()),
                         [](const testing::TestParamInfo<std::string>& param_info) {
                           return CaseName(param_info.param);
                         });

std::string Event(const std::string& occurred_at) {
  return R"({"eventId":"e","occurredAt":")" + occurred_at +
         R"(","externalIdKey":"hubspotId","externalIdValue":"1","kind":"contact.updated"})";
}

std::optional<int64_t> DecodedMillis(const std::string& occurred_at) {
  const DecodeResult result = DecodeCanonical(Event(occurred_at));
  if (const auto* event = std::get_if<CrmEvent>(&result)) return event->occurred_at_ms;
  return std::nullopt;
}

TEST(DecodeCanonicalTest, TimestampSpellingsOfOneInstantAgree) {
  const int64_t noon = 1795435200000;  // 2026-11-23T12:00:00Z
  EXPECT_EQ(DecodedMillis("2026-11-23T12:00:00Z"), noon);
  EXPECT_EQ(DecodedMillis("2026-11-23t12:00:00z"), noon);
  EXPECT_EQ(DecodedMillis("2026-11-23T12:00:00.000Z"), noon);
  EXPECT_EQ(DecodedMillis("2026-11-23T14:00:00+02:00"), noon);
  EXPECT_EQ(DecodedMillis("2026-11-23T07:30:00-04:30"), noon);
  EXPECT_EQ(DecodedMillis("2026-11-24T00:00:00+12:00"), noon);
  EXPECT_EQ(DecodedMillis("2026-11-23T12:00:00.2509Z"), noon + 250);
  EXPECT_EQ(DecodedMillis("2026-11-23T12:00:00.5Z"), noon + 500);
  EXPECT_EQ(DecodedMillis("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(DecodedMillis("1969-12-31T23:59:59Z"), -1000);
  EXPECT_EQ(DecodedMillis("2028-02-29T00:00:00Z"), 1835395200000);
  EXPECT_EQ(DecodedMillis("2000-02-29T00:00:00Z"), 951782400000);
}

TEST(DecodeCanonicalTest, MalformedTimestampsAreRejectedAtOccurredAt) {
  for (const char* bad :
       {"", "2026-11-23", "2026-11-23T12:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
        "2026-11-31T00:00:00Z", "2100-02-29T00:00:00Z", "2026-11-23T24:00:00Z",
        "2026-11-23T12:60:00Z", "2026-11-23T12:00:61Z", "2026-11-23T12:00:00",
        "2026-11-23T12:00:00+0200", "2026-11-23T12:00:00+24:00", "2026-11-23T12:00:00.Z",
        " 2026-11-23T12:00:00Z", "2026-11-23T12:00:00Z ", "2026-11-23 12:00:00Z",
        "+2026-11-23T12:00:00Z", "2026-11-23T12:00:00ZZ"}) {
    const DecodeResult result = DecodeCanonical(Event(bad));
    const auto* error = std::get_if<DecodeError>(&result);
    ASSERT_NE(error, nullptr) << "accepted '" << bad << "'";
    EXPECT_EQ(error->json_path, "/occurredAt") << bad << ": " << error->reason;
  }
}

TEST(DecodeCanonicalTest, ErrorToStringNamesReasonAndPath) {
  EXPECT_EQ((DecodeError{"schema violation: x", "/kind", ""}).ToString(),
            "schema violation: x at /kind");
  EXPECT_EQ((DecodeError{"invalid JSON: y at offset 3", "", ""}).ToString(),
            "invalid JSON: y at offset 3");
  EXPECT_EQ((DecodeError{"bad op", "/payload/op", "debezium"}).ToString(),
            "debezium: bad op at /payload/op");
}

// A stand-in for the fuzzer until one is wired up: every prefix and a set of
// single-byte corruptions of a valid payload must decode to a value, never a
// crash; prefixes are never valid events.
TEST(DecodeCanonicalTest, SurvivesEveryPrefixAndByteCorruption) {
  const std::string valid =
      ReadFile(kGoldenDir / "created-full-contact.in.json") + std::string(" \t\n");
  ASSERT_TRUE(std::holds_alternative<CrmEvent>(DecodeCanonical(valid)));
  const size_t end_of_object = valid.rfind('}');
  for (size_t n = 0; n <= end_of_object; ++n) {
    const DecodeResult result = DecodeCanonical(std::string_view(valid).substr(0, n));
    EXPECT_TRUE(std::holds_alternative<DecodeError>(result)) << "prefix of " << n << " bytes";
  }
  size_t errors = 0;
  for (size_t i = 0; i < valid.size(); ++i) {
    for (char c : {'\0', '"', '\\', '{', '[', ':', ',', '\xff', '\x80', '0', 'a'}) {
      std::string corrupted = valid;
      corrupted[i] = c;
      const DecodeResult result = DecodeCanonical(corrupted);
      errors += std::holds_alternative<DecodeError>(result) ? 1 : 0;
    }
  }
  EXPECT_GT(errors, valid.size());
}

TEST(DecodeCanonicalTest, LargePayloadsDecode) {
  std::string properties;
  for (int i = 0; i < 20000; ++i) {
    if (i > 0) properties += ',';
    properties += "\"p" + std::to_string(i) + "\":\"" + std::string(20, 'v') + "\"";
  }
  const std::string payload =
      R"({"eventId":"e","occurredAt":"2026-11-23T12:00:00Z","externalIdKey":"k",)"
      R"("externalIdValue":"1","kind":"contact.created","contact":{"properties":{)" +
      properties + "}}}";
  const DecodeResult result = DecodeCanonical(payload, "k:1");
  ASSERT_TRUE(std::holds_alternative<CrmEvent>(result));
  EXPECT_EQ(std::get<CrmEvent>(result).contact.properties.size(), 20000u);
}

TEST(DecodeCanonicalTest, ConcurrentDecodesShareTheSchemaSafely) {
  const std::string valid = ReadFile(kGoldenDir / "created-full-contact.in.json");
  const std::string invalid = ReadFile(kGoldenDir / "bad-kind.in.json");
  const CrmEvent reference = std::get<CrmEvent>(DecodeCanonical(valid));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const DecodeResult good = DecodeCanonical(valid, "hubspotId:1234");
        const DecodeResult bad = DecodeCanonical(invalid);
        const auto* event = std::get_if<CrmEvent>(&good);
        const auto* error = std::get_if<DecodeError>(&bad);
        if (event == nullptr || !(*event == reference) || error == nullptr ||
            error->json_path != "/kind") {
          ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace crmsync::mapping

namespace crmsync::mapping {
namespace {

const DecodedMessage& Decoded(const DecodeMessageResult& result) {
  static const DecodedMessage kNone;
  if (const auto* error = std::get_if<DecodeError>(&result)) {
    ADD_FAILURE() << error->ToString();
    return kNone;
  }
  return std::get<DecodedMessage>(result);
}

TEST(DecodePartialEventsTest, GenericHubSpotWebhooksOfContactsOnly) {
  const auto contact = DecodeMessage(
      R"([{"subscriptionType":"object.propertyChange","objectTypeId":"0-1","objectId":7,)"
      R"("occurredAt":1764676800000,"propertyName":"email","propertyValue":"a@example.com"},)"
      R"({"subscriptionType":"object.creation","objectTypeId":"0-3","objectId":8,)"
      R"("occurredAt":1764676800000}])",
      false, "", InputFormat::kHubSpot);
  const DecodedMessage& out = Decoded(contact);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].ContactKey(), "hubspotId:7");
  EXPECT_EQ(out.events[0].contact.email, "a@example.com");
  ASSERT_EQ(out.ignored.size(), 1u);
  EXPECT_NE(out.ignored[0].find("0-3"), std::string::npos) << out.ignored[0];
}

TEST(DecodePartialEventsTest, PrivacyDeletionAsksToForget) {
  const auto result = DecodeMessage(
      R"([{"subscriptionType":"contact.privacyDeletion","objectId":7,"occurredAt":1764676800000}])",
      false, "", InputFormat::kHubSpot);
  const DecodedMessage& out = Decoded(result);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, EventKind::kDeleted);
  EXPECT_TRUE(out.events[0].forget);
}

TEST(DecodePartialEventsTest, SalesforceOverflowNamesNoRecord) {
  const auto result = DecodeMessage(
      R"({"ChangeEventHeader":{"entityName":"Lead","recordIds":[],"changeType":"GAP_OVERFLOW",)"
      R"("commitTimestamp":1764676800000}})",
      false, "", InputFormat::kSalesforce);
  const DecodedMessage& out = Decoded(result);
  EXPECT_TRUE(out.events.empty());
  ASSERT_EQ(out.ignored.size(), 1u);
  EXPECT_NE(out.ignored[0].find("GAP_OVERFLOW for Lead"), std::string::npos) << out.ignored[0];
}

TEST(DecodePartialEventsTest, DebeziumBarePayloadEnvelopeAndKeyOnlyDelete) {
  const auto wrapped = DecodeMessage(
      R"({"payload":{"before":null,"after":{"id":5,"email":"b@example.com"},"op":"c","ts_ms":1}})",
      false, R"({"id":5})", InputFormat::kAuto);
  const DecodedMessage& created = Decoded(wrapped);
  EXPECT_EQ(created.format, InputFormat::kDebezium);
  ASSERT_EQ(created.events.size(), 1u);
  EXPECT_EQ(created.events[0].contact.email, "b@example.com");

  const auto deleted = DecodeMessage(R"({"before":{"id":5},"after":null,"op":"d","ts_ms":2})",
                                     false, R"({"id":5})", InputFormat::kDebezium);
  const DecodedMessage& out = Decoded(deleted);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, EventKind::kDeleted);
  EXPECT_EQ(out.events[0].ContactKey(), "dbId:5");
  EXPECT_FALSE(out.events[0].contact.email);

  EXPECT_EQ(DebeziumTombstoneContactKey(R"({"id":5})"), "dbId:5");
  EXPECT_EQ(DebeziumTombstoneContactKey(R"({"schema":{},"payload":{"id":"x9"}})"), "dbId:x9");
  EXPECT_EQ(DebeziumTombstoneContactKey("dbId:5"), "dbId:5");
  EXPECT_FALSE(DebeziumTombstoneContactKey("hubspotId:5"));
}

TEST(DecodeAutoFormatTest, ACanonicalPropertyNamedLikeAnotherFormatsProbeStaysCanonical) {
  const std::string canonical =
      R"({"eventId":"e","occurredAt":"2026-11-23T12:00:00Z","externalIdKey":"hubspotId",)"
      R"("externalIdValue":"1","kind":"contact.updated",)"
      R"("contact":{"properties":{"ChangeEventHeader":"x","op":"c","after":"y"}}})";
  const DecodedMessage& out = Decoded(DecodeMessage(canonical, false, "", InputFormat::kAuto));
  EXPECT_EQ(out.format, InputFormat::kCanonical);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].contact.properties.at("ChangeEventHeader"), "x");

  const auto salesforce = DecodeMessage(
      R"({"ChangeEventHeader":{"entityName":"Lead","recordIds":["00Q1"],"changeType":"UPDATE",)"
      R"("changedFields":["Email"],"commitTimestamp":1764676800000},"Email":"a@example.com"})",
      false, "", InputFormat::kAuto);
  EXPECT_EQ(Decoded(salesforce).format, InputFormat::kSalesforce);
}

TEST(DecodeCanonicalTest, TheKafkaKeyMustBeExactlyTheEventsIdentity) {
  const std::string event = Event("2026-11-23T12:00:00Z");  // hubspotId:1
  for (const char* key : {"", "hubspotId:1"}) {
    EXPECT_TRUE(std::holds_alternative<DecodedMessage>(
        DecodeMessage(event, false, key, InputFormat::kCanonical)))
        << key;
  }
  for (const char* key : {"hubspotId:12", "hubspotId:", "hubspotId1", "hubspotId;1", "hubspotIdx1",
                          "xhubspotId:1", "ubspotId:1", "hubspotId:1 "}) {
    const auto result = DecodeMessage(event, false, key, InputFormat::kCanonical);
    const auto* error = std::get_if<DecodeError>(&result);
    ASSERT_NE(error, nullptr) << key;
    EXPECT_NE(error->reason.find("does not match event identity 'hubspotId:1'"), std::string::npos)
        << error->reason;
  }
}

}  // namespace
}  // namespace crmsync::mapping

namespace crmsync::mapping {
namespace {

std::vector<std::string> Fields(const FieldSet& set) {
  return std::vector<std::string>(set.begin(), set.end());
}

TEST(FieldSetTest, KeepsFieldsSortedAndUniqueWhateverTheOrderOfInsertion) {
  FieldSet set;
  EXPECT_TRUE(set.insert("status"));
  EXPECT_TRUE(set.insert("properties.tier"));
  EXPECT_TRUE(set.insert("contact.email"));
  EXPECT_TRUE(set.insert("contact.e"));  // a proper prefix of another field
  EXPECT_TRUE(set.insert("properties.tierName"));
  EXPECT_FALSE(set.insert("properties.tier"));
  EXPECT_FALSE(set.insert("contact.email"));
  EXPECT_EQ(Fields(set), (std::vector<std::string>{"contact.e", "contact.email", "properties.tier",
                                                   "properties.tierName", "status"}));
  EXPECT_EQ(set.size(), 5u);
  EXPECT_TRUE(set.contains("contact.e"));
  EXPECT_TRUE(set.contains("properties.tierName"));
  EXPECT_FALSE(set.contains("contact."));
  EXPECT_FALSE(set.contains("properties.tie"));
  EXPECT_FALSE(set.contains("statuses"));
  EXPECT_EQ(set, (FieldSet{"status", "properties.tierName", "contact.email", "contact.e",
                           "properties.tier", "status"}));
  EXPECT_NE(set, (FieldSet{"contact.e", "contact.email", "properties.tier", "status"}));
}

TEST(FieldSetTest, FieldsBuiltInOrderEqualTheSameFieldsInserted) {
  FieldSet in_order;
  in_order.reserve(3);
  in_order.push_back("contact.email");
  in_order.push_back("properties.lifecycleStage");
  in_order.push_back("status");
  EXPECT_EQ(in_order, (FieldSet{"status", "properties.lifecycleStage", "contact.email"}));
  const FieldSet empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.begin(), empty.end());
}

constexpr const char* kUpdate =
    R"({"eventId":"e-1","occurredAt":"2026-11-23T12:00:00Z","externalIdKey":"hubspotId",)"
    R"("externalIdValue":"42","kind":"contact.updated","origin":"crm")";

TEST(DecodeChangesTest, AnEventThatDoesNotSayWhatChangedChangedWhatItCarries) {
  const DecodeResult result = DecodeCanonical(
      std::string(kUpdate) + R"(,"status":"completed","contact":{"email":"a@example.com",)" +
          R"("lastName":"Lovelace","properties":{"tier":"pro","lifecycleStage":"customer"}}})",
      "hubspotId:42");
  ASSERT_TRUE(std::holds_alternative<CrmEvent>(result));
  const CrmEvent& event = std::get<CrmEvent>(result);
  EXPECT_TRUE(event.changes_implied);
  EXPECT_TRUE(event.changed_fields.empty());
  EXPECT_EQ(Fields(event.ChangedFields()),
            (std::vector<std::string>{"contact.email", "contact.lastName",
                                      "properties.lifecycleStage", "properties.tier", "status"}));
  for (const char* field : {"contact.email", "contact.lastName", "properties.tier", "status"}) {
    EXPECT_TRUE(event.Changed(field)) << field;
  }
  for (const char* field : {"contact.phone", "contact.firstName", "properties.region", "origin",
                            "eventId", "kind", "properties."}) {
    EXPECT_FALSE(event.Changed(field)) << field;
  }
}

TEST(DecodeChangesTest, AnEventThatListsItsChangesChangedThoseOnly) {
  const DecodeResult listed = DecodeCanonical(
      std::string(kUpdate) +
          R"(,"changedFields":["contact.phone"],"contact":{"email":"a@example.com"}})",
      "");
  ASSERT_TRUE(std::holds_alternative<CrmEvent>(listed));
  const CrmEvent& event = std::get<CrmEvent>(listed);
  EXPECT_FALSE(event.changes_implied);
  EXPECT_TRUE(event.Changed("contact.phone"));
  EXPECT_FALSE(event.Changed("contact.email")) << "carried, not listed";
  EXPECT_EQ(Fields(event.ChangedFields()), (std::vector<std::string>{"contact.phone"}));

  const DecodeResult none = DecodeCanonical(
      std::string(kUpdate) + R"(,"changedFields":[],"contact":{"email":"a@example.com"}})", "");
  ASSERT_TRUE(std::holds_alternative<CrmEvent>(none));
  EXPECT_FALSE(std::get<CrmEvent>(none).Changed("contact.email"));
  EXPECT_TRUE(std::get<CrmEvent>(none).ChangedFields().empty());
}

TEST(DecodeChangesTest, AnImpliedChangeOfAPropertyWithoutANameIsRefused) {
  const DecodeResult result =
      DecodeCanonical(std::string(kUpdate) + R"(,"contact":{"properties":{"":"x"}}})", "");
  ASSERT_TRUE(std::holds_alternative<DecodeError>(result));
  const DecodeError& error = std::get<DecodeError>(result);
  EXPECT_NE(error.reason.find("'properties.' is not a field reference"), std::string::npos)
      << error.reason;
  EXPECT_EQ(error.json_path, "/changedFields");
}

}  // namespace
}  // namespace crmsync::mapping
