#pragma once
// Runs a program to completion and captures what it printed. The agent runs
// disk tools and scripts through this; the initrd builder runs ldd.
//
// No shell is involved: argv goes to execvp as given.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln {

struct SubprocessOptions {
  std::vector<std::string> env;  // extra "K=V" entries
  std::string cwd;
  std::string stdin_data;
  // Killed (SIGKILL to its process group) after this long; zero: no limit.
  std::chrono::milliseconds timeout{0};
  // Each chunk of output as it arrives (stdout and stderr interleaved), for
  // live logs. Output is also collected in the result.
  std::function<void(std::string_view)> on_output;
  bool merge_stderr = false;  // stderr into out
};

struct SubprocessResult {
  int exit_code = -1;  // 128+N when killed by signal N
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Fails only when the program cannot be started; a non-zero exit is a result.
Result<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                       const SubprocessOptions& opts = {});

// "sfdisk exited with 1: <last line of stderr>" for a failed result.
std::string DescribeFailure(const std::vector<std::string>& argv, const SubprocessResult& r);

}  // namespace kiln
