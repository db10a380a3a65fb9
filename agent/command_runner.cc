#include "agent/command_runner.h"

namespace kiln::agent {

Status CommandRunner::Check(const std::vector<std::string>& argv, const SubprocessOptions& opts) {
  return Output(argv, opts).status();
}

Result<std::string> CommandRunner::Output(const std::vector<std::string>& argv,
                                          const SubprocessOptions& opts) {
  KILN_ASSIGN_OR_RETURN(SubprocessResult r, Run(argv, opts));
  if (r.exit_code != 0 || r.timed_out) return IoError(DescribeFailure(argv, r));
  return std::move(r.out);
}

}  // namespace kiln::agent
