#pragma once
// What kiln-agent daemon does for the server on an installed host: it takes
// queued jobs (server/api_jobs.h) one at a time, oldest first, and reports
// each back.
//
//   run       sh -c COMMAND with a timeout; exit code and output back
//   update    the delta from the version the host runs to the one asked for,
//             with an undo snapshot taken first (ROOT/.kiln-undo); when
//             anything fails part-way the snapshot puts the host back, so
//             an update is whole or not at all; it leaves the host's own
//             paths alone (hostname, machine-id, fstab, SSH host keys,
//             /var/log, the agent's state, args.excludes and the class
//             variable UPDATE_EXCLUDE) and reports its story as events
//   rollback  the undo snapshot of the last update: the previous version
//   diff      what in the tree differs from the image version it runs
//   capture   the tree as a new image version (SystemImager's golden client)
//
// /etc/kiln/agent.json follows: image, and previous after an update.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/agent_api.h"
#include "agent/agent_config.h"
#include "agent/progress_reporter.h"
#include "common/json.h"
#include "common/status.h"
#include "imager/stat_cache.h"

namespace kiln::agent {

struct HostJobsOptions {
  std::string root = "/";
  std::string config_path;  // agent.json
  // Called when the image the host runs changes.
  std::function<void(const AgentConfig&)> on_image;
};

class HostJobs {
 public:
  HostJobs(AgentApi* api, AgentConfig config, HostJobsOptions opts)
      : api_(api), config_(std::move(config)), opts_(std::move(opts)) {}

  // The queued jobs, oldest first. With wait > 0 a long poll (see
  // AgentApi::Jobs): it returns as soon as a job is queued.
  Result<Json> Queued(std::chrono::milliseconds wait = {}, bool* waited = nullptr);
  // Takes a job (a compare-and-set on the server: a job runs once), runs it
  // and reports its verdict; false when another took it first.
  bool RunJob(const Json& job);
  // Runs every queued job once; returns how many ran. Errors only when the
  // server cannot be asked.
  Result<int> RunQueued();

  // The job kinds, also for `kiln-agent rollback` with the server down.
  // Each returns the result to report ({"message", "exit_code", "output"}).
  Result<Json> Run(const Json& args);
  // Reports its phase, progress and result through r when given. Leaves
  // alone the host's own paths (UpdateKeeps) and the --exclude globs.
  Result<Json> Update(const Json& args, ProgressReporter* r = nullptr);
  Result<Json> Rollback();
  // Drift: the host's tree against the manifest of the version it runs
  // (never /proc, /sys, /dev, /run, /tmp, other mounts or the undo snapshot).
  Result<Json> Diff();
  // Captures the host's tree as the next version of args.image: the
  // manifest first, then only the objects the server lacks (a stat cache
  // keeps a second capture from re-reading unchanged files).
  Result<Json> Capture(const Json& args);

  const AgentConfig& config() const { return config_; }

 private:
  std::string UndoDir() const;
  std::string StateDir() const;  // ROOT/var/lib/kiln-agent
  // The defaults, args.excludes and the plan's UPDATE_EXCLUDE; note says
  // when the plan could not be read.
  std::vector<std::string> UpdateKeeps(const Json& args, std::string* note);
  Status SaveConfig();

  AgentApi* api_;
  AgentConfig config_;
  HostJobsOptions opts_;
  // Work a job leaves for after its verdict is reported (saving a
  // capture's stat cache): off the operator's wait, never needed for the
  // job's result.
  std::function<void()> after_verdict_;
  // The stat caches of the images this daemon captured, kept between
  // captures (loading one from its file is a few ms of every capture);
  // saved to their files after each verdict for the next daemon.
  std::map<std::string, std::shared_ptr<imager::StatCache>> stat_caches_;
};

}  // namespace kiln::agent
