// Golden tests of decode + map for every input format and rule kind: each
// testdata/golden/<case>.in.json is a raw Kafka value, decoded and mapped with
// testdata/golden/config.json; <case>.out.json holds the Kafka key and topic
// to use (optional) and the expected result: the detected format, ignored
// records, matched rules, skipped actions and operations, or the error.
//
// CRMSYNC_UPDATE_GOLDEN=1 rewrites the .out.json files from the current
// output (review the diff before committing).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "mapping/decode.h"
#include "mapping/rules.h"
#include "providers/registry.h"

namespace crmsync::mapping {
namespace {

namespace fs = std::filesystem;

const fs::path kGoldenDir = fs::path(CRMSYNC_SOURCE_DIR) / "tests/mapping/testdata/golden";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Pretty(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  value.Accept(writer);
  return std::string(buffer.GetString()) + "\n";
}

std::optional<std::string> AnyKey(std::string_view) { return std::string("golden-key"); }

const Config& GoldenConfig() {
  static const Config config =
      LoadConfigFromFile(providers::Catalog(), (kGoldenDir / "config.json").string(), &AnyKey);
  return config;
}

rapidjson::Value Strings(const std::vector<std::string>& items,
                         rapidjson::Document::AllocatorType& a) {
  rapidjson::Value array(rapidjson::kArrayType);
  for (const std::string& item : items) array.PushBack(rapidjson::Value(item, a), a);
  return array;
}

// Decode + map, as the expected-output document.
rapidjson::Document DecodeAndMap(const std::string& payload, const std::string& key,
                                 const std::string& topic) {
  const Config& config = GoldenConfig();
  rapidjson::Document out(rapidjson::kObjectType);
  auto& a = out.GetAllocator();
  const DecodeMessageResult decoded = DecodeMessage(
      payload, false, key, config.rules.input.FormatOf(topic), config.rules.input.decode);
  if (const auto* error = std::get_if<DecodeError>(&decoded)) {
    out.AddMember("error", rapidjson::Value(error->ToString(), a), a);
    return out;
  }
  const DecodedMessage& message = std::get<DecodedMessage>(decoded);
  out.AddMember("format", rapidjson::Value(std::string(InputFormatName(message.format)), a), a);
  out.AddMember("ignored", Strings(message.ignored, a), a);
  std::vector<std::string> rules, skipped;
  rapidjson::Value operations(rapidjson::kArrayType);
  for (const CrmEvent& event : message.events) {
    const MapResult mapped = Map(event, config.rules);
    rules.push_back(event.ContactKey() + " " + std::string(EventKindName(event.kind)) + " -> " +
                    (mapped.rule.empty() ? "(no rule)" : mapped.rule));
    skipped.insert(skipped.end(), mapped.skipped.begin(), mapped.skipped.end());
    for (const Operation& op : mapped.operations) {
      rapidjson::Document json(&a);
      json.Parse(OperationJson(op));
      operations.PushBack(rapidjson::Value(json, a), a);
    }
  }
  out.AddMember("events", Strings(rules, a), a);
  out.AddMember("skipped", Strings(skipped, a), a);
  out.AddMember("operations", operations, a);
  return out;
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

// "hubspot-batch" -> "HubspotBatch": gtest parameter names allow no '-'.
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

class MapGoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(MapGoldenTest, MatchesGoldenOutput) {
  const fs::path in = kGoldenDir / (GetParam() + ".in.json");
  const fs::path out = kGoldenDir / (GetParam() + ".out.json");
  rapidjson::Document expected;
  const std::string expected_text = ReadFile(out);
  if (!expected_text.empty()) expected.Parse(expected_text);
  if (!expected.IsObject()) expected.SetObject();
  const std::string key = expected.HasMember("key") ? expected["key"].GetString() : "";
  const std::string topic = expected.HasMember("topic") ? expected["topic"].GetString() : "crm.any";

  rapidjson::Document actual = DecodeAndMap(ReadFile(in), key, topic);
  if (std::getenv("CRMSYNC_UPDATE_GOLDEN") != nullptr) {
    rapidjson::Document updated(rapidjson::kObjectType);
    auto& a = updated.GetAllocator();
    if (expected.HasMember("key")) updated.AddMember("key", rapidjson::Value(key, a), a);
    if (expected.HasMember("topic")) updated.AddMember("topic", rapidjson::Value(topic, a), a);
    for (auto& member : actual.GetObject()) {
      updated.AddMember(rapidjson::Value(member.name, a), rapidjson::Value(member.value, a), a);
    }
    std::ofstream(out, std::ios::binary) << Pretty(updated);
    return;
  }
  expected.RemoveMember("key");
  expected.RemoveMember("topic");
  EXPECT_TRUE(actual == expected) << "actual:\n"
                                  << Pretty(actual) << "expected:\n"
                                  << Pretty(expected);
}

INSTANTIATE_TEST_SUITE_P(Golden, MapGoldenTest, testing::ValuesIn(GoldenCases()),
                         [](const testing::TestParamInfo<std::string>& param_info) {
                           return CaseName(param_info.param);
                         });

}  // namespace
}  // namespace crmsync::mapping
