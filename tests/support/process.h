#pragma once
// Child processes for tests that drive kiln as a user would: the `kiln`
// binary, kiln-agent, dnsmasq, ZooKeeper. Output goes to files (no pipes to
// fill up); a Process still running when destroyed is killed by its pid.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::test {

struct ProcessOptions {
  std::vector<std::string> env;  // extra "K=V" entries
  std::string stdout_path;       // default: a temp file
  std::string stderr_path;
  std::string cwd;
};

class Process {
 public:
  static Result<Process> Start(const std::vector<std::string>& argv, ProcessOptions opts = {});
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  bool Running();
  // Sends sig to the process (by its pid).
  void Signal(int sig);
  // Waits up to timeout; returns the exit code (128+signal when killed), or
  // -1 if it is still running.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Everything the process wrote so far.
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  Process() = default;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string out_path_, err_path_;
  bool owns_files_ = false;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv to completion (killed after timeout).
RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Polls pred every 20 ms until it is true or timeout passes.
bool WaitUntil(const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace kiln::test
