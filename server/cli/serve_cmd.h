#pragma once
#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {
// kiln serve: runs the server in the foreground until SIGTERM or SIGINT.
void RegisterServeCommand(CLI::App& app, CliState* state);
}  // namespace kiln::cli
