#include "tests/support/worker_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace crmsync::testing {
namespace {

std::string FreshLogPath() {
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "/crmsync-worker-" + std::to_string(getpid()) + "-" +
         std::to_string(++counter) + ".log";
}

}  // namespace

std::string CrmsyncBinary() { return std::string(CRMSYNC_BINARY_DIR) + "/crmsync"; }

WorkerProcess::WorkerProcess(const std::string& config_path,
                             std::vector<std::pair<std::string, std::string>> env)
    : WorkerProcess([&] {
        WorkerProcessOptions options;
        options.config_path = config_path;
        options.env = std::move(env);
        return options;
      }()) {}

WorkerProcess::WorkerProcess(WorkerProcessOptions options)
    : log_path_(options.log_path.empty() ? FreshLogPath() : options.log_path) {
  // Everything the child needs is prepared before fork(): between fork and
  // exec a child of a multi-threaded process may only make system calls.
  std::vector<std::string> args = {options.binary, "--log-level", options.log_level,
                                   "run",          "--config",    options.config_path};
  std::vector<std::string> env_strings;
  if (const char* path = std::getenv("PATH")) env_strings.push_back(std::string("PATH=") + path);
  for (const auto& [name, value] : options.env) env_strings.push_back(name + "=" + value);
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw std::runtime_error("worker process: cannot open " + log_path_ + ": " +
                             std::strerror(errno));
  }
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // the test died before prctl
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  if (pid_ < 0) throw std::runtime_error(std::string("worker process: fork: ") + strerror(errno));
}

WorkerProcess::~WorkerProcess() {
  if (pid_ > 0) Kill9();
}

void WorkerProcess::Reap(int status) {
  pid_ = -1;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool WorkerProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    Reap(status);
    return false;
  }
  return true;
}

void WorkerProcess::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  Reap(status);
}

int WorkerProcess::Terminate() {
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  Reap(status);
  return exit_status_;
}

std::string WorkerProcess::Log() const {
  std::ifstream file(log_path_);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

bool WorkerProcess::LogContains(std::string_view text) const {
  return Log().find(text) != std::string::npos;
}

}  // namespace crmsync::testing
