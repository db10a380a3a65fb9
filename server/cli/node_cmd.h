#pragma once
#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {

// kiln node add|ls|show|rm|boot|install
void RegisterNodeCommand(CLI::App& app, CliState* state);

}  // namespace kiln::cli
