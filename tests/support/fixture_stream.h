// FixtureStream: the recorded CRM change streams under
// tests/mapping/fixtures/state/ — one Kafka record per line,
// "<key><TAB><value>", "#" lines are comments, a value of "<null>" is a
// null value (a tombstone) and an empty key is no key.
#pragma once

#include <string>
#include <vector>

namespace crmsync::testing {

struct FixtureRecord {
  std::string key;
  std::string value;
  bool null_value = false;
};

// The records of tests/mapping/fixtures/state/<name>; fails the current
// test (and returns none) when the file cannot be read.
std::vector<FixtureRecord> ReadFixtureStream(const std::string& name);

}  // namespace crmsync::testing
