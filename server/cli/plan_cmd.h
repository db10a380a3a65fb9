#pragma once
// `kiln plan NODE`: a node's plan, resolved offline against a config space
// directory (--space) or by the server.

#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {

void RegisterPlanCommand(CLI::App& app, CliState* state);

}  // namespace kiln::cli
