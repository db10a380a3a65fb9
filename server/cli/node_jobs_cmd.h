#pragma once
// kiln node run | update | rollback: jobs for installed hosts' agents
// (server/api_jobs.h), queued on every node named and followed until each
// host has answered.

#include "server/cli/cli.h"

namespace kiln::cli {

// Adds the subcommands to `kiln node` (call after RegisterNodeCommand).
void RegisterNodeJobCommands(CLI::App& app, CliState* state);

}  // namespace kiln::cli
