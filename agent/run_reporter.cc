#include "agent/run_reporter.h"

#include <fmt/format.h>

#include <chrono>

#include "agent/agent_api.h"
#include "agent/progress_journal.h"
#include "common/file_util.h"
#include "common/hash.h"

namespace kiln::agent {

std::string NewRunId(const std::string& prefix) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return fmt::format("{}{}r{}-{}", prefix, prefix.empty() ? "" : "-",
                     std::chrono::duration_cast<std::chrono::seconds>(now).count(), RandomHex(4));
}

Result<std::unique_ptr<ProgressReporter>> StartRunReporter(const RunReporterOptions& o) {
  std::string journal_dir = o.state_dir + "/runs/" + o.run;
  KILN_RETURN_IF_ERROR(MakeDirs(journal_dir, 0700));
  KILN_ASSIGN_OR_RETURN(ProgressJournal journal, ProgressJournal::Open(journal_dir));
  // The sender runs on the reporter's thread, so it gets its own connection.
  auto api = std::make_shared<AgentApi>(o.server, o.token);
  BatchSender sender = [api, node = o.node,
                        run = o.run](const std::vector<ProgressEvent>& batch) -> Result<uint64_t> {
    Json events = Json::array();
    for (const auto& e : batch) events.push_back(e.ToJson());
    return api->SendEvents(node, run, events);
  };
  ReporterOptions ro;
  ro.on_event = o.on_event;
  return std::make_unique<ProgressReporter>(std::move(journal), std::move(sender), ro);
}

}  // namespace kiln::agent
