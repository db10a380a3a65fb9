#pragma once
// kiln node run | update | rollback: jobs for installed hosts' agents
// (server/api_jobs.h), queued on every node named and followed until each
// host has answered.

#include "server/cli/cli.h"

namespace kiln::cli {

// Queues a job of `kind` on each node and follows it to the end, printing
// each host's answer; the exit code says whether all succeeded.
int RunHostJob(const ClientFlags& client, const std::vector<std::string>& nodes,
               const std::string& cmd, const std::string& kind, const Json& args, bool json,
               int wait_s);

// Adds the subcommands to `kiln node` (call after RegisterNodeCommand).
void RegisterNodeJobCommands(CLI::App& app, CliState* state);

}  // namespace kiln::cli
