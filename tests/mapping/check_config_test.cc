// check-config on broken configs: each testdata/broken/<case>.json is the
// example config with one (or a few) defects; <case>.paths lists the JSON
// paths its problems must name — exactly those, one problem per defect.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"

namespace crmsync::mapping {
namespace {

namespace fs = std::filesystem;

const fs::path kBrokenDir = fs::path(CRMSYNC_SOURCE_DIR) / "tests/mapping/testdata/broken";

std::optional<std::string> AnyKey(std::string_view) { return std::string("test-key"); }

std::vector<std::string> Cases() {
  std::vector<std::string> stems;
  for (const auto& entry : fs::directory_iterator(kBrokenDir)) {
    if (entry.path().extension() == ".json") stems.push_back(entry.path().stem().string());
  }
  std::sort(stems.begin(), stems.end());
  return stems;
}

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

class BrokenConfigTest : public testing::TestWithParam<std::string> {};

TEST_P(BrokenConfigTest, NamesExactlyTheBrokenPaths) {
  std::multiset<std::string> expected;
  std::ifstream paths(kBrokenDir / (GetParam() + ".paths"));
  for (std::string line; std::getline(paths, line);) {
    if (!line.empty()) expected.insert(line);
  }
  std::vector<std::string> problems;
  try {
    LoadConfigFromFile(providers::Catalog(), (kBrokenDir / (GetParam() + ".json")).string(),
                       &AnyKey);
    FAIL() << "config was accepted";
  } catch (const ConfigError& e) {
    problems = e.problems();
  }
  std::multiset<std::string> actual;
  for (const std::string& problem : problems) actual.insert(problem.substr(0, problem.find(": ")));
  EXPECT_EQ(actual, expected) << testing::PrintToString(problems);
}

INSTANTIATE_TEST_SUITE_P(Broken, BrokenConfigTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<std::string>& param_info) {
                           return CaseName(param_info.param);
                         });

std::string Example() {
  std::ifstream in(std::string(CRMSYNC_SOURCE_DIR) + "/examples/crmsync.json", std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The example with `json` put at `pointer`.
std::string ExampleWith(const char* pointer, const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(Example());
  rapidjson::Document value(&doc.GetAllocator());
  value.Parse(json);
  rapidjson::Pointer(pointer).Set(doc, value);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return buffer.GetString();
}

std::vector<std::string> ProblemsOf(const std::string& json, EnvLookup env = &AnyKey) {
  try {
    LoadConfigFromString(providers::Catalog(), json, env);
  } catch (const ConfigError& e) {
    return e.problems();
  }
  return {};
}

std::optional<std::string> NoEnv(std::string_view) { return std::nullopt; }

TEST(CheckConfigMessagesTest, MisspelledKafkaPropertyIsNamedByLibrdkafka) {
  EXPECT_THAT(
      ProblemsOf(ExampleWith("/kafka/properties", R"({"security.protocl": "SSL"})")),
      testing::ElementsAre(
          "/kafka/properties/security.protocl: unknown librdkafka property 'security.protocl'"));
  EXPECT_THAT(ProblemsOf(ExampleWith("/kafka/properties", R"({"session.timeout.ms": "soon"})")),
              testing::ElementsAre(testing::StartsWith(
                  "/kafka/properties/session.timeout.ms: invalid value for librdkafka property "
                  "'session.timeout.ms': ")));
}

TEST(CheckConfigMessagesTest, PropertiesTheWorkerOwnsAreRefused) {
  for (const char* name : {"enable.auto.commit", "enable.auto.offset.store", "group.id",
                           "bootstrap.servers", "partition.assignment.strategy"}) {
    const std::string properties = std::string(R"({")") + name + R"(": "x"})";
    EXPECT_THAT(ProblemsOf(ExampleWith("/kafka/properties", properties)),
                testing::ElementsAre(
                    testing::StartsWith(std::string("/kafka/properties/") + name + ": '" + name +
                                        "' is set by the worker and cannot be configured here")))
        << name;
  }
}

TEST(CheckConfigMessagesTest, DuplicateKeyIsReportedOnceAtItsPath) {
  std::string json = Example();
  const std::string group = R"("groupId": "crmsync")";
  const size_t at = json.find(group);
  ASSERT_NE(at, std::string::npos);
  json.insert(at, R"("groupId": "other", )");
  EXPECT_THAT(ProblemsOf(json),
              testing::ElementsAre("/kafka/groupId: duplicate key 'groupId' (only one value "
                                   "would be used)"));
}

TEST(CheckConfigMessagesTest, BaseUrlIsEchoedWholeAndSpacesAreRefused) {
  EXPECT_THAT(
      ProblemsOf(
          ExampleWith("/providers/replify/baseUrl", R"("https://api.heylibby.com/api /v1/")")),
      testing::ElementsAre("/providers/replify/baseUrl: 'https://api.heylibby.com/api /v1/' must "
                           "not contain spaces or control characters"));
  EXPECT_THAT(ProblemsOf(ExampleWith("/providers/replify/baseUrl", R"("ftp://example.com/v1/")")),
              testing::ElementsAre("/providers/replify/baseUrl: 'ftp://example.com/v1/' must start "
                                   "with http:// or https:// and name a host"));
}

TEST(CheckConfigMessagesTest, MissingKeyFileIsLikeAMissingVariableUnlessSecretsAreRequired) {
  const std::string json =
      ExampleWith("/providers/replify/apiKey", R"({"file": "/nonexistent/crmsync/replify-key"})");
  // check-config without --with-secrets: a placeholder lookup.
  EXPECT_THAT(ProblemsOf(json), testing::IsEmpty());
  const std::string property =
      ExampleWith("/kafka/properties", R"({"sasl.password": {"file": "/nonexistent/crmsync/pw"}})");
  EXPECT_THAT(ProblemsOf(property), testing::IsEmpty());
  // --with-secrets (and run): the real environment, and files must exist.
  EXPECT_THAT(ProblemsOf(json, &NoEnv), testing::Contains(testing::StartsWith(
                                            "/providers/replify/apiKey: cannot read API key file "
                                            "'/nonexistent/crmsync/replify-key': ")));
  EXPECT_THAT(ProblemsOf(property, &NoEnv),
              testing::Contains(testing::StartsWith(
                  "/kafka/properties/sasl.password: cannot read kafka property file "
                  "'/nonexistent/crmsync/pw': ")));
}

TEST(CheckConfigMessagesTest, DashReadsTheConfigFromStandardInput) {
  std::istringstream input(Example());
  std::streambuf* saved = std::cin.rdbuf(input.rdbuf());
  Config config;
  EXPECT_NO_THROW(config = LoadConfigFromFile(providers::Catalog(), "-", &AnyKey));
  std::cin.rdbuf(saved);
  EXPECT_EQ(config.kafka.bootstrap_servers, "127.0.0.1:9092");

  std::istringstream broken(ExampleWith("/colour", R"("blue")"));
  saved = std::cin.rdbuf(broken.rdbuf());
  std::vector<std::string> problems;
  try {
    LoadConfigFromFile(providers::Catalog(), "-", &AnyKey);
  } catch (const ConfigError& e) {
    problems = e.problems();
  }
  std::cin.rdbuf(saved);
  EXPECT_THAT(problems, testing::ElementsAre(testing::StartsWith("/colour: ")));
}

TEST(BrokenConfigTest, TheExampleItselfIsValid) {
  EXPECT_NO_THROW(LoadConfigFromFile(
      providers::Catalog(), std::string(CRMSYNC_SOURCE_DIR) + "/examples/crmsync.json", &AnyKey));
}

}  // namespace
}  // namespace crmsync::mapping
