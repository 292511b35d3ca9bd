#include "tests/support/fixture_stream.h"

#include <gtest/gtest.h>

#include <fstream>

namespace crmsync::testing {

std::vector<FixtureRecord> ReadFixtureStream(const std::string& name) {
  const std::string path =
      std::string(CRMSYNC_SOURCE_DIR) + "/tests/mapping/fixtures/state/" + name;
  std::ifstream in(path);
  std::vector<FixtureRecord> records;
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return records;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      ADD_FAILURE() << path << ": a line without a tab: " << line.substr(0, 60);
      continue;
    }
    FixtureRecord record{line.substr(0, tab), line.substr(tab + 1), false};
    if (record.value == "<null>") {
      record.value.clear();
      record.null_value = true;
    }
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace crmsync::testing
