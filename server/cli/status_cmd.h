#pragma once
#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {
// kiln status: what the server says about itself.
void RegisterStatusCommand(CLI::App& app, CliState* state);
}  // namespace kiln::cli
