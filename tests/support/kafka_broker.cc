#include "tests/support/kafka_broker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "worker/kafka/admin.h"

namespace crmsync::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Script() { return std::string(CRMSYNC_SOURCE_DIR) + "/scripts/kafka-broker.sh"; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Kafka topic and group names allow [a-zA-Z0-9._-].
std::string Sanitise(std::string name) {
  for (char& c : name) {
    const bool allowed =
        std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
    if (!allowed) c = '_';
  }
  if (name.size() > 200) name.erase(0, name.size() - 200);
  return name;
}

std::string CurrentTestName() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "no-test";
  return std::string(info->test_suite_name()) + "-" + info->name();
}

}  // namespace

KafkaBroker::KafkaBroker() {
  char tmpl[] = "/tmp/crmsync-kafka-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("kafka broker: mkdtemp failed");
  dir_ = tmpl;
  // The first start may resolve the jars with Maven (once per machine).
  const std::string prepare =
      "bash '" + Script() + "' prepare '" + dir_ + "' >'" + dir_ + "/prepare.log' 2>&1";
  if (std::system(prepare.c_str()) != 0) {
    throw std::runtime_error("kafka broker: prepare failed:\n" + ReadFile(dir_ + "/prepare.log"));
  }
  bootstrap_ = ReadFile(dir_ + "/bootstrap");
  while (!bootstrap_.empty() && std::isspace(static_cast<unsigned char>(bootstrap_.back()))) {
    bootstrap_.pop_back();
  }
  Start();
}

KafkaBroker::~KafkaBroker() {
  Kill();
  std::error_code ignored;
  if (std::getenv("CRMSYNC_KEEP_KAFKA") == nullptr) std::filesystem::remove_all(dir_, ignored);
}

void KafkaBroker::Start() {
  if (Running()) return;
  const std::string log_path = dir_ + "/broker.log";
  const size_t log_from = ReadFile(log_path).size();
  const auto started = Clock::now();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("kafka broker: fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    const std::string script = Script();
    // bash execs java: the child's pid is the broker's.
    execl("/bin/bash", "bash", script.c_str(), "run", dir_.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  const auto deadline = started + seconds(120);
  while (Clock::now() < deadline) {
    const std::string log = ReadFile(log_path);
    if (log.find("Kafka Server started", log_from) != std::string::npos) {
      last_start_ = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
      return;
    }
    if (!Running()) {
      throw std::runtime_error("kafka broker exited during start-up:\n" + log.substr(log_from));
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  Kill();
  throw std::runtime_error("kafka broker did not start within 120 s:\n" +
                           ReadFile(log_path).substr(log_from));
}

bool KafkaBroker::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void KafkaBroker::Signal(int signal) {
  if (pid_ <= 0) return;
  kill(pid_, signal);
  const auto deadline = Clock::now() + seconds(30);
  while (Running() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(50));
  if (Running()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

void KafkaBroker::Stop() { Signal(SIGTERM); }
void KafkaBroker::Kill() { Signal(SIGKILL); }

std::string KafkaBroker::Log() const { return ReadFile(dir_ + "/broker.log"); }

void KafkaBroker::CreateTopic(const std::string& topic, int partitions,
                              const std::map<std::string, std::string>& configs) {
  kafka::CreateTopic(bootstrap_, topic, partitions, configs);
}

namespace {
std::unique_ptr<KafkaBroker>& SharedBroker() {
  static std::unique_ptr<KafkaBroker> broker;
  return broker;
}
}  // namespace

void KafkaBrokerTest::SetUpTestSuite() { Broker(); }

KafkaBroker& KafkaBrokerTest::Broker() {
  auto& broker = SharedBroker();
  if (!broker) {
    broker = std::make_unique<KafkaBroker>();
    std::cout << "Apache Kafka broker at " << broker->Bootstrap() << " started in "
              << broker->LastStartTime().count() << " ms (state in " << broker->Dir() << ")"
              << std::endl;
  }
  // A test that stopped the broker and failed before restarting it leaves
  // it stopped: the next test gets it back.
  if (!broker->Running()) broker->Start();
  return *broker;
}

std::string KafkaBrokerTest::MakeTopic(int partitions,
                                       const std::map<std::string, std::string>& configs) {
  std::string topic = Sanitise(CurrentTestName() + "-" + std::to_string(getpid()) + "-" +
                               std::to_string(++counter_));
  Broker().CreateTopic(topic, partitions, configs);
  return topic;
}

std::string KafkaBrokerTest::MakeGroup() {
  return Sanitise(CurrentTestName() + "-" + std::to_string(getpid()) + "-group-" +
                  std::to_string(++counter_));
}

}  // namespace crmsync::testing
