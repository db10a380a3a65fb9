#pragma once
// Runs a plan's hooks and scripts (docs/CLASSES.md).
//
// - hooks/<phase>.<CLASS> run in the install environment before their phase,
//   with $target naming the target root (FAI's convention).
// - scripts/<CLASS>/NN-* run in order INSIDE the target (chroot), after the
//   image and the class files are in place. While they run, /proc, /sys and
//   /dev are mounted into the target where it has those directories, and
//   unmounted afterwards whatever happens.
//
// Both get the plan's variables as environment variables (strings as they
// are, numbers and booleans as JSON, lists of scalars joined by spaces) and
// KILN_NODE, KILN_HOSTNAME, KILN_CLASSES, KILN_PHASE, KILN_TARGET, KILN_LOG.
// Their output goes to on_output as it comes. A script or hook that exits
// non-zero (or cannot start) stops the install: the error names it, its
// class file and exit code, and carries its last line of output.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/command_runner.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

struct ScriptContext {
  std::string target;             // the target root ("/" on an installed host)
  std::string log_path;           // the install log, for KILN_LOG
  std::string work_dir = "/tmp";  // where hooks are written before they run
  std::function<void(std::string_view)> on_output;
  // Called before each script or hook with its name and source.
  std::function<void(const std::string& name, const std::string& source)> on_start;
};

// The environment the plan gives its scripts ("K=V" entries).
std::vector<std::string> PlanEnvironment(const Json& plan, const ScriptContext& ctx,
                                         const std::string& phase);

class PlanScripts {
 public:
  PlanScripts(CommandRunner* runner, ScriptContext ctx) : runner_(runner), ctx_(std::move(ctx)) {}

  // The hooks of phase, in class order; none is fine.
  Status RunHooks(const Json& plan, const std::string& phase);
  // Every script in plan order, chrooted into the target.
  Status RunScripts(const Json& plan);

  // How many hooks and scripts ran.
  size_t ran() const { return ran_; }

 private:
  Status RunOne(const Json& plan, const Json& item, const std::string& phase, bool in_target);

  CommandRunner* runner_;
  ScriptContext ctx_;
  size_t ran_ = 0;
};

}  // namespace kiln::agent
