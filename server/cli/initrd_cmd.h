#pragma once
#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {
// kiln initrd build: makes the install environment (see agent/initrd/).
void RegisterInitrdCommand(CLI::App& app, CliState* state);
}  // namespace kiln::cli
