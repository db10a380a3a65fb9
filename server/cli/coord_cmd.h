#pragma once
#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {
// kiln coord get|ls|create|set|rm|watch.
void RegisterCoordCommand(CLI::App& app, CliState* state);
}  // namespace kiln::cli
