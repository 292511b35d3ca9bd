#include "tests/support/broker_fixture.h"

#include <cctype>
#include <thread>

namespace crmsync::testing {
namespace {

// Kafka topic and group names allow [a-zA-Z0-9._-]; parameterised test names
// add '/' and the like.
std::string Sanitise(std::string name) {
  for (char& c : name) {
    const bool allowed =
        std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
    if (!allowed) c = '_';
  }
  // Kafka's limit on topic names; the front goes, so the counter at the end
  // keeps names unique.
  constexpr size_t kMaxLength = 249;
  if (name.size() > kMaxLength) name.erase(0, name.size() - kMaxLength);
  return name;
}

std::string CurrentTestName() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "no-test";
  return std::string(info->test_suite_name()) + "-" + info->name();
}

}  // namespace

std::unique_ptr<kafka::TestBroker> BrokerTest::broker_;

void BrokerTest::SetUpTestSuite() {
  if (!broker_) broker_ = std::make_unique<kafka::TestBroker>();
}

void BrokerTest::TearDownTestSuite() { broker_.reset(); }

kafka::TestBroker& BrokerTest::Broker() {
  // A derived fixture with its own SetUpTestSuite that forgets to call ours
  // still gets a broker.
  if (!broker_) broker_ = std::make_unique<kafka::TestBroker>();
  return *broker_;
}

std::string BrokerTest::MakeTopic(int partitions) {
  std::string topic = Sanitise(CurrentTestName() + "-" + std::to_string(++counter_));
  Broker().CreateTopic(topic, partitions);
  return topic;
}

std::string BrokerTest::MakeGroup() {
  return Sanitise(CurrentTestName() + "-group-" + std::to_string(++counter_));
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace crmsync::testing
