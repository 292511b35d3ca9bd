// check-config on broken configs: each testdata/broken/<case>.json is the
// example config with one (or a few) defects; <case>.paths lists the JSON
// paths its problems must name — exactly those, one problem per defect.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mapping/config.h"

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
    LoadConfigFromFile((kBrokenDir / (GetParam() + ".json")).string(), &AnyKey);
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

TEST(BrokenConfigTest, TheExampleItselfIsValid) {
  EXPECT_NO_THROW(
      LoadConfigFromFile(std::string(CRMSYNC_SOURCE_DIR) + "/examples/crmsync.json", &AnyKey));
}

}  // namespace
}  // namespace crmsync::mapping
