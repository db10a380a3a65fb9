#pragma once
// One run's story (an install, an update) told to the server: a journal on
// disk under STATE/runs/<run> and a ProgressReporter that ships it to
// POST /api/v1/nodes/<node>/events on a connection of its own.

#include <functional>
#include <memory>
#include <string>

#include "agent/progress_reporter.h"
#include "common/status.h"

namespace kiln::agent {

// "r1764150000-1a2b3c4d", or with a prefix "update-r1764150000-1a2b3c4d":
// unique per run, sortable by start time, valid as a run id on the server.
std::string NewRunId(const std::string& prefix = "");

struct RunReporterOptions {
  std::string server, token, node, run;
  std::string state_dir;                               // the journal goes to state_dir/runs/<run>
  std::function<void(const ProgressEvent&)> on_event;  // local echo
};

Result<std::unique_ptr<ProgressReporter>> StartRunReporter(const RunReporterOptions& o);

}  // namespace kiln::agent
