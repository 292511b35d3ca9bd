// WorkerProcess: the real `crmsync run --config` binary as a child process of
// a test, to be stopped with SIGTERM or killed with SIGKILL at any moment.
//
// The child gets only the environment variables given here (plus PATH), its
// stdout and stderr go to a log file the test can read, and it dies with the
// test process (PR_SET_PDEATHSIG), so a failing test leaves no worker behind.
// Not thread-safe: one test thread drives a WorkerProcess.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace crmsync::testing {

// The crmsync binary of this build tree.
std::string CrmsyncBinary();

struct WorkerProcessOptions {
  std::string config_path;
  // Environment of the child, e.g. {"REPLIFY_API_KEY", "..."}.
  std::vector<std::pair<std::string, std::string>> env;
  // Where the child's stdout and stderr go (created or truncated); empty: a
  // fresh file under ::testing::TempDir().
  std::string log_path;
  std::string log_level = "warn";
  std::string binary = CrmsyncBinary();
};

class WorkerProcess {
 public:
  // Starts the child; throws std::runtime_error when it cannot be started.
  explicit WorkerProcess(WorkerProcessOptions options);
  WorkerProcess(const std::string& config_path,
                std::vector<std::pair<std::string, std::string>> env);
  // Kills the child (SIGKILL) if it is still running.
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  pid_t Pid() const { return pid_; }
  // Whether the child has not exited yet (reaps it when it has).
  bool Running();
  // SIGKILL: no drain, no commit, no LeaveGroup.
  void Kill9();
  // SIGTERM, then the exit status (-1 if it did not exit normally).
  int Terminate();
  // The exit status once the child has exited on its own (-1 otherwise).
  int ExitStatus() const { return exit_status_; }

  const std::string& LogPath() const { return log_path_; }
  // Everything the child has written so far.
  std::string Log() const;
  bool LogContains(std::string_view text) const;

 private:
  void Reap(int status);

  pid_t pid_ = -1;
  int exit_status_ = -1;
  std::string log_path_;
};

}  // namespace crmsync::testing
