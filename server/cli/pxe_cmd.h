#pragma once
#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {

// kiln pxe export DIR
void RegisterPxeCommand(CLI::App& app, CliState* state);

}  // namespace kiln::cli
