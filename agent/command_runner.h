#pragma once
// The agent's seam for side effects on the machine: every disk tool, mount
// and script goes through a CommandRunner, so tests can record what would
// run (FakeCommandRunner in tests/agent) or run it for real.

#include <string>
#include <vector>

#include "common/status.h"
#include "common/subprocess.h"

namespace kiln::agent {

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Runs argv; fails only when it cannot start. Thread-safe.
  virtual Result<SubprocessResult> Run(const std::vector<std::string>& argv,
                                       const SubprocessOptions& opts) = 0;

  // Runs argv and requires exit 0; the error names the program, its exit
  // code and the last line it printed.
  Status Check(const std::vector<std::string>& argv, const SubprocessOptions& opts = {});
  // As Check, returning stdout.
  Result<std::string> Output(const std::vector<std::string>& argv,
                             const SubprocessOptions& opts = {});
};

class RealCommandRunner : public CommandRunner {
 public:
  Result<SubprocessResult> Run(const std::vector<std::string>& argv,
                               const SubprocessOptions& opts) override {
    return RunSubprocess(argv, opts);
  }
};

}  // namespace kiln::agent
